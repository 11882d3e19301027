"""The Canary spec and status, the CRD's schema, the manifests and the examples."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import jsonschema  # type: ignore[import-untyped]  # no stubs in the dev dependencies
import pytest
import yaml

from controller.model import (
    Analysis,
    AnalysisState,
    HeaderMatch,
    Phase,
    SetWeight,
    SpecError,
    Status,
    parse_duration,
    parse_intervention,
    parse_spec,
    status_from_dict,
    status_to_dict,
)
from controller.notify import SEVERITIES
from controller.outbox import STATUS_KEYS as OUTBOX_KEYS
from gatekeeper.spec import load_spec

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "controller" / "manifests"
EXAMPLES = ROOT / "controller" / "examples"


def documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


CRD = documents(MANIFESTS / "crd.yaml")[0]
VERSION = CRD["spec"]["versions"][0]
SCHEMA = VERSION["schema"]["openAPIV3Schema"]


def _to_json_schema(node: Any) -> Any:
    """OpenAPI v3 structural schema -> JSON Schema draft 4 (int-or-string, x- keys)."""
    if isinstance(node, list):
        return [_to_json_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _to_json_schema(v) for k, v in node.items() if not k.startswith("x-kubernetes")}
    if node.get("x-kubernetes-int-or-string"):
        out["type"] = ["integer", "string"]
    return out


VALIDATOR = jsonschema.Draft4Validator(_to_json_schema(SCHEMA))


def canaries() -> list[tuple[str, dict[str, Any]]]:
    return [
        (path.name, doc)
        for path in sorted(EXAMPLES.glob("*.yaml"))
        for doc in documents(path)
        if doc.get("kind") == "Canary"
    ]


def _walk(node: dict[str, Any], path: str) -> list[str]:
    untyped = []
    if "type" not in node and not node.get("x-kubernetes-int-or-string"):
        untyped.append(path)
    for name, child in node.get("properties", {}).items():
        untyped += _walk(child, f"{path}.{name}")
    if "items" in node:
        untyped += _walk(node["items"], f"{path}[]")
    return untyped


def test_every_schema_field_is_typed() -> None:
    assert _walk(SCHEMA, "") == []


def test_crd_names_columns_and_status_subresource() -> None:
    assert CRD["metadata"]["name"] == "canaries.gatekeeper.dev"
    assert VERSION["name"] == "v1alpha1"
    assert VERSION["subresources"] == {"status": {}}
    columns = {c["name"]: c["jsonPath"] for c in VERSION["additionalPrinterColumns"]}
    assert columns == {
        "Phase": ".status.phase",
        "Step": ".status.stepIndex",
        "Weight": ".status.weight",
        "Last Decision": ".status.lastDecision",
        "Age": ".metadata.creationTimestamp",
    }


def test_status_schema_covers_what_the_controller_writes() -> None:
    written = set(status_to_dict(Status())) | {"specError", "conditions", *OUTBOX_KEYS}
    assert written == set(SCHEMA["properties"]["status"]["properties"])


def test_schema_enums_match_the_parser() -> None:
    spec = SCHEMA["properties"]["spec"]["properties"]
    from controller import model  # noqa: PLC0415

    assert tuple(spec["router"]["properties"]["type"]["enum"]) == model.ROUTER_TYPES
    assert tuple(spec["baseline"]["enum"]) == model.BASELINE_MODES
    step = spec["steps"]["items"]["properties"]
    assert tuple(step) == model.STEP_KINDS
    assert tuple(step["analysis"]["properties"]["onInconclusive"]["enum"]) == model.ON_INCONCLUSIVE
    phases = SCHEMA["properties"]["status"]["properties"]["phase"]["enum"]
    assert phases == [p.value for p in Phase]
    entry = SCHEMA["properties"]["status"]["properties"]["outbox"]["items"]["properties"]
    assert tuple(entry["notification"]["properties"]["severity"]["enum"]) == SEVERITIES


@pytest.mark.parametrize(
    ("name", "canary"), canaries(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_examples_are_valid_and_parse(name: str, canary: dict[str, Any]) -> None:
    VALIDATOR.validate(canary)
    parsed = parse_spec(canary["spec"], name=canary["metadata"]["name"])
    assert parsed.steps


def test_two_stage_example_is_header_qa_then_percentages() -> None:
    ((_, canary),) = [c for c in canaries() if c[0] == "canary-two-stage.yaml"]
    steps = parse_spec(canary["spec"], name="podinfo").steps
    kinds = [type(s).__name__ for s in steps]
    assert kinds[:4] == ["SetHeaderRoute", "Pause", "SetHeaderRoute", "SetWeight"]
    assert [s.weight for s in steps if isinstance(s, SetWeight)] == [10, 30, 50]


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"steps": [{"setWeight": 120}]}, "steps"),
        ({"router": {"type": "linkerd"}}, "router"),
        ({"steps": [{"setWeight": 10, "pause": {}}]}, "steps"),
        ({"baseline": "fresh"}, "baseline"),
        ({"steps": [{"pause": {"duration": "ten minutes"}}]}, "duration"),
        ({"targetRef": {}}, "targetRef"),
    ],
)
def test_schema_rejects(change: dict[str, Any], where: str) -> None:
    canary = {
        "apiVersion": "gatekeeper.dev/v1alpha1",
        "kind": "Canary",
        "metadata": {"name": "x"},
        "spec": {"targetRef": {"name": "x"}, "router": {"type": "memory"}, **change},
    }
    errors = list(VALIDATOR.iter_errors(canary))
    assert errors and any(
        where in "/".join(map(str, e.absolute_path)) or where in e.message for e in errors
    )


def test_gatekeeper_spec_in_the_manifests_loads() -> None:
    config = next(d for d in documents(MANIFESTS / "gatekeeper.yaml") if d["kind"] == "ConfigMap")
    for text in config["data"].values():
        assert load_spec(text).metrics


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())
    files = {p.name for p in MANIFESTS.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == files


def test_controller_role_deletes_only_jobs_and_reads_no_secrets() -> None:
    role = next(
        d
        for d in documents(MANIFESTS / "rbac.yaml")
        if d["metadata"]["name"] == "canary-gatekeeper-controller" and d["kind"] == "ClusterRole"
    )
    verbs = {v for rule in role["rules"] for v in rule["verbs"]}
    resources = {r for rule in role["rules"] for r in rule["resources"]}
    deleting = {r for rule in role["rules"] if "delete" in rule["verbs"] for r in rule["resources"]}
    assert deleting == {"jobs"} and "*" not in verbs
    assert "secrets" not in resources and "*" not in resources


def test_controller_runs_two_replicas_with_a_lease() -> None:
    deployment = documents(MANIFESTS / "controller.yaml")[0]
    assert deployment["spec"]["replicas"] == 2
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--leader-elect" in args
    leader = next(d for d in documents(MANIFESTS / "rbac.yaml") if d["kind"] == "Role")
    assert leader["rules"] == [
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "verbs": ["get", "create", "patch"],
        }
    ]


BASE = {"targetRef": {"name": "app"}, "router": {"type": "memory"}}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"router": {"type": "linkerd"}},
            "spec.router.type: must be one of gatewayAPI, istio, smi, replicas, memory, got 'linkerd'",
        ),
        ({"router": {}}, "spec.router.type: is required; allowed: gatewayAPI"),
        ({"targetRef": {}}, "spec.targetRef.name: is required"),
        (
            {"steps": [{"setWeight": 101}]},
            "spec.steps[0].setWeight: must be an integer 0..100, got 101",
        ),
        (
            {"steps": [{"setWeight": 5, "pause": {}}]},
            "spec.steps[0]: must have exactly one of setWeight, pause, analysis, setHeaderRoute, loadTest, got setWeight, pause",
        ),
        (
            {"steps": [{"pause": {"duration": "soon"}}]},
            "spec.steps[0].pause.duration: must be a duration such as 30s, 5m or 1h30m, got 'soon'",
        ),
        (
            {"steps": [{"analysis": {}}]},
            "spec.steps[0].analysis: needs the analysis spec: spec (inline YAML/JSON) or specName",
        ),
        (
            {"steps": [{"analysis": {"specName": "a", "spec": "b"}}]},
            "spec.steps[0].analysis: give either spec or specName, not both",
        ),
        (
            {"steps": [{"analysis": {"specName": "a", "onInconclusive": "wait"}}]},
            "spec.steps[0].analysis.onInconclusive: must be one of extend, rollback, pause, got 'wait'",
        ),
        (
            {"steps": [{"analysis": {"specName": "a", "canarySelector": 'pod="{{pod}}"'}}]},
            "spec.steps[0].analysis.canarySelector: unknown placeholder {{pod}}; allowed: {{namespace}}",
        ),
        (
            {"steps": [{"setHeaderRoute": {"match": [{"name": "x", "exact": "1", "regex": "."}]}}]},
            "spec.steps[0].setHeaderRoute.match[0]: needs exactly one of exact or regex",
        ),
        (
            {
                "steps": [
                    {"setHeaderRoute": {"match": [{"name": "x", "exact": "qa"}]}},
                    {"analysis": {"specName": "a"}},
                ]
            },
            "spec.steps[1].analysis: the header route of steps[0] is still active",
        ),
        (
            {
                "steps": [
                    {"analysis": {"specName": "a"}},
                    {"setHeaderRoute": {"match": [{"name": "x", "exact": "qa"}]}},
                ]
            },
            "spec.steps[1].setHeaderRoute: after the analysis of steps[0]; a rollout's "
            "analysis is one window",
        ),
        (
            {
                "steps": [
                    {"analysis": {"specName": "a", "maxExtraLooks": 3}},
                    {"analysis": {"specName": "a", "onInconclusive": "rollback"}},
                ]
            },
            "spec.steps[0].analysis.maxExtraLooks: applies only to the final analysis step "
            "(steps[1])",
        ),
        (
            {
                "router": {"type": "smi"},
                "steps": [{"setHeaderRoute": {"match": [{"name": "x", "exact": "qa"}]}}],
            },
            "spec.steps[0].setHeaderRoute: router 'smi' cannot route by header",
        ),
        (
            {
                "router": {"type": "replicas"},
                "steps": [{"setHeaderRoute": {"match": [{"name": "x", "exact": "qa"}]}}],
            },
            "router 'replicas' cannot route by header",
        ),
        (
            {"baseline": "dedicated", "steps": [{"setWeight": 60}]},
            "spec.steps[0].setWeight: with baseline dedicated the canary and the baseline get the same weight, so at most 50, got 60",
        ),
        (
            {"router": {"type": "istio", "smi": {}}},
            "spec.router.smi: is set, but router.type is 'istio'",
        ),
        (
            {"steps": [{"loadTest": {"rps": 50, "duration": "1m", "maxRps": 10}}]},
            "spec.steps[0].loadTest.rps: must be <= maxRps (10), got 50",
        ),
        ({"steps": [{"loadTest": {"rps": 5}}]}, "spec.steps[0].loadTest.duration: is required"),
        ({"colour": "blue"}, "spec.colour: unknown field; allowed: targetRef"),
    ],
)
def test_spec_errors_name_the_field_and_the_allowed_values(
    spec: dict[str, Any], message: str
) -> None:
    with pytest.raises(SpecError) as caught:
        parse_spec({**BASE, **spec}, name="app")
    assert message in str(caught.value)


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(SpecError) as caught:
        parse_spec({"router": {"type": "x"}, "steps": [{"setWeight": -1}]}, name="app")
    assert len(caught.value.problems) == 3


def test_step_analysis_inherits_spec_analysis() -> None:
    spec = parse_spec(
        {
            **BASE,
            "analysis": {"specName": "http", "interval": "30s", "looks": 4},
            "steps": [{"analysis": {}}, {"analysis": {"spec": "metrics: []", "looks": 8}}],
        },
        name="app",
    )
    first, second = cast(tuple[Analysis, Analysis], spec.steps)
    assert (first.spec_name, first.interval_seconds, first.looks, first.warmup_seconds) == (
        "http",
        30.0,
        4,
        30.0,
    )
    assert first.max_extra_looks == 4 and first.on_inconclusive == "pause"
    assert (second.spec, second.spec_name, second.looks) == ("metrics: []", None, 8)


def test_defaults() -> None:
    spec = parse_spec(BASE, name="app")
    assert spec.baseline == "stable" and spec.progress_deadline_seconds == 600
    assert spec.service.port == 80 and spec.router.resource == ""
    routed = parse_spec({**BASE, "router": {"type": "gatewayAPI"}}, name="app")
    assert routed.router.resource == "app"


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30), ("5m", 300), ("1h30m", 5400), ("500ms", 0.5), (90, 90)]
)
def test_durations(text: Any, seconds: float) -> None:
    assert parse_duration(text, path="x") == seconds


def test_status_round_trip() -> None:
    status = Status(
        phase=Phase.PROGRESSING,
        message="m",
        stable_hash="a",
        canary_hash="b",
        replicas=3,
        step_index=2,
        step_started_at=1714572000.0,
        weight=10,
        weight_confirmed_at=1714572001.5,
        header_route=(HeaderMatch(name="x-canary", regex="qa.*"),),
        analysis=AnalysisState(start=1714572060.0, looks_taken=2, consecutive_errors=1),
        last_decision="INCONCLUSIVE",
    )
    stored = status_to_dict(status)
    assert stored["stepStartedAt"] == "2024-05-01T14:00:00Z"
    assert stored["headerRoute"] == [{"name": "x-canary", "regex": "qa.*"}]
    assert stored["failedHash"] is None  # cleared by a merge patch
    assert status_from_dict({k: v for k, v in stored.items() if v is not None}) == status


def test_interventions() -> None:
    assert parse_intervention("resume/abc").verb == "resume"  # type: ignore[union-attr]
    assert parse_intervention("reboot/abc") is None
    assert parse_intervention("resume/") is None
    assert parse_intervention(None) is None
