"""Live simulated traffic: a data source for Analyze that unfolds as (simulated) time passes.

The controller's tests and the demo need a real gatekeeper server with a real metric
source whose canary traffic follows the weights the controller actually sets. A
:class:`LiveSimulation` generates baseline and canary traffic chunk by chunk with
:func:`gatekeeper.simulate.simulate`: each chunk covers the time since the last one at the
canary weight read at that moment (from the router), plus any synthetic load a load test
adds to the canary. Analyze then reads the per-interval sums of the window it asks for, by
metric kind: RATIO as errors of all requests, HISTOGRAM as latency buckets, VALUES as the
per-step p99 latency. Selectors are not needed: the source knows which side is which.

The canary's behaviour is a :class:`Behaviour`: its fault, optionally only "under load"
(above a canary request rate), so a broken version can look healthy while traffic is thin.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from gatekeeper import simulate
from gatekeeper.sources.base import Window
from gatekeeper.spec import AnalysisSpec
from gatekeeper.stats import tails
from gatekeeper.stats.model import FloatArray, HistogramSeries, MetricData, RatioSeries, Series
from gatekeeper.stats.results import MetricKind


@dataclass(frozen=True, slots=True)
class Behaviour:
    """How the canary version behaves.

    ``fault`` from ``under_load_rps`` canary requests per second on, ``quiet`` below
    (healthy by default): a version can be subtly slow when idle and fail under load.
    """

    fault: simulate.Fault = field(default_factory=simulate.Fault)
    under_load_rps: float = 0.0
    quiet: simulate.Fault = field(default_factory=simulate.Fault)

    def fault_at(self, canary_rps: float) -> simulate.Fault:
        """The fault in force at this canary request rate."""
        if canary_rps < self.under_load_rps:
            return self.quiet
        return self.fault


@dataclass
class _History:
    times: list[float] = field(default_factory=list)
    baseline: list[simulate.SideTraffic] = field(default_factory=list)
    canary: list[simulate.SideTraffic] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Load:
    """Synthetic canary requests per second until a time (a load test)."""

    rps: float
    until: float


class LiveSimulation:
    """A :class:`gatekeeper.engine.DataSource` of simulated traffic following live weights.

    Parameters
    ----------
    base : Scenario
        Service-wide settings (rate, error rate, latency, pods); its ``seconds``,
        ``canary_weight`` and ``fault`` are set per chunk.
    weight : callable
        The canary's current share of requests, 0..1 (read once per chunk).
    clock : callable
        The current (simulated) time in Unix seconds.
    behaviour : Behaviour
        The canary version's behaviour.
    start : float
        When traffic starts (default: the clock's first reading).
    """

    def __init__(
        self,
        *,
        base: simulate.Scenario,
        weight: Callable[[], float],
        clock: Callable[[], float],
        behaviour: Behaviour | None = None,
        start: float | None = None,
    ) -> None:
        self.base = base
        self._weight = weight
        self._clock = clock
        self.behaviour = behaviour or Behaviour()
        self._generated_until = clock() if start is None else start
        self._history = _History()
        self._loads: list[Load] = []
        self._chunks = 0
        self._lock = threading.Lock()

    def set_behaviour(self, behaviour: Behaviour) -> None:
        """Switch the canary version's behaviour from now on (a new canary version)."""
        with self._lock:
            self._advance(self._clock())
            self.behaviour = behaviour

    def add_load(self, *, rps: float, seconds: float) -> None:
        """Send ``rps`` synthetic requests per second to the canary for ``seconds`` from now."""
        with self._lock:
            now = self._clock()
            self._advance(now)
            self._loads.append(Load(rps=rps, until=now + seconds))

    def stop_load(self) -> None:
        """End every load test now (its Job was deleted)."""
        with self._lock:
            self._advance(self._clock())
            self._loads = []

    def advance(self) -> None:
        """Generate the traffic up to the clock's current time."""
        with self._lock:
            self._advance(self._clock())

    def canary_requests(self, *, since: float = -math.inf) -> float:
        """Canary requests served since a time (for reports)."""
        with self._lock:
            self._advance(self._clock())
            return self._sum_canary(since, "requests")

    def canary_errors(self, *, since: float = -math.inf) -> float:
        """Canary bad requests served since a time (for reports)."""
        with self._lock:
            self._advance(self._clock())
            return self._sum_canary(since, "errors")

    def _sum_canary(self, since: float, what: str) -> float:
        total = 0.0
        step = self.base.step_seconds
        for end, side in zip(self._history.times, self._history.canary, strict=True):
            values: FloatArray = getattr(side, what)
            times = end - step * np.arange(values.size)[::-1]
            total += float(values[times > since].sum())
        return total

    def _advance(self, now: float) -> None:
        step = self.base.step_seconds
        steps = int((now - self._generated_until) // step)
        if steps <= 0:
            return
        weight = min(max(self._weight(), 0.0), 1.0)
        start = self._generated_until
        extra = sum(load.rps for load in self._loads if load.until > start)
        self._loads = [load for load in self._loads if load.until > start]
        rps = self.base.rps + extra
        canary_rps = weight * self.base.rps + extra
        scenario = replace(
            self.base,
            seconds=steps * step,
            rps=rps,
            canary_weight=canary_rps / rps if rps > 0 else 0.0,
            fault=self.behaviour.fault_at(canary_rps),
            seed=self.base.seed * 100_003 + self._chunks,
            plan=(),
        )
        self._chunks += 1
        traffic = simulate.simulate(scenario)
        self._history.times.append(start + steps * step)
        self._history.baseline.append(traffic.baseline)
        self._history.canary.append(traffic.canary)
        self._generated_until = start + steps * step

    def _steps(self, side: str) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
        """End time, requests, errors and buckets of every generated step of one side."""
        step = self.base.step_seconds
        chunks: list[simulate.SideTraffic] = getattr(self._history, side)
        if not chunks:
            empty = np.zeros(0)
            return empty, empty, empty, np.zeros((0, simulate.BUCKETS.size))
        times = np.concatenate(
            [
                end - step * np.arange(c.requests.size)[::-1]
                for end, c in zip(self._history.times, chunks, strict=True)
            ]
        )
        requests = np.concatenate([c.requests for c in chunks])
        errors = np.concatenate([c.errors for c in chunks])
        buckets = np.vstack([c.buckets for c in chunks])
        return times, requests, errors, buckets

    def fetch(self, spec: AnalysisSpec, *, sides: object, window: Window) -> list[MetricData]:
        """Both sides of every metric of ``spec`` over ``window``, by metric kind."""
        with self._lock:
            self._advance(min(self._clock(), window.end))
            data = {side: self._steps(side) for side in ("baseline", "canary")}
        metrics = []
        for metric in spec.metrics:
            settings = spec.settings(metric)
            baseline = _series(settings.kind, data["baseline"], window)
            canary = _series(settings.kind, data["canary"], window)
            metrics.append(MetricData(settings, baseline, canary, queries=("simulated",)))
        return metrics


def _series(
    kind: MetricKind, steps: tuple[FloatArray, FloatArray, FloatArray, FloatArray], window: Window
) -> Series:
    times, requests, errors, buckets = steps
    index = np.ceil((times - window.start) / window.step - 1e-9).astype(int) - 1
    keep = (index >= 0) & (index < window.points)
    if kind is MetricKind.VALUES:
        rows = buckets[keep]
        values = [
            tails.histogram_quantile(q=0.99, upper_bounds=simulate.BUCKETS, cumulative=row)
            for row in rows
            if row[-1] > 0
        ]
        return np.asarray(values, dtype=float)
    sums = np.zeros((window.points, buckets.shape[1] + 2))
    np.add.at(sums, index[keep], np.column_stack((requests, errors, buckets))[keep])
    if kind is MetricKind.RATIO:
        return RatioSeries(bad=sums[:, 1].copy(), total=sums[:, 0].copy())
    # Each step's buckets are cumulative already; sums of cumulative counts stay cumulative.
    return HistogramSeries(upper_bounds=simulate.BUCKETS.copy(), counts=sums[:, 2:].copy())
