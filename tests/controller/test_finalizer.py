"""Deleting a Canary mid-rollout leaves its target serving all traffic, with every router.

Against the emulator: kmock keeps a Canary with finalizers (``deletionTimestamp`` set)
until they are removed; conftest.GarbageCollector plays the garbage collector the
emulator lacks, deleting what the gone Canary owned, as Kubernetes would.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from controller.finalizer import FINALIZER
from controller.kube import Kube
from controller.model import Phase, Weights
from controller.resources import (
    CANARIES,
    DEPLOYMENTS,
    HTTPROUTES,
    SERVICES,
    VIRTUALSERVICES,
    Object,
    ResourceKind,
    traffic_splits,
)
from controller.workloads import deployment_ready
from tests.controller.conftest import (
    BROKEN_MARK,
    MANIFESTS,
    NAMESPACE,
    DeploymentController,
    EmulatedCluster,
    GarbageCollector,
    set_image,
)
from tests.controller.helpers import Rig

NEW = "ghcr.io/stefanprodan/podinfo:6.6.0"
SMI = traffic_splits("split.smi-spec.io/v1alpha2")
ROUTERS: dict[str, dict[str, Any]] = {
    "gatewayAPI": {"type": "gatewayAPI", "gatewayAPI": {"parentRefs": [{"name": "public"}]}},
    "istio": {"type": "istio", "istio": {"hosts": ["podinfo.default.svc.cluster.local"]}},
    "smi": {"type": "smi", "smi": {"rootService": "podinfo"}},
    "replicas": {"type": "replicas", "replicas": {"totalReplicas": 4}},
    "memory": {"type": "memory"},
}


def mid_rollout(rig: Rig, router: dict[str, Any]) -> None:
    """A new version at 30 %, held at a manual gate."""
    rig.create(steps=[{"setWeight": 30}, {"pause": {}}], router=router)
    rig.until(Phase.IDLE)
    assert rig.canary()["metadata"]["finalizers"] == [FINALIZER]
    set_image(rig.kube, "podinfo", NEW)
    rig.until(Phase.PAUSED)
    rig.reconcile()


def delete_and_reconcile(rig: Rig, *, rounds: int = 6) -> Object | None:
    """Delete the Canary, reconcile while it is there; the Canary left (None: gone)."""
    rig.kube.delete(CANARIES, namespace=NAMESPACE, name="podinfo")
    for _ in range(rounds):
        found = rig.kube.get(CANARIES, namespace=NAMESPACE, name="podinfo")
        if found is None:
            return None
        assert found["metadata"]["deletionTimestamp"]  # held by the finalizer
        rig.reconciler.reconcile(found)
        rig.deployments.wait_settled()
    return rig.kube.get(CANARIES, namespace=NAMESPACE, name="podinfo")


def owned_by_canary(found: Object) -> bool:
    return any(o.get("kind") == "Canary" for o in found["metadata"].get("ownerReferences") or [])


def backends(kube: Kube, router: str) -> list[tuple[str, int]]:
    """Where the route sends traffic without header matches: (Service, weight)."""
    kinds: dict[str, ResourceKind] = {
        "gatewayAPI": HTTPROUTES,
        "istio": VIRTUALSERVICES,
        "smi": SMI,
    }
    found = kube.get(kinds[router], namespace=NAMESPACE, name="podinfo")
    assert found is not None and not owned_by_canary(found)  # released: it outlives the Canary
    spec = found["spec"]
    if router == "gatewayAPI":
        return [(b["name"], b["weight"]) for r in spec["rules"] for b in r["backendRefs"]]
    if router == "istio":
        return [(d["destination"]["host"], d["weight"]) for r in spec["http"] for d in r["route"]]
    return [(b["service"], b["weight"]) for b in spec["backends"]]


@pytest.mark.parametrize("router", list(ROUTERS))
def test_deleting_a_canary_mid_rollout_leaves_the_target_serving_all_traffic(
    rig: Rig, kube: Kube, router: str
) -> None:
    mid_rollout(rig, ROUTERS[router])
    assert rig.status().weight == 30
    uid = rig.canary()["metadata"]["uid"]
    assert delete_and_reconcile(rig) is None  # restored, then let go
    deleted = GarbageCollector(kube).collect()
    assert "Deployment/podinfo-stable" in deleted
    assert kube.get(DEPLOYMENTS, namespace=NAMESPACE, name="podinfo-stable") is None
    target = rig.deployment("podinfo")
    size = 4 if router == "replicas" else 3
    assert target is not None and target["spec"]["replicas"] == size
    assert deployment_ready(target) and rig.image("podinfo") == NEW
    if router == "memory":
        memory = rig.memory.get(NAMESPACE, "podinfo")
        assert memory.finalized and memory.weights == Weights(canary=100)
        assert memory.header_route == ()
        return
    if router == "replicas":  # the user's Service reaches every track: only the target is left
        return
    assert backends(kube, router) == [("podinfo-canary", 100)]
    service = kube.get(SERVICES, namespace=NAMESPACE, name="podinfo-canary")
    assert service is not None and not owned_by_canary(service)
    assert service["spec"]["selector"] == {"app": "podinfo"}  # the target's pods
    assert all(uid not in str(o) for o in [service["metadata"], target["metadata"]])


def test_stable_serves_until_the_target_is_ready_then_the_canary_is_let_go(
    rig: Rig, kube: Kube, deployments: DeploymentController
) -> None:
    mid_rollout(rig, ROUTERS["memory"])
    set_image(kube, "podinfo", f"ghcr.io/stefanprodan/podinfo{BROKEN_MARK}")  # never ready
    rig.reconcile()
    memory = rig.memory.get(NAMESPACE, "podinfo")
    left = delete_and_reconcile(rig)
    assert left is not None, "let go while the target cannot serve"
    assert "waiting for the 3 pods of the target podinfo" in left["status"]["message"]
    assert GarbageCollector(kube).collect() == []  # the Canary is there: nothing collected
    assert rig.replicas("podinfo-stable") == 3
    assert not memory.finalized and memory.weights.canary < 100
    set_image(kube, "podinfo", NEW)  # the target can run again
    deployments.wait_settled()
    assert delete_and_reconcile(rig) is None
    assert memory.finalized and memory.weights == Weights(canary=100)
    assert "Deployment/podinfo-stable" in GarbageCollector(kube).collect()


def test_a_canary_that_changed_nothing_is_let_go_at_once(rig: Rig, kube: Kube) -> None:
    rig.create(router={"type": "linkerd"})  # a spec error: nothing created
    rig.reconcile()
    assert rig.canary()["metadata"]["finalizers"] == [FINALIZER]
    assert rig.deployment("podinfo-stable") is None
    assert delete_and_reconcile(rig, rounds=1) is None
    assert rig.replicas("podinfo") == 3


def test_finalizing_needs_only_what_the_role_grants(
    rig: Rig, kube: Kube, cluster: EmulatedCluster
) -> None:
    mid_rollout(rig, ROUTERS["gatewayAPI"])
    before = len(list(cluster.handler))
    assert delete_and_reconcile(rig) is None
    role = next(
        d
        for d in yaml.safe_load_all((MANIFESTS / "rbac.yaml").read_text())
        if d["kind"] == "ClusterRole" and d["metadata"]["name"] == "canary-gatekeeper-controller"
    )
    granted = {
        (g, r, v)
        for rule in role["rules"]
        for g in rule["apiGroups"]
        for r in rule["resources"]
        for v in rule["verbs"]
    }
    verbs = {"GET": "get", "PATCH": "patch", "POST": "create"}
    used = {
        (request.resource.group, request.resource.plural, verbs[request.method])
        for request in list(cluster.handler)[before:]
        if request.resource is not None
        and request.name is not None
        and request.method in verbs
        and request.subresource is None
        and not request.headers.get("User-Agent", "").startswith("kmock")
    }
    assert ("gatekeeper.dev", "canaries", "patch") in used  # the finalizer removed
    assert used <= granted, sorted(used - granted)
