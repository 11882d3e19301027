"""What a hostile Prometheus costs the gatekeeper: memory and time per refused answer.

Run by hand (``python benchmarks/source_limits.py``): a scripted endpoint on 127.0.0.1
(:mod:`tests.integration.scripted`) sends the answers of issue 19 (a 100 MB answer, a gzip
answer of 300 MB decompressed, a 2 M-point series for a 20-point window, an answer that
trickles a byte every 50 ms) and an answer just within the default limits, each fetched once
by :class:`~gatekeeper.sources.prometheus.PrometheusSource` with its default options. The
peak of Python memory (``tracemalloc``, which sees numpy's and aiohttp's buffers) and the
wall time of each fetch are written to ``benchmarks/results/source_limits.json``. Goal: a
refused answer costs at most its limit in memory, and no fetch outlives its deadline.
(An answer within the byte limit is parsed whole before its series are checked, so
its parse costs what ``json.loads`` costs: the 16 MB series scenario shows it.)
"""

from __future__ import annotations

import json
import platform
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gatekeeper.errors import SourceError  # noqa: E402
from gatekeeper.sources.base import Window  # noqa: E402
from gatekeeper.sources.prometheus import PrometheusOptions, PrometheusSource  # noqa: E402
from tests.integration.scripted import Reply, endpoint  # noqa: E402

MB = 1_000_000
WINDOW = Window(start=1_700_000_000.0, end=1_700_000_600.0, step=30.0)  # 20 points
EMPTY = b'{"status": "success", "data": {"resultType": "matrix", "result": []}}'


def padded(size: int) -> bytes:
    return EMPTY + b" " * (size - len(EMPTY))


def points(count: int) -> bytes:
    values = ",".join(f'[{WINDOW.start + k},"1"]' for k in range(count))
    return (
        b'{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":['
        + values.encode()
        + b"]}]}}"
    )


SCENARIOS = {
    "answer 100 MB (refused at 16 MiB)": Reply(padded(100 * MB), declare_length=False),
    "gzip 300 MB decompressed (refused at 32 MiB)": Reply(padded(300 * MB), gzip=True),
    "series of 2 M points, window of 20 (refused)": Reply(points(2_000_000)),
    "series of 800,000 points in 16 MB, window of 20 (refused)": Reply(points(800_000)),
    "series of 20 points within the limits (accepted)": Reply(points(20)),
    "answer of 15 MB within the limits (accepted)": Reply(padded(15 * MB)),
    "trickle 1 byte / 50 ms (deadline 5 s)": Reply(padded(10_000), trickle=1, every=0.05),
}


def fetch(reply: Reply, *, traced: bool) -> tuple[str, float, float]:
    """One fetch of ``reply``: outcome, wall seconds, peak MB (when ``traced``)."""
    options = PrometheusOptions(deadline_seconds=5.0, retries=0)
    with endpoint(lambda _query: reply) as prometheus:
        source = PrometheusSource(prometheus.url, options)
        if traced:
            tracemalloc.start()
        started = time.perf_counter()
        try:
            source.query_range("up", window=WINDOW)
            outcome = "accepted"
        except SourceError as error:
            outcome = f"refused: {str(error)[:160]}"
        seconds = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1] if traced else 0
        tracemalloc.stop()
    return outcome, seconds, peak / MB


def measure(reply: Reply) -> dict[str, object]:
    """Time untraced (tracemalloc slows allocation-heavy parsing many times), then memory."""
    outcome, seconds, _ = fetch(reply, traced=False)
    _, _, peak = fetch(reply, traced=True)
    return {"outcome": outcome, "seconds": round(seconds, 3), "peak_mb": round(peak, 1)}


def main() -> None:
    results = {name: measure(reply) for name, reply in SCENARIOS.items()}
    for name, found in results.items():
        print(f"{name}: {found['peak_mb']} MB peak, {found['seconds']} s, {found['outcome']}")
    out = ROOT / "benchmarks" / "results" / "source_limits.json"
    document = {"python": platform.python_version(), "machine": platform.machine(), **results}
    out.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
