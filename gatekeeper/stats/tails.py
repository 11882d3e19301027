"""Tail checks from Prometheus histograms (HISTOGRAM metrics).

Quantiles follow Prometheus' ``histogram_quantile``: the rank ``q * N`` is located in its
bucket and interpolated linearly between the bucket's bounds (the first bucket starts at
0 when its upper bound is positive); a rank in the +Inf bucket yields the largest finite
bound. The inverse (the share of observations above a threshold) interpolates the same
way.

The tail test asks whether the canary's share of requests above the baseline's
q-quantile x (1 + tolerance) (+ absolute tolerance) significantly exceeds ``1 - q``: if
the canary's own q-quantile were within the acceptable region, that share would be at
most ``1 - q``. The canary's exceedances are tested with the exact binomial tail
(Clopper and Pearson, 1934). The baseline quantile is itself an estimate; its
uncertainty maps into the share at the threshold with variance ``q (1 - q) / N_b``
(the asymptotic variance of a sample quantile, in probability units; Serfling,
Approximation Theorems of Mathematical Statistics, 1980, sec. 2.3), which equals the
canary's own variance scaled by ``N_c / N_b`` when the canary is the baseline stretched
by (1 + tolerance). Both are carried by deflating the canary's counts by the design
effect ``phi * (1 + N_c / N_b)``, with ``phi`` the overdispersion of the exceedance
counts (Rao and Scott, 1992): from the baseline's pods per pod and interval when the
histograms come per pod (:func:`pod_exceedance_dispersion`), else from the canary's
per-interval counts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import special

from gatekeeper.stats.model import FloatArray, HistogramSeries, PodCounts
from gatekeeper.stats.pods import pod_dispersion


@dataclass(frozen=True, slots=True, eq=False)
class MergedHistogram:
    """Cumulative counts of all intervals added up, with the per-interval counts kept."""

    upper_bounds: FloatArray
    cumulative: FloatArray
    per_interval: FloatArray
    #: per interval and pod (intervals, pods, buckets), when the source gave pods
    pods: FloatArray | None = None

    @property
    def count(self) -> float:
        """All observations (the +Inf bucket)."""
        return float(self.cumulative[-1]) if self.cumulative.size else 0.0


def merge(series: HistogramSeries) -> MergedHistogram:
    """Add up a histogram's intervals, making each interval's buckets cumulative-monotone.

    Parameters
    ----------
    series : HistogramSeries
        Per-interval cumulative buckets.

    Returns
    -------
    MergedHistogram
        The sum over intervals. Counts that decrease from one bucket to the next (rounding
        of ``increase()`` over separate series) are lifted to the running maximum.
    """
    counts = np.maximum.accumulate(series.counts, axis=1) if series.counts.size else series.counts
    width = series.upper_bounds.shape[0]
    cumulative = counts.sum(axis=0) if counts.size else np.zeros(width)
    pods = series.pods
    if pods is not None and pods.size:
        pods = np.maximum.accumulate(pods, axis=2)
    return MergedHistogram(series.upper_bounds, cumulative, counts, pods)


def _bucket_start(bounds: FloatArray, index: int) -> float:
    if index > 0:
        return float(bounds[index - 1])
    return 0.0 if bounds[0] > 0 else float(bounds[0])


def histogram_quantile(*, q: float, upper_bounds: FloatArray, cumulative: FloatArray) -> float:
    """The q-quantile of a cumulative histogram, as Prometheus' ``histogram_quantile``.

    Parameters
    ----------
    q : float
        Probability in [0, 1].
    upper_bounds : ndarray
        Strictly increasing bucket bounds ending with +Inf.
    cumulative : ndarray
        Cumulative counts per bucket.

    Returns
    -------
    float
        NaN without observations; otherwise the linearly interpolated quantile.

    References
    ----------
    Prometheus documentation, "Histograms and summaries" and the ``histogram_quantile``
    function of PromQL.
    """
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"q must be in [0, 1], got {q!r}")
    total = float(cumulative[-1]) if cumulative.size else 0.0
    if total <= 0:
        return math.nan
    rank = q * total
    index = int(np.searchsorted(cumulative, rank, side="left"))
    index = min(index, cumulative.size - 1)
    last_finite = cumulative.size - 2
    if index > last_finite:
        return float(upper_bounds[last_finite]) if last_finite >= 0 else math.nan
    if index == 0 and upper_bounds[0] <= 0:
        return float(upper_bounds[0])
    start = _bucket_start(upper_bounds, index)
    end = float(upper_bounds[index])
    below = float(cumulative[index - 1]) if index > 0 else 0.0
    inside = float(cumulative[index]) - below
    if inside <= 0:
        return end
    return start + (end - start) * (rank - below) / inside


@dataclass(frozen=True, slots=True)
class Exceedance:
    """Observations above a threshold, as far as the buckets can tell.

    ``surely`` counts what is certainly above (nothing of the +Inf bucket when the
    threshold is beyond the last finite bound); ``possibly`` what may be above; within a
    finite bucket both are the linear interpolation.
    """

    surely: float
    possibly: float
    bucket_start: float
    bucket_end: float


def exceedance(*, threshold: float, upper_bounds: FloatArray, cumulative: FloatArray) -> Exceedance:
    """Count the observations above ``threshold``, interpolating inside its bucket.

    Parameters
    ----------
    threshold : float
        The value.
    upper_bounds, cumulative : ndarray
        A cumulative histogram (bounds end with +Inf).

    Returns
    -------
    Exceedance
        Sure and possible counts above the threshold, and the bucket it falls in.
    """
    total = float(cumulative[-1]) if cumulative.size else 0.0
    index = int(np.searchsorted(upper_bounds, threshold, side="left"))
    last_finite = upper_bounds.size - 2
    if index > last_finite:
        above_finite = total - (float(cumulative[last_finite]) if last_finite >= 0 else 0.0)
        edge = float(upper_bounds[last_finite]) if last_finite >= 0 else -math.inf
        return Exceedance(0.0, above_finite, edge, math.inf)
    start = _bucket_start(upper_bounds, index)
    end = float(upper_bounds[index])
    below = float(cumulative[index - 1]) if index > 0 else 0.0
    inside = float(cumulative[index]) - below
    if index == 0 and threshold <= start:
        fraction = 0.0
    else:
        fraction = 0.0 if end <= start else min(1.0, max(0.0, (threshold - start) / (end - start)))
    above = total - below - inside * fraction
    return Exceedance(above, above, start, end)


def bucket_bound(*, upper_bounds: FloatArray, value: float, up: bool) -> float:
    """The bucket bound nearest ``value`` on one side: the smallest >= it, or the largest <=.

    A tail threshold on a bound is counted exactly, with no interpolation inside a bucket;
    rounding it away from the acceptable side for each decision (up for an upward FAIL
    threshold, down for an upward PASS threshold) keeps each decision conservative.

    Returns
    -------
    float
        The bound; ``+inf`` when ``up`` and ``value`` lies beyond the last finite bound,
        ``-inf`` when not ``up`` and it lies below the first.
    """
    if up:
        index = int(np.searchsorted(upper_bounds, value, side="left"))
        return float(upper_bounds[index]) if index < upper_bounds.size else math.inf
    index = int(np.searchsorted(upper_bounds, value, side="right")) - 1
    return float(upper_bounds[index]) if index >= 0 else -math.inf


def _surely_above(threshold: float, upper_bounds: FloatArray, rows: FloatArray) -> FloatArray:
    """:func:`exceedance`'s ``surely`` for every row of cumulative counts at once."""
    index = int(np.searchsorted(upper_bounds, threshold, side="left"))
    if index > upper_bounds.size - 2:  # beyond the last finite bound: nothing is surely above
        return np.zeros(rows.shape[0])
    start, end = _bucket_start(upper_bounds, index), float(upper_bounds[index])
    below = rows[:, index - 1] if index > 0 else np.zeros(rows.shape[0])
    inside = rows[:, index] - below
    if (index == 0 and threshold <= start) or end <= start:
        fraction = 0.0
    else:
        fraction = min(1.0, max(0.0, (threshold - start) / (end - start)))
    return np.asarray(rows[:, -1] - below - inside * fraction, dtype=float)


@dataclass(frozen=True, slots=True)
class TailTestResult:
    """The tail test at one threshold.

    ``p_greater``: small when the canary's share above ``threshold`` exceeds ``1 - q``;
    ``p_less``: small when it is below. ``design_effect`` is the deflation applied.
    """

    threshold: float
    canary_share: float
    canary_exceedances: float
    canary_count: float
    p_greater: float
    p_less: float
    design_effect: float
    effective_sure: float
    effective_possible: float
    effective_count: float
    bucket_start: float
    bucket_end: float


def exceedance_dispersion(
    *, threshold: float, upper_bounds: FloatArray, per_interval: FloatArray
) -> float:
    """Overdispersion of the per-interval exceedance counts around their pooled share.

    Pearson statistic over the intervals with observations, divided by its degrees of
    freedom, floored at 1 (McCullagh and Nelder, 1989, sec. 4.5).
    """
    totals = per_interval[:, -1] if per_interval.size else np.zeros(0)
    keep = totals > 0
    if int(keep.sum()) < 2:
        return 1.0
    above = _surely_above(threshold, upper_bounds, per_interval[keep])
    n = totals[keep]
    share = above.sum() / n.sum()
    if share <= 0.0 or share >= 1.0:
        return 1.0
    pearson = float(np.sum((above - n * share) ** 2 / (n * share * (1.0 - share))))
    return max(1.0, pearson / (int(keep.sum()) - 1))


def pod_exceedance_dispersion(
    *, threshold: float, upper_bounds: FloatArray, pods: FloatArray
) -> float:
    """Overdispersion of the baseline's exceedances of ``threshold`` per pod and interval.

    Each (interval, pod) cell's exceedances are split among the interval's pods by their
    observations, the model of :func:`gatekeeper.stats.pods.pod_dispersion`, whose upper
    confidence bound is returned (1 when the cells bound nothing).
    """
    intervals, count, _ = pods.shape
    cells = pods.reshape(intervals * count, -1)
    above = np.array(
        [
            exceedance(threshold=threshold, upper_bounds=upper_bounds, cumulative=row).surely
            for row in cells
        ]
    ).reshape(intervals, count)
    names = tuple(str(j) for j in range(count))
    return pod_dispersion(PodCounts(names, above, pods[:, :, -1].copy())).phi_upper


def tail_test(
    *,
    baseline: MergedHistogram,
    canary: MergedHistogram,
    q: float,
    threshold: float,
    scale: float = 1.0,
) -> TailTestResult:
    """Test the canary's share of observations above ``threshold`` against ``1 - q``.

    Parameters
    ----------
    baseline, canary : MergedHistogram
        Both sides, merged over intervals, with the same bucket bounds.
    q : float
        The guarded quantile, in (0, 1).
    threshold : float
        The boundary of the acceptable region: the baseline's q-quantile x (1 +
        tolerance) + absolute tolerance (or its mirror for DECREASE).
    scale : float
        Multiplies every count (used to project to more data); 1 for the data as is.

    Returns
    -------
    TailTestResult
        Exact binomial tail p-values of the deflated canary counts: ``p_greater`` from
        the sure exceedances, ``p_less`` from the possible ones (so that the limits of
        the +Inf bucket never favour a PASS or a FAIL).
    """
    if not 0.0 < q < 1.0:
        raise ValueError(f"q must be in (0, 1), got {q!r}")
    n_c = canary.count * scale
    n_b = baseline.count * scale
    over = exceedance(
        threshold=threshold, upper_bounds=canary.upper_bounds, cumulative=canary.cumulative
    )
    phi = (
        pod_exceedance_dispersion(
            threshold=threshold, upper_bounds=baseline.upper_bounds, pods=baseline.pods
        )
        if baseline.pods is not None and baseline.pods.size
        else exceedance_dispersion(
            threshold=threshold, upper_bounds=canary.upper_bounds, per_interval=canary.per_interval
        )
    )
    design = phi * (1.0 + (n_c / n_b if n_b > 0 else 0.0))
    n_eff = n_c / design
    sure = over.surely * scale / design
    possible = over.possibly * scale / design
    tail = 1.0 - q
    p_greater = 1.0 if sure <= 0 else float(special.betainc(sure, n_eff - sure + 1, tail))
    p_less = 1.0 if possible >= n_eff else float(special.betainc(n_eff - possible, possible + 1, q))
    return TailTestResult(
        threshold=threshold,
        canary_share=over.surely / canary.count if canary.count > 0 else math.nan,
        canary_exceedances=over.surely,
        canary_count=canary.count,
        p_greater=p_greater,
        p_less=p_less,
        design_effect=design,
        effective_sure=sure,
        effective_possible=possible,
        effective_count=n_eff,
        bucket_start=over.bucket_start,
        bucket_end=over.bucket_end,
    )


def quantile_bounds(
    *, histogram: MergedHistogram, q: float, alpha_lower: float, alpha_upper: float
) -> tuple[float, float]:
    """Distribution-free bounds of a q-quantile from the binomial law of its rank.

    Returns the histogram quantiles at ``q -/+ z sqrt(q (1 - q) / N)`` (clipped to
    [0, 1]), the normal approximation of the order-statistic interval (Serfling, 1980,
    sec. 2.6).
    """
    n = histogram.count
    if n <= 0:
        return math.nan, math.nan
    spread = math.sqrt(q * (1 - q) / n)
    lo = max(0.0, q - float(special.ndtri(1 - alpha_lower)) * spread)
    hi = min(1.0, q + float(special.ndtri(1 - alpha_upper)) * spread)
    bounds, cumulative = histogram.upper_bounds, histogram.cumulative
    return (
        histogram_quantile(q=lo, upper_bounds=bounds, cumulative=cumulative),
        histogram_quantile(q=hi, upper_bounds=bounds, cumulative=cumulative),
    )


def histogram_mean(histogram: MergedHistogram) -> float:
    """Mean estimated from bucket midpoints (the +Inf bucket at the largest finite bound)."""
    n = histogram.count
    if n <= 0:
        return math.nan
    bounds = histogram.upper_bounds
    finite = bounds[:-1]
    starts = np.concatenate(
        ([0.0 if finite.size and finite[0] > 0 else (finite[0] if finite.size else 0.0)], finite)
    )
    ends = np.concatenate((finite, [finite[-1] if finite.size else 0.0]))
    mids = 0.5 * (starts + ends)
    counts = np.diff(np.concatenate(([0.0], histogram.cumulative)))
    return float(np.dot(mids, counts) / n)
