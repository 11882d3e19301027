"""Replay a historic window from a real Prometheus, and compare it with the same traffic recorded."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from gatekeeper import cli, engine, replay, simulate
from gatekeeper.sources.prometheus import PrometheusOptions, PrometheusSource
from gatekeeper.sources.recorded import from_table
from gatekeeper.spec import AnalysisSpec, load_spec
from gatekeeper.stats.results import Decision
from tests.integration import prom
from tests.integration.prom import PrometheusServer

SIDES = engine.Sides(baseline='track="baseline"', canary='track="canary"')


def spec_text(service: str, provider: str = "generic") -> str:
    # The metric names are those of the simulator's recorded tables, so that one spec
    # replays both the Prometheus window and the recorded file.
    return (
        f"provider: {provider}\nservice: {service}\nnamespace: ns-{provider}\ninterval: 1m\n"
        "metrics:\n"
        "  - {name: error-rate, template: request-success-rate, critical: true}\n"
        "  - {name: latency, template: request-duration, critical: true}\n"
    )


def history(provider: str, service: str) -> simulate.Traffic:
    """The traffic the fixture backfilled for this provider and scenario (its seeds)."""
    index, number = prom.PROVIDERS.index(provider), list(prom.SCENARIOS).index(service)
    scenario = prom.SCENARIOS[service]
    fields = {name: getattr(scenario, name) for name in scenario.__dataclass_fields__}
    fields.update(seed=1000 * index + number, seconds=prom.WINDOW, step_seconds=prom.STEP)
    return simulate.simulate(simulate.Scenario(**fields))


def from_prometheus(
    server: PrometheusServer, spec: AnalysisSpec, *, every_look: bool = False
) -> replay.Replay:
    source = PrometheusSource(server.url)
    try:
        return replay.replay_source(
            spec,
            source=source,
            sides=SIDES,
            start=server.start,
            end=server.end,
            every_look=every_look,
        )
    finally:
        source.close()


EXPECTED = {
    "healthy": Decision.PASS,
    "errors": Decision.FAIL,
    "tail": Decision.FAIL,
    "quiet": Decision.INCONCLUSIVE,
}


@pytest.mark.parametrize("service", list(EXPECTED))
def test_a_prometheus_window_replays_like_the_same_traffic_recorded(
    prometheus: PrometheusServer, service: str
) -> None:
    spec = load_spec(spec_text(service))
    remote = from_prometheus(prometheus, spec, every_look=True)
    traffic = history("generic", service)
    rollout = from_table(simulate.recorded_table(traffic, start=prometheus.start))
    local = replay.replay_recorded(spec, rollout, start=prometheus.start, every_look=True)
    assert remote.summary.decision is EXPECTED[service], remote.summary.summary
    assert remote.summary.planned_looks == 30
    assert remote.summary.decision is local.summary.decision
    assert remote.summary.looks == local.summary.looks
    assert list(remote.timeline["decision"]) == list(local.timeline["decision"])
    # increase() over 1m of 15s samples counts the same events as the recorded steps
    assert remote.summary.canary_bad_before_decision == pytest.approx(
        local.summary.canary_bad_before_decision, rel=1e-9, abs=1e-9
    )
    assert remote.summary.canary_requests_before_decision == pytest.approx(
        local.summary.canary_requests_before_decision, rel=1e-9
    )


def test_the_bad_requests_before_a_fail_match_the_simulated_history(
    prometheus: PrometheusServer,
) -> None:
    summary = from_prometheus(prometheus, load_spec(spec_text("errors", "istio"))).summary
    assert summary.decision is Decision.FAIL
    assert summary.decided_after_seconds is not None
    steps = int(summary.decided_after_seconds // prom.STEP)
    served = history("istio", "errors").canary.errors[:steps].sum()
    assert summary.canary_bad_before_decision == pytest.approx(served)


def gatekeeper(*argv: str) -> int:
    return cli.main(list(argv))


def test_the_replay_command_reads_prometheus(
    prometheus: PrometheusServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(spec_text("errors"))
    start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(prometheus.start))
    code = gatekeeper(
        "replay",
        "--prometheus",
        prometheus.url,
        "--spec",
        str(spec),
        "--baseline",
        SIDES.baseline,
        "--canary",
        SIDES.canary,
        "--start",
        start,
        "--end",
        f"{prometheus.end:.0f}",
        "--output",
        "json",
    )
    assert code == 1
    found = json.loads(capsys.readouterr().out)
    assert found["decision"] == "FAIL"
    assert found["start"] == prometheus.start
    assert found["looks"] == len(found["timeline"])
    assert found["timeline"][-1]["metrics"]["error-rate"]["outcome"] == "HIGH"


def test_a_spec_without_queries_cannot_read_prometheus(
    prometheus: PrometheusServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text("interval: 1m\nmetrics:\n  - {name: error-rate, kind: RATIO}\n")
    code = gatekeeper(
        "replay", "--prometheus", prometheus.url, "--spec", str(spec),
        "--baseline", SIDES.baseline, "--canary", SIDES.canary,
        "--start", f"{prometheus.start:.0f}", "--end", f"{prometheus.end:.0f}",
    )  # fmt: skip
    assert code == 4
    assert "kind RATIO needs exactly bad and total" in capsys.readouterr().err


def test_an_unreachable_prometheus_ends_the_replay_with_error() -> None:
    source = PrometheusSource(
        f"http://127.0.0.1:{prom.free_port()}", PrometheusOptions(retries=0, timeout_seconds=2)
    )
    result = replay.replay_source(
        load_spec(spec_text("healthy")), source=source, sides=SIDES, start=0.0, end=600.0
    )
    assert result.summary.decision is Decision.ERROR
    assert result.summary.looks == 1
    assert result.timeline["error-rate.outcome"].tolist() == ["ERROR"]
