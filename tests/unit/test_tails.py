"""Histogram quantiles with Prometheus' semantics, exceedance counts and the tail test."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gatekeeper.stats import tails
from gatekeeper.stats.model import HistogramSeries

INF = math.inf
BOUNDS = np.array([0.1, 0.25, 0.5, 1.0, INF])
CUMULATIVE = np.array([10.0, 50.0, 90.0, 99.0, 100.0])


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        # Prometheus: histogram_quantile(q, ...) over buckets
        # le=0.1:10, 0.25:50, 0.5:90, 1:99, +Inf:100
        (0.05, 0.05),  # rank 5 in the first bucket, which starts at 0
        (0.5, 0.25),  # rank 50 is the top of bucket (0.1, 0.25]
        (0.7, 0.375),  # rank 70: 0.25 + 0.25 * 20/40
        (0.99, 1.0),
        (0.995, 1.0),  # rank in the +Inf bucket: the largest finite bound
        (0.0, 0.0),
    ],
)
def test_histogram_quantile_follows_prometheus(q: float, expected: float) -> None:
    found = tails.histogram_quantile(q=q, upper_bounds=BOUNDS, cumulative=CUMULATIVE)
    assert found == pytest.approx(expected)


def test_histogram_quantile_edge_cases() -> None:
    assert math.isnan(tails.histogram_quantile(q=0.5, upper_bounds=BOUNDS, cumulative=np.zeros(5)))
    negative = np.array([-1.0, 0.0, 1.0, INF])
    assert (
        tails.histogram_quantile(
            q=0.1, upper_bounds=negative, cumulative=np.array([5.0, 5, 10, 10])
        )
        == -1.0
    )
    with pytest.raises(ValueError, match="q must be in"):
        tails.histogram_quantile(q=1.5, upper_bounds=BOUNDS, cumulative=CUMULATIVE)


def test_exceedance_interpolates_in_the_bucket_and_is_honest_about_the_inf_bucket() -> None:
    inside = tails.exceedance(threshold=0.375, upper_bounds=BOUNDS, cumulative=CUMULATIVE)
    assert inside.surely == inside.possibly == pytest.approx(30.0)
    assert (inside.bucket_start, inside.bucket_end) == (0.25, 0.5)
    beyond = tails.exceedance(threshold=2.0, upper_bounds=BOUNDS, cumulative=CUMULATIVE)
    assert beyond.surely == 0.0 and beyond.possibly == 1.0


def test_quantile_and_exceedance_are_inverse() -> None:
    for q in (0.2, 0.6, 0.93):
        value = tails.histogram_quantile(q=q, upper_bounds=BOUNDS, cumulative=CUMULATIVE)
        above = tails.exceedance(threshold=value, upper_bounds=BOUNDS, cumulative=CUMULATIVE)
        assert above.surely == pytest.approx((1 - q) * 100)


def test_merge_adds_intervals_and_repairs_non_monotone_buckets() -> None:
    series = HistogramSeries(BOUNDS, np.array([[1, 3, 2, 4, 4], [0, 1, 1, 1, 1]], dtype=float))
    merged = tails.merge(series)
    assert merged.cumulative.tolist() == [1, 4, 4, 5, 5]
    assert merged.count == 5


def _merged(samples: np.ndarray, per_interval: int = 10) -> tails.MergedHistogram:
    bounds = np.array([0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, INF])
    rows = np.array_split(samples, per_interval)
    counts = np.array([[np.count_nonzero(r <= b) for b in bounds] for r in rows], dtype=float)
    return tails.merge(HistogramSeries(bounds, counts))


def test_tail_test_p_values_point_the_right_way() -> None:
    rng = np.random.default_rng(5)
    baseline = _merged(rng.lognormal(np.log(0.05), 0.6, 50_000))
    same = _merged(rng.lognormal(np.log(0.05), 0.6, 5_000))
    slower = _merged(rng.lognormal(np.log(0.05), 0.6, 5_000) * 1.8)
    q_base = tails.histogram_quantile(
        q=0.99, upper_bounds=baseline.upper_bounds, cumulative=baseline.cumulative
    )
    threshold = q_base * 1.2
    healthy = tails.tail_test(baseline=baseline, canary=same, q=0.99, threshold=threshold)
    broken = tails.tail_test(baseline=baseline, canary=slower, q=0.99, threshold=threshold)
    assert healthy.p_less < healthy.p_greater
    assert healthy.p_greater > 0.5
    assert broken.p_greater < 1e-6
    assert healthy.design_effect >= 1.1  # carries the baseline's own uncertainty (N_c / N_b)


def test_scale_projects_more_data_at_the_same_shares() -> None:
    rng = np.random.default_rng(6)
    baseline = _merged(rng.lognormal(np.log(0.05), 0.6, 20_000))
    canary = _merged(rng.lognormal(np.log(0.05), 0.6, 200))
    threshold = 1.2 * tails.histogram_quantile(
        q=0.99, upper_bounds=baseline.upper_bounds, cumulative=baseline.cumulative
    )
    now = tails.tail_test(baseline=baseline, canary=canary, q=0.99, threshold=threshold)
    later = tails.tail_test(
        baseline=baseline, canary=canary, q=0.99, threshold=threshold, scale=20.0
    )
    assert later.p_less < now.p_less


def test_histogram_mean_from_midpoints() -> None:
    merged = tails.merge(HistogramSeries(np.array([1.0, 2.0, INF]), np.array([[2.0, 4.0, 4.0]])))
    assert tails.histogram_mean(merged) == pytest.approx((2 * 0.5 + 2 * 1.5) / 4)


def test_fine_buckets_let_a_healthy_canary_show_it_is_inside() -> None:
    rng = np.random.default_rng(8)
    bounds = np.concatenate((np.geomspace(0.005, 2.0, 40), [INF]))

    def merged(samples: np.ndarray) -> tails.MergedHistogram:
        rows = np.array_split(samples, 10)
        counts = np.array([[np.count_nonzero(r <= b) for b in bounds] for r in rows], dtype=float)
        return tails.merge(HistogramSeries(bounds, counts))

    baseline = merged(rng.lognormal(np.log(0.05), 0.6, 100_000))
    canary = merged(rng.lognormal(np.log(0.05), 0.6, 20_000))
    q_base = tails.histogram_quantile(q=0.99, upper_bounds=bounds, cumulative=baseline.cumulative)
    found = tails.tail_test(baseline=baseline, canary=canary, q=0.99, threshold=1.2 * q_base)
    assert found.p_less < 0.01
