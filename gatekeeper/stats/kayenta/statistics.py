"""Descriptive statistics and effect sizes of NetflixACAJudge.

Kayenta sources: ``kayenta-judge/.../judge/stats/DescriptiveStatistics.scala`` (summary,
percentile) and ``.../judge/stats/EffectSizes.scala`` (mean ratio, Cohen's d, CLES), built
on Apache Commons Math (``StatUtils``, ``Percentile``, ``NaturalRanking``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from gatekeeper.stats.kayenta.r_wilcox import average_ranks
from gatekeeper.stats.model import FloatArray
from gatekeeper.stats.preprocess import percentile_r7


def _as_values(values: ArrayLike, name: str) -> FloatArray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"{name} must be a one-dimensional sequence of numbers")
    return array


def _require_non_empty(values: FloatArray, name: str) -> None:
    if values.size == 0:
        raise ValueError(f"{name} must hold at least one observation")


@dataclass(frozen=True, slots=True)
class SummaryStatistics:
    """Kayenta's ``MetricStatistics``: min, max, mean, sample standard deviation, count."""

    min: float
    max: float
    mean: float
    std: float
    count: int


def percentile(values: ArrayLike, p: float) -> float:
    """The ``p``-th percentile by linear interpolation (Hyndman and Fan type 7, R's default).

    Parameters
    ----------
    values : array_like
        Samples.
    p : float
        Percent, in [0, 100].

    Returns
    -------
    float
        The percentile; NaN for an empty sample (as Apache Commons Math's ``Percentile``).

    Notes
    -----
    Kayenta's ``DescriptiveStatistics.percentile`` uses Apache's ``Percentile`` with the
    R-7 estimation type; this delegates to :func:`gatekeeper.stats.preprocess.percentile_r7`.
    """
    if not 0.0 <= p <= 100.0:
        raise ValueError(f"p must lie in [0, 100] (a percent), got {p!r}")
    array = _as_values(values, "values")
    if array.size == 0:
        return math.nan
    return percentile_r7(array, p / 100.0)


def summary(values: ArrayLike) -> SummaryStatistics:
    """Min, max, mean, sample standard deviation and count (all zero for no data).

    Parameters
    ----------
    values : array_like
        Samples, without NaN.

    Returns
    -------
    SummaryStatistics
        The standard deviation is the bias-corrected one (divisor n - 1) and 0 for a single
        observation, as Apache's ``StandardDeviation``; an empty sample gives zeros, as
        Kayenta's ``DescriptiveStatistics.summary``.
    """
    array = _as_values(values, "values")
    if array.size == 0:
        return SummaryStatistics(min=0.0, max=0.0, mean=0.0, std=0.0, count=0)
    std = float(np.std(array, ddof=1)) if array.size > 1 else 0.0
    return SummaryStatistics(
        min=float(array.min()),
        max=float(array.max()),
        mean=float(array.mean()),
        std=std,
        count=int(array.size),
    )


def mean_ratio(*, baseline: ArrayLike, canary: ArrayLike) -> float:
    """Ratio of the means, canary / baseline; NaN when either mean is 0.

    Parameters
    ----------
    baseline, canary : array_like
        Samples, not empty.

    Returns
    -------
    float
        ``mean(canary) / mean(baseline)``, or NaN when either mean is exactly 0
        (``EffectSizes.meanRatio``; the NaN then leaves the effect-size thresholds of the
        classifier undecided, so they do not block a significant result).
    """
    x = _as_values(canary, "canary")
    y = _as_values(baseline, "baseline")
    _require_non_empty(x, "canary")
    _require_non_empty(y, "baseline")
    baseline_mean = float(y.mean())
    canary_mean = float(x.mean())
    if baseline_mean == 0.0 or canary_mean == 0.0:
        return math.nan
    return canary_mean / baseline_mean


def cohen_d(*, baseline: ArrayLike, canary: ArrayLike) -> float:
    """Cohen's d with the pooled standard deviation, as an absolute value.

    Parameters
    ----------
    baseline, canary : array_like
        Samples with at least one observation each and at least three in total.

    Returns
    -------
    float
        ``|mean(canary) - mean(baseline)| / s_pooled`` with
        ``s_pooled^2 = ((n_c - 1) s_c^2 + (n_b - 1) s_b^2) / (n_c + n_b - 2)``
        (``EffectSizes.cohenD``); NaN (or inf) when the pooled deviation is 0.
    """
    x = summary(canary)
    y = summary(baseline)
    if x.count == 0 or y.count == 0 or x.count + y.count < 3:
        raise ValueError(
            "canary and baseline must hold at least one observation each and three in total"
        )
    pooled_var = ((x.count - 1) * x.std**2 + (y.count - 1) * y.std**2) / (x.count + y.count - 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.float64(abs(x.mean - y.mean)) / np.sqrt(pooled_var))


def cles(*, baseline: ArrayLike, canary: ArrayLike) -> float:
    """Common language effect size: the probability that a canary point exceeds a baseline point.

    Parameters
    ----------
    baseline, canary : array_like
        Samples, not empty, without NaN.

    Returns
    -------
    float
        ``(count(c > b) + count(c == b) / 2) / (n_c n_b)`` over all pairs, computed from the
        rank sum of the canary as ``(2 R_c - n_c (n_c + 1)) / (2 n_c n_b)`` (the A measure of
        Vargha and Delaney, 2000; ``EffectSizes.cles``). 0.5 means no tendency.

    References
    ----------
    A. Vargha and H. D. Delaney, "A critique and improvement of the CL common language effect
    size statistics of McGraw and Wong", J. Educ. Behav. Stat. 25(2), 2000.
    """
    x = _as_values(canary, "canary")
    y = _as_values(baseline, "baseline")
    _require_non_empty(x, "canary")
    _require_non_empty(y, "baseline")
    if np.isnan(x).any() or np.isnan(y).any():
        raise ValueError("canary and baseline must not hold NaN (apply the NaN strategy first)")
    ranks, _ = average_ranks(np.concatenate((x, y)))
    m = float(x.size)
    n = float(y.size)
    rank_sum = float(np.sum(ranks[: x.size]))
    return (2 * rank_sum - m * (m + 1)) / (2 * n * m)
