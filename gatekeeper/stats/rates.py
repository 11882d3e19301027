"""Rate ratio of event counts (RATIO metrics): canary rate / baseline rate.

Method
------
Each interval is a stratum. Conditional on the bad events of both sides in stratum i,
``x_i = b_i + c_i``, the canary's share is binomial with probability
``pi_i(R) = R w_i / (1 + R w_i)``, where ``w_i`` is the canary's share of exposure
(``total_c / total_b``) and ``R`` the rate ratio. This is exact for Poisson counts and
removes every stratum effect that hits both sides alike (error bursts, diurnal load,
weight changes), which a pooled comparison confounds (the conditional approach of
Breslow and Day, 1987, ch. 2). The strata are combined through the exposure-weighted
share ``pi(R) = sum x_i pi_i(R) / sum x_i``; with equal exposure shares this is the
classical exact conditional test of two Poisson rates (Clopper-Pearson bounds on the
conditional binomial; Ulm 1990), otherwise a slightly conservative version of it.

Errors cluster by pod and interval, so the per-interval splits vary more than binomially.
When the baseline comes per pod, the dispersion ``phi`` is the upper confidence bound of
the baseline's pod x interval dispersion, plus the between-pod variance floor of
persistent pod effects (:mod:`gatekeeper.stats.pods`). Without per-pod data it is
estimated from the Pearson statistic of the per-interval splits around the stratified
estimate (quasi-likelihood, McCullagh and Nelder 1989, sec. 4.5). The counts are deflated
by it before the exact bounds are taken (the design-effect adjustment of Rao and Scott,
1992). Non-integer counts are handled through
the regularised incomplete beta function, which extends the binomial tail continuously.

Both sides having zero bad events leaves the ratio unbounded above: that is missing
information, not evidence of health. An ``absolute_tolerance`` makes such data passable
through a score test on the rate difference (restricted maximum likelihood under the
boundary of the acceptable region, Miettinen and Nurminen 1985).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import special

from gatekeeper.stats import pods
from gatekeeper.stats.model import BoolArray, FloatArray, PodCounts, RatioSeries

_RATIO_CEILING = 1e12


@dataclass(frozen=True, slots=True)
class StratifiedCounts:
    """The informative strata of two RATIO series and their dispersion.

    Attributes
    ----------
    canary_bad, pooled_bad : ndarray
        Per stratum ``c_i`` and ``x_i = b_i + c_i``.
    exposure : ndarray
        Per stratum ``w_i = total_c / total_b``.
    dispersion : float
        ``phi >= 1``, the variance inflation of the canary's share (the quantity the
        tests use), the between-pod floor included.
    within : float
        The dispersion without the floor.
    floor : float
        Variance of ``log R`` that more data does not remove (persistent pod effects).
    canary_pods : int
        Number of canary pods (0: not known per pod).
    """

    canary_bad: FloatArray
    pooled_bad: FloatArray
    exposure: FloatArray
    dispersion: float
    baseline_bad: float
    baseline_total: float
    canary_bad_total: float
    canary_total: float
    within: float = 1.0
    floor: float = 0.0
    canary_pods: int = 0

    @property
    def events(self) -> float:
        """Bad events of both sides in the informative strata."""
        return float(self.pooled_bad.sum())


@dataclass(frozen=True, slots=True)
class RateRatioResult:
    """Stratified conditional estimate of the canary/baseline rate ratio and its bounds.

    ``lower`` is a one-sided bound at confidence ``1 - alpha_lower``, ``upper`` at
    ``1 - alpha_upper``; either may be 0 or +inf where the data do not bound the ratio.
    """

    ratio: float
    lower: float
    upper: float
    alpha_lower: float
    alpha_upper: float
    dispersion: float
    strata: int


def _check_series(series: RatioSeries, name: str) -> None:
    if series.bad.shape != series.total.shape:
        raise ValueError(f"{name}.bad and {name}.total must have the same length")


def stratify(*, baseline: RatioSeries, canary: RatioSeries) -> StratifiedCounts:
    """Pair the intervals of both sides and estimate the dispersion of the canary's share.

    Parameters
    ----------
    baseline, canary : RatioSeries
        Counts per interval, the same intervals on both sides (equal lengths).

    Returns
    -------
    StratifiedCounts
        Strata where both sides had traffic, with the dispersion ``phi``.

    Notes
    -----
    With the baseline per pod, ``phi`` is :func:`gatekeeper.stats.pods.pod_dispersion`'s
    upper bound over the informative strata, raised by the between-pod floor. Otherwise
    (or when the pods leave no degree of freedom) it is the Pearson statistic over the
    strata with events divided by its degrees of freedom (strata - 1), floored at 1, and 1
    with fewer than two such strata (McCullagh and Nelder, Generalized Linear Models, 2nd
    ed., 1989, sec. 4.5.2).
    """
    _check_series(baseline, "baseline")
    _check_series(canary, "canary")
    if baseline.intervals != canary.intervals:
        raise ValueError(
            "baseline and canary must cover the same intervals, got "
            f"{baseline.intervals} and {canary.intervals}"
        )
    keep = (baseline.total > 0) & (canary.total > 0)
    c = canary.bad[keep]
    x = baseline.bad[keep] + c
    w = canary.total[keep] / baseline.total[keep]
    b_bad = float(baseline.bad[keep].sum())
    within, floor, canary_pods = _pod_components(baseline, canary, keep)
    if within is None:
        within = _dispersion(c, x, w)
    return StratifiedCounts(
        canary_bad=c,
        pooled_bad=x,
        exposure=w,
        dispersion=pods.dispersion_with_floor(
            phi=within, floor=floor, canary_bad=float(c.sum()), baseline_bad=b_bad
        ),
        baseline_bad=b_bad,
        baseline_total=float(baseline.total[keep].sum()),
        canary_bad_total=float(c.sum()),
        canary_total=float(canary.total[keep].sum()),
        within=within,
        floor=floor,
        canary_pods=canary_pods,
    )


def _pod_components(
    baseline: RatioSeries, canary: RatioSeries, keep: BoolArray
) -> tuple[float | None, float, int]:
    """(within-pod ``phi`` upper bound or None, floor variance, canary pods)."""
    canary_pods = canary.pods.count if canary.pods else 0
    if baseline.pods is None:
        return None, 0.0, canary_pods
    side = baseline.pods
    estimate = pods.pod_dispersion(PodCounts(side.names, side.bad[keep], side.total[keep]))
    if estimate.degrees <= 0:
        return None, 0.0, canary_pods
    floor = pods.floor_variance(
        between=estimate.between,
        baseline_pods=estimate.pods,
        canary_pods=pods.effective_pods(canary.pods.total[keep]) if canary.pods else 0.0,
    )
    return estimate.phi_upper, floor, canary_pods


def _share(ratio: float, x: FloatArray, w: FloatArray) -> float:
    """Exposure-weighted conditional share of the canary, ``pi(R)``."""
    if math.isinf(ratio):
        return 1.0
    rw = ratio * w
    return float(np.dot(x, rw / (1.0 + rw)) / x.sum())


def _ratio_for_share(share: float, x: FloatArray, w: FloatArray) -> float:
    """Invert ``pi(R) = share`` (monotone in R) by Newton steps on log R with bisection."""
    if share <= 0.0:
        return 0.0
    if share >= 1.0:
        return math.inf
    total = x.sum()
    if np.all(w == w[0]):
        return share / ((1.0 - share) * float(w[0]))
    lo, hi = -60.0, 60.0
    log_r = math.log(share / ((1.0 - share) * float(np.dot(x, w) / total)))
    log_r = min(max(log_r, lo), hi)
    for _ in range(100):
        rw = math.exp(log_r) * w
        p = rw / (1.0 + rw)
        f = float(np.dot(x, p)) / total - share
        if f > 0:
            hi = log_r
        else:
            lo = log_r
        slope = float(np.dot(x, p * (1.0 - p))) / total
        step = f / slope if slope > 0 else math.inf
        candidate = log_r - step
        if not lo < candidate < hi:
            candidate = 0.5 * (lo + hi)
        if abs(candidate - log_r) < 1e-12:
            return math.exp(candidate)
        log_r = candidate
    return math.exp(log_r)


def _dispersion(c: FloatArray, x: FloatArray, w: FloatArray) -> float:
    informative = x > 0
    strata = int(informative.sum())
    if strata < 2:
        return 1.0
    c, x, w = c[informative], x[informative], w[informative]
    ratio = _ratio_for_share(float(c.sum() / x.sum()), x, w)
    if ratio <= 0.0 or math.isinf(ratio):
        return 1.0
    rw = ratio * w
    p = rw / (1.0 + rw)
    pearson = float(np.sum((c - x * p) ** 2 / (x * p * (1.0 - p))))
    return max(1.0, pearson / (strata - 1))


def _deflated(counts: StratifiedCounts) -> tuple[float, float]:
    """Canary bad and pooled bad events, divided by the dispersion."""
    phi = counts.dispersion
    return counts.canary_bad_total / phi, counts.events / phi


def rate_ratio_interval(
    *, counts: StratifiedCounts, alpha_lower: float, alpha_upper: float
) -> RateRatioResult:
    """Estimate the rate ratio canary/baseline with one-sided exact conditional bounds.

    Parameters
    ----------
    counts : StratifiedCounts
        Output of :func:`stratify`.
    alpha_lower, alpha_upper : float
        One-sided error rates of the lower and upper bound, each in (0, 1).

    Returns
    -------
    RateRatioResult
        Conditional estimate ``R`` solving ``sum c_i = sum x_i pi_i(R)``; Clopper-Pearson
        bounds on the deflated conditional share mapped back to the ratio scale.

    References
    ----------
    C. J. Clopper and E. S. Pearson, Biometrika 26(4), 1934. K. Ulm, "A simple method to
    calculate the confidence interval of a standardized mortality ratio", American
    Journal of Epidemiology 131(2), 1990. J. N. K. Rao and A. J. Scott, "A simple method
    for the analysis of clustered binary data", Biometrics 48(2), 1992.
    """
    for name, value in (("alpha_lower", alpha_lower), ("alpha_upper", alpha_upper)):
        if not 0.0 < value < 1.0:
            raise ValueError(f"{name} must be in (0, 1), got {value!r}")
    x, w = counts.pooled_bad, counts.exposure
    strata = int(x.shape[0])
    if counts.events <= 0:
        return RateRatioResult(
            math.nan, 0.0, math.inf, alpha_lower, alpha_upper, counts.dispersion, strata
        )
    c_eff, x_eff = _deflated(counts)
    share = c_eff / x_eff
    share_lo = (
        0.0 if c_eff <= 0 else float(special.betaincinv(c_eff, x_eff - c_eff + 1, alpha_lower))
    )
    share_hi = (
        1.0
        if c_eff >= x_eff
        else float(special.betaincinv(c_eff + 1, x_eff - c_eff, 1 - alpha_upper))
    )
    return RateRatioResult(
        ratio=min(_ratio_for_share(share, x, w), math.inf),
        lower=_ratio_for_share(share_lo, x, w),
        upper=_ratio_for_share(share_hi, x, w),
        alpha_lower=alpha_lower,
        alpha_upper=alpha_upper,
        dispersion=counts.dispersion,
        strata=strata,
    )


def rate_ratio_pvalue(*, counts: StratifiedCounts, ratio: float, alternative: str) -> float:
    """Exact conditional p-value of ``H0: R <= ratio`` ("greater") or ``R >= ratio`` ("less").

    Parameters
    ----------
    counts : StratifiedCounts
        Output of :func:`stratify`.
    ratio : float
        The boundary ratio, > 0.
    alternative : {"greater", "less"}
        "greater": small p means the canary's rate is above ``ratio`` x baseline.

    Returns
    -------
    float
        ``P(T >= t)`` or ``P(T <= t)`` for the deflated canary share ``T`` under the
        boundary, by the regularised incomplete beta function; 1 without events.
    """
    if alternative not in ("greater", "less"):
        raise ValueError(f"alternative must be one of 'greater', 'less', got {alternative!r}")
    if not ratio > 0:
        raise ValueError(f"ratio must be > 0, got {ratio!r}")
    if counts.events <= 0:
        return 1.0
    c_eff, x_eff = _deflated(counts)
    share0 = _share(ratio, counts.pooled_bad, counts.exposure)
    if alternative == "greater":
        return 1.0 if c_eff <= 0 else float(special.betainc(c_eff, x_eff - c_eff + 1, share0))
    return 1.0 if c_eff >= x_eff else float(special.betainc(x_eff - c_eff, c_eff + 1, 1 - share0))


@dataclass(frozen=True, slots=True)
class RateDifferenceResult:
    """Score test of the canary's rate against ``factor * baseline rate + offset``."""

    z: float
    p_greater: float
    p_less: float


def rate_difference_test(
    *, counts: StratifiedCounts, factor: float, offset: float
) -> RateDifferenceResult:
    """Score test of ``H0: canary rate = factor * baseline rate + offset``.

    Parameters
    ----------
    counts : StratifiedCounts
        Output of :func:`stratify` (pooled over the strata).
    factor : float
        Multiplier of the baseline rate, > 0 (1 + tolerance, or 1 - tolerance).
    offset : float
        Absolute allowance (positive for INCREASE, negative for DECREASE).

    Returns
    -------
    RateDifferenceResult
        ``p_greater``: small when the canary's rate is above the boundary; ``p_less``:
        small when below. The variance is inflated by the dispersion.

    References
    ----------
    O. Miettinen and M. Nurminen, "Comparative analysis of two rates", Statistics in
    Medicine 4(2), 1985 (restricted maximum likelihood under the null boundary).
    """
    if not factor > 0:
        raise ValueError(f"factor must be > 0, got {factor!r}")
    n_b, n_c = counts.baseline_total, counts.canary_total
    b, c = counts.baseline_bad, counts.canary_bad_total
    if n_b <= 0 or n_c <= 0:
        return RateDifferenceResult(math.nan, 1.0, 1.0)
    lam_b = _restricted_baseline_rate(b=b, c=c, n_b=n_b, n_c=n_c, factor=factor, offset=offset)
    lam_c = factor * lam_b + offset
    variance = counts.dispersion * (lam_c / n_c + factor**2 * lam_b / n_b)
    diff = c / n_c - (factor * b / n_b + offset)
    if variance <= 0:
        z = math.copysign(math.inf, diff) if diff != 0 else 0.0
    else:
        z = diff / math.sqrt(variance)
    return RateDifferenceResult(
        z=z, p_greater=float(special.ndtr(-z)), p_less=float(special.ndtr(z))
    )


def _restricted_baseline_rate(
    *, b: float, c: float, n_b: float, n_c: float, factor: float, offset: float
) -> float:
    """Baseline rate maximising the Poisson likelihood on ``lam_c = factor lam_b + offset``."""
    s = n_c * factor + n_b
    lower = max(0.0, -offset / factor)

    def loglik(lam: float) -> float:
        lam_c = factor * lam + offset
        if lam < 0 or lam_c < 0 or (b > 0 and lam <= 0) or (c > 0 and lam_c <= 0):
            return -math.inf
        ll = -n_b * lam - n_c * lam_c
        ll += b * math.log(lam) if b > 0 else 0.0
        ll += c * math.log(lam_c) if c > 0 else 0.0
        return ll

    # Stationary points of the profile: s k l^2 - (k (b + c) - s o) l - b o = 0.
    qa = s * factor
    qb = -(factor * (b + c) - s * offset)
    qc = -b * offset
    candidates = [lower + 1e-15]
    disc = qb * qb - 4 * qa * qc
    if disc >= 0:
        root = math.sqrt(disc)
        candidates += [(-qb + root) / (2 * qa), (-qb - root) / (2 * qa)]
    feasible = [lam for lam in candidates if lam >= lower]
    return max(feasible, key=loglik)


def scaled(counts: StratifiedCounts, factor: float) -> StratifiedCounts:
    """The same counts, every one multiplied by ``factor`` (the estimate is unchanged).

    The between-pod floor does not shrink with more data, so the dispersion carrying it
    is recomputed for the scaled counts.
    """
    return StratifiedCounts(
        canary_bad=counts.canary_bad * factor,
        pooled_bad=counts.pooled_bad * factor,
        exposure=counts.exposure,
        dispersion=counts.dispersion
        if counts.floor <= 0
        else pods.dispersion_with_floor(
            phi=counts.within,
            floor=counts.floor,
            canary_bad=counts.canary_bad_total * factor,
            baseline_bad=counts.baseline_bad * factor,
        ),
        baseline_bad=counts.baseline_bad * factor,
        baseline_total=counts.baseline_total * factor,
        canary_bad_total=counts.canary_bad_total * factor,
        canary_total=counts.canary_total * factor,
        within=counts.within,
        floor=counts.floor,
        canary_pods=counts.canary_pods,
    )


#: Points of each baseline-rate grid on which :func:`union_pvalue` bounds its supremum.
_GRID = 24
SidePvalue = Callable[[FloatArray], FloatArray]


def union_pvalue(
    *, p_canary: SidePvalue, p_baseline: SidePvalue, estimate: float, top: float
) -> float:
    """``min(1, 2 sup_b min(p_canary(b), p_baseline(b)))`` over baseline rates ``0 < b < top``.

    The p-value of the union of two one-sided tests along a boundary ``canary = f(b)``:
    ``p_canary(b)`` tests "the canary's rate is >= f(b)" (falling in ``b``), ``p_baseline(b)``
    "the baseline's rate is <= b" (rising in ``b``), each valid on its own, so under the
    null one of them rejects a true hypothesis at ``beta / 2`` (Berger and Boos, "P values
    maximised over a confidence set for the nuisance parameter", JASA 89(427), 1994, use
    the same union bound). On a grid ``b_0 < ... < b_K`` the supremum is at most the largest
    ``min(p_canary(b_i), p_baseline(b_i+1))``, with ``p_baseline(b_0)`` below the grid and
    ``p_canary(b_K)`` above it: an upper bound, so the test stays valid whatever the grid.
    The cell where the two cross is refined once.

    Parameters
    ----------
    p_canary, p_baseline : callable
        Vectorised over an array of baseline rates.
    estimate : float
        The baseline's observed rate (> 0): the grid spans 1/100 of it to ``top``.
    top : float
        The largest baseline rate whose boundary is still a rate (< 1).
    """
    low = max(min(estimate, top) / 100.0, 1e-12)
    high = top * (1.0 - 1e-9)

    def cells(start: float, end: float) -> tuple[FloatArray, FloatArray]:
        grid = np.geomspace(start, end, _GRID)
        return grid, np.minimum(p_canary(grid)[:-1], p_baseline(grid)[1:])

    outside = max(float(p_baseline(np.array([low]))[0]), float(p_canary(np.array([high]))[0]))
    grid, coarse = cells(low, high)
    peak = int(coarse.argmax())
    first, last = max(0, peak - 1), min(_GRID - 1, peak + 2)
    _, fine = cells(float(grid[first]), float(grid[last]))
    rest = np.delete(coarse, np.arange(first, last))
    sup = max(float(fine.max()), float(rest.max()) if rest.size else 0.0, outside)
    return min(1.0, 2.0 * sup)


def rate_margin_exact_pvalue(
    *,
    baseline: tuple[float, float],
    canary: tuple[float, float],
    factor: float,
    offset: float,
    dispersion: float = 1.0,
) -> float:
    """Fixed-sample p-value of ``H0: canary rate >= factor x baseline rate + offset``.

    The union (:func:`union_pvalue`) of the two sides' exact one-sided binomial tests
    (Clopper and Pearson, Biometrika 26(4), 1934): the canary's ``P(X <= c)`` at the
    boundary rate, the baseline's ``P(X >= b)``, counts divided by ``dispersion``. Unlike the
    score test it stays valid with few events: no canary error in 75 requests does not show
    a rate below 1 %.
    """
    if not (factor > 0 and offset > 0 and dispersion >= 1.0):
        raise ValueError(
            f"need factor > 0, offset > 0 and dispersion >= 1, got {factor!r}, {offset!r}, "
            f"{dispersion!r}"
        )
    b_bad, b_total = baseline[0] / dispersion, baseline[1] / dispersion
    c_bad, c_total = canary[0] / dispersion, canary[1] / dispersion
    top = (1.0 - offset) / factor
    if top <= 0 or c_total <= 0:
        return 1.0

    def p_canary(b: FloatArray) -> FloatArray:
        rate = np.clip(factor * b + offset, 0.0, 1.0)
        # P(X <= c) for X ~ Bin(n, r) is I_{1 - r}(n - c, c + 1).
        if c_total - c_bad <= 0:
            return np.ones_like(rate)
        return np.asarray(special.betainc(c_total - c_bad, c_bad + 1.0, 1.0 - rate), dtype=float)

    def p_baseline(b: FloatArray) -> FloatArray:
        # P(X >= k) for X ~ Bin(n, b) is I_b(k, n - k + 1).
        return np.asarray(special.betainc(b_bad, b_total - b_bad + 1.0, b), dtype=float)

    if b_bad <= 0 or b_total <= 0:  # the baseline's test never rejects: the sup is at b = 0
        return float(min(1.0, 2.0 * p_canary(np.array([0.0]))[0]))
    return union_pvalue(p_canary=p_canary, p_baseline=p_baseline, estimate=b_bad / b_total, top=top)
