"""Judge over gRPC: the same verdicts as in-process, health, reflection, metrics, logs, load."""

from __future__ import annotations

import asyncio
import logging
import urllib.request
from typing import cast

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from gatekeeper.api.v1 import gatekeeper_pb2 as pb
from gatekeeper.api.v1 import gatekeeper_pb2_grpc as pb_grpc
from gatekeeper.client import AsyncGatekeeperClient, GatekeeperClient
from tests.integration.grpc_server import (
    ServerThread,
    judge_request,
    local_verdict,
    wait_until,
)


@pytest.mark.parametrize("kind", ["values", "ratio"])
@pytest.mark.parametrize(("points", "shift"), [(60, 0.0), (60, 0.5), (5_000, 0.0)])
def test_judge_round_trip_matches_the_in_process_verdict(
    stub: pb_grpc.GatekeeperStub, kind: str, points: int, shift: float
) -> None:
    # 5,000 points x 10 metrics x 2 sides is past the inline limit: judged in the pool.
    request = judge_request(kind=kind, points=points, shift=shift, seed=points)
    verdict = stub.Judge(request, timeout=60)
    assert verdict.SerializeToString(deterministic=True) == local_verdict(request)
    assert verdict.decision != pb.DECISION_UNSPECIFIED


def test_regression_fails_over_the_wire(grpc_server: ServerThread) -> None:
    with GatekeeperClient(grpc_server.target) as client:
        verdict = client.judge(judge_request(kind="ratio", shift=1.0))
    assert verdict.decision == pb.DECISION_FAIL
    assert "HIGH" in pb.Outcome.Name(verdict.metrics[0].outcome)


def test_health_serves_overall_and_per_service(grpc_server: ServerThread) -> None:
    with grpc.insecure_channel(grpc_server.target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", "gatekeeper.api.v1.Gatekeeper"):
            answer = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            assert answer.status == health_pb2.HealthCheckResponse.SERVING


def test_reflection_lists_the_gatekeeper_and_health_services(grpc_server: ServerThread) -> None:
    with grpc.insecure_channel(grpc_server.target) as channel:
        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        (answer,) = list(reflection.ServerReflectionInfo(iter([request]), timeout=5))
    names = {s.name for s in answer.list_services_response.service}
    assert {"gatekeeper.api.v1.Gatekeeper", "grpc.health.v1.Health"} <= names


def test_analyze_without_a_metric_source_says_how_to_configure_one(
    stub: pb_grpc.GatekeeperStub,
) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        stub.Analyze(pb.AnalyzeRequest(spec_name="checkout"), timeout=5)
    assert caught.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert "--prometheus" in cast(str, caught.value.details())


def test_metrics_endpoint_counts_calls_verdicts_and_judge_time(
    grpc_server: ServerThread, stub: pb_grpc.GatekeeperStub
) -> None:
    stub.Judge(judge_request(seed=7), timeout=30)
    with pytest.raises(grpc.RpcError):
        stub.Judge(pb.JudgeRequest(), timeout=30)
    url = f"http://127.0.0.1:{grpc_server.running.metrics_port}/metrics"
    expected = [
        'gatekeeper_grpc_calls_total{code="OK",method="Judge"}',
        'gatekeeper_grpc_calls_total{code="INVALID_ARGUMENT",method="Judge"}',
        'gatekeeper_grpc_call_seconds_bucket{le="0.1",method="Judge"}',
        "gatekeeper_verdicts_total{decision=",
        "gatekeeper_judge_seconds_count",
        "gatekeeper_judgements_total{where=",
    ]

    def scraped() -> str:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return str(answer.read().decode())

    # An aborted call's status reaches the client before the server has counted it.
    wait_until(lambda: all(line in scraped() for line in expected), timeout=10)


def test_every_verdict_is_logged_with_decision_summary_and_request_id(
    stub: pb_grpc.GatekeeperStub, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gatekeeper.server")
    verdict = stub.Judge(judge_request(seed=3), timeout=30, metadata=(("x-request-id", "r-42"),))
    (record,) = [r for r in caplog.records if getattr(r, "decision", None)]
    assert record.levelno == logging.INFO
    assert record.decision == pb.Decision.Name(verdict.decision).removeprefix("DECISION_")  # type: ignore[attr-defined]
    assert record.summary == verdict.summary  # type: ignore[attr-defined]
    assert record.request_id == "r-42"  # type: ignore[attr-defined]


def test_200_concurrent_calls_are_all_answered_correctly(grpc_server: ServerThread) -> None:
    requests = [
        judge_request(kind=("values", "ratio")[i % 2], seed=i, shift=(0.0, 1.0)[i % 3 == 0])
        for i in range(200)
    ]
    expected = [local_verdict(r) for r in requests]

    async def call_all() -> list[pb.Verdict]:
        async with AsyncGatekeeperClient(grpc_server.target, timeout=120) as client:
            return await asyncio.gather(*(client.judge(r) for r in requests))

    verdicts = asyncio.run(call_all())
    assert [v.SerializeToString(deterministic=True) for v in verdicts] == expected
    assert {v.decision for v in verdicts} >= {pb.DECISION_PASS, pb.DECISION_FAIL}
