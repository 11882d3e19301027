"""The Analyze RPC and `gatekeeper analyze`, against a real Prometheus and a real server."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import grpc
import pytest

from gatekeeper.api.v1 import gatekeeper_pb2 as pb
from gatekeeper.client import GatekeeperClient, RetryPolicy
from gatekeeper.errors import FailedPrecondition, InvalidArgument
from gatekeeper.sources.prometheus import PrometheusOptions
from tests.integration.conftest import StartServer
from tests.integration.prom import PrometheusServer
from tests.process import gatekeeper

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = """provider: generic
service: {service}
namespace: ns-generic
interval: 30s
metrics:
  - {{name: error-rate, template: request-success-rate, critical: true}}
  - {{name: latency-p99, template: request-duration, critical: true}}
"""
BROKEN = (
    "  - name: broken\n    kind: VALUES\n"
    "    query: 'sum(rate(http_requests_total{ {{selector}} }[{{interval}}])'\n"
)


def request(prometheus: PrometheusServer, **fields: object) -> pb.AnalyzeRequest:
    message = pb.AnalyzeRequest(
        baseline_selector='track="baseline"',
        canary_selector='track="canary"',
        **fields,  # type: ignore[arg-type]
    )
    message.start.FromDatetime(datetime.datetime.fromtimestamp(prometheus.start, datetime.UTC))
    message.end.FromDatetime(datetime.datetime.fromtimestamp(prometheus.end, datetime.UTC))
    return message


@pytest.fixture
def spec_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "specs"
    folder.mkdir()
    (folder / "checkout.yaml").write_text(TEMPLATES.format(service="healthy"))
    (folder / "broken.yaml").write_text(TEMPLATES.format(service="healthy") + BROKEN)
    return folder


def test_named_and_inline_specs_are_judged_with_their_queries(
    prometheus: PrometheusServer, start_server: StartServer, spec_dir: Path
) -> None:
    server = start_server(prometheus_url=prometheus.url, spec_dir=spec_dir)
    with GatekeeperClient(server.target) as client:
        named = client.analyze(request(prometheus, spec_name="checkout"))
        inline = client.analyze(request(prometheus, spec=TEMPLATES.format(service="errors")))
    assert named.decision == pb.DECISION_PASS
    assert inline.decision == pb.DECISION_FAIL
    assert any('track="canary"' in q for q in named.metrics[0].queries)


def test_inline_custom_queries_need_the_server_to_allow_them(
    prometheus: PrometheusServer, start_server: StartServer
) -> None:
    spec = TEMPLATES.format(service="healthy") + (
        "  - name: rate\n    kind: VALUES\n"
        "    query: 'sum(rate(http_requests_total{ {{selector}} }[{{interval}}]))'\n"
    )
    strict = start_server(prometheus_url=prometheus.url)
    with (
        GatekeeperClient(strict.target) as client,
        pytest.raises(FailedPrecondition, match="built-in templates only"),
    ):
        client.analyze(request(prometheus, spec=spec))
    lenient = start_server(prometheus_url=prometheus.url, allow_custom_queries=True)
    with GatekeeperClient(lenient.target) as client:
        assert client.analyze(request(prometheus, spec=spec)).decision == pb.DECISION_PASS


def test_bad_requests_name_the_field(
    prometheus: PrometheusServer, start_server: StartServer, spec_dir: Path
) -> None:
    server = start_server(prometheus_url=prometheus.url, spec_dir=spec_dir, max_points=20)
    with GatekeeperClient(server.target) as client:
        with pytest.raises(InvalidArgument) as unknown:
            client.analyze(request(prometheus, spec_name="nope"))
        assert unknown.value.violations[0].field == "spec_name"
        unknown_text = unknown.value.violations[0].description
        assert "allowed are the names of the specs in the server's --spec-dir" in unknown_text
        assert "checkout" not in unknown_text  # served specs are not listed to any caller
        with pytest.raises(InvalidArgument) as too_long:
            client.analyze(request(prometheus, spec_name="checkout"))
        assert too_long.value.violations[0].field == "interval"
        assert "at most 20" in too_long.value.violations[0].description
        no_end = request(prometheus, spec_name="checkout")
        no_end.ClearField("end")
        with pytest.raises(InvalidArgument) as no_window:
            client.analyze(no_end)
        assert {v.field for v in no_window.value.violations} == {"end"}
        stateless = request(prometheus, spec_name="checkout")
        stateless.ClearField("start")
        stateless.lookback.FromSeconds(-60)
        with pytest.raises(InvalidArgument) as bad_lookback:
            client.analyze(stateless)
        assert bad_lookback.value.violations[0].field == "lookback"
        with pytest.raises(InvalidArgument) as bad_spec:
            client.analyze(request(prometheus, spec="metrics: [{name: a, template: nope}]"))
        assert bad_spec.value.violations[0].field == "metrics[0].template"


def test_a_rejected_query_is_failed_precondition_naming_metric_and_query(
    prometheus: PrometheusServer, start_server: StartServer, spec_dir: Path
) -> None:
    server = start_server(prometheus_url=prometheus.url, spec_dir=spec_dir)
    with GatekeeperClient(server.target) as client, pytest.raises(FailedPrecondition) as caught:
        client.analyze(request(prometheus, spec_name="broken"))
    assert "metric broken" in str(caught.value) and "sum(rate(http_requests_total" in str(
        caught.value
    )


def test_a_metric_source_that_is_down_gives_error_and_the_server_keeps_serving(
    prometheus: PrometheusServer, start_server: StartServer
) -> None:
    server = start_server(
        prometheus_url="http://127.0.0.1:9",
        prometheus=PrometheusOptions(retries=1, backoff_seconds=0.01, timeout_seconds=1),
    )
    with GatekeeperClient(server.target) as client:
        verdict = client.analyze(request(prometheus, spec=TEMPLATES.format(service="healthy")))
        assert verdict.decision == pb.DECISION_ERROR
        assert all(m.outcome == pb.OUTCOME_ERROR for m in verdict.metrics)
        assert client.serving()


def test_preflight_over_rpc(prometheus: PrometheusServer, start_server: StartServer) -> None:
    server = start_server(prometheus_url=prometheus.url)
    preflight = request(prometheus, spec=TEMPLATES.format(service="healthy"), preflight=True)
    preflight.start.FromDatetime(
        datetime.datetime.fromtimestamp(prometheus.end - 3600, datetime.UTC)
    )
    with GatekeeperClient(server.target) as client:
        verdict = client.analyze(preflight)
    assert verdict.decision == pb.DECISION_INCONCLUSIVE  # 30 minutes of data, an hour asked
    assert "gap(s) in the baseline" in verdict.metrics[0].reason


def test_a_server_without_a_source_refuses_analyze(
    start_server: StartServer, prometheus: PrometheusServer
) -> None:
    server = start_server()
    retry = RetryPolicy(attempts=1)
    with (
        GatekeeperClient(server.target, retry=retry) as client,
        pytest.raises(FailedPrecondition, match="--prometheus"),
    ):
        client.analyze(request(prometheus, spec=TEMPLATES.format(service="healthy")))


def test_undecodable_analyze_bytes_are_invalid_argument(start_server: StartServer) -> None:
    server = start_server()
    with grpc.insecure_channel(server.target) as channel:
        call = channel.unary_unary(
            "/gatekeeper.api.v1.Gatekeeper/Analyze",
            request_serializer=None,
            response_deserializer=None,
        )
        with pytest.raises(grpc.RpcError) as caught:
            call(b"\xff\xff\xff", timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize(("service", "code"), [("healthy", 0), ("errors", 1), ("quiet", 2)])
def test_cli_analyze_exit_codes(
    prometheus: PrometheusServer, tmp_path: Path, service: str, code: int
) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(TEMPLATES.format(service=service))
    done = gatekeeper(
        "analyze",
        "--prometheus",
        prometheus.url,
        "--spec",
        str(spec),
        "--baseline",
        'track="baseline"',
        "--canary",
        'track="canary"',
        "--start",
        f"{prometheus.start:.0f}",
        "--end",
        datetime.datetime.fromtimestamp(prometheus.end, datetime.UTC)
        .isoformat()
        .replace("+00:00", "Z"),
        "--output",
        "json",
    )
    assert done.returncode == code, done.stderr
    verdict = json.loads(done.stdout)
    assert verdict["metrics"][0]["queries"]


def test_cli_analyze_through_a_server_and_preflight(
    prometheus: PrometheusServer, start_server: StartServer, spec_dir: Path
) -> None:
    server = start_server(prometheus_url=prometheus.url, spec_dir=spec_dir)
    window = ["--start", f"{prometheus.start:.0f}", "--end", f"{prometheus.end:.0f}"]
    done = gatekeeper(
        "analyze",
        "--server",
        server.target,
        "--spec-name",
        "checkout",
        "--baseline",
        'track="baseline"',
        "--canary",
        'track="canary"',
        *window,
    )
    assert done.returncode == 0, done.stderr
    assert "error-rate" in done.stdout
    preflight = gatekeeper(
        "analyze",
        "--prometheus",
        prometheus.url,
        "--spec",
        str(spec_dir / "checkout.yaml"),
        "--baseline",
        'track="baseline"',
        "--preflight",
        "--lookback",
        "20m",
        "--end",
        f"{prometheus.end:.0f}",
    )
    assert preflight.returncode == 0, preflight.stdout + preflight.stderr


def test_cli_analyze_usage_errors(prometheus: PrometheusServer) -> None:
    assert (
        gatekeeper(
            "analyze", "--baseline", 'a="b"', "--canary", 'a="c"', "--since", "5m"
        ).returncode
        == 4
    )
    sides: tuple[str, ...] = (
        "analyze",
        "--prometheus",
        prometheus.url,
        "--spec",
        "/nonexistent.yaml",
    )
    sides += ("--baseline", 'a="b"', "--canary", 'a="c"')
    done = gatekeeper(*sides, "--since", "5m")
    assert done.returncode == 4 and "--spec" in done.stderr
    bad_time = gatekeeper(*sides, "--start", "yesterday", "--end", "now")
    assert bad_time.returncode == 4
