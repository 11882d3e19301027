"""Flagger's webhooks against a real Prometheus: each decision of both hooks, and the Canary
of docs/integrations/flagger.md checked against Flagger's CRD schema."""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from gatekeeper.server import app, flagger
from gatekeeper.server.app import ServerThread
from gatekeeper.sources.prometheus import PrometheusOptions
from tests.integration.conftest import StartServer
from tests.integration.http_client import Answer, call, violations
from tests.integration.peer_schemas import FIXTURES, crd_schema, manifest, validate
from tests.integration.prom import PrometheusServer

HOOKS = ("rollout", "confirm-promotion")
#: Status of each hook by scenario (DESIGN.md: only 200-202 pass).
EXPECTED = {
    "healthy": {"rollout": 200, "confirm-promotion": 200},  # PASS
    "quiet": {"rollout": 200, "confirm-promotion": 412},  # INCONCLUSIVE
    "errors": {"rollout": 412, "confirm-promotion": 412},  # FAIL
    "tail": {"rollout": 412, "confirm-promotion": 412},  # FAIL
}
DECISIONS = {
    "healthy": "DECISION_PASS",
    "quiet": "DECISION_INCONCLUSIVE",
    "errors": "DECISION_FAIL",
    "tail": "DECISION_FAIL",
}


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


def webhook(server: ServerThread, hook: str, **metadata: str) -> Answer:
    """The POST Flagger sends (its payload, with the Canary's webhook metadata)."""
    payload = {
        "name": "podinfo",
        "namespace": "ns-generic",
        "phase": "Progressing" if hook == "rollout" else "Promoting",
        "checksum": "6d8f9c7b5",
        "metadata": metadata,
    }
    return call(f"{server.http_url}/flagger/{hook}", body=json.dumps(payload))


def test_the_canary_fits_flaggers_crd() -> None:
    canary = manifest("flagger.md", "Canary")
    validate(canary, crd_schema(FIXTURES / "flagger" / "crd.yaml", "v1beta1"))
    hooks = {h["type"]: h for h in canary["spec"]["analysis"]["webhooks"]}
    assert hooks["rollout"]["url"].endswith("/flagger/rollout")
    assert hooks["confirm-promotion"]["url"].endswith("/flagger/confirm-promotion")
    assert all(set(h["metadata"]) <= set(flagger.METADATA_KEYS) for h in hooks.values())


@pytest.mark.parametrize("scenario", list(EXPECTED))
@pytest.mark.parametrize("hook", HOOKS)
def test_each_decision_gets_flaggers_status(server: ServerThread, scenario: str, hook: str) -> None:
    # Flagger's naming selects the sides: podinfo-primary-<hash>-<id> and podinfo-<hash>-<id>.
    answer = webhook(server, hook, spec=scenario, lookback="2h")
    assert answer.json()["decision"] == DECISIONS[scenario], answer.json()["summary"]
    assert answer.status == EXPECTED[scenario][hook]


def test_metadata_selectors_and_start_override_the_defaults(
    server: ServerThread, adapter_prometheus: PrometheusServer
) -> None:
    start = datetime.datetime.fromtimestamp(adapter_prometheus.start, datetime.UTC)
    answer = webhook(
        server,
        "rollout",
        spec="errors",
        baselineSelector='rollouts_pod_template_hash="5b6c7d8f9"',
        canarySelector='rollouts_pod_template_hash="7f8e9d6c5"',
        start=start.isoformat().replace("+00:00", "Z"),
    )
    assert answer.status == 412
    assert any(
        'rollouts_pod_template_hash="7f8e9d6c5"' in q
        for q in answer.json()["metrics"][0]["queries"]
    )


def test_a_metric_source_that_is_down_is_503_and_holds_the_promotion(
    start_server: StartServer, adapter_specs: Path
) -> None:
    down = start_server(
        http_port=0,
        spec_dir=adapter_specs,
        prometheus_url="http://127.0.0.1:9",
        prometheus=PrometheusOptions(retries=1, backoff_seconds=0.01, timeout_seconds=1),
    )
    # With start given: no first-sample search, straight to the (failing) fetch.
    half_an_hour_ago = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=30)
    start = half_an_hour_ago.isoformat()
    assert webhook(down, "rollout", spec="healthy", start=start).status == 503
    assert webhook(down, "confirm-promotion", spec="healthy", start=start).status == 412
    assert webhook(down, "rollout", spec="healthy").status == 503


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "podinfo", "namespace": "ns", "metadata": {}}, "metadata.spec"),
        ({"name": "podinfo", "namespace": "ns", "metadata": {"spec": "nope"}}, "spec_name"),
        ({"name": "Pod Info", "namespace": "ns", "metadata": {"spec": "healthy"}}, "name"),
        ({"namespace": "ns", "metadata": {"spec": "healthy"}}, "name"),
        (
            {"name": "p", "namespace": "ns", "metadata": {"spec": "healthy", "start": "yesterday"}},
            "metadata.start",
        ),
        (
            {
                "name": "p",
                "namespace": "ns",
                "metadata": {"spec": "healthy", "lookback": "an hour"},
            },
            "metadata.lookback",
        ),
        (
            {"name": "p", "namespace": "ns", "metadata": {"spec": "healthy", "specName": "x"}},
            "metadata.specName",
        ),
        ({"name": "p", "namespace": "ns", "metadata": {"spec": 3}}, "metadata.spec"),
    ],
)
def test_bad_payloads_are_400_naming_the_field(
    server: ServerThread, body: dict[str, object], field: str
) -> None:
    for hook in HOOKS:
        answer = call(f"{server.http_url}/flagger/{hook}", body=json.dumps(body))
        assert answer.status == 400, answer.body
        assert field in violations(answer), violations(answer)


def test_the_default_selectors_follow_flaggers_naming() -> None:
    hook = flagger.Payload(name="podinfo", namespace="test")
    baseline, canary = flagger.selectors(hook)
    assert baseline == 'namespace="test", pod=~"podinfo-primary-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)"'
    assert canary == 'namespace="test", pod=~"podinfo-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)"'
