"""The oracle SPRT: when a test that knows the true regression would roll a canary back.

The speed anchor of the decision-quality benchmark (see ``benchmarks/README.md``).
Wald's sequential probability ratio test of the FAIL boundary (the null: the canary is
exactly at baseline x (1 + tolerance), the boundary the gatekeeper tests) against the
canary's *true* regression (the alternative, known to the oracle because the traffic is
simulated). Among all tests of the same null and alternative with the same error rates,
Wald's test needs the fewest observations on average (Wald and Wolfowitz, 1948, for its
two-boundary form), and a judge does not even know the alternative: no valid judge can be
expected to roll back a canary with fewer bad requests.

The oracle is one-sided and open-ended: it only ever FAILs, at the first look where the
cumulative log-likelihood ratio reaches ``log(1 / alpha)``. Under the null the likelihood
ratio is a non-negative martingale of mean 1, so by Ville's inequality it reaches
``1 / alpha`` with probability at most ``alpha`` at any look: the oracle spends its alpha
exactly as an anytime-valid judge does. Where the true regression is not beyond the
boundary (a leak's first minutes, a tail on the boundary) the alternative is the boundary
itself and the look adds nothing: a ratio against a smaller alternative would grow on a
canary *better* than the boundary, which is no evidence of harm. With every alternative at
or beyond the boundary the ratio is monotone in the canary's bad events, so it is a
supermartingale for every canary at or inside the boundary, the FAIL test's whole null.

Per interval, the likelihoods are those of the data the judge sees:

- RATIO (errors / requests): conditional on the interval's bad events of both sides, the
  canary's share of them is binomial with ``p = r w / (r w + 1)``, ``w`` the canary's
  requests over the baseline's and ``r`` the rate ratio (the stratified conditional test of
  two Poisson rates; Cox and Hinkley, 1974, sec. 5.2). The baseline's rate cancels.
- HISTOGRAM tails: the canary's requests above the boundary threshold are binomial with the
  share ``1 - q`` at the FAIL boundary and the canary's true share above it otherwise.

Pure functions of numpy arrays: nothing here knows the simulator or the corpus.

References
----------
A. Wald, "Sequential tests of statistical hypotheses", Annals of Mathematical Statistics
16(2), 117-186, 1945.
A. Wald and J. Wolfowitz, "Optimum character of the sequential probability ratio test",
Annals of Mathematical Statistics 19(3), 326-339, 1948.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import special

from gatekeeper.stats.classify import holm_levels

FloatArray = NDArray[np.float64]


@dataclass(frozen=True, slots=True, eq=False)
class Sprt:
    """The oracle's path over the looks of one rollout.

    ``llr``: the cumulative log-likelihood ratio after each look (one look per interval).
    ``threshold``: ``log(1 / alpha)``. ``look``: the 1-based look at which ``llr`` first
    reaches the threshold (the oracle FAILs there), ``None`` when it never does.
    """

    llr: FloatArray
    threshold: float
    look: int | None

    @property
    def failed(self) -> bool:
        """Whether the oracle rolled the canary back within the looks it had."""
        return self.look is not None


def metric_alpha(*, alpha: float, metrics: int) -> float:
    """The level of the regressed metric's FAIL test after Holm's correction.

    Parameters
    ----------
    alpha : float
        The spec's false-FAIL rate per analysis.
    metrics : int
        Decisive metrics of the verdict (Holm's family).

    Returns
    -------
    float
        The level Holm's step-down procedure gives the hypothesis with the smallest
        p-value, ``alpha / metrics``: the one the regressed metric is tested at when the
        other metrics are healthy (the gatekeeper's own :func:`holm_levels`).

    References
    ----------
    S. Holm, "A simple sequentially rejective multiple test procedure", Scandinavian
    Journal of Statistics 6(2), 1979.
    """
    if metrics < 1:
        raise ValueError(f"metrics must be >= 1, got {metrics}")
    return holm_levels([0.0] + [1.0] * (metrics - 1), alpha)[0]


def _binomial_llr(
    *, hits: FloatArray, trials: FloatArray, p_alt: FloatArray, p_null: FloatArray
) -> FloatArray:
    """log L(p_alt) - log L(p_null) of ``hits`` out of ``trials``, elementwise (0 log 0 = 0)."""
    misses = trials - hits
    alt = special.xlogy(hits, p_alt) + special.xlog1py(misses, -p_alt)
    null = special.xlogy(hits, p_null) + special.xlog1py(misses, -p_null)
    return np.asarray(alt - null, dtype=float)


def ratio_llr(
    *,
    baseline_bad: ArrayLike,
    baseline_total: ArrayLike,
    canary_bad: ArrayLike,
    canary_total: ArrayLike,
    boundary: float,
    ratio: ArrayLike,
) -> FloatArray:
    """Per-interval log-likelihood ratio of a RATIO metric: true rate ratio against the boundary.

    Parameters
    ----------
    baseline_bad, baseline_total, canary_bad, canary_total : array_like
        Bad events and requests of each side, per interval.
    boundary : float
        The FAIL boundary as a rate ratio, ``1 + tolerance`` (the null).
    ratio : array_like
        The canary's true rate ratio per interval (or one for all): the alternative;
        ``inf`` when the baseline truly has no bad events.

    Returns
    -------
    numpy.ndarray
        One log-likelihood ratio per interval of the canary's share of the interval's bad
        events, binomial with ``p = r w / (r w + 1)`` (``w``: canary over baseline
        requests) at ``r = max(ratio, boundary)`` against ``r = boundary``; 0 for an
        interval without bad events or without requests on a side (it carries no
        information on ``r``) and where ``ratio`` is at or inside the boundary.

    References
    ----------
    A. Wald, "Sequential tests of statistical hypotheses", Annals of Mathematical
    Statistics 16(2), 1945 (the probability ratio); D. R. Cox and D. V. Hinkley,
    Theoretical Statistics, 1974, sec. 5.2 (the conditional binomial of two Poisson counts).
    """
    b_bad = np.asarray(baseline_bad, dtype=float)
    c_bad = np.asarray(canary_bad, dtype=float)
    b_total = np.asarray(baseline_total, dtype=float)
    c_total = np.asarray(canary_total, dtype=float)
    alt = np.broadcast_to(np.asarray(ratio, dtype=float), c_bad.shape)
    if not boundary > 0:
        raise ValueError(f"boundary must be > 0, got {boundary}")
    if np.any(~(alt >= 0)):
        raise ValueError("ratio must be >= 0 (inf: a baseline without bad events)")
    alt = np.maximum(alt, boundary)  # no evidence of harm inside the boundary
    keep = (b_total > 0) & (c_total > 0) & (b_bad + c_bad > 0)
    w = c_total[keep] / b_total[keep]
    p_null = boundary * w / (boundary * w + 1.0)
    with np.errstate(invalid="ignore"):  # an infinite ratio: every bad event is the canary's
        p_alt = np.where(np.isinf(alt[keep]), 1.0, alt[keep] * w / (alt[keep] * w + 1.0))
    llr = np.zeros_like(c_bad)
    llr[keep] = _binomial_llr(
        hits=c_bad[keep], trials=b_bad[keep] + c_bad[keep], p_alt=p_alt, p_null=p_null
    )
    return llr


def tail_llr(
    *, canary_above: ArrayLike, canary_total: ArrayLike, boundary_share: float, share: float
) -> FloatArray:
    """Per-interval log-likelihood ratio of a tail: the canary's true share above the threshold.

    Parameters
    ----------
    canary_above, canary_total : array_like
        Canary requests above the boundary threshold (the baseline's q-quantile x
        (1 + tolerance), on a bucket bound at or above it), and all canary requests, per
        interval.
    boundary_share : float
        The share above the threshold at the FAIL boundary, ``1 - q`` (the null).
    share : float
        The canary's true share above the threshold (the alternative).

    Returns
    -------
    numpy.ndarray
        One binomial log-likelihood ratio per interval, of ``max(share, boundary_share)``
        against ``boundary_share`` (0 everywhere when the share is not beyond it).

    References
    ----------
    A. Wald, "Sequential tests of statistical hypotheses", Annals of Mathematical
    Statistics 16(2), 1945.
    """
    for name, value in (("boundary_share", boundary_share), ("share", share)):
        if not 0.0 < value < 1.0:
            raise ValueError(f"{name} must be in (0, 1), got {value}")
    above = np.asarray(canary_above, dtype=float)
    total = np.asarray(canary_total, dtype=float)
    return _binomial_llr(
        hits=above,
        trials=total,
        p_alt=np.full_like(total, max(share, boundary_share)),
        p_null=np.full_like(total, boundary_share),
    )


def sprt(*, increments: ArrayLike, alpha: float) -> Sprt:
    """Wald's one-sided SPRT over per-look log-likelihood ratios: FAIL at ``log(1 / alpha)``.

    Parameters
    ----------
    increments : array_like
        The log-likelihood ratio each look adds (the data since the previous look).
    alpha : float
        The level of the FAIL test (after Holm's correction, :func:`metric_alpha`).

    Returns
    -------
    Sprt
        The cumulative path and the first look at which it reaches ``log(1 / alpha)``.

    References
    ----------
    A. Wald, "Sequential tests of statistical hypotheses", Annals of Mathematical
    Statistics 16(2), 1945 (the boundary ``A <= (1 - beta) / alpha``; with no acceptance
    boundary, ``1 / alpha`` bounds the false-FAIL rate by Ville's inequality).
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    llr = np.cumsum(np.asarray(increments, dtype=float))
    threshold = math.log(1.0 / alpha)
    crossed = np.flatnonzero(llr >= threshold)
    look = int(crossed[0]) + 1 if crossed.size else None
    return Sprt(llr=llr, threshold=threshold, look=look)
