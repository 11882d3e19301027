"""Inputs of the judge: metric settings and each side's data, already validated.

Validation of untrusted input (the wire, files) happens above this layer and raises the
domain errors of :mod:`gatekeeper.errors`; the constructors here only hold data.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from gatekeeper.stats.results import Direction, MetricKind

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

DEFAULT_TOLERANCE = 0.2
DEFAULT_QUANTILE = 0.99
DEFAULT_ALPHA = 0.01
DEFAULT_BETA = 0.2
DEFAULT_PASS_SCORE = 95.0
DEFAULT_MARGINAL_SCORE = 75.0
DEFAULT_OUTLIER_FACTOR = 3.0


DEFAULT_KAYENTA_TOLERANCE = 0.25
DEFAULT_KAYENTA_CONFIDENCE = 0.98


class JudgeMode(enum.Enum):
    """How the judge decides: our statistics, or NetflixACAJudge's (for migration)."""

    DEFAULT = "DEFAULT"
    KAYENTA = "KAYENTA"


class NanStrategy(enum.Enum):
    """What VALUES does with NaN points."""

    REMOVE = "REMOVE"
    REPLACE = "REPLACE"


class OutlierStrategy(enum.Enum):
    """Outlier removal applied to VALUES before the test."""

    NONE = "NONE"
    IQR = "IQR"
    KSIGMA = "KSIGMA"


@dataclass(frozen=True, slots=True)
class KayentaMetricOptions:
    """Per-metric parameters of KAYENTA mode (proto ``KayentaMetricOptions``).

    ``effect_size_measure`` is ``"MEAN_RATIO"`` or ``"CLES"``; the thresholds are Kayenta's
    ``effectSizeThresholds`` (allowed) and ``criticalThresholds``; 1.0 means none.
    """

    effect_size_measure: str = "MEAN_RATIO"
    allowed_decrease: float = 1.0
    allowed_increase: float = 1.0
    critical_decrease: float = 1.0
    critical_increase: float = 1.0
    nodata_fail: bool = False


@dataclass(frozen=True, slots=True)
class MetricSettings:
    """How one metric is judged (defaults per DESIGN.md)."""

    name: str
    kind: MetricKind
    direction: Direction = Direction.INCREASE
    tolerance: float = DEFAULT_TOLERANCE
    absolute_tolerance: float = 0.0
    critical: bool = False
    weight: float = 1.0
    group: str = ""
    quantile: float = DEFAULT_QUANTILE
    dry_run: bool = False
    nan_strategy: NanStrategy = NanStrategy.REMOVE
    nan_replacement: float = 0.0
    outlier_strategy: OutlierStrategy = OutlierStrategy.NONE
    outlier_factor: float = DEFAULT_OUTLIER_FACTOR
    kayenta: KayentaMetricOptions = field(default_factory=KayentaMetricOptions)


@dataclass(frozen=True, slots=True, eq=False)
class PodCounts:
    """Bad and total event counts per interval and pod: ``bad[i, j]`` of pod ``names[j]``.

    ``bad`` and ``total`` have shape (intervals, pods), ``0 <= bad <= total``; a pod that
    served nothing in an interval has zeros there. Names are non-empty and unique.
    """

    names: tuple[str, ...]
    bad: FloatArray
    total: FloatArray

    @property
    def count(self) -> int:
        """Number of pods."""
        return len(self.names)


@dataclass(frozen=True, slots=True, eq=False)
class RatioSeries:
    """Bad and total event counts per interval (equal lengths, 0 <= bad <= total).

    ``pods``, when the source broke the counts down by pod, holds them per pod; ``bad`` and
    ``total`` are then their sums (see :meth:`from_pods`).
    """

    bad: FloatArray
    total: FloatArray
    pods: PodCounts | None = None

    @classmethod
    def from_pods(cls, pods: PodCounts) -> RatioSeries:
        """The series of a side whose counts are known per pod (aggregates derived)."""
        return cls(bad=pods.bad.sum(axis=1), total=pods.total.sum(axis=1), pods=pods)

    @property
    def intervals(self) -> int:
        """Number of intervals."""
        return int(self.total.shape[0])


@dataclass(frozen=True, slots=True, eq=False)
class HistogramSeries:
    """Cumulative bucket counts per interval: ``counts[i, j]`` observations <= ``upper_bounds[j]``.

    ``upper_bounds`` is strictly increasing and ends with +Inf; ``counts`` has shape
    (intervals, buckets). ``pods``, when the source broke the buckets down by pod, holds
    them per pod with shape (intervals, pods, buckets); ``counts`` is then their sum.
    """

    upper_bounds: FloatArray
    counts: FloatArray
    pods: FloatArray | None = None

    @property
    def intervals(self) -> int:
        """Number of intervals."""
        return int(self.counts.shape[0])


Series = FloatArray | RatioSeries | HistogramSeries


@dataclass(frozen=True, slots=True, eq=False)
class MetricData:
    """One metric: its settings and both sides' data.

    ``error`` is set when the data could not be had (metric source down); the metric's
    outcome is then ERROR whatever the series hold. ``queries`` are the rendered queries
    of both sides, ``notes`` what cleaning the fetched data needed.
    """

    settings: MetricSettings
    baseline: Series
    canary: Series
    error: str | None = None
    queries: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class LookPosition:
    """1-based index of this look within its analysis, and the looks planned (0: unknown)."""

    index: int
    planned: int = 0


@dataclass(frozen=True, slots=True)
class JudgeSettings:
    """Settings of one judgement as a whole."""

    alpha: float = DEFAULT_ALPHA
    beta: float = DEFAULT_BETA
    pass_score: float = DEFAULT_PASS_SCORE
    marginal_score: float = DEFAULT_MARGINAL_SCORE
    interval_seconds: float | None = None
    look: LookPosition | None = None
    group_weights: dict[str, float] = field(default_factory=dict)
    mode: JudgeMode = JudgeMode.DEFAULT
    kayenta_tolerance: float = DEFAULT_KAYENTA_TOLERANCE
    kayenta_confidence: float = DEFAULT_KAYENTA_CONFIDENCE
