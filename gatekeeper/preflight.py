"""Preflight: does the baseline have data for every metric, before a rollout starts?

A rollout should not start without a baseline SLI anyone has seen. One range query per
metric (its ``total``, ``buckets`` or ``query`` role) over the lookback, at most
:data:`MAX_POINTS` steps; each gap is reported.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Sequence

import numpy as np

from gatekeeper.engine import render
from gatekeeper.errors import QueryRejected, SourceError
from gatekeeper.sources import series
from gatekeeper.sources.base import BatchSource, MetricSource, RangeSeries, Window
from gatekeeper.spec import AnalysisSpec, MetricSpec, format_duration
from gatekeeper.stats.results import (
    Decision,
    Effect,
    MetricKind,
    MetricResult,
    Outcome,
    SideSummary,
    Verdict,
)

PREFLIGHT_ROLE = {
    MetricKind.RATIO: "total",
    MetricKind.HISTOGRAM: "buckets",
    MetricKind.VALUES: "query",
}
MAX_POINTS = 2000


def _present(kind: MetricKind, answer: list[RangeSeries], window: Window) -> np.ndarray:
    """Whether the baseline had data at each evaluation time."""
    if kind is MetricKind.HISTOGRAM:
        answer = [s for s in answer if s.labels.get("le") in ("+Inf", "Inf", "inf")]
    grid = series.on_grid(answer, window)
    if kind is MetricKind.VALUES:
        return ~np.isnan(grid)
    return ~np.isnan(grid) & (np.nan_to_num(grid) > 0)


def _gaps(present: np.ndarray, window: Window) -> list[str]:
    gaps, start = [], None
    for k, ok in enumerate([*present.tolist(), True]):
        if not ok and start is None:
            start = k
        elif ok and start is not None:
            begin = window.start + start * window.step
            until = window.start + k * window.step
            gaps.append(
                f"{_clock(begin)} to {_clock(until)} UTC ({format_duration(until - begin)})"
            )
            start = None
    return gaps


def _clock(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(epoch))


def run(
    spec: AnalysisSpec,
    *,
    source: MetricSource,
    baseline: str,
    end: float,
    lookback_seconds: float = 86_400.0,
) -> Verdict:
    """Check that the baseline has data for every metric over the lookback; report each gap.

    A rollout should not start without a baseline SLI anyone has seen: the verdict is PASS
    when every metric had data throughout, INCONCLUSIVE (metrics NO_DATA) with the gaps
    otherwise, and ERROR when the source failed. A :class:`BatchSource` is asked for all
    the queries at once, within its deadline (see :func:`run_async`).
    """
    if isinstance(source, BatchSource):
        return asyncio.run(
            run_async(
                spec, source=source, baseline=baseline, end=end, lookback_seconds=lookback_seconds
            )
        )
    window, queries_ = _plan(spec, baseline, end, lookback_seconds)
    answers: list[list[RangeSeries] | SourceError] = []
    for query in queries_:
        try:
            answers.append(source.query_range(query, window=window))
        except SourceError as exc:
            answers.append(exc)
        except QueryRejected as exc:
            raise _named(exc, spec, queries_) from None
    return _verdict(spec, queries_, answers, window)


async def run_async(
    spec: AnalysisSpec,
    *,
    source: BatchSource,
    baseline: str,
    end: float,
    lookback_seconds: float = 86_400.0,
    timeout: float | None = None,
) -> Verdict:
    """:func:`run` on the running event loop, all queries within one deadline
    (``timeout`` seconds or the source's own, whichever is sooner), cancellable."""
    window, queries_ = _plan(spec, baseline, end, lookback_seconds)
    try:
        answers = await source.query_many(queries_, window=window, timeout=timeout)
    except QueryRejected as exc:
        raise _named(exc, spec, queries_) from None
    return _verdict(spec, queries_, answers, window)


def _named(exc: QueryRejected, spec: AnalysisSpec, queries_: list[str]) -> QueryRejected:
    for metric, query in zip(spec.metrics, queries_, strict=True):
        if query == exc.query:
            return QueryRejected(
                f"metric {metric.name}: {exc} [query: {query}]", query=query, metric=metric.name
            )
    return exc


def _plan(
    spec: AnalysisSpec, baseline: str, end: float, lookback_seconds: float
) -> tuple[Window, list[str]]:
    step = max(spec.interval_seconds, lookback_seconds / MAX_POINTS)
    queries_ = [
        render(spec, metric, selector=baseline, step=step)[PREFLIGHT_ROLE[spec.kind_of(metric)]]
        for metric in spec.metrics
    ]
    return Window(end - lookback_seconds, end, step), queries_


def _verdict(
    spec: AnalysisSpec,
    queries_: list[str],
    answers: Sequence[list[RangeSeries] | SourceError],
    window: Window,
) -> Verdict:
    results = [
        _metric(spec, metric, query, answer, window)
        for metric, query, answer in zip(spec.metrics, queries_, answers, strict=True)
    ]
    live = [r for r in results if not r.dry_run]
    if any(r.outcome is Outcome.ERROR for r in live):
        decision, why = Decision.ERROR, "the metric source failed"
    elif all(r.outcome is Outcome.PASS for r in live):
        decision, why = (
            Decision.PASS,
            "the baseline has data for every metric over the last "
            f"{format_duration(window.end - window.start)}",
        )
    else:
        missing = ", ".join(r.name for r in live if r.outcome is not Outcome.PASS)
        decision, why = Decision.INCONCLUSIVE, f"baseline data missing for {missing}"
    score_ = 100.0 * sum(r.outcome is Outcome.PASS for r in live) / max(1, len(live))
    return Verdict(
        decision=decision, score=score_, metrics=tuple(results), summary=f"{decision.value}: {why}"
    )


def _metric(
    spec: AnalysisSpec,
    metric: MetricSpec,
    query: str,
    answer: list[RangeSeries] | SourceError,
    window: Window,
) -> MetricResult:
    settings = spec.settings(metric)
    nothing = Effect(math.nan, math.nan, math.nan, 0.0, "")

    def result(outcome: Outcome, reason: str, count: float = 0.0) -> MetricResult:
        return MetricResult(
            name=metric.name,
            outcome=outcome,
            critical=settings.critical,
            test="baseline preflight",
            p_value=math.nan,
            effect=nothing,
            baseline=SideSummary(count=count),
            canary=SideSummary(),
            reason=reason,
            dry_run=settings.dry_run,
            group=settings.group,
            weight=settings.weight,
            queries=(f"baseline: {query}",),
        )

    if isinstance(answer, SourceError):
        return result(Outcome.ERROR, f"metric source error: {answer}")
    present = _present(settings.kind, answer, window)
    gaps = _gaps(present, window)
    seen = float(present.sum())
    if not gaps:
        return result(
            Outcome.PASS, f"baseline data at every {format_duration(window.step)} step", seen
        )
    if seen == 0:
        return result(Outcome.NO_DATA, "no baseline data at all over the lookback", seen)
    shown = "; ".join(gaps[:5]) + (f"; and {len(gaps) - 5} more" if len(gaps) > 5 else "")
    return result(Outcome.NO_DATA, f"{len(gaps)} gap(s) in the baseline: {shown}", seen)


# --- stateless analysis start ----------------------------------------------------------------


def _presence_queries(spec: AnalysisSpec, selector: str, step: float) -> list[str]:
    return [
        render(spec, metric, selector=selector, step=step)[PREFLIGHT_ROLE[spec.kind_of(metric)]]
        for metric in spec.metrics
    ]


def first_sample(
    spec: AnalysisSpec, *, source: MetricSource, selector: str, window: Window
) -> float | None:
    """The start of the first interval of ``window`` in which ``selector`` has data.

    A caller that cannot keep state (Argo Rollouts' web provider sends the same body at every
    measurement) finds its analysis's start this way: the canary's first sample of any
    metric within a lookback. Data is what the preflight counts as present (a positive
    ``total`` or ``+Inf`` bucket, a value that is not NaN). A metric whose query fails is
    passed over; the analysis that follows reports that failure as the metric's ERROR.
    A :class:`~gatekeeper.sources.base.BatchSource` is asked on an event loop of this
    thread, within its deadline (:func:`first_sample_async`).

    Returns
    -------
    float or None
        Unix seconds on the window's grid; None when no metric has data in the window.
    """
    if isinstance(source, BatchSource):
        return asyncio.run(
            first_sample_async(spec, source=source, selector=selector, window=window)
        )
    queries_ = _presence_queries(spec, selector, window.step)
    answers: list[list[RangeSeries] | SourceError] = []
    for query in queries_:
        try:
            answers.append(source.query_range(query, window=window))
        except SourceError as exc:
            answers.append(exc)
        except QueryRejected as exc:
            raise _named(exc, spec, queries_) from None
    return _first(spec, answers, window)


async def first_sample_async(
    spec: AnalysisSpec,
    *,
    source: BatchSource,
    selector: str,
    window: Window,
    timeout: float | None = None,
) -> float | None:
    """:func:`first_sample` on the running event loop, every query within one deadline."""
    queries_ = _presence_queries(spec, selector, window.step)
    try:
        answers = await source.query_many(queries_, window=window, timeout=timeout)
    except QueryRejected as exc:
        raise _named(exc, spec, queries_) from None
    return _first(spec, answers, window)


def _first(
    spec: AnalysisSpec, answers: Sequence[list[RangeSeries] | SourceError], window: Window
) -> float | None:
    first: float | None = None
    for metric, answer in zip(spec.metrics, answers, strict=True):
        if isinstance(answer, SourceError):
            continue
        present = np.flatnonzero(_present(spec.kind_of(metric), answer, window))
        if present.size:
            found = window.start + float(present[0]) * window.step
            first = found if first is None else min(first, found)
    return first
