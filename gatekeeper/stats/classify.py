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
    Margin,
    MetricData,
    MetricSettings,
    RatioSeries,
)
from gatekeeper.stats.results import Direction, Effect, MetricKind, Outcome, SideSummary

_EPS = 1e-12


@dataclass(frozen=True, slots=True)
class Comparison:
    """Canary against baseline for one metric, before the outcome is decided.

    ``passed``: the PASS bound lies at or inside the PASS boundary. ``needed`` is how many
    more canary units (``unit``: requests or samples) the PASS bound needs to settle at the
    current estimate: 0 when settled, +inf when no amount will do (the canary looks worse
    than the PASS boundary); ``fail_needed`` is then what the FAIL bound needs.
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
    passed: bool = False
    fail_needed: float = 0.0


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
    passes: Callable[[float], bool]


@dataclass(frozen=True, slots=True)
class _Core:
    """What every kind's tests give: their p-values, the harm and both sides' summaries."""

    test: str
    p_fail: float
    p_pass: float
    harm: Outcome
    baseline: SideSummary
    canary: SideSummary

    def comparison(
        self, effect: Effect, detail: str, need: _Need, unit: str, *, passed: bool
    ) -> Comparison:
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
            need.passing,
            unit,
            passed=passed,
            fail_needed=need.failing,
        )


@dataclass(frozen=True, slots=True)
class _Need:
    """More canary units for the PASS bound to settle, and for the FAIL bound (see Comparison)."""

    passing: float = 0.0
    failing: float = 0.0


_SETTLED = _Need()


def _settled(comparison: Comparison) -> Tested:
    """A comparison that no level changes (no data): tested and finished alike."""
    return Tested(comparison.p_fail, lambda _alpha, _beta: comparison, lambda _beta: False)


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

    def share(self, rate: float) -> float:
        """The part of an error rate (alpha or beta) this look may spend by itself."""
        if self.position is None:
            return rate
        return sequential.look_alpha(
            alpha=rate, index=self.position.index, planned=self.position.planned
        )

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
        harm = Outcome.HIGH
    elif direction is Direction.DECREASE:
        harm = Outcome.LOW
    else:
        harm = Outcome.HIGH if tests.fail_high <= tests.fail_low else Outcome.LOW
    return (
        _fail_p(direction, tests.fail_high, tests.fail_low),
        _pass_p(direction, tests.pass_high, tests.pass_low),
        harm,
    )


def _fail_p(direction: Direction, high: float, low: float) -> float:
    """The FAIL p-value of a direction from the two one-sided ones (EITHER: Bonferroni)."""
    if direction is Direction.INCREASE:
        return high
    if direction is Direction.DECREASE:
        return low
    return min(1.0, 2.0 * min(high, low))


def _pass_p(direction: Direction, high: float, low: float) -> float:
    """The PASS p-value of a direction (EITHER needs both sides: intersection-union)."""
    if direction is Direction.INCREASE:
        return high
    if direction is Direction.DECREASE:
        return low
    return max(high, low)


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
    *,
    p_pass: Callable[[float], float],
    p_fail: Callable[[float], float],
    alpha: float,
    beta: float,
    current: float,
) -> _Need:
    """Extra canary units for the PASS bound, else the FAIL bound, to settle.

    ``p_pass(scale)`` and ``p_fail(scale)`` are the tests with every count multiplied by
    ``scale``, at the current estimate; the PASS boundary is the one a promotion waits for,
    and only when it is out of reach is the FAIL boundary's need computed.
    """

    def extra(scale: float) -> float:
        return math.inf if math.isinf(scale) else (scale - 1.0) * current

    passing = extra(power.scale_to_settle(lambda scale: p_pass(scale) <= beta))
    if math.isfinite(passing):
        return _Need(passing, 0.0)
    failing = extra(power.scale_to_settle(lambda scale: p_fail(scale) <= alpha))
    return _Need(passing, failing)


# --- RATIO -------------------------------------------------------------------------------


def _ratio_summary(series: RatioSeries) -> SideSummary:
    total = float(series.total.sum())
    bad = float(series.bad.sum())
    rate = bad / total if total > 0 else 0.0
    busy = series.total > 0
    per_interval = series.bad[busy] / series.total[busy]
    p50, p99 = np.quantile(per_interval, [0.5, 0.99]) if per_interval.size else (0.0, 0.0)
    return SideSummary(count=total, mean=rate, p50=float(p50), p99=float(p99), rate=rate)


def _ratio_tests(counts: rates.StratifiedCounts, settings: MetricSettings, looks: Looks) -> _Tests:
    fail_high, fail_low = _ratio_fail(counts, settings, looks)
    pass_high, pass_low = _ratio_passes(counts, settings, looks)
    return _Tests(fail_high, pass_high, fail_low, pass_low)


def _ratio_p(looks: Looks, counts: rates.StratifiedCounts) -> Callable[[float, str, str], float]:
    """The rate-ratio p-value: fixed-sample, or its e-process over the looks."""

    def p_value(ratio: float, alternative: str, purpose: str) -> float:
        if looks.anytime:
            return sequential.ratio_pvalue(
                counts=counts, ratio=ratio, alternative=alternative, purpose=purpose
            )
        return rates.rate_ratio_pvalue(counts=counts, ratio=ratio, alternative=alternative)

    return p_value


def _ratio_fail(
    counts: rates.StratifiedCounts, settings: MetricSettings, looks: Looks
) -> tuple[float, float]:
    """(upward, downward) FAIL p-values at the FAIL boundary (downward 1 for INCREASE)."""
    p_value = _ratio_p(looks, counts)
    fail, direction = settings.fail_margin, settings.direction
    high = 1.0 + fail.relative
    fail_high, fail_low = p_value(high, "greater", "fail"), 1.0
    if direction is not Direction.INCREASE:
        fail_low = p_value(1.0 / high, "less", "fail")
    if fail.absolute > 0:  # FAIL needs both the ratio and the difference beyond the boundary
        up = rates.rate_difference_test(counts=counts, factor=high, offset=fail.absolute)
        fail_high = max(fail_high, looks.spent(up.p_greater))
        if direction is not Direction.INCREASE:
            down = rates.rate_difference_test(counts=counts, factor=1 / high, offset=-fail.absolute)
            fail_low = max(fail_low, looks.spent(down.p_less))
    return fail_high, fail_low


def _ratio_passes(
    counts: rates.StratifiedCounts, settings: MetricSettings, looks: Looks
) -> tuple[float, float]:
    """(upward, downward) PASS p-values at the PASS boundary (downward 0 for INCREASE)."""
    p_value = _ratio_p(looks, counts)
    passing = settings.pass_margin
    pass_high = _ratio_pass(counts, passing, looks, p_value, upward=True)
    pass_low = 0.0
    if settings.direction is not Direction.INCREASE:
        pass_low = _ratio_pass(counts, passing, looks, p_value, upward=False)
    return pass_high, pass_low


def _ratio_pass(
    counts: rates.StratifiedCounts,
    margin: Margin,
    looks: Looks,
    p_value: Callable[[float, str, str], float],
    *,
    upward: bool,
) -> float:
    """p-value of the PASS test: small when the canary is inside the PASS boundary.

    Without an absolute part the boundary is a rate ratio (the stratified test); with one it
    is ``(1 + pass_tolerance) x baseline + pass_absolute_tolerance``, whose region holds
    the ratio's, so the difference alone decides, by the union of both sides' own bounds:
    exact binomial ones (:func:`rates.rate_margin_exact_pvalue`), or over the looks anytime
    ones (:func:`sequential.rate_margin_pvalue`).
    Downwards the boundary is the mirror image, the sides' roles swapped: baseline <= (1 +
    pass_tolerance) x canary + pass_absolute_tolerance, so swapping the sides swaps HIGH and LOW.
    """
    factor = 1.0 + margin.relative
    if margin.absolute <= 0:
        return p_value(factor if upward else 1.0 / factor, "less" if upward else "greater", "pass")
    baseline = (counts.baseline_bad, counts.baseline_total)
    canary = (counts.canary_bad_total, counts.canary_total)
    union = rates.rate_margin_exact_pvalue if not looks.anytime else sequential.rate_margin_pvalue
    if upward:
        return union(
            baseline=baseline,
            canary=canary,
            factor=factor,
            offset=margin.absolute,
            dispersion=counts.dispersion,
        )
    return union(  # the sides' roles swapped
        baseline=canary,
        canary=baseline,
        factor=factor,
        offset=margin.absolute,
        dispersion=counts.dispersion,
    )


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
    tests = _ratio_tests(counts, settings, looks)
    p_fail, p_pass, harm = _combine(settings.direction, tests)
    core = _Core(_RATIO_TEST, p_fail, p_pass, harm, b_summary, c_summary)
    state = _RatioTested(core, counts, settings, looks)
    return Tested(p_fail, functools.partial(_finish_ratio, state), lambda beta: p_pass <= beta)


def _finish_ratio(state: _RatioTested, alpha: float, beta: float) -> Comparison:
    counts, looks, settings = state.counts, state.looks, state.settings
    direction = settings.direction
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

    def projected_pass(scale: float) -> float:
        return _pass_p(direction, *_ratio_passes(rates.scaled(counts, scale), settings, looks))

    def projected_fail(scale: float) -> float:
        return _fail_p(direction, *_ratio_fail(rates.scaled(counts, scale), settings, looks))

    settled = p_fail <= alpha or p_pass <= beta
    need = _SETTLED
    if not settled:
        need = _projected_need(
            p_pass=projected_pass,
            p_fail=projected_fail,
            alpha=alpha,
            beta=beta,
            current=counts.canary_total,
        )
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
            ""
            if settings.pass_margin.absolute > 0
            else " (a pass_absolute_tolerance lets such data pass)"
        )
    return core.comparison(effect, detail, need, "requests", passed=p_pass <= beta)


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
    fail_margin: float
    pass_margin: float
    direction: Direction
    cles: float
    looks: Looks


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
    fail, passing = settings.fail_margin, settings.pass_margin
    margin = fail.relative * level + fail.absolute
    direction = settings.direction

    def mw(shift: float) -> mann_whitney.MannWhitneyResult:
        return mann_whitney.mann_whitney_u(
            baseline=b_sorted,
            canary=c_sorted,
            shift=shift,
            assume_sorted=True,
            check_input=False,  # finite (NaN policy applied, inf rejected) and sorted here
        )

    # FAIL by the rank test at the FAIL boundary; PASS by the Hodges-Lehmann bound at the
    # PASS boundary, non-strict (see _finish_values), so p_pass is only a placeholder here.
    high = mw(margin)
    fail_high, fail_low = looks.spent(high.p_greater), 1.0
    if direction is not Direction.INCREASE:
        fail_low = looks.spent(mw(-margin).p_less)
    p_fail, _, harm = _combine(direction, _Tests(fail_high, 1.0, fail_low, 1.0))
    if margin == 0.0:  # the U of the test at shift 0 is the effect size's
        cles = high.u_canary / (baseline.size * canary.size)
    else:
        cles = mann_whitney.common_language_effect_size(
            baseline=b_sorted, canary=c_sorted, assume_sorted=True, check_input=False
        )
    core = _Core(_VALUES_TEST, p_fail, 1.0, harm, b_summary, c_summary)
    pass_margin = passing.relative * level + passing.absolute
    state = _ValuesTested(
        core, b_sorted, c_sorted, level, margin, pass_margin, direction, cles, looks
    )
    return Tested(
        p_fail, functools.partial(_finish_values, state), functools.partial(_values_pass, state)
    )


def _finish_values(state: _ValuesTested, alpha: float, beta: float) -> Comparison:
    core, level, direction = state.core, state.level, state.direction
    lower_alpha, upper_alpha = _levels(direction, alpha, state.looks.share(beta))
    hl = _hl(state, lower_alpha, upper_alpha)
    # PASS, non-strict: the bound at confidence 1 - beta (spent over the looks) lies at or
    # inside the PASS boundary, so identical samples (all zeros too) pass once there are
    # enough of them. EITHER needs both bounds at beta, not the effect's alpha / 2.
    bounds = hl if direction is not Direction.EITHER else _pass_bounds(state, beta)
    passed = _inside_pass_boundary(bounds, state)
    unit = level if level > 0 else 1.0
    scale = "relative_shift" if level > 0 else "shift"
    effect = Effect(
        estimate=hl.estimate / unit,
        lower=hl.lower / unit,
        upper=hl.upper / unit,
        confidence=1.0 - lower_alpha - upper_alpha,
        scale=scale,
    )
    need = _SETTLED
    if not (core.p_fail <= alpha or passed):
        need = _values_need(bounds, state, state.canary.size)
    detail = (
        f"canary median {_num(core.canary.p50)} vs baseline {_num(core.baseline.p50)}, "
        f"shift {_num(hl.estimate)} [{_num(hl.lower)}, {_num(hl.upper)}], "
        f"P(canary > baseline) {state.cles:.2f} "
        f"(n={state.canary.size} vs {state.baseline.size})"
    )
    return core.comparison(effect, detail, need, "samples", passed=passed)


def _pass_bounds(state: _ValuesTested, beta: float) -> mann_whitney.HodgesLehmannResult:
    level = state.looks.share(beta)
    return _hl(state, level, level)


def _inside_pass_boundary(bounds: mann_whitney.HodgesLehmannResult, state: _ValuesTested) -> bool:
    """Whether the PASS bound(s) lie at or inside the PASS boundary (non-strict)."""
    direction = state.direction
    return (direction is Direction.DECREASE or bounds.upper <= state.pass_margin) and (
        direction is Direction.INCREASE or bounds.lower >= -state.pass_margin
    )


def _values_pass(state: _ValuesTested, beta: float) -> bool:
    return _inside_pass_boundary(_pass_bounds(state, beta), state)


def _hl(state: _ValuesTested, lower: float, upper: float) -> mann_whitney.HodgesLehmannResult:
    return mann_whitney.hodges_lehmann(
        baseline=state.baseline,
        canary=state.canary,
        alpha_lower=lower,
        alpha_upper=upper,
        assume_sorted=True,
        check_input=False,
    )


def _values_need(hl: mann_whitney.HodgesLehmannResult, state: _ValuesTested, n: int) -> _Need:
    """More canary samples for the PASS bound, else the FAIL bound, to settle (normal scaling)."""

    def extra(distance: float, width: float) -> float:
        scale = power.normal_scale_to_settle(distance=distance, half_width=width)
        return math.inf if math.isinf(scale) else (scale - 1.0) * n

    estimate, direction = hl.estimate, state.direction
    up, down = state.pass_margin, -state.pass_margin
    passing = 0.0
    if direction is not Direction.DECREASE:
        passing = extra(up - estimate, hl.upper - estimate) if estimate < up else math.inf
    if direction is not Direction.INCREASE and math.isfinite(passing):
        below = extra(estimate - down, estimate - hl.lower) if estimate > down else math.inf
        passing = max(passing, below)
    if math.isfinite(passing):
        return _Need(passing, 0.0)
    beyond = estimate - state.fail_margin if estimate > up else -state.fail_margin - estimate
    width = (estimate - hl.lower) if estimate > up else (hl.upper - estimate)
    return _Need(passing, extra(beyond, width) if beyond > 0 else math.inf)


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
    thresholds: _Thresholds
    direction: Direction
    fail_p: Callable[[float], float]  # at a scale of the canary's counts
    pass_p: Callable[[float], float]
    boundary: tails.TailTestResult  # the upward FAIL test at the current counts
    tolerance: float


@dataclass(frozen=True, slots=True)
class _Thresholds:
    """Tail thresholds on bucket bounds: (FAIL, PASS) upwards and downwards."""

    fail_high: float
    pass_high: float
    fail_low: float
    pass_low: float


def _tail_thresholds(
    settings: MetricSettings, bounds: FloatArray, q_base: float, unresolved: bool
) -> _Thresholds:
    """Each boundary rounded to a bucket bound on its decision's conservative side.

    Upwards FAIL needs the share above a bound at or beyond the FAIL boundary, PASS the
    share above a bound at or inside the PASS boundary; downwards the mirror. A baseline
    quantile in the +Inf bucket is only known to exceed the largest finite bound: nothing
    can then be shown above it (no FAIL upwards), nor safely below it (no PASS downwards).
    """
    fail, passing = settings.fail_margin, settings.pass_margin

    def bound(value: float, *, up: bool) -> float:
        return tails.bucket_bound(upper_bounds=bounds, value=value, up=up)

    return _Thresholds(
        fail_high=(
            math.inf
            if unresolved
            else bound(q_base * (1.0 + fail.relative) + fail.absolute, up=True)
        ),
        pass_high=bound(q_base * (1.0 + passing.relative) + passing.absolute, up=False),
        fail_low=bound(q_base / (1.0 + fail.relative) - fail.absolute, up=False),
        pass_low=(
            math.inf
            if unresolved
            else bound(q_base / (1.0 + passing.relative) - passing.absolute, up=True)
        ),
    )


def tested_histogram(data: MetricData, *, looks: Looks = FIXED) -> Tested:
    """The HISTOGRAM tests of :func:`compare_histogram`, to be finished at a level."""
    settings = data.settings
    assert isinstance(data.baseline, HistogramSeries) and isinstance(data.canary, HistogramSeries)
    baseline, canary = tails.merge(data.baseline), tails.merge(data.canary)
    q = settings.quantile
    test = f"tail exceedance above baseline p{_quantile_name(q)} (exact binomial)"
    if baseline.count <= 0 or canary.count <= 0:
        empty = "baseline" if baseline.count <= 0 else "canary"
        return _settled(
            _no_data(
                test,
                "quantile_ratio",
                _histogram_summary(baseline, 0.0),
                _histogram_summary(canary, 0.0),
                f"no {empty} observations",
            )
        )
    bounds = baseline.upper_bounds
    q_base = tails.histogram_quantile(q=q, upper_bounds=bounds, cumulative=baseline.cumulative)
    q_canary = tails.histogram_quantile(q=q, upper_bounds=bounds, cumulative=canary.cumulative)
    direction = settings.direction
    at = _tail_thresholds(settings, bounds, q_base, _beyond_last_bucket(baseline, q))

    def exceeding(threshold: float, scale: float) -> tails.TailTestResult:
        return tails.tail_test(
            baseline=baseline, canary=canary, q=q, threshold=threshold, scale=scale
        )

    def fail_p(scale: float) -> float:
        high = _tail_p(exceeding(at.fail_high, scale), q, looks, "greater", "fail")
        if direction is Direction.INCREASE:
            return high
        return _fail_p(
            direction, high, _tail_p(exceeding(at.fail_low, scale), q, looks, "less", "fail")
        )

    def pass_p(scale: float) -> float:
        high = _tail_p(exceeding(at.pass_high, scale), q, looks, "less", "pass")
        if direction is Direction.INCREASE:
            return high
        low = _tail_p(exceeding(at.pass_low, scale), q, looks, "greater", "pass")
        return _pass_p(direction, high, low)

    boundary = exceeding(at.fail_high, 1.0)
    p_fail, p_pass = fail_p(1.0), pass_p(1.0)
    if direction is Direction.EITHER:  # the harm is the side whose FAIL test is the stronger
        low = _tail_p(exceeding(at.fail_low, 1.0), q, looks, "less", "fail")
        high = _tail_p(boundary, q, looks, "greater", "fail")
        harm = Outcome.HIGH if high <= low else Outcome.LOW
    else:
        harm = Outcome.HIGH if direction is Direction.INCREASE else Outcome.LOW
    core = _Core(
        test,
        p_fail,
        p_pass,
        harm,
        _histogram_summary(baseline, 1 - q),
        _histogram_summary(canary, boundary.canary_share),
    )
    state = _HistogramTested(
        core,
        canary,
        q,
        q_base,
        q_canary,
        at,
        direction,
        fail_p,
        pass_p,
        boundary,
        settings.tolerance,
    )
    return Tested(p_fail, functools.partial(_finish_histogram, state), lambda beta: p_pass <= beta)


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
    need = _SETTLED
    if not (p_fail <= alpha or p_pass <= beta):
        need = _projected_need(
            p_pass=state.pass_p,
            p_fail=state.fail_p,
            alpha=alpha,
            beta=beta,
            current=state.canary.count,
        )
    name = _quantile_name(q)
    boundary = state.boundary
    detail = (
        f"canary p{name} {_num(state.q_canary)} vs baseline p{name} {_num(q_base)} "
        f"(rolled back above {_num(state.thresholds.fail_high)}, promoted only below "
        f"{_num(state.thresholds.pass_high)}, on bucket bounds); "
        f"{_pct(boundary.canary_share)} of canary requests above "
        f"{_num(state.thresholds.fail_high)} vs {_pct(1 - q)} expected"
    )
    detail += _resolution_note(boundary, q_base, state.tolerance)
    if state.direction is not Direction.DECREASE and state.thresholds.pass_high <= q_base:
        detail += (
            f"; no bucket bound lies between the baseline p{name} {_num(q_base)} and the PASS "
            "boundary, so these buckets cannot show the canary inside it: add a bound there"
        )
    canary_pods = state.canary.pods
    if note := pods.one_pod_note(0 if canary_pods is None else canary_pods.shape[1]):
        detail += f"; {note}"
    return state.core.comparison(effect, detail, need, "requests", passed=p_pass <= beta)


def _tail_p(
    test: tails.TailTestResult, q: float, looks: Looks, alternative: str, purpose: str
) -> float:
    """One side of a tail test: exact binomial, or its e-process over the looks.

    "greater" (the share above the threshold exceeds 1 - q) counts the sure exceedances,
    "less" the possible ones, so that the +Inf bucket never favours a decision.
    """
    if not looks.anytime:
        return test.p_greater if alternative == "greater" else test.p_less
    successes = test.effective_sure if alternative == "greater" else test.effective_possible
    return sequential.binomial_pvalue(
        successes=successes,
        trials=test.effective_count,
        p0=1.0 - q,
        alternative=alternative,
        purpose=purpose,
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
        results.append(Classified(_outcome(comparison, level), comparison, level))
    return results


def _p_fail(tested: Tested | None) -> float:
    return 1.0 if tested is None else tested.p_fail


def _outcome(comparison: Comparison, level: float) -> Outcome:
    if comparison.missing is not None:
        return Outcome.NO_DATA
    if comparison.p_fail <= level:
        return comparison.harm
    if comparison.passed:
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
