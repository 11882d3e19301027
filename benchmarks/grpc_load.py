"""Load on the gRPC verdict service: health Check (the floor), small and large Judge.

Run by hand (``make bench-grpc``). The server runs as ``gatekeeper serve`` in its own
process; the clients run in separate processes (asyncio, one reused channel each) so that
they do not share the server's GIL. Each phase runs for a bounded time; results go to
``benchmarks/results/grpc_load.json`` and are printed as a table.

Goals on 2 cores: small Judge >= 450 RPC/s and >= 25 % of the health-check rate, p99 < 60 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

import grpc
import grpc.aio
import numpy as np
from grpc_health.v1 import health_pb2

from gatekeeper import engine, wire
from gatekeeper.api.v1 import gatekeeper_pb2 as pb

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "grpc_load.json"
JUDGE = "/gatekeeper.api.v1.Gatekeeper/Judge"
HEALTH = "/grpc.health.v1.Health/Check"


def judge_request(*, metrics: int, points: int, seed: int) -> pb.JudgeRequest:
    """VALUES metrics, log-normal latencies, canary like the baseline (seeded)."""
    rng = np.random.default_rng(seed)
    request = pb.JudgeRequest(interval_seconds=60.0)
    for index in range(metrics):
        metric = request.metrics.add()
        metric.config.name = f"latency-{index}"
        metric.config.kind = pb.METRIC_KIND_VALUES
        metric.baseline.values.extend(rng.lognormal(0.0, 0.3, points).tolist())
        metric.canary.values.extend(rng.lognormal(0.0, 0.3, points).tolist())
    return request


def payload(phase: str) -> tuple[str, bytes]:
    """The method and the serialized request of a phase."""
    if phase == "health":
        return HEALTH, health_pb2.HealthCheckRequest().SerializeToString()
    points = 60 if phase.startswith("small") else 10_000
    return JUDGE, judge_request(metrics=10, points=points, seed=1).SerializeToString()


async def _client_loop(
    target: str, phase: str, concurrency: int, start: float, stop: float
) -> list[float]:
    method, data = payload(phase)
    latencies: list[float] = []
    errors = 0
    async with grpc.aio.insecure_channel(target) as channel:
        call = channel.unary_unary(method)  # bytes in, bytes out: no client-side decoding cost
        await call(payload("health")[1] if method == HEALTH else data, timeout=60)  # warm

        async def worker() -> None:
            nonlocal errors
            while time.time() < start:
                await asyncio.sleep(min(0.01, max(0.0, start - time.time())))
            while (now := time.perf_counter()) and time.time() < stop:
                try:
                    await call(data, timeout=60)
                except grpc.aio.AioRpcError:
                    errors += 1
                    continue
                latencies.append(time.perf_counter() - now)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    if errors:
        print(f"  {errors} failed calls in {phase}", file=sys.stderr)
    return latencies


def client_process(args: tuple[str, str, int, float, float]) -> list[float]:
    """One client process: ``concurrency`` calls in flight on one channel."""
    target, phase, concurrency, start, stop = args
    return asyncio.run(_client_loop(target, phase, concurrency, start, stop))


def run_phase(
    pool: multiprocessing.pool.Pool,
    target: str,
    phase: str,
    *,
    clients: int,
    processes: int,
    seconds: float,
) -> dict[str, float]:
    """Run one phase; throughput and latency percentiles."""
    start = time.time() + 1.0
    stop = start + seconds
    per_process = [clients // processes + (i < clients % processes) for i in range(processes)]
    jobs = [(target, phase, n, start, stop) for n in per_process if n]
    latencies = np.concatenate([np.asarray(r) for r in pool.map(client_process, jobs)])
    return {
        "clients": clients,
        "calls": int(latencies.size),
        "rps": latencies.size / seconds,
        "p50_ms": float(np.percentile(latencies, 50) * 1e3),
        "p99_ms": float(np.percentile(latencies, 99) * 1e3),
    }


def in_process_ms(points: int, *, repeat: int) -> float:
    """Median time of decode + validate + judge + encode of the same request, in process."""
    data = judge_request(metrics=10, points=points, seed=1).SerializeToString()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        judged = wire.judge_input(wire.parse_judge_request(data, json=False))
        verdict = engine.judge(judged.metrics, judged.settings)
        wire.verdict_message(verdict).SerializeToString()
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1e3)


def start_server(workers: int, *extra: str) -> tuple[subprocess.Popen[str], str]:
    """``gatekeeper serve --port 0`` in its own process; its address."""
    command = [sys.executable, "-m", "gatekeeper.cli", "serve", "--port", "0"]
    command += ["--workers", str(workers), "--log-format", "json", *extra]
    server = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    assert server.stdout is not None
    match = re.search(r"serving on (\S+)", server.stdout.readline())
    if match is None:
        server.kill()
        raise SystemExit("the server did not start")
    return server, match.group(1)


def table(results: dict[str, dict[str, float]]) -> str:
    """The results as a text table."""
    lines = [f"{'phase':<14}{'clients':>8}{'calls':>9}{'RPC/s':>10}{'p50 ms':>9}{'p99 ms':>9}"]
    for name, r in results.items():
        lines.append(
            f"{name:<14}{r['clients']:>8}{r['calls']:>9}{r['rps']:>10.1f}"
            f"{r['p50_ms']:>9.2f}{r['p99_ms']:>9.2f}"
        )
    return "\n".join(lines)


def main() -> None:
    """Run every phase against one server and write the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each phase")
    parser.add_argument("--clients", type=int, default=16, help="concurrent calls")
    parser.add_argument("--processes", type=int, default=4, help="client processes")
    parser.add_argument("--workers", type=int, default=None, help="server judge processes")
    parser.add_argument("--phases", default="health,small-judge,large-judge,small-1-client")
    parser.add_argument("--server-args", default="", help="more flags for gatekeeper serve")
    args = parser.parse_args()
    workers = args.workers or len(os.sched_getaffinity(0))
    server, target = start_server(workers, *args.server_args.split())
    phases = {
        "health": args.clients,
        "small-judge": args.clients,
        "large-judge": args.clients,
        "small-1-client": 1,
    }
    results: dict[str, dict[str, float]] = {}
    try:
        context = multiprocessing.get_context("spawn")
        with context.Pool(args.processes) as pool:
            for phase, clients in phases.items():
                if phase not in args.phases.split(","):
                    continue
                results[phase] = run_phase(
                    pool,
                    target,
                    phase.removesuffix("-1-client").removesuffix("-judge"),
                    clients=clients,
                    processes=min(args.processes, clients),
                    seconds=args.seconds,
                )
                print(f"{phase}: {results[phase]['rps']:.1f} RPC/s", file=sys.stderr)
    finally:
        server.terminate()
        server.wait(timeout=60)
    if set(results) != set(phases):
        print(table(results))
        return
    small_ms, large_ms = in_process_ms(60, repeat=300), in_process_ms(10_000, repeat=10)
    summary = {
        "small_in_process_ms": small_ms,
        "large_in_process_ms": large_ms,
        "small_overhead_ms": results["small-1-client"]["p50_ms"] - small_ms,
        "small_share_of_health_rps": results["small-judge"]["rps"] / results["health"]["rps"],
        "goals": {
            "small_rps>=450": results["small-judge"]["rps"] >= 450,
            "small_share>=0.25": results["small-judge"]["rps"] >= 0.25 * results["health"]["rps"],
            "small_p99<60ms": results["small-judge"]["p99_ms"] < 60,
        },
    }
    report = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "server_workers": workers,
        "seconds_per_phase": args.seconds,
        "client_processes": args.processes,
        "phases": results,
        "summary": summary,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(table(results))
    print(
        f"in process: small {small_ms:.2f} ms, large {large_ms:.1f} ms per judgement; "
        f"gRPC overhead (1 client, p50): {summary['small_overhead_ms']:.2f} ms; "
        f"small Judge at {summary['small_share_of_health_rps']:.0%} of the health rate"
    )
    print(
        "goals:", ", ".join(f"{k} {'met' if v else 'MISSED'}" for k, v in summary["goals"].items())
    )


if __name__ == "__main__":
    main()
