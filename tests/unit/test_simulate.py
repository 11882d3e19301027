"""The traffic simulator: step plans, daily curve, bursts, warm-up, slow mode, faults and onsets."""

from __future__ import annotations

import math
from typing import TypedDict

import numpy as np
import pytest

from gatekeeper import simulate
from gatekeeper.simulate import EXAMPLE_PLAN, Fault, FaultKind, Scenario, WeightStep
from gatekeeper.stats.tails import histogram_quantile


class _Busy(TypedDict):
    rps: float
    seconds: float


BUSY: _Busy = {"rps": 400.0, "seconds": 600.0}


def p50(side: simulate.SideTraffic, steps: slice) -> float:
    return histogram_quantile(
        q=0.5, upper_bounds=simulate.BUCKETS, cumulative=side.buckets[steps].sum(axis=0)
    )


def rate(side: simulate.SideTraffic, steps: slice) -> float:
    return float(side.errors[steps].sum() / side.requests[steps].sum())


def test_the_same_scenario_gives_the_same_traffic_and_table() -> None:
    scenario = Scenario(
        plan=EXAMPLE_PLAN, bursts_per_hour=10, warmup_seconds=60, slow_share=0.01, seed=7
    )
    first, again = simulate.simulate(scenario), simulate.simulate(scenario)
    for a, b in ((first.baseline, again.baseline), (first.canary, again.canary)):
        np.testing.assert_array_equal(a.requests, b.requests)
        np.testing.assert_array_equal(a.errors, b.errors)
        np.testing.assert_array_equal(a.buckets, b.buckets)
    assert simulate.recorded_table(first, start=0).equals(simulate.recorded_table(again, start=0))


def test_the_step_plan_sets_the_canary_share() -> None:
    scenario = Scenario(seconds=1200, plan=EXAMPLE_PLAN, rps=200)
    weights = scenario.weights()
    assert weights[:8].tolist() == [0.05] * 8  # 2 min at 15 s steps
    assert weights[8:28].tolist() == [0.25] * 20
    assert weights[28:].tolist() == [0.5] * 52  # the last step holds to the end
    traffic = simulate.simulate(scenario)
    share = traffic.canary.requests / (traffic.canary.requests + traffic.baseline.requests)
    assert share[:8].mean() == pytest.approx(0.05, abs=0.02)
    assert share[40:].mean() == pytest.approx(0.5, abs=0.02)


def test_a_silent_canary_gets_nothing_whatever_the_plan() -> None:
    scenario = Scenario(plan=(WeightStep(0.5, 60),), fault=Fault(FaultKind.SILENT), **BUSY)
    traffic = simulate.simulate(scenario)
    assert traffic.canary.requests.sum() == 0
    assert traffic.baseline.requests.sum() > 0
    table = simulate.recorded_table(traffic, start=0)
    assert set(table["side"]) == {"baseline"}


def test_the_daily_curve_peaks_at_its_hour() -> None:
    scenario = Scenario(seconds=86_400, step_seconds=3600, diurnal_amplitude=0.5, start_hour=0)
    rates = scenario.request_rates()
    assert int(np.argmax(rates)) == 14  # the step 14:00-15:00 has its middle nearest 15:00
    assert rates.max() / rates.min() == pytest.approx(3.0, rel=0.02)


def test_bursts_hit_both_sides_at_the_same_steps() -> None:
    scenario = Scenario(bursts_per_hour=20, burst_factor=30, burst_seconds=60, seed=2, **BUSY)
    traffic = simulate.simulate(scenario)
    factor = simulate._bursts(scenario)
    hit, calm = factor > 15, factor == 1
    assert 0 < hit.sum() < hit.size
    for side in (traffic.baseline, traffic.canary):
        assert rate(side, hit) > 10 * rate(side, calm)  # type: ignore[arg-type]


class _Warm(TypedDict):
    warmup_seconds: float
    warmup_latency_factor: float
    warmup_error_factor: float


def test_new_pods_warm_up_on_the_canary_and_on_a_dedicated_baseline_only() -> None:
    warm: _Warm = {"warmup_seconds": 60.0, "warmup_latency_factor": 3.0, "warmup_error_factor": 4.0}
    traffic = simulate.simulate(Scenario(canary_weight=0.3, seed=4, **warm, **BUSY))
    first, later = slice(0, 2), slice(8, None)
    assert p50(traffic.canary, first) > 1.5 * p50(traffic.canary, later)
    assert rate(traffic.canary, first) > 2 * rate(traffic.canary, later)
    assert p50(traffic.baseline, first) == pytest.approx(p50(traffic.baseline, later), rel=0.1)
    dedicated = simulate.simulate(
        Scenario(canary_weight=0.3, seed=4, dedicated_baseline=True, **warm, **BUSY)
    )
    assert p50(dedicated.baseline, first) > 1.5 * p50(dedicated.baseline, later)
    ratio = dedicated.baseline.requests.sum() / dedicated.canary.requests.sum()
    assert ratio == pytest.approx(1.0, rel=0.05)  # the canary's size and weight


def test_canary_pods_join_as_the_plan_grows_and_warm_up_then() -> None:
    scenario = Scenario(
        seconds=1200,
        plan=EXAMPLE_PLAN,
        pods_canary=4,
        warmup_seconds=60,
        warmup_latency_factor=4.0,
        rps=400,
        seed=5,
    )
    traffic = simulate.simulate(scenario)
    # at 2 min the weight goes 5 % -> 25 %: new pods serve most requests, warming up
    assert p50(traffic.canary, slice(8, 10)) > 1.5 * p50(traffic.canary, slice(4, 8))


def test_the_slow_mode_lifts_the_tail_of_both_sides() -> None:
    plain = simulate.simulate(Scenario(seed=6, **BUSY))
    slow = simulate.simulate(Scenario(seed=6, slow_share=0.02, slow_factor=20, **BUSY))
    everything = slice(None)
    for a, b in ((plain.baseline, slow.baseline), (plain.canary, slow.canary)):
        p99 = histogram_quantile(
            q=0.99, upper_bounds=simulate.BUCKETS, cumulative=b.buckets.sum(axis=0)
        )
        plain_p99 = histogram_quantile(
            q=0.99, upper_bounds=simulate.BUCKETS, cumulative=a.buckets.sum(axis=0)
        )
        assert p99 > 2 * plain_p99
        assert p50(b, everything) == pytest.approx(p50(a, everything), rel=0.1)


@pytest.mark.parametrize(
    ("fault", "early", "late"),
    [
        (Fault(FaultKind.ERRORS, 10.0, onset_seconds=300.0), 1.0, 10.0),
        (Fault(FaultKind.LEAK, 10.0, onset_seconds=300.0), 1.0, 5.5),
        (Fault(FaultKind.SPARSE, 50.0, onset_seconds=300.0), 1.0, math.inf),
    ],
)
def test_faults_start_at_their_onset(fault: Fault, early: float, late: float) -> None:
    error_rate = 0.0 if fault.kind is FaultKind.SPARSE else 0.01
    traffic = simulate.simulate(
        Scenario(fault=fault, error_rate=error_rate, pod_sigma=0.0, seed=8, **BUSY)
    )
    before, after = slice(0, 20), slice(20, None)
    if fault.kind is FaultKind.SPARSE:
        assert traffic.canary.errors[before].sum() == 0
        assert rate(traffic.canary, after) == pytest.approx(50 / 10_000, rel=0.3)
        return
    assert rate(traffic.canary, before) == pytest.approx(early * 0.01, rel=0.3)
    assert rate(traffic.canary, after) == pytest.approx(late * 0.01, rel=0.2)


def test_latency_faults() -> None:
    bulk = simulate.simulate(Scenario(fault=Fault(FaultKind.LATENCY, 2.0), seed=9, **BUSY))
    everything = slice(None)
    assert p50(bulk.canary, everything) == pytest.approx(
        2 * p50(bulk.baseline, everything), rel=0.15
    )
    leak = simulate.simulate(Scenario(fault=Fault(FaultKind.LATENCY_LEAK, 3.0), seed=9, **BUSY))
    assert p50(leak.canary, slice(-5, None)) > 2 * p50(leak.canary, slice(0, 5))
    tail = simulate.simulate(Scenario(fault=Fault(FaultKind.TAIL, 8.0), seed=9, **BUSY))
    assert p50(tail.canary, everything) == pytest.approx(p50(tail.baseline, everything), rel=0.1)
