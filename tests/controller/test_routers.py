"""Each router's resources, as Gateway API, Istio, SMI and Kubernetes expect them.

Driven through the reconciler against the emulator: a rollout paused at a manual gate
with 30 % to the canary (and a QA header route where the router offers one), then the
rollback. The API requests the controller made must all be granted by its ClusterRole.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, cast

import pytest
import yaml

from controller.kube import Kube
from controller.model import Phase, SetHeaderRoute, Weights, parse_spec
from controller.resources import (
    CANARIES,
    DEPLOYMENTS,
    HTTPROUTES,
    VIRTUALSERVICES,
    KubeObjects,
    Object,
    traffic_splits,
)
from controller.routers import RouterContext, RouterError
from controller.routers.factory import make_router
from controller.routers.gateway_api import accepted
from controller.workloads import Names
from tests.controller.conftest import MANIFESTS, NAMESPACE, EmulatedCluster, set_image
from tests.controller.helpers import Rig

NEW = "ghcr.io/stefanprodan/podinfo:6.6.0"
QA = {
    "setHeaderRoute": {
        "match": [{"name": "x-canary", "exact": "qa"}, {"name": "x-team", "regex": "web|app"}]
    }
}


def paused_at_30(rig: Rig, *, header: bool, **spec: Any) -> None:
    steps = ([QA] if header else []) + [{"setWeight": 30}, {"pause": {}}]
    rig.create(steps=steps, **spec)
    rig.until(Phase.IDLE)
    set_image(rig.kube, "podinfo", NEW)
    rig.until(Phase.PAUSED)
    rig.reconcile()  # the read-back confirms the weight


def abort(rig: Rig) -> None:
    rig.kube.patch(
        CANARIES,
        namespace=NAMESPACE,
        name="podinfo",
        patch={"metadata": {"annotations": {"gatekeeper.dev/request": "abort/1"}}},
    )
    rig.until(Phase.FAILED)


def test_gateway_api_httproute(rig: Rig) -> None:
    parents = [{"name": "public", "namespace": "gateway-system"}]
    paused_at_30(
        rig,
        header=True,
        router={
            "type": "gatewayAPI",
            "gatewayAPI": {"parentRefs": parents, "hostnames": ["podinfo.example.com"]},
        },
        service={"port": 9898},
        baseline="dedicated",
    )
    route = rig.kube.get(HTTPROUTES, namespace=NAMESPACE, name="podinfo")
    assert route is not None
    assert route["apiVersion"] == "gateway.networking.k8s.io/v1" and route["kind"] == "HTTPRoute"
    assert route["spec"]["parentRefs"] == parents
    assert route["spec"]["hostnames"] == ["podinfo.example.com"]
    assert route["metadata"]["ownerReferences"][0]["kind"] == "Canary"
    header, weighted = route["spec"]["rules"]
    assert header == {
        "matches": [
            {
                "headers": [
                    {"type": "Exact", "name": "x-canary", "value": "qa"},
                    {"type": "RegularExpression", "name": "x-team", "value": "web|app"},
                ]
            }
        ],
        "backendRefs": [
            {"group": "", "kind": "Service", "name": "podinfo-canary", "port": 9898, "weight": 100}
        ],
    }
    assert "matches" not in weighted
    assert [(b["name"], b["port"], b["weight"]) for b in weighted["backendRefs"]] == [
        ("podinfo-stable", 9898, 40),
        ("podinfo-baseline", 9898, 30),
        ("podinfo-canary", 9898, 30),
    ]
    assert rig.status().weight_confirmed_at is not None
    assert rig.replicas("podinfo-baseline") == 3
    abort(rig)
    route = cast(Object, rig.kube.get(HTTPROUTES, namespace=NAMESPACE, name="podinfo"))
    assert len(route["spec"]["rules"]) == 1
    assert [b["weight"] for b in route["spec"]["rules"][0]["backendRefs"]] == [100, 0, 0]
    assert rig.replicas("podinfo-baseline") == 0 and rig.replicas("podinfo") == 0


def test_gateway_api_read_back_waits_for_the_gateways_to_accept() -> None:
    route: dict[str, Any] = {
        "metadata": {"generation": 3},
        "status": {
            "parents": [
                {"conditions": [{"type": "Accepted", "status": "True", "observedGeneration": 2}]}
            ]
        },
    }
    assert not accepted(route)
    route["status"]["parents"][0]["conditions"][0]["observedGeneration"] = 3
    assert accepted(route)
    route["status"]["parents"].append({"conditions": [{"type": "Accepted", "status": "False"}]})
    assert not accepted(route)
    assert accepted({"metadata": {}})


def test_istio_virtualservice(rig: Rig) -> None:
    paused_at_30(
        rig,
        header=True,
        router={
            "type": "istio",
            "istio": {"hosts": ["podinfo.default.svc.cluster.local"], "gateways": ["mesh"]},
        },
    )
    found = rig.kube.get(VIRTUALSERVICES, namespace=NAMESPACE, name="podinfo")
    assert found is not None and found["apiVersion"] == "networking.istio.io/v1beta1"
    assert found["spec"]["hosts"] == ["podinfo.default.svc.cluster.local"]
    assert found["spec"]["gateways"] == ["mesh"]
    header, weighted = found["spec"]["http"]
    assert header["name"] == "canary-header"
    assert header["match"] == [
        {"headers": {"x-canary": {"exact": "qa"}, "x-team": {"regex": "web|app"}}}
    ]
    assert header["route"] == [
        {"destination": {"host": "podinfo-canary", "port": {"number": 80}}, "weight": 100}
    ]
    assert weighted["name"] == "weighted"
    assert [(r["destination"]["host"], r["weight"]) for r in weighted["route"]] == [
        ("podinfo-stable", 70),
        ("podinfo-canary", 30),
    ]
    assert sum(r["weight"] for r in weighted["route"]) == 100
    abort(rig)
    found = cast(Object, rig.kube.get(VIRTUALSERVICES, namespace=NAMESPACE, name="podinfo"))
    assert [r["name"] for r in found["spec"]["http"]] == ["weighted"]
    assert [r["weight"] for r in found["spec"]["http"][0]["route"]] == [100, 0]


def test_smi_trafficsplit(rig: Rig, cluster: EmulatedCluster) -> None:
    paused_at_30(rig, header=False, router={"type": "smi", "smi": {"rootService": "podinfo"}})
    split = rig.kube.get(
        traffic_splits("split.smi-spec.io/v1alpha2"), namespace=NAMESPACE, name="podinfo"
    )
    assert split is not None and split["kind"] == "TrafficSplit"
    assert split["spec"] == {
        "service": "podinfo",
        "backends": [
            {"service": "podinfo-stable", "weight": 70},
            {"service": "podinfo-canary", "weight": 30},
        ],
    }
    abort(rig)
    split = cast(
        Object,
        rig.kube.get(
            traffic_splits("split.smi-spec.io/v1alpha2"), namespace=NAMESPACE, name="podinfo"
        ),
    )
    assert [b["weight"] for b in split["spec"]["backends"]] == [100, 0]


def test_replica_ratio(rig: Rig) -> None:
    paused_at_30(rig, header=False, router={"type": "replicas", "replicas": {"totalReplicas": 10}})
    assert (rig.replicas("podinfo-stable"), rig.replicas("podinfo")) == (7, 3)
    stable = cast(Object, rig.deployment("podinfo-stable"))
    assert stable["metadata"]["annotations"]["gatekeeper.dev/weights"] == "canary=30,baseline=0"
    assert rig.status().weight_confirmed_at is not None
    abort(rig)
    assert (rig.replicas("podinfo-stable"), rig.replicas("podinfo")) == (10, 0)


def test_replica_ratio_read_back_waits_for_ready_pods(rig: Rig, kube: Kube) -> None:
    rig.create(
        router={"type": "replicas", "replicas": {"totalReplicas": 4}},
        steps=[{"setWeight": 50}, {"pause": {}}],
    )
    rig.until(Phase.IDLE)
    spec = parse_spec(rig.canary()["spec"], name="podinfo")
    router = make_router(_context(kube, spec, total=4))
    rig.deployments.stop.set()  # no pod becomes ready until this test says so
    router.set_weights(Weights(canary=50))
    assert router.read_weights() is None  # the pods are not ready yet
    for deployment in kube.list(DEPLOYMENTS, namespace=NAMESPACE):
        rig.deployments.settle(deployment)
    assert router.read_weights() == Weights(canary=50)


def _context(kube: KubeObjects, spec: Any, *, total: int = 3) -> RouterContext:
    return RouterContext(
        namespace=NAMESPACE,
        names=Names(canary="podinfo", target="podinfo"),
        spec=spec,
        kube=kube,
        owner={
            "apiVersion": "gatekeeper.dev/v1alpha1",
            "kind": "Canary",
            "name": "podinfo",
            "uid": "u",
        },
        total_replicas=total,
    )


@pytest.mark.parametrize("kind", ["smi", "replicas"])
def test_header_routes_are_a_spec_error_where_unsupported(kube: Kube, kind: str) -> None:
    spec = parse_spec({"targetRef": {"name": "podinfo"}, "router": {"type": kind}}, name="podinfo")
    router = make_router(_context(kube, spec))
    router.set_header_route(())  # removing one is fine
    with pytest.raises(RouterError, match=f"router '{kind}' cannot route by header"):
        router.set_header_route(
            cast(
                SetHeaderRoute,
                parse_spec(
                    {"targetRef": {"name": "x"}, "router": {"type": "memory"}, "steps": [QA]},
                    name="x",
                ).steps[0],
            ).match
        )


def test_an_unknown_router_is_an_error_not_a_fallback(kube: Kube) -> None:
    spec = parse_spec(
        {"targetRef": {"name": "podinfo"}, "router": {"type": "memory"}}, name="podinfo"
    )
    odd = replace(spec, router=replace(spec.router, type="linkerd"))
    with pytest.raises(RouterError, match="unknown router 'linkerd'"):
        make_router(_context(kube, odd))


def _granted() -> set[tuple[str, str, str]]:
    role = next(
        d
        for d in yaml.safe_load_all((MANIFESTS / "rbac.yaml").read_text())
        if d["kind"] == "ClusterRole" and d["metadata"]["name"] == "canary-gatekeeper-controller"
    )
    return {
        (g, r, v)
        for rule in role["rules"]
        for g in rule["apiGroups"]
        for r in rule["resources"]
        for v in rule["verbs"]
    }


_VERBS = {"GET": "get", "POST": "create", "PATCH": "patch", "DELETE": "delete", "PUT": "update"}


def test_every_request_of_the_controller_is_granted_by_its_role(
    rig: Rig, cluster: EmulatedCluster
) -> None:
    parents = [{"name": "public"}]
    before = len(list(cluster.handler))
    paused_at_30(
        rig,
        header=True,
        router={"type": "gatewayAPI", "gatewayAPI": {"parentRefs": parents}},
        baseline="dedicated",
    )
    abort(rig)
    granted = _granted()
    used = set()
    for request in list(cluster.handler)[before:]:
        if request.resource is None or request.headers.get("User-Agent", "").startswith("kmock"):
            continue
        plural = cast(str, request.resource.plural) + (
            f"/{request.subresource}" if request.subresource else ""
        )
        verb = (
            "list" if request.method == "GET" and request.name is None else _VERBS[request.method]
        )
        if request.params.get("watch") == "true":
            verb = "watch"
        used.add((request.resource.group, plural, verb))
    # The fake Deployment controller writes deployments/status and the test writes the
    # target and Canaries: those are not the controller's requests.
    theirs = {
        ("apps", "deployments/status", "patch"),
        ("apps", "deployments", "list"),
        ("apps", "deployments", "watch"),
        ("apps", "deployments", "create"),
        ("gatekeeper.dev", "canaries", "create"),
        ("gatekeeper.dev", "canaries", "patch"),
        ("apiextensions.k8s.io", "customresourcedefinitions", "create"),
    }
    assert used - theirs <= granted, sorted(used - theirs - granted)
    for needed in [
        ("gatekeeper.dev", "canaries/status", "patch"),
        ("apps", "deployments", "patch"),
        ("", "services", "create"),
        ("gateway.networking.k8s.io", "httproutes", "create"),
        ("gateway.networking.k8s.io", "httproutes", "patch"),
    ]:
        assert needed in used
