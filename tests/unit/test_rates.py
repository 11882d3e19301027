"""Stratification, overdispersion and the absolute-tolerance score test of RATIO metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gatekeeper.stats import rates
from gatekeeper.stats.model import RatioSeries


def series(bad: list[float], total: list[float]) -> RatioSeries:
    return RatioSeries(bad=np.asarray(bad, float), total=np.asarray(total, float))


def test_a_burst_hitting_both_sides_while_the_canary_weight_changes_does_not_bias_the_ratio() -> (
    None
):
    # Interval 1: canary at 5 %, quiet. Interval 2: canary at 50 % during an error burst on both.
    baseline = series([10, 500], [9500, 5000])
    canary = series([0.5, 500], [500, 5000])
    counts = rates.stratify(baseline=baseline, canary=canary)
    stratified = rates.rate_ratio_interval(counts=counts, alpha_lower=0.01, alpha_upper=0.01)
    pooled_ratio = (500.5 / 5500) / (510 / 14500)
    assert pooled_ratio > 2.5  # what pooling both intervals would claim
    assert stratified.ratio == pytest.approx(1.0, abs=0.05)
    assert stratified.lower < 1.2


def test_dispersion_is_one_for_binomial_splits_and_larger_for_clustered_ones() -> None:
    rng = np.random.default_rng(3)
    total = np.full(40, 1000.0)
    calm = rates.stratify(
        baseline=RatioSeries(rng.binomial(1000, 0.01, 40).astype(float), total),
        canary=RatioSeries(rng.binomial(1000, 0.01, 40).astype(float), total),
    )
    assert calm.dispersion < 1.6
    clustered_rates = 0.01 * np.exp(rng.normal(0, 0.8, 40))
    clustered = rates.stratify(
        baseline=RatioSeries(rng.binomial(1000, 0.01, 40).astype(float), total),
        canary=RatioSeries(rng.binomial(1000, clustered_rates).astype(float), total),
    )
    assert clustered.dispersion > 2.0


def test_intervals_without_traffic_on_one_side_are_left_out() -> None:
    counts = rates.stratify(
        baseline=series([1, 2, 3], [100, 0, 100]), canary=series([1, 0, 1], [10, 10, 0])
    )
    assert counts.pooled_bad.tolist() == [2.0]
    assert counts.canary_total == 10.0


def test_no_events_leave_the_ratio_unbounded() -> None:
    counts = rates.stratify(baseline=series([0], [1000]), canary=series([0], [100]))
    result = rates.rate_ratio_interval(counts=counts, alpha_lower=0.05, alpha_upper=0.05)
    assert math.isnan(result.ratio) and result.lower == 0 and math.isinf(result.upper)
    assert rates.rate_ratio_pvalue(counts=counts, ratio=1.2, alternative="greater") == 1.0
    assert rates.rate_ratio_pvalue(counts=counts, ratio=1.2, alternative="less") == 1.0


def test_canary_only_errors_give_a_finite_lower_and_an_infinite_upper_bound() -> None:
    counts = rates.stratify(baseline=series([0], [100_000]), canary=series([30], [10_000]))
    result = rates.rate_ratio_interval(counts=counts, alpha_lower=0.01, alpha_upper=0.2)
    assert 5 < result.lower < math.inf and math.isinf(result.upper)


def test_rate_difference_score_test_centres_on_the_boundary() -> None:
    counts = rates.stratify(baseline=series([100], [100_000]), canary=series([22], [10_000]))
    # canary 0.22 % vs boundary 1.2 * 0.1 % + 0.1 % = 0.22 %: z = 0
    found = rates.rate_difference_test(counts=counts, factor=1.2, offset=0.001)
    assert found.z == pytest.approx(0.0, abs=1e-9)
    assert found.p_greater == pytest.approx(0.5)


def test_rate_difference_handles_zero_counts_and_negative_offsets() -> None:
    zero = rates.stratify(baseline=series([0], [10_000]), canary=series([0], [10_000]))
    up = rates.rate_difference_test(counts=zero, factor=1.2, offset=0.001)
    assert up.p_less < 0.01  # zero errors in 10,000: confidently below 0.1 %
    down = rates.rate_difference_test(counts=zero, factor=0.8, offset=-0.001)
    assert down.p_greater < 0.01
    assert math.isfinite(down.z)


@pytest.mark.parametrize(
    ("argument", "call"),
    [
        (
            "alpha_lower",
            lambda c: rates.rate_ratio_interval(counts=c, alpha_lower=0, alpha_upper=0.1),
        ),
        ("alternative", lambda c: rates.rate_ratio_pvalue(counts=c, ratio=1, alternative="up")),
        ("ratio", lambda c: rates.rate_ratio_pvalue(counts=c, ratio=-1, alternative="less")),
        ("factor", lambda c: rates.rate_difference_test(counts=c, factor=0, offset=0)),
    ],
)
def test_validation_names_the_argument(argument: str, call) -> None:  # type: ignore[no-untyped-def]
    counts = rates.stratify(baseline=series([1], [100]), canary=series([1], [100]))
    with pytest.raises(ValueError, match=argument):
        call(counts)


def test_mismatched_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match="same intervals"):
        rates.stratify(baseline=series([1, 1], [10, 10]), canary=series([1], [10]))
