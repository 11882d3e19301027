"""The server as a process: graceful shutdown, health under load, and ``gatekeeper judge --server``."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gatekeeper.api.v1 import gatekeeper_pb2_grpc as pb_grpc
from tests.integration.conftest import StartProcess
from tests.integration.grpc_server import ROOT, ServerThread, judge_request, local_verdict
from tests.process import gatekeeper

EXAMPLES = ROOT / "examples"
HEALTH_LATENCY_LIMIT = 0.100  # the acceptance point: seconds


def started(method: str) -> Callable[[str], bool]:
    return lambda line: f'"call {method} started"' in line


def test_sigterm_finishes_calls_in_flight_and_refuses_new_ones(
    serve_process: StartProcess,
) -> None:
    server = serve_process(
        "--workers", "2", "--log-format", "json", "--log-level", "debug", "--grace-seconds", "120"
    )
    requests = [judge_request(points=15_000, seed=i, shift=0.3 * (i % 2)) for i in range(4)]
    requests += [judge_request(seed=10 + i) for i in range(4)]  # small: judged inline
    with grpc.insecure_channel(server.target) as channel:
        judge = pb_grpc.GatekeeperStub(channel).Judge
        in_flight = [judge.future(r, timeout=300) for r in requests]
        for _ in requests:  # every call accepted before the signal
            server.wait_for_log(started("Judge"))
        server.process.send_signal(signal.SIGTERM)
        server.wait_for_log(lambda line: "shutting down" in line)
        with pytest.raises(grpc.RpcError) as refused:
            judge(judge_request(), timeout=10)
        assert refused.value.code() is grpc.StatusCode.UNAVAILABLE
        verdicts = [f.result() for f in in_flight]
    assert [v.SerializeToString(deterministic=True) for v in verdicts] == [
        local_verdict(r) for r in requests
    ]
    assert server.process.wait(timeout=120) == 0
    server.wait_for_log(lambda line: '"stopped"' in line)


def test_health_is_answered_within_100_ms_while_both_cores_judge(
    serve_process: StartProcess,
) -> None:
    server = serve_process("--workers", "2", "--log-format", "json", "--log-level", "debug")
    large = [judge_request(points=20_000, seed=i) for i in range(8)]
    latencies: list[float] = []
    with (
        grpc.insecure_channel(server.target) as judging,
        grpc.insecure_channel(server.target) as checking,
    ):
        health = health_pb2_grpc.HealthStub(checking)
        health.Check(health_pb2.HealthCheckRequest(), timeout=10)  # connected
        judge = pb_grpc.GatekeeperStub(judging).Judge
        pending = [judge.future(r, timeout=300) for r in large]
        for _ in large:  # every large call is in the pool: both workers busy, six queued
            server.wait_for_log(started("Judge"))
        while not all(f.done() for f in pending):
            start = time.perf_counter()
            answer = health.Check(health_pb2.HealthCheckRequest(), timeout=10)
            latencies.append(time.perf_counter() - start)
            assert answer.status == health_pb2.HealthCheckResponse.SERVING
        assert all(f.result().decision for f in pending)
    print(f"health checks under load: n={len(latencies)} max={max(latencies) * 1e3:.1f} ms")
    assert len(latencies) >= 20
    assert max(latencies) < HEALTH_LATENCY_LIMIT, sorted(latencies)[-5:]


@pytest.mark.parametrize(
    ("example", "code"),
    [("healthy", 0), ("error-regression", 1), ("quiet-canary", 2)],
)
def test_cli_judges_on_the_server_with_the_same_exit_codes(
    grpc_server: ServerThread, example: str, code: int
) -> None:
    path = EXAMPLES / f"{example}.json"
    remote = gatekeeper("judge", "--server", grpc_server.target, str(path), "--output", "json")
    local = gatekeeper("judge", str(path), "--output", "json")
    assert remote.returncode == code, remote.stderr
    assert json.loads(remote.stdout) == json.loads(local.stdout)


def test_cli_bad_input_on_the_server_exits_4_naming_the_fields(grpc_server: ServerThread) -> None:
    path = EXAMPLES / "invalid" / "bad-input.json"
    done = gatekeeper("judge", "--server", grpc_server.target, str(path))
    assert done.returncode == 4
    assert "metrics[0]" in done.stderr and "Traceback" not in done.stderr


def test_cli_unreachable_server_exits_3() -> None:
    path = EXAMPLES / "healthy.json"
    done = gatekeeper("judge", "--server", "127.0.0.1:1", "--timeout", "2", str(path))
    assert done.returncode == 3
    assert "Traceback" not in done.stderr


def test_cli_with_tls_and_token(serve_process: StartProcess, pki: object, tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("t0ken\n")
    certs = pki  # Pki
    server = serve_process(
        "--tls-cert",
        str(certs.server_cert),  # type: ignore[attr-defined]
        "--tls-key",
        str(certs.server_key),  # type: ignore[attr-defined]
        "--auth-token-file",
        str(token),
    )
    path = str(EXAMPLES / "healthy.json")
    ca = str(certs.ca)  # type: ignore[attr-defined]
    ok = gatekeeper(
        "judge", "--server", server.target, "--tls-ca", ca, "--auth-token-file", str(token), path
    )
    assert ok.returncode == 0, ok.stderr
    no_token = gatekeeper("judge", "--server", server.target, "--tls-ca", ca, path)
    assert no_token.returncode == 4
    assert "UNAUTHENTICATED" in no_token.stderr
