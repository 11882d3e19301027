"""Opt-in: the controller against a real cluster (kind). Skipped unless GATEKEEPER_E2E_KIND=1.

What the emulator cannot show: a real API server accepting the CRD (structural schema,
printer columns, status subresource) and the manifests (``kubectl apply --dry-run=server
-k controller/manifests``), real Deployments rolling out real pods, a real image that
never becomes ready. The controller runs in this process against the cluster of the
current kubeconfig context (or ``GATEKEEPER_E2E_CONTEXT``) with the replica-ratio router
(kind has no mesh); the gatekeeper is a real local server on a LiveSimulation. The
stepper's time is a manual clock; pods take real time. See controller/README.md.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from controller.clock import ManualClock
from controller.kube import Kube, load_api_client
from controller.model import Phase, status_from_dict
from controller.reconcile import Reconciler
from controller.resources import CANARIES, CRDS, DEPLOYMENTS, ResourceKind
from controller.workloads import deployment_ready
from tests.controller.conftest import MANIFESTS, START, target_deployment
from tests.controller.test_end_to_end import ANALYSIS, LiveGatekeeper

pytestmark = pytest.mark.skipif(
    os.environ.get("GATEKEEPER_E2E_KIND") != "1",
    reason="real-cluster e2e: set GATEKEEPER_E2E_KIND=1 with a kind cluster in the kubeconfig",
)
NAMESPACES = ResourceKind("", "v1", "namespaces", "Namespace")
IMAGE = "ghcr.io/stefanprodan/podinfo:6.5.0"
NEW = "ghcr.io/stefanprodan/podinfo:6.6.0"
MISSING = "ghcr.io/stefanprodan/podinfo:0.0.0-does-not-exist"


@pytest.fixture(scope="module")
def real() -> Kube:
    context = os.environ.get("GATEKEEPER_E2E_CONTEXT")
    return Kube(load_api_client(context=context), timeout=30.0)


@pytest.fixture(scope="module")
def crd(real: Kube) -> None:
    body = yaml.safe_load((MANIFESTS / "crd.yaml").read_text())
    if real.get(CRDS, namespace="", name=body["metadata"]["name"]) is None:
        real.create(CRDS, namespace="", body=body)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = real.get(CRDS, namespace="", name=body["metadata"]["name"]) or {}
        conditions = {c["type"]: c["status"] for c in found.get("status", {}).get("conditions", [])}
        if conditions.get("Established") == "True":
            return
        time.sleep(0.5)
    raise AssertionError("the Canary CRD was not established")


@pytest.fixture
def namespace(real: Kube, crd: None) -> Iterator[str]:
    name = f"gatekeeper-e2e-{uuid.uuid4().hex[:6]}"
    real.create(NAMESPACES, namespace="", body={"metadata": {"name": name}})
    yield name
    for canary in real.list(CANARIES, namespace=name):  # no controller runs any more to
        # restore a target and let go: drop the finalizer, or the namespace never goes
        meta = canary["metadata"]
        real.patch(
            CANARIES, namespace=name, name=meta["name"], patch={"metadata": {"finalizers": None}}
        )
    real.delete(NAMESPACES, namespace="", name=name)


def test_manifests_are_accepted_by_the_api_server() -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl not installed")
    result = subprocess.run(
        [kubectl, "apply", "--dry-run=server", "-k", str(MANIFESTS)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def _wait_rolled_out(real: Kube, namespace: str, *, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pending = [
            d["metadata"]["name"]
            for d in real.list(DEPLOYMENTS, namespace=namespace)
            if not deployment_ready(d) and ":0.0.0" not in str(d["spec"]["template"])
        ]
        if not pending:
            return
        time.sleep(1.0)
    raise AssertionError(f"Deployments not rolled out: {pending}")


def _drive(
    real: Kube, reconciler: Reconciler, clock: ManualClock, namespace: str, until: tuple[Phase, ...]
) -> Any:
    for _ in range(120):
        canary = real.get(CANARIES, namespace=namespace, name="podinfo")
        assert canary is not None
        reconciler.reconcile(canary)
        status = status_from_dict(real.get(CANARIES, namespace=namespace, name="podinfo")["status"])  # type: ignore[index]
        if status.phase in until:
            return status
        _wait_rolled_out(real, namespace)
        clock.advance(30)
    raise AssertionError(f"not {until} in time")


def test_a_rollout_and_a_rollback_on_a_real_cluster(real: Kube, namespace: str) -> None:
    clock = ManualClock(START)
    weights: list[float] = [0.0]
    live = LiveGatekeeper(clock=clock, weight=lambda: weights[0])
    try:
        reconciler = Reconciler(kube=real, analyzer=live.client, clock=clock)
        target = target_deployment(image=IMAGE, replicas=2)
        target["metadata"]["namespace"] = namespace
        real.create(DEPLOYMENTS, namespace=namespace, body=target)
        canary = {
            "apiVersion": "gatekeeper.dev/v1alpha1",
            "kind": "Canary",
            "metadata": {"name": "podinfo", "namespace": namespace},
            "spec": {
                "targetRef": {"name": "podinfo"},
                "router": {"type": "replicas", "replicas": {"totalReplicas": 2}},
                "progressDeadlineSeconds": 300,
                "steps": [{"setWeight": 50}, {"analysis": ANALYSIS}],
            },
        }
        real.create(CANARIES, namespace=namespace, body=canary)
        _wait_rolled_out(real, namespace)
        assert _drive(real, reconciler, clock, namespace, (Phase.IDLE,)).phase is Phase.IDLE
        weights[0] = 0.5
        real.patch(
            DEPLOYMENTS,
            namespace=namespace,
            name="podinfo",
            patch={"spec": {"template": {"spec": {"containers": [{"name": "app", "image": NEW}]}}}},
        )
        status = _drive(real, reconciler, clock, namespace, (Phase.SUCCEEDED, Phase.FAILED))
        assert status.phase is Phase.SUCCEEDED, status.message
        stable = real.get(DEPLOYMENTS, namespace=namespace, name="podinfo-stable")
        assert stable is not None and NEW in str(stable["spec"]["template"])
        real.patch(
            DEPLOYMENTS,
            namespace=namespace,
            name="podinfo",
            patch={
                "spec": {"template": {"spec": {"containers": [{"name": "app", "image": MISSING}]}}}
            },
        )
        status = _drive(real, reconciler, clock, namespace, (Phase.SUCCEEDED, Phase.FAILED))
        assert status.phase is Phase.FAILED
        assert "not ready within progressDeadlineSeconds" in status.message
    finally:
        live.stop()
