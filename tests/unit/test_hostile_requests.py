"""Hostile requests (issue 19): each one is bad input naming the field, or a non-PASS verdict.

Request side: non-cumulative histograms, huge VALUES, huge weights, look-alike names, long
or multi-line names, too many metrics, deeply nested specs, selectors that repeat the
baseline's, `{{selector}}` only in a comment, dry-run-only verdicts, bounded summaries and
logs, and the cost estimate that keeps expensive requests out of the event loop.
"""

from __future__ import annotations

import io
import logging
import math

import pytest

from gatekeeper import engine, limits, wire
from gatekeeper.api.v1 import gatekeeper_pb2 as pb
from gatekeeper.errors import InvalidArgument
from gatekeeper.server import cost, dispatch
from gatekeeper.server.analysis import AnalysisService
from gatekeeper.server.logs import RequestIdFilter, TextFormatter
from gatekeeper.sources import queries
from gatekeeper.spec import load_spec
from gatekeeper.stats.results import Decision, Verdict

BOUNDS = [0.1, 0.5, 1.0, math.inf]


def histogram_request(baseline: list[float], canary: list[float]) -> pb.JudgeRequest:
    def series(counts: list[float]) -> pb.Series:
        return pb.Series(histograms=[pb.Histogram(upper_bounds=BOUNDS, counts=counts)] * 3)

    return pb.JudgeRequest(
        metrics=[
            pb.Metric(
                config=pb.MetricConfig(name="latency", kind=pb.METRIC_KIND_HISTOGRAM),
                baseline=series(baseline),
                canary=series(canary),
            )
        ]
    )


def ratio(name: str, **config: object) -> pb.Metric:
    counts = [pb.Counts(bad=2, total=1000)] * 4
    return pb.Metric(
        config=pb.MetricConfig(name=name, kind=pb.METRIC_KIND_RATIO, **config),  # type: ignore[arg-type]
        baseline=pb.Series(counts=counts),
        canary=pb.Series(counts=counts),
    )


def violations(request: pb.JudgeRequest, **options: int) -> dict[str, str]:
    with pytest.raises(InvalidArgument) as caught:
        wire.judge_input(request, **options)
    return {v.field: v.description for v in caught.value.violations}


def test_per_bucket_counts_sent_as_cumulative_name_the_interval_and_the_bucket() -> None:
    cumulative = [5000.0, 8000.0, 9500.0, 10000.0]
    per_bucket = [5000.0, 3000.0, 1500.0, 500.0]
    assert _verdict(histogram_request(cumulative, cumulative)).decision
    found = violations(histogram_request(cumulative, per_bucket))
    field = "metrics[0].canary.histograms[0].counts[1]"
    assert field in found
    assert "cumulative" in found[field]
    assert "interval 0" in found[field]
    assert 'le="0.5"' in found[field]


def test_a_decreasing_inf_bucket_is_bad_input_naming_it() -> None:
    good = [10.0, 20.0, 30.0, 40.0]
    found = violations(histogram_request(good, [10.0, 20.0, 30.0, 25.0]))
    assert 'le="+Inf"' in found["metrics[0].canary.histograms[0].counts[3]"]


def _verdict(request: pb.JudgeRequest) -> Verdict:
    judged = wire.judge_input(request)
    return engine.judge(judged.metrics, judged.settings)


def test_values_at_the_ends_of_the_float_range_are_bad_input_not_internal() -> None:
    request = pb.JudgeRequest(
        metrics=[
            pb.Metric(
                config=pb.MetricConfig(name="cpu", kind=pb.METRIC_KIND_VALUES),
                baseline=pb.Series(values=[1e308] * 10),
                canary=pb.Series(values=[-1e308] * 10),
            )
        ]
    )
    found = violations(request)
    assert "1e+100" in found["metrics[0].baseline.values[0]"]
    assert "metrics[0].canary.values[0]" in found


def test_huge_weights_are_refused_rather_than_scored_as_nan() -> None:
    request = pb.JudgeRequest(
        metrics=[ratio(f"errors-{i}", weight=1e308) for i in range(3)],
        group_weights={"": 1e308},
    )
    found = violations(request)
    assert f"at most {limits.MAX_WEIGHT:g}" in found["metrics[2].config.weight"]
    assert "group_weights['']" in found


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("caf\u00e9", "cafe\u0301"),  # precomposed vs combining accent
        ("errors", "err\u200bors"),  # zero-width space
        ("errors", "\u2060errors\ufeff"),  # word joiner, BOM
    ],
)
def test_names_alike_once_normalised_are_duplicates(first: str, second: str) -> None:
    found = violations(pb.JudgeRequest(metrics=[ratio(first), ratio(second)]))
    assert "duplicate metric name" in found["metrics[1].config.name"]


def test_names_are_reported_nfc_normalised() -> None:
    (metric,) = wire.judge_input(pb.JudgeRequest(metrics=[ratio("cafe\u0301")])).metrics
    assert metric.settings.name == "caf\u00e9"


def test_long_and_multi_line_names_are_bad_input() -> None:
    long = "x" * (limits.MAX_NAME_LENGTH + 1)
    found = violations(pb.JudgeRequest(metrics=[ratio(long), ratio("a\nINFO forged line")]))
    assert f"at most {limits.MAX_NAME_LENGTH} characters" in found["metrics[0].config.name"]
    assert "control characters" in found["metrics[1].config.name"]


def test_group_names_are_bounded_like_metric_names() -> None:
    found = violations(pb.JudgeRequest(metrics=[ratio("a", group="g" * 100_000)]))
    assert "at most" in found["metrics[0].config.group"]
    with pytest.raises(InvalidArgument, match="control characters"):
        load_spec('metrics:\n  - {name: cpu, kind: VALUES, group: "a\\nb"}\n', queries=False)


def test_more_metrics_than_the_limit_is_one_violation_naming_the_limit() -> None:
    request = pb.JudgeRequest(metrics=[ratio(f"m{i}") for i in range(11)])
    found = violations(request, max_metrics=10)
    assert list(found) == ["metrics"]
    assert "at most 10 metrics" in found["metrics"]
    assert "--max-metrics" in found["metrics"]
    assert wire.judge_input(request, max_metrics=11).metrics


def test_only_dry_run_metrics_with_zero_thresholds_is_inconclusive_not_pass() -> None:
    empty = pb.Series(counts=[pb.Counts(bad=0, total=0)])
    request = pb.JudgeRequest(
        metrics=[
            pb.Metric(
                config=pb.MetricConfig(name="e", kind=pb.METRIC_KIND_RATIO, dry_run=True),
                baseline=empty,
                canary=empty,
            )
        ],
        thresholds=pb.Thresholds(pass_score=0, marginal_score=0),
    )
    verdict = _verdict(request)
    assert verdict.decision is Decision.INCONCLUSIVE
    assert "dry-run" in verdict.summary


def test_the_summary_names_a_few_undecided_metrics_and_counts_the_rest() -> None:
    thin = pb.Series(counts=[pb.Counts(bad=0, total=10)])
    request = pb.JudgeRequest(
        metrics=[
            pb.Metric(
                config=pb.MetricConfig(name=f"quiet-{i}", kind=pb.METRIC_KIND_RATIO),
                baseline=thin,
                canary=thin,
            )
            for i in range(300)
        ]
    )
    verdict = _verdict(request)
    assert verdict.decision is Decision.INCONCLUSIVE
    assert "quiet-0 " in verdict.summary and "quiet-299" not in verdict.summary
    assert "and 295 more" in verdict.summary
    assert len(verdict.summary) < 1000


def test_a_newline_in_a_logged_message_cannot_forge_a_log_line() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(TextFormatter())
    handler.addFilter(RequestIdFilter())
    logger = logging.getLogger("tests.hostile")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("verdict %s", "PASS\n2026-01-01 INFO gatekeeper.server forged")
    finally:
        logger.removeHandler(handler)
    assert stream.getvalue().count("\n") == 1
    assert "PASS\\n2026-01-01" in stream.getvalue()


SPEC = """
metrics:
  - name: {name}
    kind: VALUES
    query: '{query}'
"""


@pytest.mark.parametrize(
    "text",
    [
        "[" * 50_000 + "]" * 50_000,
        '{"a": ' * 50_000 + "1" + "}" * 50_000,
        "metrics: " + "[" * 50_000 + "]" * 50_000,
    ],
)
def test_a_spec_nested_50000_deep_is_bad_input_not_a_recursion_error(text: str) -> None:
    with pytest.raises(InvalidArgument, match="nested too deeply"):
        load_spec(text)


def test_a_selector_only_inside_a_comment_does_not_satisfy_the_selector_rule() -> None:
    sneaky = "sum(rate(http_requests_total[5m])) # {{selector}}"
    with pytest.raises(InvalidArgument, match="outside a comment"):
        load_spec(SPEC.format(name="rate", query=sneaky))
    quoted = 'sum(rate(http_requests_total{path="/#x", {{selector}}}[5m]))'
    assert load_spec(SPEC.format(name="rate", query=quoted)).metrics[0].query == quoted


def test_spec_names_and_weights_follow_the_wire_rules() -> None:
    twins = (
        'metrics:\n  - {name: "caf\u00e9", kind: VALUES}\n  - {name: "cafe\u0301", kind: VALUES}\n'
    )
    with pytest.raises(InvalidArgument, match="duplicate metric name"):
        load_spec(twins, queries=False)
    heavy = "metrics:\n  - {name: cpu, kind: VALUES, weight: 1e308}\n"
    with pytest.raises(InvalidArgument, match="at most"):
        load_spec(heavy, queries=False)


@pytest.mark.parametrize(
    "canary",
    ['version="v1"', 'version="v1",version="v1"', ' version = "v1" , ', 'version="v1",'],
)
def test_a_canary_selector_that_repeats_the_baseline_is_refused(canary: str) -> None:
    request = pb.AnalyzeRequest(baseline_selector='version="v1"', canary_selector=canary)
    with pytest.raises(InvalidArgument) as caught:
        AnalysisService(data=None).sides(request)
    assert caught.value.violations[0].field == "canary_selector"


def test_selectors_that_differ_in_a_quoted_value_are_distinct() -> None:
    assert queries.matcher_set('a="x,y", b="1"') == {'a="x,y"', 'b="1"'}
    request = pb.AnalyzeRequest(baseline_selector='v="a b"', canary_selector='v="ab"')
    assert AnalysisService(data=None).sides(request).canary == 'v="ab"'


def test_an_unknown_spec_name_does_not_list_the_served_specs() -> None:
    service = AnalysisService(data=None, specs={"secret-team-spec": load_spec(_TEMPLATE)})
    with pytest.raises(InvalidArgument) as caught:
        service.resolve(pb.AnalyzeRequest(spec_name="nope"))
    assert "secret-team-spec" not in caught.value.violations[0].description


_TEMPLATE = "metrics:\n  - {name: cpu, kind: VALUES, query: 'x{ {{selector}} }'}\n"


def test_ten_thousand_one_interval_metrics_are_too_expensive_to_judge_inline() -> None:
    """The issue's 679 KB request: few points, long judgement."""
    metric = ratio("m", direction=pb.DIRECTION_EITHER, absolute_tolerance=0.01)
    del metric.baseline.counts[1:]
    del metric.canary.counts[1:]
    request = pb.JudgeRequest(look=pb.Look(index=1, planned=20))
    for index in range(10_000):
        request.metrics.add().CopyFrom(metric)
        request.metrics[-1].config.name = f"m{index}"
    judging = dispatch.Judging(workers=1, max_metrics=10_000)
    assert judging.inline_max_points >= 20_000  # points alone would judge it inline
    assert cost.estimated_ms(request) > 1000 * judging.inline_max_ms
    assert not judging.cheap(request)
    small = pb.JudgeRequest(metrics=[ratio("errors")])
    assert judging.cheap(small)
