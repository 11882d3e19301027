"""What the oracle knows: the true regression of a corpus rollout, from its scenario.

The oracle SPRT (:mod:`benchmarks.oracle`) tests the FAIL boundary against the canary's
true regression. The corpus is simulated, so that regression is known exactly:

- error families (:data:`benchmarks.corpus.ERROR_FAMILIES`): the canary's rate ratio per
  analysis interval (the per-pod noise has mean 1 and shared bursts hit both sides, so the
  ratio is the fault's factor; a LEAK's ramp is averaged over the interval's steps; the
  ``sparse`` family's baseline has no errors, an infinite ratio);
- latency families (:data:`benchmarks.corpus.LATENCY_FAMILIES`): the canary's true share of
  requests above the boundary threshold, the first bucket bound at or above the baseline's
  true q-quantile x (1 + tolerance) (the conservative side for a FAIL).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from benchmarks import corpus
from benchmarks.oracle import FloatArray
from gatekeeper.simulate import FaultKind, Scenario


@dataclass(frozen=True, slots=True)
class TailTruth:
    """A latency regression as the oracle sees it.

    ``bound_index``: the bucket bound of the boundary threshold (``bounds[bound_index]``);
    ``share``: the canary's true share of requests above it.
    """

    bound_index: int
    threshold: float
    share: float


def true_ratio(scenario: Scenario, *, intervals: int) -> FloatArray:
    """The canary's true error-rate ratio in each of the first ``intervals`` intervals.

    Raises
    ------
    ValueError
        When the scenario's fault is not an error regression the oracle knows.
    """
    fault = scenario.fault
    per = round(corpus.INTERVAL_SECONDS / scenario.step_seconds)
    steps = scenario.steps
    onset = min(steps, math.ceil(fault.onset_seconds / scenario.step_seconds))
    factor = np.ones(steps)
    if fault.kind is FaultKind.ERRORS:
        factor[onset:] = fault.factor
    elif fault.kind is FaultKind.LEAK:
        factor[onset:] = np.linspace(1.0, fault.factor, steps - onset)
    elif fault.kind is FaultKind.SPARSE and scenario.error_rate == 0.0:
        factor[onset:] = math.inf
    else:
        raise ValueError(f"no true error ratio for fault {fault.kind.value!r}")
    whole = factor[: steps - steps % per].reshape(-1, per).mean(axis=1)
    return np.asarray(whole[:intervals], dtype=float)


def _above(threshold: float, scenario: Scenario, *, scale: float = 1.0) -> float:
    """Share of log-normal requests (``scale`` x slower) above ``threshold``."""
    z = (math.log(threshold / scale) - math.log(scenario.latency_median)) / scenario.latency_sigma
    return float(stats.norm.sf(z))


def tail_truth(
    scenario: Scenario, *, bounds: FloatArray, quantile: float, tolerance: float
) -> TailTruth:
    """The boundary threshold on the bucket bounds and the canary's true share above it.

    Raises
    ------
    ValueError
        When the scenario's fault is not a latency regression the oracle knows.
    """
    fault = scenario.fault
    z = float(stats.norm.ppf(quantile))
    baseline_q = scenario.latency_median * math.exp(z * scenario.latency_sigma)
    index = int(np.searchsorted(bounds, baseline_q * (1.0 + tolerance) * (1 - 1e-12)))
    index = min(index, bounds.size - 2)  # the last bound is +Inf
    threshold = float(bounds[index])
    if fault.kind is FaultKind.TAIL:
        share = (1 - fault.share) * _above(threshold, scenario) + fault.share * _above(
            threshold, scenario, scale=fault.factor
        )
    elif fault.kind is FaultKind.LATENCY:
        share = _above(threshold, scenario, scale=fault.factor)
    else:
        raise ValueError(f"no true tail share for fault {fault.kind.value!r}")
    return TailTruth(bound_index=index, threshold=threshold, share=share)
