"""Metric classifiers of NetflixACAJudge: Mann-Whitney with effect sizes, and mean inequality.

Kayenta sources: ``kayenta-judge/.../judge/classifiers/metric/MannWhitneyClassifier.scala``,
``MeanInequalityClassifier.scala`` and ``BaseMetricClassifier.scala`` (labels, directions,
NaN strategies), with the preprocessing of ``NetflixACAJudge.scala`` (NaN strategy, then
outlier removal) in front.

The Mann-Whitney rule: the canary is **High** when the whole confidence interval of the
location shift canary - baseline lies above ``tolerance * |estimate|`` and the effect size
reaches ``allowed_increase``; **Low** mirrors it below ``-tolerance * |estimate|`` and
``allowed_decrease``; otherwise **Pass**. A NaN effect size (a mean ratio with a zero mean)
does not block the verdict of the test. A critical metric whose High or Low also reaches
its critical threshold, or that has no data, is flagged ``critical`` and fails the run in
:func:`gatekeeper.stats.kayenta.scorer.score`.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import special

from gatekeeper.stats.kayenta.r_wilcox import WilcoxonError, wilcox_test
from gatekeeper.stats.kayenta.statistics import SummaryStatistics, cles, mean_ratio, summary
from gatekeeper.stats.model import FloatArray, NanStrategy, OutlierStrategy
from gatekeeper.stats.preprocess import apply_nan_strategy, remove_outliers
from gatekeeper.stats.results import Direction, Outcome

DEFAULT_KAYENTA_TOLERANCE = 0.25
DEFAULT_KAYENTA_CONFIDENCE = 0.98
DEFAULT_EFFECT_SIZE_THRESHOLD = 1.0
#: Scale of :attr:`KayentaClassification.estimate` and its bounds.
SHIFT_SCALE = "shift (canary - baseline)"
MANN_WHITNEY_TEST = "kayenta-mann-whitney"
MEAN_INEQUALITY_TEST = "kayenta-mean-inequality"


class KayentaLabel(enum.Enum):
    """Kayenta's ``MetricClassificationLabel``; values are Kayenta's spellings."""

    PASS = "Pass"
    HIGH = "High"
    LOW = "Low"
    NODATA = "Nodata"
    NODATA_FAIL_METRIC = "NodataFailMetric"
    ERROR = "Error"

    @property
    def outcome(self) -> Outcome:
        """Our outcome for this label (both no-data labels are NO_DATA)."""
        return _OUTCOMES[self]


_OUTCOMES = {
    KayentaLabel.PASS: Outcome.PASS,
    KayentaLabel.HIGH: Outcome.HIGH,
    KayentaLabel.LOW: Outcome.LOW,
    KayentaLabel.NODATA: Outcome.NO_DATA,
    KayentaLabel.NODATA_FAIL_METRIC: Outcome.NO_DATA,
    KayentaLabel.ERROR: Outcome.ERROR,
}


class EffectSizeMeasure(enum.Enum):
    """How the magnitude of a change is measured; values are Kayenta's spellings."""

    MEAN_RATIO = "meanRatio"  #: mean(canary) / mean(baseline)
    CLES = "cles"  #: P(canary point > baseline point), ties counting half


class ClassifierKind(enum.Enum):
    """Which Kayenta metric classifier judges the metric."""

    MANN_WHITNEY = "MannWhitney"
    MEAN_INEQUALITY = "MeanInequality"


def _allowed(enum_type: type[enum.Enum]) -> str:
    return ", ".join(member.name for member in enum_type)


@dataclass(frozen=True, slots=True)
class KayentaMetricParams:
    """How one metric is classified in KAYENTA mode.

    Request level (proto ``KayentaOptions``): ``tolerance``, ``confidence``. Per metric
    (``KayentaMetricOptions``): ``effect_size_measure``, ``allowed_decrease``,
    ``allowed_increase``, ``critical_decrease``, ``critical_increase``, ``nodata_fail``.
    From ``MetricSettings``: ``direction``, ``critical``, ``nan_strategy``,
    ``nan_replacement``, ``outlier_strategy``, ``outlier_factor``.

    Attributes
    ----------
    name : str
        Metric name, used in reasons.
    direction : Direction
        Which change is flagged; Kayenta's default is EITHER.
    tolerance : float
        Half-width of the indifference band as a fraction of ``|estimate|``, >= 0.
    confidence : float
        Confidence level of the shift interval, in (0, 1).
    effect_size_measure : EffectSizeMeasure
        Scale of the effect-size and critical thresholds.
    allowed_decrease, allowed_increase : float
        A significant change passes unless the effect size is <= ``allowed_decrease``
        (Low) or >= ``allowed_increase`` (High); Kayenta's ``effectSizeThresholds``.
    critical_decrease, critical_increase : float
        A critical metric's Low/High is critical only beyond these; Kayenta's
        ``criticalThresholds``.
    critical : bool
        Kayenta's ``isCriticalMetric``.
    nodata_fail : bool
        Kayenta's ``isDataRequired`` (``mustHaveData``): missing data of a non-critical
        metric is ``NodataFailMetric``, which counts as a failure in its group.
    nan_strategy, nan_replacement : NanStrategy, float
        REMOVE drops NaN points; REPLACE substitutes ``nan_replacement`` (Kayenta: 0) and
        makes missing data pass, as Kayenta does.
    outlier_strategy, outlier_factor : OutlierStrategy, float
        Outlier removal after the NaN strategy (IQR fences or k-sigma).
    classifier : ClassifierKind
        MANN_WHITNEY (NetflixACAJudge) or MEAN_INEQUALITY (Kayenta's benchmarking classifier).
    """

    name: str = ""
    direction: Direction = Direction.EITHER
    tolerance: float = DEFAULT_KAYENTA_TOLERANCE
    confidence: float = DEFAULT_KAYENTA_CONFIDENCE
    effect_size_measure: EffectSizeMeasure = EffectSizeMeasure.MEAN_RATIO
    allowed_decrease: float = DEFAULT_EFFECT_SIZE_THRESHOLD
    allowed_increase: float = DEFAULT_EFFECT_SIZE_THRESHOLD
    critical_decrease: float = DEFAULT_EFFECT_SIZE_THRESHOLD
    critical_increase: float = DEFAULT_EFFECT_SIZE_THRESHOLD
    critical: bool = False
    nodata_fail: bool = False
    nan_strategy: NanStrategy = NanStrategy.REMOVE
    nan_replacement: float = 0.0
    outlier_strategy: OutlierStrategy = OutlierStrategy.NONE
    outlier_factor: float = 3.0
    classifier: ClassifierKind = ClassifierKind.MANN_WHITNEY

    def __post_init__(self) -> None:
        enums: tuple[tuple[str, object, type[enum.Enum]], ...] = (
            ("direction", self.direction, Direction),
            ("effect_size_measure", self.effect_size_measure, EffectSizeMeasure),
            ("nan_strategy", self.nan_strategy, NanStrategy),
            ("outlier_strategy", self.outlier_strategy, OutlierStrategy),
            ("classifier", self.classifier, ClassifierKind),
        )
        for field_name, value, enum_type in enums:
            if not isinstance(value, enum_type):
                raise ValueError(
                    f"{field_name} must be one of {_allowed(enum_type)}, got {value!r}"
                )
        if not (math.isfinite(self.tolerance) and self.tolerance >= 0):
            raise ValueError(f"tolerance must be a finite number >= 0, got {self.tolerance!r}")
        if not 0.0 < self.confidence < 1.0:
            raise ValueError(
                f"confidence must lie in the open interval (0, 1), got {self.confidence!r}"
            )
        for field_name in (
            "allowed_decrease",
            "allowed_increase",
            "critical_decrease",
            "critical_increase",
        ):
            value = getattr(self, field_name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{field_name} must be a finite number >= 0, got {value!r}")
        if self.effect_size_measure is EffectSizeMeasure.CLES:
            for field_name in ("allowed_decrease", "allowed_increase"):
                value = getattr(self, field_name)
                if value > 1:
                    raise ValueError(
                        f"{field_name} must lie in [0, 1] with effect_size_measure CLES, "
                        f"got {value!r}"
                    )
        if not math.isfinite(self.nan_replacement):
            raise ValueError(f"nan_replacement must be finite, got {self.nan_replacement!r}")
        if not (math.isfinite(self.outlier_factor) and self.outlier_factor > 0):
            raise ValueError(
                f"outlier_factor must be a finite number > 0, got {self.outlier_factor!r}"
            )


@dataclass(frozen=True, slots=True)
class KayentaClassification:
    """One metric's classification in KAYENTA mode.

    Attributes
    ----------
    label : KayentaLabel
        Kayenta's classification; :attr:`outcome` maps it to ours.
    critical : bool
        Set for a critical metric's High/Low beyond its critical threshold, and for a
        critical metric's Nodata or Error: the run fails (score 0).
    reason : str
        One sentence why.
    deviation : float
        The effect size in ``effect_size_measure`` (Kayenta's ``deviation``); 1.0 where
        Kayenta short-cuts (identical or missing data), NaN for a mean ratio with a zero mean.
    effect_size_measure : EffectSizeMeasure
        Scale of ``deviation``.
    test : str
        ``kayenta-mann-whitney``, ``kayenta-mean-inequality``, or "" when no test ran.
    p_value : float
        Two-sided p-value of the rank-sum test (NaN when it did not run).
    estimate, lower, upper : float
        R's location-shift estimate and confidence bounds, canary - baseline, in the
        metric's unit (NaN when no test ran). ``lower`` may exceed ``upper`` (R's root
        finder stops at 1e-4).
    confidence : float
        Confidence level of ``[lower, upper]``.
    scale : str
        What ``estimate`` measures.
    band : float
        ``tolerance * |estimate|``: the shift that the bounds must clear (NaN when no test).
    baseline, canary : SummaryStatistics
        The data after the NaN strategy and outlier removal.
    """

    label: KayentaLabel
    critical: bool
    reason: str
    deviation: float
    effect_size_measure: EffectSizeMeasure
    test: str
    p_value: float
    estimate: float
    lower: float
    upper: float
    confidence: float
    scale: str
    band: float
    baseline: SummaryStatistics
    canary: SummaryStatistics

    @property
    def outcome(self) -> Outcome:
        """Our outcome for :attr:`label`."""
        return self.label.outcome


def _as_series(values: ArrayLike, name: str) -> FloatArray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"{name} must be a one-dimensional sequence of numbers")
    if np.isinf(array).any():
        raise ValueError(f"{name} must hold finite numbers or NaN, not infinities")
    return array


def _prepare(values: ArrayLike, name: str, params: KayentaMetricParams) -> FloatArray:
    array = apply_nan_strategy(
        _as_series(values, name), strategy=params.nan_strategy, replacement=params.nan_replacement
    )
    if array.size == 0:
        return array
    return remove_outliers(array, strategy=params.outlier_strategy, factor=params.outlier_factor)


def _metric(params: KayentaMetricParams) -> str:
    return params.name or "the metric"


def _subject(params: KayentaMetricParams) -> str:
    return params.name or "The metric"


def _result(
    params: KayentaMetricParams,
    x: FloatArray,
    y: FloatArray,
    *,
    label: KayentaLabel,
    critical: bool,
    reason: str,
    deviation: float,
    test: str = "",
    p_value: float = math.nan,
    estimate: float = math.nan,
    lower: float = math.nan,
    upper: float = math.nan,
    band: float = math.nan,
) -> KayentaClassification:
    return KayentaClassification(
        label=label,
        critical=critical,
        reason=reason,
        deviation=deviation,
        effect_size_measure=params.effect_size_measure,
        test=test,
        p_value=p_value,
        estimate=estimate,
        lower=lower,
        upper=upper,
        confidence=params.confidence,
        scale=SHIFT_SCALE,
        band=band,
        baseline=summary(y),
        canary=summary(x),
    )


def _missing_data(
    params: KayentaMetricParams, x: FloatArray, y: FloatArray, *, nodata_deviation: float
) -> KayentaClassification:
    sides = " and ".join(side for side, data in (("canary", x), ("baseline", y)) if data.size == 0)
    if params.nan_strategy is NanStrategy.REPLACE:
        return _result(
            params,
            x,
            y,
            label=KayentaLabel.PASS,
            critical=False,
            reason=(
                f"No {sides} data for {_metric(params)}; with NaN strategy REPLACE Kayenta "
                "passes missing data."
            ),
            deviation=1.0,
        )
    reason = f"Missing {sides} data for {_metric(params)}."
    if params.nodata_fail and not params.critical:
        return _result(
            params,
            x,
            y,
            label=KayentaLabel.NODATA_FAIL_METRIC,
            critical=False,
            reason=reason[:-1] + ", which must have data.",
            deviation=1.0,
        )
    return _result(
        params,
        x,
        y,
        label=KayentaLabel.NODATA,
        critical=params.critical,
        reason=reason,
        deviation=nodata_deviation,
    )


def _effect_size(params: KayentaMetricParams, x: FloatArray, y: FloatArray) -> float:
    if params.effect_size_measure is EffectSizeMeasure.CLES:
        return cles(baseline=y, canary=x)
    return mean_ratio(baseline=y, canary=x)


def _separated_p_value(n_x: int, n_y: int) -> float:
    """R's corrected normal p-value for two completely separated, untied samples."""
    sigma = math.sqrt(n_x * n_y / 12 * (n_x + n_y + 1))
    z = (n_x * n_y / 2 - 0.5) / sigma
    return float(2 * special.ndtr(-z))


def _reaches(value: float, threshold: float, *, upward: bool) -> bool:
    if math.isnan(value):
        return True
    return value >= threshold if upward else value <= threshold


def classify_mann_whitney(
    *, baseline: ArrayLike, canary: ArrayLike, params: KayentaMetricParams
) -> KayentaClassification:
    """Kayenta's MannWhitneyClassifier (``MannWhitneyClassifier.scala``).

    Parameters
    ----------
    baseline, canary : array_like
        Raw samples (Kayenta's control and experiment); NaN handled by
        ``params.nan_strategy``, then outliers by ``params.outlier_strategy``.
    params : KayentaMetricParams
        Classifier settings.

    Returns
    -------
    KayentaClassification
        See the module docstring for the rule. Short cuts, in Kayenta's order: no data on
        either side (Nodata / NodataFailMetric, or Pass with NaN strategy REPLACE);
        identical samples (Pass); a single distinct value overall (Pass).

    Raises
    ------
    ValueError
        If a sample is not one-dimensional or holds an infinity.

    Notes
    -----
    When each sample is constant (but they differ), Kayenta adds Gaussian noise of
    standard deviation ``1e-5 * value`` to make the rank test computable. This function
    uses the limit of vanishing noise instead, deterministically: the samples are then
    completely separated, the interval and estimate collapse onto the difference of the
    two values, and the p-value is that of separated untied samples. The effect size is
    computed on the original data. The shift test is R's ``wilcox.test`` (see
    :func:`gatekeeper.stats.kayenta.r_wilcox.wilcox_test`); if R would stop with an error,
    the label is Error (Kayenta catches classifier exceptions the same way).
    """
    x = _prepare(canary, "canary", params)
    y = _prepare(baseline, "baseline", params)
    if x.size == 0 or y.size == 0:
        return _missing_data(params, x, y, nodata_deviation=1.0)
    if np.array_equal(np.sort(x), np.sort(y)):
        return _result(
            params,
            x,
            y,
            label=KayentaLabel.PASS,
            critical=False,
            reason=f"The canary and baseline data of {_metric(params)} are identical.",
            deviation=1.0,
        )
    x_constant = bool(np.all(x == x[0]))
    y_constant = bool(np.all(y == y[0]))
    if x_constant and y_constant and x[0] == y[0]:
        return _result(
            params,
            x,
            y,
            label=KayentaLabel.PASS,
            critical=False,
            reason=f"Every canary and baseline value of {_metric(params)} is {x[0]:.6g}.",
            deviation=1.0,
        )

    deviation = _effect_size(params, x, y)
    if x_constant and y_constant:
        shift = float(x[0] - y[0])
        p_value = _separated_p_value(x.size, y.size)
        estimate = lower = upper = shift
        how = (
            f"shift {shift:.6g} (both samples are constant: the limit of the noise Kayenta "
            "adds to them)"
        )
    else:
        try:
            test = wilcox_test(canary=x, baseline=y, confidence=params.confidence)
        except WilcoxonError as error:
            return _result(
                params,
                x,
                y,
                label=KayentaLabel.ERROR,
                critical=params.critical,
                reason=f"Classification of {_metric(params)} failed: {error}.",
                deviation=deviation,
                test=MANN_WHITNEY_TEST,
            )
        p_value, estimate, lower, upper = test.p_value, test.estimate, test.lower, test.upper
        how = f"{params.confidence:g} confidence interval of the shift [{lower:.6g}, {upper:.6g}]"
    band = params.tolerance * abs(estimate)
    measure = params.effect_size_measure.value
    if math.isnan(deviation):
        effect = f"the {measure} is undefined (a mean is 0), which does not block"
    else:
        effect = f"the {measure} is {deviation:.6g}"

    direction = params.direction
    above = direction in (Direction.INCREASE, Direction.EITHER) and lower > band
    below = direction in (Direction.DECREASE, Direction.EITHER) and upper < -band
    is_high = above and _reaches(deviation, params.allowed_increase, upward=True)
    is_low = not is_high and below and _reaches(deviation, params.allowed_decrease, upward=False)
    critical = False
    if is_high:
        label = KayentaLabel.HIGH
        critical = params.critical and _reaches(deviation, params.critical_increase, upward=True)
        reason = (
            f"{_subject(params)} is High: the {how} lies above +{band:.6g} "
            f"({params.tolerance:g} x |estimate|) and {effect} "
            f"(allowed increase {params.allowed_increase:g})"
        )
    elif is_low:
        label = KayentaLabel.LOW
        critical = params.critical and _reaches(deviation, params.critical_decrease, upward=False)
        reason = (
            f"{_subject(params)} is Low: the {how} lies below -{band:.6g} "
            f"({params.tolerance:g} x |estimate|) and {effect} "
            f"(allowed decrease {params.allowed_decrease:g})"
        )
    elif above or below:
        label = KayentaLabel.PASS
        side, limit = (
            ("above +", f"allowed increase {params.allowed_increase:g}")
            if above
            else ("below -", f"allowed decrease {params.allowed_decrease:g}")
        )
        reason = (
            f"{_subject(params)} passes: the {how} lies {side}{band:.6g} but {effect}, "
            f"within the {limit}"
        )
    else:
        label = KayentaLabel.PASS
        reason = (
            f"{_subject(params)} passes: the {how} does not clear +/-{band:.6g} "
            f"({params.tolerance:g} x |estimate {estimate:.6g}|) in direction {direction.name}"
        )
    if critical:
        reason += "; critical"
    return _result(
        params,
        x,
        y,
        label=label,
        critical=critical,
        reason=reason + ".",
        deviation=deviation,
        test=MANN_WHITNEY_TEST,
        p_value=p_value,
        estimate=estimate,
        lower=lower,
        upper=upper,
        band=band,
    )


def classify_mean_inequality(
    *, baseline: ArrayLike, canary: ArrayLike, params: KayentaMetricParams
) -> KayentaClassification:
    """Kayenta's MeanInequalityClassifier (``MeanInequalityClassifier.scala``).

    High when the canary mean exceeds the baseline mean (direction INCREASE or EITHER),
    Low when it is below (DECREASE or EITHER), Pass otherwise; no test of significance.
    Kayenta uses it for benchmarking.

    Parameters
    ----------
    baseline, canary : array_like
        Raw samples; NaN strategy and outlier removal as for the Mann-Whitney classifier.
    params : KayentaMetricParams
        Only ``name``, ``direction``, ``critical``, ``nodata_fail`` and the preprocessing
        settings are used.

    Returns
    -------
    KayentaClassification
        ``deviation`` is the plain ratio of the means (inf or NaN for a zero baseline mean);
        High and Low carry ``critical = params.critical``.
    """
    x = _prepare(canary, "canary", params)
    y = _prepare(baseline, "baseline", params)
    if x.size == 0 or y.size == 0:
        return _missing_data(params, x, y, nodata_deviation=0.0)
    canary_mean = float(x.mean())
    baseline_mean = float(y.mean())
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = float(np.float64(canary_mean) / np.float64(baseline_mean))
    means = f"canary mean {canary_mean:.6g}, baseline mean {baseline_mean:.6g}"
    direction = params.direction
    if direction in (Direction.INCREASE, Direction.EITHER) and canary_mean > baseline_mean:
        label, deviation = KayentaLabel.HIGH, ratio
        reason = f"{_subject(params)} is High: the {means}."
    elif direction in (Direction.DECREASE, Direction.EITHER) and canary_mean < baseline_mean:
        label, deviation = KayentaLabel.LOW, ratio
        reason = f"{_subject(params)} is Low: the {means}."
    else:
        label, deviation = KayentaLabel.PASS, 1.0
        reason = f"{_subject(params)} passes: the {means}, direction {direction.name}."
    return _result(
        params,
        x,
        y,
        label=label,
        critical=params.critical and label is not KayentaLabel.PASS,
        reason=reason,
        deviation=deviation,
        test=MEAN_INEQUALITY_TEST,
    )


def classify_metric(
    *, baseline: ArrayLike, canary: ArrayLike, params: KayentaMetricParams
) -> KayentaClassification:
    """Classify one metric as NetflixACAJudge does, with the classifier ``params`` names.

    Parameters
    ----------
    baseline, canary : array_like
        Raw samples of the two sides.
    params : KayentaMetricParams
        Classifier settings.

    Returns
    -------
    KayentaClassification
        See :func:`classify_mann_whitney` and :func:`classify_mean_inequality`.
    """
    if not isinstance(params, KayentaMetricParams):
        raise ValueError(f"params must be a KayentaMetricParams, got {type(params).__name__}")
    if params.classifier is ClassifierKind.MEAN_INEQUALITY:
        return classify_mean_inequality(baseline=baseline, canary=canary, params=params)
    return classify_mann_whitney(baseline=baseline, canary=canary, params=params)
