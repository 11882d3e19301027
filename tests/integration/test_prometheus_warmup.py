"""Analyze takes pod ages from ``kube_pod_start_time`` of a real Prometheus, else first samples.

A Prometheus of its own, backfilled with promtool: three baseline pods running since an hour
before the window, and two one-pod canaries that start serving ten minutes into it. The
``early`` canary's pod has a ``kube_pod_start_time`` 90 s before its first request (kube-state-
metrics' value: the pod's start in Unix seconds); the ``nostart`` canary's pod has none, so its
first sample is its start. Warm-up is the spec's default 2m.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Iterator

import numpy as np
import pytest

from gatekeeper import engine
from gatekeeper.sources.base import Window
from gatekeeper.sources.prometheus import PrometheusSource
from gatekeeper.spec import load_spec
from gatekeeper.stats.model import MetricData
from gatekeeper.stats.results import Verdict
from tests.integration import prom

STEP, WINDOW = 15.0, 1800.0
SERVING = 600.0  # the canaries' pods serve from here (seconds into the data)
PODS = {"baseline": ("baseline-0", "baseline-1", "baseline-2"), "early": ("early-0",)}
PODS |= {"nostart": ("nostart-0",)}
SPEC = load_spec(
    "provider: generic\nservice: warm\nnamespace: ns\ninterval: 30s\nmetrics:\n"
    "  - {name: errors, template: request-success-rate}\n"
)


def _started(track: str, start: float) -> float | None:
    """Each track's kube_pod_start_time (None: kube-state-metrics has no such series)."""
    return {"baseline": start - 3600.0, "early": start + SERVING - 90.0}.get(track)


def _history(start: float) -> str:
    """Cumulative counters every 15 s (40 requests per pod and step, 1 % errors) and the
    pods' start times."""
    rng = np.random.default_rng(17)
    lines = ["# TYPE http_requests counter"]
    gauges = ["# TYPE kube_pod_start_time gauge"]
    steps = int(WINDOW / STEP)
    for track, pods in PODS.items():
        first = 0 if track == "baseline" else int(SERVING / STEP)
        for pod in pods:
            requests = rng.poisson(40.0, steps - first).cumsum()
            errors = rng.binomial(rng.poisson(40.0, requests.size), 0.01).cumsum()
            for code, counts in (("200", requests), ("500", errors)):
                labels = f'service="warm",namespace="ns",track="{track}",pod="{pod}",code="{code}"'
                for k, value in enumerate(counts, start=first + 1):
                    lines.append(f"http_requests_total{{{labels}}} {value} {start + k * STEP:.0f}")
            began = _started(track, start)
            if began is not None:
                for k in range(first + 1, steps + 1):
                    gauges.append(
                        f'kube_pod_start_time{{namespace="ns",pod="{pod}"}} {began:.0f} '
                        f"{start + k * STEP:.0f}"
                    )
    return "\n".join(lines + gauges) + "\n# EOF\n"


@pytest.fixture(scope="module")
def warm_prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[prom.PrometheusServer]:
    if shutil.which("prometheus") is None:
        pytest.skip("Debian's prometheus package is not installed")
    folder = tmp_path_factory.mktemp("prometheus-warmup")
    end = (time.time() // 60) * 60 - 120
    start = end - WINDOW
    source = folder / "history.om"
    source.write_text(_history(start))
    _, promtool = prom.binaries()
    subprocess.run(
        [promtool, "tsdb", "create-blocks-from", "openmetrics", str(source), str(folder / "data")],
        check=True,
        capture_output=True,
        timeout=300,
    )
    server = prom.start_prometheus(folder, start=start, end=end)
    yield server
    server.stop()


def _analyze(server: prom.PrometheusServer, canary: str) -> tuple[MetricData, Verdict, Window]:
    sides = engine.Sides(baseline='track="baseline"', canary=f'track="{canary}"')
    window = Window(server.start + 60, server.end, 30.0)
    source = PrometheusSource(server.url)
    try:
        data = engine.PromQLData(source)
        fetched = data.fetch(SPEC, sides=sides, window=window)
        verdict = engine.analyze(SPEC, data=data, sides=sides, window=window)
    finally:
        source.close()
    return fetched[0], verdict, window


def _left_out(reason: str) -> tuple[float, float]:
    found = re.search(
        r"left out: ([\d,]+) of [\d,]+ canary and ([\d,]+) of [\d,]+ baseline", reason
    )
    assert found is not None, reason
    return float(found.group(1).replace(",", "")), float(found.group(2).replace(",", ""))


def test_pod_ages_come_from_kube_pod_start_time(warm_prometheus: prom.PrometheusServer) -> None:
    data, verdict, window = _analyze(warm_prometheus, "early")
    start = warm_prometheus.start
    assert data.pod_starts["baseline-0"] == pytest.approx(start - 3600.0 - window.start)
    assert data.pod_starts["early-0"] == pytest.approx(start + SERVING - 90.0 - window.start)
    canary, baseline = _left_out(verdict.metrics[0].reason)
    assert baseline == 0.0  # old pods: nothing of the baseline is warm-up
    assert canary > 0.0


def test_without_a_start_time_the_first_sample_is_the_start(
    warm_prometheus: prom.PrometheusServer,
) -> None:
    _, early_verdict, _ = _analyze(warm_prometheus, "early")
    late, late_verdict, _ = _analyze(warm_prometheus, "nostart")
    assert "nostart-0" not in late.pod_starts
    # the pod known to have started 90 s before its first request leaves 30 s of warm-up,
    # the one without a start time the whole 2 minutes from its first sample
    early_out, _ = _left_out(early_verdict.metrics[0].reason)
    late_out, _ = _left_out(late_verdict.metrics[0].reason)
    assert 0 < early_out < late_out / 2
