"""Properties of the whole judge: symmetry of HIGH and LOW, and identical data never FAILs."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gatekeeper import engine
from gatekeeper.stats.model import (
    HistogramSeries,
    JudgeSettings,
    MetricData,
    MetricSettings,
    RatioSeries,
)
from gatekeeper.stats.results import Decision, Direction, MetricKind, Outcome

MIRROR = {Outcome.HIGH: Outcome.LOW, Outcome.LOW: Outcome.HIGH}
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def ratio_series(draw: st.DrawFn, intervals: int) -> RatioSeries:
    total = np.array(draw(st.lists(st.integers(0, 5000), min_size=intervals, max_size=intervals)))
    share = draw(st.floats(0.0, 0.3))
    noise = np.array(draw(st.lists(st.floats(0.0, 2.0), min_size=intervals, max_size=intervals)))
    bad = np.minimum(np.round(total * share * noise), total)
    return RatioSeries(bad=bad.astype(float), total=total.astype(float))


@st.composite
def ratio_pair(draw: st.DrawFn) -> tuple[RatioSeries, RatioSeries]:
    intervals = draw(st.integers(1, 12))
    return draw(ratio_series(intervals)), draw(ratio_series(intervals))


def judge_one(settings_: MetricSettings, baseline: object, canary: object) -> Outcome:
    data = MetricData(settings_, baseline, canary)  # type: ignore[arg-type]
    return engine.judge([data], JudgeSettings()).metrics[0].outcome


def mirrored(outcome: Outcome) -> Outcome:
    return MIRROR.get(outcome, outcome)


@FAST
@given(ratio_pair(), st.floats(0.0, 1.0))
def test_swapping_sides_mirrors_high_and_low_for_rates(
    pair: tuple[RatioSeries, RatioSeries], tolerance: float
) -> None:
    baseline, canary = pair
    either = MetricSettings(
        name="r", kind=MetricKind.RATIO, direction=Direction.EITHER, tolerance=tolerance
    )
    assert judge_one(either, canary, baseline) is mirrored(judge_one(either, baseline, canary))


values_lists = st.lists(
    st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False), min_size=1, max_size=80
)


@FAST
@given(values_lists, values_lists)
def test_swapping_sides_mirrors_high_and_low_for_values(
    baseline: list[float], canary: list[float]
) -> None:
    # Both margins 0: a relative margin is a share of the baseline's median, which the swap
    # changes, so only margins that do not depend on the level mirror exactly.
    either = MetricSettings(
        name="v",
        kind=MetricKind.VALUES,
        direction=Direction.EITHER,
        tolerance=0.0,
        pass_tolerance=0.0,
    )
    b, c = np.array(baseline), np.array(canary)
    assert judge_one(either, c, b) is mirrored(judge_one(either, b, c))


directions = st.sampled_from(list(Direction))


@FAST
@given(ratio_pair(), directions, st.floats(0.0, 1.0), st.floats(0.0, 0.01))
def test_identical_rates_never_fail(
    pair: tuple[RatioSeries, RatioSeries], direction: Direction, tolerance: float, absolute: float
) -> None:
    series = pair[0]
    metric = MetricSettings(
        name="r",
        kind=MetricKind.RATIO,
        direction=direction,
        tolerance=tolerance,
        absolute_tolerance=absolute,
    )
    verdict = engine.judge([MetricData(metric, series, series)], JudgeSettings())
    assert verdict.decision is not Decision.FAIL


@FAST
@given(values_lists, directions, st.floats(0.0, 1.0))
def test_identical_values_never_fail(
    values: list[float], direction: Direction, tolerance: float
) -> None:
    metric = MetricSettings(
        name="v", kind=MetricKind.VALUES, direction=direction, tolerance=tolerance
    )
    sample = np.array(values)
    verdict = engine.judge([MetricData(metric, sample, sample.copy())], JudgeSettings())
    assert verdict.decision is not Decision.FAIL


@FAST
@given(
    st.lists(st.lists(st.integers(0, 400), min_size=6, max_size=6), min_size=1, max_size=8),
    directions,
    st.floats(0.0, 1.0),
    st.sampled_from([0.5, 0.9, 0.99]),
)
def test_identical_histograms_never_fail(
    rows: list[list[int]], direction: Direction, tolerance: float, quantile: float
) -> None:
    bounds = np.array([0.01, 0.05, 0.1, 0.5, 1.0, np.inf])
    cumulative = np.cumsum(np.array(rows, dtype=float), axis=1)
    series = HistogramSeries(bounds, cumulative)
    metric = MetricSettings(
        name="h",
        kind=MetricKind.HISTOGRAM,
        direction=direction,
        tolerance=tolerance,
        quantile=quantile,
    )
    verdict = engine.judge([MetricData(metric, series, series)], JudgeSettings())
    assert verdict.decision is not Decision.FAIL
