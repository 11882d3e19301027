"""Analyze against a real Prometheus: every provider's templates, failures, injection, preflight."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from gatekeeper import engine, preflight
from gatekeeper.errors import InvalidArgument, QueryRejected
from gatekeeper.sources.base import Window
from gatekeeper.sources.prometheus import PrometheusOptions, PrometheusSource
from gatekeeper.spec import AnalysisSpec, load_spec
from gatekeeper.stats.results import Decision, Outcome
from tests.integration import prom
from tests.integration.prom import PrometheusServer

SIDES = engine.Sides(baseline='track="baseline"', canary='track="canary"')


def spec_for(provider: str, service: str, *extra: str) -> AnalysisSpec:
    metrics = "\n".join(
        [
            "  - {name: error-rate, template: request-success-rate, critical: true}",
            "  - {name: latency-p99, template: request-duration, quantile: 0.99, critical: true}",
            *extra,
        ]
    )
    return load_spec(
        f"provider: {provider}\nservice: '{service}'\nnamespace: ns-{provider}\n"
        f"interval: 30s\nmetrics:\n{metrics}\n"
    )


def analyze(server: PrometheusServer, spec: AnalysisSpec, **options: object):  # type: ignore[no-untyped-def]
    source = PrometheusSource(server.url, PrometheusOptions(**options))  # type: ignore[arg-type]
    try:
        return engine.analyze(
            spec,
            data=engine.PromQLData(source),
            sides=SIDES,
            window=Window(server.start, server.end, 30.0),
        )
    finally:
        source.close()


EXPECTED = {
    "healthy": (Decision.PASS, {"error-rate": Outcome.PASS, "latency-p99": Outcome.PASS}),
    "errors": (Decision.FAIL, {"error-rate": Outcome.HIGH}),
    "tail": (Decision.FAIL, {"latency-p99": Outcome.HIGH, "error-rate": Outcome.PASS}),
    "quiet": (
        Decision.INCONCLUSIVE,
        {"error-rate": Outcome.LOW_TRAFFIC, "latency-p99": Outcome.LOW_TRAFFIC},
    ),
}


@pytest.mark.parametrize("scenario", list(EXPECTED))
@pytest.mark.parametrize("provider", prom.PROVIDERS)
def test_every_provider_template_judges_each_scenario(
    prometheus: PrometheusServer, provider: str, scenario: str
) -> None:
    verdict = analyze(prometheus, spec_for(provider, scenario))
    decision, outcomes = EXPECTED[scenario]
    assert verdict.decision is decision, verdict.summary
    found = {m.name: m.outcome for m in verdict.metrics}
    for name, outcome in outcomes.items():
        assert found[name] is outcome, (name, verdict.summary)
    for metric in verdict.metrics:
        assert any(q.startswith("baseline: ") and 'track="baseline"' in q for q in metric.queries)
        assert any(q.startswith("canary: ") and 'track="canary"' in q for q in metric.queries)
    if scenario == "quiet":
        assert verdict.load_hint is not None
        assert verdict.load_hint.canary_requests_needed > 0
        assert verdict.load_hint.seconds == 1800


def test_custom_queries_of_every_kind(prometheus: PrometheusServer) -> None:
    extra = (
        "  - name: custom-errors\n    kind: RATIO\n"
        '    bad: \'sum(increase(http_requests_total{service="errors", code="500", {{selector}}}[{{interval}}]))\'\n'
        "    total: 'sum(increase(http_requests_total{service=\"errors\", {{selector}}}[{{interval}}]))'\n"
        "  - name: per-interval-rate\n    kind: VALUES\n    tolerance: 0.5\n"
        "    query: 'sum(rate(http_requests_total{service=\"healthy\", {{selector}}}[{{interval}}]))'\n"
        "    direction: EITHER\n"
    )
    verdict = analyze(prometheus, spec_for("generic", "healthy", extra))
    found = {m.name: m for m in verdict.metrics}
    assert found["custom-errors"].outcome is Outcome.HIGH
    # the canary serves a quarter of the traffic: its request rate is LOW against the baseline
    assert found["per-interval-rate"].outcome is Outcome.LOW
    assert found["per-interval-rate"].canary.count == 60


def test_a_service_name_cannot_inject_promql(prometheus: PrometheusServer) -> None:
    hostile = 'x"} or vector(1) #'
    spec = load_spec(
        "provider: generic\nservice: 'x\"} or vector(1) #'\ninterval: 30s\n"
        "metrics:\n  - {name: error-rate, template: request-success-rate}\n"
    )
    assert spec.service == hostile
    verdict = analyze(prometheus, spec)
    result = verdict.metrics[0]
    assert 'service="x\\"} or vector(1) #"' in result.queries[0]
    assert result.outcome is Outcome.NO_DATA  # vector(1) would have produced data
    assert verdict.decision is Decision.INCONCLUSIVE


def test_a_selector_that_is_not_label_matchers_is_refused(prometheus: PrometheusServer) -> None:
    source = PrometheusSource(prometheus.url)
    with pytest.raises(InvalidArgument) as caught:
        engine.analyze(
            spec_for("generic", "healthy"),
            data=engine.PromQLData(source),
            sides=engine.Sides('track="baseline"} or vector(1) or up{x="', 'track="canary"'),
            window=Window(prometheus.start, prometheus.end, 30.0),
        )
    assert caught.value.violations[0].field == "selector"


def test_identical_selectors_are_refused(prometheus: PrometheusServer) -> None:
    with pytest.raises(InvalidArgument, match="same queries for baseline and canary"):
        engine.analyze(
            spec_for("generic", "healthy"),
            data=engine.PromQLData(PrometheusSource(prometheus.url)),
            sides=engine.Sides('track="canary"', 'track="canary"'),
            window=Window(prometheus.start, prometheus.end, 30.0),
        )


def test_a_query_prometheus_rejects_names_the_metric_and_the_query(
    prometheus: PrometheusServer,
) -> None:
    broken = "  - name: broken\n    kind: VALUES\n    query: 'sum(rate(up{ {{selector}} }[{{interval}}])'\n"
    with pytest.raises(QueryRejected) as caught:
        analyze(prometheus, spec_for("generic", "healthy", broken))
    assert "metric broken" in str(caught.value)
    assert "sum(rate(up{" in caught.value.query
    assert caught.value.metric == "broken"


def test_preflight_reports_gaps_in_the_baseline(prometheus: PrometheusServer) -> None:
    spec = spec_for("istio", "healthy")
    source = PrometheusSource(prometheus.url)
    covered = preflight.run(
        spec, source=source, baseline=SIDES.baseline, end=prometheus.end, lookback_seconds=1500
    )
    assert covered.decision is Decision.PASS, covered.summary
    longer = preflight.run(
        spec, source=source, baseline=SIDES.baseline, end=prometheus.end, lookback_seconds=7200
    )
    assert longer.decision is Decision.INCONCLUSIVE
    assert all(m.outcome is Outcome.NO_DATA for m in longer.metrics)
    assert "gap(s) in the baseline" in longer.metrics[0].reason
    absent = preflight.run(
        spec, source=source, baseline='track="nobody"', end=prometheus.end, lookback_seconds=1500
    )
    assert "no baseline data at all" in absent.metrics[0].reason


def test_prometheus_stopped_mid_analysis_is_an_error_never_a_pass(tmp_path: Path) -> None:
    end = prometheus_end()
    start = prom.backfill(tmp_path, end=end)
    server = prom.start_prometheus(tmp_path, start=start, end=end)
    try:
        healthy = analyze(server, spec_for("generic", "healthy"))
        assert healthy.decision is Decision.PASS
    finally:
        server.stop()
    down = analyze(server, spec_for("generic", "healthy"), retries=1, backoff_seconds=0.05)
    assert down.decision is Decision.ERROR
    assert all(m.outcome is Outcome.ERROR for m in down.metrics)
    assert "unreachable" in down.metrics[0].reason
    shutil.rmtree(tmp_path / "data", ignore_errors=True)


def prometheus_end() -> float:
    return (time.time() // 60) * 60 - 120
