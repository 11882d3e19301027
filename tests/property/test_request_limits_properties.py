"""Fuzzing the request limits of issue 19 at the wire: each is exact, and nothing leaks past.

Whatever the histogram counts, names, magnitudes, weights, metric counts or spec nesting,
validation answers with :class:`InvalidArgument` naming the field, or the judge gives a
verdict with a finite score; never another exception.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gatekeeper import engine, limits, wire
from gatekeeper.api.v1 import gatekeeper_pb2 as pb
from gatekeeper.errors import InvalidArgument
from gatekeeper.spec import load_spec

FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
BOUNDS = [0.05, 0.1, 0.5, 1.0, math.inf]


def judged_or_refused(request: pb.JudgeRequest, **options: int) -> dict[str, str] | None:
    """The violations, or None after checking that the verdict's score is finite."""
    try:
        judged = wire.judge_input(request, **options)
    except InvalidArgument as error:
        return {v.field: v.description for v in error.violations}
    verdict = engine.judge(judged.metrics, judged.settings)
    assert math.isfinite(verdict.score)
    return None


bucket_counts = st.lists(st.integers(0, 10_000).map(float), min_size=5, max_size=5)


@FAST
@given(st.lists(bucket_counts, min_size=1, max_size=4), st.lists(bucket_counts, min_size=1))
def test_histogram_counts_are_refused_exactly_when_some_bucket_decreases(
    baseline: list[list[float]], canary: list[list[float]]
) -> None:
    canary = (canary * 4)[: len(baseline)]
    request = pb.JudgeRequest()
    metric = request.metrics.add()
    metric.config.name = "latency"
    metric.config.kind = pb.METRIC_KIND_HISTOGRAM
    for series, rows in ((metric.baseline, baseline), (metric.canary, canary)):
        for counts in rows:
            series.histograms.add(upper_bounds=BOUNDS, counts=counts)
    found = judged_or_refused(request) or {}
    for side, rows in (("baseline", baseline), ("canary", canary)):
        for interval, counts in enumerate(rows):
            drops = np.flatnonzero(np.diff(counts) < 0)
            prefix = f"metrics[0].{side}.histograms[{interval}].counts["
            named = [field for field in found if field.startswith(prefix)]
            if drops.size:
                assert named == [f"{prefix}{drops[0] + 1}]"]
                assert f"interval {interval}" in found[named[0]]
            else:
                assert not named


@FAST
@given(count=st.integers(0, 25), limit=st.integers(1, 20))
def test_the_metric_limit_is_exact(count: int, limit: int) -> None:
    request = pb.JudgeRequest()
    for index in range(count):
        metric = request.metrics.add()
        metric.config.name = f"m{index}"
        metric.config.kind = pb.METRIC_KIND_RATIO
    found = judged_or_refused(request, max_metrics=limit)
    if count > limit:
        assert found is not None and list(found) == ["metrics"]
        assert f"at most {limit} metrics" in found["metrics"]
    elif count:
        assert found is None
    else:
        assert found is not None and "at least one metric" in found["metrics"]


@FAST
@given(first=st.text(max_size=12), second=st.text(max_size=12))
def test_names_are_duplicates_exactly_when_they_look_alike(first: str, second: str) -> None:
    request = pb.JudgeRequest()
    for name in (first, second):
        metric = request.metrics.add()
        metric.config.name = name
        metric.config.kind = pb.METRIC_KIND_RATIO
    found = judged_or_refused(request) or {}
    duplicate = "duplicate metric name" in found.get("metrics[1].config.name", "")
    key = limits.name_key(first)
    assert duplicate == (bool(key.strip()) and key == limits.name_key(second))


magnitudes = st.floats(allow_nan=True, allow_infinity=False, width=64)


@FAST
@given(
    baseline=st.lists(magnitudes, min_size=1, max_size=30),
    canary=st.lists(magnitudes, min_size=1, max_size=30),
    weight=st.floats(min_value=0.0, exclude_min=True, allow_infinity=True, allow_nan=False),
)
def test_values_and_weights_of_any_magnitude_are_refused_or_judged_finitely(
    baseline: list[float], canary: list[float], weight: float
) -> None:
    request = pb.JudgeRequest()
    for index in range(3):
        metric = request.metrics.add()
        metric.config.name = f"v{index}"
        metric.config.kind = pb.METRIC_KIND_VALUES
        metric.config.direction = pb.DIRECTION_EITHER
        metric.config.weight = weight
        metric.baseline.values.extend(baseline)
        metric.canary.values.extend(canary)
    found = judged_or_refused(request)
    huge = any(abs(v) > limits.MAX_VALUE_MAGNITUDE for v in baseline + canary)
    assert (found is not None) == (huge or weight > limits.MAX_WEIGHT)


@pytest.mark.parametrize("depth", [10, 100, 1_000, 10_000, 60_000])
@pytest.mark.parametrize("shape", ["list", "mapping"])
def test_deeply_nested_specs_are_bad_input_at_any_depth(depth: int, shape: str) -> None:
    text = "[" * depth + "]" * depth if shape == "list" else '{"a": ' * depth + "1" + "}" * depth
    with pytest.raises(InvalidArgument):
        load_spec(f'{{"metrics": {text}}}')
