"""Cost of one Analyze: 10 metrics over 1 hour at a 30 s interval, against a local Prometheus.

Run by hand (``make bench-analyze``; needs Debian's ``prometheus``): backfills an hour of
simulated traffic, starts Prometheus on 127.0.0.1, then measures fetch (rendering and range
queries, as engine.fetch does them) and judge apart, over repeated runs. Writes
``benchmarks/results/analyze_cost.json``. Goal: the whole Analyze within 1.5x the fetch.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gatekeeper import engine  # noqa: E402
from gatekeeper.sources.base import Window  # noqa: E402
from gatekeeper.sources.prometheus import PrometheusSource  # noqa: E402
from gatekeeper.spec import load_spec  # noqa: E402
from tests.integration import prom  # noqa: E402

RUNS = 15
HOUR = 3600.0
#: Ten metrics: a RATIO and a HISTOGRAM metric of five services.
SERVICES = ("healthy", "errors", "tail", "quiet", "healthy")
MATCH = 'namespace="ns-generic", service="{service}", {{{{selector}}}}'
RATIO = (
    "  - name: errors-{i}\n    kind: RATIO\n"
    "    bad: 'sum(increase(http_requests_total{{"
    + MATCH
    + ', code="500"}}[{{{{interval}}}}]))\'\n'
    "    total: 'sum(increase(http_requests_total{{" + MATCH + "}}[{{{{interval}}}}]))'\n"
)
HISTOGRAM = (
    "  - name: latency-{i}\n    kind: HISTOGRAM\n    buckets: 'sum by (le) (increase("
    "http_request_duration_seconds_bucket{{" + MATCH + "}}[{{{{interval}}}}]))'\n"
)
SPEC = load_spec(
    "interval: 30s\nmetrics:\n"
    + "".join(
        RATIO.format(i=i, service=s) + HISTOGRAM.format(i=i, service=s)
        for i, s in enumerate(SERVICES)
    )
)


def main() -> None:
    prom.WINDOW = HOUR  # an hour of history
    folder = Path(tempfile.mkdtemp(prefix="analyze-cost-"))
    end = (time.time() // 60) * 60 - 120
    start = prom.backfill(folder, end=end)
    server = prom.start_prometheus(folder, start=start, end=end)
    source = PrometheusSource(server.url)
    sides = engine.Sides('track="baseline"', 'track="canary"')
    window = Window(start, end, 30.0)
    fetch_ms, judge_ms, total_ms = [], [], []
    try:
        for run in range(RUNS + 1):
            began = time.perf_counter()
            metrics = engine.fetch(SPEC, source=source, sides=sides, window=window)
            fetched = time.perf_counter()
            verdict = engine.judge(metrics, SPEC.judge_settings(interval_seconds=30.0))
            done = time.perf_counter()
            if run == 0:
                continue  # warm-up: connections, caches
            fetch_ms.append((fetched - began) * 1e3)
            judge_ms.append((done - fetched) * 1e3)
            total_ms.append((done - began) * 1e3)
    finally:
        source.close()
        server.stop()
    fetch, judge, total = (statistics.median(v) for v in (fetch_ms, judge_ms, total_ms))
    result = {
        "machine": {
            "python": platform.python_version(),
            "cpu_count": os.cpu_count(),
            "load_average": os.getloadavg(),
        },
        "metrics": len(SPEC.metrics),
        "window_seconds": HOUR,
        "interval_seconds": 30.0,
        "points_per_query": window.points,
        "queries": sum(len(SPEC.query_templates(m)) for m in SPEC.metrics) * 2,
        "runs": RUNS,
        "fetch_median_ms": fetch,
        "judge_median_ms": judge,
        "total_median_ms": total,
        "total_over_fetch": total / fetch,
        "goal_total_within_1_5x_fetch": total <= 1.5 * fetch,
        "decision": verdict.decision.value,
    }
    out = ROOT / "benchmarks" / "results" / "analyze_cost.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(
        f"Analyze of {result['metrics']} metrics over 1 h at 30 s ({window.points} points, "
        f"{result['queries']} queries): fetch {fetch:.1f} ms, judge {judge:.1f} ms, "
        f"total {total:.1f} ms = {total / fetch:.2f}x the fetch (goal <= 1.5x)"
    )


if __name__ == "__main__":
    main()
