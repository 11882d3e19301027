"""The Analyze RPC: resolve the spec, check the window, fetch, judge.

Named specs come from ``--spec-dir`` (every ``*.yaml``, ``*.yml`` and ``*.json``, named by
file stem). Inline specs may use only built-in templates unless the server runs with
``--allow-custom-queries``: callers must not run arbitrary PromQL on a shared Prometheus.
Each request's window is bounded (points per query and length), so one call cannot ask the
source for months of data, and so is its fan-out (metrics per spec, queries per call).

A Prometheus source is fetched on the event loop within the caller's deadline (less a margin
for judging): past it the verdict is ERROR naming the metric and the source, and a call
that is cancelled (its client left, or the server shuts down) cancels its queries.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from gatekeeper import engine, preflight, wire
from gatekeeper.api.v1 import gatekeeper_pb2 as pb
from gatekeeper.errors import FailedPrecondition, FieldViolation, InvalidArgument, collect
from gatekeeper.sources import queries
from gatekeeper.sources.base import BatchSource, MetricSource, Window
from gatekeeper.spec import AnalysisSpec, format_duration, load_spec
from gatekeeper.stats.model import LookPosition, MetricData
from gatekeeper.stats.results import Verdict

DEFAULT_MAX_POINTS = 2000
#: Metrics one spec may have, and queries (both sides, every role) one call may send.
DEFAULT_MAX_SPEC_METRICS = 100
DEFAULT_MAX_QUERIES = 400
#: Of the caller's remaining time, what the fetch leaves for judging and answering.
ANSWER_MARGIN_SECONDS = 0.5
ANSWER_MARGIN_SHARE = 0.1
DEFAULT_MAX_WINDOW_SECONDS = 7 * 86_400.0
DEFAULT_PREFLIGHT_LOOKBACK_SECONDS = 86_400.0
#: An Analyze without ``start`` looks this far back for the canary's first sample.
DEFAULT_LOOKBACK_SECONDS = 3600.0
SPEC_SUFFIXES = (".yaml", ".yml", ".json")


def load_spec_dir(folder: Path) -> dict[str, AnalysisSpec]:
    """Every spec of a folder by file stem; a bad file is a startup error naming it."""
    specs: dict[str, AnalysisSpec] = {}
    for path in sorted(folder.iterdir()):
        if path.suffix not in SPEC_SUFFIXES:
            continue
        try:
            specs[path.stem] = load_spec(path.read_text(encoding="utf-8"), field=path.name)
        except InvalidArgument as exc:
            raise FailedPrecondition(f"spec {path}: {exc}") from None
    return specs


@dataclass(frozen=True, slots=True, eq=False)
class Analyzed:
    """One Analyze verdict with the data it was judged on (for the verdict pages)."""

    request: pb.AnalyzeRequest
    metrics: tuple[MetricData, ...]
    verdict: Verdict
    window: Window
    look: LookPosition | None


@dataclass(frozen=True, slots=True)
class AnalysisService:
    """What Analyze needs: a data source, the named specs and the limits."""

    data: engine.DataSource | None
    promql: MetricSource | None = None
    specs: dict[str, AnalysisSpec] = field(default_factory=dict)
    allow_custom_queries: bool = False
    max_points: int = DEFAULT_MAX_POINTS
    max_window_seconds: float = DEFAULT_MAX_WINDOW_SECONDS
    max_spec_metrics: int = DEFAULT_MAX_SPEC_METRICS
    max_queries: int = DEFAULT_MAX_QUERIES
    on_analyzed: Callable[[Analyzed], None] | None = None

    def resolve(self, request: pb.AnalyzeRequest) -> AnalysisSpec:
        """The request's spec, within the fan-out limits (see :meth:`_resolve`)."""
        spec = self._resolve(request)
        field_ = "spec_name" if request.spec_name else "spec"
        if len(spec.metrics) > self.max_spec_metrics:
            raise InvalidArgument.single(
                field_,
                f"the spec has {len(spec.metrics)} metrics; at most {self.max_spec_metrics} "
                "are allowed per spec (the server's --max-spec-metrics)",
            )
        count = engine.query_count(spec)
        if count > self.max_queries:
            raise InvalidArgument.single(
                field_,
                f"the spec sends {count} queries per call (both sides, every role); at most "
                f"{self.max_queries} are allowed (the server's --max-queries)",
            )
        return spec

    def _resolve(self, request: pb.AnalyzeRequest) -> AnalysisSpec:
        """The request's spec: inline (checked against the custom-query rule) or named."""
        if request.spec and request.spec_name:
            raise InvalidArgument.single("spec", "give either spec or spec_name, not both")
        if request.spec_name:
            found = self.specs.get(request.spec_name)
            if found is None:
                raise _unknown_spec(request.spec_name)
            return found
        if not request.spec.strip():
            raise InvalidArgument.single(
                "spec", "an analysis spec (YAML or JSON) or spec_name is required"
            )
        spec = load_spec(request.spec)
        if spec.custom_queries and not self.allow_custom_queries:
            custom = ", ".join(m.name for m in spec.metrics if m.custom)
            raise FailedPrecondition(
                f"inline specs may use built-in templates only (custom queries in {custom}); "
                "use a named spec, or start the server with --allow-custom-queries"
            )
        return spec

    def window(self, request: pb.AnalyzeRequest, spec: AnalysisSpec, *, now: float) -> Window:
        """The request's window, checked against the limits.

        Without ``start`` (and not a preflight) the window is the ``lookback`` before ``end``
        (default: now, rounded down to a whole interval), on a grid of whole intervals; the
        analysis's own start is then found in it (:meth:`run`).
        """
        problems: list[FieldViolation] = []
        step = _seconds(request, "interval") or spec.interval_seconds
        if step <= 0:
            problems.append(FieldViolation("interval", "must be longer than 0s"))
        lookback = _seconds(request, "lookback")
        if lookback is not None and lookback <= 0:
            problems.append(FieldViolation("lookback", "must be longer than 0s (default 1h)"))
        end = request.end.ToDatetime().timestamp() if request.HasField("end") else 0.0
        start = request.start.ToDatetime().timestamp() if request.HasField("start") else 0.0
        if request.preflight:
            end = end or now
            start = start or end - DEFAULT_PREFLIGHT_LOOKBACK_SECONDS
        elif not request.HasField("start"):
            collect(problems)
            end = end or math.floor(now / step) * step
            start = end - math.ceil((lookback or DEFAULT_LOOKBACK_SECONDS) / step) * step
        elif not request.HasField("end"):
            problems.append(FieldViolation("end", "is required with start (the window's end)"))
        collect(problems)
        return self._bounded(request, start=start, end=end, step=step)

    def _bounded(
        self, request: pb.AnalyzeRequest, *, start: float, end: float, step: float
    ) -> Window:
        """The window, if it is inside the limits of length and points."""
        if end <= start:
            raise InvalidArgument.single("end", "must be after start")
        if end - start > self.max_window_seconds:
            field_ = "start" if request.HasField("start") else "lookback"
            raise InvalidArgument.single(
                field_,
                f"the window may be at most {format_duration(self.max_window_seconds)} long",
            )
        if not request.preflight and (end - start) / step > self.max_points:
            raise InvalidArgument.single(
                "interval",
                f"the window has {int((end - start) / step)} intervals; at most {self.max_points} "
                "are allowed: widen the interval or shorten the window",
            )
        return Window(start=start, end=end, step=step)

    def sides(self, request: pb.AnalyzeRequest) -> engine.Sides:
        """Both selectors, required."""
        collect(
            FieldViolation(name, 'is required: PromQL label matchers such as version="v2"')
            for name in ("baseline_selector", "canary_selector")
            if not getattr(request, name).strip()
            and not (request.preflight and name == "canary_selector")
        )
        _distinct_sides(request)
        return engine.Sides(
            baseline=request.baseline_selector, canary=request.canary_selector or ""
        )

    def run(self, request: pb.AnalyzeRequest) -> Verdict:
        """Resolve, fetch and judge (blocking: call it from a worker thread)."""
        if self.data is None:
            raise FailedPrecondition(
                "this server has no metric source: start it with --prometheus URL"
            )
        if request.preflight:
            if self.promql is None:
                raise FailedPrecondition("preflight needs a Prometheus source (--prometheus URL)")
            spec = self.resolve(request)
            window = self.window(request, spec, now=time.time())
            return preflight.run(
                spec,
                source=self.promql,
                baseline=self.sides(request).baseline,
                end=window.end,
                lookback_seconds=window.end - window.start,
            )
        spec, window, sides, look = self.prepare(request)
        assert self.data is not None  # prepare checked it
        if not request.HasField("start"):
            window, look = self.stateless(spec, sides=sides, window=window, look=look)
        return engine.analyze(
            spec,
            data=self.data,
            sides=sides,
            window=window,
            look=look,
            seen=self._seen(request, window, look),
        )

    def _seen(
        self, request: pb.AnalyzeRequest, window: Window, look: LookPosition | None
    ) -> Callable[[Sequence[MetricData], Verdict], None] | None:
        """What tells :attr:`on_analyzed` of the verdict, if anything listens."""
        hook = self.on_analyzed
        if hook is None:
            return None

        def seen(metrics: Sequence[MetricData], verdict: Verdict) -> None:
            hook(Analyzed(request, tuple(metrics), verdict, window, look))

        return seen

    async def _preflight(
        self, request: pb.AnalyzeRequest, source: BatchSource, timeout: float | None
    ) -> Verdict:
        """A preflight on the event loop, within the caller's deadline (see :meth:`run`)."""
        spec = self.resolve(request)
        window = self.window(request, spec, now=time.time())
        return await preflight.run_async(
            spec,
            source=source,
            baseline=self.sides(request).baseline,
            end=window.end,
            lookback_seconds=window.end - window.start,
            timeout=timeout,
        )

    def prepare(
        self, request: pb.AnalyzeRequest
    ) -> tuple[AnalysisSpec, Window, engine.Sides, LookPosition | None]:
        """The spec, window, sides and look of a (non-preflight) request, all checked."""
        if self.data is None:
            raise FailedPrecondition(
                "this server has no metric source: start it with --prometheus URL"
            )
        spec = self.resolve(request)
        window = self.window(request, spec, now=time.time())
        sides = self.sides(request)
        look = None
        if request.HasField("look"):
            if request.look.index < 1 and request.HasField("start"):
                raise InvalidArgument.single("look.index", "must be >= 1 (1-based)")
            look = LookPosition(index=request.look.index, planned=max(0, request.look.planned))
        return spec, window, sides, look

    def stateless(
        self,
        spec: AnalysisSpec,
        *,
        sides: engine.Sides,
        window: Window,
        look: LookPosition | None,
    ) -> tuple[Window, LookPosition]:
        """The analysis's window and look for a request without ``start`` (blocking).

        The analysis starts at the canary's first sample within the lookback
        (:func:`gatekeeper.preflight.first_sample`); the look index is the number of whole
        intervals since then (a look every interval), unless the request gives one. Both
        depend only on the request and the data, so every replica answers alike. Without
        canary data in the lookback the whole lookback is analysed: the canary's metrics
        are NO_DATA.
        """
        source = self._stateless_source()
        first = preflight.first_sample(spec, source=source, selector=sides.canary, window=window)
        return _from_first_sample(window, look, first)

    async def stateless_async(
        self,
        spec: AnalysisSpec,
        *,
        sides: engine.Sides,
        window: Window,
        look: LookPosition | None,
        timeout: float | None,
    ) -> tuple[Window, LookPosition]:
        """:meth:`stateless` on the event loop, within ``timeout`` seconds."""
        source = self._stateless_source()
        assert isinstance(source, BatchSource)
        first = await preflight.first_sample_async(
            spec, source=source, selector=sides.canary, window=window, timeout=timeout
        )
        return _from_first_sample(window, look, first)

    def _stateless_source(self) -> MetricSource:
        if self.promql is None:
            raise FailedPrecondition(
                "an Analyze without start finds the analysis's start in the data and needs a "
                "Prometheus source (--prometheus URL); give start otherwise"
            )
        return self.promql

    async def analyze(self, data: bytes, *, time_remaining: float | None = None) -> bytes:
        """Decode, fetch and judge, within the caller's deadline; encode.

        A :class:`~gatekeeper.sources.base.BatchSource` (Prometheus) is fetched on the event
        loop, cancellable and within ``time_remaining`` less a margin for judging, so that a
        slow source gives a verdict ERROR before the caller gives up; only the judging then
        runs in a thread. Other sources (recorded data, preflight) run in a thread. Without
        ``start`` the analysis's own start is found in the data first, within the same
        deadline.
        """
        request = parse_analyze_request(data)
        source = self.data.source if isinstance(self.data, engine.PromQLData) else None
        if request.preflight and isinstance(self.promql, BatchSource):
            verdict = await self._preflight(request, self.promql, fetch_budget(time_remaining))
            return wire.verdict_message(verdict).SerializeToString()
        if request.preflight or not isinstance(source, BatchSource):
            verdict = await asyncio.to_thread(self.run, request)
            return wire.verdict_message(verdict).SerializeToString()
        limit = None if time_remaining is None else time.monotonic() + time_remaining
        spec, window, sides, look = self.prepare(request)
        if not request.HasField("start"):
            window, look = await self.stateless_async(
                spec, sides=sides, window=window, look=look, timeout=fetch_budget(time_remaining)
            )
        left = None if limit is None else max(0.0, limit - time.monotonic())
        metrics = await engine.fetch_async(
            spec, source=source, sides=sides, window=window, timeout=fetch_budget(left)
        )
        settings = spec.judge_settings(look=look, interval_seconds=window.step)
        verdict = await asyncio.to_thread(engine.judge, metrics, settings)
        seen = self._seen(request, window, look)
        if seen is not None:
            seen(metrics, verdict)
        return wire.verdict_message(verdict).SerializeToString()


def _seconds(request: pb.AnalyzeRequest, name: str) -> float | None:
    """A duration field in seconds; None when it is absent."""
    if not request.HasField(name):  # type: ignore[arg-type]
        return None
    return float(getattr(request, name).ToTimedelta().total_seconds())


def _from_first_sample(
    window: Window, look: LookPosition | None, first: float | None
) -> tuple[Window, LookPosition]:
    """The window from the canary's first sample on, and the look a look every interval gives."""
    if first is not None and first > window.start:
        window = Window(start=first, end=window.end, step=window.step)
    planned = 0 if look is None else look.planned
    if look is not None and look.index >= 1:
        return window, look
    return window, LookPosition(index=max(1, window.points), planned=planned)


def fetch_budget(time_remaining: float | None) -> float | None:
    """Seconds the fetch may take of the caller's remaining time (None: no deadline)."""
    if time_remaining is None:
        return None
    margin = min(ANSWER_MARGIN_SECONDS, ANSWER_MARGIN_SHARE * time_remaining)
    return max(0.0, time_remaining - margin)


def _unknown_spec(name: str) -> InvalidArgument:
    """An unknown ``spec_name``: named (shortened), without listing the served specs, which
    are the operator's business, not every caller's."""
    shown = name if len(name) <= 100 else name[:100] + "..."
    return InvalidArgument.single(
        "spec_name",
        f"unknown spec {shown!r}: allowed are the names of the specs in the server's "
        "--spec-dir (file stems); ask its operator",
    )


def _distinct_sides(request: pb.AnalyzeRequest) -> None:
    """Refuse a canary selector that selects what the baseline's does (the same matchers,
    repeated or reordered): the canary would be judged against itself."""
    if request.preflight or not request.canary_selector.strip():
        return
    if queries.matcher_set(request.canary_selector) == queries.matcher_set(
        request.baseline_selector
    ):
        raise InvalidArgument.single(
            "canary_selector",
            "selects the same series as baseline_selector (the same label matchers); "
            'allowed: matchers that tell the canary from the baseline, e.g. version="v2"',
        )


def parse_analyze_request(data: bytes) -> pb.AnalyzeRequest:
    """Decode an AnalyzeRequest; bad bytes are bad input."""
    request = pb.AnalyzeRequest()
    try:
        request.ParseFromString(data)
    except Exception as exc:
        raise InvalidArgument.single(
            "request",
            f"not a gatekeeper.api.v1.AnalyzeRequest in the protobuf binary encoding: {exc}",
        ) from None
    return request
