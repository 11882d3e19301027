"""Unit tests of the Mann-Whitney U test and the Hodges-Lehmann selection."""

from __future__ import annotations

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
    draw = {
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
