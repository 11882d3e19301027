"""Batches on an executor the caller brings: chunk sizes, slots, equal results, errors by name."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from gatekeeper import replay, simulate
from gatekeeper.errors import InvalidArgument
from gatekeeper.replay import dispatch
from gatekeeper.simulate import Fault, FaultKind, Scenario
from gatekeeper.spec import load_spec

SPEC = load_spec(
    "interval: 1m\nmetrics:\n  - {name: error-rate, kind: RATIO, critical: true}\n",
    queries=False,
)


def rollouts(folder: Path, count: int) -> list[replay.LabelledRollout]:
    found = []
    for number in range(count):
        fault = Fault(FaultKind.ERRORS, 10.0) if number % 2 else Fault()
        traffic = simulate.simulate(Scenario(seconds=300.0, rps=50.0, fault=fault, seed=number))
        path = folder / f"{number:02d}.csv"
        simulate.write_recorded(traffic, path, start=1714572000.0)
        found.append(replay.LabelledRollout(path.stem, "bad" if number % 2 else "good", path))
    return found


class Counting(Executor):
    """A thread pool that counts what it was given: one submission per chunk."""

    def __init__(self) -> None:
        self.pool = ThreadPoolExecutor(2)
        self.submitted: list[int] = []

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        self.submitted.append(len(args[0]))
        return self.pool.submit(fn, *args, **kwargs)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self.pool.shutdown(wait, cancel_futures=cancel_futures)


def test_chunks_are_four_per_slot_and_at_most_the_cap() -> None:
    assert dispatch.chunk_size(24, 2) == 3
    assert dispatch.chunk_size(5, 2) == 1
    assert dispatch.chunk_size(10_000, 2) == dispatch.MAX_CHUNK
    assert dispatch.chunk_size(10_000, 100) == 25
    assert dispatch.chunk_size(0, 0) == 1


def test_slots_come_from_the_executor() -> None:
    with ThreadPoolExecutor(3) as threads:
        assert dispatch.executor_slots(threads) == 3


def test_a_process_pool_of_the_caller_gives_the_local_results(tmp_path: Path) -> None:
    labelled = rollouts(tmp_path, 6)
    local = replay.evaluate(SPEC, labelled, workers=1)
    context = multiprocessing.get_context("forkserver")
    with ProcessPoolExecutor(2, mp_context=context) as pool:
        pooled = replay.evaluate(SPEC, labelled, executor=pool)
        swept = replay.sweep(SPEC, labelled, tolerances=[0.2, 2.0], executor=pool)
    assert pooled.results.equals(local.results)
    assert swept.equals(replay.sweep(SPEC, labelled, tolerances=[0.2, 2.0], workers=1))


def test_the_executor_receives_chunks_not_single_rollouts(tmp_path: Path) -> None:
    labelled = rollouts(tmp_path, 10)
    executor = Counting()
    with executor:
        found = replay.replay_many(SPEC, labelled, executor=executor, workers=1)
    assert executor.submitted == [3, 3, 3, 1]
    assert [r.summary for r in found] == [
        r.summary for r in replay.replay_many(SPEC, labelled, workers=1)
    ]


def test_every_unreadable_rollout_is_named_in_one_error(tmp_path: Path) -> None:
    labelled = rollouts(tmp_path, 3)
    gone = [
        replay.LabelledRollout("gone-1", "good", tmp_path / "gone-1.csv"),
        replay.LabelledRollout("gone-2", "bad", tmp_path / "gone-2.parquet"),
    ]
    with ThreadPoolExecutor(2) as threads, pytest.raises(InvalidArgument) as caught:
        replay.evaluate(SPEC, [gone[0], *labelled, gone[1]], executor=threads)
    fields = [v.field for v in caught.value.violations]
    assert fields == ["gone-1: FILE", "gone-2: FILE"]
    assert "gone-2.parquet" in caught.value.violations[1].description


def test_an_unexpected_error_names_its_rollout(tmp_path: Path) -> None:
    class Broken(replay.LabelledRollout):
        def load(self) -> Any:
            raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError) as caught:
        dispatch.replay_task(dispatch.Task((SPEC,), Broken("x7", "good", tmp_path)))
    assert "while replaying rollout 'x7'" in caught.value.__notes__


def test_index_paths_stay_readable_from_another_working_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "sets").mkdir()
    (tmp_path / "sets" / "index.csv").write_text(
        "file,label\na.csv,good\ns3://bucket/q3/b.parquet,bad\n/data/c.csv,good\n"
    )
    monkeypatch.chdir(tmp_path)
    local = replay.read_labelled("sets/index.csv")
    assert [r.source for r in local] == [
        tmp_path / "sets" / "a.csv",
        "s3://bucket/q3/b.parquet",
        Path("/data/c.csv"),
    ]
    assert [r.name for r in local] == ["a", "b", "c"]
    url = (tmp_path / "sets" / "index.csv").as_uri()
    remote = replay.read_labelled(url)
    assert remote[0].source == url.removesuffix("index.csv") + "a.csv"
    assert remote[1].source == "s3://bucket/q3/b.parquet"
