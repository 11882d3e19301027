"""The oracle SPRT (benchmarks/oracle.py) on cases whose answers are known.

Wald's identity gives the expected sample number exactly up to the overshoot, and the
change of measure gives the false-FAIL rate at the boundary up to the same overshoot, so
both are checked between rigorous bounds on seeded Bernoulli streams; the 34-look rollout
of the benchmark is checked against the 99 % binomial bound of its level.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from benchmarks import oracle

BOUNDARY = 1.2  #: the default FAIL boundary, 1 + tolerance


def kl_bernoulli(p: float, q: float) -> float:
    """Kullback-Leibler divergence of Bernoulli(p) from Bernoulli(q), per observation."""
    return p * math.log(p / q) + (1 - p) * math.log((1 - p) / (1 - q))


def stopping_looks(paths: np.ndarray, alpha: float) -> np.ndarray:
    """The SPRT's stopping look of every row of per-look increments (0: never)."""
    return np.array([oracle.sprt(increments=row, alpha=alpha).look or 0 for row in paths])


def bernoulli_ratio_paths(
    rng: np.random.Generator, *, ratio: float, runs: int, looks: int
) -> np.ndarray:
    """Ratio-SPRT increments on streams of one bad event per look, equal traffic per side.

    With as many requests on both sides, the bad event is the canary's with probability
    ``ratio / (ratio + 1)``: a Bernoulli stream.
    """
    canary = (rng.random((runs, looks)) < ratio / (ratio + 1)).astype(float)
    ones = np.ones_like(canary)
    return np.vstack(
        [
            oracle.ratio_llr(
                baseline_bad=1 - row,
                baseline_total=ones[0],
                canary_bad=row,
                canary_total=ones[0],
                boundary=BOUNDARY,
                ratio=3.0,
            )
            for row in canary
        ]
    )


# --- exact values -------------------------------------------------------------------------


def test_ratio_llr_is_the_conditional_binomial_ratio() -> None:
    found = oracle.ratio_llr(
        baseline_bad=[10, 0, 4, 5],
        baseline_total=[1000, 1000, 0, 1000],
        canary_bad=[3, 0, 1, 0],
        canary_total=[100, 100, 100, 0],
        boundary=BOUNDARY,
        ratio=3.0,
    )
    p0, p1 = 0.12 / 1.12, 0.3 / 1.3  # w = 100 / 1000
    expected = 3 * math.log(p1 / p0) + 10 * math.log((1 - p1) / (1 - p0))
    assert found[0] == pytest.approx(expected, rel=1e-12)
    # no bad event, no baseline requests, no canary requests: no information on the ratio
    assert found[1:].tolist() == [0.0, 0.0, 0.0]


def test_ratio_llr_without_baseline_errors_rewards_every_canary_error() -> None:
    # the sparse family: the true baseline rate is 0, so every bad event is the canary's
    found = oracle.ratio_llr(
        baseline_bad=[0, 0],
        baseline_total=[950, 950],
        canary_bad=[1, 2],
        canary_total=[50, 50],
        boundary=BOUNDARY,
        ratio=math.inf,
    )
    per_error = math.log(1 + 1 / (BOUNDARY * 50 / 950))
    assert found == pytest.approx([per_error, 2 * per_error], rel=1e-12)


def test_tail_llr_is_the_binomial_ratio() -> None:
    found = oracle.tail_llr(
        canary_above=[3, 0], canary_total=[100, 50], boundary_share=0.01, share=0.03
    )
    assert found[0] == pytest.approx(3 * math.log(3) + 97 * math.log(0.97 / 0.99), rel=1e-12)
    assert found[1] == pytest.approx(50 * math.log(0.97 / 0.99), rel=1e-12)


def test_an_alternative_inside_the_boundary_is_no_evidence_of_harm() -> None:
    # a canary without bad events: against r = 0.5 it would look like a "regression"
    inside = oracle.ratio_llr(
        baseline_bad=[20, 20],
        baseline_total=[1000, 1000],
        canary_bad=[0, 0],
        canary_total=[1000, 1000],
        boundary=BOUNDARY,
        ratio=[0.5, BOUNDARY],
    )
    assert inside.tolist() == [0.0, 0.0]
    tail = oracle.tail_llr(
        canary_above=[0, 0], canary_total=[1000, 1000], boundary_share=0.01, share=0.005
    )
    assert tail.tolist() == [0.0, 0.0]
    assert oracle.sprt(increments=tail, alpha=0.005).look is None


def test_a_leak_starting_inside_the_boundary_hardly_ever_fails_a_better_canary() -> None:
    """Alternatives from 0.2x to 5x; the canary truly at half the baseline's rate."""
    rng = np.random.default_rng(21)
    runs, looks = 2000, 34
    ratio = np.linspace(0.2, 5.0, looks)
    total = np.full(looks, 2000.0)
    fails = 0
    for _ in range(runs):
        increments = oracle.ratio_llr(
            baseline_bad=rng.binomial(2000, 0.01, looks),
            baseline_total=total,
            canary_bad=rng.binomial(2000, 0.005, looks),
            canary_total=total,
            boundary=BOUNDARY,
            ratio=ratio,
        )
        fails += oracle.sprt(increments=increments, alpha=0.05).failed
    assert fails <= 0.05 * runs / 10


@pytest.mark.parametrize(
    ("boundary_share", "share", "name"), [(0.01, 1.0, "share"), (0.0, 0.5, "boundary_share")]
)
def test_tail_llr_names_a_share_outside_the_unit_interval(
    boundary_share: float, share: float, name: str
) -> None:
    with pytest.raises(ValueError, match=f"^{name} must be in"):
        oracle.tail_llr(
            canary_above=[1], canary_total=[10], boundary_share=boundary_share, share=share
        )


def test_ratio_llr_names_a_bad_ratio() -> None:
    with pytest.raises(ValueError, match="ratio must be >= 0"):
        oracle.ratio_llr(
            baseline_bad=[1],
            baseline_total=[10],
            canary_bad=[1],
            canary_total=[10],
            boundary=BOUNDARY,
            ratio=[math.nan],
        )


def test_sprt_stops_at_the_first_look_reaching_log_one_over_alpha() -> None:
    found = oracle.sprt(increments=[1.0, 1.0, -0.5, 1.0, 1.0], alpha=math.exp(-2.2))
    assert found.look == 4 and found.failed
    assert found.llr.tolist() == [1.0, 2.0, 1.5, 2.5, 3.5]
    never = oracle.sprt(increments=[1.0, 1.0, -0.5], alpha=math.exp(-2.2))
    assert never.look is None and not never.failed
    with pytest.raises(ValueError, match="alpha"):
        oracle.sprt(increments=[1.0], alpha=0.0)


def test_metric_alpha_is_holms_first_level() -> None:
    assert oracle.metric_alpha(alpha=0.01, metrics=2) == pytest.approx(0.005)
    assert oracle.metric_alpha(alpha=0.01, metrics=1) == pytest.approx(0.01)
    with pytest.raises(ValueError, match="metrics"):
        oracle.metric_alpha(alpha=0.01, metrics=0)


# --- Wald's expected sample number ----------------------------------------------------------


def test_expected_sample_number_matches_walds_identity_on_bernoulli_streams() -> None:
    """E[N] lies between a / KL and (a + largest step) / KL (Wald's identity, E S_N = KL E N)."""
    alpha, runs = 0.005, 2000
    looks = stopping_looks(
        bernoulli_ratio_paths(np.random.default_rng(16), ratio=3.0, runs=runs, looks=1500), alpha
    )
    assert np.all(looks > 0)  # at the alternative every stream stops (drift > 0)
    p0, p1 = BOUNDARY / (BOUNDARY + 1), 3.0 / 4.0
    kl = kl_bernoulli(p1, p0)
    a = math.log(1 / alpha)
    low, high = a / kl, (a + math.log(p1 / p0)) / kl  # Wald's approximation and the overshoot
    error = 3 * looks.std() / math.sqrt(runs)
    assert low - error <= looks.mean() <= high + error
    assert low == pytest.approx(59.3, abs=0.1)  # about 59 bad events at a x3


def test_expected_sample_number_of_the_tail_sprt() -> None:
    """The same for one request per look, 3 % above the threshold against 1 %."""
    alpha, runs, p0, p1 = 0.005, 1000, 0.01, 0.03
    above = (np.random.default_rng(17).random((runs, 3000)) < p1).astype(float)
    ones = np.ones(above.shape[1])
    paths = np.vstack(
        [
            oracle.tail_llr(canary_above=row, canary_total=ones, boundary_share=p0, share=p1)
            for row in above
        ]
    )
    looks = stopping_looks(paths, alpha)
    assert np.all(looks > 0)
    kl = kl_bernoulli(p1, p0)
    a = math.log(1 / alpha)
    error = 3 * looks.std() / math.sqrt(runs)
    assert a / kl - error <= looks.mean() <= (a + math.log(p1 / p0)) / kl + error


# --- false FAILs at the boundary ------------------------------------------------------------


def test_false_fail_rate_at_the_boundary_between_its_bounds() -> None:
    """P0(FAIL) = alpha E1[exp(-(S_N - a))], so alpha exp(-largest step) <= P0(FAIL) <= alpha."""
    alpha, runs = 0.05, 4000
    paths = bernoulli_ratio_paths(np.random.default_rng(18), ratio=BOUNDARY, runs=runs, looks=1000)
    fails = int(np.count_nonzero(stopping_looks(paths, alpha)))
    step = math.log((3.0 / 4.0) / (BOUNDARY / (BOUNDARY + 1)))
    low = stats.binom.ppf(0.005, runs, alpha * math.exp(-step))
    high = stats.binom.ppf(0.995, runs, alpha)
    assert low <= fails <= high


def rollout_paths(rng: np.random.Generator, *, ratio: float, runs: int) -> np.ndarray:
    """34 looks of a canary at 5 % weight of 100 rps, baseline error rate 1 %."""
    looks, rate = 34, 0.01
    b_total = rng.poisson(0.95 * 100 * 30, (runs, looks)).astype(float)
    c_total = rng.poisson(0.05 * 100 * 30, (runs, looks)).astype(float)
    b_bad = rng.binomial(b_total.astype(int), rate).astype(float)
    c_bad = rng.binomial(c_total.astype(int), rate * ratio).astype(float)
    return np.vstack(
        [
            oracle.ratio_llr(
                baseline_bad=b_bad[i],
                baseline_total=b_total[i],
                canary_bad=c_bad[i],
                canary_total=c_total[i],
                boundary=BOUNDARY,
                ratio=3.0,
            )
            for i in range(runs)
        ]
    )


def test_rollouts_at_the_boundary_fail_within_alpha_and_at_x3_mostly_fail() -> None:
    runs = 2000
    alpha = oracle.metric_alpha(alpha=0.01, metrics=2)
    at_boundary = stopping_looks(
        rollout_paths(np.random.default_rng(19), ratio=BOUNDARY, runs=runs), alpha
    )
    assert np.count_nonzero(at_boundary) <= stats.binom.ppf(0.99, runs, alpha)
    at_x3 = stopping_looks(rollout_paths(np.random.default_rng(20), ratio=3.0, runs=500), alpha)
    assert np.count_nonzero(at_x3) >= 0.9 * at_x3.size
