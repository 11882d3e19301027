"""Unusable canary data from a real Prometheus: never PASS, and the reason says why.

The backfilled Prometheus (``tests/conftest.py``) serves healthy traffic with ``code``
labels; custom queries make it answer what a broken recording rule or exporter would: NaN,
negative, infinite or absurd counts, and bad-event matchers on a label the series lack.
"""

from __future__ import annotations

import pytest

from gatekeeper import engine
from gatekeeper.sources.base import Window
from gatekeeper.sources.prometheus import PrometheusSource
from gatekeeper.spec import load_spec
from gatekeeper.stats.results import Decision, Outcome, Verdict
from tests.integration.prom import PrometheusServer

SIDES = engine.Sides(baseline='track="baseline"', canary='track="canary"')
REQUESTS = 'sum(increase(http_requests_total{service="healthy", {{selector}}}[{{interval}}]))'
ERRORS = (
    'sum(increase(http_requests_total{service="healthy", code=~"5..", {{selector}}}[{{interval}}]))'
)


def analyze(server: PrometheusServer, bad: str, total: str) -> Verdict:
    spec = load_spec(
        "provider: generic\ninterval: 30s\nmetrics:\n"
        "  - name: errors\n    kind: RATIO\n    critical: true\n"
        f"    bad: '{bad}'\n    total: '{total}'\n"
    )
    return engine.analyze(
        spec,
        data=engine.PromQLData(PrometheusSource(server.url)),
        sides=SIDES,
        window=Window(server.start, server.end, 30.0),
    )


def test_the_healthy_custom_ratio_passes(prometheus: PrometheusServer) -> None:
    """The control for the tests below: the same queries, unspoilt, PASS."""
    assert analyze(prometheus, ERRORS, REQUESTS).decision is Decision.PASS


@pytest.mark.parametrize(
    ("bad", "total", "role", "shown"),
    [
        (f"{ERRORS} * NaN", REQUESTS, "bad", "nan"),
        (f"{ERRORS} - 100", REQUESTS, "bad", "-"),
        (ERRORS, f"{REQUESTS} * Inf", "total", "inf"),
        (ERRORS, f"{REQUESTS} * 1e308", "total", "e+"),
    ],
)
def test_unusable_counts_of_a_side_make_the_metric_error(
    prometheus: PrometheusServer, bad: str, total: str, role: str, shown: str
) -> None:
    verdict = analyze(prometheus, bad, total)
    assert verdict.decision is Decision.ERROR
    (metric,) = verdict.metrics
    assert metric.outcome is Outcome.ERROR
    # both sides are spoilt alike; the baseline's is found first
    assert f"unusable baseline data: the {role} query answered" in metric.reason
    assert shown in metric.reason.split("answered", 1)[1]
    assert 'track="baseline"' in metric.reason


def test_a_bad_matcher_on_a_label_the_series_lack_is_not_zero_errors(
    prometheus: PrometheusServer,
) -> None:
    """``status_class`` is no label of these series: the bad query finds nothing, and
    that must not read as a clean canary."""
    blind = ERRORS.replace('code=~"5.."', 'status_class="5xx"')
    verdict = analyze(prometheus, blind, REQUESTS)
    assert verdict.decision is Decision.ERROR
    (metric,) = verdict.metrics
    assert metric.outcome is Outcome.ERROR
    assert "errors cannot be seen" in metric.reason
    assert "status_class" in metric.reason
    assert any('status_class=~".+"' in q for q in metric.queries)  # the probe is shown


def test_sparse_errors_on_a_label_the_series_have_are_zero_errors(
    prometheus: PrometheusServer,
) -> None:
    """``code="599"`` matches no series, but the series carry ``code``: zero bad events
    on both sides, judged as such (no error; 0 vs 0 needs more data to PASS)."""
    sparse = ERRORS.replace('code=~"5.."', 'code="599"')
    (metric,) = analyze(prometheus, sparse, REQUESTS).metrics
    assert metric.outcome in (Outcome.PASS, Outcome.LOW_TRAFFIC), metric.reason
    assert metric.canary.count > 0
    assert metric.canary.rate == 0
