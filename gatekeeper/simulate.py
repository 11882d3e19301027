"""Realistic, seeded traffic of a baseline and a canary, for the demo, tests and benchmarks.

Requests arrive as a Poisson process; the canary gets its weight's share. Each pod's error
rate and latency vary from step to step (log-normal around the version's level), which is
how errors cluster by pod and interval. Latencies are log-normal with an occasional slow
mode. Faults change the canary: more errors, a latency shift, a tail-only regression, a
slow leak, intermittent failures, sparse errors, or no traffic at all.

The output is per-step increments (requests, errors, latency bucket counts) that can be
judged directly or written as OpenMetrics for ``promtool tsdb create-blocks-from
openmetrics`` with each provider's metric names.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from gatekeeper.stats.model import FloatArray, HistogramSeries, RatioSeries

#: Bucket bounds in seconds (Prometheus client defaults, refined around typical p99s).
BUCKETS = np.array(
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
        2.5,
        5.0,
        10.0,
        math.inf,
    ]
)


class FaultKind(enum.Enum):
    """What is wrong with the canary."""

    NONE = "none"
    ERRORS = "errors"  #: error rate x factor
    LATENCY = "latency"  #: every request factor x slower
    TAIL = "tail"  #: a share of requests factor x slower: p99 up, p50 unchanged
    LEAK = "leak"  #: error rate growing linearly to x factor at the end
    INTERMITTENT = "intermittent"  #: error rate x factor in one step out of five
    SPARSE = "sparse"  #: errors at ``factor`` per 10,000 requests where the baseline has none
    SILENT = "silent"  #: the canary gets no traffic


@dataclass(frozen=True, slots=True)
class Fault:
    """A fault of the canary and its size."""

    kind: FaultKind = FaultKind.NONE
    factor: float = 1.0
    share: float = 0.03  #: TAIL: share of slow requests


@dataclass(frozen=True, slots=True)
class Scenario:
    """One simulated rollout window.

    Rates are per second of the whole service; ``canary_weight`` is the canary's share of
    requests; pods add per-(pod, step) log-normal variation of width ``pod_sigma``.
    """

    seconds: float = 1800.0
    step_seconds: float = 15.0
    rps: float = 50.0
    canary_weight: float = 0.1
    error_rate: float = 0.005
    latency_median: float = 0.05
    latency_sigma: float = 0.5
    pods_baseline: int = 5
    pods_canary: int = 1
    pod_sigma: float = 0.3
    fault: Fault = field(default_factory=Fault)
    seed: int = 0

    @property
    def steps(self) -> int:
        """Number of steps."""
        return int(self.seconds // self.step_seconds)


@dataclass(frozen=True, slots=True, eq=False)
class SideTraffic:
    """Per-step increments of one side: requests, errors, and latency bucket counts."""

    requests: FloatArray
    errors: FloatArray
    buckets: FloatArray  #: (steps, len(BUCKETS)) cumulative per step

    def ratio(self) -> RatioSeries:
        """As RATIO counts."""
        return RatioSeries(bad=self.errors.copy(), total=self.requests.copy())

    def histogram(self) -> HistogramSeries:
        """As HISTOGRAM buckets."""
        return HistogramSeries(upper_bounds=BUCKETS.copy(), counts=self.buckets.copy())


@dataclass(frozen=True, slots=True, eq=False)
class Traffic:
    """Both sides of a simulated window."""

    scenario: Scenario
    baseline: SideTraffic
    canary: SideTraffic


def _side(
    rng: np.random.Generator, scenario: Scenario, *, share: float, pods: int, canary: bool
) -> SideTraffic:
    steps = scenario.steps
    fault = scenario.fault if canary else Fault()
    if canary and fault.kind is FaultKind.SILENT:
        share = 0.0
    mean = scenario.rps * scenario.step_seconds * share / max(pods, 1)
    per_pod = rng.poisson(mean, size=(steps, pods))
    requests = per_pod.sum(axis=1).astype(float)
    multiplier = np.exp(
        scenario.pod_sigma * rng.standard_normal((steps, pods)) - scenario.pod_sigma**2 / 2
    )
    rate = scenario.error_rate * multiplier * _error_factor(fault, steps)[:, None]
    if fault.kind is FaultKind.SPARSE:
        rate = np.full((steps, pods), fault.factor / 10_000.0)
    errors = rng.binomial(per_pod, np.clip(rate, 0.0, 1.0)).sum(axis=1).astype(float)
    buckets = np.zeros((steps, BUCKETS.size))
    for k in range(steps):
        n = int(requests[k])
        if n == 0:
            continue
        latency = rng.lognormal(math.log(scenario.latency_median), scenario.latency_sigma, n)
        if fault.kind is FaultKind.LATENCY:
            latency *= fault.factor
        elif fault.kind is FaultKind.TAIL:
            slow = rng.random(n) < fault.share
            latency[slow] *= fault.factor
        buckets[k] = np.searchsorted(np.sort(latency), BUCKETS, side="right")
    return SideTraffic(requests=requests, errors=errors, buckets=buckets)


def _error_factor(fault: Fault, steps: int) -> FloatArray:
    factor = np.ones(steps)
    if fault.kind is FaultKind.ERRORS:
        factor[:] = fault.factor
    elif fault.kind is FaultKind.LEAK:
        factor = np.linspace(1.0, fault.factor, steps)
    elif fault.kind is FaultKind.INTERMITTENT:
        factor[::5] = fault.factor
    return factor


def simulate(scenario: Scenario) -> Traffic:
    """Simulate both sides of ``scenario`` (seeded: the same scenario gives the same traffic)."""
    rng = np.random.default_rng(scenario.seed)
    weight = scenario.canary_weight
    baseline = _side(rng, scenario, share=1.0 - weight, pods=scenario.pods_baseline, canary=False)
    canary = _side(rng, scenario, share=weight, pods=scenario.pods_canary, canary=True)
    return Traffic(scenario=scenario, baseline=baseline, canary=canary)


# --- OpenMetrics for Prometheus backfill ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class MetricNames:
    """How a mesh or ingress names requests and latency, and labels errors."""

    requests: str
    error_label: str
    error_value: str
    ok_value: str
    latency: str
    latency_scale: float  #: 1000 for milliseconds
    static: dict[str, str]


def provider_names(provider: str, *, service: str, namespace: str) -> MetricNames:
    """Standard metric names and labels of each provider the query templates know."""
    names = {
        "generic": MetricNames(
            "http_requests_total",
            "code",
            "500",
            "200",
            "http_request_duration_seconds",
            1.0,
            {"service": service, "namespace": namespace},
        ),
        "istio": MetricNames(
            "istio_requests_total",
            "response_code",
            "503",
            "200",
            "istio_request_duration_milliseconds",
            1000.0,
            {
                "reporter": "destination",
                "destination_service_name": service,
                "destination_service_namespace": namespace,
            },
        ),
        "linkerd": MetricNames(
            "response_total",
            "classification",
            "failure",
            "success",
            "response_latency_ms",
            1000.0,
            {
                "direction": "inbound",
                "namespace": namespace,
                "authority": f"{service}.{namespace}.svc:80",
            },
        ),
        "nginx": MetricNames(
            "nginx_ingress_controller_requests",
            "status",
            "502",
            "200",
            "nginx_ingress_controller_request_duration_seconds",
            1.0,
            {"exported_namespace": namespace, "exported_service": service},
        ),
        "gateway-api": MetricNames(
            "envoy_cluster_upstream_rq_xx",
            "envoy_response_code_class",
            "5",
            "2",
            "envoy_cluster_upstream_rq_time",
            1000.0,
            {"envoy_cluster_name": f"httproute/{namespace}/{service}/rule/0"},
        ),
    }
    return names[provider]


def _labels(pairs: dict[str, str]) -> str:
    def escape(value: str) -> str:
        return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

    return ",".join(f'{k}="{escape(v)}"' for k, v in sorted(pairs.items()))


def openmetrics_lines(
    traffic: Traffic, *, names: MetricNames, side_labels: dict[str, dict[str, str]], start: float
) -> Iterator[tuple[str, str]]:
    """(family, sample line) pairs of cumulative counters, one sample per step and series.

    ``side_labels`` maps "baseline"/"canary" to the labels that select the side. The first
    sample (all zeros) is at ``start``; the step k's increments are in the sample at
    ``start + k * step``.
    """
    step = traffic.scenario.step_seconds
    times = start + step * np.arange(traffic.scenario.steps + 1)
    for side_name, side in (("baseline", traffic.baseline), ("canary", traffic.canary)):
        base = {**names.static, **side_labels[side_name]}
        ok = np.concatenate(([0.0], np.cumsum(side.requests - side.errors)))
        bad = np.concatenate(([0.0], np.cumsum(side.errors)))
        for value, counts in ((names.ok_value, ok), (names.error_value, bad)):
            labels = _labels({**base, names.error_label: value})
            for t, c in zip(times, counts, strict=True):
                yield names.requests, f"{names.requests}{{{labels}}} {c:g} {t:.3f}"
        cumulative = np.vstack((np.zeros(BUCKETS.size), np.cumsum(side.buckets, axis=0)))
        for j, bound in enumerate(BUCKETS):
            le = "+Inf" if math.isinf(bound) else f"{bound * names.latency_scale:g}"
            labels = _labels({**base, "le": le})
            family = f"{names.latency}_bucket"
            for t, c in zip(times, cumulative[:, j], strict=True):
                yield family, f"{family}{{{labels}}} {c:g} {t:.3f}"


def openmetrics(chunks: list[tuple[str, str]]) -> str:
    """An OpenMetrics exposition of the sample lines, grouped by family, ending in ``# EOF``."""
    families: dict[str, list[str]] = {}
    for family, line in chunks:
        families.setdefault(family, []).append(line)
    out: list[str] = []
    for family, lines in families.items():
        out.append(f"# TYPE {family} unknown")
        out.extend(lines)
    out.append("# EOF")
    return "\n".join(out) + "\n"
