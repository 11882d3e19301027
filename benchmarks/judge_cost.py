"""Cost of the Hodges-Lehmann selection and of one Judge of VALUES metrics.

Run by ``make bench`` (never from the tests). Writes ``benchmarks/results/judge_cost.json``
and prints a table:

1. Hodges-Lehmann estimate + 95 % bounds (``gatekeeper.stats.mann_whitney.hodges_lehmann``)
   at n = m = 10^3 .. 10^6: median wall time and tracemalloc peak, beside a naive pairwise
   implementation (``np.subtract.outer`` + ``np.partition``, up to 10^4) and one ``np.sort``
   of the pooled 2n values (the floor), all in the same run.
2. One Judge (``gatekeeper.engine.judge``) of 10 VALUES metrics x 1,000 values per side:
   median and p90 wall time.
3. With ``--against REF``: the small Judge of ``make bench-grpc`` (10 VALUES metrics x 60
   points; decode, validate, judge and encode, in process) on this tree and on the tree of
   git revision REF, in alternating child processes of one run, so both see the same
   machine at the same minutes. The goal: this tree within 1.2x of REF's median.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from gatekeeper.stats.mann_whitney import hodges_lehmann

SEED = 12345
RESULTS = Path(__file__).resolve().parent / "results" / "judge_cost.json"
SIZES = (1_000, 10_000, 100_000, 1_000_000)
NAIVE_LIMIT = 10_000
GOAL_RATIO = 10.0
GOAL_PEAK_MB = 300.0
GOAL_JUDGE_MS = 10.0
GOAL_SMALL_RATIO = 1.2
ROOT = Path(__file__).resolve().parent.parent
#: Run in a child process whose working directory is the tree under test.
_SMALL_CHILD = (
    "import json, sys; sys.path.insert(0, '.'); "
    "from benchmarks.grpc_load import in_process_ms; "
    "print(json.dumps(in_process_ms(60, repeat={repeat})))"
)


def _timed(fn: Callable[[], object], repeats: int) -> list[float]:
    fn()  # warm caches and lazily built tables
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def _peak_mb(fn: Callable[[], object]) -> float:
    tracemalloc.start()
    try:
        fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak / 1e6


def _naive(baseline: np.ndarray, canary: np.ndarray) -> tuple[float, float, float]:
    diffs = np.subtract.outer(canary, baseline).ravel()
    nm = diffs.size
    k = max(1, nm // 2 - int(1.96 * np.sqrt(nm * (baseline.size + canary.size + 1) / 12)))
    part = np.partition(diffs, [k - 1, nm // 2 - 1, nm // 2, nm - k])
    return float(part[k - 1]), 0.5 * float(part[nm // 2 - 1] + part[nm // 2]), float(part[nm - k])


def bench_hodges_lehmann() -> list[dict[str, Any]]:
    rng = np.random.default_rng(SEED)
    rows: list[dict[str, Any]] = []
    for n in SIZES:
        baseline = rng.lognormal(3.0, 0.5, size=n)
        canary = rng.lognormal(3.05, 0.5, size=n)
        pooled = np.concatenate((baseline, canary))
        repeats = 50 if n <= 10_000 else (10 if n <= 100_000 else 5)

        def hl(b: np.ndarray = baseline, c: np.ndarray = canary) -> object:
            return hodges_lehmann(baseline=b, canary=c)

        def sort(p: np.ndarray = pooled) -> object:
            return np.sort(p)

        hl_s = statistics.median(_timed(hl, repeats))
        sort_s = statistics.median(_timed(sort, repeats))
        row: dict[str, Any] = {
            "n": n,
            "m": n,
            "hl_median_ms": hl_s * 1e3,
            "hl_peak_mb": _peak_mb(hl),
            "sort_pooled_median_ms": sort_s * 1e3,
            "sort_pooled_peak_mb": _peak_mb(sort),
            "ratio_to_sort": hl_s / sort_s,
            "naive_median_ms": None,
            "naive_peak_mb": None,
        }
        if n <= NAIVE_LIMIT:

            def naive(b: np.ndarray = baseline, c: np.ndarray = canary) -> object:
                return _naive(b, c)

            row["naive_median_ms"] = statistics.median(_timed(naive, max(3, repeats // 10))) * 1e3
            row["naive_peak_mb"] = _peak_mb(naive)
        if n == SIZES[-1]:
            row["goal_within_10x_sort"] = row["ratio_to_sort"] <= GOAL_RATIO
            row["goal_peak_under_300_mb"] = row["hl_peak_mb"] < GOAL_PEAK_MB
        rows.append(row)
    return rows


def bench_judge(runs: int = 200) -> dict[str, Any]:
    from gatekeeper.engine import judge  # noqa: PLC0415 - written in parallel; optional
    from gatekeeper.stats.model import JudgeSettings, MetricData, MetricSettings  # noqa: PLC0415
    from gatekeeper.stats.results import MetricKind  # noqa: PLC0415

    rng = np.random.default_rng(SEED + 1)
    metrics = [
        MetricData(
            settings=MetricSettings(name=f"latency_{i}", kind=MetricKind.VALUES),
            baseline=rng.lognormal(3.0, 0.4, size=1_000),
            canary=rng.lognormal(3.0 + 0.02 * i, 0.4, size=1_000),
        )
        for i in range(10)
    ]
    settings = JudgeSettings()
    times = _timed(lambda: judge(metrics, settings), runs)
    median_ms = statistics.median(times) * 1e3
    return {
        "metrics": len(metrics),
        "values_per_side": 1_000,
        "runs": runs,
        "median_ms": median_ms,
        "p90_ms": float(np.percentile(times, 90)) * 1e3,
        "goal_under_10_ms": median_ms < GOAL_JUDGE_MS,
    }


def _export(reference: str, into: Path) -> Path:
    """The ``gatekeeper`` and ``benchmarks`` folders of git revision ``reference``."""
    archive = subprocess.run(
        ["git", "archive", "--format=tar", reference, "gatekeeper", "benchmarks"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout
    tar_path = into / "tree.tar"
    tar_path.write_bytes(archive)
    with tarfile.open(tar_path) as tar:
        tar.extractall(into, filter="data")
    return into


def bench_small_judge_ab(reference: str, *, rounds: int = 6, repeat: int = 300) -> dict[str, Any]:
    """Median in-process small Judge of this tree and of ``reference``, alternating."""
    with tempfile.TemporaryDirectory() as tmp:
        trees = {"this tree": ROOT, reference: _export(reference, Path(tmp))}
        medians: dict[str, list[float]] = {name: [] for name in trees}
        for _ in range(rounds):
            for name, tree in trees.items():
                done = subprocess.run(
                    [sys.executable, "-c", _SMALL_CHILD.format(repeat=repeat)],
                    cwd=tree,
                    check=True,
                    capture_output=True,
                    text=True,
                    env={**os.environ, "PYTHONPATH": str(tree)},
                )
                medians[name].append(float(json.loads(done.stdout.strip().splitlines()[-1])))
    new, old = statistics.median(medians["this tree"]), statistics.median(medians[reference])
    return {
        "reference": reference,
        "rounds": rounds,
        "repeat": repeat,
        "median_ms_by_round": medians,
        "this_tree_ms": new,
        "reference_ms": old,
        "ratio": new / old,
        "goal_within_1_2x": new / old <= GOAL_SMALL_RATIO,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", metavar="REF", help="git revision for the small-Judge A/B")
    args = parser.parse_args()
    machine = {
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "scipy": __import__("scipy").__version__,
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "seed": SEED,
        # The machine may be shared: the 1-minute load average before and after the run.
        "loadavg_start": os.getloadavg()[0],
    }
    hl_rows = bench_hodges_lehmann()
    print(
        f"{'n = m':>9} {'HL ms':>9} {'HL MB':>7} {'sort ms':>9} {'ratio':>6} "
        f"{'naive ms':>9} {'naive MB':>9}"
    )
    for r in hl_rows:
        naive_ms = "-" if r["naive_median_ms"] is None else f"{r['naive_median_ms']:.2f}"
        naive_mb = "-" if r["naive_peak_mb"] is None else f"{r['naive_peak_mb']:.1f}"
        print(
            f"{r['n']:>9} {r['hl_median_ms']:>9.2f} {r['hl_peak_mb']:>7.1f} "
            f"{r['sort_pooled_median_ms']:>9.2f} {r['ratio_to_sort']:>6.2f} "
            f"{naive_ms:>9} {naive_mb:>9}"
        )
    last = hl_rows[-1]
    print(
        f"n = m = 10^6: within {GOAL_RATIO:.0f}x sort: {last['goal_within_10x_sort']}, "
        f"peak < {GOAL_PEAK_MB:.0f} MB: {last['goal_peak_under_300_mb']}"
    )
    judge_row: dict[str, Any] | None
    try:
        judge_row = bench_judge()
    except ImportError as error:  # the engine is not there yet
        judge_row = {"skipped": f"gatekeeper.engine unavailable: {error}"}
        print(judge_row["skipped"])
    else:
        print(
            f"Judge, 10 VALUES metrics x 1,000 per side: median {judge_row['median_ms']:.2f} ms, "
            f"p90 {judge_row['p90_ms']:.2f} ms (goal < {GOAL_JUDGE_MS:.0f} ms: "
            f"{judge_row['goal_under_10_ms']})"
        )
    small_ab = None
    if args.against:
        small_ab = bench_small_judge_ab(args.against)
        print(
            f"small Judge (10 VALUES x 60, in process): {small_ab['this_tree_ms']:.3f} ms here, "
            f"{small_ab['reference_ms']:.3f} ms at {args.against}: {small_ab['ratio']:.2f}x "
            f"(goal <= {GOAL_SMALL_RATIO}x: {small_ab['goal_within_1_2x']})"
        )
    machine["loadavg_end"] = os.getloadavg()[0]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "machine": machine,
        "hodges_lehmann": hl_rows,
        "judge": judge_row,
        "small_judge_ab": small_ab,
    }
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
