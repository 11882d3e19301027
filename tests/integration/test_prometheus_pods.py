"""Analyze fetches RATIO counts per pod (``sum by (pod)``) from a real Prometheus.

A Prometheus of its own, backfilled with promtool: five baseline pods, three canary pods
and a one-pod canary of the generic provider's ``http_requests_total``, with the ``pod``
label a scrape of the pods gives. The verdict's queries keep ``sum by (pod)``, the fetched
series are per pod, and a canary on one pod is named in the reason.
"""

from __future__ import annotations

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
from gatekeeper.stats.model import RatioSeries
from tests.integration import prom

STEP, WINDOW = 15.0, 1800.0
PODS = {"baseline": 5, "canary": 3, "solo": 1}  # by track: solo is a one-pod canary


def _history(start: float) -> str:
    """Cumulative counters every 15 s: 40 requests per pod and step, 1 % errors."""
    rng = np.random.default_rng(16)
    lines = ["# TYPE http_requests counter"]
    for track, pods in PODS.items():
        for pod in range(pods):
            requests = rng.poisson(40.0, int(WINDOW / STEP)).cumsum()
            errors = rng.binomial(rng.poisson(40.0, requests.size), 0.01).cumsum()
            for code, counts in (("200", requests), ("500", errors)):
                labels = (
                    f'service="pods",namespace="ns",track="{track}",'
                    f'pod="{track}-{pod}",code="{code}"'
                )
                for k, value in enumerate(counts):
                    lines.append(
                        f"http_requests_total{{{labels}}} {value} {start + (k + 1) * STEP:.0f}"
                    )
    return "\n".join(lines) + "\n# EOF\n"


@pytest.fixture(scope="module")
def pod_prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[prom.PrometheusServer]:
    if shutil.which("prometheus") is None:
        pytest.skip("Debian's prometheus package is not installed")
    folder = tmp_path_factory.mktemp("prometheus-pods")
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


def _analyze(server: prom.PrometheusServer, canary: str) -> tuple[list[RatioSeries], str]:
    spec = load_spec(
        "provider: generic\nservice: pods\nnamespace: ns\ninterval: 30s\nmetrics:\n"
        "  - {name: errors, template: request-success-rate}\n"
    )
    sides = engine.Sides(baseline='track="baseline"', canary=f'track="{canary}"')
    window = Window(server.start + 60, server.end, 30.0)
    source = PrometheusSource(server.url)
    try:
        data = engine.PromQLData(source)
        fetched = data.fetch(spec, sides=sides, window=window)
        verdict = engine.analyze(spec, data=data, sides=sides, window=window)
    finally:
        source.close()
    series = [fetched[0].baseline, fetched[0].canary]
    assert all(isinstance(s, RatioSeries) for s in series)
    assert all("sum by (pod)" in q for q in verdict.metrics[0].queries)
    return series, verdict.metrics[0].reason  # type: ignore[return-value]


def test_analyze_fetches_each_pods_counts(pod_prometheus: prom.PrometheusServer) -> None:
    (baseline, canary), reason = _analyze(pod_prometheus, "canary")
    assert baseline.pods is not None and canary.pods is not None
    assert baseline.pods.names == tuple(f"baseline-{j}" for j in range(5))
    assert canary.pods.count == 3
    np.testing.assert_allclose(baseline.pods.total.sum(axis=1), baseline.total)
    assert baseline.total.sum() > 10_000
    assert "cannot be told apart" not in reason


def test_a_single_canary_pod_is_named_in_the_reason(pod_prometheus: prom.PrometheusServer) -> None:
    (_, canary), reason = _analyze(pod_prometheus, "solo")
    assert canary.pods is not None and canary.pods.names == ("solo-0",)
    assert "this pod and this version cannot be told apart" in reason
