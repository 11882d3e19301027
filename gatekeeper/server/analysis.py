"""The Analyze RPC: resolve the spec, check the window, fetch, judge.

Named specs come from ``--spec-dir`` (every ``*.yaml``, ``*.yml`` and ``*.json``, named by
file stem). Inline specs may use only built-in templates unless the server runs with
``--allow-custom-queries``: callers must not run arbitrary PromQL on a shared Prometheus.
Each request's window is bounded (points per query and length), so one call cannot ask the
source for months of data.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path

from gatekeeper import engine, wire
from gatekeeper.api.v1 import gatekeeper_pb2 as pb
from gatekeeper.errors import FailedPrecondition, FieldViolation, InvalidArgument, collect
from gatekeeper.sources import queries
from gatekeeper.sources.base import MetricSource, Window
from gatekeeper.spec import AnalysisSpec, format_duration, load_spec
from gatekeeper.stats.model import LookPosition
from gatekeeper.stats.results import Verdict

DEFAULT_MAX_POINTS = 2000
DEFAULT_MAX_WINDOW_SECONDS = 7 * 86_400.0
DEFAULT_PREFLIGHT_LOOKBACK_SECONDS = 86_400.0
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


@dataclass(frozen=True, slots=True)
class AnalysisService:
    """What Analyze needs: a data source, the named specs and the limits."""

    data: engine.DataSource | None
    promql: MetricSource | None = None
    specs: dict[str, AnalysisSpec] = field(default_factory=dict)
    allow_custom_queries: bool = False
    max_points: int = DEFAULT_MAX_POINTS
    max_window_seconds: float = DEFAULT_MAX_WINDOW_SECONDS

    def resolve(self, request: pb.AnalyzeRequest) -> AnalysisSpec:
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
        """The request's window, checked against the limits."""
        problems: list[FieldViolation] = []
        step = (
            request.interval.ToTimedelta().total_seconds() if request.HasField("interval") else 0.0
        )
        step = step or spec.interval_seconds
        if step <= 0:
            problems.append(FieldViolation("interval", "must be longer than 0s"))
        end = request.end.ToDatetime().timestamp() if request.HasField("end") else 0.0
        start = request.start.ToDatetime().timestamp() if request.HasField("start") else 0.0
        if request.preflight:
            end = end or now
            start = start or end - DEFAULT_PREFLIGHT_LOOKBACK_SECONDS
        if not request.preflight and not request.HasField("start"):
            problems.append(FieldViolation("start", "is required (the analysis window's start)"))
        if not request.preflight and not request.HasField("end"):
            problems.append(FieldViolation("end", "is required (the analysis window's end)"))
        collect(problems)
        if end <= start:
            raise InvalidArgument.single("end", "must be after start")
        if end - start > self.max_window_seconds:
            raise InvalidArgument.single(
                "start",
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
        spec = self.resolve(request)
        window = self.window(request, spec, now=time.time())
        sides = self.sides(request)
        if request.preflight:
            if self.promql is None:
                raise FailedPrecondition("preflight needs a Prometheus source (--prometheus URL)")
            return engine.preflight(
                spec,
                source=self.promql,
                baseline=sides.baseline,
                end=window.end,
                lookback_seconds=window.end - window.start,
            )
        look = None
        if request.HasField("look"):
            if request.look.index < 1:
                raise InvalidArgument.single("look.index", "must be >= 1 (1-based)")
            look = LookPosition(index=request.look.index, planned=max(0, request.look.planned))
        return engine.analyze(spec, data=self.data, sides=sides, window=window, look=look)

    async def analyze(self, data: bytes) -> bytes:
        """Decode, run in a thread (fetching blocks), encode."""
        request = parse_analyze_request(data)
        verdict = await asyncio.to_thread(self.run, request)
        return wire.verdict_message(verdict).SerializeToString()


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
