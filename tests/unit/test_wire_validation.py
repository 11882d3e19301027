"""Bad input per DESIGN.md's error table: every violation names the field and what is allowed."""

from __future__ import annotations

import math
import pickle
from typing import Any

import pytest
from google.protobuf import json_format

from gatekeeper import engine, wire
from gatekeeper.api.v1 import gatekeeper_pb2 as pb
from gatekeeper.errors import InvalidArgument, QueryRejected
from gatekeeper.stats.model import JudgeMode
from gatekeeper.stats.results import Direction, MetricKind


def ratio_metric(
    name: str = "errors",
    baseline: tuple[tuple[float, float], ...] = ((1, 100),),
    canary: tuple[tuple[float, float], ...] = ((1, 100),),
    **config: Any,  # pb.MetricConfig's fields, some deliberately out of range
) -> pb.Metric:
    return pb.Metric(
        config=pb.MetricConfig(name=name, kind=pb.METRIC_KIND_RATIO, **config),
        baseline=pb.Series(counts=[pb.Counts(bad=b, total=t) for b, t in baseline]),
        canary=pb.Series(counts=[pb.Counts(bad=b, total=t) for b, t in canary]),
    )


def histogram_metric(bounds: list[float], counts: list[float]) -> pb.Metric:
    series = pb.Series(histograms=[pb.Histogram(upper_bounds=bounds, counts=counts)])
    return pb.Metric(
        config=pb.MetricConfig(name="latency", kind=pb.METRIC_KIND_HISTOGRAM),
        baseline=series,
        canary=series,
    )


def violations(request: pb.JudgeRequest) -> dict[str, str]:
    with pytest.raises(InvalidArgument) as caught:
        wire.judge_input(request)
    return {v.field: v.description for v in caught.value.violations}


@pytest.mark.parametrize(
    ("metric", "field", "words"),
    [
        (ratio_metric(baseline=((-1, 100),)), "metrics[0].baseline.counts[0]", ">= 0"),
        (ratio_metric(canary=((5, 3),)), "metrics[0].canary.counts[0]", "bad <= total"),
        (ratio_metric(canary=((math.nan, 3),)), "metrics[0].canary.counts[0]", "finite"),
        (ratio_metric(canary=((1, math.inf),)), "metrics[0].canary.counts[0]", "finite"),
        (ratio_metric(canary=((1, 100), (1, 100))), "metrics[0].canary", "same intervals"),
        (ratio_metric(name=""), "metrics[0].config.name", "required"),
        (ratio_metric(tolerance=-0.1), "metrics[0].config.tolerance", "[0, inf)"),
        (ratio_metric(weight=0), "metrics[0].config.weight", "(0, inf)"),
        (ratio_metric(quantile=1.0), "metrics[0].config.quantile", "(0, 1)"),
        (
            ratio_metric(absolute_tolerance=math.inf),
            "metrics[0].config.absolute_tolerance",
            "finite",
        ),
        (
            ratio_metric(direction=9),
            "metrics[0].config.direction",
            "allowed: DIRECTION_UNSPECIFIED, DIRECTION_INCREASE, DIRECTION_DECREASE, "
            "DIRECTION_EITHER",
        ),
        (
            pb.Metric(config=pb.MetricConfig(name="x")),
            "metrics[0].config.kind",
            "allowed: METRIC_KIND_RATIO, METRIC_KIND_VALUES, METRIC_KIND_HISTOGRAM",
        ),
        (
            histogram_metric([0.1, 0.5, 1.0], [1, 2, 3]),
            "metrics[0].baseline.histograms[0].upper_bounds",
            "+Inf",
        ),
        (
            histogram_metric([0.5, 0.1, math.inf], [1, 2, 3]),
            "metrics[0].baseline.histograms[0].upper_bounds",
            "strictly increasing",
        ),
        (
            histogram_metric([0.1, math.inf], [1, 2, 3]),
            "metrics[0].baseline.histograms[0].counts",
            "one count per upper bound",
        ),
    ],
)
def test_bad_metric_names_the_field_and_the_allowed_values(
    metric: pb.Metric, field: str, words: str
) -> None:
    found = violations(pb.JudgeRequest(metrics=[metric]))
    assert field in found, found
    assert words in found[field]


def test_values_metric_rejects_infinite_values_but_keeps_nan_for_the_policy() -> None:
    series = pb.Series(values=[1.0, math.nan, 2.0])
    ok = pb.Metric(
        config=pb.MetricConfig(name="v", kind=pb.METRIC_KIND_VALUES), baseline=series, canary=series
    )
    assert (
        wire.judge_input(pb.JudgeRequest(metrics=[ok])).metrics[0].settings.kind
        is MetricKind.VALUES
    )
    bad = pb.Metric(
        config=pb.MetricConfig(name="v", kind=pb.METRIC_KIND_VALUES),
        baseline=series,
        canary=pb.Series(values=[1.0, math.inf]),
    )
    assert "metrics[0].canary.values[1]" in violations(pb.JudgeRequest(metrics=[bad]))


def test_duplicate_and_missing_names_and_request_level_fields_are_all_reported_at_once() -> None:
    request = pb.JudgeRequest(
        metrics=[ratio_metric("a"), ratio_metric("a")],
        alpha=0.7,
        thresholds=pb.Thresholds(pass_score=50, marginal_score=80),
        look=pb.Look(index=0, planned=3),
        mode=5,  # type: ignore[arg-type]
    )
    found = violations(request)
    assert "duplicate metric name 'a'" in found["metrics[1].config.name"]
    assert "(0, 0.5]" in found["alpha"]
    assert "<= pass_score" in found["thresholds.marginal_score"]
    assert ">= 1" in found["look.index"]
    assert "JUDGE_MODE_KAYENTA" in found["mode"]


def test_no_metrics_is_bad_input() -> None:
    assert "metrics" in violations(pb.JudgeRequest())


def test_series_of_the_wrong_kind_is_bad_input() -> None:
    metric = ratio_metric()
    metric.canary.values.append(1.0)
    assert "counts only" in violations(pb.JudgeRequest(metrics=[metric]))["metrics[0].canary"]


def test_empty_series_is_missing_data_not_bad_input() -> None:
    metric = pb.Metric(config=pb.MetricConfig(name="e", kind=pb.METRIC_KIND_RATIO))
    judged = wire.judge_input(pb.JudgeRequest(metrics=[metric]))
    assert judged.metrics[0].canary.intervals == 0  # type: ignore[union-attr]


def test_defaults_follow_design() -> None:
    judged = wire.judge_input(pb.JudgeRequest(metrics=[ratio_metric()]))
    settings = judged.metrics[0].settings
    assert settings.tolerance == 0.2
    assert settings.direction is Direction.INCREASE
    assert settings.quantile == 0.99
    assert judged.settings.alpha == 0.01
    assert judged.settings.mode is JudgeMode.DEFAULT


@pytest.mark.parametrize("payload", [b"\xff\xff\xff", b"\x0a\x05\x0a\x03"])
def test_undecodable_bytes_are_bad_input(payload: bytes) -> None:
    with pytest.raises(InvalidArgument) as caught:
        wire.parse_judge_request(payload, json=False)
    assert caught.value.violations[0].field == "request"


def test_unknown_json_field_is_bad_input() -> None:
    with pytest.raises(InvalidArgument) as caught:
        wire.parse_judge_request('{"metrics": [], "alfa": 0.1}', json=True)
    assert "alfa" in caught.value.violations[0].description


def test_verdict_json_includes_zero_valued_fields() -> None:
    judged = wire.judge_input(pb.JudgeRequest(metrics=[ratio_metric(baseline=((0, 100),))]))
    message = wire.verdict_message(engine.judge(judged.metrics, judged.settings))
    text = wire.verdict_json(message)
    parsed = json_format.Parse(text, pb.Verdict())
    assert parsed == message
    assert '"score"' in text and '"queries": []' in text


def test_domain_errors_survive_pickling_across_process_pools() -> None:
    invalid = pickle.loads(pickle.dumps(InvalidArgument.single("metrics[0].kind", "unknown")))
    assert invalid.violations[0].field == "metrics[0].kind"
    rejected = pickle.loads(pickle.dumps(QueryRejected("bad", query="sum(", metric="m")))
    assert (str(rejected), rejected.query, rejected.metric) == ("bad", "sum(", "m")
