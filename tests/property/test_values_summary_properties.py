"""The VALUES summaries from sorted samples equal numpy's quantile and median bit for bit."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from gatekeeper.stats.classify import _sorted_median, _sorted_quantile

samples = st.lists(
    st.one_of(
        st.floats(-1e300, 1e300, allow_nan=False, allow_infinity=False),
        st.integers(-5, 5).map(float),
        st.floats(-1.0, 1.0, allow_nan=False),
    ),
    min_size=1,
    max_size=300,
)


@settings(max_examples=300, deadline=None)
@given(samples, st.sampled_from([0.5, 0.99, 0.25, 0.75, 0.0, 1.0, 0.1]))
def test_sorted_quantile_is_numpy_quantile(values: list[float], q: float) -> None:
    array = np.asarray(values)
    expected = float(np.quantile(array, q))
    got = _sorted_quantile(array, np.sort(array), q)
    assert got == expected or (np.isnan(got) and np.isnan(expected))
    assert np.signbit(got) == np.signbit(expected)


@settings(max_examples=300, deadline=None)
@given(samples)
def test_sorted_median_is_numpy_median(values: list[float]) -> None:
    array = np.asarray(values)
    expected = float(np.median(array))
    got = _sorted_median(np.sort(array))
    assert got == expected or (np.isnan(got) and np.isnan(expected))
    assert np.signbit(got) == np.signbit(expected)


def test_large_random_samples() -> None:
    rng = np.random.default_rng(3)
    for size in (999, 1000, 1001, 12345):
        array = rng.lognormal(3.0, 2.0, size=size)
        ordered = np.sort(array)
        for q in (0.5, 0.99):
            assert _sorted_quantile(array, ordered, q) == float(np.quantile(array, q))
        assert _sorted_median(ordered) == float(np.median(array))
