"""Warm-up by pod age: the rule, the catastrophe check, and slow starts through the engine,
replay and Judge (seeded simulated rollouts)."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from gatekeeper import engine, replay, simulate, wire
from gatekeeper.api.v1 import gatekeeper_pb2 as pb
from gatekeeper.errors import InvalidArgument
from gatekeeper.simulate import Fault, FaultKind, Scenario
from gatekeeper.sources.recorded import from_table
from gatekeeper.spec import AnalysisSpec, load_spec
from gatekeeper.stats import catastrophe, warmup
from gatekeeper.stats.model import (
    HistogramSeries,
    LookPosition,
    MetricData,
    PodCounts,
    RatioSeries,
)
from gatekeeper.stats.results import Decision, Outcome, Verdict

T0 = 1714572000.0
STEP = 30.0
SPEC_TEXT = """
interval: 30s
{warmup}metrics:
  - {{name: error-rate, kind: RATIO, critical: true}}
  - {{name: latency, kind: HISTOGRAM, quantile: 0.99, critical: true}}
"""
#: New canary pods slower (latency x3) and failing more (errors x3) at start, easing to
#: normal over 60-90 s; 400 rps with the canary at 25 %.
SLOW_START = Scenario(
    seconds=900.0,
    step_seconds=STEP,
    rps=400.0,
    canary_weight=0.25,
    warmup_error_factor=3.0,
    warmup_latency_factor=3.0,
)
SEEDS = range(8)


def spec(warmup_text: str = "") -> AnalysisSpec:
    return load_spec(
        SPEC_TEXT.format(warmup=f"warmup: {warmup_text}\n" if warmup_text else ""),
        queries=False,
    )


def slow_start(seed: int, fault: Fault | None = None) -> simulate.Traffic:
    seconds = 60.0 + 30.0 * (seed % 2)  # 60 s and 90 s slow starts
    return simulate.simulate(
        replace(SLOW_START, seed=seed, warmup_seconds=seconds, fault=fault or Fault())
    )


def looks(found: simulate.Traffic, k: int) -> list[MetricData]:
    settings = spec().settings
    metrics = spec().metrics
    ratio, hist = (settings(m) for m in metrics)
    return [
        MetricData(
            ratio,
            RatioSeries(found.baseline.errors[:k].copy(), found.baseline.requests[:k].copy()),
            RatioSeries(found.canary.errors[:k].copy(), found.canary.requests[:k].copy()),
        ),
        MetricData(
            hist,
            HistogramSeries(simulate.BUCKETS.copy(), found.baseline.buckets[:k].copy()),
            HistogramSeries(simulate.BUCKETS.copy(), found.canary.buckets[:k].copy()),
        ),
    ]


def first_final(found: simulate.Traffic, warmup_text: str = "") -> tuple[int, Verdict]:
    """The first look at which the engine PASSes or FAILs (or the last look)."""
    planned = found.scenario.steps
    chosen = spec(warmup_text)
    for k in range(1, planned + 1):
        settings = chosen.judge_settings(look=LookPosition(k, planned), interval_seconds=STEP)
        verdict = engine.judge(looks(found, k), settings)
        if verdict.decision in (Decision.PASS, Decision.FAIL):
            return k, verdict
    return planned, verdict


# --- the rule -----------------------------------------------------------------------------


def test_young_cells_follow_start_times_or_first_samples() -> None:
    served = np.ones((8, 3), dtype=bool)
    served[:2, 2] = False  # the third pod serves from interval 2 on
    young = warmup.young_cells(
        served=served,
        starts=np.array([-1000.0, 45.0, math.nan]),
        interval_seconds=30.0,
        warmup_seconds=120.0,
    )
    assert not young[:, 0].any()  # started long before the grid
    np.testing.assert_array_equal(np.flatnonzero(young[:, 1]), [0, 1, 2, 3, 4, 5])  # < 165 s
    np.testing.assert_array_equal(np.flatnonzero(young[:, 2]), [2, 3, 4, 5])  # from 60 s
    off = warmup.young_cells(
        served=served, starts=np.full(3, math.nan), interval_seconds=30.0, warmup_seconds=0.0
    )
    assert not off.any()


def test_a_split_keeps_every_request_once_and_the_intervals_aligned() -> None:
    pods = PodCounts(
        ("old", "new"),
        bad=np.array([[1.0, 0.0], [2.0, 5.0], [1.0, 1.0], [0.0, 1.0]]),
        total=np.array([[100.0, 0.0], [100.0, 50.0], [100.0, 60.0], [100.0, 70.0]]),
    )
    series = RatioSeries.from_pods(pods)
    parted = warmup.split(
        series, starts={"old": -600.0}, interval_seconds=30.0, warmup_seconds=60.0
    )
    assert isinstance(parted.warm, RatioSeries) and isinstance(parted.young, RatioSeries)
    np.testing.assert_array_equal(parted.young.total, [0.0, 50.0, 60.0, 0.0])
    np.testing.assert_array_equal(parted.warm.total + parted.young.total, series.total)
    np.testing.assert_array_equal(parted.warm.bad + parted.young.bad, series.bad)
    assert (parted.left_out, parted.total) == (110.0, 580.0)
    whole = warmup.split(series, starts={}, interval_seconds=None, warmup_seconds=60.0)
    assert whole.warm is series and whole.young is None


def test_warmup_is_a_spec_duration_and_zero_turns_it_off() -> None:
    assert spec().warmup_seconds == 120.0
    assert spec("90s").warmup_seconds == 90.0
    assert spec("0s").judge_settings().warmup_seconds == 0.0
    with pytest.raises(InvalidArgument) as caught:
        spec("soon")
    [violation] = caught.value.violations
    assert violation.field == "warmup" and "duration" in violation.description


# --- the catastrophe check ----------------------------------------------------------------


def test_the_catastrophe_check_passes_healthy_slow_starts_and_catches_a_crash() -> None:
    """False FAILs of the check at every look of 200 seeded healthy slow starts (x3 errors
    and latency at start): at its level (alpha x 1 % spent over the looks) none is expected."""
    _, share = catastrophe.alpha_split(0.01)
    false_fails = 0
    for seed in range(200):
        found = slow_start(seed)
        for k in range(1, 9):  # the warm-up's looks: its data is all young there
            level = catastrophe.look_level(share, look=LookPosition(k, 30), checks=2)
            data = looks(found, k)
            for metric in data:
                result = catastrophe.check(
                    baseline=metric.baseline, canary=metric.canary, quantile=0.99, level=level
                )
                false_fails += bool(result is not None and result.found)
    assert false_fails == 0
    crash = slow_start(0, Fault(FaultKind.ERRORS, 200.0))
    level = catastrophe.look_level(share, look=LookPosition(1, 30), checks=2)
    caught = catastrophe.check(
        baseline=looks(crash, 1)[0].baseline,
        canary=looks(crash, 1)[0].canary,
        quantile=0.99,
        level=level,
    )
    assert caught is not None and caught.found and "warm-up errors" in caught.detail


def test_a_tail_three_times_the_baselines_is_a_catastrophe() -> None:
    stuck = slow_start(1, Fault(FaultKind.LATENCY, 20.0))
    data = looks(stuck, 2)[1]
    found = catastrophe.check(baseline=data.baseline, canary=data.canary, quantile=0.99, level=1e-6)
    assert found is not None and found.found and "3x the baseline's p99" in found.detail


# --- acceptance through the engine and replay ---------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_a_healthy_slow_start_is_promoted_and_says_what_was_left_out(seed: int) -> None:
    k, verdict = first_final(slow_start(seed))
    assert verdict.decision is Decision.PASS, verdict.summary
    assert k * STEP > 120.0  # only on data served after the warm-up
    assert all("warm-up (pods younger than 120s) left out" in m.reason for m in verdict.metrics)


@pytest.mark.parametrize("seed", SEEDS)
def test_without_warmup_the_slow_start_is_judged(seed: int) -> None:
    k, verdict = first_final(slow_start(seed), "0s")
    assert verdict.decision is Decision.FAIL, verdict.summary
    assert k * STEP <= 120.0  # judged on the slow start itself
    assert not any("warm-up" in m.reason for m in verdict.metrics)


@pytest.mark.parametrize("seed", SEEDS)
def test_a_crash_on_start_rolls_back_within_three_minutes(seed: int) -> None:
    k, verdict = first_final(slow_start(seed, Fault(FaultKind.ERRORS, 200.0)))
    assert verdict.decision is Decision.FAIL
    assert k * STEP <= 180.0
    assert "catastrophe in the canary's warm-up" in verdict.summary
    assert verdict.metrics[0].outcome is Outcome.HIGH


def test_the_first_looks_say_all_data_is_warmup() -> None:
    settings = spec().judge_settings(look=LookPosition(1, 30), interval_seconds=STEP)
    verdict = engine.judge(looks(slow_start(2), 1), settings)
    assert verdict.decision is Decision.INCONCLUSIVE
    assert "all of the baseline's and the canary's data so far is warm-up" in verdict.summary


@pytest.mark.parametrize(
    ("fault", "warmup_text", "expected"),
    [
        (None, "", Decision.PASS),
        (Fault(FaultKind.ERRORS, 200.0), "", Decision.FAIL),
        (None, "0s", Decision.FAIL),
    ],
)
def test_replay_applies_the_same_rule(
    fault: Fault | None, warmup_text: str, expected: Decision
) -> None:
    found = slow_start(3, fault)
    rollout = from_table(simulate.recorded_table(found, start=T0))
    summary = replay.replay_recorded(spec(warmup_text), rollout).summary
    assert summary.decision is expected
    if fault is not None:
        assert summary.decided_after_seconds is not None
        assert summary.decided_after_seconds <= 180.0


# --- Judge over the wire ------------------------------------------------------------------


def _pods(name: str, counts: list[tuple[float, float]]) -> pb.PodSeries:
    return pb.PodSeries(pod=name, counts=[pb.Counts(bad=b, total=t) for b, t in counts])


def test_judge_with_pods_counts_each_pods_first_interval_as_its_start() -> None:
    old = [(1.0, 1000.0)] * 10
    new = [(0.0, 0.0)] * 4 + [(40.0, 400.0)] * 6  # a crashing pod that starts at interval 4
    config = pb.MetricConfig(name="errors", kind=pb.METRIC_KIND_RATIO)
    metric = pb.Metric(
        config=config,
        baseline=pb.Series(pods=[_pods("b-0", old)]),
        canary=pb.Series(pods=[_pods("c-0", old), _pods("c-1", new)]),
    )
    request = pb.JudgeRequest(metrics=[metric], interval_seconds=30.0)
    found = wire.judge_input(request)
    assert found.settings.warmup_seconds == warmup.DEFAULT_WARMUP_SECONDS
    verdict = engine.judge(found.metrics, found.settings)
    assert verdict.decision is Decision.FAIL
    assert "left out: 5,600 of 12,400 canary" in verdict.metrics[0].reason
    bare = pb.JudgeRequest(
        metrics=[pb.Metric(config=config, baseline=pb.Series(counts=[pb.Counts(bad=1, total=9)]))],
        interval_seconds=30.0,
    )
    assert wire.judge_input(bare).settings.warmup_seconds == 0.0
