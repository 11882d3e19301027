"""False FAILs under pod noise, counted (issue 16, item 3): 3 canary pods against 5 baseline pods.

Each scenario replays seeded rollouts of 34 looks (200 requests per pod and interval, a 2 %
baseline error rate) and counts those whose RATIO metric FAILs at any look (one metric:
Holm's level is alpha). Every count must stay within the 99 % binomial bound of alpha.
Rollouts: 1,000 a scenario, not 2,000, so that the file costs about 70 s of CPU on a shared
machine; the bound is then qbinom(0.99, 1000, 0.01) = 18 (1.8 %), against 31 of 2,000
(1.55 %).

- per-(pod, interval) log-normal noise, sigma 0.5 and 1.0, the canary at the FAIL boundary
  (1.2x the baseline's error rate);
- persistent per-pod effects, sigma 0.3 and 0.5, A/A (the same version on both sides).

Measured when written: 0, 11, 1 and 10 false FAILs of 1,000. The same rollouts judged on
the per-interval aggregates alone (no ``pods``: dispersion from the canary/baseline splits,
no between-pod floor) FAIL 24, 126, 40 and 129 times: the pods are what makes the
guarantee hold.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from gatekeeper.stats import classify
from gatekeeper.stats.model import LookPosition, MetricData, MetricSettings, PodCounts, RatioSeries
from gatekeeper.stats.results import MetricKind
from tests import traffic

ROLLOUTS, LOOKS, ALPHA = 1000, 34, 0.01
BOUND = int(stats.binom.ppf(0.99, ROLLOUTS, ALPHA))
METRIC = MetricSettings(name="errors", kind=MetricKind.RATIO)


def _first(series: RatioSeries, looks: int, *, pods: bool) -> RatioSeries:
    table = series.pods
    assert table is not None
    cut = PodCounts(table.names, table.bad[:looks], table.total[:looks])
    whole = RatioSeries.from_pods(cut)
    return whole if pods else RatioSeries(whole.bad, whole.total)


def _fails(baseline: RatioSeries, canary: RatioSeries, *, pods: bool) -> bool:
    for k in range(1, LOOKS + 1):
        data = MetricData(METRIC, _first(baseline, k, pods=pods), _first(canary, k, pods=pods))
        looks = classify.Looks(position=LookPosition(index=k, planned=LOOKS), alpha=ALPHA)
        if classify.tested(data, looks=looks).p_fail <= ALPHA:
            return True
    return False


def _count(seed: int, *, sigma: float, pod_sigma: float, ratio: float, pods: bool) -> int:
    fails = 0
    for i in range(ROLLOUTS):
        rng = np.random.default_rng([seed, i])
        sides = [
            traffic.pod_table(
                rng,
                pods=n,
                intervals=LOOKS,
                requests_per_pod=200,
                error_rate=0.02 * factor,
                sigma=sigma,
                pod_sigma=pod_sigma,
                prefix=name,
            )
            for name, n, factor in (("baseline", 5, 1.0), ("canary", 3, ratio))
        ]
        fails += _fails(*sides, pods=pods)
    return fails


@pytest.mark.slow
@pytest.mark.parametrize("sigma", [0.5, 1.0])
def test_interval_noise_at_the_fail_boundary(sigma: float) -> None:
    fails = _count(160, sigma=sigma, pod_sigma=0.0, ratio=1.2, pods=True)
    assert fails <= BOUND, f"{fails} of {ROLLOUTS} rollouts FAILed, bound {BOUND}"


@pytest.mark.slow
@pytest.mark.parametrize("pod_sigma", [0.3, 0.5])
def test_persistent_pod_effects_a_a(pod_sigma: float) -> None:
    fails = _count(161, sigma=0.0, pod_sigma=pod_sigma, ratio=1.0, pods=True)
    assert fails <= BOUND, f"{fails} of {ROLLOUTS} rollouts FAILed, bound {BOUND}"
