"""Frozen result types and the vocabulary of a verdict (DESIGN.md, "Words")."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class MetricKind(enum.Enum):
    """What a metric's series hold."""

    RATIO = "RATIO"  #: bad/total counts per interval
    VALUES = "VALUES"  #: samples (per-interval aggregates, raw latencies, CPU per pod)
    HISTOGRAM = "HISTOGRAM"  #: Prometheus-style cumulative buckets per interval


class Direction(enum.Enum):
    """Which way of change is harmful."""

    INCREASE = "INCREASE"
    DECREASE = "DECREASE"
    EITHER = "EITHER"


class Outcome(enum.Enum):
    """One metric's result."""

    PASS = "PASS"
    HIGH = "HIGH"
    LOW = "LOW"
    NO_DATA = "NO_DATA"
    LOW_TRAFFIC = "LOW_TRAFFIC"
    ERROR = "ERROR"

    @property
    def is_regression(self) -> bool:
        """True for HIGH and LOW."""
        return self in (Outcome.HIGH, Outcome.LOW)

    @property
    def is_unknown(self) -> bool:
        """True where the data could not settle the question (NO_DATA, LOW_TRAFFIC)."""
        return self in (Outcome.NO_DATA, Outcome.LOW_TRAFFIC)


class Decision(enum.Enum):
    """The answer to one judgement."""

    PASS = "PASS"
    FAIL = "FAIL"
    INCONCLUSIVE = "INCONCLUSIVE"
    ERROR = "ERROR"


@dataclass(frozen=True, slots=True)
class Effect:
    """Canary versus baseline on the metric's effect scale.

    ``lower`` is a one-sided bound at the metric's FAIL level, ``upper`` a one-sided
    bound at the PASS level (1 - beta); ``confidence`` is the coverage of the
    interval ``[lower, upper]`` (1 - alpha_metric - beta, by Bonferroni).
    """

    estimate: float
    lower: float
    upper: float
    confidence: float
    scale: str


@dataclass(frozen=True, slots=True)
class SideSummary:
    """What one side's data looked like (for people, not for the decision)."""

    count: float = 0.0
    mean: float = 0.0
    p50: float = 0.0
    p99: float = 0.0
    rate: float = 0.0


@dataclass(frozen=True, slots=True)
class LoadHint:
    """How much more canary data the undecided metrics need.

    ``canary_requests_needed`` more canary requests (0 where the metric counts samples,
    not requests), at ``rps`` canary requests per second for ``seconds``.
    """

    canary_requests_needed: float
    rps: float
    seconds: int


@dataclass(frozen=True, slots=True)
class MetricResult:
    """One metric's judgement."""

    name: str
    outcome: Outcome
    critical: bool
    test: str
    p_value: float
    effect: Effect
    baseline: SideSummary
    canary: SideSummary
    reason: str
    dry_run: bool = False
    group: str = ""
    weight: float = 1.0
    alpha: float = 0.0
    queries: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class GroupScore:
    """Score of one metric group, 0..100, and its weight in the total."""

    name: str
    score: float
    weight: float


@dataclass(frozen=True, slots=True)
class Verdict:
    """The answer to one judgement, with every metric's result and one sentence why."""

    decision: Decision
    score: float
    metrics: tuple[MetricResult, ...]
    summary: str
    load_hint: LoadHint | None = None
    groups: tuple[GroupScore, ...] = ()
    alpha: float = 0.0
