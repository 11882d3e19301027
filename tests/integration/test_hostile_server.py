"""The server against a hostile Prometheus and lost judge workers: it keeps its deadlines.

- a trickling source gives a verdict ERROR (status OK) before the caller's deadline;
- fan-out limits refuse a spec before any query is sent;
- SIGTERM during a trickling Analyze exits within the grace period plus 5 s;
- after kill -9 of every judge worker, health says NOT_SERVING until a replacement is
  ready, and large Judge calls work again while every thread of the event loop's default
  executor is blocked (recovery does not wait in that pool).
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gatekeeper.api.v1 import gatekeeper_pb2 as pb
from gatekeeper.api.v1 import gatekeeper_pb2_grpc as pb_grpc
from tests.integration.conftest import StartProcess, StartServer
from tests.integration.grpc_server import ServerThread, judge_request, wait_until
from tests.integration.scripted import Endpoint, Reply, Script, endpoint, matrix
from tests.integration.test_hostile_sources import WINDOW

SPEC = (
    "provider: generic\nservice: shop\ninterval: 30s\nmetrics:\n"
    "  - {name: errors, template: request-success-rate, critical: true}\n"
    "  - {name: latency, template: request-duration}\n"
)
TRICKLE = Reply(matrix(WINDOW, ({}, [1] * WINDOW.points)), trickle=2, every=0.2, trickle_seconds=60)
GRACE_SECONDS = 2.0
#: Large Judge calls must work again well within this after kill -9 of every worker
#: (today's main: more than 110 s while the thread pool was busy).
RECOVERY_BOUND_SECONDS = 30.0


def analyze_request(spec: str = SPEC) -> pb.AnalyzeRequest:
    return pb.AnalyzeRequest(
        spec=spec,
        baseline_selector='track="baseline"',
        canary_selector='track="canary"',
        start=Timestamp(seconds=int(WINDOW.start)),
        end=Timestamp(seconds=int(WINDOW.end)),
    )


@pytest.fixture
def trickling() -> Iterator[Endpoint]:
    with endpoint(lambda _query: TRICKLE) as prometheus:
        yield prometheus


def test_a_trickling_source_gives_error_within_the_callers_deadline(
    start_server: StartServer, trickling: Endpoint
) -> None:
    server = start_server(prometheus_url=trickling.url)
    with grpc.insecure_channel(server.target) as channel:
        analyze = pb_grpc.GatekeeperStub(channel).Analyze
        verdict = analyze(analyze_request(), timeout=3.0)  # raises DEADLINE_EXCEEDED if late
    assert verdict.decision == pb.DECISION_ERROR
    assert {m.name for m in verdict.metrics} == {"errors", "latency"}
    for metric in verdict.metrics:
        assert metric.outcome == pb.OUTCOME_ERROR
        assert f"Prometheus at {trickling.url} did not answer within" in metric.reason
    wait_until(lambda: trickling.active[0] == 0, timeout=5)  # nothing fetches on


def test_a_preflight_on_a_trickling_source_gives_error_within_the_deadline(
    start_server: StartServer, trickling: Endpoint
) -> None:
    server = start_server(prometheus_url=trickling.url)
    request = analyze_request()
    request.preflight = True
    request.ClearField("start")
    with grpc.insecure_channel(server.target) as channel:
        verdict = pb_grpc.GatekeeperStub(channel).Analyze(request, timeout=3.0)
    assert verdict.decision == pb.DECISION_ERROR
    assert all("did not answer within" in m.reason for m in verdict.metrics)
    wait_until(lambda: trickling.active[0] == 0, timeout=5)


@pytest.mark.parametrize(
    ("config", "limit"),
    [({"max_spec_metrics": 1}, "--max-spec-metrics"), ({"max_queries": 4}, "--max-queries")],
)
def test_fan_out_limits_are_invalid_argument_naming_the_limit(
    start_server: StartServer, trickling: Endpoint, config: dict[str, int], limit: str
) -> None:
    server = start_server(prometheus_url=trickling.url, **config)
    with grpc.insecure_channel(server.target) as channel:
        analyze = pb_grpc.GatekeeperStub(channel).Analyze
        with pytest.raises(grpc.RpcError) as caught:
            analyze(analyze_request(), timeout=10)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert limit in str(caught.value.details())
    assert trickling.seen == []  # refused before any query


def test_sigterm_during_a_trickling_analyze_exits_within_the_grace(
    serve_process: StartProcess, trickling: Endpoint
) -> None:
    server = serve_process(
        "--prometheus", trickling.url, "--grace-seconds", f"{GRACE_SECONDS:g}",
        "--prometheus-deadline", "300", "--prometheus-timeout", "300", "--workers", "1",
    )  # fmt: skip
    with grpc.insecure_channel(server.target) as channel:
        analyze = pb_grpc.GatekeeperStub(channel).Analyze
        calls = [analyze.future(analyze_request(), timeout=300) for _ in range(8)]
        wait_until(lambda: trickling.active[0] >= 8, timeout=30)
        server.process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        code = server.process.wait(timeout=GRACE_SECONDS + 5)
        exited = time.monotonic() - signalled
        for call in calls:
            with pytest.raises(grpc.RpcError):
                call.result(timeout=10)
    assert exited < GRACE_SECONDS + 5
    assert code == 0


@contextmanager
def default_executor_blocked(loop: asyncio.AbstractEventLoop) -> Iterator[threading.Event]:
    """Occupy every thread the server loop's ``to_thread`` calls share, until the block
    ends (the event tells whether they still block)."""
    release = threading.Event()

    def block() -> None:
        for _ in range(64):
            loop.run_in_executor(None, release.wait, 120.0)

    loop.call_soon_threadsafe(block)
    try:
        yield release
    finally:
        release.set()


def _watch(target: str, seen: list[int], stop: threading.Event) -> None:
    with grpc.insecure_channel(target) as channel:
        stream = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest())
        for answer in stream:
            seen.append(answer.status)
            if stop.is_set():
                stream.cancel()
                return


def test_judge_workers_recover_without_the_thread_pool_and_health_follows(
    start_server: StartServer,
) -> None:
    server = start_server(workers=2, inline_max_points=100)
    with default_executor_blocked(server.loop) as released:
        seen = _recover(server)
        assert not released.is_set()  # recovered while every executor thread was blocked
    down = seen.index(health_pb2.HealthCheckResponse.NOT_SERVING)
    assert health_pb2.HealthCheckResponse.SERVING in seen[down:]


def _recover(server: ServerThread) -> list[int]:
    """Kill -9 every judge worker; return the health statuses seen until all are back."""
    seen: list[int] = []
    stop = threading.Event()
    watcher = threading.Thread(target=_watch, args=(server.target, seen, stop), daemon=True)
    watcher.start()
    wait_until(lambda: health_pb2.HealthCheckResponse.SERVING in seen, timeout=10)
    before = server.running.judging.worker_pids()
    killed = time.monotonic()
    for pid in before:
        os.kill(pid, signal.SIGKILL)
    large = judge_request(points=2_000)  # beyond inline_max_points: pool only
    with grpc.insecure_channel(server.target) as channel:
        judge = pb_grpc.GatekeeperStub(channel).Judge
        while True:
            try:
                verdict = judge(large, timeout=10)
                break
            except grpc.RpcError as error:
                assert error.code() is grpc.StatusCode.UNAVAILABLE
                assert time.monotonic() - killed < RECOVERY_BOUND_SECONDS
                time.sleep(0.05)
    assert verdict.decision != pb.DECISION_UNSPECIFIED
    wait_until(lambda: len(server.running.judging.worker_pids()) == 2, timeout=20)
    assert not set(server.running.judging.worker_pids()) & set(before)
    wait_until(lambda: seen[-1] == health_pb2.HealthCheckResponse.SERVING, timeout=10)
    stop.set()
    return seen


def _canary_bad(reply: Reply) -> Script:
    """Healthy answers, but ``reply`` for the canary's bad-event query."""

    def script(query: str) -> Reply:
        if 'track="canary"' in query and 'code=~"5.."' in query:
            return reply
        return Reply(matrix(WINDOW, ({}, [20 if "5.." in query else 10_000] * WINDOW.points)))

    return script


EMPTY = b'{"status": "success", "data": {"resultType": "matrix", "result": []}}'
FAULTS = {
    "trickle": TRICKLE,
    "20 MB answer": Reply(EMPTY + b" " * 20_000_000),
    "gzip to 64 MB": Reply(EMPTY + b" " * 64_000_000, gzip=True),
    "data a list": Reply({"status": "success", "data": []}),
    "string timestamp": Reply(
        {"status": "success", "data": {"result": [{"values": [["1700000030", "1"]]}]}}
    ),
    "NaN counts": Reply(matrix(WINDOW, ({}, ["NaN"] * WINDOW.points))),
    "503 throughout": Reply(b"overloaded", status=503),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_every_source_fault_is_a_verdict_error_within_the_callers_deadline(
    start_server: StartServer, fault: str
) -> None:
    spec = SPEC.split("  - {name: latency", maxsplit=1)[0]  # the RATIO metric alone
    with endpoint(_canary_bad(FAULTS[fault])) as prometheus:
        server = start_server(prometheus_url=prometheus.url)
        with grpc.insecure_channel(server.target) as channel:
            verdict = pb_grpc.GatekeeperStub(channel).Analyze(analyze_request(spec), timeout=5.0)
    assert verdict.decision == pb.DECISION_ERROR, verdict.summary
    (metric,) = verdict.metrics
    assert metric.outcome == pb.OUTCOME_ERROR
    assert "canary" in metric.reason
