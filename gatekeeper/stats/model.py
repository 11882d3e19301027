"""Inputs of the judge: metric settings and each side's data, already validated.

Validation of untrusted input (the wire, files) happens above this layer and raises the
domain errors of :mod:`gatekeeper.errors`; the constructors here only hold data.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
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
#: The largest magnitude of a VALUES sample the statistics accept: far beyond any latency or
#: resource figure, and far enough below the float range that sums and differences of
#: samples stay finite. Input beyond it is refused where it enters (wire, sources, files).
MAX_VALUE_MAGNITUDE = 1e100


#: The PASS boundary's relative margin by kind (DESIGN.md, "Statistics"): a promotion must
#: rule out a canary this much worse. Wider than the FAIL boundary's 0.2: between the two lies
#: the indifference zone, where either verdict is acceptable.
DEFAULT_PASS_TOLERANCE = {
    MetricKind.RATIO: 1.0,
    MetricKind.HISTOGRAM: 0.5,
    MetricKind.VALUES: 0.5,
}
#: RATIO's absolute PASS margin without a declared objective: 0.05 percentage points.
DEFAULT_PASS_ABSOLUTE_TOLERANCE = 0.0005
#: The share of the error budget (1 - objective) a release at the PASS boundary may cost.
ERROR_BUDGET_SHARE = 0.25

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
    pass_tolerance: float | None = None
    pass_absolute_tolerance: float | None = None
    objective: float | None = None

    @property
    def fail_margin(self) -> Margin:
        """The FAIL boundary: worse than baseline x (1 + tolerance) + absolute_tolerance."""
        return Margin(self.tolerance, self.absolute_tolerance)

    @property
    def pass_margin(self) -> Margin:
        """The PASS boundary, defaults resolved (:func:`pass_margin`)."""
        return pass_margin(self)


@dataclass(frozen=True, slots=True)
class Margin:
    """A boundary in the harmful direction: baseline x (1 + ``relative``) + ``absolute``."""

    relative: float
    absolute: float


def pass_margin(settings: MetricSettings) -> Margin:
    """The PASS boundary of a metric: its explicit margins, or the kind's defaults.

    Defaults (DESIGN.md, "Statistics"): ``DEFAULT_PASS_TOLERANCE`` of the kind; for RATIO an
    absolute part of a quarter of the error budget, ``(1 - objective) / 4``, when the metric
    declares its SLO ``objective``, else ``DEFAULT_PASS_ABSOLUTE_TOLERANCE``; for the other
    kinds none. A default part is widened to the FAIL boundary's where that is wider, so the
    PASS boundary never lies inside the FAIL boundary; explicit parts narrower than the FAIL
    boundary's are refused by the validation above this layer (:func:`margin_conflicts`).
    """
    relative = settings.pass_tolerance
    if relative is None:
        relative = max(DEFAULT_PASS_TOLERANCE[settings.kind], settings.tolerance)
    absolute = settings.pass_absolute_tolerance
    if absolute is None:
        absolute = 0.0
        if settings.kind is MetricKind.RATIO:
            absolute = (
                DEFAULT_PASS_ABSOLUTE_TOLERANCE
                if settings.objective is None
                else ERROR_BUDGET_SHARE * (1.0 - settings.objective)
            )
        absolute = max(absolute, settings.absolute_tolerance)
    return Margin(relative, absolute)


def margin_conflicts(
    *,
    tolerance: float,
    absolute_tolerance: float,
    pass_tolerance: float | None,
    pass_absolute_tolerance: float | None,
) -> dict[str, str]:
    """Explicit PASS margins narrower than the FAIL margins, by PASS field name.

    Each message names both fields, so the one rule serves every place that validates a
    metric (the wire, analysis specs).
    """
    found: dict[str, str] = {}
    pairs = (
        ("pass_tolerance", pass_tolerance, "tolerance", tolerance),
        (
            "pass_absolute_tolerance",
            pass_absolute_tolerance,
            "absolute_tolerance",
            absolute_tolerance,
        ),
    )
    for pass_name, pass_value, fail_name, fail_value in pairs:
        if pass_value is not None and pass_value < fail_value:
            found[pass_name] = (
                f"must be >= {fail_name} ({fail_value:g}): the PASS boundary cannot lie inside "
                f"the FAIL boundary, got {pass_value:g}"
            )
    return found


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
    pod_starts: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class LookPosition:
    """1-based index of this look within its analysis, and the looks planned (0: unknown)."""

    index: int
    planned: int = 0


@dataclass(frozen=True, slots=True)
class JudgeSettings:
    """Settings of one judgement as a whole.

    ``warmup_seconds``: data of pods younger than this is left out (needs
    ``interval_seconds``; 0 turns it off, the default of a bare judgement).
    """

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
    warmup_seconds: float = 0.0
