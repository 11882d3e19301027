"""Emulation of R's two-sample ``wilcox.test`` as NetflixACAJudge uses it.

The call emulated is ``wilcox.test(x = canary, y = baseline, conf.int = TRUE,
exact = FALSE, correct = TRUE)``: the normal approximation of the rank-sum test with the
tie and continuity corrections, and the confidence interval and location estimate that R
finds by inverting that approximation with its root finder ``uniroot`` (R's C routine
``zeroin2``, Brent's method) at absolute tolerance 1e-4.

Kayenta's ``kayenta-mannwhitney`` module (``MannWhitney.scala``, ``KayentaBrentSolver.java``)
ports the same computation to the JVM and its ``MannWhitneySuite.scala`` ties it out with R.
Because the root finder stops at 1e-4, the interval is only as exact as that tolerance: on
heavily tied data its lower end can even exceed its upper end, and this module reproduces
such results exactly rather than "fixing" them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import special

from gatekeeper.stats.model import FloatArray

#: Absolute tolerance R's ``wilcox.test`` passes to ``uniroot``.
R_UNIROOT_TOL = 1e-4
#: Default iteration limit of R's ``uniroot``.
R_UNIROOT_MAXITER = 1000
_DBL_EPSILON = float(np.finfo(np.float64).eps)


class WilcoxonError(ValueError):
    """The test cannot be computed on these data (R stops with an error here)."""


@dataclass(frozen=True, slots=True)
class WilcoxonIntermediates:
    """The quantities R computes on its way to the confidence interval.

    ``f_*`` are values of ``wdiff`` (see :func:`wdiff`) at the ends of the search interval
    ``[mumin, mumax]``, for the quantile of the lower bound (``zq_lower``, positive) and of
    the upper bound (``zq_upper``, negative).
    """

    mumin: float
    mumax: float
    zq_lower: float
    zq_upper: float
    f_mumin_zq_lower: float
    f_mumax_zq_lower: float
    f_mumin_zq_upper: float
    f_mumax_zq_upper: float


@dataclass(frozen=True, slots=True)
class WilcoxonResult:
    """Result of :func:`wilcox_test`.

    ``estimate``, ``lower`` and ``upper`` are on the scale of a location shift
    canary - baseline, in the metric's unit. ``lower`` may exceed ``upper`` on heavily
    tied data (see the module docstring).
    """

    statistic: float  #: R's ``W``: rank sum of the canary minus n(n+1)/2
    p_value: float  #: two-sided, normal approximation with tie and continuity correction
    estimate: float  #: R's "difference in location"
    lower: float
    upper: float
    confidence: float
    intermediates: WilcoxonIntermediates


def _as_sample(values: ArrayLike, name: str) -> FloatArray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"{name} must be a one-dimensional sequence of numbers")
    if array.size == 0:
        raise ValueError(f"{name} must hold at least one observation")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must hold finite numbers only (remove NaN first)")
    return array


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in the open interval (0, 1), got {confidence!r}")


def average_ranks(values: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Ranks with ties averaged (R's ``rank``), and the sizes of the tie groups.

    Parameters
    ----------
    values : ndarray
        Finite numbers.

    Returns
    -------
    ranks : ndarray
        1-based ranks; tied values share the mean of their ranks.
    tie_sizes : ndarray
        Number of observations of each distinct value (R's ``table(rank(...))``).
    """
    n = values.shape[0]
    order = np.argsort(values, kind="mergesort")
    ordered = values[order]
    is_start = np.empty(n, dtype=bool)
    is_start[:1] = True
    np.not_equal(ordered[1:], ordered[:-1], out=is_start[1:])
    starts = np.flatnonzero(is_start)
    ends = np.append(starts[1:], n)
    sizes = ends - starts
    ranks = np.empty(n, dtype=np.float64)
    ranks[order] = np.repeat((starts + ends + 1) / 2.0, sizes)
    return ranks, sizes.astype(np.float64)


def _rank_sum_z(
    canary: FloatArray, baseline: FloatArray, shift: float, *, correct: bool
) -> tuple[float, float, float]:
    """Return (W, numerator of z with continuity correction, sigma with tie correction)."""
    n_x = float(canary.shape[0])
    n_y = float(baseline.shape[0])
    ranks, ties = average_ranks(np.concatenate((canary - shift, baseline)))
    rank_sum = float(np.sum(ranks[: canary.shape[0]]))
    w = rank_sum - n_x * (n_x + 1) / 2
    dz = rank_sum - n_x * (n_x + 1) / 2 - n_x * n_y / 2
    correction = float(np.sign(dz)) * 0.5 if correct else 0.0
    tie_term = float(np.sum(ties**3 - ties))
    sigma = math.sqrt(
        (n_x * n_y / 12) * ((n_x + n_y + 1) - tie_term / ((n_x + n_y) * (n_x + n_y - 1)))
    )
    return w, dz - correction, sigma


def wdiff(
    *, canary: ArrayLike, baseline: ArrayLike, d: float, zq: float, correct: bool = True
) -> float:
    """R's ``wdiff(d, zq)``: standardised rank sum of ``canary - d`` vs ``baseline``, minus ``zq``.

    Its root in ``d`` for ``zq`` = a normal quantile is a confidence bound of the shift;
    for ``zq = 0`` it is the location estimate.

    Parameters
    ----------
    canary, baseline : array_like
        The two samples (R's ``x`` and ``y``), finite, not empty.
    d : float
        The shift subtracted from the canary.
    zq : float
        The normal quantile subtracted from the standardised statistic.
    correct : bool
        Apply the continuity correction ``sign(dz) / 2`` (R's ``correct = TRUE``).

    Returns
    -------
    float
        ``(dz - correction) / sigma - zq``.

    Raises
    ------
    WilcoxonError
        When every observation of ``c(canary - d, baseline)`` is tied (sigma = 0).
    """
    x = _as_sample(canary, "canary")
    y = _as_sample(baseline, "baseline")
    return _wdiff(x, y, d, zq, correct=correct)


def _wdiff(x: FloatArray, y: FloatArray, d: float, zq: float, *, correct: bool) -> float:
    _, numerator, sigma = _rank_sum_z(x, y, d, correct=correct)
    if sigma == 0:
        raise WilcoxonError(
            "canary and baseline: cannot compute confidence interval when all observations are tied"
        )
    return numerator / sigma - zq


def normal_quantile(p: float) -> float:
    """Quantile of the standard normal distribution (R's ``qnorm(p)``)."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must lie in [0, 1], got {p!r}")
    return float(special.ndtri(p))


def r_zeroin(
    f: Callable[[float], float],
    *,
    lower: float,
    upper: float,
    f_lower: float,
    f_upper: float,
    tol: float = R_UNIROOT_TOL,
    maxiter: int = R_UNIROOT_MAXITER,
) -> float:
    """Brent's root finder exactly as R's ``uniroot`` runs it (C routine ``R_zeroin2``).

    The arithmetic follows Brent (1973), chapter 4, in the formulation of netlib's
    ``zeroin.c`` that R ships: secant or inverse quadratic interpolation where it stays
    inside the bracket, bisection otherwise, and a stop once half the bracket is within
    ``2 * DBL_EPSILON * |b| + tol / 2``. Reproducing it step by step matters because the
    root is only accurate to ``tol``; Kayenta's suites compare against R's numbers.

    Parameters
    ----------
    f : callable
        The function; ``f_lower`` and ``f_upper`` must have opposite signs (or one is 0).
    lower, upper : float
        The bracket.
    f_lower, f_upper : float
        ``f(lower)``, ``f(upper)``, already computed (R passes them in too).
    tol : float
        Absolute tolerance, > 0.
    maxiter : int
        Iteration limit; on reaching it the last approximation is returned (R warns).

    Returns
    -------
    float
        The approximate root.
    """
    if tol <= 0:
        raise ValueError(f"tol must be > 0, got {tol!r}")
    if maxiter < 1:
        raise ValueError(f"maxiter must be >= 1, got {maxiter!r}")
    if f_lower * f_upper > 0:
        raise WilcoxonError("f() values at end points not of opposite sign")
    a, b = lower, upper
    fa, fb = f_lower, f_upper
    c, fc = a, fa
    if fa == 0.0:
        return a
    if fb == 0.0:
        return b
    for _ in range(maxiter + 1):
        prev_step = b - a
        if abs(fc) < abs(fb):
            # Keep b the best approximation so far.
            a, b, c = b, c, b
            fa, fb, fc = fb, fc, fb
        tol_act = 2 * _DBL_EPSILON * abs(b) + tol / 2
        new_step = (c - b) / 2
        if abs(new_step) <= tol_act or fb == 0.0:
            return b
        if abs(prev_step) >= tol_act and abs(fa) > abs(fb):
            cb = c - b
            if a == c:
                # Two distinct points: secant step.
                t1 = fb / fa
                p = cb * t1
                q = 1.0 - t1
            else:
                # Inverse quadratic interpolation.
                q = fa / fc
                t1 = fb / fc
                t2 = fb / fa
                p = t2 * (cb * q * (q - t1) - (b - a) * (t1 - 1.0))
                q = (q - 1.0) * (t1 - 1.0) * (t2 - 1.0)
            if p > 0.0:
                q = -q
            else:
                p = -p
            if p < (0.75 * cb * q - abs(tol_act * q) / 2) and p < abs(prev_step * q / 2):
                new_step = p / q
        if abs(new_step) < tol_act:
            new_step = tol_act if new_step > 0 else -tol_act
        a, fa = b, fb
        b += new_step
        fb = f(b)
        if (fb > 0 and fc > 0) or (fb < 0 and fc < 0):
            c, fc = a, fa
    return b


def _uniroot_wdiff(
    x: FloatArray, y: FloatArray, lower: float, upper: float, zq: float, *, correct: bool
) -> float:
    def f(d: float) -> float:
        return _wdiff(x, y, d, zq, correct=correct)

    return r_zeroin(f, lower=lower, upper=upper, f_lower=f(lower), f_upper=f(upper))


def uniroot_wdiff(
    *, canary: ArrayLike, baseline: ArrayLike, zq: float, correct: bool = True
) -> float:
    """R's ``uniroot(wdiff, c(mumin, mumax), tol = 1e-4, zq = zq)$root``.

    ``mumin = min(canary) - max(baseline)`` and ``mumax = max(canary) - min(baseline)``.
    :func:`wilcox_test` finds its estimate this way with ``zq = 0`` and ``correct=False``;
    the R script of Kayenta's ``MannWhitneySuite.scala`` ("tie out intermediate
    variables") kept ``correct = TRUE`` for it, which this function can reproduce.

    Parameters
    ----------
    canary, baseline : array_like
        The samples, finite, not empty.
    zq : float
        Quantile subtracted in :func:`wdiff`.
    correct : bool
        Continuity correction inside :func:`wdiff`.

    Returns
    -------
    float
        The root, to R's tolerance 1e-4.

    Raises
    ------
    WilcoxonError
        If ``wdiff`` has the same sign at both ends, or all observations are tied.
    """
    x = _as_sample(canary, "canary")
    y = _as_sample(baseline, "baseline")
    return _uniroot_wdiff(
        x, y, float(x.min() - y.max()), float(x.max() - y.min()), zq, correct=correct
    )


def wilcox_test(
    *, canary: ArrayLike, baseline: ArrayLike, confidence: float = 0.95
) -> WilcoxonResult:
    """Two-sided rank-sum test of canary against baseline, with R's interval and estimate.

    Emulates ``wilcox.test(x = canary, y = baseline, conf.int = TRUE, conf.level =
    confidence, exact = FALSE, correct = TRUE)`` (R, ``src/library/stats/R/wilcox.test.R``),
    as Kayenta's ``MannWhitney.scala`` does for the MannWhitneyClassifier.

    Parameters
    ----------
    canary, baseline : array_like
        The samples (R's ``x`` and ``y``; Kayenta's experiment and control), finite, not empty.
    confidence : float
        Confidence level of the two-sided interval, in (0, 1).

    Returns
    -------
    WilcoxonResult
        Statistic, p-value, estimate, interval and the intermediate values.

    Raises
    ------
    ValueError
        On empty or non-finite samples or a confidence outside (0, 1).
    WilcoxonError
        When all observations are tied (R: "cannot compute confidence interval when all
        observations are tied").

    Notes
    -----
    The p-value uses ``z = (W - n m / 2 - sign(.) / 2) / sigma`` with the tie-corrected
    sigma. The bounds are the roots of ``wdiff(d, +z_{alpha/2})`` (lower) and
    ``wdiff(d, -z_{alpha/2})`` (upper) on ``[min(x) - max(y), max(x) - min(y)]``, or that
    interval's end where ``wdiff`` does not change sign. The estimate is the root of
    ``wdiff(d, 0)`` without the continuity correction (R sets ``correct <- FALSE`` first).
    """
    _check_confidence(confidence)
    x = _as_sample(canary, "canary")
    y = _as_sample(baseline, "baseline")

    w, numerator, sigma = _rank_sum_z(x, y, 0.0, correct=True)
    if sigma == 0:
        raise WilcoxonError(
            "canary and baseline: cannot compute confidence interval when all observations are tied"
        )
    z = numerator / sigma
    p_value = float(2 * min(special.ndtr(z), special.ndtr(-z)))

    alpha = 1.0 - confidence
    mumin = float(x.min() - y.max())
    mumax = float(x.max() - y.min())
    zq_upper = normal_quantile(alpha / 2)
    zq_lower = -zq_upper

    def with_correction(zq: float) -> Callable[[float], float]:
        return lambda d: _wdiff(x, y, d, zq, correct=True)

    f_lo_lo = _wdiff(x, y, mumin, zq_lower, correct=True)
    f_hi_lo = _wdiff(x, y, mumax, zq_lower, correct=True)
    f_lo_up = _wdiff(x, y, mumin, zq_upper, correct=True)
    f_hi_up = _wdiff(x, y, mumax, zq_upper, correct=True)

    def bound(zq: float, f_lo: float, f_hi: float) -> float:
        if f_lo <= 0:
            return mumin
        if f_hi >= 0:
            return mumax
        return r_zeroin(with_correction(zq), lower=mumin, upper=mumax, f_lower=f_lo, f_upper=f_hi)

    lower = bound(zq_lower, f_lo_lo, f_hi_lo)
    upper = bound(zq_upper, f_lo_up, f_hi_up)

    estimate = _uniroot_wdiff(x, y, mumin, mumax, 0.0, correct=False)
    return WilcoxonResult(
        statistic=w,
        p_value=p_value,
        estimate=estimate,
        lower=lower,
        upper=upper,
        confidence=confidence,
        intermediates=WilcoxonIntermediates(
            mumin=mumin,
            mumax=mumax,
            zq_lower=zq_lower,
            zq_upper=zq_upper,
            f_mumin_zq_lower=f_lo_lo,
            f_mumax_zq_lower=f_hi_lo,
            f_mumin_zq_upper=f_lo_up,
            f_mumax_zq_upper=f_hi_up,
        ),
    )
