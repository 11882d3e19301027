"""Hostile requests against a real server (issue 19, items 1, 3 and 6).

A request of few points but many metrics must not starve the event loop (health checks
answered while it is judged), must be refused beyond ``--max-metrics``, and must not hold
up a shutdown past its grace; bad histograms, huge values and deeply nested specs are
INVALID_ARGUMENT naming the field, never INTERNAL. Latencies are measured in
``benchmarks/hostile_load.py``, not asserted here.
"""

from __future__ import annotations

import datetime
import logging
import math
import signal
import time

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status

from gatekeeper.api.v1 import gatekeeper_pb2 as pb
from gatekeeper.api.v1 import gatekeeper_pb2_grpc as pb_grpc
from gatekeeper.limits import DEFAULT_MAX_METRICS
from tests.integration.conftest import StartProcess, StartServer
from tests.integration.grpc_server import wait_until
from tests.integration.prom import PrometheusServer


def many_metrics(count: int) -> pb.JudgeRequest:
    """The issue's request: RATIO metrics of one interval, Look 1/20, EITHER, absolute 0.01."""
    request = pb.JudgeRequest(look=pb.Look(index=1, planned=20))
    for index in range(count):
        metric = request.metrics.add()
        metric.config.name = f"errors-{index}"
        metric.config.kind = pb.METRIC_KIND_RATIO
        metric.config.direction = pb.DIRECTION_EITHER
        metric.config.absolute_tolerance = 0.01
        metric.baseline.counts.add(bad=1, total=100)
        metric.canary.counts.add(bad=1, total=100)
    return request


def violations(error: grpc.RpcError) -> dict[str, str]:
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None
    found: dict[str, str] = {}
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            found.update({v.field: v.description for v in bad.field_violations})
    return found


def refused(call: object) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call()  # type: ignore[operator]
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    return caught.value


def test_more_metrics_than_max_metrics_is_invalid_argument_naming_the_limit(
    start_server: StartServer,
) -> None:
    server = start_server(workers=1)
    with grpc.insecure_channel(server.target) as channel:
        stub = pb_grpc.GatekeeperStub(channel)
        error = refused(lambda: stub.Judge(many_metrics(10_000), timeout=60))
        found = violations(error)
        assert f"at most {DEFAULT_MAX_METRICS} metrics" in found["metrics"]
        assert "--max-metrics" in found["metrics"]
        assert stub.Judge(many_metrics(3), timeout=60).decision  # still serving


def test_hundreds_of_thousands_of_data_less_metrics_are_refused_not_judged(
    start_server: StartServer,
) -> None:
    """The issue's 15.5 MB of data-less metrics (here 200,000): no points, so points alone
    judged them inline for minutes, with a response of hundreds of megabytes."""
    request = pb.JudgeRequest()
    for index in range(200_000):
        metric = request.metrics.add()
        metric.config.name = f"m{index}"
        metric.config.kind = pb.METRIC_KIND_RATIO
    server = start_server(workers=1)
    with grpc.insecure_channel(server.target) as channel:
        stub = pb_grpc.GatekeeperStub(channel)
        error = refused(lambda: stub.Judge(request, timeout=120))
        assert "got 200000" in violations(error)["metrics"]
        assert len(error.details() or "") < 10_000  # the answer is small
        assert stub.Judge(many_metrics(3), timeout=60).decision


@pytest.mark.parametrize("workers", [1, 0])
def test_health_is_answered_while_the_ten_thousand_metric_request_is_judged(
    start_server: StartServer, workers: int
) -> None:
    """Few points, a long judgement: it goes to a worker (or, without workers, a thread),
    and the event loop stays free."""
    server = start_server(workers=workers, max_metrics=10_000)
    with grpc.insecure_channel(server.target) as channel:
        big = pb_grpc.GatekeeperStub(channel).Judge.future(many_metrics(10_000), timeout=600)
        wait_until(lambda: server.running.drain.active == 1, timeout=120)
        if workers:
            wait_until(lambda: server.running.judging.busy_workers() == 1, timeout=120)
        health = health_pb2_grpc.HealthStub(channel)
        for _ in range(20):
            answer = health.Check(health_pb2.HealthCheckRequest(), timeout=10)
            assert answer.status == health_pb2.HealthCheckResponse.SERVING
        assert not big.done()  # every check was answered during the judgement
        big.cancel()  # type: ignore[no-untyped-call]  # grpc.Future is untyped


@pytest.mark.parametrize("workers", ["1", "0"])
def test_sigterm_during_an_expensive_judgement_exits_within_the_grace(
    serve_process: StartProcess, workers: str
) -> None:
    grace = 2.0
    server = serve_process("--workers", workers, "--max-metrics", "10000", "--grace-seconds", "2")
    with grpc.insecure_channel(server.target) as channel:
        big = pb_grpc.GatekeeperStub(channel).Judge.future(many_metrics(10_000), timeout=600)
        health = health_pb2_grpc.HealthStub(channel)
        assert health.Check(health_pb2.HealthCheckRequest(), timeout=10).status
        time.sleep(1.0)  # the call is in flight (it takes tens of seconds)
        assert not big.done()
        server.process.send_signal(signal.SIGTERM)
        server.process.wait(timeout=grace + 5.0)  # the acceptance bound: grace plus 5 s
        with pytest.raises(grpc.RpcError):
            big.result(timeout=30)


BOUNDS = [0.1, 0.5, 1.0, math.inf]


def histogram_request(canary: list[float]) -> pb.JudgeRequest:
    cumulative = pb.Histogram(upper_bounds=BOUNDS, counts=[5000, 8000, 9500, 10000])
    return pb.JudgeRequest(
        metrics=[
            pb.Metric(
                config=pb.MetricConfig(name="latency", kind=pb.METRIC_KIND_HISTOGRAM),
                baseline=pb.Series(histograms=[cumulative] * 2),
                canary=pb.Series(
                    histograms=[cumulative, pb.Histogram(upper_bounds=BOUNDS, counts=canary)]
                ),
            )
        ]
    )


@pytest.mark.parametrize(
    ("counts", "bucket"),
    [([5000, 3000, 1500, 500], 1), ([10, 20, 30, 25], 3)],  # per-bucket; a falling +Inf
)
def test_non_cumulative_histograms_are_invalid_argument_over_the_wire(
    start_server: StartServer, counts: list[float], bucket: int
) -> None:
    server = start_server(workers=1)
    with grpc.insecure_channel(server.target) as channel:
        stub = pb_grpc.GatekeeperStub(channel)
        found = violations(refused(lambda: stub.Judge(histogram_request(counts), timeout=60)))
    description = found[f"metrics[0].canary.histograms[1].counts[{bucket}]"]
    assert "cumulative" in description and "interval 1" in description


def test_values_of_1e308_against_minus_1e308_are_invalid_argument(
    start_server: StartServer,
) -> None:
    request = pb.JudgeRequest(
        metrics=[
            pb.Metric(
                config=pb.MetricConfig(name="cpu", kind=pb.METRIC_KIND_VALUES),
                baseline=pb.Series(values=[1e308] * 20),
                canary=pb.Series(values=[-1e308] * 20),
            )
        ]
    )
    server = start_server(workers=1)
    with grpc.insecure_channel(server.target) as channel:
        stub = pb_grpc.GatekeeperStub(channel)
        found = violations(refused(lambda: stub.Judge(request, timeout=60)))
    assert "metrics[0].baseline.values[0]" in found


def test_an_inline_spec_nested_50000_deep_is_invalid_argument(
    prometheus: PrometheusServer, start_server: StartServer
) -> None:
    server = start_server(workers=1, prometheus_url=prometheus.url)
    request = pb.AnalyzeRequest(
        spec="metrics: " + "[" * 50_000 + "]" * 50_000,
        baseline_selector='track="baseline"',
        canary_selector='track="canary"',
    )
    request.start.FromDatetime(datetime.datetime.fromtimestamp(prometheus.start, datetime.UTC))
    request.end.FromDatetime(datetime.datetime.fromtimestamp(prometheus.end, datetime.UTC))
    with grpc.insecure_channel(server.target) as channel:
        stub = pb_grpc.GatekeeperStub(channel)
        found = violations(refused(lambda: stub.Analyze(request, timeout=60)))
    assert "nested too deeply" in found["spec"]


def test_a_verdict_of_many_metrics_has_a_bounded_summary_logged_once(
    start_server: StartServer, caplog: pytest.LogCaptureFixture
) -> None:
    request = pb.JudgeRequest()
    for index in range(DEFAULT_MAX_METRICS):
        metric = request.metrics.add()
        metric.config.name = f"quiet-{index:04d}-" + "x" * 180
        metric.config.kind = pb.METRIC_KIND_RATIO
    server = start_server(workers=1)
    with caplog.at_level(logging.INFO, logger="gatekeeper.server"):
        with grpc.insecure_channel(server.target) as channel:
            verdict = pb_grpc.GatekeeperStub(channel).Judge(request, timeout=120)
        wait_until(lambda: any("verdict" in r.getMessage() for r in caplog.records))
    assert verdict.decision == pb.DECISION_INCONCLUSIVE
    assert len(verdict.summary) < 2_000
    assert f"and {DEFAULT_MAX_METRICS - 5} more" in verdict.summary
    assert verdict.ByteSize() < DEFAULT_MAX_METRICS * 1_000  # names bounded: ~0.5 kB a metric
    (record,) = [r for r in caplog.records if r.getMessage().startswith("verdict ")]
    assert record.summary == verdict.summary  # type: ignore[attr-defined]
    assert verdict.summary not in record.getMessage()  # a field, not the message again
