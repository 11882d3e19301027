"""Mann-Whitney U and Hodges-Lehmann against published R output, scipy and brute force."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats

from gatekeeper.stats.mann_whitney import hodges_lehmann, mann_whitney_u

# R's ?wilcox.test example (two-sample part).
R_X = [0.80, 0.83, 1.89, 1.04, 1.45, 1.38, 1.91, 1.64, 0.73, 1.46]
R_Y = [1.15, 0.88, 0.90, 0.74, 1.21]

# https://endmemo.com/r/wilcoxon.php (published R output).
ENDMEMO_X = [1, 5, 9, 24, 56, 21, 3, 7, 21, 4]
ENDMEMO_Y = [12, 15, 5, 9, 9, 14, 56, 22, 3, 7, 32, 5]
ENDMEMO_Y2 = [1233, 4356, 987, 39999, 1111, 200000]


def test_r_published_ties_two_sided() -> None:
    # R: wilcox.test(x, y)  ->  W = 51.5, p-value = 0.5966 (with continuity correction)
    result = mann_whitney_u(baseline=ENDMEMO_Y, canary=ENDMEMO_X)
    assert result.u_canary == 51.5
    assert result.method == "asymptotic"
    assert result.p_value == pytest.approx(0.5966, abs=5e-5)


def test_r_published_far_apart() -> None:
    # R: wilcox.test(x, y) with y <- c(1233, 4356, 987, 39999, 1111, 200000)
    #    ->  W = 0, p-value = 0.001364 (normal approximation: x has ties)
    result = mann_whitney_u(baseline=ENDMEMO_Y2, canary=ENDMEMO_X)
    assert result.u_canary == 0.0
    assert result.p_value == pytest.approx(0.001364, abs=5e-7)


@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
def test_r_help_example_exact_matches_scipy(alternative: str) -> None:
    # R: wilcox.test(x, y, alternative = ...)  (the ?wilcox.test example; exact: n < 50, untied)
    expected = stats.mannwhitneyu(R_X, R_Y, alternative=alternative, method="exact")
    result = mann_whitney_u(baseline=R_Y, canary=R_X, alternative=alternative)  # type: ignore[arg-type]
    assert result.method == "exact"
    assert result.u_canary == expected.statistic == 35.0
    assert result.p_value == pytest.approx(expected.pvalue, rel=1e-12)


def test_r_help_example_greater_value() -> None:
    # R: wilcox.test(x, y, alternative = "greater")  ->  W = 35; scipy's exact p-value
    result = mann_whitney_u(baseline=R_Y, canary=R_X, alternative="greater")
    assert result.p_value == pytest.approx(0.1272061272061272, rel=1e-12)


@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
def test_asymptotic_matches_scipy(alternative: str) -> None:
    # R: wilcox.test(x, y, alternative = ..., exact = FALSE, correct = TRUE)
    expected = stats.mannwhitneyu(
        R_X, R_Y, alternative=alternative, method="asymptotic", use_continuity=True
    )
    result = mann_whitney_u(
        baseline=R_Y,
        canary=R_X,
        alternative=alternative,  # type: ignore[arg-type]
        method="asymptotic",
    )
    assert result.p_value == pytest.approx(expected.pvalue, rel=1e-12)


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
def test_random_samples_match_scipy(seed: int, alternative: str) -> None:
    rng = np.random.default_rng(seed)
    n, m = rng.integers(1, 70, size=2)
    baseline = rng.normal(size=n)
    canary = rng.normal(0.3, 1.0, size=m)
    if seed % 3 == 0:  # ties: asymptotic with tie correction
        baseline, canary = np.round(baseline * 2), np.round(canary * 2)
    result = mann_whitney_u(baseline=baseline, canary=canary, alternative=alternative)  # type: ignore[arg-type]
    method = "exact" if result.method == "exact" else "asymptotic"
    expected = stats.mannwhitneyu(canary, baseline, alternative=alternative, method=method)
    assert result.u_canary == expected.statistic
    assert result.p_value == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-15)


def _u_counts_by_enumeration(n: int, m: int) -> np.ndarray:
    """Null distribution of U (canary of size m over baseline of size n) by enumeration."""
    counts = np.zeros(n * m + 1, dtype=np.int64)
    for canary_ranks in itertools.combinations(range(n + m), m):
        rank_sum = sum(canary_ranks)  # 0-based ranks
        counts[rank_sum - m * (m - 1) // 2] += 1
    return counts


def _qwilcox_brute(alpha: float, n: int, m: int) -> int:
    counts = _u_counts_by_enumeration(n, m)
    cdf = np.cumsum(counts) / counts.sum()
    # R's qwilcox: smallest q with P(U <= q) >= alpha (R subtracts 10 * DBL_EPSILON).
    return int(np.flatnonzero(cdf >= alpha - 10 * np.finfo(float).eps)[0])


def _brute_interval(
    baseline: list[float], canary: list[float], alpha_lower: float, alpha_upper: float
) -> tuple[float, float, float]:
    """R's exact conf.int rule on np.sort of every difference."""
    diffs = np.sort(np.subtract.outer(np.asarray(canary), np.asarray(baseline)).ravel())
    n, m = len(baseline), len(canary)
    k_lower = max(_qwilcox_brute(alpha_lower, n, m), 1)
    k_upper = max(_qwilcox_brute(alpha_upper, n, m), 1)
    return float(np.median(diffs)), float(diffs[k_lower - 1]), float(diffs[n * m - k_upper])


def test_hl_r_help_example_exact_interval() -> None:
    # R: wilcox.test(x, y, conf.int = TRUE)  (exact: diffs[qwilcox(0.025, 10, 5)] and
    #    diffs[n*m - qwilcox(0.025, 10, 5) + 1]); checked against brute force, not a
    #    published number.
    result = hodges_lehmann(baseline=R_Y, canary=R_X)
    estimate, lower, upper = _brute_interval(R_Y, R_X, 0.025, 0.025)
    assert result.method == "exact"
    assert (result.estimate, result.lower, result.upper) == (estimate, lower, upper)


@pytest.mark.parametrize("seed", range(8))
def test_hl_exact_interval_brute_force(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    n, m = (int(v) for v in rng.integers(2, 9, size=2))
    baseline = rng.normal(size=n).tolist()
    canary = rng.normal(0.5, 1.0, size=m).tolist()
    alpha_lower, alpha_upper = (float(v) for v in rng.uniform(0.01, 0.3, size=2))
    result = hodges_lehmann(
        baseline=baseline, canary=canary, alpha_lower=alpha_lower, alpha_upper=alpha_upper
    )
    assert result.method == "exact"
    assert (result.estimate, result.lower, result.upper) == _brute_interval(
        baseline, canary, alpha_lower, alpha_upper
    )
