"""Analyze without ``start`` over gRPC, against a real Prometheus: the start and the look index
come from the data (the canary's first sample within ``lookback``) and the elapsed time."""

from __future__ import annotations

import datetime
from collections.abc import Iterator

import pytest

from gatekeeper.api.v1 import gatekeeper_pb2 as pb
from gatekeeper.client import GatekeeperClient
from gatekeeper.errors import FailedPrecondition, InvalidArgument
from gatekeeper.server import app
from gatekeeper.server.app import ServerThread
from tests.integration.conftest import StartServer
from tests.integration.prom import PrometheusServer

SPEC = """provider: generic
service: {service}
namespace: ns-generic
interval: 30s
metrics:
  - {{name: error-rate, template: request-success-rate, critical: true}}
  - {{name: latency-p99, template: request-duration, critical: true}}
"""
STEP = 30.0


def timestamp(seconds: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC)


def stateless(service: str, *, end: float | None = None, lookback: int = 0) -> pb.AnalyzeRequest:
    request = pb.AnalyzeRequest(
        spec=SPEC.format(service=service),
        baseline_selector='track="baseline"',
        canary_selector='track="canary"',
    )
    if end is not None:
        request.end.FromDatetime(timestamp(end))
    if lookback:
        request.lookback.FromSeconds(lookback)
    return request


def explicit(service: str, *, start: float, end: float) -> pb.AnalyzeRequest:
    request = stateless(service, end=end)
    request.start.FromDatetime(timestamp(start))
    request.look.index = round((end - start) / STEP)
    return request


@pytest.fixture(scope="module")
def server(prometheus: PrometheusServer) -> Iterator[ServerThread]:
    running = ServerThread(app.ServerConfig(port=0, workers=0, prometheus_url=prometheus.url))
    yield running
    running.stop()


@pytest.mark.parametrize(
    ("service", "decision"),
    [
        ("healthy", pb.DECISION_PASS),
        ("errors", pb.DECISION_FAIL),
        ("quiet", pb.DECISION_INCONCLUSIVE),
    ],
)
def test_without_start_the_decision_matches_the_full_window(
    server: ServerThread, prometheus: PrometheusServer, service: str, decision: int
) -> None:
    with GatekeeperClient(server.target) as client:
        found = client.analyze(stateless(service))
        again = client.analyze(stateless(service))
        full = client.analyze(explicit(service, start=prometheus.start, end=prometheus.end))
    assert found.decision == decision == full.decision, found.summary
    assert found.SerializeToString(deterministic=True) == again.SerializeToString(
        deterministic=True
    )


def test_the_start_is_the_canarys_first_sample_and_the_look_the_elapsed_intervals(
    server: ServerThread, prometheus: PrometheusServer
) -> None:
    end = prometheus.end
    with GatekeeperClient(server.target) as client:
        found = client.analyze(stateless("errors", end=end))
        # The canary has data from the backfill's first intervals on: the start is one of them.
        candidates = [
            client.analyze(explicit("errors", start=prometheus.start + k * STEP, end=end))
            for k in range(4)
        ]
        # A lookback inside the data: the canary's first sample is the lookback's start.
        short = client.analyze(stateless("errors", end=end, lookback=600))
        window = client.analyze(explicit("errors", start=end - 600, end=end))
        later = client.analyze(explicit("errors", start=end - 570, end=end))
    encoded = [c.SerializeToString(deterministic=True) for c in candidates]
    assert found.SerializeToString(deterministic=True) in encoded
    assert short.SerializeToString(deterministic=True) == window.SerializeToString(
        deterministic=True
    )
    assert short.SerializeToString(deterministic=True) != later.SerializeToString(
        deterministic=True
    )


def test_no_canary_data_in_the_lookback_is_inconclusive_never_pass(
    server: ServerThread, prometheus: PrometheusServer
) -> None:
    request = stateless("healthy", end=prometheus.start - 600, lookback=3600)
    with GatekeeperClient(server.target) as client:
        verdict = client.analyze(request)
    assert verdict.decision == pb.DECISION_INCONCLUSIVE
    assert {m.outcome for m in verdict.metrics} <= {pb.OUTCOME_NO_DATA, pb.OUTCOME_LOW_TRAFFIC}


def test_without_a_prometheus_source_start_is_needed(start_server: StartServer) -> None:
    plain = start_server()
    with (
        GatekeeperClient(plain.target) as client,
        pytest.raises(FailedPrecondition, match="--prometheus"),
    ):
        client.analyze(stateless("healthy"))


def test_a_lookback_beyond_the_servers_window_limit_names_lookback(
    start_server: StartServer, prometheus: PrometheusServer
) -> None:
    limited = start_server(prometheus_url=prometheus.url, max_window_seconds=86_400.0)
    with (
        GatekeeperClient(limited.target) as client,
        pytest.raises(InvalidArgument) as caught,
    ):
        client.analyze(stateless("healthy", lookback=2 * 86_400))
    assert caught.value.violations[0].field == "lookback"
    assert "at most 24h" in caught.value.violations[0].description


def test_a_query_prometheus_rejects_names_metric_and_query_without_start_too(
    start_server: StartServer, prometheus: PrometheusServer
) -> None:
    server = start_server(prometheus_url=prometheus.url, allow_custom_queries=True)
    request = stateless("healthy")
    request.spec += (
        "  - name: broken\n    kind: VALUES\n"
        "    query: 'sum(rate(http_requests_total{ {{selector}} }[{{interval}}])'\n"
    )
    with GatekeeperClient(server.target) as client, pytest.raises(FailedPrecondition) as caught:
        client.analyze(request)
    assert "metric broken" in str(caught.value) and "sum(rate(http_requests_total" in str(
        caught.value
    )
