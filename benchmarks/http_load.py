"""Load on the HTTP adapters beside the gRPC service: /healthz, small Judge over HTTP and over
gRPC on the same server, and Kayenta's remote judge.

Run by hand (``.venv/bin/python -m benchmarks.http_load``). The server runs as
``gatekeeper serve --http-port`` in its own process; the clients in separate processes
(aiohttp, one reused session each; gRPC as in :mod:`benchmarks.grpc_load`). Each phase runs
for a bounded time; results go to ``benchmarks/results/http_load.json`` and are printed.

What it shows: the HTTP path's cost over gRPC's for the same judgement (JSON decoding and
encoding of request and Verdict in the server's event loop).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
from google.protobuf import json_format

from benchmarks import grpc_load

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "http_load.json"
KAYENTA_BODY = ROOT / "examples" / "kayenta" / "remote-judge.json"
#: Time the client processes get to start (imports, connection, warm-up call) before a phase.
STARTUP_SECONDS = 8.0
PHASES = ("healthz", "small-judge-http", "small-judge-grpc", "kayenta-judge")


def body(phase: str) -> tuple[str, bytes]:
    """The path and the body of an HTTP phase."""
    if phase == "healthz":
        return "/healthz", b""
    if phase == "kayenta-judge":
        return "/judge", KAYENTA_BODY.read_bytes()
    request = grpc_load.judge_request(metrics=10, points=60, seed=1)
    return "/v1/judge", json_format.MessageToJson(request).encode()


async def _http_loop(
    url: str, phase: str, concurrency: int, start: float, stop: float
) -> list[float]:
    path, data = body(phase)
    latencies: list[float] = []
    async with aiohttp.ClientSession() as session:

        async def once() -> None:
            if phase == "healthz":
                async with session.get(url + path) as answer:
                    await answer.read()
            else:
                async with session.post(url + path, data=data) as answer:
                    await answer.read()
                    assert answer.status == 200, answer.status

        await once()  # warm

        async def worker() -> None:
            while time.time() < start:
                await asyncio.sleep(min(0.01, max(0.0, start - time.time())))
            while time.time() < stop:
                started = time.perf_counter()
                await once()
                latencies.append(time.perf_counter() - started)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies


def http_client(args: tuple[str, str, int, float, float]) -> list[float]:
    """One HTTP client process: ``concurrency`` requests in flight on one session."""
    url, phase, concurrency, start, stop = args
    return asyncio.run(_http_loop(url, phase, concurrency, start, stop))


def grpc_client(args: tuple[str, str, int, float, float]) -> list[float]:
    """One gRPC client process (the small Judge of :mod:`benchmarks.grpc_load`)."""
    target, _, concurrency, start, stop = args
    latencies, _cpu = grpc_load.client_process((target, "small-judge", concurrency, start, stop))
    return latencies


def run_phase(
    phase: str, *, url: str, target: str, clients: int, concurrency: int, seconds: float
) -> dict[str, Any]:
    """Calls per second and latency percentiles of one phase."""
    start = time.time() + STARTUP_SECONDS  # the client processes start and warm up first
    stop = start + seconds
    client = grpc_client if phase.endswith("grpc") else http_client
    address = target if phase.endswith("grpc") else url
    with multiprocessing.get_context("spawn").Pool(clients) as pool:
        results = pool.map(client, [(address, phase, concurrency, start, stop)] * clients)
    latencies = np.concatenate([np.asarray(r) for r in results]) * 1e3
    return {
        "calls": int(latencies.size),
        "rps": round(latencies.size / seconds, 1),
        "p50_ms": round(float(np.percentile(latencies, 50)), 2),
        "p99_ms": round(float(np.percentile(latencies, 99)), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="per phase")
    parser.add_argument("--clients", type=int, default=2, help="client processes")
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight each")
    parser.add_argument("--workers", type=int, default=2, help="judge processes")
    args = parser.parse_args()
    load = round(os.getloadavg()[0], 2)  # other work on the host slows every phase
    port = grpc_load.free_port()
    server, target = grpc_load.start_server(args.workers, "--http-port", str(port))
    url = f"http://127.0.0.1:{port}"
    try:
        time.sleep(0.5)
        results = {
            phase: run_phase(
                phase,
                url=url,
                target=target,
                clients=args.clients,
                concurrency=args.concurrency,
                seconds=args.seconds,
            )
            for phase in PHASES
        }
    finally:
        server.terminate()
        server.wait(timeout=30)
    report = {
        "machine": {
            "cpus": multiprocessing.cpu_count(),
            "python": platform.python_version(),
            "load_average_1m_at_start": load,
        },
        "settings": vars(args),
        "phases": results,
        "http_over_grpc_small_judge_rps": round(
            results["small-judge-http"]["rps"] / results["small-judge-grpc"]["rps"], 2
        ),
    }
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    for phase, numbers in results.items():
        print(
            f"{phase:<18} {numbers['rps']:>8} req/s  p50 {numbers['p50_ms']:>7} ms  "
            f"p99 {numbers['p99_ms']:>7} ms  ({numbers['calls']} calls)"
        )
    print(f"results in {RESULTS.relative_to(ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
