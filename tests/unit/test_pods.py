"""Overdispersion from the baseline's pods (gatekeeper.stats.pods) and its use by RATIO."""

from __future__ import annotations

import numpy as np
import pytest

from gatekeeper import engine, wire
from gatekeeper.api.v1 import gatekeeper_pb2 as pb
from gatekeeper.stats import pods, rates, tails
from gatekeeper.stats.model import (
    HistogramSeries,
    JudgeSettings,
    MetricData,
    MetricSettings,
    PodCounts,
    RatioSeries,
)
from gatekeeper.stats.results import MetricKind
from tests import traffic

NAMES = tuple(f"p{j}" for j in range(5))


def _table(bad: np.ndarray, total: np.ndarray) -> PodCounts:
    return PodCounts(tuple(f"p{j}" for j in range(bad.shape[1])), bad, total)


def test_poisson_cells_have_no_overdispersion() -> None:
    rng = np.random.default_rng(1)
    total = np.full((200, 5), 1000.0)
    estimate = pods.pod_dispersion(_table(rng.poisson(5.0, (200, 5)).astype(float), total))
    assert 0.99 <= estimate.phi < 1.15
    assert estimate.phi <= estimate.phi_upper < 1.3
    assert estimate.between < 0.01


def test_scaled_poisson_cells_recover_their_dispersion() -> None:
    """Three times a Poisson count has variance three times its mean: phi = 3."""
    rng = np.random.default_rng(2)
    total = np.full((300, 5), 1000.0)
    bad = 3.0 * rng.poisson(4.0, (300, 5))
    estimate = pods.pod_dispersion(_table(bad, total))
    assert 2.6 < estimate.phi < 3.4
    assert estimate.phi_upper > estimate.phi


def test_one_interval_with_events_still_bounds_phi() -> None:
    """Five pods in one interval give four degrees of freedom: phi is not 1 by default."""
    bad = np.array([[0.0, 0.0, 40.0, 2.0, 1.0]])
    total = np.full((1, 5), 500.0)
    estimate = pods.pod_dispersion(_table(bad, total))
    assert estimate.degrees > 0
    assert estimate.phi > 5.0
    baseline = RatioSeries.from_pods(_table(bad, total))
    canary = RatioSeries(np.array([20.0]), np.array([1500.0]))
    assert rates.stratify(baseline=baseline, canary=canary).dispersion == estimate.phi_upper
    aggregate = rates.stratify(baseline=RatioSeries(baseline.bad, baseline.total), canary=canary)
    assert aggregate.dispersion == 1.0  # what the per-interval splits alone can say


def test_the_upper_bound_narrows_with_more_cells() -> None:
    rng = np.random.default_rng(3)
    widths = []
    for intervals in (3, 30, 300):
        bad = rng.poisson(5.0, (intervals, 5)).astype(float)
        estimate = pods.pod_dispersion(_table(bad, np.full((intervals, 5), 1000.0)))
        widths.append(estimate.phi_upper / estimate.phi)
    assert widths[0] > widths[1] > widths[2] > 1.0


def test_persistent_pod_effects_are_the_between_pod_variance() -> None:
    rng = np.random.default_rng(4)
    found = []
    for _ in range(200):
        series = traffic.pod_table(
            rng, pods=5, intervals=30, requests_per_pod=2000, error_rate=0.02, pod_sigma=0.5
        )
        assert series.pods is not None
        found.append(pods.pod_dispersion(series.pods).between)
    # Variance of a mean-one log-normal multiplier with sigma 0.5: exp(0.25) - 1 = 0.284.
    assert 0.2 < float(np.mean(found)) < 0.36


def test_the_floor_does_not_shrink_with_more_data() -> None:
    rng = np.random.default_rng(5)
    baseline = traffic.pod_table(
        rng, pods=5, intervals=20, requests_per_pod=500, error_rate=0.02, pod_sigma=0.5
    )
    canary = traffic.pod_table(rng, pods=3, intervals=20, requests_per_pod=500, error_rate=0.02)
    counts = rates.stratify(baseline=baseline, canary=canary)
    assert counts.floor > 0 and counts.canary_pods == 3
    more = rates.scaled(counts, 100.0)
    assert _log_variance(more) >= counts.floor > _log_variance(counts) / 100.0


def _log_variance(counts: rates.StratifiedCounts) -> float:
    """The quasi-likelihood variance of log R the dispersion implies."""
    return counts.dispersion * (1 / counts.canary_bad_total + 1 / counts.baseline_bad)


def test_floor_counts_an_unknown_canary_as_one_pod() -> None:
    assert pods.floor_variance(between=0.1, baseline_pods=5, canary_pods=0) == 0.1 * 1.2
    assert pods.floor_variance(between=0.1, baseline_pods=5, canary_pods=3) < 0.1 * 1.2
    assert pods.floor_variance(between=0.0, baseline_pods=5, canary_pods=1) == 0.0


def _reason(canary_pods: int) -> str:
    rng = np.random.default_rng(6)
    baseline = traffic.pod_table(rng, pods=5, intervals=10, requests_per_pod=300, error_rate=0.02)
    canary = traffic.pod_table(
        rng, pods=canary_pods, intervals=10, requests_per_pod=300, error_rate=0.02
    )
    metric = MetricSettings(name="errors", kind=MetricKind.RATIO)
    verdict = engine.judge([MetricData(metric, baseline, canary)], JudgeSettings())
    return verdict.metrics[0].reason


def test_one_canary_pod_cannot_be_told_from_its_version() -> None:
    assert "this pod and this version cannot be told apart" in _reason(1)
    assert "three or more canary pods are recommended" in _reason(1)
    assert "cannot be told apart" not in _reason(3)


BOUNDS = np.array([0.1, 0.5, np.inf])


def _pod_histograms(slow: list[list[float]], count: float = 1000.0) -> HistogramSeries:
    """Cumulative buckets per interval and pod: ``slow[i][j]`` observations above 0.5."""
    share = np.asarray(slow, dtype=float)
    pods = np.stack([0.5 * (count - share), count - share, np.full_like(share, count)], axis=2)
    return HistogramSeries(BOUNDS, pods.sum(axis=1), pods)


def test_tail_dispersion_comes_from_the_baseline_pods() -> None:
    clustered = _pod_histograms([[0, 0, 60, 2, 1]])  # one interval, one pod's slow node
    calm = _pod_histograms([[10, 11, 9, 10, 12]])
    canary = tails.merge(_pod_histograms([[10, 10, 10]]))
    phi = tails.pod_exceedance_dispersion(
        threshold=0.5,
        upper_bounds=BOUNDS,
        pods=tails.merge(clustered).pods,  # type: ignore[arg-type]
    )
    assert phi > 5.0
    test = tails.tail_test(baseline=tails.merge(clustered), canary=canary, q=0.99, threshold=0.5)
    assert test.design_effect == pytest.approx(phi * (1 + 3 / 5))
    quiet = tails.tail_test(baseline=tails.merge(calm), canary=canary, q=0.99, threshold=0.5)
    assert quiet.design_effect < test.design_effect


def test_wire_histogram_pods_reach_the_tail_test() -> None:
    bounds = [0.1, 0.5, float("inf")]
    series = pb.Series(
        pods=[
            pb.PodSeries(pod=f"p{j}", histograms=[pb.Histogram(upper_bounds=bounds, counts=c)])
            for j, c in enumerate(([400, 900, 1000], [450, 950, 1000]))
        ]
    )
    config = pb.MetricConfig(name="latency", kind=pb.METRIC_KIND_HISTOGRAM)
    request = pb.JudgeRequest(metrics=[pb.Metric(config=config, baseline=series, canary=series)])
    baseline = wire.judge_input(request).metrics[0].baseline
    assert isinstance(baseline, HistogramSeries) and baseline.pods is not None
    assert baseline.pods.shape == (1, 2, 3)
    np.testing.assert_array_equal(baseline.counts, [[850, 1850, 2000]])


def test_one_canary_pod_is_named_for_tails_too() -> None:
    rng = np.random.default_rng(7)
    bounds = traffic.PROMETHEUS_BUCKETS

    def side(pod_count: int) -> HistogramSeries:
        per_pod = [
            traffic.histograms([rng.lognormal(np.log(0.05), 0.5, 300) for _ in range(10)], bounds)
            for _ in range(pod_count)
        ]
        table = np.stack([h.counts for h in per_pod], axis=1)
        return HistogramSeries(bounds, table.sum(axis=1), table)

    metric = MetricSettings(name="latency", kind=MetricKind.HISTOGRAM)
    for pod_count, named in ((1, True), (3, False)):
        verdict = engine.judge([MetricData(metric, side(5), side(pod_count))], JudgeSettings())
        assert ("cannot be told apart" in verdict.metrics[0].reason) is named
