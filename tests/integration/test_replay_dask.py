"""Labelled sets replayed on a real Dask LocalCluster of two worker processes.

Every comparison is with the local run computed in the same test (the statistics change;
stored numbers would not follow them).
"""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from distributed import Client, LocalCluster, get_task_stream

from gatekeeper import cli, replay, simulate
from gatekeeper.errors import InvalidArgument
from gatekeeper.replay.dispatch import chunk_size
from gatekeeper.simulate import Fault, FaultKind, Scenario
from gatekeeper.spec import load_spec

T0 = 1714572000.0
SPEC_TEXT = """
interval: 1m
metrics:
  - {name: error-rate, kind: RATIO, critical: true}
  - {name: latency, kind: HISTOGRAM, quantile: 0.99, critical: true}
"""
SPEC = load_spec(SPEC_TEXT, queries=False)
FAULTS = [
    Fault(),
    Fault(FaultKind.ERRORS, 10.0),
    Fault(),
    Fault(FaultKind.ERRORS, 2.0, onset_seconds=120.0),
    Fault(FaultKind.TAIL, 5.0, share=0.03),
    Fault(),
    Fault(FaultKind.LEAK, 8.0),
    Fault(FaultKind.SILENT),
]


def write_set(folder: Path, count: int) -> Path:
    """``count`` seeded rollouts as Parquet and CSV files, with their index; returns it."""
    rows = []
    for number in range(count):
        fault = FAULTS[number % len(FAULTS)]
        label = "good" if fault.kind is FaultKind.NONE else "bad"
        scenario = Scenario(
            seconds=600.0, rps=60.0, canary_weight=0.25, pods_canary=2, fault=fault, seed=number
        )
        name = f"{number:03d}-{label}.{'csv' if number % 3 == 0 else 'parquet'}"
        simulate.write_recorded(simulate.simulate(scenario), folder / name, start=T0)
        rows.append({"file": name, "label": label})
    index = folder / "index.csv"
    pd.DataFrame(rows).to_csv(index, index=False)
    return index


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
        Client(cluster, set_as_default=False) as found,
    ):
        yield found


@pytest.fixture(scope="module")
def labelled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_set(tmp_path_factory.mktemp("labelled"), 24)


def test_the_cluster_runs_two_separate_worker_processes(client: Client) -> None:
    pids = client.run(os.getpid)
    assert len(pids) == 2
    assert os.getpid() not in pids.values() and len(set(pids.values())) == 2


def test_per_rollout_results_equal_the_local_run_in_chunks(client: Client, labelled: Path) -> None:
    rollouts = replay.read_labelled(labelled)
    local = replay.evaluate(SPEC, rollouts, workers=1)
    with get_task_stream(client) as stream:
        remote = replay.evaluate(SPEC, rollouts, executor=client.get_executor())
    assert remote.results.equals(local.results)
    assert remote.rates() == local.rates()
    # chunks sized for the cluster's 2 slots: 4 per slot of 3 rollouts, not 24 round trips
    assert chunk_size(len(rollouts), 2) == 3
    chunks = [t for t in stream.data if str(t["key"]).startswith("replay_chunk")]
    assert len(chunks) == 8
    assert {t["worker"] for t in chunks} == set(client.run(os.getpid))


def test_every_replay_and_sweep_equal_the_local_ones(client: Client, labelled: Path) -> None:
    rollouts = replay.read_labelled(labelled)[:8]
    local = replay.replay_many(SPEC, rollouts, every_look=True, workers=1)
    remote = replay.replay_many(SPEC, rollouts, every_look=True, executor=client.get_executor())
    for here, there in zip(local, remote, strict=True):
        assert there.summary == here.summary
        assert there.timeline.equals(here.timeline)
    tolerances = [0.2, 1.0, 3.0]
    swept = replay.sweep(SPEC, rollouts, tolerances=tolerances, workers=1)
    remote_sweep = replay.sweep(
        SPEC, rollouts, tolerances=tolerances, executor=client.get_executor()
    )
    assert remote_sweep.equals(swept)


def test_an_index_given_as_a_url_is_read_on_the_workers(client: Client, labelled: Path) -> None:
    by_path = replay.read_labelled(labelled)[:6]
    by_url = replay.read_labelled(labelled.absolute().as_uri())[:6]
    assert all(str(r.source).startswith("file://") for r in by_url)
    local = replay.evaluate(SPEC, by_path, workers=1)
    remote = replay.evaluate(SPEC, by_url, executor=client.get_executor())
    assert remote.results.equals(local.results)


def _kill_a_busy_worker(client: Client, pids: dict[str, int], running: Future[Any]) -> str:
    """SIGKILL the process of a worker while it judges a chunk; its address."""
    deadline = time.monotonic() + 60.0
    while time.monotonic() < deadline:
        busy = [w for w, keys in client.processing().items() if keys]
        if busy and not running.done():
            os.kill(pids[busy[0]], signal.SIGKILL)
            return str(busy[0])
        time.sleep(0.05)
    raise AssertionError("no worker was busy within 60 s")


def test_a_worker_killed_mid_run_is_recovered_with_equal_results(
    client: Client, tmp_path: Path
) -> None:
    rollouts = replay.read_labelled(write_set(tmp_path, 16))
    local = replay.evaluate(SPEC, rollouts, workers=1)
    pids = client.run(os.getpid)
    with ThreadPoolExecutor(1) as thread:
        running = thread.submit(
            replay.evaluate, SPEC, rollouts, executor=client.get_executor(), workers=1
        )
        killed = _kill_a_busy_worker(client, pids, running)
        remote = running.result(timeout=300)
    assert remote.results.equals(local.results)
    # the scheduler lost the worker unexpectedly with a chunk on it, and rescheduled it
    removed = [
        event
        for _, event in client.get_events(killed)
        if isinstance(event, dict) and event.get("action") == "remove-worker"
    ]
    assert len(removed) == 1 and removed[0]["expected"] is False
    lost = list(removed[0]["processing-tasks"]) + list(removed[0]["lost-computed-tasks"])
    assert any(str(key).startswith("replay_chunk") for key in lost)
    # the nanny replaced the killed process; the cluster is whole again
    client.wait_for_workers(2, timeout=60)
    assert pids[killed] not in client.run(os.getpid).values()


def test_an_unreadable_rollout_is_reported_by_its_name(client: Client, tmp_path: Path) -> None:
    index = write_set(tmp_path, 4)
    (tmp_path / "garbled.parquet").write_bytes(b"not parquet at all")
    table = pd.read_csv(index)
    extra = pd.DataFrame({"file": ["garbled.parquet", "missing.csv"], "label": ["bad", "good"]})
    pd.concat([table, extra]).to_csv(index, index=False)
    rollouts = replay.read_labelled(index)
    with pytest.raises(InvalidArgument) as caught:
        replay.evaluate(SPEC, rollouts, executor=client.get_executor())
    found = {v.field: v.description for v in caught.value.violations}
    # both are named, together, by rollout and file, with pandas' reason and no traceback
    assert set(found) == {"garbled: FILE", "missing: FILE"}
    assert str(tmp_path / "garbled.parquet") in found["garbled: FILE"]
    assert str(tmp_path / "missing.csv") in found["missing: FILE"]
    assert "No such file" in found["missing: FILE"]
    assert "Traceback" not in str(caught.value)


# --- the command ----------------------------------------------------------------------------


def test_the_command_on_the_scheduler_prints_the_local_table(
    client: Client, labelled: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC_TEXT)
    base = ["replay", "--labelled", str(labelled), "--spec", str(spec)]
    assert cli.main([*base, "--workers", "1"]) == 0
    here = capsys.readouterr().out
    address = str(client.scheduler_info()["address"])
    assert cli.main([*base, "--scheduler", address, "--progress"]) == 0
    there = capsys.readouterr()
    assert there.out == here
    assert "24 rollouts (15 bad): caught" in here
    assert "24/24" in there.err  # the progress bar, on stderr
    header = ["rollout", "label", "decision", "decided", "after", "canary", "bad"]
    assert here.splitlines()[0].split() == header
    assert len(here.splitlines()) == 2 + 24 + 3


def test_the_command_rejects_a_bad_scheduler_and_misplaced_flags(
    labelled: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC_TEXT)
    base = ["replay", "--labelled", str(labelled), "--spec", str(spec)]
    assert cli.main([*base, "--scheduler", "localhost:8786"]) == 4
    assert "--scheduler: must be tcp://HOST:PORT" in capsys.readouterr().err
    assert cli.main([*base, "--workers", "0"]) == 4
    assert "--workers: must be 1 or more" in capsys.readouterr().err
    assert cli.main([*base, "--every-look"]) == 4
    assert "--every-look does not apply to --labelled" in capsys.readouterr().err
    assert cli.main(["replay", str(labelled), "--spec", str(spec), "--scheduler", "x"]) == 4
    assert "--scheduler: applies to --labelled INDEX only" in capsys.readouterr().err


def test_the_command_reports_an_unreachable_scheduler_as_error(
    labelled: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC_TEXT)
    with socket_closed() as port:
        address = f"tcp://127.0.0.1:{port}"
        code = cli.main(
            ["replay", "--labelled", str(labelled), "--spec", str(spec), "--scheduler", address]
        )
    assert code == 3
    assert f"cannot reach the Dask scheduler at tcp://127.0.0.1:{port}" in capsys.readouterr().err


@contextmanager
def socket_closed() -> Iterator[int]:
    """A loopback port that nothing listens on (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    yield port
