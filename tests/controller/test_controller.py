"""The controller against kmock's Kubernetes emulator over HTTP (official client).

Rollouts without analysis, manual gates and interventions, the progress deadline, spec
errors, restarts, the watch loop, and the gatekeeper's failure modes (unreachable, a
refusal from a real server): none of these needs a metric source. End-to-end rollouts
judged on simulated traffic are in test_end_to_end.py.
"""

from __future__ import annotations

import argparse
import threading
from collections.abc import Iterator
from typing import Any, cast

import pytest

from controller import cli
from controller.clock import ManualClock
from controller.kube import Kube
from controller.main import Controller
from controller.model import Phase, Weights
from controller.reconcile import Reconciler
from controller.resources import CANARIES, DEPLOYMENTS, SERVICES, Object
from controller.routers.memory import MemoryRouters
from controller.workloads import CANARY_LABEL, HASH_ANNOTATION, TRACK_LABEL
from gatekeeper.client import GatekeeperClient
from gatekeeper.server import app
from tests.controller.conftest import (
    BROKEN_MARK,
    NAMESPACE,
    DeploymentController,
    EmulatedCluster,
    set_image,
    wait_for,
)
from tests.controller.helpers import Rig, unreachable_gatekeeper
from tests.integration.grpc_server import ServerThread

NEW = "ghcr.io/stefanprodan/podinfo:6.6.0"
ANALYSIS = {"specName": "http", "interval": "1m", "looks": 3}


def test_initialization_copies_the_target_to_stable_and_routes_all_traffic_to_it(rig: Rig) -> None:
    rig.create(steps=[{"setWeight": 10}])
    status = rig.until(Phase.IDLE)
    stable = rig.deployment("podinfo-stable")
    assert stable is not None
    labels = stable["spec"]["template"]["metadata"]["labels"]
    assert labels["app"] == "podinfo-stable" and labels[TRACK_LABEL] == "stable"
    assert labels["app.kubernetes.io/name"] == "podinfo"  # other template labels kept
    assert stable["spec"]["selector"]["matchLabels"][CANARY_LABEL] == "podinfo"
    assert stable["metadata"]["ownerReferences"][0]["uid"] == rig.canary()["metadata"]["uid"]
    assert stable["metadata"]["annotations"][HASH_ANNOTATION] == status.stable_hash
    assert rig.replicas("podinfo-stable") == 3 and rig.replicas("podinfo") == 0
    services = {
        name: cast(Object, rig.kube.get(SERVICES, namespace=NAMESPACE, name=name))
        for name in ("podinfo-stable", "podinfo-canary")
    }
    assert services["podinfo-canary"]["spec"]["selector"] == {"app": "podinfo"}
    assert services["podinfo-stable"]["spec"]["selector"]["app"] == "podinfo-stable"
    assert rig.memory.get(NAMESPACE, "podinfo").weights == Weights()
    assert rig.canary()["status"]["observedGeneration"] == 1


def test_rollout_without_analysis_promotes_and_scales_the_canary_down(rig: Rig) -> None:
    rig.create(steps=[{"setWeight": 20}, {"pause": {"duration": "5m"}}, {"setWeight": 50}])
    rig.until(Phase.IDLE)
    set_image(rig.kube, "podinfo", NEW)
    rig.reconcile()
    status = rig.until(Phase.PROGRESSING)
    assert rig.replicas("podinfo") == 3  # the canary runs at full size on a mesh router
    rig.reconcile()
    status = rig.status()
    assert (status.step_index, status.weight) == (1, 20)
    router = rig.memory.get(NAMESPACE, "podinfo")
    assert router.weights == Weights(canary=20)
    rig.clock.advance(299)
    rig.reconcile()
    assert rig.status().step_index == 1
    rig.clock.advance(1)
    status = rig.until(Phase.SUCCEEDED)
    assert rig.image("podinfo-stable") == NEW
    assert rig.replicas("podinfo") == 0
    assert [w.canary for w in router.history] == [0, 20, 50, 0]
    assert status.stable_hash == status.canary_hash


def test_header_route_manual_gate_resume_through_the_cli(
    rig: Rig, cluster: EmulatedCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    rig.create(
        steps=[
            {"setHeaderRoute": {"match": [{"name": "x-canary", "exact": "qa"}]}},
            {"pause": {}},
            {"setHeaderRoute": {}},
            {"setWeight": 30},
            {"pause": {}},
        ]
    )
    rig.until(Phase.IDLE)
    set_image(rig.kube, "podinfo", NEW)
    status = rig.until(Phase.PAUSED)
    router = rig.memory.get(NAMESPACE, "podinfo")
    assert [m.name for m in router.header_route] == ["x-canary"] and router.weights.canary == 0

    args = argparse.Namespace(
        name="podinfo",
        namespace=NAMESPACE,
        kubeconfig=None,
        context=None,
        api_server=cluster.url,
        output="table",
        force=False,
    )
    assert cli.cmd_status(args) == cli.EXIT_OK
    assert "phase:         Paused" in capsys.readouterr().out
    assert cli.cmd_request(argparse.Namespace(**vars(args), verb="promote")) == cli.EXIT_OK
    # A second request replaces the first before the controller saw it: the last one counts.
    assert cli.cmd_request(argparse.Namespace(**vars(args), verb="resume")) == cli.EXIT_OK
    status = rig.until(Phase.PAUSED, rounds=2)
    assert status.step_index == 4 and router.header_route == () and router.weights.canary == 30
    assert status.handled_request.startswith("resume/")
    missing = argparse.Namespace(**{**vars(args), "name": "nope"})
    assert cli.cmd_status(missing) == cli.EXIT_BAD_INPUT
    assert cli.cmd_request(argparse.Namespace(**{**vars(args), "verb": "abort"})) == cli.EXIT_OK
    status = rig.until(Phase.FAILED)
    assert "aborted on request" in status.message and router.weights == Weights()


def test_resume_outside_a_pause_is_refused_by_the_cli(rig: Rig, cluster: EmulatedCluster) -> None:
    rig.create(steps=[{"setWeight": 10}])
    rig.until(Phase.IDLE)
    args = argparse.Namespace(
        name="podinfo",
        namespace=NAMESPACE,
        kubeconfig=None,
        context=None,
        api_server=cluster.url,
        force=False,
        verb="resume",
    )
    assert cli.cmd_request(args) == cli.EXIT_BAD_INPUT


def test_canary_pods_never_ready_roll_back_at_the_progress_deadline(rig: Rig) -> None:
    rig.create(steps=[{"setWeight": 10}], progressDeadlineSeconds=120)
    rig.until(Phase.IDLE)
    set_image(rig.kube, "podinfo", f"example.com/podinfo{BROKEN_MARK}")
    rig.reconcile()
    assert rig.status().phase is Phase.PROGRESSING and rig.status().weight == 0
    rig.clock.advance(119)
    rig.reconcile()
    assert rig.status().phase is Phase.PROGRESSING
    rig.clock.advance(1)
    status = rig.until(Phase.FAILED)
    assert "canary pods not ready within progressDeadlineSeconds (2m)" in status.message
    assert rig.replicas("podinfo") == 0 and rig.image("podinfo-stable") != rig.image("podinfo")
    # The failed template is not retried; a newer one is.
    rig.reconcile()
    assert rig.status().phase is Phase.FAILED
    set_image(rig.kube, "podinfo", NEW)
    assert rig.until(Phase.PROGRESSING).canary_hash != status.canary_hash


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {
                "steps": [
                    {"setHeaderRoute": {"match": [{"name": "x", "exact": "qa"}]}},
                    {"analysis": ANALYSIS},
                ]
            },
            "spec.steps[1].analysis: the header route of steps[0] is still active",
        ),
        (
            {"router": {"type": "gatewayAPI"}},
            "spec.router.gatewayAPI.parentRefs: HTTPRoute default/podinfo does not exist",
        ),
        (
            {"router": {"type": "istio"}},
            "spec.router.istio.hosts: VirtualService default/podinfo does not exist",
        ),
        (
            {
                "router": {"type": "smi"},
                "steps": [{"setHeaderRoute": {"match": [{"name": "x", "exact": "qa"}]}}],
            },
            "router 'smi' cannot route by header",
        ),
    ],
)
def test_spec_errors_are_reported_in_status(rig: Rig, spec: dict[str, Any], message: str) -> None:
    rig.create(**spec)
    rig.reconcile()  # creates the stable
    rig.reconcile()  # routes to it
    stored = rig.canary()["status"]
    assert message in stored["specError"]
    assert stored["message"].startswith("spec error: ")


def test_memory_router_needs_the_in_process_registry(
    kube: Kube, deployments: DeploymentController, clock: ManualClock
) -> None:
    rig = Rig(kube=kube, deployments=deployments, clock=clock)
    rig.create()
    rig.reconciler.memory = None
    rig.reconcile()
    assert "'memory' is for tests and the demo" in rig.canary()["status"]["specError"]


def test_a_fixed_spec_clears_the_error(rig: Rig) -> None:
    rig.create(router={"type": "istio"})
    rig.reconcile()
    rig.reconcile()
    assert rig.canary()["status"]["specError"]
    rig.kube.patch(
        CANARIES,
        namespace=NAMESPACE,
        name="podinfo",
        patch={"spec": {"router": {"type": "memory"}}},
    )
    rig.until(Phase.IDLE)
    assert "specError" not in rig.canary()["status"]


def test_missing_target_is_reported_and_retried(rig: Rig) -> None:
    rig.create()
    rig.kube.delete(DEPLOYMENTS, namespace=NAMESPACE, name="podinfo")
    due = rig.reconcile()
    assert (
        "spec.targetRef: Deployment default/podinfo not found" in rig.canary()["status"]["message"]
    )
    assert due == rig.clock.now() + 10


def test_a_restarted_controller_continues_from_the_status(
    kube: Kube, deployments: DeploymentController, clock: ManualClock
) -> None:
    parents = [{"name": "public", "namespace": "gateway-system"}]
    first = Rig(kube=kube, deployments=deployments, clock=clock)
    first.create(
        router={"type": "gatewayAPI", "gatewayAPI": {"parentRefs": parents}},
        steps=[{"setWeight": 10}, {"pause": {"duration": "10m"}}, {"setWeight": 40}, {"pause": {}}],
    )
    first.until(Phase.IDLE)
    set_image(kube, "podinfo", NEW)
    first.reconcile()
    first.reconcile()
    assert (first.status().step_index, first.status().weight) == (1, 10)
    clock.advance(600)
    # A new process: nothing in memory, everything from the Canary's status and the cluster.
    second = Rig(kube=kube, deployments=deployments, clock=clock)
    status = second.until(Phase.PAUSED)
    assert (status.step_index, status.weight) == (3, 40)
    second.reconcile()  # the router's read-back confirms weight 40
    # Reconciling again changes nothing: the status is not rewritten.
    version = second.canary()["metadata"]["resourceVersion"]
    second.reconcile()
    assert second.canary()["metadata"]["resourceVersion"] == version


def test_an_unreachable_gatekeeper_is_an_error_and_rolls_back_after_the_limit(rig: Rig) -> None:
    rig.create(steps=[{"setWeight": 10}, {"analysis": {**ANALYSIS, "consecutiveErrorLimit": 3}}])
    rig.until(Phase.IDLE)
    set_image(rig.kube, "podinfo", NEW)
    rig.reconcile()
    rig.reconcile()  # weight 10 routed
    rig.reconcile()  # read back: the window starts a warm-up interval later
    start = rig.status().analysis.start
    assert start == rig.clock.now() + 60
    for look in (1, 2):
        rig.clock.set(start + look * 60)
        rig.reconcile()
        status = rig.status()
        assert status.phase is Phase.PROGRESSING and status.analysis.consecutive_errors == look
        assert status.last_decision == "ERROR"
    rig.clock.set(start + 180)
    status = rig.until(Phase.FAILED)
    assert "the gatekeeper answered ERROR 3 times in a row" in status.message
    assert "Unavailable" in status.message
    assert rig.memory.get(NAMESPACE, "podinfo").weights == Weights()


def test_a_gatekeeper_refusal_fails_the_rollout(
    kube: Kube, deployments: DeploymentController, clock: ManualClock
) -> None:
    server = ServerThread(app.ServerConfig(port=0, workers=1))
    try:
        with GatekeeperClient(server.target, timeout=10.0) as client:
            rig = Rig(kube=kube, deployments=deployments, clock=clock, analyzer=client)
            rig.create(steps=[{"setWeight": 10}, {"analysis": ANALYSIS}])
            rig.until(Phase.IDLE)
            set_image(kube, "podinfo", NEW)
            for _ in range(3):
                rig.reconcile()
            clock.set(rig.status().analysis.start + 60)
            status = rig.until(Phase.FAILED)
    finally:
        server.stop()
    assert "the gatekeeper refused the analysis of steps[1] look 1" in status.message
    assert "FailedPrecondition" in status.message


@pytest.fixture
def running(
    kube: Kube, deployments: DeploymentController, clock: ManualClock
) -> Iterator[tuple[Controller, MemoryRouters]]:
    memory = MemoryRouters()
    reconciler = Reconciler(
        kube=kube, analyzer=unreachable_gatekeeper(), clock=clock, memory=memory
    )
    controller = Controller(kube=kube, reconciler=reconciler, clock=clock, watch_timeout_seconds=2)
    stop = threading.Event()
    thread = threading.Thread(target=controller.run, args=(stop,), daemon=True)
    thread.start()
    yield controller, memory
    stop.set()
    thread.join(10)


def test_the_loop_wakes_on_watch_events_and_due_times(
    running: tuple[Controller, MemoryRouters],
    kube: Kube,
    deployments: DeploymentController,
    clock: ManualClock,
) -> None:
    controller, memory = running
    rig = Rig(kube=kube, deployments=deployments, clock=clock, memory=memory)
    rig.create(steps=[{"setWeight": 25}, {"pause": {"duration": "1h"}}])
    wait_for(lambda: rig.status().phase is Phase.IDLE, what="initialisation driven by events")
    set_image(kube, "podinfo", NEW)
    wait_for(
        lambda: rig.status().weight == 25, what="the rollout started by the Deployment's change"
    )
    passes = controller.passes
    clock.advance(3600)  # the pause's end is a due time: the loop wakes without an event
    wait_for(lambda: rig.status().phase is Phase.SUCCEEDED, what="promotion after the pause")
    assert controller.passes > passes
    assert memory.get(NAMESPACE, "podinfo").weights == Weights()
