"""Anytime-valid p-values and bounds (sequential.py), and the spending of VALUES looks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gatekeeper.stats import rates, sequential
from gatekeeper.stats.model import RatioSeries


def counts(canary: tuple[float, float], baseline: tuple[float, float]) -> rates.StratifiedCounts:
    return rates.stratify(
        baseline=RatioSeries(np.array([baseline[0]]), np.array([baseline[1]])),
        canary=RatioSeries(np.array([canary[0]]), np.array([canary[1]])),
    )


def test_spending_sums_to_at_most_alpha() -> None:
    assert (
        sum(sequential.look_alpha(alpha=0.01, index=k, planned=20) for k in range(1, 500)) <= 0.01
    )
    assert (
        sum(sequential.look_alpha(alpha=0.01, index=k, planned=0) for k in range(1, 5000)) <= 0.01
    )
    with pytest.raises(ValueError, match="index"):
        sequential.look_alpha(alpha=0.01, index=0, planned=3)


def test_ratio_p_values_grow_with_evidence_and_stay_in_range() -> None:
    weak = sequential.ratio_pvalue(
        counts=counts((6, 1000), (40, 10_000)), ratio=1.2, alternative="greater"
    )
    strong = sequential.ratio_pvalue(
        counts=counts((60, 1000), (40, 10_000)), ratio=1.2, alternative="greater"
    )
    assert 0 <= strong < weak <= 1
    assert strong < 1e-6
    none = sequential.ratio_pvalue(
        counts=counts((0, 1000), (0, 10_000)), ratio=1.2, alternative="less"
    )
    assert none == 1.0


def test_anytime_p_values_are_more_conservative_than_fixed_sample_ones() -> None:
    data = counts((15, 1000), (60, 10_000))
    fixed = rates.rate_ratio_pvalue(counts=data, ratio=1.2, alternative="greater")
    anytime = sequential.ratio_pvalue(counts=data, ratio=1.2, alternative="greater")
    assert fixed < anytime


def test_binomial_p_values() -> None:
    assert (
        sequential.binomial_pvalue(successes=50, trials=1000, p0=0.01, alternative="greater") < 1e-8
    )
    assert (
        sequential.binomial_pvalue(successes=10, trials=1000, p0=0.01, alternative="greater") == 1.0
    )
    assert sequential.binomial_pvalue(successes=0, trials=2000, p0=0.01, alternative="less") < 1e-4
    with pytest.raises(ValueError, match="p0"):
        sequential.binomial_pvalue(successes=1, trials=2, p0=1.0, alternative="less")


def test_confidence_sequence_brackets_the_estimate() -> None:
    data = counts((30, 1000), (100, 10_000))
    lower, upper = sequential.ratio_confidence_sequence(
        counts=data, alpha_lower=0.01, alpha_upper=0.2
    )
    assert lower < 3.0 < upper
    fixed = rates.rate_ratio_interval(counts=data, alpha_lower=0.01, alpha_upper=0.2)
    assert lower < fixed.lower and upper > fixed.upper  # wider: valid at every look
    nothing = sequential.ratio_confidence_sequence(
        counts=counts((0, 10), (0, 10)), alpha_lower=0.01, alpha_upper=0.2
    )
    assert nothing == (0.0, math.inf)


def test_mixtures_are_distributions_beyond_the_boundary() -> None:
    for mixture in sequential.MIXTURES.values():
        assert math.isclose(float(np.exp(mixture.log_weights).sum()), 1.0, rel_tol=1e-12)
        assert (mixture.offsets > 0).all()
        assert mixture.offsets.shape == mixture.log_weights.shape
    with pytest.raises(ValueError, match="low"):
        sequential.log_uniform(low=1.0, high=2.0)
    wide = sequential.log_uniform(low=1.05, high=100.0)
    with pytest.raises(ValueError, match="share"):
        sequential.blend(plausible=wide, wide=wide, share=1.0)


@pytest.mark.parametrize("canary_bad", [3, 8, 30, 300])
def test_fail_mixture_never_far_behind_the_wide_one(
    canary_bad: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The blend keeps 20 % on the wide span: at most 5x behind a wide-only e-process."""
    data = counts((canary_bad, 1000), (40, 10_000))
    blended = sequential.ratio_pvalue(counts=data, ratio=1.2, alternative="greater")
    wide = sequential.log_uniform(low=1.05, high=100.0)
    monkeypatch.setitem(sequential.MIXTURES, ("ratio", "fail"), wide)
    alone = sequential.ratio_pvalue(counts=data, ratio=1.2, alternative="greater")
    assert blended <= min(1.0, 5.0 * alone) * (1 + 1e-12)
