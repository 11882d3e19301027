"""Rollouts replayed per second: the local process pool against a Dask LocalCluster, one run.

Run by hand: ``.venv/bin/python benchmarks/replay_throughput.py [--rollouts 96]``. Writes a
labelled set of seeded 15-minute rollouts (Parquet) to a temporary folder, then evaluates it

1. in this process, one rollout after the other, timing the file read and the replay (the
   engine) apart;
2. on the local pool of 2 processes (``workers=2``), and
3. on a ``LocalCluster`` of 2 worker processes with 1 thread each, through
   ``Client.get_executor()``, with Dask's task stream recording each chunk's compute time,
   in 3 alternating rounds (medians reported, every round kept).

Per rollout, a slot's time on the cluster (wall x slots / rollouts) splits into the chunk's
compute (read + replay, on the worker) and the rest: transport, (de)serialisation and
scheduling. The client pickles every task and unpickles every result itself, one after the
other; that serial cost bounds how far more workers help. The projection for a sweep of
10^5 rollouts on N slots is ``10^5 x max(slot time / N, client time)`` plus the cluster's
start. Writes ``benchmarks/results/replay_throughput.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from distributed import Client, LocalCluster, get_task_stream  # noqa: E402

from gatekeeper import replay, simulate  # noqa: E402
from gatekeeper.replay.core import replay_recorded  # noqa: E402
from gatekeeper.replay.dispatch import Task, chunk_size, replay_chunk  # noqa: E402
from gatekeeper.simulate import Fault, FaultKind, Scenario  # noqa: E402
from gatekeeper.spec import load_spec  # noqa: E402

SPEC = load_spec(
    "interval: 1m\nmetrics:\n"
    "  - {name: error-rate, kind: RATIO, critical: true}\n"
    "  - {name: latency, kind: HISTOGRAM, quantile: 0.99, critical: true}\n",
    queries=False,
)
FAULTS = [Fault(), Fault(FaultKind.ERRORS, 3.0), Fault(), Fault(FaultKind.TAIL, 5.0, share=0.03)]
SLOTS = 2
REPEATS = 5
ROUNDS = 3
SWEEP = 100_000
PROJECTED_SLOTS = (2, 8, 32, 128, 512)


def write_set(folder: Path, count: int) -> list[replay.LabelledRollout]:
    """``count`` seeded 15-minute rollouts of 150 rps, as Parquet, labelled."""
    rollouts = []
    for number in range(count):
        fault = FAULTS[number % len(FAULTS)]
        scenario = Scenario(
            seconds=900.0, rps=150.0, canary_weight=0.2, pods_canary=2, fault=fault, seed=number
        )
        path = folder / f"{number:04d}.parquet"
        simulate.write_recorded(simulate.simulate(scenario), path, start=1714572000.0)
        label: replay.batch.Label = "good" if fault.kind is FaultKind.NONE else "bad"
        rollouts.append(replay.LabelledRollout(path.stem, label, path))
    return rollouts


def in_process(rollouts: list[replay.LabelledRollout]) -> dict[str, float]:
    """Seconds per rollout reading its file and replaying it, here, one after the other."""
    read = engine = 0.0
    for rollout in rollouts:
        started = time.perf_counter()
        recorded = rollout.load()
        loaded = time.perf_counter()
        replay_recorded(SPEC, recorded)
        read += loaded - started
        engine += time.perf_counter() - loaded
    return {"read_s": read / len(rollouts), "engine_s": engine / len(rollouts)}


def client_cost(rollouts: list[replay.LabelledRollout]) -> dict[str, float]:
    """Bytes and client-side seconds per rollout: pickling its task, unpickling its result.

    The best of :data:`REPEATS` rounds (the machine is shared; the least disturbed round is
    the closest to the cost itself).
    """
    tasks = [Task((SPEC,), r) for r in rollouts]
    received = pickle.dumps(replay_chunk(tasks))
    rounds = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        sent = pickle.dumps(tasks)
        pickle.loads(received)
        rounds.append(time.perf_counter() - started)
    count = len(rollouts)
    return {
        "client_s": min(rounds) / count,
        "task_bytes": len(sent) / count,
        "result_bytes": len(received) / count,
    }


def timed_evaluate(rollouts: list[replay.LabelledRollout], **where: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    found = replay.evaluate(SPEC, rollouts, progress=False, **where)
    return time.perf_counter() - started, found


def _compute_s(stream: list[dict[str, Any]]) -> float:
    return float(
        sum(
            part["stop"] - part["start"]
            for task in stream
            for part in task["startstops"]
            if part["action"] == "compute"
        )
    )


def alternating(rollouts: list[replay.LabelledRollout]) -> dict[str, Any]:
    """:data:`ROUNDS` rounds of the local pool, then the LocalCluster, on the same set.

    Alternating rounds share the machine's drifting load (it serves other work too) alike.
    """
    started = time.perf_counter()
    with (
        LocalCluster(
            n_workers=SLOTS,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
        Client(cluster, set_as_default=False) as client,
    ):
        start_s = time.perf_counter() - started
        executor = client.get_executor()
        timed_evaluate(rollouts[: SLOTS * 2], executor=executor)  # imports on the workers
        timed_evaluate(rollouts[: SLOTS * 2], workers=SLOTS)  # starts the forkserver
        local, remote, compute, equal = [], [], [], []
        for _ in range(ROUNDS):
            wall, here = timed_evaluate(rollouts, workers=SLOTS)
            local.append(wall)
            with get_task_stream(client) as stream:
                wall, there = timed_evaluate(rollouts, executor=executor)
            remote.append(wall)
            compute.append(_compute_s(stream.data))
            equal.append(bool(there.results.equals(here.results)))
    return {
        "start_s": start_s,
        "local": local,
        "remote": remote,
        "compute": compute,
        "equal": equal,
    }


def projection(slot_s: float, client_s: float, start_s: float) -> list[dict[str, float]]:
    """Hours for a 10^5-rollout sweep on N slots, bounded by the client's serial cost."""
    rows = []
    for slots in PROJECTED_SLOTS:
        seconds = SWEEP * max(slot_s / slots, client_s) + start_s
        rows.append(
            {
                "slots": slots,
                "chunk_rollouts": chunk_size(SWEEP, slots),
                "chunks": -(-SWEEP // chunk_size(SWEEP, slots)),
                "hours": seconds / 3600,
                "client_bound": client_s >= slot_s / slots,
            }
        )
    return rows


def summary(count: int, rounds: dict[str, Any], here: dict[str, float]) -> dict[str, Any]:
    """The JSON result: medians over the rounds, every round's rate, the projection."""
    local_s, remote_s = statistics.median(rounds["local"]), statistics.median(rounds["remote"])
    slot_s = remote_s * SLOTS / count
    compute_s = statistics.median(rounds["compute"]) / count
    return {
        "machine": {
            "python": platform.python_version(),
            "cpu_count": os.cpu_count(),
            "load_average": list(os.getloadavg()),
        },
        "rollouts": count,
        "rollout": "15 min at 150 rps, 15 looks of 1 m, RATIO + HISTOGRAM, Parquet",
        "slots": SLOTS,
        "rounds": ROUNDS,
        "chunk_rollouts": chunk_size(count, SLOTS),
        "in_process_read_ms": here["read_s"] * 1e3,
        "in_process_engine_ms": here["engine_s"] * 1e3,
        "local_pool_rollouts_per_s": count / local_s,
        "cluster_rollouts_per_s": count / remote_s,
        "local_pool_rounds_rollouts_per_s": [count / s for s in rounds["local"]],
        "cluster_rounds_rollouts_per_s": [count / s for s in rounds["remote"]],
        "cluster_start_s": rounds["start_s"],
        "cluster_slot_ms_per_rollout": slot_s * 1e3,
        "cluster_compute_ms_per_rollout": compute_s * 1e3,
        "cluster_transport_and_scheduling_ms_per_rollout": (slot_s - compute_s) * 1e3,
        "client_ms_per_rollout": here["client_s"] * 1e3,
        "task_bytes_per_rollout": here["task_bytes"],
        "result_bytes_per_rollout": here["result_bytes"],
        "results_equal_local": all(rounds["equal"]),
        "sweep_projection": projection(slot_s, here["client_s"], rounds["start_s"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rollouts", type=int, default=96)
    count = parser.parse_args().rollouts
    folder = Path(tempfile.mkdtemp(prefix="replay-throughput-"))
    rollouts = write_set(folder, count)
    here = in_process(rollouts) | client_cost(rollouts[:16])
    result = summary(count, alternating(rollouts), here)
    out = ROOT / "benchmarks" / "results" / "replay_throughput.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
