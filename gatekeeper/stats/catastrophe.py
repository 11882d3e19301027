"""The catastrophe-only FAIL check that watches the canary's warm-up data.

Data of young pods is left out of the analysis (:mod:`gatekeeper.stats.warmup`), but a
canary that crashes on start must still roll back at once. This check asks only whether
the canary's warm-up data is far worse than anything a slow start explains:

- RATIO: the error rate is at least ``5 x`` the baseline's plus 1 percentage point;
- HISTOGRAM: the metric's tail quantile is at least ``3 x`` the baseline's.

Validity. Both are one-sided exact tests of a null hypothesis that includes every healthy
slow start (error rate < 5 p_b + 0.01, tail quantile < 3 q_b). The baseline's reference
is replaced by its one-sided upper confidence bound at half the check's level
(Clopper-Pearson for the rate; for the quantile, the bucket bound of the order statistic
whose rank bounds the quantile, the distribution-free bound of Conover, Practical
Nonparametric Statistics, 3rd ed., 1999, sec. 3.2), and the canary's bad events (or its
observations above ``3 x`` that bound, counted from the first bucket bound at or above it)
are tested at the other half with the exact binomial tail; by Bonferroni the check's false
FAIL rate is at most its level. Counts are treated as binomial: overdispersion between
pods is not modelled, which the wide margins (5 x + 1 point, 3 x) absorb in practice; the
seeded test ``tests/unit/test_warmup.py`` counts the false FAILs on healthy slow starts.

Alpha budget. The check takes ``CATASTROPHE_SHARE`` of the analysis's alpha; the Holm
family of the metrics gets the rest (:func:`alpha_split`). Across the looks of a sequential
analysis the check's share is spent over the looks by the project's alpha-spending rule
(:func:`gatekeeper.stats.sequential.look_alpha`, summing to at most the share over any
number of looks), and within a look it is divided evenly among the metrics
checked (Bonferroni), so the analysis's false FAIL rate stays within alpha.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

from gatekeeper.stats import sequential
from gatekeeper.stats.model import HistogramSeries, LookPosition, RatioSeries, Series

#: The share of the analysis's alpha the catastrophe check spends.
CATASTROPHE_SHARE = 0.01
#: RATIO: an error rate at least this many times the baseline's ...
ERROR_FACTOR = 5.0
#: ... plus this absolute rate is a catastrophe.
ERROR_POINTS = 0.01
#: HISTOGRAM: a tail quantile at least this many times the baseline's is a catastrophe.
TAIL_FACTOR = 3.0


@dataclass(frozen=True, slots=True)
class Catastrophe:
    """A check's result: its p-value, the level it was held to, and what it saw."""

    p_value: float
    level: float
    detail: str

    @property
    def found(self) -> bool:
        """Whether the warm-up data is a catastrophe at the check's level."""
        return self.p_value <= self.level


def alpha_split(alpha: float) -> tuple[float, float]:
    """The Holm family's alpha and the catastrophe check's share of ``alpha``."""
    return alpha * (1.0 - CATASTROPHE_SHARE), alpha * CATASTROPHE_SHARE


def look_level(share: float, *, look: LookPosition | None, checks: int) -> float:
    """The level of one metric's check at ``look`` (None: a single judgement): the share
    spent over the looks as every fixed-sample test of a sequential analysis spends it
    (:func:`gatekeeper.stats.sequential.look_alpha`), divided among the ``checks``."""
    if share <= 0:
        return 0.0
    spent = (
        share
        if look is None
        else sequential.look_alpha(alpha=share, index=look.index, planned=look.planned)
    )
    return spent / max(1, checks)


def check(*, baseline: Series, canary: Series, quantile: float, level: float) -> Catastrophe | None:
    """The catastrophe test of the canary's warm-up data against the baseline's data.

    Parameters
    ----------
    baseline : RatioSeries or HistogramSeries
        The baseline's data (all of it: the old version is the reference).
    canary : RatioSeries or HistogramSeries
        The canary's warm-up data.
    quantile : float
        HISTOGRAM: the tail quantile compared.
    level : float
        The check's level (:func:`look_level`).

    Returns
    -------
    Catastrophe or None
        None where the kinds have no such check (VALUES) or the data cannot test it.
    """
    if isinstance(baseline, RatioSeries) and isinstance(canary, RatioSeries):
        return _errors(baseline, canary, level)
    if isinstance(baseline, HistogramSeries) and isinstance(canary, HistogramSeries):
        return _tail(baseline, canary, quantile, level)
    return None


def _errors(baseline: RatioSeries, canary: RatioSeries, level: float) -> Catastrophe | None:
    n_b, bad_b = float(baseline.total.sum()), float(baseline.bad.sum())
    n_c, bad_c = round(float(canary.total.sum())), round(float(canary.bad.sum()))
    if n_c <= 0:
        return None
    # Clopper-Pearson upper bound of the baseline's rate at level / 2 (1 without data).
    upper = (
        1.0 if n_b <= 0 else float(sps.beta.ppf(1.0 - level / 2, bad_b + 1, max(n_b - bad_b, 1e-9)))
    )
    bound = min(1.0, ERROR_FACTOR * upper + ERROR_POINTS)
    p = 1.0 if bound >= 1.0 else float(sps.binom.sf(bad_c - 1, n_c, bound))
    detail = (
        f"warm-up errors {bad_c}/{n_c} ({bad_c / n_c:.2%}) against a catastrophe bound of "
        f"{ERROR_FACTOR:g}x the baseline's + {ERROR_POINTS:.0%} ({bound:.2%})"
    )
    return Catastrophe(p, level, detail)


def _tail(
    baseline: HistogramSeries, canary: HistogramSeries, quantile: float, level: float
) -> Catastrophe | None:
    bounds = baseline.upper_bounds
    base = np.maximum.accumulate(baseline.counts.sum(axis=0)) if baseline.counts.size else None
    if base is None or base[-1] <= 0 or not canary.counts.size:
        return None
    can = np.maximum.accumulate(canary.counts.sum(axis=0))
    n_b, n_c = float(base[-1]), round(float(can[-1]))
    if n_c <= 0 or not np.array_equal(bounds, canary.upper_bounds):
        return None
    # The rank whose order statistic exceeds the baseline's quantile with 1 - level / 2.
    rank = float(sps.binom.ppf(1.0 - level / 2, round(n_b), quantile)) + 1.0
    reference = float(bounds[min(int(np.searchsorted(base, rank)), len(bounds) - 1)])
    if not math.isfinite(reference):
        return None
    at = int(np.searchsorted(bounds, TAIL_FACTOR * reference))
    if at >= len(bounds) - 1:
        return None  # no finite bucket bound at or above 3 x: exceedances cannot be counted
    above = round(n_c - float(can[at]))
    share = 1.0 - quantile
    p = float(sps.binom.sf(above - 1, n_c, share))
    detail = (
        f"{above}/{n_c} warm-up observations above {bounds[at]:g} ({TAIL_FACTOR:g}x the "
        f"baseline's p{quantile * 100:g} bound {reference:g}); short of a catastrophe at "
        f"most {share:.2%} would"
    )
    return Catastrophe(p, level, detail)
