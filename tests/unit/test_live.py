"""LiveSimulation: simulated traffic that follows the live canary weight, load and behaviour."""

from __future__ import annotations

import asyncio
import re

import numpy as np
import pytest

from gatekeeper import engine, simulate
from gatekeeper.api.v1 import gatekeeper_pb2 as pb
from gatekeeper.client import GatekeeperClient
from gatekeeper.live import Behaviour, LiveSimulation
from gatekeeper.server import app
from gatekeeper.sources.base import Window
from gatekeeper.spec import load_spec
from gatekeeper.stats.model import HistogramSeries, RatioSeries
from gatekeeper.stats.results import Decision

START = 1_800_000_000.0
SPEC = load_spec(
    "metrics:\n"
    "  - {name: errors, template: request-success-rate, critical: true}\n"
    "  - {name: latency, template: request-duration}\n"
    "  - {name: p99, kind: VALUES, query: 'x{ {{selector}} }'}\n"
)
SIDES = engine.Sides('track="baseline"', 'track="canary"')


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


def live(weight: list[float], clock: Clock, behaviour: Behaviour | None = None) -> LiveSimulation:
    return LiveSimulation(
        base=simulate.Scenario(rps=100.0, step_seconds=5.0, seed=3),
        weight=lambda: weight[0],
        clock=clock,
        behaviour=behaviour,
    )


def test_canary_traffic_follows_the_weight_read_at_each_chunk() -> None:
    clock, weight = Clock(), [0.1]
    source = live(weight, clock)
    clock.now += 600
    source.advance()
    weight[0] = 0.5
    clock.now += 600
    first = source.canary_requests(since=START)
    second = source.canary_requests(since=START + 600)
    assert 0.08 * 100 * 600 < first - second < 0.12 * 100 * 600
    assert 0.45 * 100 * 600 < second < 0.55 * 100 * 600


def test_fetch_sums_steps_into_the_window_intervals() -> None:
    clock, weight = Clock(), [0.2]
    source = live(weight, clock)
    clock.now += 300
    metrics = source.fetch(SPEC, sides=SIDES, window=Window(START, START + 300, 30))
    errors, latency, p99 = metrics
    assert isinstance(errors.canary, RatioSeries) and errors.canary.intervals == 10
    assert errors.canary.total.sum() == pytest.approx(source.canary_requests(), rel=1e-9)
    assert isinstance(latency.canary, HistogramSeries)
    assert np.allclose(latency.canary.counts[:, -1], errors.canary.total)
    assert np.all(np.diff(latency.canary.counts, axis=1) >= 0)  # cumulative buckets
    assert isinstance(p99.canary, np.ndarray) and p99.canary.size == 60  # one p99 per 5 s step


def test_a_load_test_adds_canary_requests_and_wakes_a_fault_that_needs_load() -> None:
    clock, weight = Clock(), [0.05]
    broken = Behaviour(fault=simulate.Fault(simulate.FaultKind.ERRORS, 10.0), under_load_rps=20.0)
    source = live(weight, clock, broken)
    clock.now += 600
    window = Window(START, clock.now, 30)
    quiet = engine.analyze(SPEC, data=source, sides=SIDES, window=window)
    assert quiet.decision is not Decision.FAIL  # 5 rps: the fault does not show
    source.add_load(rps=30.0, seconds=600)
    loaded_from = clock.now
    clock.now += 600
    assert source.canary_requests(since=loaded_from) > 30 * 600
    loaded = engine.analyze(
        SPEC, data=source, sides=SIDES, window=Window(loaded_from, clock.now, 30)
    )
    assert loaded.decision is Decision.FAIL


def test_a_server_analyzes_live_simulated_traffic() -> None:
    clock, weight = Clock(), [0.3]
    source = live(weight, clock)
    clock.now += 900

    async def scenario() -> pb.Verdict:
        running = await app.start(app.ServerConfig(port=0, workers=1), data=source)
        try:
            request = pb.AnalyzeRequest(
                spec="metrics: [{name: errors, template: request-success-rate}]",
                baseline_selector='track="baseline"',
                canary_selector='track="canary"',
            )
            request.start.FromSeconds(int(START))
            request.end.FromSeconds(int(clock.now))
            return await asyncio.to_thread(_analyze, running.target, request)
        finally:
            await running.stop(0)

    verdict = asyncio.run(scenario())
    assert verdict.decision in (pb.DECISION_PASS, pb.DECISION_INCONCLUSIVE)  # a healthy canary
    # the canary's first 2 minutes are warm-up (the spec's default): left out, and said so
    found = re.search(r"left out: ([\d,]+) of ([\d,]+) canary", verdict.metrics[0].reason)
    assert found is not None, verdict.metrics[0].reason
    left_out, total = (float(group.replace(",", "")) for group in found.groups())
    assert total == pytest.approx(source.canary_requests())
    assert verdict.metrics[0].canary.count == pytest.approx(total - left_out)
    assert verdict.metrics[0].queries == ["simulated"]


def _analyze(target: str, request: pb.AnalyzeRequest) -> pb.Verdict:
    with GatekeeperClient(target) as client:
        return client.analyze(request)
