"""Analysis specs: defaults, strict validation with field paths, and query rendering."""

from __future__ import annotations

import math
from typing import cast

import numpy as np
import pytest

from gatekeeper.errors import InvalidArgument, QueryRejected
from gatekeeper.sources import queries, series
from gatekeeper.sources.base import RangeSeries, Window
from gatekeeper.spec import format_duration, load_spec, parse_duration
from gatekeeper.stats.model import FloatArray, HistogramSeries, RatioSeries
from gatekeeper.stats.results import Direction, MetricKind

ISSUE_EXAMPLE = """
provider: generic          # generic | istio | linkerd | nginx | gateway-api
service: checkout          # substituted into the built-in templates
namespace: checkout
interval: 30s
metrics:
  - name: error-rate
    template: request-success-rate     # built-in: RATIO of 5xx to all requests
    tolerance: 0.2
    critical: true
  - name: latency-p99
    template: request-duration          # built-in: HISTOGRAM, guarded quantile
    quantile: 0.99
    tolerance: 0.1
  - name: cpu
    kind: VALUES
    query: 'sum by (pod) (rate(container_cpu_usage_seconds_total{namespace="{{namespace}}", {{selector}}}[{{interval}}]))'
    tolerance: 0.3
  - name: custom-errors
    kind: RATIO
    bad: 'sum(increase(app_errors_total{ {{selector}} }[{{interval}}]))'
    total: 'sum(increase(app_requests_total{ {{selector}} }[{{interval}}]))'
  - name: custom-latency
    kind: HISTOGRAM
    buckets: 'sum by (le) (increase(app_latency_seconds_bucket{ {{selector}} }[{{interval}}]))'
"""


def violations(text: str) -> dict[str, str]:
    with pytest.raises(InvalidArgument) as caught:
        load_spec(text)
    return {v.field: v.description for v in caught.value.violations}


def test_the_issue_example_parses_with_design_defaults() -> None:
    spec = load_spec(ISSUE_EXAMPLE)
    assert spec.interval_seconds == 30
    kinds = [spec.kind_of(m) for m in spec.metrics]
    assert kinds == [
        MetricKind.RATIO,
        MetricKind.HISTOGRAM,
        MetricKind.VALUES,
        MetricKind.RATIO,
        MetricKind.HISTOGRAM,
    ]
    settings = spec.settings(spec.metrics[2])
    assert settings.direction is Direction.INCREASE and settings.tolerance == 0.3
    assert spec.settings(spec.metrics[3]).tolerance == 0.2
    assert spec.judge_settings().alpha == 0.01


def test_json_specs_parse_too() -> None:
    spec = load_spec('{"metrics": [{"name": "e", "template": "request-success-rate"}]}')
    assert spec.provider == "generic"


@pytest.mark.parametrize(
    ("text", "field", "words"),
    [
        (
            "metrics: [{name: a, template: request-success-rate, colour: red}]",
            "metrics[0].colour",
            "unknown field",
        ),
        (
            "metrics: [{name: a, kind: RATIOS, bad: x, total: y}]",
            "metrics[0].kind",
            "'RATIO', 'VALUES' or 'HISTOGRAM'",
        ),
        (
            "metrics: [{name: a, template: request-success-rate, direction: UP}]",
            "metrics[0].direction",
            "'INCREASE'",
        ),
        (
            "metrics: [{name: a, template: nope}]",
            "metrics[0].template",
            "allowed: request-duration, request-success-rate",
        ),
        (
            "interval: 30x\nmetrics: [{name: a, template: request-success-rate}]",
            "interval",
            "duration",
        ),
        (
            "metrics: [{name: a, kind: RATIO, bad: 'x{ {{selector}} }'}]",
            "metrics[0]",
            "needs exactly bad and total",
        ),
        ("metrics: [{name: a, kind: VALUES, query: 'up'}]", "metrics[0]", "{{selector}}"),
        (
            "metrics: [{name: a, kind: VALUES, query: 'up{ {{selectr}} }'}]",
            "metrics[0]",
            "unknown placeholder",
        ),
        (
            "metrics: [{name: a, template: request-success-rate, query: 'up{ {{selector}} }'}]",
            "metrics[0]",
            "either template",
        ),
        (
            "provider: istio\nmetrics: [{name: a, template: request-success-rate}]",
            "spec",
            "needs service and namespace",
        ),
        (
            "metrics: [{name: a, template: request-success-rate}, {name: a, template: request-duration}]",
            "spec",
            "unique",
        ),
        ("metrics: []", "metrics", "at least 1"),
        (
            "thresholds: {pass_score: 50, marginal_score: 80}\nmetrics: [{name: a, template: request-success-rate}]",
            "thresholds",
            "marginal_score must be <= pass_score",
        ),
        ("- a\n- b", "spec", "mapping"),
        (
            "metrics: [{name: a, template: request-success-rate, tolerance: -1}]",
            "metrics[0].tolerance",
            "greater than or equal to 0",
        ),
    ],
)
def test_bad_specs_name_the_field(text: str, field: str, words: str) -> None:
    found = violations(text)
    assert field in found, found
    assert words in found[field]


def test_durations() -> None:
    assert parse_duration("1m30s") == 90
    assert parse_duration("2h") == 7200
    assert parse_duration("500ms") == 0.5
    assert format_duration(90) == "1m30s"
    assert format_duration(30) == "30s"
    assert format_duration(3600) == "1h"
    with pytest.raises(ValueError, match="duration"):
        parse_duration("")


def test_every_provider_renders_both_templates_for_a_side() -> None:
    for name in queries.PROVIDERS:
        catalogue = queries.provider(name)
        context = queries.Context(
            selector='version="v2"', interval="30s", service="web", namespace="shop"
        )
        for template in catalogue.templates.values():
            for text in template.queries.values():
                rendered = queries.render(text, context=context, labels=catalogue.labels)
                assert "{{" not in rendered and 'version="v2"' in rendered


def test_escaping_keeps_hostile_values_inside_their_literal() -> None:
    hostile = 'a"} or vector(1) # \\'
    assert queries.escape_string(hostile) == 'a\\"} or vector(1) # \\\\'
    assert queries.escape_regex("web.v1") == "web\\\\.v1"


@pytest.mark.parametrize(
    ("selector", "ok"),
    [
        ('version="v1"', True),
        ('app="web", track=~"canary|c2"', True),
        ('track!="x",', True),
        ('version="v1"} or vector(1) or up{a="', False),
        ("version=v1", False),
        ("", False),
    ],
)
def test_selectors_must_be_label_matchers(selector: str, ok: bool) -> None:
    assert queries.valid_selector(selector) is ok


WINDOW = Window(start=0.0, end=120.0, step=30.0)


def points(
    values: list[float], labels: dict[str, str] | None = None, times: list[float] | None = None
) -> RangeSeries:
    stamps = times or [30.0 * (k + 1) for k in range(len(values))]
    return RangeSeries(labels or {}, np.array(stamps), np.array(values, dtype=float))


def test_ratio_cleaning_follows_the_error_table() -> None:
    fetched = series.ratio(
        [points([1, 5, math.nan], times=[30, 60, 90])], [points([10, 4, 0, 20])], WINDOW
    )
    cleaned = cast(RatioSeries, fetched.series)
    assert cleaned.total.tolist() == [10, 4, 0, 20]
    assert cleaned.bad.tolist() == [1, 4, 0, 0]  # clamped; 0/0 kept aligned; no bad = 0
    assert "clamped" in fetched.notes[0]
    nothing = series.ratio([], [], WINDOW)
    assert cast(RatioSeries, nothing.series).total.sum() == 0


def test_infinite_values_from_a_query_count_as_missing_with_a_note() -> None:
    fetched = series.values([points([1.0, math.inf]), points([-math.inf, 2.0, math.nan])])
    assert np.isnan(cast(FloatArray, fetched.series)).tolist() == [False, True, True, False, True]
    assert fetched.notes == ("2 infinite value(s) treated as missing (NaN policy)",)
    assert series.values([points([1.0, 2.0])]).notes == ()


def test_histogram_assembly_sorts_bounds_and_requires_inf() -> None:
    buckets = [
        points([10, 10, 10, 10], {"le": "+Inf"}),
        points([4, 5, 6, 7], {"le": "0.1"}),
        points([8, 9, 9, 9], {"le": "0.5"}),
    ]
    fetched = series.histogram(buckets, WINDOW, query="q")
    assembled = cast(HistogramSeries, fetched.series)
    assert assembled.upper_bounds.tolist() == [0.1, 0.5, math.inf]
    assert assembled.counts[0].tolist() == [4, 8, 10]
    with pytest.raises(QueryRejected, match="Inf"):
        series.histogram([points([1], {"le": "0.1"})], WINDOW, query="q")
    with pytest.raises(QueryRejected, match="le label"):
        series.histogram([points([1])], WINDOW, query="q")


def test_window_times() -> None:
    assert WINDOW.points == 4
    assert WINDOW.times.tolist() == [30, 60, 90, 120]
    with pytest.raises(ValueError, match="step"):
        Window(0, 10, 0)
