"""Kayenta's remote judge (POST /judge) with the canary configs of Kayenta's own repository and
metric set pairs built for them, on a real server."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from gatekeeper import engine, wire
from gatekeeper.api.v1 import gatekeeper_pb2 as pb
from gatekeeper.server import app, kayenta_remote
from gatekeeper.server.app import ServerThread
from gatekeeper.stats.results import Decision
from tests.integration.http_client import Answer, call, violations
from tests.integration.peer_schemas import FIXTURES, ROOT, blocks

PROMETHEUS_CONFIG = json.loads((FIXTURES / "kayenta" / "canary-config-prometheus.json").read_text())
ATLAS_CONFIG = json.loads((FIXTURES / "kayenta" / "canary-config-atlas.json").read_text())
CPU = PROMETHEUS_CONFIG["metrics"][0]["name"]


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread]:
    running = ServerThread(app.ServerConfig(port=0, workers=1, http_port=0))
    yield running
    running.stop()


def pair(name: str, control: list[Any], experiment: list[Any]) -> dict[str, Any]:
    """A MetricSetPair as Kayenta sends it ("NaN" for missing points)."""

    def encode(values: list[Any]) -> list[Any]:
        return ["NaN" if isinstance(v, float) and math.isnan(v) else v for v in values]

    return {
        "name": name,
        "id": f"id-{name}",
        "tags": {"region": "eu-west-1"},
        "values": {"control": encode(control), "experiment": encode(experiment)},
        "scopes": {"control": {"startTimeIso": "2026-01-01T00:00:00Z"}},
        "attributes": {"control": {"query": "..."}},
    }


def lognormal(seed: int, scale: float = 1.0, n: int = 40) -> list[float]:
    return [float(v) * scale for v in np.random.default_rng(seed).lognormal(0.0, 0.2, n)]


def sparse(seed: int, spikes: int, n: int = 30) -> list[float]:
    rng = np.random.default_rng(seed)
    values = np.zeros(n)
    values[rng.choice(n, spikes, replace=False)] = rng.integers(2, 6, spikes)
    return [float(v) for v in values]


def judge(
    server: ServerThread,
    config: dict[str, Any],
    pairs: list[dict[str, Any]],
    thresholds: dict[str, float] | None = None,
) -> Answer:
    body: dict[str, Any] = {"canaryConfig": config, "metricSetPairList": pairs}
    if thresholds is not None:
        body["scoreThresholds"] = thresholds
    return call(f"{server.http_url}/judge", body=json.dumps(body))


def result(answer: Answer) -> dict[str, Any]:
    def no_bare_constants(name: str) -> None:
        raise AssertionError(f"the answer is not strict JSON: {name}")

    assert answer.status == 200, answer.body[:500]
    parsed: dict[str, Any] = json.loads(answer.body, parse_constant=no_bare_constants)
    return parsed


def test_a_healthy_canary_passes_and_a_regressed_critical_metric_fails(
    server: ServerThread,
) -> None:
    healthy = result(judge(server, PROMETHEUS_CONFIG, [pair(CPU, lognormal(1), lognormal(2))]))
    assert healthy["results"][0]["classification"] == "Pass"
    assert healthy["score"] == {
        "score": 100.0,
        "classification": "Pass",
        "classificationReason": healthy["score"]["classificationReason"],
    }
    assert healthy["results"][0]["id"] == f"id-{CPU}"
    assert healthy["results"][0]["groups"] == ["pod-group"]
    assert healthy["groupScores"][0]["name"] == "pod-group"
    regressed = result(
        judge(server, PROMETHEUS_CONFIG, [pair(CPU, lognormal(1), lognormal(2, 1.5))])
    )
    assert regressed["results"][0]["classification"] == "High"
    assert regressed["results"][0]["critical"] is True
    assert regressed["score"]["classification"] == "Fail"
    assert (
        regressed["score"]["score"] < PROMETHEUS_CONFIG["classifier"]["scoreThresholds"]["marginal"]
    )


def test_nan_strings_are_missing_points(server: ServerThread) -> None:
    control, experiment = lognormal(1), lognormal(2)
    control[3] = experiment[5] = math.nan
    answer = result(judge(server, PROMETHEUS_CONFIG, [pair(CPU, control, experiment)]))
    metric = answer["results"][0]
    assert metric["classification"] == "Pass"
    assert metric["controlMetadata"]["stats"]["count"] == 39
    assert metric["experimentMetadata"]["stats"]["count"] == 39


def test_all_nan_control_data_is_nodata_never_pass(server: ServerThread) -> None:
    answer = result(judge(server, PROMETHEUS_CONFIG, [pair(CPU, [math.nan] * 40, lognormal(2))]))
    assert answer["results"][0]["classification"] == "Nodata"
    assert answer["score"]["classification"] != "Pass"
    assert answer["score"]["score"] < PROMETHEUS_CONFIG["classifier"]["scoreThresholds"]["pass"]


def test_sparse_errors_pass_kayentas_judge_and_fail_ours(server: ServerThread) -> None:
    control = [0.0] * 30
    control[4] = control[20] = 1.0
    experiment = sparse(1, spikes=10)
    config = {**PROMETHEUS_CONFIG}
    answer = result(judge(server, config, [pair(CPU, control, experiment)]))
    assert answer["results"][0]["classification"] == "High"
    assert answer["score"]["classification"] == "Fail"
    # The same pairs through NetflixACAJudge's semantics (JUDGE_MODE_KAYENTA): Pass.
    request = kayenta_remote.judge_request(
        kayenta_remote.parse(
            json.dumps(
                {"canaryConfig": config, "metricSetPairList": [pair(CPU, control, experiment)]}
            ).encode()
        )
    )
    request.mode = pb.JUDGE_MODE_KAYENTA
    validated = wire.judge_input(request)
    assert engine.judge(validated.metrics, validated.settings).decision is Decision.PASS


def atlas_pairs() -> list[dict[str, Any]]:
    return [
        pair("cpu", lognormal(1), lognormal(2)),
        pair("requests", lognormal(3), lognormal(4, 2.0)),
        pair("foo", lognormal(5), lognormal(6)),
    ]


def test_group_scores_follow_the_configs_groups_and_weights(server: ServerThread) -> None:
    answer = result(judge(server, ATLAS_CONFIG, atlas_pairs()))
    labels = {r["name"]: r["classification"] for r in answer["results"]}
    assert labels == {"cpu": "Pass", "requests": "High", "foo": "Pass"}
    groups = {g["name"]: g["score"] for g in answer["groupScores"]}
    # Each metric in its first weighted group (cpu: system, requests: requests), else its first.
    assert groups == {"system": 100.0, "requests": 0.0, "bar": 100.0}
    # requests and system weigh 50 each; bar, without a weight, the mean weight (50).
    assert answer["results"][0]["groups"] == ["system", "example"]


@pytest.mark.parametrize(
    ("thresholds", "classification"),
    [
        ({"pass": 60.0, "marginal": 50.0}, "Pass"),
        ({"pass": 95.0, "marginal": 50.0}, "Marginal"),
        ({"pass": 95.0, "marginal": 75.0}, "Fail"),
        (None, "Fail"),  # the config's own thresholds: pass 95, marginal 75
    ],
)
def test_the_score_thresholds_come_from_the_request(
    server: ServerThread, thresholds: dict[str, float] | None, classification: str
) -> None:
    answer = result(judge(server, ATLAS_CONFIG, atlas_pairs(), thresholds))
    assert answer["score"]["classification"] == classification
    limit = thresholds or ATLAS_CONFIG["classifier"]["scoreThresholds"]
    if classification != "Pass":
        assert answer["score"]["score"] < limit["pass"]
    else:
        assert answer["score"]["score"] >= limit["pass"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda b: b["metricSetPairList"][0].update(name="disk"), "metricSetPairList[0].name"),
        (
            lambda b: b["metricSetPairList"][0]["values"]["experiment"].__setitem__(3, "Infinity"),
            "metricSetPairList[0].values.experiment[3]",
        ),
        (
            lambda b: b["metricSetPairList"][0]["values"]["control"].__setitem__(0, "high"),
            "metricSetPairList[0].values.control[0]",
        ),
        (lambda b: b.pop("canaryConfig"), "canaryConfig"),
        (lambda b: b.update(scoreThresholds={"pass": 200, "marginal": 10}), "scoreThresholds.pass"),
        (
            lambda b: b["canaryConfig"]["metrics"][0]["analysisConfigurations"]["canary"].update(
                direction="up"
            ),
            "canaryConfig.metrics[0].analysisConfigurations.canary.direction",
        ),
        (lambda b: b.update(metricSetPairList=[]), "metricSetPairList"),
    ],
)
def test_bad_requests_are_400_with_kayentas_field_paths(
    server: ServerThread, change: Any, field: str
) -> None:
    body: dict[str, Any] = json.loads(
        json.dumps(
            {
                "canaryConfig": PROMETHEUS_CONFIG,
                "metricSetPairList": [pair(CPU, lognormal(1), lognormal(2))],
            }
        )
    )
    change(body)
    answer = call(f"{server.http_url}/judge", body=json.dumps(body))
    assert answer.status == 400, answer.body[:300]
    assert field in violations(answer), violations(answer)


def test_the_documented_configuration_names_the_remote_judge() -> None:
    config = next(b for b in blocks("kayenta.md") if isinstance(b, dict) and "kayenta" in b)
    assert config["kayenta"]["remote-judge"]["enabled"] is True
    assert config["kayenta"]["remote-judge"]["endpoint"]["baseUrl"].endswith(":8080")


def test_the_readmes_example_request_is_judged(server: ServerThread) -> None:
    body = (ROOT / "examples" / "kayenta" / "remote-judge.json").read_bytes()
    answer = result(call(f"{server.http_url}/judge", body=body))
    assert {r["name"] for r in answer["results"]} == {"error-rate", "cpu", "latency"}
    assert answer["score"]["classification"] == "Pass"
