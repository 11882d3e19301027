"""Realistic, seeded traffic of a baseline and a canary, for the demo, tests and benchmarks.

Requests arrive as a Poisson process, optionally with a daily rate curve; the canary gets
its weight's share, constant or following a step plan (5 % for 2 min, 25 % for 5 min, ...).
Each pod's error rate (and optionally latency) varies from step to step (log-normal around
the version's level), which is how errors cluster by pod and interval. Latencies are
log-normal with an optional slow mode; background error bursts hit both sides at once; new
pods warm up (the canary's, and a dedicated baseline's). Faults change the canary: more
errors, a latency shift, a tail-only regression, a slow leak of errors or latency,
intermittent failures, sparse errors, or no traffic at all, from an onset on.

The output is per-step increments (requests, errors, latency bucket counts) that can be
judged directly, written as a recorded rollout (:func:`write_recorded`, the table that
:mod:`gatekeeper.sources.recorded` reads) or as OpenMetrics for ``promtool tsdb
create-blocks-from openmetrics`` with each provider's metric names.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import NDArray

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
    LATENCY = "latency"  #: every request factor x slower (a bulk shift)
    TAIL = "tail"  #: a share of requests factor x slower: p99 up, p50 unchanged
    ERRORS_AND_TAIL = "errors-and-tail"  #: error rate x factor and a TAIL of tail_factor
    LEAK = "leak"  #: error rate growing linearly to x factor at the end
    LATENCY_LEAK = "latency-leak"  #: every request slower, growing linearly to x factor
    INTERMITTENT = "intermittent"  #: error rate x factor in one step out of five
    SPARSE = "sparse"  #: errors at ``factor`` per 10,000 requests where the baseline has none
    SILENT = "silent"  #: the canary gets no traffic


@dataclass(frozen=True, slots=True)
class Fault:
    """A fault of the canary, its size and when it starts.

    ``onset_seconds`` delays the fault: before it the canary behaves like the baseline
    (for LEAK and LATENCY_LEAK the ramp starts there; SILENT ignores it).
    """

    kind: FaultKind = FaultKind.NONE
    factor: float = 1.0
    share: float = 0.03  #: TAIL: share of slow requests
    onset_seconds: float = 0.0
    tail_factor: float = 1.0  #: ERRORS_AND_TAIL: how much slower the slow share is


@dataclass(frozen=True, slots=True)
class WeightStep:
    """One step of a canary's traffic plan: its share of requests for some seconds."""

    weight: float  #: the canary's share of requests, 0..1
    seconds: float


#: 5 % for 2 min, 25 % for 5 min, 50 % for 10 min.
EXAMPLE_PLAN = (WeightStep(0.05, 120.0), WeightStep(0.25, 300.0), WeightStep(0.5, 600.0))


@dataclass(frozen=True, slots=True)
class Scenario:
    """One simulated rollout window.

    Rates are per second of the whole service; ``canary_weight`` is the canary's share of
    requests (or ``plan``, a step plan whose last weight holds to the end); pods add
    per-(pod, step) log-normal variation of width ``pod_sigma`` to the error rate and
    ``pod_latency_sigma`` to latency.

    Everything below ``fault`` is off by default (so older scenarios give the same traffic):
    the request rate follows a daily cosine of relative swing ``diurnal_amplitude`` peaking at
    ``peak_hour`` (UTC; the window starts at ``start_hour``); ``slow_share`` of requests on
    both sides take ``slow_factor`` x longer; background error bursts (``bursts_per_hour``,
    each ``burst_seconds`` long, error rate x ``burst_factor``) hit both sides at the same
    times; new pods warm up for ``warmup_seconds`` (error rate and latency x their warm-up
    factors at start, easing linearly to 1). Canary pods are new: with a plan, pods start as
    the weight grows (the canary scales with its share), each warming up from its own start.
    With ``dedicated_baseline`` the baseline is fresh pods of the stable version at the
    canary's size and weight (``pods_canary`` pods, warming up alike); otherwise it is the
    stable pods serving the rest of the traffic.
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
    plan: tuple[WeightStep, ...] = ()
    diurnal_amplitude: float = 0.0
    start_hour: float = 12.0
    peak_hour: float = 15.0
    slow_share: float = 0.0
    slow_factor: float = 8.0
    pod_latency_sigma: float = 0.0
    bursts_per_hour: float = 0.0
    burst_seconds: float = 60.0
    burst_factor: float = 10.0
    warmup_seconds: float = 0.0
    warmup_error_factor: float = 3.0
    warmup_latency_factor: float = 2.0
    dedicated_baseline: bool = False

    @property
    def steps(self) -> int:
        """Number of steps."""
        return int(self.seconds // self.step_seconds)

    def midpoints(self) -> FloatArray:
        """Seconds from the window's start to the middle of each step."""
        return (np.arange(self.steps, dtype=float) + 0.5) * self.step_seconds

    def weights(self) -> FloatArray:
        """The canary's share of requests at each step (0 for a SILENT canary)."""
        if self.fault.kind is FaultKind.SILENT:
            return np.zeros(self.steps)
        return self.planned_weights()

    def planned_weights(self) -> FloatArray:
        """The canary's planned share of requests at each step, whatever its fault."""
        if not self.plan:
            return np.full(self.steps, self.canary_weight)
        ends = np.cumsum([step.seconds for step in self.plan])
        index = np.minimum(np.searchsorted(ends, self.midpoints(), side="right"), ends.size - 1)
        return np.array([step.weight for step in self.plan])[index]

    def request_rates(self) -> FloatArray:
        """The whole service's requests per second at each step (the daily curve)."""
        if self.diurnal_amplitude == 0.0:
            return np.full(self.steps, self.rps)
        hours = self.start_hour + self.midpoints() / 3600.0
        swing = np.cos(2.0 * math.pi * (hours - self.peak_hour) / 24.0)
        return self.rps * (1.0 + self.diurnal_amplitude * swing)


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

    def times(self, start: float) -> FloatArray:
        """The end of each step in Unix seconds, for a window starting at ``start``."""
        step = self.scenario.step_seconds
        return start + step * np.arange(1, self.scenario.steps + 1, dtype=float)


@dataclass(frozen=True, slots=True, eq=False)
class _Pods:
    """One side's pods: expected requests and warm-up multipliers per (step, pod)."""

    mean: FloatArray
    errors: FloatArray  #: error-rate multiplier of the warm-up
    latency: FloatArray  #: latency multiplier of the warm-up


def _pods(scenario: Scenario, *, shares: FloatArray, pods: int, fresh: bool) -> _Pods:
    """Spread each step's requests over the pods serving then (new pods join as shares grow)."""
    steps = scenario.steps
    served = scenario.request_rates() * scenario.step_seconds * shares
    if fresh and scenario.plan and shares.max() > 0:
        active = np.clip(np.ceil(pods * shares / shares.max() - 1e-9), 1, pods).astype(int)
    else:
        active = np.full(steps, max(pods, 1))
    serving = np.arange(pods)[None, :] < active[:, None]
    mean = np.where(serving, (served / active)[:, None], 0.0)
    ones = np.ones((steps, pods))
    if not fresh or scenario.warmup_seconds <= 0:
        return _Pods(mean=mean, errors=ones, latency=ones)
    first = np.argmax(serving, axis=0) if steps else np.zeros(pods, dtype=int)
    age = scenario.midpoints()[:, None] - first[None, :] * scenario.step_seconds
    young = np.where(serving, np.clip(1.0 - age / scenario.warmup_seconds, 0.0, 1.0), 0.0)
    return _Pods(
        mean=mean,
        errors=1.0 + (scenario.warmup_error_factor - 1.0) * young,
        latency=1.0 + (scenario.warmup_latency_factor - 1.0) * young,
    )


def _bursts(scenario: Scenario) -> FloatArray:
    """Error-rate multiplier of the background bursts per step (the same on both sides)."""
    factor = np.ones(scenario.steps)
    if scenario.bursts_per_hour <= 0:
        return factor
    rng = np.random.default_rng((scenario.seed, 3))
    count = rng.poisson(scenario.bursts_per_hour * scenario.seconds / 3600.0)
    begins = rng.uniform(0.0, scenario.seconds, count)
    step = scenario.step_seconds
    lows = np.arange(scenario.steps) * step
    for begin in begins:
        overlap = np.clip(np.minimum(lows + step, begin + scenario.burst_seconds), lows, None)
        covered = np.clip(overlap - np.maximum(lows, begin), 0.0, None) / step
        factor += (scenario.burst_factor - 1.0) * covered
    return factor


def _onset(scenario: Scenario) -> int:
    return min(scenario.steps, math.ceil(scenario.fault.onset_seconds / scenario.step_seconds))


def _ramp(steps: int, onset: int, factor: float) -> FloatArray:
    """1 before ``onset``, then linear from 1 to ``factor`` at the last step."""
    ramp = np.ones(steps)
    if steps > onset:
        ramp[onset:] = np.linspace(1.0, factor, steps - onset)
    return ramp


def _error_factor(fault: Fault, steps: int, onset: int) -> FloatArray:
    factor = np.ones(steps)
    if fault.kind in (FaultKind.ERRORS, FaultKind.ERRORS_AND_TAIL):
        factor[onset:] = fault.factor
    elif fault.kind is FaultKind.LEAK:
        factor = _ramp(steps, onset, fault.factor)
    elif fault.kind is FaultKind.INTERMITTENT:
        factor[onset::5] = fault.factor
    return factor


def _latency_factor(fault: Fault, steps: int, onset: int) -> FloatArray:
    factor = np.ones(steps)
    if fault.kind is FaultKind.LATENCY:
        factor[onset:] = fault.factor
    elif fault.kind is FaultKind.LATENCY_LEAK:
        factor = _ramp(steps, onset, fault.factor)
    return factor


def _latencies(
    rng: np.random.Generator,
    aux: np.random.Generator,
    scenario: Scenario,
    *,
    per_pod: NDArray[np.int64],
    pods: _Pods,
    fault: Fault,
) -> FloatArray:
    """Latency bucket counts per step: log-normal, then the slow mode, warm-up and fault."""
    steps, onset = scenario.steps, _onset(scenario)
    shift = _latency_factor(fault, steps, onset)
    pod_factor = pods.latency
    if scenario.pod_latency_sigma > 0:
        sigma = scenario.pod_latency_sigma
        pod_factor = pod_factor * np.exp(sigma * aux.standard_normal(pod_factor.shape))
    buckets = np.zeros((steps, BUCKETS.size))
    for k in range(steps):
        n = int(per_pod[k].sum())
        if n == 0:
            continue
        latency = rng.lognormal(math.log(scenario.latency_median), scenario.latency_sigma, n)
        if shift[k] != 1.0:
            latency *= shift[k]
        elif fault.kind is FaultKind.TAIL and k >= onset:
            slow = rng.random(n) < fault.share
            latency[slow] *= fault.factor
        elif fault.kind is FaultKind.ERRORS_AND_TAIL and k >= onset:
            slow = rng.random(n) < fault.share
            latency[slow] *= fault.tail_factor
        if scenario.slow_share > 0:
            latency[aux.random(n) < scenario.slow_share] *= scenario.slow_factor
        if np.any(pod_factor[k] != 1.0):
            latency *= np.repeat(pod_factor[k], per_pod[k])
        buckets[k] = np.searchsorted(np.sort(latency), BUCKETS, side="right")
    return buckets


def _side(
    rng: np.random.Generator,
    scenario: Scenario,
    *,
    shares: FloatArray,
    pods: int,
    canary: bool,
    fresh: bool,
    bursts: FloatArray,
) -> SideTraffic:
    steps = scenario.steps
    fault = scenario.fault if canary else Fault()
    aux = np.random.default_rng((scenario.seed, 1 if canary else 2))
    spread = _pods(scenario, shares=shares, pods=pods, fresh=fresh)
    per_pod = rng.poisson(spread.mean, size=(steps, pods))
    requests = per_pod.sum(axis=1).astype(float)
    multiplier = np.exp(
        scenario.pod_sigma * rng.standard_normal((steps, pods)) - scenario.pod_sigma**2 / 2
    )
    onset = _onset(scenario)
    rate = scenario.error_rate * multiplier * _error_factor(fault, steps, onset)[:, None]
    if fault.kind is FaultKind.SPARSE:
        rate[onset:] = fault.factor / 10_000.0
    rate = rate * bursts[:, None] * spread.errors
    errors = rng.binomial(per_pod, np.clip(rate, 0.0, 1.0)).sum(axis=1).astype(float)
    buckets = _latencies(rng, aux, scenario, per_pod=per_pod, pods=spread, fault=fault)
    return SideTraffic(requests=requests, errors=errors, buckets=buckets)


def simulate(scenario: Scenario) -> Traffic:
    """Simulate both sides of ``scenario`` (seeded: the same scenario gives the same traffic)."""
    rng = np.random.default_rng(scenario.seed)
    weights = scenario.weights()
    bursts = _bursts(scenario)
    dedicated = scenario.dedicated_baseline
    planned = scenario.planned_weights()
    baseline = _side(
        rng,
        scenario,
        shares=planned if dedicated else 1.0 - planned,
        pods=scenario.pods_canary if dedicated else scenario.pods_baseline,
        canary=False,
        fresh=dedicated,
        bursts=bursts,
    )
    canary = _side(
        rng,
        scenario,
        shares=weights,
        pods=scenario.pods_canary,
        canary=True,
        fresh=True,
        bursts=bursts,
    )
    return Traffic(scenario=scenario, baseline=baseline, canary=canary)


# --- recorded rollouts ---------------------------------------------------------------------

RECORDED_COLUMNS = ("time", "side", "metric", "bad", "total", "value", "le", "count")


def _rfc3339(times: FloatArray) -> list[str]:
    stamps = pd.to_datetime(times, unit="s", utc=True)
    return [stamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ").replace(".000000Z", "Z") for stamp in stamps]


def recorded_table(
    traffic: Traffic,
    *,
    start: float,
    error_metric: str = "error-rate",
    latency_metric: str = "latency",
    rfc3339: bool = False,
) -> pd.DataFrame:
    """The traffic as a recorded rollout (the table README.md describes).

    Parameters
    ----------
    traffic : Traffic
        Simulated traffic.
    start : float
        Unix seconds of the window's start; a row's ``time`` is the end of its step.
    error_metric, latency_metric : str
        Names of the RATIO (errors / requests) and HISTOGRAM (latency, seconds) metrics.
    rfc3339 : bool
        Write times as RFC 3339 text instead of epoch seconds.

    Returns
    -------
    pandas.DataFrame
        Columns ``time, side, metric, bad, total, value, le, count``; steps in which a side
        served no request have no rows (a SILENT canary has none at all).
    """
    times = traffic.times(start)
    frames = []
    for name, side in (("baseline", traffic.baseline), ("canary", traffic.canary)):
        served = side.requests > 0
        ratio = pd.DataFrame(
            {
                "time": times[served],
                "side": name,
                "metric": error_metric,
                "bad": side.errors[served],
                "total": side.requests[served],
            }
        )
        steps, bounds = np.nonzero(np.broadcast_to(served[:, None], side.buckets.shape))
        labels = np.array(["+Inf" if math.isinf(b) else f"{b:g}" for b in BUCKETS])
        histogram = pd.DataFrame(
            {
                "time": times[steps],
                "side": name,
                "metric": latency_metric,
                "le": labels[bounds],
                "count": side.buckets[steps, bounds],
            }
        )
        frames += [ratio, histogram]
    table = pd.concat(frames, ignore_index=True).reindex(columns=list(RECORDED_COLUMNS))
    table = table.sort_values(["time", "side", "metric"], kind="stable", ignore_index=True)
    if rfc3339:
        table["time"] = _rfc3339(table["time"].to_numpy(dtype=float))
    return table


def write_recorded(
    traffic: Traffic,
    path: str | Path,
    *,
    start: float,
    error_metric: str = "error-rate",
    latency_metric: str = "latency",
    rfc3339: bool = False,
) -> Path:
    """Write :func:`recorded_table` as CSV, or Parquet when ``path`` ends in ``.parquet``."""
    target = Path(path)
    table = recorded_table(
        traffic,
        start=start,
        error_metric=error_metric,
        latency_metric=latency_metric,
        rfc3339=rfc3339,
    )
    if target.suffix == ".parquet":
        table.to_parquet(target, index=False)
    else:
        table.to_csv(target, index=False)
    return target


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
