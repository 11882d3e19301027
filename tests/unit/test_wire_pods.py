"""Per-pod series on the wire (Series.pods): validation and the derived aggregates."""

from __future__ import annotations

import numpy as np
import pytest

from gatekeeper import wire
from gatekeeper.api.v1 import gatekeeper_pb2 as pb
from gatekeeper.errors import InvalidArgument
from gatekeeper.stats.model import HistogramSeries, RatioSeries


def pod(name: str, counts: list[tuple[float, float]]) -> pb.PodSeries:
    return pb.PodSeries(pod=name, counts=[pb.Counts(bad=b, total=t) for b, t in counts])


def request(
    baseline: pb.Series, canary: pb.Series, kind: int = pb.METRIC_KIND_RATIO
) -> pb.JudgeRequest:
    config = pb.MetricConfig(name="errors", kind=kind)  # type: ignore[arg-type]
    return pb.JudgeRequest(metrics=[pb.Metric(config=config, baseline=baseline, canary=canary)])


def violations(message: pb.JudgeRequest) -> dict[str, str]:
    with pytest.raises(InvalidArgument) as caught:
        wire.judge_input(message)
    return {v.field: v.description for v in caught.value.violations}


GOOD = pb.Series(pods=[pod("b-0", [(1, 100), (2, 100)]), pod("b-1", [(0, 90), (3, 110)])])


def test_ratio_pods_are_kept_and_the_aggregates_derived() -> None:
    canary = pb.Series(pods=[pod("c-0", [(4, 50), (1, 60)])])
    data = wire.judge_input(request(GOOD, canary)).metrics[0]
    assert isinstance(data.baseline, RatioSeries) and data.baseline.pods is not None
    assert data.baseline.pods.names == ("b-0", "b-1")
    np.testing.assert_array_equal(data.baseline.bad, [1, 5])
    np.testing.assert_array_equal(data.baseline.total, [190, 210])
    np.testing.assert_array_equal(data.baseline.pods.bad, [[1, 0], [2, 3]])
    assert isinstance(data.canary, RatioSeries) and data.canary.pods is not None
    assert data.canary.pods.count == 1


@pytest.mark.parametrize(
    ("baseline", "field", "words"),
    [
        (pb.Series(pods=[pod("", [(1, 10)])]), "metrics[0].baseline.pods[0].pod", "required"),
        (
            pb.Series(pods=[pod("a", [(1, 10)]), pod("a", [(1, 10)])]),
            "metrics[0].baseline.pods[1].pod",
            "duplicate pod name 'a'",
        ),
        (
            pb.Series(pods=[pod("a", [(1, 10)]), pod("b", [(1, 10), (1, 10)])]),
            "metrics[0].baseline.pods",
            "same intervals",
        ),
        (
            pb.Series(pods=[pod("a", [(5, 3)])]),
            "metrics[0].baseline.pods[0].counts[0]",
            "bad <= total",
        ),
        (
            pb.Series(counts=[pb.Counts(bad=1, total=10)], pods=[pod("a", [(1, 10)])]),
            "metrics[0].baseline",
            "derived from the pods",
        ),
    ],
)
def test_bad_pods_name_the_field(baseline: pb.Series, field: str, words: str) -> None:
    canary = pb.Series(pods=[pod("c", [(1, 10)])])
    found = violations(request(baseline, canary))
    assert field in found, found
    assert words in found[field]


def test_a_pod_name_may_repeat_across_sides() -> None:
    same = pb.Series(pods=[pod("x", [(1, 10)])])
    data = wire.judge_input(request(same, same)).metrics[0]
    assert isinstance(data.canary, RatioSeries) and data.canary.pods is not None


def test_histogram_and_values_pods_are_added_up() -> None:
    bounds = [0.1, 1.0, float("inf")]
    pods = [
        pb.PodSeries(pod=n, histograms=[pb.Histogram(upper_bounds=bounds, counts=c)])
        for n, c in (("a", [1, 2, 3]), ("b", [4, 4, 5]))
    ]
    data = wire.judge_input(
        request(pb.Series(pods=pods), pb.Series(pods=pods[:1]), pb.METRIC_KIND_HISTOGRAM)
    )
    baseline = data.metrics[0].baseline
    assert isinstance(baseline, HistogramSeries)
    np.testing.assert_array_equal(baseline.counts, [[5, 6, 8]])
    values = [pb.PodSeries(pod=n, values=v) for n, v in (("a", [1.0, 2.0]), ("b", [3.0]))]
    data = wire.judge_input(
        request(pb.Series(pods=values), pb.Series(values=[1.0]), pb.METRIC_KIND_VALUES)
    )
    np.testing.assert_array_equal(np.sort(np.asarray(data.metrics[0].baseline)), [1.0, 2.0, 3.0])


def test_histogram_pods_with_other_bounds_are_bad_input() -> None:
    pods = [
        pb.PodSeries(
            pod="a", histograms=[pb.Histogram(upper_bounds=[1.0, float("inf")], counts=[1, 2])]
        ),
        pb.PodSeries(
            pod="b", histograms=[pb.Histogram(upper_bounds=[2.0, float("inf")], counts=[1, 2])]
        ),
    ]
    found = violations(
        request(pb.Series(pods=pods), pb.Series(pods=pods[:1]), pb.METRIC_KIND_HISTOGRAM)
    )
    assert "same bucket bounds" in found["metrics[0].baseline.pods"]
