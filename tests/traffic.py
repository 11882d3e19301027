"""Seeded traffic for the judge's tests and the example requests.

Pods serve requests; each pod's error rate and latency vary from interval to interval
(log-normal around the version's level), which is how errors cluster by pod and interval
in real services.
"""

from __future__ import annotations

import numpy as np

from gatekeeper.stats.model import FloatArray, HistogramSeries, PodCounts, RatioSeries

PROMETHEUS_BUCKETS = np.array(
    [
        0.005,
        0.01,
        0.025,
        0.05,
        0.075,
        0.1,
        0.15,
        0.2,
        0.25,
        0.3,
        0.4,
        0.5,
        0.75,
        1.0,
        1.5,
        2.0,
        3.0,
        5.0,
        10.0,
        np.inf,
    ]
)


def pod_counts(
    rng: np.random.Generator,
    *,
    pods: int,
    intervals: int,
    requests_per_pod: float,
    error_rate: float,
    sigma: float = 0.0,
) -> RatioSeries:
    """Bad/total per interval, summed over ``pods`` pods.

    Each (pod, interval) gets Poisson(requests_per_pod) requests and an error rate
    ``error_rate * exp(sigma Z - sigma^2 / 2)`` (mean-one log-normal multiplier).
    """
    total = rng.poisson(requests_per_pod, size=(intervals, pods))
    multiplier = np.exp(sigma * rng.standard_normal((intervals, pods)) - sigma**2 / 2)
    rate = np.clip(error_rate * multiplier, 0.0, 1.0)
    bad = rng.binomial(total, rate)
    return RatioSeries(bad=bad.sum(axis=1).astype(float), total=total.sum(axis=1).astype(float))


def fixed_counts(bad: float, total: float, intervals: int) -> RatioSeries:
    """The same counts in every interval."""
    return RatioSeries(bad=np.full(intervals, float(bad)), total=np.full(intervals, float(total)))


def latencies(
    rng: np.random.Generator,
    *,
    n: int,
    median: float,
    sigma: float = 0.5,
    slow_share: float = 0.0,
    slow_factor: float = 1.0,
) -> FloatArray:
    """Log-normal latencies in seconds, a share of them ``slow_factor`` times slower."""
    values = rng.lognormal(np.log(median), sigma, n)
    slow = rng.random(n) < slow_share
    values[slow] *= slow_factor
    return values


def histograms(
    samples: list[FloatArray], bounds: FloatArray = PROMETHEUS_BUCKETS
) -> HistogramSeries:
    """Cumulative bucket counts per interval, as ``increase(..._bucket[interval])`` gives."""
    counts = np.array([[np.count_nonzero(s <= b) for b in bounds] for s in samples], dtype=float)
    return HistogramSeries(upper_bounds=np.asarray(bounds, dtype=float), counts=counts)


def pod_table(
    rng: np.random.Generator,
    *,
    pods: int,
    intervals: int,
    requests_per_pod: float,
    error_rate: float,
    sigma: float = 0.0,
    pod_sigma: float = 0.0,
    prefix: str = "pod",
) -> RatioSeries:
    """Bad/total per interval and pod, the aggregates derived from them.

    Each (pod, interval) gets Poisson(requests_per_pod) requests and an error rate
    ``error_rate`` times two mean-one log-normal multipliers: one drawn per (pod, interval)
    with ``sigma``, one drawn per pod for the whole rollout with ``pod_sigma`` (a
    persistent pod effect: a slow node, a bad cache).
    """
    total = rng.poisson(requests_per_pod, size=(intervals, pods)).astype(float)
    noise = np.exp(sigma * rng.standard_normal((intervals, pods)) - sigma**2 / 2)
    persistent = np.exp(pod_sigma * rng.standard_normal(pods) - pod_sigma**2 / 2)
    rate = np.clip(error_rate * noise * persistent, 0.0, 1.0)
    bad = rng.binomial(total.astype(np.int64), rate).astype(float)
    names = tuple(f"{prefix}-{j}" for j in range(pods))
    return RatioSeries.from_pods(PodCounts(names=names, bad=bad, total=total))
