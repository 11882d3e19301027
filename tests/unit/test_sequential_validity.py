"""Validity of repeated looks through the whole judge, counted not timed (issue: sequential).

Each test replays 2,000 seeded rollouts of 20 looks at the tolerance boundary, the worst case
for false FAILs, and counts the rollouts that FAIL at any look. The 99 % binomial bound for
alpha = 0.01 over 2,000 rollouts is qbinom(0.99, 2000, 0.01) = 31. The same looks judged as
independent fixed-sample tests (no Look) exceed it.
"""

from __future__ import annotations

import numpy as np
import pytest

from gatekeeper import engine
from gatekeeper.stats.model import (
    HistogramSeries,
    JudgeSettings,
    LookPosition,
    MetricData,
    MetricSettings,
    RatioSeries,
)
from gatekeeper.stats.results import Decision, MetricKind
from tests import traffic

ROLLOUTS, LOOKS, BOUND = 2000, 20, 31
BOUNDS = np.concatenate((np.geomspace(0.01, 2.0, 60), [np.inf]))


def _fails(metric: MetricSettings, rollout: list[tuple[object, object]]) -> tuple[bool, bool]:
    """(anytime, naive): whether any look FAILs, with and without the Look."""
    anytime = naive = False
    for k, (baseline, canary) in enumerate(rollout, start=1):
        data = [MetricData(metric, baseline, canary)]  # type: ignore[arg-type]
        look = JudgeSettings(look=LookPosition(index=k, planned=LOOKS))
        anytime = anytime or engine.judge(data, look).decision is Decision.FAIL
        naive = naive or engine.judge(data, JudgeSettings()).decision is Decision.FAIL
        if anytime and naive:
            break
    return anytime, naive


def _count(metric: MetricSettings, rollouts: object) -> tuple[int, int]:
    anytime = naive = 0
    for rollout in rollouts:  # type: ignore[attr-defined]
        a, n = _fails(metric, rollout)
        anytime += a
        naive += n
    return anytime, naive


def _ratio_rollout(i: int) -> list[tuple[RatioSeries, RatioSeries]]:
    rng = np.random.default_rng([7, i])
    b = traffic.pod_counts(
        rng, pods=10, intervals=LOOKS, requests_per_pod=60, error_rate=0.01, sigma=0.5
    )
    c = traffic.pod_counts(
        rng, pods=1, intervals=LOOKS, requests_per_pod=60, error_rate=0.012, sigma=0.5
    )
    return [
        (RatioSeries(b.bad[:k], b.total[:k]), RatioSeries(c.bad[:k], c.total[:k]))
        for k in range(1, LOOKS + 1)
    ]


def _tail_rollout(i: int) -> list[tuple[HistogramSeries, HistogramSeries]]:
    rng = np.random.default_rng([8, i])
    base = [rng.lognormal(np.log(0.05), 0.5, 400) for _ in range(LOOKS)]
    # The canary is the baseline stretched by 1 + tolerance: its p99 sits on the boundary.
    can = [1.2 * rng.lognormal(np.log(0.05), 0.5, 100) for _ in range(LOOKS)]
    b, c = traffic.histograms(base, BOUNDS), traffic.histograms(can, BOUNDS)
    return [
        (HistogramSeries(BOUNDS, b.counts[:k]), HistogramSeries(BOUNDS, c.counts[:k]))
        for k in range(1, LOOKS + 1)
    ]


def _values_rollout(i: int) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng([9, i])
    base = rng.normal(100.0, 10.0, 5 * LOOKS)
    can = rng.normal(120.0, 10.0, 5 * LOOKS)  # shifted by tolerance x baseline median
    return [(base[: 5 * k], can[: 5 * k]) for k in range(1, LOOKS + 1)]


@pytest.mark.slow
def test_rate_ratio_looks() -> None:
    metric = MetricSettings(name="errors", kind=MetricKind.RATIO)
    anytime, naive = _count(metric, (_ratio_rollout(i) for i in range(ROLLOUTS)))
    assert anytime <= BOUND < naive


@pytest.mark.slow
def test_tail_looks() -> None:
    metric = MetricSettings(name="latency", kind=MetricKind.HISTOGRAM)
    anytime, naive = _count(metric, (_tail_rollout(i) for i in range(ROLLOUTS)))
    assert anytime <= BOUND < naive


@pytest.mark.slow
def test_values_looks() -> None:
    metric = MetricSettings(name="p99", kind=MetricKind.VALUES)
    anytime, naive = _count(metric, (_values_rollout(i) for i in range(ROLLOUTS)))
    assert anytime <= BOUND < naive
