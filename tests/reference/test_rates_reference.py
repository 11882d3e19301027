"""The rate ratio against the exact conditional test of two Poisson rates.

With one stratum (or equal exposure shares) and no overdispersion, the method is R's
two-sample ``poisson.test``, which conditions on the total events and calls
``binom.test(x1, x1 + x2, p = r T1 / (r T1 + T2))``. scipy's ``binomtest`` is the
reference implementation of that binomial test here.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from scipy import stats

from gatekeeper.stats import rates
from gatekeeper.stats.model import RatioSeries

CASES = [
    # (canary bad, canary total, baseline bad, baseline total)
    (11, 800, 21, 3011),  # R: poisson.test(c(11, 6+8+7), c(800, 1083+1050+878)) (ISwR eba1977)
    (30, 10_000, 0, 100_000),
    (0, 2, 5, 12_000),
    (180, 20_000, 10, 20_000),
    (3, 1_000, 4, 10_000),
]


def _counts(cb: float, ct: float, bb: float, bt: float, strata: int = 1) -> rates.StratifiedCounts:
    split = np.full(strata, 1.0 / strata)
    return rates.stratify(
        baseline=RatioSeries(bad=bb * split, total=bt * split),
        canary=RatioSeries(bad=cb * split, total=ct * split),
    )


@pytest.mark.parametrize(("cb", "ct", "bb", "bt"), CASES)
@pytest.mark.parametrize("ratio", [1.0, 1.2, 0.8])
def test_one_sided_p_values_equal_the_conditional_binomial_test(
    cb: int, ct: int, bb: int, bt: int, ratio: float
) -> None:
    # R: poisson.test(c(cb, bb), c(ct, bt), r = ratio, alternative = "greater")
    counts = _counts(cb, ct, bb, bt)
    share = ratio * ct / (ratio * ct + bt)
    for alternative in ("greater", "less"):
        expected = stats.binomtest(cb, cb + bb, share, alternative=alternative).pvalue
        found = rates.rate_ratio_pvalue(counts=counts, ratio=ratio, alternative=alternative)
        assert found == pytest.approx(expected, rel=1e-9, abs=1e-15)


@pytest.mark.parametrize(("cb", "ct", "bb", "bt"), CASES)
def test_bounds_are_the_clopper_pearson_bounds_mapped_to_the_ratio(
    cb: int, ct: int, bb: int, bt: int
) -> None:
    # R: poisson.test(c(cb, bb), c(ct, bt), conf.level = 0.9)$conf.int  (two one-sided 5 % bounds)
    result = rates.rate_ratio_interval(
        counts=_counts(cb, ct, bb, bt), alpha_lower=0.05, alpha_upper=0.05
    )
    ci = stats.binomtest(cb, cb + bb).proportion_ci(confidence_level=0.9, method="exact")
    to_ratio: Callable[[float], float] = lambda p: (  # noqa: E731
        p * bt / ((1 - p) * ct) if p < 1 else np.inf
    )
    assert result.lower == pytest.approx(to_ratio(ci.low), rel=1e-9, abs=1e-12)
    assert result.upper == pytest.approx(to_ratio(ci.high), rel=1e-9)
    assert result.ratio == pytest.approx((cb / ct) / (bb / bt) if bb else np.inf)


def test_equal_strata_give_the_pooled_answer() -> None:
    pooled = _counts(11, 800, 21, 3011)
    split = _counts(11, 800, 21, 3011, strata=4)
    assert rates.rate_ratio_pvalue(counts=split, ratio=1.2, alternative="greater") == pytest.approx(
        rates.rate_ratio_pvalue(counts=pooled, ratio=1.2, alternative="greater")
    )
