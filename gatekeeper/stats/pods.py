"""Overdispersion of RATIO counts, estimated from the baseline's pods.

Errors cluster by pod and interval: a pod that restarts, a node that is slow, a noisy
neighbour. The canary's share of each interval's bad events then varies more than
binomially, and the split of one version's rate between pods is the one place where that
variation can be measured without the canary's own effect in it. Two components are
estimated from the baseline's pod x interval cells:

- **Within-pod dispersion** ``phi``: the Pearson statistic of the cells around the
  two-way log-linear model ``E[b_ij] = B_i n_ij r_j / sum_k n_ik r_k`` (interval strata
  ``B_i``, exposures ``n_ij``, a relative rate ``r_j`` per pod), fitted by iterative
  proportional fitting, over its degrees of freedom; its upper confidence bound is
  ``X^2 / chi2_{1 - gamma}(df)`` (the scaled chi-square law of the Pearson statistic under
  the quasi-Poisson model; McCullagh and Nelder, Generalized Linear Models, 2nd ed., 1989,
  sec. 4.5.2 and 4.6). Every pod of an interval is a cell, so one interval with events
  across five pods already gives four degrees of freedom.
- **Between-pod variance** ``tau^2``: persistent per-pod effects, a random pod effect on
  the rate (the method-of-moments estimator of DerSimonian and Laird, Controlled Clinical
  Trials 7(3), 1986, on the pods' totals against their expectation under homogeneity,
  with the within-pod variance ``phi`` times Poisson). Such effects do not average out
  over intervals: the canary's pods carry their own draw of them, so the variance of
  ``log R`` never falls below ``tau^2 (1 / k_c + 1 / k_b)`` for ``k`` effective pods a
  side. That floor is carried as an inflation of the dispersion that grows with the
  data (:func:`dispersion_with_floor`).

Assumptions: the canary's pods serve about as many requests each as the baseline's (the
quasi-Poisson ``phi`` is per pod-interval cell), and pod effects are exchangeable between
the versions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import special

from gatekeeper.stats.model import FloatArray, PodCounts

#: One-sided confidence of the upper bound of ``phi``.
DISPERSION_CONFIDENCE = 0.99
_FIT_ITERATIONS = 50
_TINY = 1e-12


@dataclass(frozen=True, slots=True)
class PodDispersion:
    """What the baseline's pods say about the variance of the counts.

    Attributes
    ----------
    phi : float
        Point estimate of the within-pod dispersion (>= 1).
    phi_upper : float
        Its upper confidence bound at :data:`DISPERSION_CONFIDENCE` (>= ``phi``).
    degrees : float
        Effective degrees of freedom of the estimate (0: the pods bound nothing).
    between : float
        ``tau^2``, the variance of a pod's persistent relative rate (>= 0).
    pods : float
        Effective number of baseline pods, ``(sum n_j)^2 / sum n_j^2`` by exposure.
    """

    phi: float
    phi_upper: float
    degrees: float
    between: float
    pods: float


def effective_pods(total: FloatArray) -> float:
    """Effective number of pods of a (intervals, pods) exposure table: 0 without traffic.

    The variance of an exposure-weighted mean of independent pod effects is ``tau^2`` over
    this number (Kish's effective sample size).
    """
    per_pod = total.sum(axis=0)
    square = float(np.dot(per_pod, per_pod))
    return float(per_pod.sum()) ** 2 / square if square > 0 else 0.0


def _fit(bad: FloatArray, total: FloatArray, *, pod_effects: bool) -> FloatArray:
    """Expected cells given each interval's bad events, with or without a rate per pod.

    With ``pod_effects`` the interval x pod log-linear model is fitted by iterative
    proportional fitting (rows and columns of the expected table match the observed ones);
    without, each interval's events are split by exposure alone.
    """
    rows = bad.sum(axis=1, keepdims=True)
    columns = bad.sum(axis=0)
    rate = np.where(columns > 0, 1.0, 0.0) if pod_effects else np.ones_like(columns)
    expected = np.zeros_like(bad)
    for _ in range(_FIT_ITERATIONS if pod_effects else 1):
        weight = total * rate
        norm = weight.sum(axis=1, keepdims=True)
        expected = np.divide(rows * weight, norm, out=np.zeros_like(bad), where=norm > 0)
        fitted = expected.sum(axis=0)
        step = np.divide(columns, fitted, out=np.zeros_like(columns), where=fitted > 0)
        if float(np.max(np.abs(step[columns > 0] - 1.0), initial=0.0)) < 1e-7:
            break
        rate = rate * step
    return expected


def _within(bad: FloatArray, expected: FloatArray, parameters: int) -> tuple[float, float]:
    """Dispersion of the cells around ``expected`` and its effective degrees of freedom.

    The estimate is a ratio of sums, ``sum (O - E)^2 / sum E (1 - s)`` with ``s`` a cell's
    share of its interval (the multinomial variance), rescaled by cells / degrees of
    freedom for the ``parameters`` fitted beyond the intervals: a count-weighted average,
    as the variance of the canary's total split needs when the dispersion grows with the
    counts (log-normal noise). Its degrees of freedom are Kish-weighted, and no more than
    the Satterthwaite degrees ``2 phi^2 / Var(phi)`` with the variance taken from the
    cells themselves, so that heavy-tailed noise widens the bound (Satterthwaite,
    Biometrics Bulletin 2(6), 1946).
    """
    rows_total = expected.sum(axis=1, keepdims=True)
    share = np.divide(expected, rows_total, out=np.zeros_like(expected), where=rows_total > 0)
    weight = expected * (1.0 - share)
    cells = weight > _TINY
    rows = int(np.count_nonzero(cells.any(axis=1)))
    free = int(cells.sum()) - rows
    degrees = free - parameters
    if degrees < 1:
        return 1.0, 0.0
    w = weight[cells]
    squares = (bad[cells] - expected[cells]) ** 2
    ratio = float(squares.sum()) / float(w.sum())
    kish = float(w.sum()) ** 2 / (float(np.dot(w, w)) * w.size)
    spread = float(np.sum((squares - ratio * w) ** 2)) / float(w.sum()) ** 2
    empirical = 2.0 * ratio**2 / spread if spread > 0 else math.inf
    return ratio * free / degrees, min(degrees * kish, empirical * degrees / w.size)


def _between(bad: FloatArray, total: FloatArray, phi: float) -> float:
    """DerSimonian-Laird ``tau^2`` of the pods' relative rates, with variance ``phi`` x Poisson."""
    rows = bad.sum(axis=1, keepdims=True)
    norm = total.sum(axis=1, keepdims=True)
    expected = np.divide(rows * total, norm, out=np.zeros_like(bad), where=norm > 0).sum(axis=0)
    observed = bad.sum(axis=0)
    keep = expected > _TINY
    e, o = expected[keep], observed[keep]
    if e.size < 2:
        return 0.0
    q = float(np.sum((o - e) ** 2 / e))
    scale = float(e.sum() - np.dot(e, e) / e.sum())
    return max(0.0, (q - phi * (e.size - 1)) / scale) if scale > 0 else 0.0


def pod_dispersion(pods: PodCounts) -> PodDispersion:
    """Estimate the within-pod dispersion and the between-pod variance from one side's pods.

    Parameters
    ----------
    pods : PodCounts
        The baseline's counts per interval and pod (never the canary's: its own
        regression would count as noise).

    Returns
    -------
    PodDispersion
        ``phi`` and its upper bound (1 and 1 when the cells leave no degree of freedom),
        ``tau^2`` and the effective number of pods. With a single interval holding events
        the pod effects cannot be told from the noise: both count as dispersion there.

    References
    ----------
    P. McCullagh and J. A. Nelder, Generalized Linear Models, 2nd ed., 1989, sec. 4.5.
    R. DerSimonian and N. Laird, "Meta-analysis in clinical trials", Controlled Clinical
    Trials 7(3), 1986.
    """
    bad, total = pods.bad, pods.total
    busy = bad.sum(axis=1) > 0
    columns = int(np.count_nonzero(bad.sum(axis=0) > 0))
    pod_effects = int(busy.sum()) >= 2 and columns >= 2
    expected = _fit(bad, total, pod_effects=pod_effects)
    phi, degrees = _within(bad, expected, columns - 1 if pod_effects else 0)
    if degrees <= 0:
        return PodDispersion(1.0, 1.0, 0, 0.0, effective_pods(total))
    phi = max(1.0, phi)
    quantile = float(special.chdtri(degrees, DISPERSION_CONFIDENCE))  # its lower tail point
    upper = max(phi, phi * degrees / quantile) if quantile > 0 else math.inf
    between = _between(bad, total, phi) if pod_effects else 0.0
    return PodDispersion(phi, upper, degrees, between, effective_pods(total))


def floor_variance(*, between: float, baseline_pods: float, canary_pods: float) -> float:
    """Variance of ``log R`` that no amount of data removes: ``tau^2 (1/k_c + 1/k_b)``.

    A side whose pods are unknown (0) counts as one pod, the conservative case.
    """
    if between <= 0:
        return 0.0
    return between * (1.0 / max(canary_pods, 1.0) + 1.0 / max(baseline_pods, 1.0))


def dispersion_with_floor(
    *, phi: float, floor: float, canary_bad: float, baseline_bad: float
) -> float:
    """The dispersion that makes the quasi-likelihood variance of ``log R`` at least ``floor``.

    The conditional-binomial variance of ``log R`` is about ``phi (1/C + 1/B)`` for ``C``
    and ``B`` bad events a side; adding ``floor`` to it is the same as using
    ``phi + floor / (1/C + 1/B)`` (half an event added to each side keeps it finite).
    """
    if floor <= 0:
        return phi
    unit = 1.0 / (canary_bad + 0.5) + 1.0 / (baseline_bad + 0.5)
    return phi + floor / unit


def one_pod_note(canary_pods: int) -> str:
    """What a reason says when the canary runs on a single pod ("" otherwise).

    One pod's persistent effect and the new version's effect are the same number: no test
    can separate them, however much traffic the pod serves.
    """
    if canary_pods != 1:
        return ""
    return (
        "one canary pod: this pod and this version cannot be told apart "
        "(three or more canary pods are recommended)"
    )
