"""Argo Rollouts' web provider against the gatekeeper's /v1/analyze and a real Prometheus.

The AnalysisTemplate and the Rollout of docs/integrations/argo-rollouts.md are checked against
Argo's own CRD schemas; the endpoint gets exactly the request the template renders (method,
headers, body) and the documented conditions are evaluated on its answers.
"""

from __future__ import annotations

import copy
import datetime
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import grpc
import pytest
from google.protobuf import json_format

from gatekeeper.api.v1 import gatekeeper_pb2 as pb
from gatekeeper.api.v1 import gatekeeper_pb2_grpc as pb_grpc
from gatekeeper.server import app
from gatekeeper.server.app import ServerThread
from gatekeeper.sources.prometheus import PrometheusOptions
from tests.integration.conftest import ADAPTER_SIDES, StartServer
from tests.integration.http_client import Answer, call
from tests.integration.peer_schemas import (
    FIXTURES,
    ValidationError,
    crd_schema,
    manifest,
    validate,
)
from tests.integration.prom import PrometheusServer

DOC = "argo-rollouts.md"
CONDITION = re.compile(r'^result\.(\w+) == "(\w+)"$')


@pytest.fixture(scope="module")
def server(adapter_prometheus: PrometheusServer, adapter_specs: Path) -> Iterator[ServerThread]:
    config = app.ServerConfig(
        port=0,
        workers=0,
        http_port=0,
        prometheus_url=adapter_prometheus.url,
        spec_dir=adapter_specs,
    )
    running = ServerThread(config)
    yield running
    running.stop()


def metric() -> dict[str, Any]:
    template = manifest(DOC, "AnalysisTemplate")
    metrics: list[dict[str, Any]] = template["spec"]["metrics"]
    return metrics[0]


def test_the_manifests_fit_argo_rollouts_crds() -> None:
    template = manifest(DOC, "AnalysisTemplate")
    rollout = manifest(DOC, "Rollout")
    template_schema = crd_schema(
        FIXTURES / "argo-rollouts" / "analysis-template-crd.yaml", "v1alpha1"
    )
    validate(template, template_schema)
    validate(rollout, crd_schema(FIXTURES / "argo-rollouts" / "rollout-crd.yaml", "v1alpha1"))
    misspelt = copy.deepcopy(template)
    web = misspelt["spec"]["metrics"][0]["provider"]["web"]
    web["jsonbody"] = web.pop("jsonBody")
    with pytest.raises(ValidationError, match="jsonbody"):
        validate(misspelt, template_schema)
    args = {a["name"]: a for a in rollout["spec"]["strategy"]["canary"]["analysis"]["args"]}
    assert args["stable-hash"]["valueFrom"]["podTemplateHashValue"] == "Stable"
    assert args["canary-hash"]["valueFrom"]["podTemplateHashValue"] == "Latest"


def rendered(args: dict[str, str]) -> tuple[str, str, dict[str, str], str]:
    """Method, path, headers and body as Argo renders the template's web provider."""
    web = metric()["provider"]["web"]
    text = json.dumps(web)
    for name, value in args.items():
        text = text.replace("{{args." + name + "}}", value)
    assert "{{" not in text, text
    web = json.loads(text)
    headers = {h["key"]: h["value"] for h in web.get("headers", [])}
    return web["method"], urlsplit(web["url"]).path, headers, json.dumps(web["jsonBody"])


def measure(server: ServerThread, spec_name: str) -> Answer:
    method, path, headers, body = rendered(
        {
            "spec-name": spec_name,
            "stable-hash": ADAPTER_SIDES["baseline"]["rollouts_pod_template_hash"],
            "canary-hash": ADAPTER_SIDES["canary"]["rollouts_pod_template_hash"],
        }
    )
    return call(server.http_url + path, method=method, headers=headers, body=body)


def holds(condition: str, result: dict[str, Any]) -> bool:
    """The documented conditions, evaluated as Argo's expr would (field == string)."""
    match = CONDITION.match(condition)
    assert match, f"conditions should compare a result field with a string: {condition}"
    return bool(result.get(match[1]) == match[2])


@pytest.mark.parametrize(
    ("spec_name", "phase"),
    [
        ("healthy", "Successful"),
        ("errors", "Failed"),
        ("tail", "Failed"),
        ("quiet", "Inconclusive"),
    ],
)
def test_the_rendered_request_gets_the_documented_phase(
    server: ServerThread, spec_name: str, phase: str
) -> None:
    answer = measure(server, spec_name)
    assert answer.status == 200, answer.body[:500]
    result = answer.json()
    success = holds(metric()["successCondition"], result)
    failure = holds(metric()["failureCondition"], result)
    found = "Successful" if success else "Failed" if failure else "Inconclusive"
    assert found == phase, result["summary"]
    assert measure(server, spec_name).json()["decision"] == result["decision"]


def test_error_is_a_non_2xx_that_argo_counts_as_an_error(
    start_server: StartServer, adapter_specs: Path
) -> None:
    down = start_server(
        http_port=0,
        spec_dir=adapter_specs,
        prometheus_url="http://127.0.0.1:9",
        prometheus=PrometheusOptions(retries=1, backoff_seconds=0.01, timeout_seconds=1),
    )
    answer = measure(down, "healthy")
    assert answer.status == 503
    assert answer.json()["decision"] == "DECISION_ERROR"
    bad = measure(down, "no-such-spec")
    assert bad.status == 400 and "unknown spec 'no-such-spec'" in bad.body.decode()
    assert "healthy" not in bad.body.decode()  # served specs are not listed to any caller


def test_analyze_over_http_is_analyze_over_grpc(
    server: ServerThread, adapter_prometheus: PrometheusServer
) -> None:
    request = pb.AnalyzeRequest(
        spec_name="errors",
        baseline_selector='rollouts_pod_template_hash="5b6c7d8f9"',
        canary_selector='rollouts_pod_template_hash="7f8e9d6c5"',
    )
    request.end.FromDatetime(datetime.datetime.fromtimestamp(adapter_prometheus.end, datetime.UTC))
    answer = call(f"{server.http_url}/v1/analyze", body=json_format.MessageToJson(request))
    with grpc.insecure_channel(server.target) as channel:
        over_grpc = pb_grpc.GatekeeperStub(channel).Analyze(request, timeout=60)
    over_http = json_format.Parse(answer.body, pb.Verdict())
    assert over_http.decision == pb.DECISION_FAIL
    assert over_http.SerializeToString(deterministic=True) == over_grpc.SerializeToString(
        deterministic=True
    )


def test_the_observer_sees_analyze_verdicts_of_both_transports(
    adapter_prometheus: PrometheusServer, adapter_specs: Path
) -> None:
    seen: list[tuple[str, object, pb.Verdict]] = []

    def observer(*, method: str, request: object, verdict: pb.Verdict) -> None:
        seen.append((method, request, verdict))

    config = app.ServerConfig(
        port=0,
        workers=0,
        http_port=0,
        prometheus_url=adapter_prometheus.url,
        spec_dir=adapter_specs,
    )
    running = ServerThread(config, observer=observer)
    try:
        answer = measure(running, "errors")
        request = json_format.Parse(rendered_body("errors"), pb.AnalyzeRequest())
        with grpc.insecure_channel(running.target) as channel:
            pb_grpc.GatekeeperStub(channel).Analyze(request, timeout=60)
    finally:
        running.stop()
    assert [m for m, _, _ in seen] == ["Analyze", "Analyze"]
    assert seen[0][1] == request == seen[1][1]
    assert seen[0][2].decision == pb.DECISION_FAIL
    assert json_format.Parse(answer.body, pb.Verdict()).decision == pb.DECISION_FAIL


def rendered_body(spec_name: str) -> str:
    """The body Argo sends for ``spec_name`` (see :func:`measure`)."""
    return rendered(
        {
            "spec-name": spec_name,
            "stable-hash": ADAPTER_SIDES["baseline"]["rollouts_pod_template_hash"],
            "canary-hash": ADAPTER_SIDES["canary"]["rollouts_pod_template_hash"],
        }
    )[3]
