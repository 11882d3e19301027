"""Classify each metric: PASS, HIGH, LOW, NO_DATA or LOW_TRAFFIC (DESIGN.md, "Statistics").

For every metric the acceptable region is: canary no worse than baseline x (1 +
tolerance) + absolute_tolerance in the harmful direction. For rates and quantiles (positive,
ratio-scale) "worse by (1 + tolerance)" downwards means baseline / (1 + tolerance) -
absolute_tolerance, so that swapping baseline and canary mirrors HIGH and LOW exactly; for
VALUES the shift allowed is tolerance x |baseline median| + absolute_tolerance either way.
Each kind yields two one-sided p-values against the region's boundary:

- ``p_fail``: small when the canary is beyond the region. FAIL (HIGH/LOW) when it is
  significant at the metric's level after Holm's step-down correction across the metrics
  of the verdict (Holm, Scandinavian Journal of Statistics 6(2), 1979).
- ``p_pass``: small when the canary is inside the region. PASS when ``p_pass <= beta``:
  the bound at confidence 1 - beta lies inside the region. This one rule is the data
  sufficiency check.
- otherwise LOW_TRAFFIC (data present, not enough of it) or NO_DATA, with how much more
  canary data the bound needs at the current estimate.

With direction EITHER both boundaries are tested: ``p_fail`` is twice the smaller of the
two one-sided values, and PASS needs both one-sided PASS tests.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from gatekeeper.stats import mann_whitney, pods, power, preprocess, rates, sequential, tails
from gatekeeper.stats.model import (
    FloatArray,
    HistogramSeries,
    LookPosition,
    MetricData,
    MetricSettings,
    RatioSeries,
)
from gatekeeper.stats.results import Direction, Effect, MetricKind, Outcome, SideSummary

_EPS = 1e-12


@dataclass(frozen=True, slots=True)
class Comparison:
    """Canary against baseline for one metric, before the outcome is decided.

    ``needed`` is how many more canary units (``unit``: requests or samples) the bounds
    need to settle at the current estimate: 0 when settled, +inf when no amount will do.
    """

    test: str
    p_fail: float
    p_pass: float
    harm: Outcome
    effect: Effect
    baseline: SideSummary
    canary: SideSummary
    detail: str
    needed: float = 0.0
    unit: str = "requests"
    missing: str | None = None

    def settled_at(self, alpha: float, beta: float) -> bool:
        """Whether the FAIL test at ``alpha`` or the PASS test at ``beta`` decides."""
        return self.p_fail <= alpha or self.p_pass <= beta


@dataclass(frozen=True, slots=True)
class Tested:
    """A metric's tests, before the level its FAIL test is judged at is known.

    The tests' p-values do not depend on that level; the effect's bounds and the data still
    needed do. :func:`classify` needs every FAIL p-value before it knows the levels (Holm's
    procedure orders them), so each metric is tested once and then finished once, at its
    level, by ``finish(alpha, beta)``.
    """

    p_fail: float
    finish: Callable[[float, float], Comparison]


@dataclass(frozen=True, slots=True)
class _Core:
    """What every kind's tests give: their p-values, the harm and both sides' summaries."""

    test: str
    p_fail: float
    p_pass: float
    harm: Outcome
    baseline: SideSummary
    canary: SideSummary

    def comparison(self, effect: Effect, detail: str, needed: float, unit: str) -> Comparison:
        """The comparison, finished with what depends on the level."""
        return Comparison(
            self.test,
            self.p_fail,
            self.p_pass,
            self.harm,
            effect,
            self.baseline,
            self.canary,
            detail,
            needed,
            unit,
        )


def _settled(comparison: Comparison) -> Tested:
    """A comparison that no level changes (no data): tested and finished alike."""
    return Tested(comparison.p_fail, lambda _alpha, _beta: comparison)


@dataclass(frozen=True, slots=True)
class Looks:
    """Fixed-sample inference, or inference valid at every look of an analysis.

    With a look position, counts (RATIO, tails) use the e-processes of :mod:`sequential`,
    valid at any number of looks; tests without one (VALUES' rank test, the absolute-tolerance
    score test) have their FAIL p-values multiplied by ``alpha / look_alpha``, so that
    comparing them with a level spends only this look's share of alpha.
    """

    position: LookPosition | None = None
    alpha: float = 0.01

    @property
    def anytime(self) -> bool:
        """Whether this is one look of a sequential analysis."""
        return self.position is not None

    def spent(self, p_value: float) -> float:
        """A fixed-sample FAIL p-value made valid over the looks by alpha spending."""
        if self.position is None:
            return p_value
        share = sequential.look_alpha(
            alpha=self.alpha, index=self.position.index, planned=self.position.planned
        )
        return min(1.0, p_value * self.alpha / share)


FIXED = Looks()


@dataclass(frozen=True, slots=True)
class _Tests:
    """p-values against both boundaries (INCREASE and DECREASE), as the kind computes them."""

    fail_high: float
    pass_high: float
    fail_low: float
    pass_low: float


def _combine(direction: Direction, tests: _Tests) -> tuple[float, float, Outcome]:
    if direction is Direction.INCREASE:
        return tests.fail_high, tests.pass_high, Outcome.HIGH
    if direction is Direction.DECREASE:
        return tests.fail_low, tests.pass_low, Outcome.LOW
    harm = Outcome.HIGH if tests.fail_high <= tests.fail_low else Outcome.LOW
    p_fail = min(1.0, 2.0 * min(tests.fail_high, tests.fail_low))
    return p_fail, max(tests.pass_high, tests.pass_low), harm


def _purposes(direction: Direction) -> tuple[str, str]:
    """Which test each effect bound belongs to: (lower, upper), "fail" or "pass"."""
    if direction is Direction.INCREASE:
        return "fail", "pass"
    if direction is Direction.DECREASE:
        return "pass", "fail"
    return "fail", "fail"


def _levels(direction: Direction, alpha: float, beta: float) -> tuple[float, float]:
    """One-sided error rates of the (lower, upper) effect bounds.

    The bound that decides FAIL (the lower one when increases harm) is at the FAIL level,
    the bound that decides PASS at ``beta``.
    """
    if direction is Direction.INCREASE:
        return alpha, beta
    if direction is Direction.DECREASE:
        return beta, alpha
    return alpha / 2, alpha / 2


def _projected_need(
    p_values: Callable[[float], tuple[float, float]], alpha: float, beta: float, current: float
) -> float:
    """Extra canary units for ``p_values(scale)`` to settle, at the current estimate."""

    def settled(scale: float) -> bool:
        p_fail, p_pass = p_values(scale)
        return p_fail <= alpha or p_pass <= beta

    scale = power.scale_to_settle(settled)
    return math.inf if math.isinf(scale) else (scale - 1.0) * current


# --- RATIO -------------------------------------------------------------------------------


def _ratio_summary(series: RatioSeries) -> SideSummary:
    total = float(series.total.sum())
    bad = float(series.bad.sum())
    rate = bad / total if total > 0 else 0.0
    busy = series.total > 0
    per_interval = series.bad[busy] / series.total[busy]
    p50, p99 = np.quantile(per_interval, [0.5, 0.99]) if per_interval.size else (0.0, 0.0)
    return SideSummary(count=total, mean=rate, p50=float(p50), p99=float(p99), rate=rate)


def _ratio_tests(
    counts: rates.StratifiedCounts,
    tolerance: float,
    absolute: float,
    direction: Direction,
    looks: Looks,
) -> _Tests:
    def p_value(ratio: float, alternative: str, purpose: str) -> float:
        if looks.anytime:
            return sequential.ratio_pvalue(
                counts=counts, ratio=ratio, alternative=alternative, purpose=purpose
            )
        return rates.rate_ratio_pvalue(counts=counts, ratio=ratio, alternative=alternative)

    high = 1.0 + tolerance
    low = 1.0 / high
    fail_high = p_value(high, "greater", "fail")
    pass_high = p_value(high, "less", "pass")
    fail_low, pass_low = 1.0, 0.0
    if direction is not Direction.INCREASE:
        fail_low = p_value(low, "less", "fail")
        pass_low = p_value(low, "greater", "pass")
    if absolute > 0:
        up = rates.rate_difference_test(counts=counts, factor=high, offset=absolute)
        fail_high = max(fail_high, looks.spent(up.p_greater))
        pass_high = min(pass_high, up.p_less)
        if direction is not Direction.INCREASE:
            down = rates.rate_difference_test(counts=counts, factor=low, offset=-absolute)
            fail_low = max(fail_low, looks.spent(down.p_less))
            pass_low = min(pass_low, down.p_greater)
    return _Tests(fail_high, pass_high, fail_low, pass_low)


def compare_ratio(
    data: MetricData, *, alpha: float, beta: float, looks: Looks = FIXED
) -> Comparison:
    """Compare RATIO counts by the stratified conditional rate ratio (:mod:`rates`)."""
    return tested_ratio(data, looks=looks).finish(alpha, beta)


_RATIO_TEST = "stratified conditional rate ratio (quasi-Poisson)"


@dataclass(frozen=True, slots=True)
class _RatioTested:
    core: _Core
    counts: rates.StratifiedCounts
    settings: MetricSettings
    looks: Looks


def tested_ratio(data: MetricData, *, looks: Looks = FIXED) -> Tested:
    """The RATIO tests of :func:`compare_ratio`, to be finished at a level."""
    baseline, canary = data.baseline, data.canary
    assert isinstance(baseline, RatioSeries) and isinstance(canary, RatioSeries)
    b_summary, c_summary = _ratio_summary(baseline), _ratio_summary(canary)
    missing = _ratio_missing(baseline, canary)
    if missing:
        return _settled(_no_data(_RATIO_TEST, "rate_ratio", b_summary, c_summary, missing))
    settings = data.settings
    counts = rates.stratify(baseline=baseline, canary=canary)
    tests = _ratio_tests(
        counts, settings.tolerance, settings.absolute_tolerance, settings.direction, looks
    )
    p_fail, p_pass, harm = _combine(settings.direction, tests)
    core = _Core(_RATIO_TEST, p_fail, p_pass, harm, b_summary, c_summary)
    state = _RatioTested(core, counts, settings, looks)
    return Tested(p_fail, functools.partial(_finish_ratio, state))


def _finish_ratio(state: _RatioTested, alpha: float, beta: float) -> Comparison:
    counts, looks = state.counts, state.looks
    tol, absolute = state.settings.tolerance, state.settings.absolute_tolerance
    direction = state.settings.direction
    core = state.core
    p_fail, p_pass = core.p_fail, core.p_pass
    lower_alpha, upper_alpha = _levels(direction, alpha, beta)
    interval = rates.rate_ratio_interval(
        counts=counts, alpha_lower=lower_alpha, alpha_upper=upper_alpha
    )
    lower, upper = interval.lower, interval.upper
    if looks.anytime:
        lower, upper = sequential.ratio_confidence_sequence(
            counts=counts,
            alpha_lower=lower_alpha,
            alpha_upper=upper_alpha,
            purposes=_purposes(direction),
        )
    effect = Effect(
        estimate=interval.ratio,
        lower=lower,
        upper=upper,
        confidence=1.0 - lower_alpha - upper_alpha,
        scale="rate_ratio",
    )

    def projected(scale: float) -> tuple[float, float]:
        more = rates.scaled(counts, scale)
        return _combine(direction, _ratio_tests(more, tol, absolute, direction, looks))[:2]

    settled = p_fail <= alpha or p_pass <= beta
    needed = 0.0 if settled else _projected_need(projected, alpha, beta, counts.canary_total)
    detail = (
        f"canary rate {_pct(core.canary.rate)} vs baseline {_pct(core.baseline.rate)}, "
        f"rate ratio {_num(interval.ratio)} [{_num(lower)}, {_num(upper)}]"
    )
    if counts.dispersion > 1.0:
        detail += f", overdispersion {counts.dispersion:.2g}"
    if note := pods.one_pod_note(counts.canary_pods):
        detail += f"; {note}"
    if counts.events <= 0:
        detail += "; no bad events on either side" + (
            "" if absolute > 0 else " (set absolute_tolerance to let such data pass)"
        )
    return core.comparison(effect, detail, needed, "requests")


def _ratio_missing(baseline: RatioSeries, canary: RatioSeries) -> str | None:
    if float(baseline.total.sum()) <= 0:
        return "no baseline requests"
    if float(canary.total.sum()) <= 0:
        return "no canary requests"
    both = (baseline.total > 0) & (canary.total > 0)
    if not both.any():
        return "no interval with requests on both sides"
    return None


# --- VALUES ------------------------------------------------------------------------------


def _values_summary(values: FloatArray, ordered: FloatArray) -> SideSummary:
    """Count, mean, p50 and p99 of one side; ``ordered`` is ``values`` sorted ascending.

    The mean is taken over ``values`` in their own order (summation order decides the last
    bits); the quantiles are numpy's default (type 7) from the sorted values.
    """
    if values.size == 0:
        return SideSummary()
    return SideSummary(
        count=float(values.size),
        mean=float(np.add.reduce(values)) / values.size,  # values.mean(), bit for bit
        p50=_sorted_quantile(values, ordered, 0.5),
        p99=_sorted_quantile(values, ordered, 0.99),
    )


def _sorted_quantile(values: FloatArray, ordered: FloatArray, q: float) -> float:
    """``np.quantile(values, q)`` (linear, type 7) from ``ordered`` (sorted), bit for bit.

    The same operations as numpy's ``_quantile``/``_lerp``: virtual index ``(n - 1) q``,
    its floor and fraction, and the interpolation from the nearer end. Which of several
    equal order statistics is taken only shows in the sign of a zero, so there numpy
    itself is asked.
    """
    n = int(ordered.size)
    virtual = (n - 1) * q
    if virtual >= n - 1:
        lo = hi = float(ordered[-1])
        gamma = 0.0
    else:
        below = math.floor(virtual)
        gamma = virtual - below
        lo, hi = float(ordered[below]), float(ordered[below + 1])
    if lo == 0.0 or hi == 0.0:
        return float(np.quantile(values, q))
    diff = hi - lo
    return hi - diff * (1.0 - gamma) if gamma >= 0.5 else lo + diff * gamma


def _sorted_median(ordered: FloatArray) -> float:
    """``np.median`` of sorted values, bit for bit: numpy's mean of the middle one or two.

    Its sum starts from 0.0 (so a median of zeros is +0.0) and is divided by the count.
    """
    n = int(ordered.size)
    half = n // 2
    if n % 2:
        return (0.0 + float(ordered[half])) / 1.0
    return (0.0 + float(ordered[half - 1]) + float(ordered[half])) / 2.0


def prepare_values(data: MetricData, side: FloatArray) -> FloatArray:
    """Apply the metric's NaN policy and outlier removal to one side's samples."""
    settings = data.settings
    cleaned = preprocess.apply_nan_strategy(
        side, strategy=settings.nan_strategy, replacement=settings.nan_replacement
    )
    return preprocess.remove_outliers(
        cleaned, strategy=settings.outlier_strategy, factor=settings.outlier_factor
    )


def compare_values(
    data: MetricData, *, alpha: float, beta: float, looks: Looks = FIXED
) -> Comparison:
    """Compare VALUES by Mann-Whitney U against the shifted boundary, with the HL shift."""
    return tested_values(data, looks=looks).finish(alpha, beta)


_VALUES_TEST = "Mann-Whitney U / Hodges-Lehmann shift"


@dataclass(frozen=True, slots=True)
class _ValuesTested:
    core: _Core
    baseline: FloatArray  # sorted
    canary: FloatArray  # sorted
    level: float  # |baseline median|: the unit of the relative shift
    margin: float
    direction: Direction
    cles: float


def tested_values(data: MetricData, *, looks: Looks = FIXED) -> Tested:
    """The VALUES tests of :func:`compare_values`, to be finished at a level."""
    settings = data.settings
    assert isinstance(data.baseline, np.ndarray) and isinstance(data.canary, np.ndarray)
    baseline = prepare_values(data, data.baseline)
    canary = prepare_values(data, data.canary)
    # Sorted once: the summaries, the tests, the effect size and the HL shift all use it.
    b_sorted, c_sorted = np.sort(baseline), np.sort(canary)
    b_summary = _values_summary(baseline, b_sorted)
    c_summary = _values_summary(canary, c_sorted)
    if baseline.size == 0 or canary.size == 0:
        side = "baseline" if baseline.size == 0 else "canary"
        missing = f"no {side} samples"
        return _settled(_no_data(_VALUES_TEST, "relative_shift", b_summary, c_summary, missing))
    for side, ordered in (("baseline", b_sorted), ("canary", c_sorted)):
        if not (math.isfinite(ordered[0]) and math.isfinite(ordered[-1])):  # sorted: ends
            raise ValueError(f"{side} must hold finite values")
    level = abs(_sorted_median(b_sorted))
    margin = settings.tolerance * level + settings.absolute_tolerance
    direction = settings.direction

    def mw(shift: float) -> mann_whitney.MannWhitneyResult:
        return mann_whitney.mann_whitney_u(
            baseline=b_sorted,
            canary=c_sorted,
            shift=shift,
            assume_sorted=True,
            check_input=False,  # finite (NaN policy applied, inf rejected) and sorted here
        )

    high = mw(margin)
    fail_high, pass_high = looks.spent(high.p_greater), high.p_less
    fail_low, pass_low = 1.0, 0.0
    if direction is not Direction.INCREASE:
        low = mw(-margin)
        fail_low, pass_low = looks.spent(low.p_less), low.p_greater
    p_fail, p_pass, harm = _combine(direction, _Tests(fail_high, pass_high, fail_low, pass_low))
    if margin == 0.0:  # the U of the test at shift 0 is the effect size's
        cles = high.u_canary / (baseline.size * canary.size)
    else:
        cles = mann_whitney.common_language_effect_size(
            baseline=b_sorted, canary=c_sorted, assume_sorted=True, check_input=False
        )
    core = _Core(_VALUES_TEST, p_fail, p_pass, harm, b_summary, c_summary)
    state = _ValuesTested(core, b_sorted, c_sorted, level, margin, direction, cles)
    return Tested(p_fail, functools.partial(_finish_values, state))


def _finish_values(state: _ValuesTested, alpha: float, beta: float) -> Comparison:
    core, level = state.core, state.level
    p_fail, p_pass = core.p_fail, core.p_pass
    lower_alpha, upper_alpha = _levels(state.direction, alpha, beta)
    hl = mann_whitney.hodges_lehmann(
        baseline=state.baseline,
        canary=state.canary,
        alpha_lower=lower_alpha,
        alpha_upper=upper_alpha,
        assume_sorted=True,
        check_input=False,
    )
    unit = level if level > 0 else 1.0
    scale = "relative_shift" if level > 0 else "shift"
    effect = Effect(
        estimate=hl.estimate / unit,
        lower=hl.lower / unit,
        upper=hl.upper / unit,
        confidence=1.0 - lower_alpha - upper_alpha,
        scale=scale,
    )
    needed = 0.0
    if not (p_fail <= alpha or p_pass <= beta):
        needed = _values_need(hl, state.margin, state.direction, state.canary.size)
    detail = (
        f"canary median {_num(core.canary.p50)} vs baseline {_num(core.baseline.p50)}, "
        f"shift {_num(hl.estimate)} [{_num(hl.lower)}, {_num(hl.upper)}], "
        f"P(canary > baseline) {state.cles:.2f} "
        f"(n={state.canary.size} vs {state.baseline.size})"
    )
    return core.comparison(effect, detail, needed, "samples")


def _values_need(
    hl: mann_whitney.HodgesLehmannResult, margin: float, direction: Direction, n: int
) -> float:
    estimate = hl.estimate
    if direction is Direction.DECREASE:
        distance, width = (
            abs(estimate + margin),
            (hl.upper - estimate) if estimate > -margin else (estimate - hl.lower),
        )
    else:
        distance = abs(estimate - margin)
        width = (estimate - hl.lower) if estimate > margin else (hl.upper - estimate)
    scale = power.normal_scale_to_settle(distance=distance, half_width=width)
    return math.inf if math.isinf(scale) else (scale - 1.0) * n


# --- HISTOGRAM ---------------------------------------------------------------------------


def _histogram_summary(histogram: tails.MergedHistogram, share: float) -> SideSummary:
    if histogram.count <= 0:
        return SideSummary()
    bounds, cumulative = histogram.upper_bounds, histogram.cumulative
    return SideSummary(
        count=histogram.count,
        mean=tails.histogram_mean(histogram),
        p50=tails.histogram_quantile(q=0.5, upper_bounds=bounds, cumulative=cumulative),
        p99=tails.histogram_quantile(q=0.99, upper_bounds=bounds, cumulative=cumulative),
        rate=share,
    )


def compare_histogram(
    data: MetricData, *, alpha: float, beta: float, looks: Looks = FIXED
) -> Comparison:
    """Compare HISTOGRAM tails: the canary's share above the baseline's boundary (:mod:`tails`)."""
    return tested_histogram(data, looks=looks).finish(alpha, beta)


@dataclass(frozen=True, slots=True)
class _HistogramTested:
    core: _Core
    canary: tails.MergedHistogram
    q: float
    q_base: float
    q_canary: float
    high: float  # the allowed quantile
    direction: Direction
    tests: Callable[[float], _Tests]  # at a scale of the canary's counts
    boundary: tails.TailTestResult  # the upward test at the current counts
    tolerance: float


def tested_histogram(data: MetricData, *, looks: Looks = FIXED) -> Tested:
    """The HISTOGRAM tests of :func:`compare_histogram`, to be finished at a level."""
    settings = data.settings
    assert isinstance(data.baseline, HistogramSeries) and isinstance(data.canary, HistogramSeries)
    baseline, canary = tails.merge(data.baseline), tails.merge(data.canary)
    q = settings.quantile
    test = f"tail exceedance above baseline p{_quantile_name(q)} (exact binomial)"
    if baseline.count <= 0 or canary.count <= 0:
        side = "baseline" if baseline.count <= 0 else "canary"
        return _settled(
            _no_data(
                test,
                "quantile_ratio",
                _histogram_summary(baseline, 0.0),
                _histogram_summary(canary, 0.0),
                f"no {side} observations",
            )
        )
    bounds = baseline.upper_bounds
    q_base = tails.histogram_quantile(q=q, upper_bounds=bounds, cumulative=baseline.cumulative)
    q_canary = tails.histogram_quantile(q=q, upper_bounds=bounds, cumulative=canary.cumulative)
    tol, absolute, direction = settings.tolerance, settings.absolute_tolerance, settings.direction
    unresolved = _beyond_last_bucket(baseline, q)
    # A baseline quantile in the +Inf bucket is only known to exceed the largest finite bound:
    # nothing can then be shown above it (no FAIL upwards), nor safely below it downwards.
    high = math.inf if unresolved else q_base * (1.0 + tol) + absolute
    low = q_base / (1.0 + tol) - absolute

    def tests(scale: float) -> _Tests:
        up = _tail_p(
            tails.tail_test(baseline=baseline, canary=canary, q=q, threshold=high, scale=scale),
            q,
            looks,
        )
        fail_low, pass_low = 1.0, 0.0
        if direction is not Direction.INCREASE:
            down = _tail_p(
                tails.tail_test(baseline=baseline, canary=canary, q=q, threshold=low, scale=scale),
                q,
                looks,
                upward=False,
            )
            fail_low, pass_low = down[1], 1.0 if unresolved else down[0]
        return _Tests(up[0], up[1], fail_low, pass_low)

    p_fail, p_pass, harm = _combine(direction, tests(1.0))
    boundary = tails.tail_test(baseline=baseline, canary=canary, q=q, threshold=high)
    core = _Core(
        test,
        p_fail,
        p_pass,
        harm,
        _histogram_summary(baseline, 1 - q),
        _histogram_summary(canary, boundary.canary_share),
    )
    state = _HistogramTested(
        core, canary, q, q_base, q_canary, high, direction, tests, boundary, tol
    )
    return Tested(p_fail, functools.partial(_finish_histogram, state))


def _finish_histogram(state: _HistogramTested, alpha: float, beta: float) -> Comparison:
    q, q_base, direction = state.q, state.q_base, state.direction
    p_fail, p_pass = state.core.p_fail, state.core.p_pass
    lower_alpha, upper_alpha = _levels(direction, alpha, beta)
    c_lo, c_hi = tails.quantile_bounds(
        histogram=state.canary, q=q, alpha_lower=lower_alpha, alpha_upper=upper_alpha
    )
    unit = q_base if q_base > 0 else math.nan
    effect = Effect(
        estimate=state.q_canary / unit,
        lower=c_lo / unit,
        upper=c_hi / unit,
        confidence=1.0 - lower_alpha - upper_alpha,
        scale="quantile_ratio",
    )
    needed = 0.0
    if not (p_fail <= alpha or p_pass <= beta):
        tests = state.tests
        needed = _projected_need(
            lambda s: _combine(direction, tests(s))[:2], alpha, beta, state.canary.count
        )
    name = _quantile_name(q)
    boundary = state.boundary
    detail = (
        f"canary p{name} {_num(state.q_canary)} vs baseline p{name} {_num(q_base)} "
        f"(allowed {_num(state.high)}); {_pct(boundary.canary_share)} of canary requests "
        f"above it vs {_pct(1 - q)} expected"
    )
    detail += _resolution_note(boundary, q_base, state.tolerance)
    canary_pods = state.canary.pods
    if note := pods.one_pod_note(0 if canary_pods is None else canary_pods.shape[1]):
        detail += f"; {note}"
    return state.core.comparison(effect, detail, needed, "requests")


def _tail_p(
    test: tails.TailTestResult, q: float, looks: Looks, *, upward: bool = True
) -> tuple[float, float]:
    """(p_greater, p_less) of a tail test: exact binomial, or its e-process over the looks."""
    if not looks.anytime:
        return test.p_greater, test.p_less
    tail = 1.0 - q

    def p_value(successes: float, alternative: str, purpose: str) -> float:
        return sequential.binomial_pvalue(
            successes=successes,
            trials=test.effective_count,
            p0=tail,
            alternative=alternative,
            purpose=purpose,
        )

    # The upward test's "greater" side decides FAIL and its "less" side PASS; the downward
    # test's roles are the mirror image.
    if upward:
        return p_value(test.effective_sure, "greater", "fail"), p_value(
            test.effective_possible, "less", "pass"
        )
    return p_value(test.effective_sure, "greater", "pass"), p_value(
        test.effective_possible, "less", "fail"
    )


def _beyond_last_bucket(histogram: tails.MergedHistogram, q: float) -> bool:
    """Whether the q-quantile's rank falls in the +Inf bucket."""
    finite = histogram.cumulative[-2] if histogram.cumulative.size > 1 else 0.0
    return bool(finite < q * histogram.count)


def _resolution_note(test: tails.TailTestResult, q_base: float, tolerance: float) -> str:
    start, end = test.bucket_start, test.bucket_end
    if math.isinf(end):
        return (
            f"; the threshold lies above the largest finite bucket bound {_num(start)}, "
            "so the tail test cannot resolve it"
        )
    width = end - start
    if q_base > 0 and width > tolerance * q_base:
        return (
            f"; bucket ({_num(start)}, {_num(end)}] limits the resolution to "
            f"{width / q_base:.0%} of the baseline quantile"
        )
    return ""


def _quantile_name(q: float) -> str:
    text = f"{q * 100:g}"
    return text.replace(".", "_") if "." in text else text


# --- shared ------------------------------------------------------------------------------


def _no_data(
    test: str, scale: str, baseline: SideSummary, canary: SideSummary, missing: str
) -> Comparison:
    effect = Effect(math.nan, math.nan, math.nan, 0.0, scale)
    return Comparison(
        test,
        1.0,
        1.0,
        Outcome.HIGH,
        effect,
        baseline,
        canary,
        missing,
        math.inf,
        missing=missing,
    )


def _pct(value: float) -> str:
    if math.isnan(value):
        return "n/a"
    return f"{value * 100:.3g}%"


def _num(value: float) -> str:
    if math.isnan(value):
        return "n/a"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.4g}"


TESTED: dict[MetricKind, Callable[..., Tested]] = {
    MetricKind.RATIO: tested_ratio,
    MetricKind.VALUES: tested_values,
    MetricKind.HISTOGRAM: tested_histogram,
}


def compare(data: MetricData, *, alpha: float, beta: float, looks: Looks = FIXED) -> Comparison:
    """Compare one metric's sides with the test of its kind, bounds at ``alpha``/``beta``."""
    return tested(data, looks=looks).finish(alpha, beta)


def tested(data: MetricData, *, looks: Looks = FIXED) -> Tested:
    """Test one metric's sides with the test of its kind; finish at a level later."""
    return TESTED[data.settings.kind](data, looks=looks)


def holm_levels(p_values: Sequence[float], alpha: float) -> list[float]:
    """The level each hypothesis is tested at by Holm's step-down procedure.

    Parameters
    ----------
    p_values : sequence of float
        One p-value per hypothesis of the family.
    alpha : float
        Family-wise error rate.

    Returns
    -------
    list of float
        For the hypothesis of rank r (1 = smallest p): ``alpha / (m - r + 1)`` while every
        smaller p-value was rejected; once one is not, every later hypothesis keeps the
        level at which the procedure stopped. Hypothesis i is rejected iff
        ``p_values[i] <= levels[i]``.

    References
    ----------
    S. Holm, "A simple sequentially rejective multiple test procedure", Scandinavian
    Journal of Statistics 6(2), 1979.
    """
    m = len(p_values)
    levels = [0.0] * m
    order = sorted(range(m), key=lambda i: p_values[i])
    stopped: float | None = None
    for rank, index in enumerate(order):
        level = alpha / (m - rank) if stopped is None else stopped
        levels[index] = level
        if stopped is None and p_values[index] > level:
            stopped = level
    return levels


@dataclass(frozen=True, slots=True)
class Classified:
    """A metric's outcome with the comparison behind it and the level of its FAIL test."""

    outcome: Outcome
    comparison: Comparison
    alpha: float


def classify(
    metrics: Sequence[MetricData], *, alpha: float, beta: float, looks: Looks = FIXED
) -> list[Classified]:
    """Outcome of every metric, with Holm's correction across the decisive metrics.

    Metrics with a source error are ERROR; dry-run metrics are judged at the first Holm
    level (alpha / m) and stay outside the family, so they never change another metric's
    outcome. With ``looks`` of a sequential analysis every p-value is valid at any look
    (see :class:`Looks`), so Holm's correction holds at whichever look decides.
    """
    family = [i for i, m in enumerate(metrics) if m.error is None and not m.settings.dry_run]
    first_level = alpha / max(1, len(family))
    found_tests = [None if m.error is not None else tested(m, looks=looks) for m in metrics]
    levels = dict(
        zip(
            family,
            holm_levels([_p_fail(found_tests[i]) for i in family], alpha),
            strict=True,
        )
    )
    results: list[Classified] = []
    for index, data in enumerate(metrics):
        found = found_tests[index]
        if found is None:
            results.append(_error(data))
            continue
        level = levels.get(index, first_level)
        comparison = found.finish(level, beta)
        results.append(Classified(_outcome(comparison, level, beta), comparison, level))
    return results


def _p_fail(tested: Tested | None) -> float:
    return 1.0 if tested is None else tested.p_fail


def _outcome(comparison: Comparison, level: float, beta: float) -> Outcome:
    if comparison.missing is not None:
        return Outcome.NO_DATA
    if comparison.p_fail <= level:
        return comparison.harm
    if comparison.p_pass <= beta:
        return Outcome.PASS
    return Outcome.LOW_TRAFFIC


def _error(data: MetricData) -> Classified:
    effect = Effect(math.nan, math.nan, math.nan, 0.0, "")
    comparison = Comparison(
        "",
        1.0,
        1.0,
        Outcome.HIGH,
        effect,
        SideSummary(),
        SideSummary(),
        data.error or "error",
        0.0,
        missing=data.error,
    )
    return Classified(Outcome.ERROR, comparison, 0.0)
