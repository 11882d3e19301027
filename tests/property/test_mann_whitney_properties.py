"""Properties of the Mann-Whitney U test and the Hodges-Lehmann selection."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from gatekeeper.stats.mann_whitney import hodges_lehmann, mann_whitney_u

# Small integers: ties happen, and exp / cube keep them exact and strictly ordered.
values = st.lists(st.integers(-30, 30), min_size=1, max_size=60)
alternatives = st.sampled_from(["two-sided", "greater", "less"])
methods = st.sampled_from(["auto", "exact", "asymptotic"])


@settings(max_examples=150, deadline=None)
@given(values, values, alternatives, methods)
def test_p_in_unit_interval_and_u_adds_up(
    baseline: list[int], canary: list[int], alternative: str, method: str
) -> None:
    result = mann_whitney_u(
        baseline=baseline,
        canary=canary,
        alternative=alternative,  # type: ignore[arg-type]
        method=method,  # type: ignore[arg-type]
    )
    assert 0.0 <= result.p_value <= 1.0
    assert result.u_canary + result.u_baseline == len(baseline) * len(canary)


@settings(max_examples=150, deadline=None)
@given(values, values, alternatives, st.sampled_from(["exp", "cube", "affine"]))
def test_invariant_under_strictly_monotone_transform(
    baseline: list[int], canary: list[int], alternative: str, transform: str
) -> None:
    f: Callable[[list[int]], np.ndarray] = {
        "exp": lambda v: np.exp(np.asarray(v, dtype=float) / 4.0),
        "cube": lambda v: np.asarray(v, dtype=float) ** 3,
        "affine": lambda v: 3.0 * np.asarray(v, dtype=float) - 7.0,
    }[transform]
    plain = mann_whitney_u(baseline=baseline, canary=canary, alternative=alternative)  # type: ignore[arg-type]
    moved = mann_whitney_u(baseline=f(baseline), canary=f(canary), alternative=alternative)  # type: ignore[arg-type]
    assert moved.u_canary == plain.u_canary
    assert moved.p_value == plain.p_value
    assert moved.method == plain.method


def _brute(baseline: np.ndarray, canary: np.ndarray) -> np.ndarray:
    return np.sort(np.subtract.outer(canary, baseline).ravel())


floats = st.lists(
    st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False), min_size=1, max_size=120
)


@settings(max_examples=150, deadline=None)
@given(
    st.one_of(values, floats),
    st.one_of(values, floats),
    st.floats(0.001, 0.5),
    st.floats(0.001, 0.5),
)
def test_hl_matches_brute_force(
    baseline: list[float], canary: list[float], alpha_lower: float, alpha_upper: float
) -> None:
    result = hodges_lehmann(
        baseline=baseline, canary=canary, alpha_lower=alpha_lower, alpha_upper=alpha_upper
    )
    diffs = _brute(np.asarray(baseline, dtype=float), np.asarray(canary, dtype=float))
    assert result.estimate == float(np.median(diffs))
    assert result.lower in diffs
    assert result.upper in diffs
    assert result.lower <= result.estimate <= result.upper


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**31), st.sampled_from([60, 150, 400]), st.sampled_from([3, 90, 300]))
def test_hl_selection_matches_brute_force_beyond_the_direct_path(seed: int, n: int, m: int) -> None:
    rng = np.random.default_rng(seed)
    kind = seed % 3
    if kind == 0:
        baseline, canary = rng.normal(size=n), rng.standard_cauchy(size=m)
    elif kind == 1:
        baseline = rng.integers(0, 5, size=n).astype(float)
        canary = rng.integers(0, 5, size=m).astype(float)
    else:
        baseline, canary = rng.lognormal(0, 3, size=n), rng.lognormal(0.2, 3, size=m)
    result = hodges_lehmann(baseline=baseline, canary=canary, method="asymptotic")
    diffs = _brute(baseline, canary)
    assert result.estimate == float(np.median(diffs))
    # The bounds are order statistics of the differences; their ranks are checked in
    # the unit tests. Here: they are differences and bracket the estimate.
    assert np.any(diffs == result.lower)
    assert np.any(diffs == result.upper)
    assert result.lower <= result.estimate <= result.upper


@settings(max_examples=100, deadline=None)
@given(values, values, st.integers(-1000, 1000))
def test_hl_estimate_shift_equivariance(baseline: list[int], canary: list[int], shift: int) -> None:
    plain = hodges_lehmann(baseline=baseline, canary=canary)
    moved = hodges_lehmann(baseline=baseline, canary=[v + shift for v in canary])
    assert moved.estimate == plain.estimate + shift


distinct = st.lists(st.integers(-500, 500), min_size=1, max_size=80, unique=True)


@settings(max_examples=100, deadline=None)
@given(distinct, distinct, st.integers(-500, 500))
def test_hl_interval_shift_equivariance(baseline: list[int], canary: list[int], shift: int) -> None:
    # Even baseline, odd canary, even shift: the pooled sample stays untied, so the method
    # and the ranks of the bounds do not change (ties, which a shift can make or break,
    # decide the method and enter sigma_U).
    base = [2 * v for v in baseline]
    can = [2 * v + 1 for v in canary]
    plain = hodges_lehmann(baseline=base, canary=can)
    moved = hodges_lehmann(baseline=base, canary=[v + 2 * shift for v in can])
    assert moved.method == plain.method
    assert moved.estimate == plain.estimate + 2 * shift
    assert moved.lower == plain.lower + 2 * shift
    assert moved.upper == plain.upper + 2 * shift


@settings(max_examples=100, deadline=None)
@given(st.one_of(values, floats), st.one_of(values, floats), st.floats(-5.0, 5.0))
def test_sorted_input_and_one_sided_p_values(
    baseline: list[float], canary: list[float], shift: float
) -> None:
    b_sorted, c_sorted = sorted(baseline), sorted(canary)
    both = mann_whitney_u(
        baseline=b_sorted, canary=c_sorted, shift=shift, assume_sorted=True, method="asymptotic"
    )
    for alternative in ("greater", "less"):
        single = mann_whitney_u(
            baseline=baseline,
            canary=canary,
            shift=shift,
            alternative=alternative,
            method="asymptotic",
        )
        assert single.u_canary == both.u_canary
        assert single.p_value == (both.p_greater if alternative == "greater" else both.p_less)
    plain = hodges_lehmann(baseline=baseline, canary=canary)
    assert hodges_lehmann(baseline=b_sorted, canary=c_sorted, assume_sorted=True) == plain
