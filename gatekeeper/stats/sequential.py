"""Anytime-valid inference over the repeated looks of an analysis.

A controller asks for a verdict every interval. Repeating a fixed-sample test at every
look inflates the false-FAIL rate several-fold; waiting for one fixed window lets a broken
canary hurt users for minutes. Here every look is valid at any time:

- **Counts (RATIO, HISTOGRAM tails)**: e-processes by the method of mixtures. For a
  boundary ``theta0`` of the acceptable region, the likelihood ratio of an alternative
  ``theta`` beyond it against ``theta0`` is, under any truth on the acceptable side, a
  nonnegative supermartingale in the accumulating events; a mixture over a set of
  alternatives is one too, so by Ville's inequality it exceeds ``1 / alpha`` with
  probability at most ``alpha`` at any look, however many looks are taken (Robbins, 1970;
  Johari, Pekelis and Walsh, KDD 2017; Howard, Ramdas, McAuliffe and Sekhon, Annals of
  Statistics 49(2), 2021). For RATIO the likelihood is the stratified conditional binomial
  of :mod:`gatekeeper.stats.rates` (each interval's bad events split between the sides by
  exposure), the same model Lindon, Sanden and Shirikian use for count regressions in
  deployments (KDD 2022) and free of every stratum effect; for tails it is the binomial
  count of canary requests above the boundary quantile. Overdispersion is handled as in
  the fixed-sample tests: the log-likelihood is divided by the dispersion ``phi``
  (quasi-likelihood), which keeps the mixture a supermartingale when the variance of the
  counts is ``phi`` times binomial.
- **Mixing distribution** (:data:`MIXTURES`): any fixed weights keep the e-process valid;
  they decide which regressions it detects fastest, because the e-process pays, roughly,
  the log of the weight it puts near the true effect. A FAIL mixture puts 80 % of its mass
  log-uniformly on the regressions worth stopping a rollout for (RATIO: 1.25x to 12x the
  boundary, 1.5x to 15x the baseline at the default tolerance; tails: 1.1x to 5x the
  expected odds of exceeding the boundary quantile) and 20 % on every regression from 5 %
  to 100x beyond the boundary, so that it is never more than a factor 5 behind a
  log-uniform mixture over that whole span (zero-error baselines, outages). Measured on the
  decision-quality corpus, this two-part mixture stops x3 and x10 error regressions, leaks
  and p99 +100 % tails earlier than the log-uniform mixture over the whole span, at the
  price of a little more evidence on zero-error baselines.
- **VALUES**: a spending function over the looks (a Bonferroni spending of alpha, valid
  whatever the dependence between looks; Lan and DeMets, Biometrika 70(3), 1983): with
  ``planned`` looks half of alpha is spread evenly over them and the other half over any
  extension as ``6 / (pi^2 j^2)``; without a plan all of alpha is spread as
  ``6 / (pi^2 k^2)``.

The anytime-valid p-value of a look is ``min(1, 1 / E)`` for the e-process ``E`` at that
look; it is valid at any stopping time, so Holm's correction across metrics still applies.
The server keeps no state: each call carries its cumulative data and its Look, and the
e-process is recomputed from them.

Assumptions: given each interval's events, the splits are independent across intervals
(conditional independence of the strata), and regressions lie between 5 % and 100x
beyond the boundary (the span of the mixtures), most of them between 1.25x and 12x.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from gatekeeper.stats.model import FloatArray
from gatekeeper.stats.rates import StratifiedCounts, union_pvalue

_BASEL = 6.0 / math.pi**2


@dataclass(frozen=True, slots=True)
class Mixture:
    """A discrete mixing distribution over the alternatives of an e-process.

    Attributes
    ----------
    offsets : ndarray
        Log-offsets of the alternatives from the boundary (on the rate-ratio scale for
        RATIO, the odds scale for tails), all > 0: away from the acceptable side.
    log_weights : ndarray
        Log of each alternative's mixing weight; the weights sum to 1.
    """

    offsets: FloatArray
    log_weights: FloatArray


def log_uniform(*, low: float, high: float, points: int = 48) -> Mixture:
    """Equal weights on ``points`` alternatives spaced log-uniformly from ``low`` to ``high``.

    Parameters
    ----------
    low, high : float
        Smallest and largest factor beyond the boundary, ``1 < low < high``.
    points : int
        Number of alternatives.

    Returns
    -------
    Mixture
        The discretised log-uniform mixing density (Robbins, 1970).
    """
    if not 1.0 < low < high:
        raise ValueError(f"need 1 < low < high, got {low!r} and {high!r}")
    offsets = np.log(np.geomspace(low, high, points))
    return Mixture(offsets, np.full(points, -math.log(points)))


def blend(*, plausible: Mixture, wide: Mixture, share: float) -> Mixture:
    """``share`` of the mass on ``plausible`` alternatives, the rest on ``wide`` ones.

    Parameters
    ----------
    plausible, wide : Mixture
        The two mixing distributions.
    share : float
        Mass of ``plausible``, in (0, 1).

    Returns
    -------
    Mixture
        Their convex combination. Its e-process is the same combination of theirs (an
        e-process too: Vovk and Wang, "E-values: calibration, combination and
        applications", Annals of Statistics 49(3), 2021), so at every look it is at least
        ``share`` times the plausible one and ``1 - share`` times the wide one: nearly as
        fast as the first on the regressions it targets, never more than
        ``1 / (1 - share)`` behind the second on any other.
    """
    if not 0.0 < share < 1.0:
        raise ValueError(f"share must be in (0, 1), got {share!r}")
    return Mixture(
        np.concatenate((plausible.offsets, wide.offsets)),
        np.concatenate(
            (plausible.log_weights + math.log(share), wide.log_weights + math.log1p(-share))
        ),
    )


#: Every regression from 5 % to 100x beyond the boundary, log-uniformly.
_WIDE = log_uniform(low=1.05, high=100.0)
#: The mixtures of each test, by (test, purpose). FAIL: 80 % of the mass on the regressions
#: worth stopping a rollout for quickly (error rates 1.25x to 12x the boundary, that is 1.5x
#: to 15x the baseline at the default tolerance; tail odds 1.1x to 5x the expected 1 - q),
#: 20 % on every regression up to 100x (zero-error baselines, total outages). PASS, centred
#: on the PASS boundary: a healthy canary sits 1 + pass_tolerance inside it (2x for error
#: rates), so the ratio's alternatives run from 5 % to 8x inside, the tail odds' to 10x (a
#: healthy canary's share above 1.5x the baseline quantile is a fraction of 1 - q). "rate_*":
#: one side's own error rate (the absolute PASS margin): the canary's upper bound from 1 %
#: to 1000x away, so that a canary without errors bounds its rate near ``3 / requests``; the
#: baseline's lower bound from 1 % to 4x, where its ample data put it.
MIXTURES = {
    ("ratio", "fail"): blend(plausible=log_uniform(low=1.25, high=12.0), wide=_WIDE, share=0.8),
    ("tail", "fail"): blend(plausible=log_uniform(low=1.1, high=5.0), wide=_WIDE, share=0.8),
    ("ratio", "pass"): log_uniform(low=1.05, high=8.0),
    ("tail", "pass"): log_uniform(low=1.05, high=10.0),
    ("rate_canary", "pass"): log_uniform(low=1.01, high=1000.0, points=64),
    ("rate_baseline", "pass"): log_uniform(low=1.01, high=4.0, points=32),
}
PURPOSES = ("fail", "pass")


def look_alpha(*, alpha: float, index: int, planned: int) -> float:
    """The share of ``alpha`` that look ``index`` (1-based) may spend (VALUES metrics).

    Parameters
    ----------
    alpha : float
        False-FAIL rate of the whole analysis, in (0, 1).
    index : int
        1-based look; >= 1.
    planned : int
        Looks planned (0: unknown).

    Returns
    -------
    float
        The per-look level; the levels of looks 1, 2, ... sum to at most ``alpha``.
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    if index < 1:
        raise ValueError(f"index must be >= 1, got {index!r}")
    if planned < 0:
        raise ValueError(f"planned must be >= 0, got {planned!r}")
    if planned == 0:
        return alpha * _BASEL / index**2
    if index <= planned:
        return 0.5 * alpha / planned
    return 0.5 * alpha * _BASEL / (index - planned) ** 2


def _log_mixture(log_ratios: FloatArray, mixture: Mixture) -> float:
    """log of the mixture of likelihood ratios (one per alternative of ``mixture``)."""
    weighted = log_ratios + mixture.log_weights
    top = float(weighted.max())
    return top + math.log(float(np.exp(weighted - top).sum()))


def _p_from_log_e(log_e: float) -> float:
    return 1.0 if log_e <= 0 else math.exp(-log_e)


def ratio_pvalue(
    *, counts: StratifiedCounts, ratio: float, alternative: str, purpose: str = "fail"
) -> float:
    """Anytime-valid p-value of ``H0: R <= ratio`` ("greater") or ``R >= ratio`` ("less").

    Parameters
    ----------
    counts : StratifiedCounts
        Cumulative strata of the analysis so far (:func:`gatekeeper.stats.rates.stratify`).
    ratio : float
        The boundary rate ratio, > 0.
    alternative : {"greater", "less"}
        Which side the alternatives lie on.
    purpose : {"fail", "pass"}
        Which mixture of alternatives (:data:`MIXTURES`: regressions, or healthy canaries);
        any fixed mixture keeps the p-value valid, the right one makes it powerful.

    Returns
    -------
    float
        ``min(1, 1 / E)`` for the mixture e-process ``E`` of the stratified conditional
        likelihood ratios, tempered by the dispersion; 1 without events.

    References
    ----------
    H. Robbins, "Statistical methods related to the law of the iterated logarithm", Annals
    of Mathematical Statistics 41(5), 1970. M. Lindon, C. Sanden and V. Shirikian, "Rapid
    regression detection in software deployments through sequential testing", KDD 2022.
    """
    if alternative not in ("greater", "less"):
        raise ValueError(f"alternative must be one of 'greater', 'less', got {alternative!r}")
    if purpose not in PURPOSES:
        raise ValueError(f"purpose must be one of 'fail', 'pass', got {purpose!r}")
    if not ratio > 0:
        raise ValueError(f"ratio must be > 0, got {ratio!r}")
    c, x, w = counts.canary_bad, counts.pooled_bad, counts.exposure
    keep = x > 0
    if not keep.any():
        return 1.0
    c, x, w = c[keep], x[keep], w[keep]
    sign = 1.0 if alternative == "greater" else -1.0
    mixture = MIXTURES["ratio", purpose]
    alternatives = ratio * np.exp(sign * mixture.offsets)[:, None]  # (G, 1)
    log_p0 = np.log(ratio * w) - np.log1p(ratio * w)  # log pi_i(R0)
    log_q0 = -np.log1p(ratio * w)  # log (1 - pi_i(R0))
    log_p = np.log(alternatives * w) - np.log1p(alternatives * w)
    log_q = -np.log1p(alternatives * w)
    log_lr = (c * (log_p - log_p0) + (x - c) * (log_q - log_q0)).sum(axis=1) / counts.dispersion
    return _p_from_log_e(_log_mixture(log_lr, mixture))


def binomial_pvalue(
    *, successes: float, trials: float, p0: float, alternative: str, purpose: str = "fail"
) -> float:
    """Anytime-valid p-value of ``H0: p <= p0`` ("greater") or ``p >= p0`` ("less").

    Parameters
    ----------
    successes, trials : float
        Cumulative counts (non-integer after a design-effect deflation).
    p0 : float
        The boundary probability, in (0, 1).
    alternative : {"greater", "less"}
        Which side the alternatives lie on; they are spread on the odds scale.
    purpose : {"fail", "pass"}
        Which mixture of alternatives (see :func:`ratio_pvalue`).

    Returns
    -------
    float
        ``min(1, 1 / E)`` for the mixture of binomial likelihood ratios.
    """
    if alternative not in ("greater", "less"):
        raise ValueError(f"alternative must be one of 'greater', 'less', got {alternative!r}")
    if purpose not in PURPOSES:
        raise ValueError(f"purpose must be one of 'fail', 'pass', got {purpose!r}")
    if not 0.0 < p0 < 1.0:
        raise ValueError(f"p0 must be in (0, 1), got {p0!r}")
    if trials <= 0:
        return 1.0
    log_e = _binomial_log_e(successes, trials, p0, alternative, MIXTURES["tail", purpose])
    return _p_from_log_e(float(log_e[0]))


def _binomial_log_e(
    successes: float, trials: float, p0: float | FloatArray, alternative: str, mixture: Mixture
) -> FloatArray:
    """log of the mixture e-process of binomial likelihood ratios against each ``p0``."""
    sign = 1.0 if alternative == "greater" else -1.0
    base = np.atleast_1d(np.asarray(p0, dtype=float))[None, :]  # (1, K)
    odds = base / (1.0 - base) * np.exp(sign * mixture.offsets)[:, None]  # (G, K)
    p = odds / (1.0 + odds)
    failures = trials - successes
    log_lr = successes * (np.log(p) - np.log(base)) + failures * (np.log1p(-p) - np.log1p(-base))
    weighted = log_lr + mixture.log_weights[:, None]
    top = weighted.max(axis=0)
    return np.asarray(top + np.log(np.exp(weighted - top).sum(axis=0)), dtype=float)


def _p_from_log_es(log_e: FloatArray) -> FloatArray:
    return np.asarray(np.where(log_e <= 0, 1.0, np.exp(-np.maximum(log_e, 0.0))), dtype=float)


def rate_margin_pvalue(
    *,
    baseline: tuple[float, float],
    canary: tuple[float, float],
    factor: float,
    offset: float,
    dispersion: float = 1.0,
) -> float:
    """Anytime-valid p-value of ``H0: canary rate >= factor x baseline rate + offset``.

    Small when the canary's rate is shown below the boundary: the PASS test of a RATIO
    metric with an absolute margin (for DECREASE call it with the sides' roles swapped).

    Parameters
    ----------
    baseline, canary : (float, float)
        Cumulative (bad, total) of each side.
    factor : float
        The relative part of the boundary, ``1 + pass_tolerance`` (> 0).
    offset : float
        The absolute part, ``pass_absolute_tolerance`` (> 0).
    dispersion : float
        Variance inflation of the counts (>= 1); both sides' counts are divided by it.

    Returns
    -------
    float
        ``min(1, 2 sup_b min(p_c(factor b + offset), p_b(b)))``: ``p_c(r)`` is the anytime
        p-value of "the canary's rate is >= r", ``p_b(b)`` that of "the baseline's rate is
        <= b", each a mixture e-process of one side's binomial likelihood (Robbins, 1970;
        the one-sample confidence sequences of Howard, Ramdas, McAuliffe and Sekhon, Annals
        of Statistics 49(2), 2021). Under H0 at true rates ``(b, c)`` the boundary point
        ``(b, factor b + offset)`` has ``factor b + offset <= c``, so a rejection needs one
        of two valid tests at ``beta / 2`` to reject a true null: a union bound, valid at
        every look.

    Notes
    -----
    Along the boundary ``p_c`` falls and ``p_b`` rises with ``b``, so on a grid
    ``b_0 < ... < b_K`` the supremum is at most the largest ``min(p_c(b_i), p_b(b_{i+1}))``
    (with ``p_c(0)`` below the grid and ``p_c(b_K)`` above it): an upper bound, so the test
    stays valid whatever the grid. Each side's rate is taken as constant over the analysis
    (no strata).
    """
    if not (factor > 0 and offset > 0 and dispersion >= 1.0):
        raise ValueError(
            f"need factor > 0, offset > 0 and dispersion >= 1, got {factor!r}, {offset!r}, "
            f"{dispersion!r}"
        )
    b_bad, b_total = baseline[0] / dispersion, baseline[1] / dispersion
    c_bad, c_total = canary[0] / dispersion, canary[1] / dispersion
    top = (1.0 - offset) / factor  # largest baseline rate with a boundary below 1
    if top <= 0 or c_total <= 0:
        return 1.0
    canary_mixture = MIXTURES["rate_canary", "pass"]
    if b_bad <= 0 or b_total <= 0:  # p_b is 1 throughout: the sup is p_c's at b = 0
        p0 = _binomial_log_e(c_bad, c_total, offset, "less", canary_mixture)
        return float(min(1.0, 2.0 * _p_from_log_es(p0)[0]))
    baseline_mixture = MIXTURES["rate_baseline", "pass"]

    def p_canary(b: FloatArray) -> FloatArray:
        return _p_from_log_es(
            _binomial_log_e(c_bad, c_total, factor * b + offset, "less", canary_mixture)
        )

    def p_baseline(b: FloatArray) -> FloatArray:
        return _p_from_log_es(_binomial_log_e(b_bad, b_total, b, "greater", baseline_mixture))

    return union_pvalue(p_canary=p_canary, p_baseline=p_baseline, estimate=b_bad / b_total, top=top)


def ratio_confidence_sequence(
    *,
    counts: StratifiedCounts,
    alpha_lower: float,
    alpha_upper: float,
    purposes: tuple[str, str] = ("fail", "pass"),
) -> tuple[float, float]:
    """Anytime-valid bounds of the rate ratio: the boundaries no look could reject yet.

    ``purposes`` names the mixture of each bound's test (see :func:`ratio_pvalue`): the
    bound that decides FAIL uses the FAIL mixture, so that it crosses the boundary exactly when the
    FAIL test rejects.

    Returns
    -------
    (float, float)
        The smallest ``R0`` the "greater" e-process does not reject at ``alpha_lower`` and
        the largest the "less" one does not reject at ``alpha_upper`` (0 and +inf when the
        data do not bound the ratio), found by bisection on ``log R0``.
    """

    def edge(alternative: str, level: float, purpose: str) -> float:
        def rejected(log_r: float) -> bool:
            p = ratio_pvalue(
                counts=counts, ratio=math.exp(log_r), alternative=alternative, purpose=purpose
            )
            return p <= level

        lo, hi = -30.0, 30.0
        if alternative == "greater":
            if not rejected(lo):
                return 0.0
            if rejected(hi):
                return math.inf
        else:
            if not rejected(hi):
                return math.inf
            if rejected(lo):
                return 0.0
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            if rejected(mid) == (alternative == "greater"):
                lo = mid
            else:
                hi = mid
            if hi - lo < 1e-6:
                break
        return math.exp(hi if alternative == "greater" else lo)

    return edge("greater", alpha_lower, purposes[0]), edge("less", alpha_upper, purposes[1])
