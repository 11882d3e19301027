"""From range-query results to the judge's series, cleaned as DESIGN.md's error table says.

- RATIO: kept per pod when every series of the ``total`` query (and of ``bad``, if any)
  has a ``pod`` label (``sum by (pod)``), else summed; a ``bad`` query without series
  means zero bad events; a missing or zero ``total`` at an evaluation time drops that
  interval (0/0 carries nothing); ``bad > total`` (two separate queries, extrapolated
  ``increase()``) is clamped and noted; non-integer increases are kept.
- HISTOGRAM: one series per ``le``; intervals where a bucket is missing count nothing.
- VALUES: every point of every series (several per interval, e.g. per pod).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from gatekeeper.errors import QueryRejected
from gatekeeper.sources.base import RangeSeries, Window
from gatekeeper.stats.model import FloatArray, HistogramSeries, PodCounts, RatioSeries, Series
from gatekeeper.stats.results import MetricKind


@dataclass(frozen=True, slots=True, eq=False)
class Fetched:
    """One side's data with what cleaning it needed."""

    series: Series
    notes: tuple[str, ...] = ()


def on_grid(series: Sequence[RangeSeries], window: Window) -> FloatArray:
    """Sum of the series on the window's evaluation times; NaN where no series has a point."""
    grid = np.full(window.points, np.nan)
    for item in series:
        index = np.rint((item.times - window.start) / window.step).astype(int) - 1
        keep = (index >= 0) & (index < window.points) & ~np.isnan(item.values)
        where = index[keep]
        grid[where] = np.where(np.isnan(grid[where]), 0.0, grid[where]) + item.values[keep]
    return grid


def ratio(bad: Sequence[RangeSeries], total: Sequence[RangeSeries], window: Window) -> Fetched:
    """Bad/total counts per interval, kept per pod when every series names its ``pod``."""
    pods = _by_pod(total)
    bad_pods = _by_pod(bad) if bad else {}
    if pods is None or bad_pods is None:
        bads, totals, notes = _cleaned(on_grid(bad, window), on_grid(total, window))
        return Fetched(RatioSeries(bad=bads, total=totals), notes)
    names = sorted(pods)
    bads, totals, notes = _cleaned(
        np.column_stack([on_grid(bad_pods.get(name, []), window) for name in names]),
        np.column_stack([on_grid(pods[name], window) for name in names]),
    )
    orphans = sorted(set(bad_pods) - set(pods))
    if orphans:
        notes += (f"bad events of {len(orphans)} pod(s) without a total left out",)
    table = PodCounts(names=tuple(names), bad=bads, total=totals)
    return Fetched(RatioSeries.from_pods(table), notes)


def _by_pod(series: Sequence[RangeSeries]) -> dict[str, list[RangeSeries]] | None:
    """The series grouped by their ``pod`` label; None unless every one has it."""
    grouped: dict[str, list[RangeSeries]] = {}
    for item in series:
        name = item.labels.get("pod", "")
        if not name:
            return None
        grouped.setdefault(name, []).append(item)
    return grouped or None


def _cleaned(bad: FloatArray, total: FloatArray) -> tuple[FloatArray, FloatArray, tuple[str, ...]]:
    """Missing points as zeros, 0/0 cells as zeros, ``bad > total`` clamped and noted."""
    totals = np.clip(np.nan_to_num(total, nan=0.0), 0.0, None)
    bads = np.clip(np.nan_to_num(bad, nan=0.0), 0.0, None)
    bads[totals <= 0] = 0.0  # 0/0 cells stay as zeros, aligned with the other side
    over = bads > totals
    if not over.any():
        return bads, totals, ()
    cells = "interval(s)" if bads.ndim == 1 else "pod interval(s)"
    return np.minimum(bads, totals), totals, (f"bad > total in {int(over.sum())} {cells}, clamped",)


def _le(labels: Mapping[str, str], query: str) -> float:
    text = labels.get("le")
    if text is None:
        raise QueryRejected(
            "a buckets query must keep the le label (sum by (le) (...))", query=query
        )
    try:
        return math.inf if text in ("+Inf", "Inf", "inf") else float(text)
    except ValueError:
        raise QueryRejected(f"le={text!r} is not a bucket bound", query=query) from None


def histogram(buckets: Sequence[RangeSeries], window: Window, *, query: str) -> Fetched:
    """Cumulative bucket counts per interval."""
    if not buckets:
        return Fetched(HistogramSeries(np.array([math.inf]), np.zeros((0, 1))))
    by_bound: dict[float, list[RangeSeries]] = {}
    for item in buckets:
        by_bound.setdefault(_le(item.labels, query), []).append(item)
    bounds = np.array(sorted(by_bound))
    if not math.isinf(bounds[-1]):
        raise QueryRejected('a buckets query must return the le="+Inf" bucket', query=query)
    counts = np.column_stack([on_grid(by_bound[b], window) for b in bounds])
    missing = np.isnan(counts)
    partial = missing.any(axis=1) & ~missing.all(axis=1)
    counts[missing.any(axis=1)] = 0.0  # incomplete intervals count nothing, keeping alignment
    notes = (
        [f"{int(partial.sum())} interval(s) with missing buckets left out"] if partial.any() else []
    )
    return Fetched(HistogramSeries(bounds, np.clip(counts, 0.0, None)), tuple(notes))


def values(series: Sequence[RangeSeries]) -> Fetched:
    """Every point of every series; +/-Inf (a division by zero in the query) counts as
    missing, NaN, and follows the metric's NaN policy, with a note."""
    if not series:
        return Fetched(np.zeros(0))
    joined = np.concatenate([item.values for item in series])
    infinite = np.isinf(joined)
    if not infinite.any():
        return Fetched(joined)
    joined[infinite] = np.nan
    note = f"{int(infinite.sum())} infinite value(s) treated as missing (NaN policy)"
    return Fetched(joined, (note,))


def assemble(
    kind: MetricKind,
    results: Mapping[str, Sequence[RangeSeries]],
    window: Window,
    queries: Mapping[str, str],
) -> Fetched:
    """The series of one side from its query results by role."""
    if kind is MetricKind.RATIO:
        return ratio(results["bad"], results["total"], window)
    if kind is MetricKind.HISTOGRAM:
        return histogram(results["buckets"], window, query=queries["buckets"])
    return values(results["query"])
