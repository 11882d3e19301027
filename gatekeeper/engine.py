"""The one place where data meets statistics: fetch -> preprocess -> classify -> score.

``judge`` takes data the caller supplies; ``analyze`` fetches it from a metric source with
an analysis spec first; ``preflight`` checks that the baseline has data at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from gatekeeper.errors import InvalidArgument, QueryRejected, SourceError
from gatekeeper.sources import checks, pod_starts, queries, series
from gatekeeper.sources.base import BatchSource, MetricSource, RangeSeries, Window
from gatekeeper.spec import AnalysisSpec, MetricSpec, format_duration
from gatekeeper.stats import warmed
from gatekeeper.stats.kayenta import judge as kayenta_judge
from gatekeeper.stats.model import (
    JudgeMode,
    JudgeSettings,
    LookPosition,
    MetricData,
    MetricSettings,
    RatioSeries,
)
from gatekeeper.stats.results import (
    MetricKind,
    Verdict,
)

_FETCH_THREADS = 8
SIDE_NAMES = ("baseline", "canary")
#: The role of a visibility probe (see :mod:`gatekeeper.sources.checks`).
PROBE = "probe"
#: The job of the pods' start times: not a metric's.
STARTS, STARTS_SIDE, STARTS_ROLE = -1, "pods", "start"
Job = tuple[int, str, str, str]
Answers = dict[tuple[int, str, str], list[RangeSeries] | SourceError]


def judge(metrics: Sequence[MetricData], settings: JudgeSettings) -> Verdict:
    """Judge the canary against the baseline on every metric and decide.

    Parameters
    ----------
    metrics : sequence of MetricData
        Validated metrics (names unique, series consistent).
    settings : JudgeSettings
        alpha, beta, score thresholds, interval, look, judge mode and warm-up (data of
        young pods is left out, see :mod:`gatekeeper.stats.warmed`).

    Returns
    -------
    Verdict
        The decision with every metric's outcome, effect, summaries and reason.
    """
    if settings.mode is JudgeMode.KAYENTA:
        return kayenta_judge.judge(metrics, settings)
    return warmed.judge(metrics, settings)


class DataSource(Protocol):
    """Where Analyze gets both sides' data for a spec over a window.

    :class:`PromQLData` renders the spec's queries for a PromQL source (Prometheus and
    compatibles); other implementations (recorded or simulated data) read the metrics by
    name and kind.
    """

    def fetch(self, spec: AnalysisSpec, *, sides: Sides, window: Window) -> list[MetricData]:
        """Both sides of every metric of ``spec`` over ``window``."""
        ...


@dataclass(frozen=True, slots=True)
class PromQLData:
    """A :class:`DataSource` over a PromQL :class:`~gatekeeper.sources.base.MetricSource`."""

    source: MetricSource

    def fetch(self, spec: AnalysisSpec, *, sides: Sides, window: Window) -> list[MetricData]:
        """Render, query and assemble (see :func:`fetch`)."""
        return fetch(spec, source=self.source, sides=sides, window=window)


@dataclass(frozen=True, slots=True)
class Sides:
    """The label matchers of each side."""

    baseline: str
    canary: str


def render(spec: AnalysisSpec, metric: MetricSpec, *, selector: str, step: float) -> dict[str, str]:
    """A metric's queries by role for one side.

    Raises
    ------
    InvalidArgument
        When the selector is not a list of label matchers.
    """
    context = queries.Context(
        selector=selector,
        interval=format_duration(step),
        service=spec.service,
        namespace=spec.namespace,
    )
    labels = queries.provider(spec.provider).labels
    try:
        return {
            role: queries.render(template, context=context, labels=labels)
            for role, template in spec.query_templates(metric).items()
        }
    except ValueError as exc:
        raise InvalidArgument.single("selector", str(exc)) from None


def _rendered(
    spec: AnalysisSpec, sides: Sides, step: float
) -> list[tuple[dict[str, str], dict[str, str]]]:
    rendered = []
    for metric in spec.metrics:
        base = render(spec, metric, selector=sides.baseline, step=step)
        can = render(spec, metric, selector=sides.canary, step=step)
        if base == can:
            raise InvalidArgument.single(
                "canary_selector",
                f"metric {metric.name} renders the same queries for baseline and canary; "
                "the canary must be selected apart from the baseline",
            )
        rendered.append((base, can))
    return rendered


def _fetch_all(source: MetricSource, jobs: list[Job], window: Window) -> Answers:
    """Run every (metric, side, role, query) concurrently; source errors are kept per query."""

    def run(job: Job) -> list[RangeSeries] | SourceError:
        try:
            return source.query_range(job[3], window=window)
        except SourceError as exc:
            return exc

    if not jobs:
        return {}
    with ThreadPoolExecutor(max_workers=_FETCH_THREADS) as pool:
        answers = list(pool.map(run, jobs))
    return {
        (i, side, role): answer for (i, side, role, _), answer in zip(jobs, answers, strict=True)
    }


def fetch(
    spec: AnalysisSpec, *, source: MetricSource, sides: Sides, window: Window
) -> list[MetricData]:
    """Fetch both sides of every metric; a source failure becomes that metric's error.

    A :class:`~gatekeeper.sources.base.BatchSource` (Prometheus) is asked on an event loop
    of this thread, within its deadline (see :func:`fetch_async`); any other source
    through threads.

    Raises
    ------
    QueryRejected
        When the source refuses a query; the message names the metric and the query.
    """
    if isinstance(source, BatchSource):
        return asyncio.run(fetch_async(spec, source=source, sides=sides, window=window))
    rendered = _rendered(spec, sides, window.step)
    jobs = _jobs(rendered)
    try:
        answers = _fetch_all(source, jobs, window)
        answers |= _fetch_all(source, _probes(spec, rendered, answers), window)
    except QueryRejected as exc:
        raise _named(exc, spec, jobs) from None
    with contextlib.suppress(QueryRejected):  # refused start times: first samples count
        answers |= _fetch_all(source, _start_jobs(spec, answers), window)
    return _collect(spec, rendered, answers, window)


async def fetch_async(
    spec: AnalysisSpec,
    *,
    source: BatchSource,
    sides: Sides,
    window: Window,
    timeout: float | None = None,
) -> list[MetricData]:
    """:func:`fetch` on the running event loop: every query of the call, retries and
    visibility probes included, within one deadline (``timeout`` seconds, or the source's
    own deadline when sooner); a query still unanswered then is its metric's ERROR, naming
    the source. Cancelling the call cancels every query."""
    rendered = _rendered(spec, sides, window.step)
    jobs = _jobs(rendered)
    budget = source.deadline_seconds if timeout is None else min(timeout, source.deadline_seconds)
    limit = time.monotonic() + budget

    async def ask(batch: list[Job]) -> Answers:
        left = max(0.0, limit - time.monotonic())
        try:
            found = await source.query_many([j[3] for j in batch], window=window, timeout=left)
        except QueryRejected as exc:
            raise _named(exc, spec, jobs + batch) from None
        return {(i, side, role): a for (i, side, role, _), a in zip(batch, found, strict=True)}

    answers = await ask(jobs)
    probes = _probes(spec, rendered, answers)
    starts = _start_jobs(spec, answers)
    try:
        answers |= await ask(probes + starts) if probes or starts else {}
    except QueryRejected as exc:
        if exc.query not in {job[3] for job in starts}:
            raise
        answers |= await ask(probes) if probes else {}  # first samples count as starts
    return _collect(spec, rendered, answers, window)


def query_count(spec: AnalysisSpec) -> int:
    """Queries one call of ``spec`` sends (both sides, every role; probes not counted)."""
    return 2 * sum(len(spec.query_templates(metric)) for metric in spec.metrics)


def _jobs(rendered: list[tuple[dict[str, str], dict[str, str]]]) -> list[Job]:
    return [
        (i, side, role, query)
        for i, pair in enumerate(rendered)
        for side, queries_ in zip(SIDE_NAMES, pair, strict=True)
        for role, query in queries_.items()
    ]


def _start_jobs(spec: AnalysisSpec, answers: Answers) -> list[Job]:
    """The query of the start times of every pod the answers name (none without pods or
    warm-up)."""
    names = pod_starts.pod_names(answers.values())
    if not names or spec.warmup_seconds <= 0:
        return []
    return [(STARTS, STARTS_SIDE, STARTS_ROLE, pod_starts.query(names, namespace=spec.namespace))]


def _probes(
    spec: AnalysisSpec, rendered: list[tuple[dict[str, str], dict[str, str]]], answers: Answers
) -> list[Job]:
    """Visibility probes where a RATIO side's bad query found nothing but its total did."""
    jobs = []
    for i, (metric, pair) in enumerate(zip(spec.metrics, rendered, strict=True)):
        if spec.kind_of(metric) is not MetricKind.RATIO:
            continue
        for side, queries_ in zip(SIDE_NAMES, pair, strict=True):
            bad, total = answers[(i, side, "bad")], answers[(i, side, "total")]
            if isinstance(bad, SourceError) or isinstance(total, SourceError):
                continue
            probe = checks.visibility_probe(queries_["bad"], queries_["total"])
            if probe is not None and not checks.has_points(bad) and checks.has_points(total):
                jobs.append((i, side, PROBE, probe[0]))
    return jobs


def _collect(
    spec: AnalysisSpec,
    rendered: list[tuple[dict[str, str], dict[str, str]]],
    answers: Answers,
    window: Window,
) -> list[MetricData]:
    """Every metric's data from the answers; failures and unusable data become its error."""
    found = answers.get((STARTS, STARTS_SIDE, STARTS_ROLE), [])
    started = pod_starts.starts(found, window) if isinstance(found, list) else {}
    metrics = []
    for i, (metric, pair) in enumerate(zip(spec.metrics, rendered, strict=True)):
        settings = spec.settings(metric)
        shown = tuple(
            f"{side}: {q}" for side, qs in zip(SIDE_NAMES, pair, strict=True) for q in qs.values()
        )
        failures = [
            f"{side} {role} query: {a}"
            for (j, side, role), a in answers.items()
            if j == i and isinstance(a, SourceError)
        ]
        if failures:
            metrics.append(_failed(settings, failures[0], shown))
            continue
        problem = _unusable(i, pair, answers)
        if problem is not None:
            probes = tuple(
                f"{side} probe: {_probe_of(pair[k])}"
                for k, side in enumerate(SIDE_NAMES)
                if (i, side, PROBE) in answers
            )
            metrics.append(_failed(settings, problem, shown + probes))
            continue
        sides_data = []
        for side, queries_ in zip(SIDE_NAMES, pair, strict=True):
            results = {role: answers[(i, side, role)] for role in queries_}
            try:
                sides_data.append(series.assemble(settings.kind, results, window, queries_))  # type: ignore[arg-type]
            except QueryRejected as exc:
                raise QueryRejected(
                    f"metric {metric.name}: {exc}", query=exc.query, metric=metric.name
                ) from None
        base, can = sides_data
        notes = tuple(f"baseline: {n}" for n in base.notes) + tuple(
            f"canary: {n}" for n in can.notes
        )
        metrics.append(
            MetricData(
                settings, base.series, can.series, queries=shown, notes=notes, pod_starts=started
            )
        )
    return metrics


def _unusable(i: int, pair: tuple[dict[str, str], dict[str, str]], answers: Answers) -> str | None:
    """Why metric ``i``'s fetched data cannot be judged (see :mod:`gatekeeper.sources.checks`)."""
    for side, queries_ in zip(SIDE_NAMES, pair, strict=True):
        results = {role: answers[(i, side, role)] for role in queries_}
        problem = checks.unusable_counts(side, results, queries_)  # type: ignore[arg-type]
        if problem is not None:
            return problem
        probe = answers.get((i, side, PROBE))
        if isinstance(probe, list) and not checks.has_points(probe):
            found = checks.visibility_probe(queries_["bad"], queries_["total"])
            labels = ", ".join(found[1]) if found else "?"
            return (
                f"the {side}'s errors cannot be seen: its total series lack the label "
                f"{labels} that the bad-event query tests, so zero bad events would be a "
                "guess; fix the query or the instrumentation"
            )
    return None


def _probe_of(queries_: dict[str, str]) -> str:
    found = checks.visibility_probe(queries_["bad"], queries_["total"])
    return "?" if found is None else found[0]


def _failed(settings: MetricSettings, error: str, shown: tuple[str, ...]) -> MetricData:
    empty = RatioSeries(bad=np.zeros(0), total=np.zeros(0))
    return MetricData(settings, empty, empty, error=error, queries=shown)


def _named(exc: QueryRejected, spec: AnalysisSpec, jobs: list[Job]) -> QueryRejected:
    for i, _, _, query in jobs:
        if query == exc.query:
            name = spec.metrics[i].name
            return QueryRejected(f"metric {name}: {exc} [query: {query}]", query=query, metric=name)
    return exc


def analyze(
    spec: AnalysisSpec,
    *,
    data: DataSource,
    sides: Sides,
    window: Window,
    look: LookPosition | None = None,
    seen: Callable[[Sequence[MetricData], Verdict], None] | None = None,
) -> Verdict:
    """Fetch both sides of every metric over ``window`` from ``data`` and judge them.

    ``seen``, if given, is shown the fetched data and the verdict (the verdict pages keep
    them).
    """
    metrics = data.fetch(spec, sides=sides, window=window)
    verdict = judge(metrics, spec.judge_settings(look=look, interval_seconds=window.step))
    if seen is not None:
        seen(metrics, verdict)
    return verdict
