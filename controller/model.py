"""The Canary resource: its spec, parsed and validated once, and its status.

Pure: no Kubernetes client, no gRPC. The spec is read from the object's ``spec`` (a
mapping as the API server returns it); every problem is reported with the path of the
field and the values allowed (``spec.steps[2].setWeight: must be an integer 0..100, got
120``). The status is what the stepper reads and writes: it is the single source of truth
of a rollout's progress, serialised with every key present (``None`` clears a key under a
JSON merge patch).
"""

from __future__ import annotations

import datetime
import enum
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

GROUP = "gatekeeper.dev"
VERSION = "v1alpha1"
KIND = "Canary"
PLURAL = "canaries"

ROUTER_TYPES = ("gatewayAPI", "istio", "smi", "replicas", "memory")
BASELINE_MODES = ("stable", "dedicated")
ON_INCONCLUSIVE = ("extend", "rollback", "pause")
STEP_KINDS = ("setWeight", "pause", "analysis", "setHeaderRoute", "loadTest")
SMI_VERSIONS = (
    "split.smi-spec.io/v1alpha2",
    "split.smi-spec.io/v1alpha3",
    "split.smi-spec.io/v1alpha4",
)

DEFAULT_PROGRESS_DEADLINE_SECONDS = 600
DEFAULT_INTERVAL_SECONDS = 60.0
DEFAULT_LOOKS = 10
DEFAULT_CONSECUTIVE_ERROR_LIMIT = 3
DEFAULT_ON_INCONCLUSIVE = "pause"
DEFAULT_LOAD_TEST_IMAGE = "williamyeh/hey:latest"
#: hey's ``-q`` is a rate per worker: ``{{rpsPerWorker}}`` x ``{{concurrency}}`` = ``{{rps}}``.
DEFAULT_LOAD_TEST_COMMAND = (
    "hey",
    "-z",
    "{{duration}}s",
    "-q",
    "{{rpsPerWorker}}",
    "-c",
    "{{concurrency}}",
    "{{url}}",
)
#: Placeholders of a load test's command items (each item is one argv entry, never a shell).
LOAD_TEST_PLACEHOLDERS = (
    "rps",
    "rpsPerWorker",
    "concurrency",
    "duration",
    "url",
    "namespace",
    "name",
)
#: Caps of hint-sized load tests when ``maxRps`` / ``maxDuration`` are not given.
DEFAULT_LOAD_TEST_MAX_RPS = 20.0
DEFAULT_LOAD_TEST_MAX_DURATION_SECONDS = 600.0
#: Requests per second one load generator worker is given at most (sets the concurrency).
LOAD_TEST_RPS_PER_WORKER = 10.0
#: Pod names of a Deployment are ``<deployment>-<replicaset hash>-<pod hash>``.
DEFAULT_BASELINE_SELECTOR = 'namespace="{{namespace}}",pod=~"{{baseline}}-[a-z0-9]+-[a-z0-9]+"'
DEFAULT_CANARY_SELECTOR = 'namespace="{{namespace}}",pod=~"{{canary}}-[a-z0-9]+-[a-z0-9]+"'

_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+)s)?(?:(\d+)ms)?$")
_PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}")
SELECTOR_PLACEHOLDERS = ("namespace", "name", "stable", "baseline", "canary")


class SpecError(ValueError):
    """A Canary spec that cannot be run; each problem names its field.

    Attributes
    ----------
    problems : tuple of str
        ``field: what is wrong, what is allowed``.
    """

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(self.problems))


def parse_duration(text: object, *, path: str) -> float:
    """Seconds of ``30s``, ``5m``, ``1h30m`` or ``500ms``; a number is taken as seconds."""
    if isinstance(text, bool):
        raise SpecError([f"{path}: must be a duration such as 30s, 5m or 1h30m, got {text!r}"])
    if isinstance(text, int | float):
        if text < 0:
            raise SpecError([f"{path}: must not be negative, got {text!r}"])
        return float(text)
    match = _DURATION.match(text.strip()) if isinstance(text, str) else None
    if match is None or not any(match.groups()):
        raise SpecError([f"{path}: must be a duration such as 30s, 5m or 1h30m, got {text!r}"])
    hours, minutes, seconds, millis = (int(g) if g else 0 for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds + millis / 1000


def format_duration(seconds: float) -> str:
    """``90`` -> ``1m30s`` (whole seconds), ``0.5`` -> ``500ms``."""
    if seconds != int(seconds):
        return f"{round(seconds * 1000)}ms"
    hours, rest = divmod(int(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    text = (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "")
    return text + (f"{secs}s" if secs or not text else "")


# --- spec -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class HeaderMatch:
    """One header condition of a header route: ``exact`` value or ``regex``."""

    name: str
    exact: str | None = None
    regex: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SetWeight:
    """Route ``weight`` percent of the traffic to the canary."""

    weight: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Pause:
    """Wait ``duration_seconds``, or (None) until a human resumes: a manual gate."""

    duration_seconds: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class LoadTest:
    """Generate canary traffic: ``rps`` for ``duration_seconds``, within the caps.

    A ``loadTest`` step runs one; an analysis with ``loadTest`` runs one sized by the
    gatekeeper's LoadHint after an INCONCLUSIVE look (``rps``/``duration_seconds`` of the
    template are then the caps, the action carries the sized values).
    ``command`` items are templates (one argv entry each, never a shell string) with the
    placeholders of :data:`LOAD_TEST_PLACEHOLDERS` as ``{{name}}``.
    ``concurrency`` None: one worker per :data:`LOAD_TEST_RPS_PER_WORKER` requests/s.
    """

    rps: float
    duration_seconds: float
    max_rps: float
    max_duration_seconds: float
    image: str = DEFAULT_LOAD_TEST_IMAGE
    command: tuple[str, ...] = DEFAULT_LOAD_TEST_COMMAND
    url: str | None = None
    concurrency: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Analysis:
    """Ask the gatekeeper for a verdict every interval: this step's part of the rollout's analysis.

    Attributes
    ----------
    spec, spec_name : str, optional
        The analysis spec inline (YAML or JSON text), or the name of one the gatekeeper
        was started with; exactly one.
    interval_seconds : float
        Spacing of the looks (and of the data points).
    looks : int
        This step's looks; ``Look.planned`` is their sum over the plan's analysis steps.
    warmup_seconds : float
        From the moment the router confirms the weight to the window's start; only the
        rollout's first analysis step has it (later steps extend the same window).
    on_inconclusive : str
        The final analysis step still INCONCLUSIVE after its extra looks: ``pause`` (a
        human decides; the default), ``rollback``, or ``extend`` (look on, another
        ``max_extra_looks`` at a time, until PASS, FAIL or a human).
    max_extra_looks : int
        Looks the final analysis step takes beyond ``looks``, holding its weight, while
        INCONCLUSIVE.
    consecutive_error_limit : int
        ERROR verdicts or an unreachable gatekeeper this many times in a row roll back.
    baseline_selector, canary_selector : str
        PromQL label matchers of both sides, with ``{{namespace}}``, ``{{name}}``,
        ``{{stable}}``, ``{{baseline}}`` and ``{{canary}}`` placeholders.
    load_test : LoadTest, optional
        Run a load test sized by the LoadHint of an INCONCLUSIVE look (its ``max_rps`` and
        ``max_duration_seconds`` bound it); None: never (looks just go on).
    """

    spec: str | None = None
    spec_name: str | None = None
    interval_seconds: float = DEFAULT_INTERVAL_SECONDS
    looks: int = DEFAULT_LOOKS
    warmup_seconds: float = DEFAULT_INTERVAL_SECONDS
    on_inconclusive: str = DEFAULT_ON_INCONCLUSIVE
    max_extra_looks: int = DEFAULT_LOOKS
    consecutive_error_limit: int = DEFAULT_CONSECUTIVE_ERROR_LIMIT
    baseline_selector: str = DEFAULT_BASELINE_SELECTOR
    canary_selector: str = DEFAULT_CANARY_SELECTOR
    load_test: LoadTest | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SetHeaderRoute:
    """Route requests matching every header condition to the canary; empty: remove."""

    match: tuple[HeaderMatch, ...] = ()


Step = SetWeight | Pause | Analysis | SetHeaderRoute | LoadTest


@dataclass(frozen=True, slots=True, kw_only=True)
class RouterSpec:
    """Which traffic router, and the resource it manages.

    Attributes
    ----------
    type : str
        One of :data:`ROUTER_TYPES`.
    resource : str
        The HTTPRoute, VirtualService or TrafficSplit name (default: the Canary's name);
        unused by ``replicas`` and ``memory``.
    parent_refs : tuple of mapping
        gatewayAPI: the HTTPRoute's ``parentRefs`` when the controller creates it.
    hosts : tuple of str
        gatewayAPI ``hostnames`` / istio ``hosts`` when the controller creates the route.
    gateways : tuple of str
        istio: the VirtualService's ``gateways`` when the controller creates it.
    root_service : str
        smi: the apex Service clients address (default: the target's name).
    api_version : str
        smi: the TrafficSplit's apiVersion, one of :data:`SMI_VERSIONS`.
    total_replicas : int, optional
        replicas: pods shared by stable and canary (default: the stable's size).
    """

    type: str
    resource: str = ""
    parent_refs: tuple[Mapping[str, Any], ...] = ()
    hosts: tuple[str, ...] = ()
    gateways: tuple[str, ...] = ()
    root_service: str = ""
    api_version: str = SMI_VERSIONS[0]
    total_replicas: int | None = None

    @property
    def supports_header_routes(self) -> bool:
        """Whether a header match can be routed (Gateway API, Istio, memory)."""
        return self.type in ("gatewayAPI", "istio", "memory")


@dataclass(frozen=True, slots=True, kw_only=True)
class ServicePort:
    """The port of the ``-stable``/``-canary``/``-baseline`` Services."""

    port: int = 80
    target_port: int | str = 8080
    name: str = "http"


@dataclass(frozen=True, slots=True, kw_only=True)
class CanarySpec:
    """A parsed, validated Canary spec (see :func:`parse_spec`)."""

    target: str
    router: RouterSpec
    service: ServicePort = field(default_factory=ServicePort)
    baseline: str = "stable"
    progress_deadline_seconds: float = DEFAULT_PROGRESS_DEADLINE_SECONDS
    steps: tuple[Step, ...] = ()

    @property
    def dedicated_baseline(self) -> bool:
        """Whether a fresh ``<name>-baseline`` Deployment is the baseline."""
        return self.baseline == "dedicated"


# --- parsing ----------------------------------------------------------------------------

T = TypeVar("T")


class _Reader:
    """Reads typed fields of a mapping at a path, collecting problems instead of raising."""

    def __init__(self, data: object, path: str, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            self.fail(f"must be an object, got {type(data).__name__}")
            data = {}
        self.data: Mapping[str, Any] = data

    def fail(self, message: str, key: str | None = None) -> None:
        where = self.path if key is None else f"{self.path}.{key}"
        self.problems.append(f"{where}: {message}")

    def known(self, *keys: str) -> None:
        for key in self.data:
            if key not in keys:
                self.fail(f"unknown field; allowed: {', '.join(keys)}", key)

    def typed(self, key: str, kind: type[T], default: T, what: str) -> T:
        value = self.data.get(key)
        if value is None:
            return default
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or isinstance(value, bool) is not (kind is bool):
            self.fail(f"must be {what}, got {value!r}", key)
            return default
        return value

    def string(self, key: str, default: str = "", *, required: bool = False) -> str:
        if required and not self.data.get(key):
            self.fail("is required (a non-empty string)", key)
        return self.typed(key, str, default, "a string")

    def integer(self, key: str, default: int, *, low: int, high: int | None = None) -> int:
        value = self.typed(key, int, default, "an integer")
        if value < low or (high is not None and value > high):
            span = f"{low}..{high}" if high is not None else f">= {low}"
            self.fail(f"must be an integer {span}, got {value!r}", key)
            return default
        return value

    def number(self, key: str, default: float, *, positive: bool = True) -> float:
        value = self.typed(key, float, default, "a number")
        if positive and value <= 0:
            self.fail(f"must be > 0, got {value!r}", key)
            return default
        return value

    def choice(self, key: str, default: str, allowed: Sequence[str]) -> str:
        value = self.typed(key, str, default, "a string")
        if value not in allowed:
            self.fail(f"must be one of {', '.join(allowed)}, got {value!r}", key)
            return default
        return value

    def duration(self, key: str, default: float | None) -> float | None:
        if self.data.get(key) is None:
            return default
        try:
            return parse_duration(self.data[key], path=f"{self.path}.{key}")
        except SpecError as exc:
            self.problems.extend(exc.problems)
            return default

    def strings(self, key: str) -> tuple[str, ...]:
        value = self.data.get(key) or []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.fail(f"must be a list of strings, got {value!r}", key)
            return ()
        return tuple(value)

    def child(self, key: str) -> _Reader:
        return _Reader(self.data.get(key), f"{self.path}.{key}", self.problems)

    def items(self, key: str) -> list[_Reader]:
        value = self.data.get(key) or []
        if not isinstance(value, list):
            self.fail(f"must be a list, got {type(value).__name__}", key)
            return []
        return [_Reader(v, f"{self.path}.{key}[{i}]", self.problems) for i, v in enumerate(value)]


def _router(reader: _Reader, name: str, target: str) -> RouterSpec:
    reader.known("type", "gatewayAPI", "istio", "smi", "replicas")
    if "type" not in reader.data:
        reader.fail(f"is required; allowed: {', '.join(ROUTER_TYPES)}", "type")
        return RouterSpec(type="memory")
    kind = reader.choice("type", "", ROUTER_TYPES)
    if not kind:
        return RouterSpec(type="memory")  # reported by choice()
    for other in ("gatewayAPI", "istio", "smi", "replicas"):
        if other != kind and reader.data.get(other) is not None:
            reader.fail(f"is set, but router.type is {kind!r}", other)
    options = reader.child(kind) if kind != "memory" else _Reader({}, "", [])
    if kind == "gatewayAPI":
        options.known("httpRoute", "parentRefs", "hostnames")
        parents = [p.data for p in options.items("parentRefs")]
        return RouterSpec(
            type=kind,
            resource=options.string("httpRoute", name),
            parent_refs=tuple(parents),
            hosts=options.strings("hostnames"),
        )
    if kind == "istio":
        options.known("virtualService", "hosts", "gateways")
        return RouterSpec(
            type=kind,
            resource=options.string("virtualService", name),
            hosts=options.strings("hosts"),
            gateways=options.strings("gateways"),
        )
    if kind == "smi":
        options.known("trafficSplit", "rootService", "apiVersion")
        return RouterSpec(
            type=kind,
            resource=options.string("trafficSplit", name),
            root_service=options.string("rootService", target),
            api_version=options.choice("apiVersion", SMI_VERSIONS[0], SMI_VERSIONS),
        )
    if kind == "replicas":
        options.known("totalReplicas")
        total = options.data.get("totalReplicas")
        return RouterSpec(
            type=kind,
            total_replicas=None if total is None else options.integer("totalReplicas", 1, low=1),
        )
    return RouterSpec(type=kind)


_ANALYSIS_KEYS = (
    "spec",
    "specName",
    "interval",
    "looks",
    "warmup",
    "onInconclusive",
    "maxExtraLooks",
    "consecutiveErrorLimit",
    "baselineSelector",
    "canarySelector",
    "loadTest",
)


def _analysis(reader: _Reader, defaults: Mapping[str, Any]) -> Analysis:
    """An analysis step: its own fields over the Canary's ``spec.analysis`` defaults."""
    reader.known(*_ANALYSIS_KEYS)
    merged = _Reader({**defaults, **reader.data}, reader.path, reader.problems)
    if merged.data.get("spec") and merged.data.get("specName"):
        if reader.data.get("spec") and reader.data.get("specName"):
            reader.fail("give either spec or specName, not both")
        elif reader.data.get("spec"):
            merged = _Reader({**merged.data, "specName": None}, reader.path, reader.problems)
        else:
            merged = _Reader({**merged.data, "spec": None}, reader.path, reader.problems)
    if not merged.data.get("spec") and not merged.data.get("specName"):
        reader.fail(
            "needs the analysis spec: spec (inline YAML/JSON) or specName (a spec the "
            "gatekeeper was started with), here or in spec.analysis"
        )
    interval = merged.duration("interval", DEFAULT_INTERVAL_SECONDS) or DEFAULT_INTERVAL_SECONDS
    looks = merged.integer("looks", DEFAULT_LOOKS, low=1, high=10_000)
    warmup = merged.duration("warmup", interval)
    selectors = {
        key: merged.string(key, default)
        for key, default in (
            ("baselineSelector", DEFAULT_BASELINE_SELECTOR),
            ("canarySelector", DEFAULT_CANARY_SELECTOR),
        )
    }
    for key, text in selectors.items():
        for placeholder in _PLACEHOLDER.findall(text):
            if placeholder not in SELECTOR_PLACEHOLDERS:
                merged.fail(
                    f"unknown placeholder {{{{{placeholder}}}}}; allowed: "
                    + ", ".join(f"{{{{{p}}}}}" for p in SELECTOR_PLACEHOLDERS),
                    key,
                )
    return Analysis(
        spec=merged.data.get("spec") or None,
        spec_name=merged.data.get("specName") or None,
        interval_seconds=interval,
        looks=looks,
        warmup_seconds=warmup if warmup is not None else interval,
        on_inconclusive=merged.choice("onInconclusive", DEFAULT_ON_INCONCLUSIVE, ON_INCONCLUSIVE),
        max_extra_looks=merged.integer("maxExtraLooks", looks, low=0, high=10_000),
        consecutive_error_limit=merged.integer(
            "consecutiveErrorLimit", DEFAULT_CONSECUTIVE_ERROR_LIMIT, low=1, high=100
        ),
        baseline_selector=selectors["baselineSelector"],
        canary_selector=selectors["canarySelector"],
        load_test=None
        if merged.data.get("loadTest") is None
        else _load_test(merged.child("loadTest"), hinted=True),
    )


def _header_route(reader: _Reader) -> SetHeaderRoute:
    reader.known("match")
    matches = []
    for item in reader.items("match"):
        item.known("name", "exact", "regex")
        exact = item.data.get("exact")
        regex = item.data.get("regex")
        if (exact is None) == (regex is None):
            item.fail("needs exactly one of exact or regex")
        matches.append(
            HeaderMatch(
                name=item.string("name", required=True),
                exact=item.string("exact") if exact is not None else None,
                regex=item.string("regex") if regex is not None else None,
            )
        )
    return SetHeaderRoute(match=tuple(matches))


_LOAD_TEST_KEYS = ("maxRps", "maxDuration", "image", "command", "url", "concurrency")


def _load_command(reader: _Reader) -> tuple[str, ...]:
    command = reader.strings("command") or DEFAULT_LOAD_TEST_COMMAND
    for item in command:
        for placeholder in _PLACEHOLDER.findall(item):
            if placeholder not in LOAD_TEST_PLACEHOLDERS:
                reader.fail(
                    f"unknown placeholder {{{{{placeholder}}}}}; allowed: "
                    + ", ".join(f"{{{{{p}}}}}" for p in LOAD_TEST_PLACEHOLDERS),
                    "command",
                )
    return command


def _load_test(reader: _Reader, *, hinted: bool = False) -> LoadTest:
    """A ``loadTest`` step, or (``hinted``) an analysis' load test sized by hints: caps only."""
    if hinted:
        reader.known(*_LOAD_TEST_KEYS)
        max_rps = reader.number("maxRps", DEFAULT_LOAD_TEST_MAX_RPS)
        cap = reader.duration("maxDuration", DEFAULT_LOAD_TEST_MAX_DURATION_SECONDS)
        rps, duration = max_rps, cap or DEFAULT_LOAD_TEST_MAX_DURATION_SECONDS
        max_duration: float = duration
    else:
        reader.known("rps", "duration", *_LOAD_TEST_KEYS)
        rps = reader.number("rps", 1.0)
        given = reader.duration("duration", None)
        if given is None:
            reader.fail("is required (a duration such as 5m)", "duration")
        duration = given or 0.0
        max_rps = reader.number("maxRps", max(rps, 1.0))
        max_duration = reader.duration("maxDuration", duration) or 0.0
    if rps > max_rps:
        reader.fail(f"must be <= maxRps ({max_rps:g}), got {rps:g}", "rps")
    if duration > max_duration:
        reader.fail(
            f"must be <= maxDuration ({format_duration(max_duration)}), "
            f"got {format_duration(duration)}",
            "duration",
        )
    concurrency = reader.data.get("concurrency")
    return LoadTest(
        rps=rps,
        duration_seconds=duration,
        max_rps=max_rps,
        max_duration_seconds=max_duration,
        image=reader.string("image", DEFAULT_LOAD_TEST_IMAGE) or DEFAULT_LOAD_TEST_IMAGE,
        command=_load_command(reader),
        url=reader.string("url") or None,
        concurrency=None
        if concurrency is None
        else reader.integer("concurrency", 1, low=1, high=1000),
    )


def _step(reader: _Reader, analysis_defaults: Mapping[str, Any]) -> Step | None:
    kinds = [k for k in STEP_KINDS if k in reader.data]
    unknown = [k for k in reader.data if k not in STEP_KINDS]
    if unknown or len(kinds) != 1:
        given = ", ".join(reader.data) or "none"
        reader.fail(f"must have exactly one of {', '.join(STEP_KINDS)}, got {given}")
        return None
    kind = kinds[0]
    if kind == "setWeight":
        return SetWeight(weight=reader.integer("setWeight", 0, low=0, high=100))
    if kind == "pause":
        pause = reader.child("pause")
        pause.known("duration")
        return Pause(duration_seconds=pause.duration("duration", None))
    if kind == "analysis":
        return _analysis(reader.child("analysis"), analysis_defaults)
    if kind == "setHeaderRoute":
        return _header_route(reader.child("setHeaderRoute"))
    return _load_test(reader.child("loadTest"))


def _check_sequence(steps: Sequence[Step | None], spec: CanarySpec, problems: list[str]) -> None:
    """Rules across steps: header routes, the router's abilities, a dedicated baseline."""
    header_from: int | None = None
    analysis_from: int | None = None
    for index, step in enumerate(steps):
        path = f"spec.steps[{index}]"
        if isinstance(step, SetHeaderRoute):
            if not spec.router.supports_header_routes:
                problems.append(
                    f"{path}.setHeaderRoute: router {spec.router.type!r} cannot route by "
                    "header; header routes need gatewayAPI, istio or memory"
                )
            if step.match and analysis_from is not None:
                problems.append(
                    f"{path}.setHeaderRoute: after the analysis of steps[{analysis_from}]; "
                    "a rollout's analysis is one window from its first analysis step, so "
                    "header routes (QA traffic) must come before every analysis step"
                )
            header_from = index if step.match else None
        if isinstance(step, Analysis) and analysis_from is None:
            analysis_from = index
        if isinstance(step, Analysis) and header_from is not None:
            problems.append(
                f"{path}.analysis: the header route of steps[{header_from}] is still active; "
                "analysis runs only without a header route so QA traffic is never judged: "
                "add a step `setHeaderRoute: {}` before it"
            )
        if isinstance(step, SetWeight) and spec.dedicated_baseline and step.weight > 50:
            problems.append(
                f"{path}.setWeight: with baseline dedicated the canary and the baseline get "
                f"the same weight, so at most 50, got {step.weight}"
            )


#: Analysis fields that only the final analysis step uses (the end of the rollout's analysis).
FINAL_ONLY = ("onInconclusive", "maxExtraLooks")


def _check_final_only(
    items: Sequence[_Reader], steps: Sequence[Step | None], problems: list[str]
) -> None:
    """An earlier analysis step that sets a field only the final one uses is a spec error."""
    analyses = [i for i, step in enumerate(steps) if isinstance(step, Analysis)]
    for index in analyses[:-1]:
        own = items[index].data.get("analysis")
        for key in FINAL_ONLY:
            if isinstance(own, Mapping) and key in own:
                problems.append(
                    f"spec.steps[{index}].analysis.{key}: applies only to the final analysis "
                    f"step (steps[{analyses[-1]}]); an earlier one ends after its looks "
                    "without FAIL, or at PASS: set it there or in spec.analysis"
                )


def parse_spec(raw: object, *, name: str) -> CanarySpec:
    """Parse and validate a Canary's ``spec``.

    Parameters
    ----------
    raw : mapping
        The object's ``spec`` as the API server returns it.
    name : str
        The Canary's name (defaults of resource names).

    Returns
    -------
    CanarySpec
        The validated spec.

    Raises
    ------
    SpecError
        Every problem found, each with its field path and the allowed values.
    """
    problems: list[str] = []
    reader = _Reader(raw, "spec", problems)
    reader.known(
        "targetRef",
        "service",
        "router",
        "baseline",
        "progressDeadlineSeconds",
        "analysis",
        "steps",
    )
    target_ref = reader.child("targetRef")
    target_ref.known("apiVersion", "kind", "name")
    target_ref.choice("apiVersion", "apps/v1", ("apps/v1",))
    target_ref.choice("kind", "Deployment", ("Deployment",))
    target = target_ref.string("name", required=True)
    service = reader.child("service")
    service.known("port", "targetPort", "name")
    target_port = service.data.get("targetPort", 8080)
    if not isinstance(target_port, int | str) or isinstance(target_port, bool):
        service.fail(f"must be a port number or name, got {target_port!r}", "targetPort")
        target_port = 8080
    router = _router(reader.child("router"), name, target)
    analysis_defaults = reader.child("analysis")
    analysis_defaults.known(*_ANALYSIS_KEYS)
    spec = CanarySpec(
        target=target,
        router=router,
        service=ServicePort(
            port=service.integer("port", 80, low=1, high=65535),
            target_port=target_port,
            name=service.string("name", "http") or "http",
        ),
        baseline=reader.choice("baseline", "stable", BASELINE_MODES),
        progress_deadline_seconds=float(
            reader.integer("progressDeadlineSeconds", DEFAULT_PROGRESS_DEADLINE_SECONDS, low=1)
        ),
    )
    items = reader.items("steps")
    steps = [_step(item, analysis_defaults.data) for item in items]
    _check_sequence(steps, spec, problems)
    _check_final_only(items, steps, problems)
    if problems:
        raise SpecError(problems)
    return replace(spec, steps=tuple(s for s in steps if s is not None))


def render_selector(template: str, *, values: Mapping[str, str]) -> str:
    """Fill ``{{placeholder}}`` slots of a selector template."""
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template)


# --- status -----------------------------------------------------------------------------


class Phase(enum.StrEnum):
    """Where a Canary is; the printer column ``Phase``."""

    INITIALIZING = "Initializing"
    IDLE = "Idle"
    PROGRESSING = "Progressing"
    PAUSED = "Paused"
    PROMOTING = "Promoting"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"

    @property
    def at_rest(self) -> bool:
        """No rollout in flight: a new target template starts one."""
        return self in (Phase.IDLE, Phase.SUCCEEDED, Phase.FAILED)


@dataclass(frozen=True, slots=True, kw_only=True)
class AnalysisState:
    """The rollout's one analysis, across its analysis steps (see :mod:`controller.plan`).

    Attributes
    ----------
    start : float
        The window's start (epoch seconds): the first analysis step's weight confirmation
        plus its warm-up. Every look judges ``[start, end]``, whatever its step.
    looks_taken : int
        Rollout-level index of the last look asked for (0: none yet).
    consecutive_errors : int
        ERROR verdicts or unreachable gatekeeper in a row.
    offset_seconds : float
        Shift of the current step's look schedule: looks are held while a load test runs,
        and the first look after it is due at once.
    retry_at : float, optional
        After an ERROR: when the same look is asked again (backoff); None: on schedule.
    looks_before_step : int
        Looks taken before the current analysis step; its look k (1-based) is due at
        ``step_origin + offset + k * interval``.
    step_origin : float, optional
        When the current step's schedule starts (None: ``start``, the first step).
    step_open : bool
        False between analysis steps: the next analysis step opens its schedule.
    granted_looks : int
        Looks granted beyond the final step's ``looks + maxExtraLooks`` (a resume after an
        INCONCLUSIVE pause, or ``onInconclusive: extend``).
    held : bool
        Paused by ``onInconclusive: pause``: a resume looks on instead of moving on.
    passed : bool
        The last verdict was PASS: the only way to promotion.
    """

    start: float
    looks_taken: int = 0
    consecutive_errors: int = 0
    offset_seconds: float = 0.0
    retry_at: float | None = None
    looks_before_step: int = 0
    step_origin: float | None = None
    step_open: bool = True
    granted_looks: int = 0
    held: bool = False
    passed: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class LoadTestState:
    """The load test the rollout runs (or ran last) for its current step.

    Attributes
    ----------
    step_index, look : int
        The step, and the look whose LoadHint sized it (0: a ``loadTest`` step).
    rps, duration_seconds : float
        The size it runs at (within the caps).
    started_at : float
        When the controller decided to run it.
    job : str
        The Job's name (deterministic: the same after a restart); "" until known.
    finished : bool
        The Job ended and the result was taken into account.
    """

    step_index: int
    look: int
    rps: float
    duration_seconds: float
    started_at: float
    job: str = ""
    finished: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class VerdictRecord:
    """One verdict of the rollout (the status keeps the last :data:`VERDICTS_KEPT`)."""

    step_index: int
    look: int
    decision: str
    summary: str


VERDICTS_KEPT = 5


@dataclass(frozen=True, slots=True, kw_only=True)
class Status:
    """A Canary's status: everything the stepper needs to continue after a restart."""

    phase: Phase = Phase.INITIALIZING
    message: str = ""
    observed_generation: int = 0
    stable_hash: str = ""
    canary_hash: str = ""
    failed_hash: str = ""
    replicas: int = 1
    step_index: int = 0
    step_started_at: float | None = None
    weight: int = 0
    weight_confirmed_at: float | None = None
    header_route: tuple[HeaderMatch, ...] = ()
    header_route_changed_at: float | None = None
    not_ready_since: float | None = None
    analysis: AnalysisState | None = None
    last_decision: str = ""
    last_summary: str = ""
    handled_request: str = ""
    load_test: LoadTestState | None = None
    verdicts: tuple[VerdictRecord, ...] = ()


def to_rfc3339(seconds: float | None) -> str | None:
    """``2024-05-01T14:00:00Z`` (UTC, milliseconds kept when not whole)."""
    if seconds is None:
        return None
    moment = datetime.datetime.fromtimestamp(seconds, tz=datetime.UTC)
    text = moment.isoformat(timespec="milliseconds" if seconds % 1 else "seconds")
    return text.replace("+00:00", "Z")


def from_rfc3339(text: object) -> float | None:
    """Epoch seconds of an RFC 3339 time; None for a missing or unreadable one."""
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _header_dicts(match: Sequence[HeaderMatch]) -> list[dict[str, str]] | None:
    if not match:
        return None
    pairs = [(("name", m.name), ("exact", m.exact), ("regex", m.regex)) for m in match]
    return [{k: v for k, v in items if v is not None} for items in pairs]


def status_to_dict(status: Status) -> dict[str, Any]:
    """The status as the CRD stores it; every key present (None clears it in a merge patch)."""
    analysis = status.analysis
    return {
        "phase": status.phase.value,
        "message": status.message or None,
        "observedGeneration": status.observed_generation,
        "stableHash": status.stable_hash or None,
        "canaryHash": status.canary_hash or None,
        "failedHash": status.failed_hash or None,
        "replicas": status.replicas,
        "stepIndex": status.step_index,
        "stepStartedAt": to_rfc3339(status.step_started_at),
        "weight": status.weight,
        "weightConfirmedAt": to_rfc3339(status.weight_confirmed_at),
        "headerRoute": _header_dicts(status.header_route),
        "headerRouteChangedAt": to_rfc3339(status.header_route_changed_at),
        "notReadySince": to_rfc3339(status.not_ready_since),
        "analysis": None
        if analysis is None
        else {
            "start": to_rfc3339(analysis.start),
            "looksTaken": analysis.looks_taken,
            "consecutiveErrors": analysis.consecutive_errors,
            "offsetSeconds": analysis.offset_seconds,
            "retryAt": to_rfc3339(analysis.retry_at),
            "looksBeforeStep": analysis.looks_before_step,
            "stepOrigin": to_rfc3339(analysis.step_origin),
            "stepOpen": analysis.step_open,
            "grantedLooks": analysis.granted_looks,
            "held": analysis.held,
            "passed": analysis.passed,
        },
        "lastDecision": status.last_decision or None,
        "lastSummary": status.last_summary or None,
        "handledRequest": status.handled_request or None,
        "loadTest": _load_test_dict(status.load_test),
        "verdicts": [
            {
                "stepIndex": v.step_index,
                "look": v.look,
                "decision": v.decision,
                "summary": v.summary,
            }
            for v in status.verdicts
        ]
        or None,
    }


def _load_test_dict(state: LoadTestState | None) -> dict[str, Any] | None:
    if state is None:
        return None
    return {
        "stepIndex": state.step_index,
        "look": state.look,
        "rps": state.rps,
        "durationSeconds": state.duration_seconds,
        "startedAt": to_rfc3339(state.started_at),
        "job": state.job or None,
        "finished": state.finished,
    }


def _number(value: object, default: float = 0.0) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    return float(value) if ok else default  # type: ignore[arg-type]


def _load_test_state(raw: object) -> LoadTestState | None:
    if not isinstance(raw, Mapping) or from_rfc3339(raw.get("startedAt")) is None:
        return None
    return LoadTestState(
        step_index=_int(raw.get("stepIndex")),
        look=_int(raw.get("look")),
        rps=_number(raw.get("rps")),
        duration_seconds=_number(raw.get("durationSeconds")),
        started_at=from_rfc3339(raw.get("startedAt")) or 0.0,
        job=_str(raw.get("job")),
        finished=raw.get("finished") is True,
    )


def _verdicts(raw: object) -> tuple[VerdictRecord, ...]:
    items = raw if isinstance(raw, list) else []
    return tuple(
        VerdictRecord(
            step_index=_int(v.get("stepIndex")),
            look=_int(v.get("look")),
            decision=_str(v.get("decision")),
            summary=_str(v.get("summary")),
        )
        for v in items
        if isinstance(v, Mapping)
    )


def _int(value: object, default: int = 0) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _str(value: object) -> str:
    return value if isinstance(value, str) else ""


def status_from_dict(raw: object) -> Status:
    """Read a stored status back; unknown or unreadable keys fall back to their defaults."""
    data: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    try:
        phase = Phase(data.get("phase", Phase.INITIALIZING.value))
    except ValueError:
        phase = Phase.INITIALIZING
    raw_analysis = data.get("analysis")
    analysis = None
    if isinstance(raw_analysis, Mapping) and from_rfc3339(raw_analysis.get("start")) is not None:
        analysis = AnalysisState(
            start=from_rfc3339(raw_analysis.get("start")) or 0.0,
            looks_taken=_int(raw_analysis.get("looksTaken")),
            consecutive_errors=_int(raw_analysis.get("consecutiveErrors")),
            offset_seconds=_number(raw_analysis.get("offsetSeconds")),
            retry_at=from_rfc3339(raw_analysis.get("retryAt")),
            looks_before_step=_int(raw_analysis.get("looksBeforeStep")),
            step_origin=from_rfc3339(raw_analysis.get("stepOrigin")),
            step_open=raw_analysis.get("stepOpen") is not False,
            granted_looks=_int(raw_analysis.get("grantedLooks")),
            held=raw_analysis.get("held") is True,
            passed=raw_analysis.get("passed") is True,
        )
    routes = data.get("headerRoute") or []
    header_route = tuple(
        HeaderMatch(name=_str(m.get("name")), exact=m.get("exact"), regex=m.get("regex"))
        for m in routes
        if isinstance(m, Mapping)
    )
    return Status(
        phase=phase,
        message=_str(data.get("message")),
        observed_generation=_int(data.get("observedGeneration")),
        stable_hash=_str(data.get("stableHash")),
        canary_hash=_str(data.get("canaryHash")),
        failed_hash=_str(data.get("failedHash")),
        replicas=_int(data.get("replicas"), 1),
        step_index=_int(data.get("stepIndex")),
        step_started_at=from_rfc3339(data.get("stepStartedAt")),
        weight=_int(data.get("weight")),
        weight_confirmed_at=from_rfc3339(data.get("weightConfirmedAt")),
        header_route=header_route,
        header_route_changed_at=from_rfc3339(data.get("headerRouteChangedAt")),
        not_ready_since=from_rfc3339(data.get("notReadySince")),
        analysis=analysis,
        last_decision=_str(data.get("lastDecision")),
        last_summary=_str(data.get("lastSummary")),
        handled_request=_str(data.get("handledRequest")),
        load_test=_load_test_state(data.get("loadTest")),
        verdicts=_verdicts(data.get("verdicts")),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Weights:
    """Traffic percentages of the canary and the dedicated baseline; stable gets the rest."""

    canary: int = 0
    baseline: int = 0

    @property
    def stable(self) -> int:
        """The stable's percentage."""
        return 100 - self.canary - self.baseline


def replica_split(*, total: int, weights: Weights) -> tuple[int, int, int]:
    """(stable, canary, baseline) pods approximating ``weights`` among ``total`` pods.

    A side with a positive weight gets at least one pod; the stable keeps the rest.
    """
    canary = 0 if weights.canary <= 0 else max(1, round(total * weights.canary / 100))
    baseline = 0 if weights.baseline <= 0 else max(1, round(total * weights.baseline / 100))
    return max(total - canary - baseline, 0), canary, baseline


REQUEST_ANNOTATION = f"{GROUP}/request"
REQUEST_VERBS = ("resume", "promote", "abort")


@dataclass(frozen=True, slots=True, kw_only=True)
class Intervention:
    """A human's request, from the annotation ``gatekeeper.dev/request: VERB/ID``."""

    verb: str
    id: str


def parse_intervention(text: object) -> Intervention | None:
    """The request of the annotation's value, or None when absent or malformed."""
    if not isinstance(text, str) or "/" not in text:
        return None
    verb, _, ident = text.partition("/")
    if verb not in REQUEST_VERBS or not ident:
        return None
    return Intervention(verb=verb, id=text)
