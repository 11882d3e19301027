"""Unit tests of the Mann-Whitney U test and the Hodges-Lehmann selection."""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import numpy as np
import pytest
from scipy import stats
from scipy.special import ndtri

from gatekeeper.stats.mann_whitney import (
    common_language_effect_size,
    hodges_lehmann,
    mann_whitney_u,
)


def _untied(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).permutation(n).astype(float) + 0.5


def test_exact_below_fifty_each() -> None:
    baseline, canary = _untied(49, 1), _untied(49, 2) + 0.25
    assert mann_whitney_u(baseline=baseline, canary=canary).method == "exact"


@pytest.mark.parametrize(("n", "m"), [(50, 49), (49, 50), (50, 50)])
def test_asymptotic_from_fifty(n: int, m: int) -> None:
    baseline, canary = _untied(n, 1), _untied(m, 2) + 0.25
    assert mann_whitney_u(baseline=baseline, canary=canary).method == "asymptotic"
    assert hodges_lehmann(baseline=baseline, canary=canary).method == "asymptotic"


def test_ties_switch_to_asymptotic_even_when_exact_requested() -> None:
    baseline, canary = [1.0, 2.0, 3.0], [3.0, 4.0, 5.0]
    assert mann_whitney_u(baseline=baseline, canary=canary).method == "asymptotic"
    assert mann_whitney_u(baseline=baseline, canary=canary, method="exact").method == "asymptotic"
    assert hodges_lehmann(baseline=baseline, canary=canary).method == "asymptotic"


def test_forced_methods() -> None:
    baseline, canary = _untied(60, 1), _untied(60, 2) + 0.25
    exact = mann_whitney_u(baseline=baseline, canary=canary, method="exact")
    assert exact.method == "exact"
    assert np.isnan(exact.z)
    reference = stats.mannwhitneyu(canary, baseline, method="exact")
    assert exact.p_value == pytest.approx(reference.pvalue, rel=1e-9)
    small = mann_whitney_u(baseline=[1.0, 2.0], canary=[3.0, 4.0], method="asymptotic")
    assert small.method == "asymptotic"


def test_shift_is_subtracted_from_canary() -> None:
    baseline = [1.0, 2.0, 3.0, 4.0]
    canary = [11.5, 12.5, 13.5, 14.5]
    plain = mann_whitney_u(baseline=baseline, canary=[v - 10 for v in canary])
    shifted = mann_whitney_u(baseline=baseline, canary=canary, shift=10.0)
    assert shifted == plain
    assert mann_whitney_u(baseline=baseline, canary=canary, shift=20.0).u_canary == 0.0


def test_shift_creating_ties() -> None:
    # canary - 1 ties the baseline: asymptotic, U counts ties by half
    result = mann_whitney_u(baseline=[1.0, 2.0], canary=[2.0, 3.0], shift=1.0)
    assert result.method == "asymptotic"
    assert result.u_canary == 2.0


def test_u_and_effect_size() -> None:
    result = mann_whitney_u(baseline=[1.0, 2.0, 3.0], canary=[2.0, 4.0])
    assert result.u_canary == 1.5 + 3.0  # 2 beats 1 and ties 2; 4 beats all three
    assert result.u_baseline == 6.0 - 4.5
    assert (result.n_baseline, result.n_canary) == (3, 2)
    assert common_language_effect_size(baseline=[1.0, 2.0, 3.0], canary=[2.0, 4.0]) == 4.5 / 6


def test_all_tied_gives_p_one() -> None:
    result = mann_whitney_u(baseline=[1.0] * 60, canary=[1.0] * 60)
    assert result.p_value == 1.0
    assert result.z == 0.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"alternative": "up"},
            "alternative must be one of 'two-sided', 'greater', 'less', got 'up'",
        ),
        ({"method": "fast"}, "method must be one of 'auto', 'exact', 'asymptotic', got 'fast'"),
        ({"baseline": []}, "baseline must not be empty"),
        ({"canary": []}, "canary must not be empty"),
        ({"canary": [1.0, np.nan]}, "canary must hold finite values"),
        ({"baseline": [np.inf]}, "baseline must hold finite values"),
        ({"baseline": [[1.0]]}, "baseline must be one-dimensional"),
        ({"shift": np.nan}, "shift must be finite"),
    ],
)
def test_u_validation(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"baseline": [1.0, 2.0], "canary": [3.0, 4.0], **kwargs}
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        mann_whitney_u(**args)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"alpha_lower": 0.0}, r"alpha_lower must be in \(0, 1\), got 0.0"),
        ({"alpha_upper": 1.0}, r"alpha_upper must be in \(0, 1\), got 1.0"),
        ({"method": "x"}, "method must be one of 'auto', 'exact', 'asymptotic', got 'x'"),
        ({"canary": []}, "canary must not be empty"),
    ],
)
def test_hl_validation(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"baseline": [1.0, 2.0], "canary": [3.0, 4.0], **kwargs}
    with pytest.raises(ValueError, match=message):
        hodges_lehmann(**args)  # type: ignore[arg-type]


def _brute(baseline: np.ndarray, canary: np.ndarray, ranks: list[int]) -> list[float]:
    diffs = np.sort(np.subtract.outer(canary, baseline).ravel())
    return [float(diffs[k - 1]) for k in ranks]


def _asymptotic_ranks(n: int, m: int, ties: float, alpha_l: float, alpha_u: float) -> list[int]:
    nm = n * m
    sigma = np.sqrt(nm / 12 * ((n + m + 1) - ties / ((n + m) * (n + m - 1))))
    k_l = int(np.clip(np.floor(nm / 2 + 0.5 - ndtri(1 - alpha_l) * sigma), 1, nm))
    k_u = int(np.clip(np.floor(nm / 2 + 0.5 - ndtri(1 - alpha_u) * sigma), 1, nm))
    return [k_l, nm - k_u + 1]


@pytest.mark.parametrize(
    "kind", ["normal", "lognormal", "rounded", "binary", "constant", "mixed-scale"]
)
def test_large_selection_matches_brute_force(kind: str) -> None:
    rng = np.random.default_rng(7)
    n = m = 2000
    draw: Callable[[int], np.ndarray] = {
        "normal": lambda size: rng.normal(size=size),
        "lognormal": lambda size: rng.lognormal(0.0, 2.0, size=size),
        "rounded": lambda size: np.round(rng.normal(size=size) * 3),
        "binary": lambda size: rng.integers(0, 2, size=size).astype(float),
        "constant": lambda size: np.full(size, 4.0),
        "mixed-scale": lambda size: np.where(
            rng.random(size) < 0.5, rng.normal(size=size) * 1e-9, rng.normal(size=size) * 1e9
        ),
    }[kind]
    baseline, canary = draw(n), draw(m) + 0.1
    result = hodges_lehmann(baseline=baseline, canary=canary, alpha_lower=0.01, alpha_upper=0.2)
    pooled = np.sort(np.concatenate((baseline, canary)))
    _, sizes = np.unique(pooled, return_counts=True)
    ties = float(np.sum(sizes.astype(float) ** 3 - sizes))
    k_lower, upper_rank = _asymptotic_ranks(n, m, ties, 0.01, 0.2)
    nm = n * m
    lower, upper, mid_a, mid_b = _brute(
        baseline, canary, [k_lower, upper_rank, nm // 2, nm // 2 + 1]
    )
    assert result.lower == lower
    assert result.upper == upper
    assert result.estimate == 0.5 * (mid_a + mid_b)


def test_unequal_sizes_and_extremes() -> None:
    rng = np.random.default_rng(3)
    baseline, canary = rng.normal(size=3), rng.normal(size=5000)
    result = hodges_lehmann(baseline=baseline, canary=canary, alpha_lower=0.4, alpha_upper=0.4)
    diffs = np.sort(np.subtract.outer(canary, baseline).ravel())
    assert result.estimate == float(np.median(diffs))
    assert diffs[0] <= result.lower <= result.estimate <= result.upper <= diffs[-1]


def test_tiny_alpha_clamps_to_extremes() -> None:
    baseline, canary = [1.0, 2.0, 3.0], [2.5, 4.0, 7.0]
    result = hodges_lehmann(baseline=baseline, canary=canary, alpha_lower=1e-9, alpha_upper=1e-9)
    diffs = np.subtract.outer(np.asarray(canary), np.asarray(baseline)).ravel()
    assert (result.lower, result.upper) == (diffs.min(), diffs.max())


def test_selection_is_reproducible() -> None:
    rng = np.random.default_rng(11)
    baseline, canary = rng.normal(size=3000), rng.normal(size=2500)
    first = hodges_lehmann(baseline=baseline, canary=canary)
    assert hodges_lehmann(baseline=baseline, canary=canary) == first


def _mw_cases() -> list[tuple[np.ndarray, np.ndarray, float]]:
    rng = np.random.default_rng(5)
    return [
        (_untied(12, 1), _untied(9, 2) + 0.25, 0.0),  # exact
        (_untied(12, 1), _untied(9, 2) + 0.25, 3.0),  # exact, shifted
        (np.round(rng.normal(size=80)), np.round(rng.normal(0.3, 1.0, size=70)), 0.0),  # ties
        (rng.lognormal(3.0, 0.4, 1000), rng.lognormal(3.05, 0.4, 1000), 4.1),  # large
        (np.full(60, 1.0), np.full(60, 1.0), 0.0),  # every value tied: sigma 0
        (np.array([1.0, 2.0]), np.array([2.0, 3.0]), 1.0),  # shift creates ties
    ]


@pytest.mark.parametrize("case", range(6))
@pytest.mark.parametrize("correct", [True, False])
@pytest.mark.parametrize("method", ["auto", "exact", "asymptotic"])
def test_one_sided_p_values_equal_each_alternative(case: int, correct: bool, method: str) -> None:
    baseline, canary, shift = _mw_cases()[case]
    if method == "exact" and baseline.size * canary.size > 10_000:
        method = "asymptotic"  # the exact null distribution of n = m = 1000 is not cheap
    results = {
        alternative: mann_whitney_u(
            baseline=baseline,
            canary=canary,
            shift=shift,
            alternative=alternative,
            method=method,  # type: ignore[arg-type]
            correct=correct,
        )
        for alternative in ("two-sided", "greater", "less")
    }
    for result in results.values():
        assert result.p_greater == results["greater"].p_value
        assert result.p_less == results["less"].p_value
        assert result.u_canary == results["two-sided"].u_canary


@pytest.mark.parametrize("case", range(6))
def test_assume_sorted_gives_the_same_results(case: int) -> None:
    baseline, canary, shift = _mw_cases()[case]
    b_sorted, c_sorted = np.sort(baseline), np.sort(canary)
    for alternative in ("two-sided", "greater", "less"):
        plain = mann_whitney_u(
            baseline=baseline,
            canary=canary,
            shift=shift,
            alternative=alternative,
        )
        for check_input in (True, False):
            fast = mann_whitney_u(
                baseline=b_sorted,
                canary=c_sorted,
                shift=shift,
                alternative=alternative,
                assume_sorted=True,
                check_input=check_input,
            )
            assert fast == plain
    hl = hodges_lehmann(baseline=baseline, canary=canary, alpha_lower=0.1, alpha_upper=0.02)
    for check_input in (True, False):
        hl_sorted = hodges_lehmann(
            baseline=b_sorted,
            canary=c_sorted,
            alpha_lower=0.1,
            alpha_upper=0.02,
            assume_sorted=True,
            check_input=check_input,
        )
        assert hl_sorted == hl
    cles = common_language_effect_size(baseline=baseline, canary=canary)
    for check_input in (True, False):
        sorted_cles = common_language_effect_size(
            baseline=b_sorted, canary=canary, assume_sorted=True, check_input=check_input
        )
        assert sorted_cles == cles
    # The effect size is the U of the test at shift 0, over n * m.
    u0 = mann_whitney_u(baseline=baseline, canary=canary).u_canary
    assert cles == u0 / (baseline.size * canary.size)


@pytest.mark.parametrize(
    ("baseline", "message"),
    [
        ([2.0, 1.0], "baseline must be sorted ascending when assume_sorted is True"),
        ([1.0, np.nan, 2.0], "baseline must hold finite values"),
        ([np.nan], "baseline must hold finite values"),
        ([-np.inf, 1.0], "baseline must hold finite values"),
        ([], "baseline must not be empty"),
        ([[1.0]], "baseline must be one-dimensional"),
    ],
)
def test_assume_sorted_validation(baseline: list[float], message: str) -> None:
    for call in (mann_whitney_u, hodges_lehmann, common_language_effect_size):
        with pytest.raises(ValueError, match=message):
            call(baseline=baseline, canary=[1.0, 2.0], assume_sorted=True)
    with pytest.raises(ValueError, match="canary must be sorted ascending"):
        mann_whitney_u(baseline=[1.0, 2.0], canary=[3.0, 1.0], assume_sorted=True)


@pytest.mark.parametrize("alpha", [0.001, 0.05, 0.3, 0.45, 0.49, 0.4999])
@pytest.mark.parametrize(("n", "m"), [(1000, 1000), (700, 1300), (1500, 90)])
def test_selection_matches_brute_force_across_alphas(alpha: float, n: int, m: int) -> None:
    # Alphas near 0.5 put the bounds next to the median: brackets overlap and merge.
    rng = np.random.default_rng(n + m)
    baseline, canary = rng.lognormal(3.0, 0.4, size=n), rng.lognormal(3.02, 0.5, size=m)
    result = hodges_lehmann(baseline=baseline, canary=canary, alpha_lower=alpha, alpha_upper=0.02)
    k_lower, upper_rank = _asymptotic_ranks(n, m, 0.0, alpha, 0.02)
    nm = n * m
    lower, upper, mid_a, mid_b = _brute(
        baseline, canary, [k_lower, upper_rank, (nm + 1) // 2, nm // 2 + 1]
    )
    assert (result.lower, result.upper) == (lower, upper)
    assert result.estimate == 0.5 * (mid_a + mid_b)


def test_materialise_merges_overlapping_brackets() -> None:
    # Brackets whose (lo, hi] overlap are merged before the one partition of all cells.
    from gatekeeper.stats import mann_whitney as mw  # noqa: PLC0415 - private helpers

    rng = np.random.default_rng(17)
    a = np.sort(-rng.normal(size=40))
    c = np.sort(rng.normal(size=30))[::-1].copy()
    cells = np.add.outer(c, a)
    diffs = np.sort(cells.ravel())
    mat = mw._Matrix(a, c)

    def counts(t: float) -> np.ndarray:
        return cast(np.ndarray, (cells <= t).sum(axis=1).astype(np.int64))

    def bracket(k: int, lo_rank: int, hi_rank: int) -> mw._Bracket:
        lo, hi = float(diffs[lo_rank - 1]), float(diffs[hi_rank - 1])
        lo_counts, hi_counts = counts(lo), counts(hi)
        return mw._Bracket(
            k, lo, lo_counts, int(lo_counts.sum()), hi, hi_counts, int(hi_counts.sum())
        )

    # Ranks 400 and 420 in overlapping brackets, 401 sharing the first, 900 apart.
    brackets = [
        bracket(400, 300, 500),
        bracket(401, 300, 500),
        bracket(420, 350, 600),
        bracket(900, 850, 1000),
    ]
    results: dict[int, float] = {}
    mw._materialise(mat, brackets, results)
    assert results == {k: float(diffs[k - 1]) for k in (400, 401, 420, 900)}


def test_band_by_band_gathering_matches_brute_force(monkeypatch: pytest.MonkeyPatch) -> None:
    # Large matrices gather their brackets band by band (memory); force it at a small size.
    from gatekeeper.stats import mann_whitney as mw  # noqa: PLC0415 - private constant

    rng = np.random.default_rng(23)
    baseline, canary = rng.normal(size=900), rng.normal(0.1, 1.2, size=1100)
    expected = hodges_lehmann(baseline=baseline, canary=canary, alpha_lower=0.2, alpha_upper=0.01)
    monkeypatch.setattr(mw, "_GATHER_ROWS", 0)
    result = hodges_lehmann(baseline=baseline, canary=canary, alpha_lower=0.2, alpha_upper=0.01)
    assert result == expected
    k_lower, upper_rank = _asymptotic_ranks(900, 1100, 0.0, 0.2, 0.01)
    nm = 900 * 1100
    lower, upper, mid_a, mid_b = _brute(
        baseline, canary, [k_lower, upper_rank, nm // 2, nm // 2 + 1]
    )
    assert (result.lower, result.upper) == (lower, upper)
    assert result.estimate == 0.5 * (mid_a + mid_b)
