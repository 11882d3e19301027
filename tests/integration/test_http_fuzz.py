"""Fuzzing the HTTP adapters: whatever arrives, the answer is a status of the table and the
server lives (the HTTP twin of test_server_fuzz.py).

Judge gets the gRPC fuzzer's messages in the JSON mapping; Analyze, Flagger's webhooks and
Kayenta's judge get JSON documents shaped like their payloads with wrong types, NaN, huge
numbers and unknown keys; every endpoint gets random bytes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gatekeeper.api.v1 import gatekeeper_pb2 as pb
from gatekeeper.server import app
from gatekeeper.server.app import ServerThread
from tests.integration.grpc_server import judge_request
from tests.integration.http_client import call
from tests.integration.prom import PrometheusServer
from tests.integration.test_server_fuzz import requests

#: 200 verdicts, 400 bad input, 412 Flagger's failed check, 413 too large, 503 ERROR.
ALLOWED = {200, 400, 412, 413, 503}
ENDPOINTS = ("/v1/judge", "/v1/analyze", "/flagger/rollout", "/flagger/confirm-promotion", "/judge")
FUZZ = settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)
SPEC = "provider: generic\nservice: healthy\nnamespace: ns-generic\ninterval: 30s\nmetrics:\n  - {name: error-rate, template: request-success-rate}\n"


@pytest.fixture(scope="module")
def server(
    prometheus: PrometheusServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerThread]:
    specs = Path(tmp_path_factory.mktemp("fuzz-specs"))
    (specs / "healthy.yaml").write_text(SPEC)
    config = app.ServerConfig(
        port=0,
        workers=1,
        http_port=0,
        prometheus_url=prometheus.url,
        spec_dir=specs,
        max_message_bytes=2_000_000,
    )
    running = ServerThread(config)
    yield running
    running.stop()


def status(server: ServerThread, path: str, body: bytes | str) -> int:
    return call(server.http_url + path, body=body).status


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(
        [
            "NaN",
            "Infinity",
            "-Infinity",
            "",
            "1h",
            "-5s",
            "healthy",
            "2026-01-01T00:00:00Z",
            "x" * 300,
        ]
    ),
    st.text(max_size=20),
)
documents = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=5)
    ),
    max_leaves=30,
)


def mostly(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Usually a plausible value, sometimes any JSON document (so that the checks after the
    first field are reached too)."""
    return st.integers(0, 5).flatmap(lambda k: documents if k == 0 else valid)


def shaped(
    keys: dict[str, Any], required: tuple[str, ...] = ()
) -> st.SearchStrategy[dict[str, Any]]:
    """Documents with the payload's keys (``required`` ones always), now and then a stray one."""
    stray = st.integers(0, 5).flatmap(
        lambda k: (
            st.dictionaries(st.text(max_size=8), documents, max_size=2) if k == 0 else st.just({})
        )
    )
    fixed = {k: v for k, v in keys.items() if k in required}
    optional = {k: v for k, v in keys.items() if k not in required}
    return st.fixed_dictionaries(fixed, optional=optional).flatmap(
        lambda base: stray.map(lambda extra: {**extra, **base})
    )


analyze_bodies = shaped(
    {
        "specName": mostly(st.sampled_from(["healthy", "healthy", "nope", ""])),
        "baselineSelector": mostly(st.sampled_from(['track="baseline"', "}", ""])),
        "canarySelector": mostly(st.sampled_from(['track="canary"', 'track="baseline"'])),
        "start": mostly(st.sampled_from(["2026-12-07T23:00:00Z", "1970-01-01T00:00:00Z", "soon"])),
        "end": mostly(st.sampled_from(["2026-12-08T00:00:00Z", "2030-01-01T00:00:00Z"])),
        "interval": mostly(st.sampled_from(["30s", "0s", "-30s", "0.001s", "99999999s"])),
        "lookback": mostly(st.sampled_from(["3600s", "0s", "-1s", "315360000s"])),
        "look": mostly(
            st.fixed_dictionaries(
                {"index": st.integers(-5, 2**31 - 1), "planned": st.integers(-5, 50)}
            )
        ),
        "preflight": mostly(st.booleans()),
    },
    required=("specName", "baselineSelector", "canarySelector"),
)
metadata = st.dictionaries(
    st.sampled_from(["start", "lookback", "canarySelector", "other"]),
    mostly(st.sampled_from(["nope", "1h", "0s", "2026-12-07T23:00:00Z", '}"', 'track="x"'])),
    max_size=3,
)
flagger_bodies = shaped(
    {
        "name": mostly(st.sampled_from(["podinfo", "podinfo", "Pod", ""])),
        "namespace": mostly(st.sampled_from(["ns-generic", "ns-generic", "a" * 80])),
        "phase": mostly(st.just("Progressing")),
        "metadata": mostly(
            metadata.flatmap(lambda m: mostly(st.just("healthy")).map(lambda s: {"spec": s, **m}))
        ),
    },
    required=("name", "namespace", "metadata"),
)
value_lists = st.lists(
    mostly(st.floats(allow_nan=False) | st.sampled_from(["NaN", "Infinity", "x"])), max_size=40
)
config_metric = st.fixed_dictionaries(
    {"name": mostly(st.sampled_from(["cpu", "", "mem"]))},
    optional={
        "groups": mostly(st.lists(st.text(max_size=5), max_size=3)),
        "analysisConfigurations": mostly(
            st.fixed_dictionaries(
                {
                    "canary": st.fixed_dictionaries(
                        {},
                        optional={
                            "direction": mostly(st.sampled_from(["increase", "either", "up"])),
                            "critical": mostly(st.booleans()),
                        },
                    )
                }
            )
        ),
    },
)
kayenta_bodies = shaped(
    {
        "canaryConfig": mostly(
            st.fixed_dictionaries(
                {"metrics": mostly(st.lists(config_metric, min_size=1, max_size=3))},
                optional={
                    "classifier": mostly(
                        st.fixed_dictionaries(
                            {
                                "groupWeights": mostly(
                                    st.dictionaries(
                                        st.text(max_size=3), st.floats(-1, 200), max_size=2
                                    )
                                )
                            }
                        )
                    )
                },
            )
        ),
        "scoreThresholds": mostly(
            st.fixed_dictionaries(
                {"pass": mostly(st.floats(-10, 200)), "marginal": mostly(st.floats(-10, 200))}
            )
        ),
        "metricSetPairList": mostly(
            st.lists(
                st.fixed_dictionaries(
                    {"name": mostly(st.sampled_from(["cpu", "mem"]))},
                    optional={
                        "values": mostly(
                            st.fixed_dictionaries(
                                {"control": value_lists, "experiment": value_lists}
                            )
                        )
                    },
                ),
                max_size=3,
            )
        ),
    },
    required=("canaryConfig", "metricSetPairList"),
)


@settings(FUZZ, max_examples=150)
@given(request=requests())
def test_generated_judge_requests_get_a_status_of_the_table(
    server: ServerThread, request: pb.JudgeRequest
) -> None:
    assert status(server, "/v1/judge", json_format.MessageToJson(request)) in ALLOWED


@FUZZ
@given(body=analyze_bodies)
def test_analyze_bodies_get_a_status_of_the_table(
    server: ServerThread, body: dict[str, Any]
) -> None:
    assert status(server, "/v1/analyze", json.dumps(body)) in ALLOWED


@FUZZ
@given(body=flagger_bodies, hook=st.sampled_from(["rollout", "confirm-promotion"]))
def test_flagger_payloads_get_a_status_of_the_table(
    server: ServerThread, body: dict[str, Any], hook: str
) -> None:
    assert status(server, f"/flagger/{hook}", json.dumps(body)) in ALLOWED


@FUZZ
@given(body=kayenta_bodies)
def test_kayenta_requests_get_a_status_of_the_table(
    server: ServerThread, body: dict[str, Any]
) -> None:
    assert status(server, "/judge", json.dumps(body)) in ALLOWED


@FUZZ
@given(
    data=st.binary(max_size=2048) | documents.map(json.dumps).map(str.encode),
    path=st.sampled_from(ENDPOINTS),
)
def test_random_bodies_get_a_status_of_the_table(
    server: ServerThread, data: bytes, path: str
) -> None:
    assert status(server, path, data) in {400, 413}


@pytest.mark.parametrize("path", ENDPOINTS)
def test_oversized_and_deeply_nested_bodies(server: ServerThread, path: str) -> None:
    assert status(server, path, b'{"a": "' + b"x" * 2_100_000 + b'"}') == 413
    assert status(server, path, "[" * 100_000 + "]" * 100_000) == 400
    assert status(server, path, '{"a":' * 5000 + "1" + "}" * 5000) == 400


def test_the_server_answers_after_the_fuzzing(server: ServerThread) -> None:
    assert call(server.http_url + "/healthz", method="GET").status == 200
    answer = call(server.http_url + "/v1/judge", body=json_format.MessageToJson(judge_request()))
    assert answer.status == 200 and answer.json()["decision"] == "DECISION_PASS"
    metrics = call(server.http_url + "/metrics", method="GET").body.decode()
    assert 'status="500"' not in metrics
