"""The HTTP adapters' server: same engine, auth, TLS, limits, logs and counters as gRPC."""

from __future__ import annotations

import json
import re
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
import yaml
from google.protobuf import json_format

from gatekeeper.api.v1 import gatekeeper_pb2 as pb
from gatekeeper.api.v1 import gatekeeper_pb2_grpc as pb_grpc
from gatekeeper.server import app
from gatekeeper.server.app import ServerThread
from tests.integration.conftest import StartProcess, StartServer
from tests.integration.grpc_server import ROOT, Pki, judge_request, local_verdict, wait_until
from tests.integration.http_client import call, post_message, violations


class Recorder:
    """A VerdictObserver that keeps what it is told."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, object, pb.Verdict]] = []
        self.lock = threading.Lock()

    def __call__(self, *, method: str, request: object, verdict: pb.Verdict) -> None:
        with self.lock:
            self.seen.append((method, request, verdict))


@pytest.fixture(scope="module")
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture(scope="module")
def server(recorder: Recorder) -> Iterator[ServerThread]:
    running = ServerThread(
        app.ServerConfig(port=0, workers=1, http_port=0, max_message_bytes=1_000_000),
        observer=recorder,
    )
    yield running
    running.stop()


def test_judge_over_http_is_the_grpc_verdict(server: ServerThread) -> None:
    for request in (judge_request(metrics=3), judge_request(kind="ratio", metrics=2, shift=2.0)):
        answer = post_message(f"{server.http_url}/v1/judge", request)
        assert answer.status == 200
        verdict = json_format.Parse(answer.body, pb.Verdict())
        assert verdict.SerializeToString(deterministic=True) == local_verdict(request)
    assert answer.json()["decision"] == "DECISION_FAIL"


def test_bad_input_is_400_with_field_paths_and_allowed_values(server: ServerThread) -> None:
    bad = '{"metrics": [{"config": {"name": "e", "kind": "METRIC_KIND_RATIO"}, "canary": {"counts": [{"bad": 5, "total": 1}]}}]}'
    answer = call(f"{server.http_url}/v1/judge", body=bad)
    assert answer.status == 400
    assert "bad <= total" in violations(answer)["metrics[0].canary.counts[0]"]
    assert answer.json()["error"]["status"] == "INVALID_ARGUMENT"
    enum = call(f"{server.http_url}/v1/judge", body='{"mode": "JUDGE_MODE_NOPE"}')
    assert enum.status == 400 and "JUDGE_MODE_NOPE" in violations(enum)["request"]
    for body in ("{", "[]", '{"unknown": 1}', "\xff", ""):
        answer = call(f"{server.http_url}/v1/judge", body=body)
        assert answer.status == 400, body
        assert "request" in violations(answer)


def test_an_oversized_body_is_413_naming_the_limit(server: ServerThread) -> None:
    request = judge_request(metrics=1, points=60_000)
    answer = post_message(f"{server.http_url}/v1/judge", request)
    assert answer.status == 413
    assert "1000000 bytes" in answer.json()["error"]["message"]
    assert post_message(f"{server.http_url}/v1/judge", judge_request()).status == 200


def test_health_readiness_metrics_and_request_ids(server: ServerThread) -> None:
    assert call(f"{server.http_url}/healthz", method="GET").json() == {"status": "SERVING"}
    assert call(f"{server.http_url}/readyz", method="GET").status == 200
    answer = post_message(
        f"{server.http_url}/v1/judge", judge_request(), headers={"X-Request-Id": "trace-42"}
    )
    assert answer.headers["X-Request-Id"] == "trace-42"
    assert call(f"{server.http_url}/nope", method="GET").status == 404
    text = call(f"{server.http_url}/metrics", method="GET").body.decode()
    assert 'gatekeeper_http_requests_total{route="/v1/judge",status="200"}' in text
    assert 'gatekeeper_http_requests_total{route="unmatched",status="404"}' in text
    metrics = server.running.metrics
    assert metrics.sample("gatekeeper_verdicts_total", {"decision": "PASS"}) >= 1


def test_the_observer_sees_grpc_and_http_verdicts(server: ServerThread, recorder: Recorder) -> None:
    request = judge_request(metrics=1, seed=7)
    before = len(recorder.seen)
    with grpc.insecure_channel(server.target) as channel:
        pb_grpc.GatekeeperStub(channel).Judge(request, timeout=60)
    post_message(f"{server.http_url}/v1/judge", request)
    seen = recorder.seen[before:]
    assert [m for m, _, _ in seen] == ["Judge", "Judge"]
    assert all(r == request for _, r, _ in seen)
    assert seen[0][2] == seen[1][2]


def test_token_auth_is_shared_with_grpc(start_server: StartServer, tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    server = start_server(http_port=0, auth_token_file=token)
    url = f"{server.http_url}/v1/judge"
    refused = post_message(url, judge_request())
    assert refused.status == 401 and refused.headers["WWW-Authenticate"] == "Bearer"
    assert (
        post_message(url, judge_request(), headers={"Authorization": "Bearer nope"}).status == 401
    )
    good = post_message(url, judge_request(), headers={"Authorization": "Bearer s3cret"})
    assert good.status == 200
    assert call(f"{server.http_url}/healthz", method="GET").status == 200


def test_tls_is_shared_with_grpc(start_server: StartServer, pki: Pki) -> None:
    server = start_server(http_port=0, tls_cert=pki.server_cert, tls_key=pki.server_key)
    url = server.http_url.replace("http://", "https://") + "/v1/judge"
    trusted = ssl.create_default_context(cafile=str(pki.ca))
    assert post_message(url, judge_request(), context=trusted).status == 200
    with pytest.raises(Exception, match="CERTIFICATE_VERIFY_FAILED"):
        post_message(url, judge_request(), context=ssl.create_default_context())


def test_mutual_tls_needs_a_client_certificate(start_server: StartServer, pki: Pki) -> None:
    server = start_server(
        http_port=0, tls_cert=pki.server_cert, tls_key=pki.server_key, tls_client_ca=pki.ca
    )
    url = server.http_url.replace("http://", "https://") + "/v1/judge"
    client = ssl.create_default_context(cafile=str(pki.ca))
    client.load_cert_chain(pki.client_cert, pki.client_key)
    assert post_message(url, judge_request(), context=client).status == 200
    anonymous = ssl.create_default_context(cafile=str(pki.ca))
    with pytest.raises(Exception):  # noqa: B017 (the handshake fails in one of several ways)
        post_message(url, judge_request(), context=anonymous)


def test_while_draining_ready_is_503_and_calls_are_refused(start_server: StartServer) -> None:
    server = start_server(http_port=0)
    server.running.drain.draining = True
    assert call(f"{server.http_url}/readyz", method="GET").status == 503
    refused = post_message(f"{server.http_url}/v1/judge", judge_request())
    assert refused.status == 503 and "shutting down" in refused.json()["error"]["message"]
    assert call(f"{server.http_url}/healthz", method="GET").status == 200


def test_serve_http_port_logs_verdicts_with_the_callers_request_id(
    serve_process: StartProcess,
) -> None:
    served = serve_process("--http-port", "0", "--workers", "0", "--log-format", "json")
    assert served.process.stdout is not None
    line = served.process.stdout.readline()
    match = re.search(r"http adapters on (http://[\d.]+:\d+)", line)
    assert match, line
    answer = post_message(
        f"{match[1]}/v1/judge", judge_request(shift=2.0), headers={"X-Request-Id": "argo-7"}
    )
    assert answer.status == 200 and answer.json()["decision"] == "DECISION_FAIL"
    logged = json.loads(served.wait_for_log(lambda text: '"decision"' in text))
    assert logged["request_id"] == "argo-7" and logged["decision"] == "FAIL"


def test_the_manifests_serve_the_adapters_on_8080() -> None:
    manifests = ROOT / "controller" / "manifests" / "gatekeeper.yaml"
    documents = {d["kind"]: d for d in yaml.safe_load_all(manifests.read_text()) if d}
    container = documents["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert "--http-port=8080" in container["args"]
    assert {"name": "http", "containerPort": 8080} in container["ports"]
    ports = {p["name"]: p for p in documents["Service"]["spec"]["ports"]}
    assert ports["http"]["port"] == 8080 and ports["http"]["targetPort"] == "http"


def test_a_request_in_flight_at_shutdown_is_answered(start_server: StartServer) -> None:
    server = start_server(http_port=0, workers=0)
    big = judge_request(metrics=10, points=10_000)  # judged inline, a while
    answers: list[int] = []
    caller = threading.Thread(
        target=lambda: answers.append(post_message(f"{server.http_url}/v1/judge", big).status)
    )
    caller.start()
    wait_until(
        lambda: (
            server.running.metrics.sample("gatekeeper_judgements_total", {"where": "inline"}) >= 1
            or bool(answers)
        )
    )
    server.stop(grace=30)
    caller.join(60)
    assert answers == [200]
