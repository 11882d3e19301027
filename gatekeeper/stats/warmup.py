"""Warm-up by pod age: which cells of a side's data were served by young pods.

A new pod is slower and fails more while its caches, JIT and connection pools fill, and
that is not what a canary analysis asks about (DESIGN.md, "Rollouts: one analysis,
warm-up excluded"). Data served by a pod younger than ``warmup`` is therefore left out of
the analysis on both sides; young pods are watched only by the catastrophe check of
:mod:`gatekeeper.stats.catastrophe`.

The rule, in one place for Analyze, replay and Judge (:func:`young_cells`): interval ``i``
of the grid covers ``(i * step, (i + 1) * step]`` seconds after the grid's start; a pod
starting at ``s`` seconds is young in every interval that begins before ``s + warmup``.
A pod's start is its ``kube_pod_start_time`` where the source has one, otherwise the
beginning of its first interval with data; a side without per-pod data is one pod whose
start is the beginning of the side's first interval with data.

VALUES carry no interval grid (their samples are pooled) and are left whole.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from gatekeeper.stats.model import (
    BoolArray,
    FloatArray,
    HistogramSeries,
    PodCounts,
    RatioSeries,
    Series,
)

#: The analysis spec's default warm-up, in seconds.
DEFAULT_WARMUP_SECONDS = 120.0


def young_cells(
    *,
    served: BoolArray,
    starts: FloatArray,
    interval_seconds: float,
    warmup_seconds: float,
) -> BoolArray:
    """The (interval, pod) cells served while their pod was younger than ``warmup_seconds``.

    Parameters
    ----------
    served : bool array, shape (intervals, pods)
        Where each pod served anything.
    starts : float array, shape (pods,)
        Each pod's start in seconds after the grid's start (negative: before it); NaN where
        unknown, the pod's start is then the beginning of its first interval with data.
    interval_seconds : float
        The grid's step.
    warmup_seconds : float
        The warm-up; 0 turns it off.

    Returns
    -------
    bool array, shape (intervals, pods)
        True where the cell is warm-up (only cells that served anything).
    """
    intervals, pods = served.shape
    if warmup_seconds <= 0 or intervals == 0 or pods == 0:
        return np.zeros(served.shape, dtype=bool)
    first = np.where(served.any(axis=0), served.argmax(axis=0), intervals).astype(float)
    known = np.where(np.isnan(starts), first * interval_seconds, starts)
    begins = np.arange(intervals, dtype=float)[:, None] * interval_seconds
    return served & (begins < known[None, :] + warmup_seconds)


@dataclass(frozen=True, slots=True, eq=False)
class Split:
    """One side's data parted into the analysed (warm) and the warm-up (young) cells.

    Both keep the side's intervals (the left-out cells hold zeros), so interval strata
    stay aligned with the other side; ``whole`` is the side's data before the split.
    ``left_out`` and ``total`` count requests (RATIO
    totals, HISTOGRAM observations); ``all_young`` is set when data exists and all of it
    is warm-up.
    """

    warm: Series
    young: Series | None
    left_out: float
    total: float
    whole: Series

    @property
    def all_young(self) -> bool:
        """Whether the side has data and every bit of it is warm-up."""
        return self.total > 0 and self.left_out >= self.total


def split(
    series: Series,
    *,
    starts: Mapping[str, float],
    interval_seconds: float | None,
    warmup_seconds: float,
) -> Split:
    """Part one side's series by :func:`young_cells` (``starts`` by pod name, seconds
    after the grid's start). Without an interval, a warm-up or a grid the series is whole."""
    if not interval_seconds or warmup_seconds <= 0 or isinstance(series, np.ndarray):
        return Split(series, None, 0.0, 0.0, series)
    if isinstance(series, RatioSeries):
        return _split_ratio(series, starts, interval_seconds, warmup_seconds)
    return _split_histogram(series, interval_seconds, warmup_seconds)


def _starts_of(names: tuple[str, ...], starts: Mapping[str, float]) -> FloatArray:
    return np.array([starts.get(name, math.nan) for name in names], dtype=float)


def _split_ratio(
    series: RatioSeries, starts: Mapping[str, float], step: float, warmup: float
) -> Split:
    table = series.pods
    if table is None:
        table = PodCounts(("",), series.bad[:, None], series.total[:, None])
    young = young_cells(
        served=table.total > 0,
        starts=_starts_of(table.names, starts) if series.pods else np.array([math.nan]),
        interval_seconds=step,
        warmup_seconds=warmup,
    )

    def part(mask: BoolArray) -> RatioSeries:
        cut = PodCounts(
            table.names, np.where(mask, table.bad, 0.0), np.where(mask, table.total, 0.0)
        )
        return (
            RatioSeries.from_pods(cut)
            if series.pods
            else RatioSeries(cut.bad[:, 0], cut.total[:, 0])
        )

    left_out = float(table.total[young].sum())
    total = float(table.total.sum())
    return Split(part(~young), part(young) if left_out else None, left_out, total, series)


def _split_histogram(series: HistogramSeries, step: float, warmup: float) -> Split:
    per_pod = series.pods if series.pods is not None and series.pods.size else None
    cube = per_pod if per_pod is not None else series.counts[:, None, :]
    young = young_cells(
        served=cube[:, :, -1] > 0,
        starts=np.full(cube.shape[1], math.nan),
        interval_seconds=step,
        warmup_seconds=warmup,
    )

    def part(mask: BoolArray) -> HistogramSeries:
        cut = np.where(mask[:, :, None], cube, 0.0)
        pods = cut if per_pod is not None else None
        return HistogramSeries(series.upper_bounds, cut.sum(axis=1), pods)

    left_out = float(cube[:, :, -1][young].sum())
    total = float(cube[:, :, -1].sum())
    return Split(part(~young), part(young) if left_out else None, left_out, total, series)
