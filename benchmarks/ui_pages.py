"""Cost of the verdict pages: keeping a verdict, rendering its page, the store's memory.

Run by ``make bench-ui`` (never from the tests). Writes ``benchmarks/results/ui_pages.json``
and prints a table. For a Judge of three metrics (RATIO, a 12-bucket HISTOGRAM, VALUES)
over 60, 600 and 2,000 intervals (seeded traffic, the canary 30 % worse):

1. ``judge_entry``: what the server does on its event loop after every Judge verdict when
   the pages are on (median wall time);
2. a page: ``page_of`` (validation into arrays) and ``verdict_page`` (SVG and HTML),
   median wall time and the HTML's size;
3. the store full (200 entries, the default count): the growth of the process's resident
   memory while it fills (protobuf's messages live outside Python's allocator, so
   tracemalloc would not see them), beside the store's own accounting
   (``VerdictStore.bytes``, what ``--ui-max-mb`` bounds).
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from gatekeeper import engine, wire
from gatekeeper.api.v1 import gatekeeper_pb2 as pb
from gatekeeper.ui import pages
from gatekeeper.ui.routes import page_of
from gatekeeper.ui.store import DEFAULT_LIMIT, VerdictStore, judge_entry

SEED = 2112
RESULTS = Path(__file__).resolve().parent / "results" / "ui_pages.json"
INTERVALS = (60, 600, 2000)
BOUNDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, float("inf")]
#: Goals: keeping a verdict costs the event loop under 1 ms; a 2,000-interval page renders
#: in under a second.
GOAL_ENTRY_MS = 1.0
GOAL_PAGE_MS = 1000.0


def _timed(fn: Callable[[], object], repeats: int) -> list[float]:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def _rss_bytes() -> int:
    """Resident set size of this process (Linux)."""
    pages_resident = int(Path("/proc/self/statm").read_text().split()[1])
    return pages_resident * os.sysconf("SC_PAGE_SIZE")


def _side(rng: np.random.Generator, n: int, worse: float) -> tuple[pb.Series, ...]:
    total = rng.poisson(3000, n).astype(float)
    bad = rng.binomial(total.astype(int), 0.002 * worse).astype(float)
    ratio = pb.Series(counts=[pb.Counts(bad=b, total=t) for b, t in zip(bad, total, strict=True)])
    shares = np.array([0.2, 0.4, 0.7, 0.85, 0.93, 0.97, 0.985, 0.993, 0.997, 0.999, 1.0, 1.0])
    histograms = []
    for t in total:
        cumulative = np.minimum(t, np.round(t * shares ** (1.0 / worse)))
        cumulative[-1] = t
        histograms.append(
            pb.Histogram(upper_bounds=BOUNDS, counts=list(np.maximum.accumulate(cumulative)))
        )
    values = pb.Series(values=list(rng.normal(100 * worse, 10, n)))
    return ratio, pb.Series(histograms=histograms), values


def request(n: int) -> pb.JudgeRequest:
    """Three metrics over ``n`` intervals, the canary 30 % worse on each."""
    rng = np.random.default_rng(SEED + n)
    base, can = _side(rng, n, 1.0), _side(rng, n, 1.3)
    kinds = (pb.METRIC_KIND_RATIO, pb.METRIC_KIND_HISTOGRAM, pb.METRIC_KIND_VALUES)
    names = ("error-rate", "latency", "cpu")
    message = pb.JudgeRequest(interval_seconds=30.0)
    for name, kind, b, c in zip(names, kinds, base, can, strict=True):
        message.metrics.add(config=pb.MetricConfig(name=name, kind=kind), baseline=b, canary=c)
    return message


def bench(n: int) -> dict[str, Any]:
    message = request(n)
    given = wire.judge_input(message)
    verdict = wire.verdict_message(engine.judge(given.metrics, given.settings))
    entry_s = statistics.median(
        _timed(lambda: judge_entry("x", at=0.0, request=message, verdict=verdict), 200)
    )
    store = VerdictStore()
    entry = judge_entry("x", at=0.0, request=message, verdict=verdict)
    store.add(entry)

    def render() -> str:
        return pages.verdict_page(page_of(entry, store, prometheus=None, home="/ui/"))

    page_s = statistics.median(_timed(render, 5))
    html = render()
    before = _rss_bytes()
    full = VerdictStore(DEFAULT_LIMIT, max_bytes=1 << 40)
    for i in range(DEFAULT_LIMIT):
        copy = pb.JudgeRequest()
        copy.CopyFrom(message)
        full.add(judge_entry(f"e{i}", at=0.0, request=copy, verdict=verdict))
    held = _rss_bytes() - before
    return {
        "intervals": n,
        "metrics": len(message.metrics),
        "request_bytes": message.ByteSize(),
        "decision": pb.Decision.Name(verdict.decision),
        "keep_entry_median_ms": entry_s * 1e3,
        "page_median_ms": page_s * 1e3,
        "page_html_kb": len(html.encode()) / 1e3,
        "store_entries": DEFAULT_LIMIT,
        "store_accounted_mb": full.bytes / 1e6,
        "store_rss_growth_mb": held / 1e6,
        "goal_keep_under_1_ms": entry_s * 1e3 < GOAL_ENTRY_MS,
        "goal_page_under_1_s": page_s * 1e3 < GOAL_PAGE_MS,
    }


def main() -> int:
    rows = [bench(n) for n in INTERVALS]
    machine = {
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "platform": platform.platform(),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"machine": machine, "pages": rows}, indent=2) + "\n")
    print("intervals  keep ms  page ms  html kB  store(200) accounted/RSS MB")
    for r in rows:
        print(
            f"{r['intervals']:>9}  {r['keep_entry_median_ms']:7.3f}  {r['page_median_ms']:7.1f}  "
            f"{r['page_html_kb']:7.1f}  {r['store_accounted_mb']:.1f} / "
            f"{r['store_rss_growth_mb']:.1f}"
        )
    print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
