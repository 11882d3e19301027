"""Rollouts judged by a real gatekeeper on live simulated traffic, against the emulator.

The gatekeeper is a real gRPC server on port 0 whose metric source is
:class:`gatekeeper.live.LiveSimulation`: baseline and canary traffic generated as the
manual clock moves, the canary's share read from the router the controller drives. The
controller asks Analyze over the wire; nothing about verdicts is faked.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from controller.clock import ManualClock
from controller.kube import Kube
from controller.model import Phase, Weights, parse_spec
from controller.resources import CANARIES, HTTPROUTES, JOBS
from controller.routers import RouterContext
from controller.routers.gateway_api import GatewayAPIRouter
from controller.routers.memory import MemoryRouters
from controller.workloads import Names, owner_reference
from gatekeeper import simulate
from gatekeeper.client import GatekeeperClient
from gatekeeper.live import Behaviour, LiveSimulation
from gatekeeper.server import app
from tests.controller.conftest import NAMESPACE, DeploymentController, JobController, set_image
from tests.controller.helpers import Rig

SPEC = """
interval: 1m
metrics:
  - {name: errors, template: request-success-rate, critical: true}
  - {name: latency, template: request-duration}
"""
ANALYSIS = {"spec": SPEC, "interval": "1m", "looks": 10}
BROKEN = Behaviour(fault=simulate.Fault(simulate.FaultKind.ERRORS, 6.0))
HEALTHY_IMAGE = "ghcr.io/stefanprodan/podinfo:6.6.0"
BUSY = simulate.Scenario(rps=400.0, step_seconds=15.0, error_rate=0.01, seed=7)
QUIET_SPEC = """
interval: 1m
metrics:
  - {name: errors, template: request-success-rate, critical: true, absolute_tolerance: 0.005}
  - {name: latency, template: request-duration}
"""
#: A quiet service: 5 requests a second, so a canary at 10 % sees 0.5 a second: too few for
#: the plan to settle its verdict once its pods are past the warm-up.
QUIET = simulate.Scenario(rps=5.0, step_seconds=15.0, error_rate=0.01, seed=11)
BROKEN_IMAGE = "ghcr.io/stefanprodan/podinfo:6.6.1-regression"


class LiveGatekeeper:
    """A real gatekeeper server (own event loop thread) analysing a LiveSimulation."""

    def __init__(
        self,
        *,
        clock: ManualClock,
        weight: Callable[[], float],
        base: simulate.Scenario = BUSY,
    ) -> None:
        self.source = LiveSimulation(base=base, weight=weight, clock=clock.now)
        self.server = app.ServerThread(app.ServerConfig(port=0, workers=1), data=self.source)
        self.client = GatekeeperClient(self.server.target, timeout=30.0)

    def stop(self) -> None:
        self.client.close()
        self.server.stop()


@pytest.fixture
def memory() -> MemoryRouters:
    return MemoryRouters()


@pytest.fixture
def live(clock: ManualClock, memory: MemoryRouters) -> Iterator[LiveGatekeeper]:
    router = memory.get(NAMESPACE, "podinfo")
    server = LiveGatekeeper(clock=clock, weight=lambda: router.canary_weight() / 100.0)
    yield server
    server.stop()


@pytest.fixture
def rig(
    kube: Kube,
    deployments: DeploymentController,
    clock: ManualClock,
    memory: MemoryRouters,
    live: LiveGatekeeper,
) -> Rig:
    return Rig(kube=kube, deployments=deployments, clock=clock, memory=memory, analyzer=live.client)


def drive(rig: Rig, *, until: tuple[Phase, ...], minutes: int = 60) -> Any:
    """Reconcile, jumping the clock to the next due time (at most a minute), until a phase."""
    for _ in range(minutes * 4):
        due = rig.reconcile()
        status = rig.status()
        if status.phase in until:
            return status
        now = rig.clock.now()
        rig.clock.set(min(due if due is not None else now + 60, now + 60))
    raise AssertionError(f"still {rig.status()} after {minutes} minutes")


def start_rollout(rig: Rig, image: str, **spec: Any) -> None:
    rig.create(**spec)
    rig.until(Phase.IDLE)
    set_image(rig.kube, "podinfo", image)


def test_a_healthy_version_is_promoted(rig: Rig, live: LiveGatekeeper) -> None:
    steps = [{"setWeight": 10}, {"analysis": ANALYSIS}, {"setWeight": 50}, {"analysis": ANALYSIS}]
    start_rollout(rig, HEALTHY_IMAGE, steps=steps)
    started = rig.clock.now()
    status = drive(rig, until=(Phase.SUCCEEDED, Phase.FAILED))
    assert status.phase is Phase.SUCCEEDED, status.message
    assert status.last_decision == "PASS"
    assert rig.image("podinfo-stable") == HEALTHY_IMAGE and rig.replicas("podinfo") == 0
    history = [w.canary for w in rig.memory.get(NAMESPACE, "podinfo").history]
    assert history == [0, 10, 50, 0]
    assert live.source.canary_requests(since=started) > 0
    # One analysis per rollout: the 50 % step's looks continue the 10 % step's count.
    looks = [(v.step_index, v.look) for v in status.verdicts]
    assert looks[-1][0] == 3 and looks[-1][1] >= 2
    assert [k for _, k in looks] == sorted({k for _, k in looks})


def test_a_broken_version_is_rolled_back_without_a_human(rig: Rig, live: LiveGatekeeper) -> None:
    steps = [{"setWeight": 10}, {"analysis": ANALYSIS}, {"setWeight": 50}, {"analysis": ANALYSIS}]
    start_rollout(rig, BROKEN_IMAGE, steps=steps)
    live.source.set_behaviour(BROKEN)
    status = drive(rig, until=(Phase.SUCCEEDED, Phase.FAILED))
    assert status.phase is Phase.FAILED
    assert status.last_decision == "FAIL"
    assert "FAIL at steps[1]" in status.message and status.last_summary in status.message
    router = rig.memory.get(NAMESPACE, "podinfo")
    assert router.weights == Weights() and max(w.canary for w in router.history) == 10
    assert rig.replicas("podinfo") == 0 and rig.image("podinfo-stable") != BROKEN_IMAGE
    assert status.failed_hash == status.canary_hash


def test_header_qa_stage_with_a_manual_gate_then_percentages(
    rig: Rig, live: LiveGatekeeper
) -> None:
    steps = [
        {"setHeaderRoute": {"match": [{"name": "x-canary", "exact": "qa"}]}},
        {"pause": {}},
        {"setHeaderRoute": {}},
        {"setWeight": 20},
        {"analysis": ANALYSIS},
    ]
    start_rollout(rig, HEALTHY_IMAGE, steps=steps)
    status = drive(rig, until=(Phase.PAUSED,))
    router = rig.memory.get(NAMESPACE, "podinfo")
    assert router.header_route and router.weights.canary == 0
    rig.clock.advance(3600)  # QA takes an hour: a gate waits for a human, not for time
    assert rig.until(Phase.PAUSED, rounds=1).step_index == 1
    rig.kube.patch(
        CANARIES,
        namespace=NAMESPACE,
        name="podinfo",
        patch={"metadata": {"annotations": {"gatekeeper.dev/request": "resume/qa-ok"}}},
    )
    removed_at = rig.clock.now()
    rig.reconcile()
    assert router.header_route == () and rig.status().header_route_changed_at == removed_at
    status = drive(rig, until=(Phase.SUCCEEDED, Phase.FAILED))
    assert status.phase is Phase.SUCCEEDED, status.message


def test_an_analysis_spec_the_gatekeeper_rejects_fails_the_rollout(rig: Rig) -> None:
    bad = {**ANALYSIS, "spec": "metrics: [{name: errors, template: no-such-template}]"}
    start_rollout(rig, HEALTHY_IMAGE, steps=[{"setWeight": 10}, {"analysis": bad}])
    status = drive(rig, until=(Phase.SUCCEEDED, Phase.FAILED))
    assert status.phase is Phase.FAILED
    assert "the gatekeeper refused the analysis" in status.message
    assert "no-such-template" in status.message


def test_gateway_api_route_weights_drive_the_simulated_traffic(
    kube: Kube, deployments: DeploymentController, clock: ManualClock
) -> None:
    """The LiveSimulation reads the canary's share from the HTTPRoute the controller writes."""
    parents = [{"name": "public", "namespace": "gateway-system"}]
    rig_holder: list[Rig] = []

    def route_weight() -> float:
        route = kube.get(HTTPROUTES, namespace=NAMESPACE, name="podinfo")
        if route is None:
            return 0.0
        canary = rig_holder[0].canary()
        spec = parse_spec(canary["spec"], name="podinfo")
        router = GatewayAPIRouter(
            RouterContext(
                namespace=NAMESPACE,
                names=Names(canary="podinfo", target="podinfo"),
                spec=spec,
                kube=kube,
                owner=owner_reference(canary),
            )
        )
        weights = router.read_weights()
        return 0.0 if weights is None else weights.canary / 100.0

    server = LiveGatekeeper(clock=clock, weight=route_weight)
    try:
        rig = Rig(kube=kube, deployments=deployments, clock=clock, analyzer=server.client)
        rig_holder.append(rig)
        start_rollout(
            rig,
            BROKEN_IMAGE,
            router={"type": "gatewayAPI", "gatewayAPI": {"parentRefs": parents}},
            steps=[{"setWeight": 25}, {"analysis": ANALYSIS}],
        )
        server.source.set_behaviour(BROKEN)
        status = drive(rig, until=(Phase.SUCCEEDED, Phase.FAILED))
    finally:
        server.stop()
    assert status.phase is Phase.FAILED and status.last_decision == "FAIL"
    route = kube.get(HTTPROUTES, namespace=NAMESPACE, name="podinfo")
    assert route is not None
    weights = {b["name"]: b["weight"] for b in route["spec"]["rules"][-1]["backendRefs"]}
    assert weights == {"podinfo-stable": 100, "podinfo-canary": 0}


class LoadRunner:
    """Plays the load-test Jobs: each new Job's hey command becomes canary load on the
    simulation for its duration, and the Job completes when that time has passed."""

    def __init__(self, kube: Kube, source: LiveSimulation, clock: ManualClock) -> None:
        self.kube, self.source, self.clock = kube, source, clock
        self.jobs = JobController(kube, auto=False)
        self.started: dict[str, tuple[float, float, float]] = {}  # name: (rps, seconds, ends)

    def tick(self) -> None:
        for job in self.kube.list(JOBS, namespace=NAMESPACE):
            name = job["metadata"]["name"]
            if name not in self.started:
                command = job["spec"]["template"]["spec"]["containers"][0]["command"]
                rps = float(command[command.index("-q") + 1]) * float(
                    command[command.index("-c") + 1]
                )
                seconds = float(command[command.index("-z") + 1].removesuffix("s"))
                self.source.add_load(rps=rps, seconds=seconds)
                self.started[name] = (rps, seconds, self.clock.now() + seconds)
            elif self.clock.now() >= self.started[name][2] and not job.get("status"):
                self.jobs.finish(name)

    def stop(self) -> None:
        self.jobs.stop.set()


def test_a_quiet_canary_gets_load_sized_by_the_real_verdict_and_then_proceeds(
    kube: Kube,
    deployments: DeploymentController,
    clock: ManualClock,
    memory: MemoryRouters,
) -> None:
    router = memory.get(NAMESPACE, "podinfo")
    server = LiveGatekeeper(clock=clock, weight=lambda: router.canary_weight() / 100.0, base=QUIET)
    load = LoadRunner(kube, server.source, clock)
    try:
        rig = Rig(
            kube=kube, deployments=deployments, clock=clock, memory=memory, analyzer=server.client
        )
        hinted = {
            **ANALYSIS,
            "spec": QUIET_SPEC,
            "onInconclusive": "extend",
            "maxExtraLooks": 10,
            "loadTest": {"maxRps": 50, "maxDuration": "10m"},
        }
        steps = [{"setWeight": 10}, {"analysis": hinted}, {"setWeight": 50}]
        start_rollout(rig, HEALTHY_IMAGE, steps=steps)
        started = clock.now()
        status = rig.status()
        for _ in range(240):
            due = rig.reconcile()
            load.tick()
            status = rig.status()
            if status.phase in (Phase.SUCCEEDED, Phase.FAILED):
                break
            now = clock.now()
            clock.set(min(due if due is not None else now + 30, now + 30))
        assert status.phase is Phase.SUCCEEDED, status.message
        assert load.started  # Jobs, each sized by the hint of the verdict that asked for it
        for rps, seconds, _ in load.started.values():
            assert 0 < rps <= 50 and 0 < seconds <= 600
        organic = 0.1 * QUIET.rps * (clock.now() - started)
        # the Job's load reached the canary: it served far more than its organic share
        assert server.source.canary_requests(since=started) > 2 * organic
        assert kube.list(JOBS, namespace=NAMESPACE) == []  # finished Jobs are cleaned up
    finally:
        load.stop()
        server.stop()
