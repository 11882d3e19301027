"""Health checks during issue 19's 10,000-metric request, and the dispatch cost estimate.

Run by hand (``python -m benchmarks.hostile_load``; never from the tests). Starts
``gatekeeper serve --max-metrics 10000`` in its own process, sends the issue's request
(10,000 RATIO metrics of one interval each, Look 1/20, EITHER, ``absolute_tolerance``
0.01: 20,000 points, about 700 kB) and, while it is judged, times health checks from a
client of its own. Then, in this process, compares :func:`gatekeeper.server.cost.estimated_ms`
with the measured judge time for a few request shapes, including a cut-down version of the
big one. Results go to ``benchmarks/results/hostile_load.json``.

Goal: every health check during the big request under 100 ms; the shutdown (SIGTERM) with
``--grace-seconds 2`` under 2 + 5 s.
"""

from __future__ import annotations

import json
import os
import platform
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import grpc
import numpy as np
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gatekeeper.api.v1 import gatekeeper_pb2 as pb
from gatekeeper.api.v1 import gatekeeper_pb2_grpc as pb_grpc
from gatekeeper.server import cost, worker

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "hostile_load.json"
#: Health checks sent during the big request (bounded in count and in time).
CHECKS = 200
CHECK_SPACING_SECONDS = 0.05


def many_metrics(count: int, *, looked: bool = True) -> pb.JudgeRequest:
    """Issue 19's request with ``count`` metrics."""
    request = pb.JudgeRequest()
    if looked:
        request.look.CopyFrom(pb.Look(index=1, planned=20))
    for index in range(count):
        metric = request.metrics.add()
        metric.config.name = f"errors-{index}"
        metric.config.kind = pb.METRIC_KIND_RATIO
        metric.config.direction = pb.DIRECTION_EITHER
        metric.config.absolute_tolerance = 0.01
        metric.baseline.counts.add(bad=1, total=100)
        metric.canary.counts.add(bad=1, total=100)
    return request


def values_request(metrics: int, points: int) -> pb.JudgeRequest:
    """VALUES metrics of log-normal samples (seeded)."""
    rng = np.random.default_rng(7)
    request = pb.JudgeRequest()
    for index in range(metrics):
        metric = request.metrics.add()
        metric.config.name = f"latency-{index}"
        metric.config.kind = pb.METRIC_KIND_VALUES
        metric.baseline.values.extend(rng.lognormal(0.0, 0.3, points).tolist())
        metric.canary.values.extend(rng.lognormal(0.0, 0.3, points).tolist())
    return request


def start_server(*flags: str) -> tuple[subprocess.Popen[str], str]:
    """``gatekeeper serve --port 0`` in its own process; its address."""
    command = [sys.executable, "-m", "gatekeeper.cli", "serve", "--port", "0", *flags]
    server = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    assert server.stdout is not None
    match = re.search(r"serving on (\S+)", server.stdout.readline())
    if match is None:
        server.kill()
        raise SystemExit("the server did not start")
    return server, match.group(1)


def health_during_big_request() -> dict[str, Any]:
    """Health-check latencies while the 10,000-metric request is judged; then SIGTERM."""
    flags = ("--workers", "1", "--max-metrics", "10000", "--grace-seconds", "2")
    server, target = start_server(*flags)
    try:
        with grpc.insecure_channel(target) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            health.Check(health_pb2.HealthCheckRequest(), timeout=10)  # connected
            started = time.perf_counter()
            big = pb_grpc.GatekeeperStub(channel).Judge.future(many_metrics(10_000), timeout=600)
            latencies: list[float] = []
            while len(latencies) < CHECKS and not big.done():
                time.sleep(CHECK_SPACING_SECONDS)
                begin = time.perf_counter()
                health.Check(health_pb2.HealthCheckRequest(), timeout=10)
                latencies.append((time.perf_counter() - begin) * 1e3)
            in_progress = not big.done()
            stop_begin = time.perf_counter()
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=60)
            shutdown = time.perf_counter() - stop_begin
    finally:
        if server.poll() is None:
            server.kill()
    ms = np.array(latencies)
    return {
        "checks": len(latencies),
        "big_request_still_in_progress_after_checks": in_progress,
        "seconds_of_checks": round(time.perf_counter() - started - shutdown, 2),
        "health_p50_ms": round(float(np.median(ms)), 2),
        "health_p99_ms": round(float(np.percentile(ms, 99)), 2),
        "health_max_ms": round(float(ms.max()), 2),
        "shutdown_seconds_with_grace_2": round(shutdown, 2),
    }


def estimate_vs_measured() -> list[dict[str, Any]]:
    """The dispatch estimate beside the judge time measured in this process."""
    shapes = {
        "ratio 500 metrics, look, EITHER": many_metrics(500),
        "ratio 500 metrics, fixed, EITHER": many_metrics(500, looked=False),
        "values 10 x 1,000 points": values_request(10, 1_000),
        "values 1 x 10,000 points": values_request(1, 10_000),
    }
    rows = []
    for name, request in shapes.items():
        data = request.SerializeToString()
        times = []
        for _ in range(3):
            begin = time.perf_counter()
            worker.judge_bytes(data, max_metrics=10_000)
            times.append((time.perf_counter() - begin) * 1e3)
        rows.append(
            {
                "shape": name,
                "points": worker.data_points(request),
                "estimated_ms": round(cost.estimated_ms(request), 1),
                "measured_ms": round(float(np.median(times)), 1),
            }
        )
    return rows


def main() -> None:
    """Measure, print and write the results."""
    report = {
        "machine": {"python": platform.python_version(), "cpus": len(os.sched_getaffinity(0))},
        "health_during_10000_metrics": health_during_big_request(),
        "estimate_vs_measured": estimate_vs_measured(),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
