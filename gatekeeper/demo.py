"""``gatekeeper demo``: two canary rollouts, start to finish, in one command.

No cluster, no Prometheus, no network: the real controller stepper walks a Canary's steps
with the in-memory router; a real gatekeeper gRPC server runs in-process on a free port and
analyses traffic that :class:`gatekeeper.live.LiveSimulation` generates live from the
weights the stepper sets. A healthy v2 is promoted; a broken v3 (errors only under load,
p99 up) is rolled back with no human step. The analysis steps form one analysis per
rollout. Both start with a quiet 5 % stage where the canary sees too little traffic to
settle it; at 25 % the verdict asks for load and a simulated load test supplies it.
Simulated time runs ``speed`` times faster than the wall clock; everything is seeded, so
every run tells the same story.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, TextIO

from controller import analysis as analyses
from controller.clock import ManualClock
from controller.model import CanarySpec, Phase, Status, parse_spec
from controller.routers.memory import MemoryRouter
from controller.stepper import (
    Action,
    Feedback,
    LoadTestFinished,
    Observation,
    RequestVerdict,
    RouteHeaders,
    RunLoadTest,
    SetWeights,
    Transition,
    advance,
)
from controller.workloads import Names
from gatekeeper import simulate
from gatekeeper.api.v1 import gatekeeper_pb2 as pb
from gatekeeper.client import GatekeeperClient
from gatekeeper.live import Behaviour, LiveSimulation
from gatekeeper.server import app

START = 1_800_000_000.0  # 2027-01-15T08:00:00Z: any fixed moment keeps the run reproducible
NAMESPACE = "shop"
NAMES = Names(canary="checkout", target="checkout")
TICK_SECONDS = 5.0
MAX_SIMULATED_SECONDS = 3 * 3600.0
#: The whole service: 40 requests a second, 0.05 % errors (99.95 % success), 50 ms median.
SERVICE = simulate.Scenario(
    rps=40.0, error_rate=0.0005, latency_median=0.05, step_seconds=TICK_SECONDS, pod_sigma=0.2
)
ANALYSIS_SPEC = """\
interval: 30s
metrics:
  - {name: error-rate, template: request-success-rate, critical: true, absolute_tolerance: 0.002}
  - {name: latency-p99, template: request-duration, quantile: 0.99, tolerance: 0.25, critical: true}
"""
CANARY = {
    "targetRef": {"name": "checkout"},
    "router": {"type": "memory"},
    "analysis": {
        "spec": ANALYSIS_SPEC,
        "interval": "30s",
        "looks": 10,
        "onInconclusive": "extend",
        "maxExtraLooks": 20,
        # A verdict that asks for load gets a load test sized by its hint, within these caps.
        "loadTest": {"maxRps": 50, "maxDuration": "10m"},
    },
    "steps": [
        {"setWeight": 5},
        {"analysis": {"looks": 6}},
        {"setWeight": 25},
        {"analysis": {}},
        {"setWeight": 50},
        {"analysis": {}},
    ],
}
#: v3 fails only under load: above 2.5 canary requests a second (the 5 % stage's organic
#: traffic is 2) it serves 14x the errors (99.3 % success, which an absolute 99 % gate
#: passes) and a slow tail (p99 up).
BROKEN = Behaviour(
    fault=simulate.Fault(
        simulate.FaultKind.ERRORS_AND_TAIL, factor=14.0, share=0.03, tail_factor=5.0
    ),
    under_load_rps=2.5,
)
ABSOLUTE_GATE = 0.99
GATE_FAILURE_LIMIT = 2
#: A load test is at least a modest, sustained load, and at most what the spec allows.
MIN_LOAD_RPS, MAX_LOAD_RPS = 10.0, 60.0
MIN_LOAD_SECONDS, MAX_LOAD_SECONDS = 300.0, 600.0


@dataclass(frozen=True, slots=True)
class Version:
    """A version to roll out and how it behaves."""

    name: str
    behaviour: Behaviour
    description: str


VERSIONS = (
    Version("v2", Behaviour(), "a healthy release"),
    Version("v3", BROKEN, "errors under load, p99 up"),
)


@dataclass(frozen=True, slots=True)
class Look:
    """One verdict of the rollout."""

    seconds: float
    step: int
    look: int  #: counted across the rollout's analysis steps
    planned: int  #: the looks of the whole plan
    weight: float
    decision: str
    summary: str


@dataclass(frozen=True, slots=True)
class GateOutcome:
    """What an absolute success-rate gate would have done on the same canary traffic."""

    decision: str
    at_seconds: float | None
    canary_bad_before: float


@dataclass(frozen=True, slots=True)
class RolloutReport:
    """How one rollout ended."""

    version: str
    description: str
    outcome: str
    step: int
    step_text: str
    seconds: float
    canary_requests: float
    canary_bad: float
    load_tests: tuple[dict[str, float], ...]
    looks: tuple[Look, ...]
    absolute_gate: GateOutcome


@dataclass(frozen=True, slots=True)
class DemoOptions:
    """How the demo runs: seed, simulated seconds per wall second (0: no pacing), output."""

    seed: int = 7
    speed: float = 30.0
    output: str = "table"
    stream: TextIO = field(default_factory=lambda: sys.stdout)


def step_text(spec: CanarySpec, index: int) -> str:
    """A step as people say it: ``setWeight 25``, ``analysis``."""
    if index >= len(spec.steps):
        return "promotion"
    step = spec.steps[index]
    name = type(step).__name__
    weight = getattr(step, "weight", None)
    return (
        f"{name[0].lower()}{name[1:]} {weight:g}%"
        if weight is not None
        else name[0].lower() + name[1:]
    )


class _Printer:
    """Live progress: steps, weights, verdicts, a bar per analysis step."""

    def __init__(self, stream: TextIO, *, enabled: bool) -> None:
        self.stream = stream
        self.enabled = enabled
        self._bar = False

    def line(self, text: str) -> None:
        if not self.enabled:
            return
        if self._bar:
            self.stream.write("\n")
            self._bar = False
        self.stream.write(text + "\n")
        self.stream.flush()

    def bar(self, label: str, done: int, planned: int) -> None:
        if not self.enabled or not self.stream.isatty():
            return
        width = 24
        filled = min(width, round(width * done / max(planned, 1)))
        self.stream.write(
            f"\r    {label} [{'#' * filled}{'.' * (width - filled)}] {done}/{planned}"
        )
        self.stream.flush()
        self._bar = True


class Rollout:
    """One Canary rollout driven through the stepper in simulated time."""

    def __init__(
        self,
        *,
        spec: CanarySpec,
        version: Version,
        status: Status,
        clock: ManualClock,
        router: MemoryRouter,
        source: LiveSimulation,
        client: GatekeeperClient,
        printer: _Printer,
        pace: Callable[[float], None],
    ) -> None:
        self.spec, self.version, self.status = spec, version, status
        self.clock, self.router, self.source, self.client = clock, router, source, client
        self.printer, self.pace = printer, pace
        self.started = clock.now()
        self.looks: list[Look] = []
        self.load_tests: list[dict[str, float]] = []
        self._running: list[tuple[float, RunLoadTest]] = []  # (ends at, the test)
        self.stable_hash = status.stable_hash or "v1"

    def observe(self) -> Observation:
        """The simulated cluster: Deployments ready at once, the router's read-back."""
        return Observation(
            target_hash=self.version.name,
            target_replicas=4,
            stable_hash=self.stable_hash,
            stable_ready=True,
            canary_ready=True,
            baseline_ready=True,
            weights=self.router.read_weights(),
        )

    def run(self) -> Status:
        """Advance until the rollout ends; returns the final status."""
        deadline = self.started + MAX_SIMULATED_SECONDS
        while self.clock.now() < deadline:
            transition = advance(
                spec=self.spec,
                status=self.status,
                observation=self.observe(),
                now=self.clock.now(),
                feedback=self._finished_load_test(),
            )
            transition = self._carry_out(transition)
            self._report(transition.status)
            self.status = transition.status
            if self.status.phase in (Phase.SUCCEEDED, Phase.FAILED):
                return self.status
            wake = transition.requeue_at or self.clock.now() + TICK_SECONDS
            step = min(max(wake - self.clock.now(), 0.0), TICK_SECONDS) or TICK_SECONDS
            self.clock.advance(step)
            self.pace(step)
        raise RuntimeError(f"rollout of {self.version.name} did not finish in simulated hours")

    def _finished_load_test(self) -> Feedback | None:
        """A load test whose time is up, reported to the stepper (one per call)."""
        for index, (ends, test) in enumerate(self._running):
            if ends <= self.clock.now():
                del self._running[index]
                self.printer.line("    load test finished")
                return LoadTestFinished(step_index=test.step_index, look=test.look)
        return None

    def _carry_out(self, transition: Transition) -> Transition:
        for action in transition.actions:
            answer = self._act(action, transition.status)
            if answer is not None:
                following = advance(
                    spec=self.spec,
                    status=transition.status,
                    observation=self.observe(),
                    now=self.clock.now(),
                    feedback=answer,
                )
                return self._carry_out(following)
        return transition

    def _act(self, action: Action, status: Status) -> Feedback | None:
        if isinstance(action, SetWeights):
            if action.weights != self.router.weights:
                self.printer.line(f"  weight -> canary {action.weights.canary:g}%")
            self.router.set_weights(action.weights)
        elif isinstance(action, RouteHeaders):
            self.router.set_header_route(action.match)
        elif isinstance(action, RequestVerdict):
            return self._verdict(action, status)
        elif isinstance(action, RunLoadTest):
            test = action.load_test
            self._load(rps=test.rps, seconds=test.duration_seconds, step=action.step_index)
            self._running.append((self.clock.now() + test.duration_seconds, action))
        elif type(action).__name__ == "EnsureStable":
            self.stable_hash = getattr(action, "template_hash", self.stable_hash)
        return None

    def _verdict(self, action: RequestVerdict, status: Status) -> Feedback:
        request = analyses.analyze_request(
            action, namespace=NAMESPACE, names=NAMES, dedicated_baseline=False
        )
        try:
            verdict = self.client.analyze(request, timeout=30.0)
        except Exception as error:  # the stepper judges failures, not the demo
            return analyses.error_feedback(error, action)
        decision = pb.Decision.Name(verdict.decision).removeprefix("DECISION_")
        look = Look(
            seconds=self.clock.now() - self.started,
            step=action.step_index,
            look=action.look,
            planned=action.planned,
            weight=float(self.router.weights.canary),
            decision=decision,
            summary=verdict.summary,
        )
        self.looks.append(look)
        self.printer.line(f"    look {action.look}/{action.planned} {_short(verdict.summary, 110)}")
        self.printer.bar("rollout analysis", action.look, action.planned)
        return analyses.feedback(verdict, action)

    def _load(self, *, rps: float, seconds: float, step: int) -> None:
        self.source.add_load(rps=rps, seconds=seconds)
        at = self.clock.now() - self.started
        self.load_tests.append({"step": step, "rps": rps, "seconds": seconds, "at": at})
        self.printer.line(
            f"    load test: {rps:.1f} synthetic canary requests/s for {seconds:.0f} s"
        )

    def _report(self, status: Status) -> None:
        if status.step_index != self.status.step_index or status.phase != self.status.phase:
            if status.phase in (Phase.SUCCEEDED, Phase.FAILED):
                return
            steps = len(self.spec.steps)
            where = f"step {status.step_index + 1}/{steps}" if status.step_index < steps else "then"
            self.printer.line(f"  {where}: {step_text(self.spec, status.step_index)}")


def _short(text: str, limit: int = 140) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def absolute_gate(
    source: LiveSimulation, *, since: float, until: float, interval: float = 60.0
) -> GateOutcome:
    """The gate users copy from rollout docs: canary success rate >= 99 % each minute,
    rolled back on the third failed minute (Argo Rollouts' ``failureLimit: 2``)."""
    moment, failures = since, 0
    while moment + interval <= until:
        end = moment + interval
        requests = source.canary_requests(since=moment) - source.canary_requests(since=end)
        errors = source.canary_errors(since=moment) - source.canary_errors(since=end)
        if requests > 0 and 1.0 - errors / requests < ABSOLUTE_GATE:
            failures += 1
            if failures > GATE_FAILURE_LIMIT:
                bad = source.canary_errors(since=since) - source.canary_errors(since=end)
                return GateOutcome("rolled back", end - since, bad)
        moment = end
    served = source.canary_errors(since=since) - source.canary_errors(since=until)
    return GateOutcome("promoted", None, served)


def _initialise(spec: CanarySpec, clock: ManualClock, router: MemoryRouter) -> Status:
    """Bring the Canary from Initializing to Idle with v1 as the stable version."""
    status = Status()
    stable = ""
    for _ in range(100):
        observation = Observation(
            target_hash="v1",
            target_replicas=4,
            stable_hash=stable,
            stable_ready=bool(stable),
            canary_ready=True,
            weights=router.read_weights(),
        )
        transition = advance(spec=spec, status=status, observation=observation, now=clock.now())
        for action in transition.actions:
            if isinstance(action, SetWeights):
                router.set_weights(action.weights)
            elif type(action).__name__ == "EnsureStable":
                stable = str(getattr(action, "template_hash", "v1"))
        status = transition.status
        if status.phase is Phase.IDLE and stable:
            return status
        clock.advance(TICK_SECONDS)
    raise RuntimeError(f"the Canary did not initialise: {status.message}")


def _pacer(speed: float) -> Callable[[float], None]:
    """Sleep so that simulated time runs ``speed`` times faster than the wall clock."""
    if speed <= 0:
        return lambda seconds: None
    return lambda seconds: time.sleep(seconds / speed)


def run(options: DemoOptions) -> list[RolloutReport]:
    """Run both rollouts; returns their reports (also printed as they happen)."""
    spec = parse_spec(CANARY, name=NAMES.canary)
    clock = ManualClock(START)
    router = MemoryRouter()
    printer = _Printer(options.stream, enabled=options.output == "table")
    behaviour = Behaviour()
    source = LiveSimulation(
        base=simulate.Scenario(**{**_fields(SERVICE), "seed": options.seed}),
        weight=lambda: router.canary_weight() / 100.0,
        clock=clock.now,
    )
    server = app.ServerThread(app.ServerConfig(port=0, workers=1), data=source)
    reports = []
    try:
        with GatekeeperClient(server.target, timeout=30.0) as client:
            printer.line(f"gatekeeper serving on {server.target} (in-process, simulated traffic)")
            status = _initialise(spec, clock, router)
            printer.line("checkout v1 is stable, serving 40 requests/s at 99.95 % success")
            for version in VERSIONS:
                behaviour = version.behaviour
                source.set_behaviour(behaviour)
                printer.line("")
                printer.line(f"rolling out {version.name}: {version.description}")
                rollout = Rollout(
                    spec=spec,
                    version=version,
                    status=status,
                    clock=clock,
                    router=router,
                    source=source,
                    client=client,
                    printer=printer,
                    pace=_pacer(options.speed),
                )
                status = rollout.run()
                source.stop_load()  # the rollout is over: its load-test Jobs are gone
                reports.append(_report(rollout, status))
                why = _short(status.last_summary or status.message)
                printer.line(f"  => {reports[-1].outcome} at {reports[-1].step_text}: {why}")
                if status.phase is Phase.SUCCEEDED:
                    source.set_behaviour(behaviour)  # the promoted version serves everything
    finally:
        server.stop()
    return reports


def _fields(scenario: simulate.Scenario) -> dict[str, Any]:
    return {name: getattr(scenario, name) for name in scenario.__dataclass_fields__}


def _report(rollout: Rollout, status: Status) -> RolloutReport:
    since, until = rollout.started, rollout.clock.now()
    source = rollout.source
    promoted = status.phase is Phase.SUCCEEDED
    step = status.step_index
    return RolloutReport(
        version=rollout.version.name,
        description=rollout.version.description,
        outcome="promoted" if promoted else "rolled back",
        step=step,
        step_text="the end of its steps"
        if promoted
        else f"step {step + 1} ({step_text(rollout.spec, step)})",
        seconds=until - since,
        canary_requests=source.canary_requests(since=since) - source.canary_requests(since=until),
        canary_bad=source.canary_errors(since=since) - source.canary_errors(since=until),
        load_tests=tuple(rollout.load_tests),
        looks=tuple(rollout.looks),
        absolute_gate=absolute_gate(source, since=since, until=until),
    )


def summary_table(reports: list[RolloutReport]) -> str:
    """The final table: what the gatekeeper did, and what an absolute 99 % gate would have."""
    header = (
        "version",
        "gatekeeper",
        "after",
        "canary requests",
        "bad requests",
        "absolute 99 % gate",
    )
    rows = [header]
    for r in reports:
        gate = r.absolute_gate
        gate_text = (
            gate.decision
            if gate.at_seconds is None
            else f"{gate.decision} after {gate.at_seconds / 60:.1f} min"
        )
        rows.append(
            (
                f"{r.version} ({r.description})",
                f"{r.outcome} at {r.step_text}",
                f"{r.seconds / 60:.1f} min",
                f"{r.canary_requests:,.0f}",
                f"{r.canary_bad:,.0f}",
                gate_text,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def report_json(reports: list[RolloutReport]) -> str:
    """The reports as JSON, for scripts."""
    return json.dumps({"rollouts": [asdict(r) for r in reports]}, indent=2)


def main(options: DemoOptions) -> int:
    """Run the demo and print its summary; exit 0 when v2 was promoted and v3 rolled back."""
    started = time.monotonic()
    reports = run(options)
    if options.output == "json":
        options.stream.write(report_json(reports) + "\n")
    else:
        options.stream.write("\n" + summary_table(reports) + "\n")
        options.stream.write(f"\n(simulated; {time.monotonic() - started:.0f} s of wall time)\n")
    expected = [("v2", "promoted"), ("v3", "rolled back")]
    return 0 if [(r.version, r.outcome) for r in reports] == expected else 1
