"""What the oracle knows of a corpus rollout (benchmarks/truth.py), on known answers.

The corpus defines its tail families by the p99 they move to (+20 %, +100 %), so the
canary's true share above that p99 is exactly 1 %; a LEAK ramps linearly from x1 to x5.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from scipy import stats

from benchmarks import corpus, truth
from gatekeeper.simulate import Fault, FaultKind, Scenario

BASE = Scenario(
    seconds=corpus.SIM_SECONDS,
    step_seconds=corpus.STEP_SECONDS,
    rps=50.0,
    canary_weight=0.05,
    error_rate=0.01,
    latency_median=0.05,
    latency_sigma=corpus.LATENCY_SIGMA,
)


def baseline_p99(scenario: Scenario) -> float:
    return scenario.latency_median * math.exp(stats.norm.ppf(0.99) * scenario.latency_sigma)


@pytest.mark.parametrize(
    ("share", "moved"), list(zip(corpus.tail_shares(), (1.2, 2.0), strict=True))
)
def test_a_tail_family_puts_one_percent_above_its_moved_p99(share: float, moved: float) -> None:
    scenario = replace(BASE, fault=Fault(FaultKind.TAIL, corpus.TAIL_FACTOR, share=share))
    at = baseline_p99(scenario) * moved
    bounds = np.array([at * (1 + 1e-12), math.inf])  # the boundary threshold is `at`
    found = truth.tail_truth(scenario, bounds=bounds, quantile=0.99, tolerance=moved - 1.0)
    assert found.bound_index == 0
    assert found.share == pytest.approx(0.01, rel=1e-6)


def test_the_threshold_is_the_first_bucket_bound_at_or_above_the_boundary() -> None:
    scenario = replace(BASE, fault=Fault(FaultKind.LATENCY, 1.3))
    boundary = baseline_p99(scenario) * 1.2
    bounds = np.array([boundary * 0.9, boundary * 1.5, boundary * 3, math.inf])
    found = truth.tail_truth(scenario, bounds=bounds, quantile=0.99, tolerance=0.2)
    assert (found.bound_index, found.threshold) == (1, bounds[1])
    # every request 1.3x slower: the share above t is the baseline's above t / 1.3
    z = math.log(bounds[1] / 1.3 / scenario.latency_median) / scenario.latency_sigma
    assert found.share == pytest.approx(stats.norm.sf(z), rel=1e-12)


def test_true_ratio_of_errors_leak_and_sparse() -> None:
    errors = truth.true_ratio(replace(BASE, fault=Fault(FaultKind.ERRORS, 3.0)), intervals=34)
    assert errors.tolist() == [3.0] * 34
    leak = truth.true_ratio(replace(BASE, fault=Fault(FaultKind.LEAK, 5.0)), intervals=44)
    steps = np.linspace(1.0, 5.0, BASE.steps)  # per 15-s step, two to an interval
    assert leak == pytest.approx((steps[0::2] + steps[1::2]) / 2)
    assert leak[0] < 1.1 and leak[-1] > 4.9
    sparse = replace(BASE, error_rate=0.0, fault=Fault(FaultKind.SPARSE, 10.0))
    assert np.all(np.isinf(truth.true_ratio(sparse, intervals=34)))


def test_a_fault_the_oracle_does_not_know_is_refused() -> None:
    with pytest.raises(ValueError, match="silent"):
        truth.true_ratio(replace(BASE, fault=Fault(FaultKind.SILENT)), intervals=34)
    with pytest.raises(ValueError, match="errors"):
        truth.tail_truth(
            replace(BASE, fault=Fault(FaultKind.ERRORS, 3.0)),
            bounds=np.array([0.1, math.inf]),
            quantile=0.99,
            tolerance=0.2,
        )
