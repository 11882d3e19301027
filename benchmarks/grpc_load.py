"""Load on the gRPC verdict service: health Check (the floor), small and large Judge.

Run by hand (``make bench-grpc``). The server runs as ``gatekeeper serve`` in its own
process; the clients run in separate processes (asyncio, one reused channel each) so that
they do not share the server's GIL. Each phase runs for a bounded time (health and small
Judge in alternating rounds, see :func:`schedule`); results go to
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
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import numpy as np
from grpc_health.v1 import health_pb2
from numpy.typing import NDArray

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
        # Bytes in, bytes out: no client-side encoding or decoding cost.
        call = channel.unary_unary(method, request_serializer=None, response_deserializer=None)
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


def client_process(args: tuple[str, str, int, float, float]) -> tuple[list[float], float]:
    """One client process: ``concurrency`` calls in flight on one channel; the latencies
    and the CPU seconds the process spent in the phase."""
    target, phase, concurrency, start, stop = args
    cpu = time.process_time()
    latencies = asyncio.run(_client_loop(target, phase, concurrency, start, stop))
    return latencies, time.process_time() - cpu


_TICK = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process, from ``/proc`` (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (the judge workers hang under the forkserver)."""
    found: list[int] = []
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return found
    for child in map(int, children):
        found += [child, *_descendants(child)]
    return found


def free_port() -> int:
    """A port that was free a moment ago (for the server's --metrics-port)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def judgements(metrics_port: int) -> dict[str, float]:
    """The server's ``gatekeeper_judgements_total`` by where (inline, pool)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as page:
        text = page.read().decode()
    found = re.findall(r'^gatekeeper_judgements_total\{where="(\w+)"\} (\S+)$', text, re.M)
    return {where: float(count) for where, count in found}


def server_cpu(pid: int) -> tuple[float, dict[int, float]]:
    """CPU seconds of the server process and of each of its descendants."""
    return _cpu_seconds(pid), {child: _cpu_seconds(child) for child in _descendants(pid)}


@dataclass(frozen=True)
class Slice:
    """What one stretch of load measured: latencies, its length and CPU seconds spent."""

    latencies: NDArray[np.float64]
    seconds: float
    server_cpu: float
    worker_cpu: float
    client_cpu: float
    inline: float


def run_slice(
    pool: multiprocessing.pool.Pool,
    target: str,
    phase: str,
    *,
    clients: int,
    processes: int,
    seconds: float,
    server_pid: int,
    metrics_port: int,
) -> Slice:
    """Run one stretch of a phase: every call's latency and the CPU seconds spent.

    CPU is counted from the clients' start to their end (including the second of waiting
    before the phase starts, which costs next to nothing): the server's own process
    (gRPC, dispatch, inline judgements), its judge workers, and the client processes.
    """
    start = time.time() + 1.0
    stop = start + seconds
    per_process = [clients // processes + (i < clients % processes) for i in range(processes)]
    jobs = [(target, phase, n, start, stop) for n in per_process if n]
    judged_before = judgements(metrics_port)
    main_before, workers_before = server_cpu(server_pid)
    answers = pool.map(client_process, jobs)
    main_after, workers_after = server_cpu(server_pid)
    judged = judgements(metrics_port)
    return Slice(
        latencies=np.concatenate([np.asarray(latency) for latency, _ in answers]),
        seconds=seconds,
        server_cpu=main_after - main_before,
        worker_cpu=sum(t - workers_before.get(pid, 0.0) for pid, t in workers_after.items()),
        client_cpu=sum(cpu for _, cpu in answers),
        inline=judged.get("inline", 0.0) - judged_before.get("inline", 0.0),
    )


def summarise(slices: list[Slice], *, clients: int) -> dict[str, Any]:
    """Throughput, latency percentiles and CPU milliseconds per call over ``slices``."""
    latencies = np.concatenate([one.latencies for one in slices])
    calls = max(int(latencies.size), 1)
    return {
        "clients": clients,
        "calls": int(latencies.size),
        "rps": latencies.size / sum(one.seconds for one in slices),
        "p50_ms": float(np.percentile(latencies, 50) * 1e3),
        "p99_ms": float(np.percentile(latencies, 99) * 1e3),
        "cpu_ms_per_call": {
            "server": sum(one.server_cpu for one in slices) / calls * 1e3,
            "workers": sum(one.worker_cpu for one in slices) / calls * 1e3,
            "clients": sum(one.client_cpu for one in slices) / calls * 1e3,
        },
        "judged_inline": sum(one.inline for one in slices) / calls,
    }


def schedule(phases: list[str], rounds: int) -> list[str]:
    """The order of the stretches: health and small-judge alternate ``rounds`` times.

    The host's speed drifts over a run (by 10-20 % on the shared 2-core machine this was
    written on); alternating the two phases of the share goal makes a drift weigh on both
    rates alike instead of on whichever ran in the slower minute.
    """
    paired = [phase for phase in ("health", "small-judge") if phase in phases]
    rest = [phase for phase in phases if phase not in paired]
    return paired * rounds + rest


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


def table(results: dict[str, dict[str, Any]]) -> str:
    """The results as a text table (CPU: milliseconds per call)."""
    lines = [
        f"{'phase':<14}{'clients':>8}{'calls':>9}{'RPC/s':>10}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'CPU server':>12}{'workers':>9}{'clients':>9}{'inline':>8}"
    ]
    for name, r in results.items():
        cpu = r["cpu_ms_per_call"]
        lines.append(
            f"{name:<14}{r['clients']:>8}{r['calls']:>9}{r['rps']:>10.1f}"
            f"{r['p50_ms']:>9.2f}{r['p99_ms']:>9.2f}"
            f"{cpu['server']:>12.3f}{cpu['workers']:>9.3f}{cpu['clients']:>9.3f}"
            f"{r['judged_inline']:>8.0%}"
        )
    return "\n".join(lines)


PHASES = ("health", "small-judge", "large-judge", "small-1-client")


def measure(args: argparse.Namespace, wanted: list[str], *, workers: int) -> dict[str, list[Slice]]:
    """Start a server, run the wanted phases against it in :func:`schedule` order, stop it."""
    metrics_port = free_port()
    extra = ("--metrics-port", str(metrics_port), *args.server_args.split())
    server, target = start_server(workers, *extra)
    slices: dict[str, list[Slice]] = {phase: [] for phase in wanted}
    try:
        context = multiprocessing.get_context("spawn")
        with context.Pool(args.processes) as pool:
            for phase in schedule(wanted, args.rounds):
                paired = phase in ("health", "small-judge")
                clients = 1 if phase.endswith("-1-client") else args.clients
                found = run_slice(
                    pool,
                    target,
                    phase.removesuffix("-1-client").removesuffix("-judge"),
                    clients=clients,
                    processes=min(args.processes, clients),
                    seconds=args.seconds / args.rounds if paired else args.seconds,
                    server_pid=server.pid,
                    metrics_port=metrics_port,
                )
                slices[phase].append(found)
                rps = found.latencies.size / found.seconds
                print(f"{phase}: {rps:.1f} RPC/s", file=sys.stderr)
    finally:
        server.terminate()
        server.wait(timeout=60)
    return slices


def summary(results: dict[str, dict[str, Any]], slices: dict[str, list[Slice]]) -> dict[str, Any]:
    """In-process judgement times, the gRPC overhead, the share of the health rate, goals."""
    small_ms, large_ms = in_process_ms(60, repeat=300), in_process_ms(10_000, repeat=10)
    small, health = results["small-judge"], results["health"]
    return {
        "small_in_process_ms": small_ms,
        "large_in_process_ms": large_ms,
        "small_overhead_ms": results["small-1-client"]["p50_ms"] - small_ms,
        "small_share_of_health_rps": small["rps"] / health["rps"],
        "small_share_by_round": [
            judged.latencies.size / checked.latencies.size
            for checked, judged in zip(slices["health"], slices["small-judge"], strict=True)
        ],
        "goals": {
            "small_rps>=450": small["rps"] >= 450,
            "small_share>=0.25": small["rps"] >= 0.25 * health["rps"],
            "small_p99<60ms": small["p99_ms"] < 60,
        },
    }


def main() -> None:
    """Run every phase against one server and write the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each phase")
    parser.add_argument(
        "--rounds", type=int, default=5, help="alternations of the health and small-judge phases"
    )
    parser.add_argument("--clients", type=int, default=16, help="concurrent calls")
    parser.add_argument("--processes", type=int, default=4, help="client processes")
    parser.add_argument("--workers", type=int, default=None, help="server judge processes")
    parser.add_argument("--phases", default=",".join(PHASES))
    parser.add_argument("--server-args", default="", help="more flags for gatekeeper serve")
    args = parser.parse_args()
    workers = args.workers or len(os.sched_getaffinity(0))
    wanted = [phase for phase in PHASES if phase in args.phases.split(",")]
    slices = measure(args, wanted, workers=workers)
    results = {
        phase: summarise(found, clients=1 if phase.endswith("-1-client") else args.clients)
        for phase, found in slices.items()
    }
    print(table(results))
    if len(results) < len(PHASES):
        return  # a partial run writes no results
    found = summary(results, slices)
    report = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "server_workers": workers,
        "seconds_per_phase": args.seconds,
        "rounds": args.rounds,
        "client_processes": args.processes,
        "phases": results,
        "summary": found,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(
        f"in process: small {found['small_in_process_ms']:.2f} ms, "
        f"large {found['large_in_process_ms']:.1f} ms per judgement; "
        f"gRPC overhead (1 client, p50): {found['small_overhead_ms']:.2f} ms; "
        f"small Judge at {found['small_share_of_health_rps']:.0%} of the health rate "
        f"(by round: {', '.join(f'{x:.0%}' for x in found['small_share_by_round'])})"
    )
    print("goals:", ", ".join(f"{k} {'met' if v else 'MISSED'}" for k, v in found["goals"].items()))


if __name__ == "__main__":
    main()
