"""Ship replays to an executor in chunks and gather them back in order.

A batch is a list of tasks, one per rollout (each replayed with one or more specs). The
tasks go to any :class:`concurrent.futures.Executor`: the local process pool by default
(``forkserver`` with this module preloaded, so workers start fast and no threads are
forked), or one the caller brings, such as a Dask cluster's
``distributed.Client(...).get_executor()``. Tasks travel in chunks, a few per parallel slot
of the executor and at most :data:`MAX_CHUNK` rollouts each, so that a set of 10^4 rollouts
makes hundreds of round trips, not 10^4, while a lost worker costs one chunk. A rollout's
file is read by the worker that judges it; only its path travels.

Results are gathered by position, so they do not depend on scheduling, and a replay is the
same wherever it runs (the judge has no randomness). Domain errors come back as data and
are raised here together, each field prefixed with its rollout's name; anything unexpected
propagates with a note naming the rollout. A progress bar goes to stderr when it is a
terminal, or when asked.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tqdm import tqdm

from gatekeeper.errors import FieldViolation, GatekeeperError, InvalidArgument
from gatekeeper.replay.core import Replay, replay_recorded
from gatekeeper.spec import AnalysisSpec

if TYPE_CHECKING:
    from gatekeeper.replay.batch import LabelledRollout

#: Chunks per parallel slot: enough for the slots to even out uneven chunks.
CHUNKS_PER_SLOT = 4
#: Most rollouts in one chunk (about 5 s of judging at 0.15 s per 15-look rollout).
MAX_CHUNK = 32


@dataclass(frozen=True, slots=True, eq=False)
class Task:
    """One rollout of a batch, replayed with each spec (read once)."""

    specs: tuple[AnalysisSpec, ...]
    rollout: LabelledRollout
    interval_seconds: float | None = None
    every_look: bool = False


@dataclass(frozen=True, slots=True)
class Failed:
    """A replay's domain error, carried back from a worker as plain data."""

    message: str
    violations: tuple[FieldViolation, ...]


Outcome = tuple[Replay, ...] | Failed


def replay_task(task: Task) -> Outcome:
    """Run one task (where it is shipped); domain errors come back as data."""
    try:
        recorded = task.rollout.load()
        return tuple(
            replay_recorded(
                spec, recorded, interval_seconds=task.interval_seconds, every_look=task.every_look
            )
            for spec in task.specs
        )
    except InvalidArgument as exc:
        return Failed(str(exc), exc.violations)
    except GatekeeperError as exc:
        return Failed(str(exc), ())
    except Exception as exc:
        exc.add_note(f"while replaying rollout {task.rollout.name!r}")
        raise


def replay_chunk(tasks: Sequence[Task]) -> list[Outcome]:
    """Run a chunk of tasks one after the other (the unit an executor receives)."""
    return [replay_task(task) for task in tasks]


def chunk_size(tasks: int, slots: int) -> int:
    """Rollouts per chunk: :data:`CHUNKS_PER_SLOT` chunks per slot, at most :data:`MAX_CHUNK`."""
    return max(1, min(MAX_CHUNK, math.ceil(tasks / (CHUNKS_PER_SLOT * max(1, slots)))))


def executor_slots(executor: Executor) -> int:
    """How many tasks ``executor`` runs at once, as far as it tells.

    A Dask ``ClientExecutor`` tells through its client (the cluster's threads at this
    moment); the standard library's pools through ``_max_workers``; otherwise the local
    cores are assumed. Pass ``workers=`` to the batch functions to say it outright.
    """
    client = getattr(executor, "_client", None)
    if client is not None and hasattr(client, "nthreads"):
        return max(1, int(sum(client.nthreads().values())))
    known = getattr(executor, "_max_workers", None)
    return known if isinstance(known, int) and known > 0 else os.cpu_count() or 1


def _violations(task: Task, failed: Failed) -> list[FieldViolation]:
    name = task.rollout.name
    if failed.violations:
        return [FieldViolation(f"{name}: {v.field}", v.description) for v in failed.violations]
    return [FieldViolation(name, failed.message)]


def _show_progress(progress: bool | None) -> bool:
    return sys.stderr.isatty() if progress is None else progress


def _on_executor(
    executor: Executor, tasks: Sequence[Task], *, slots: int, advance: Callable[[int], object]
) -> list[Outcome]:
    size = chunk_size(len(tasks), slots)
    futures: dict[Future[list[Outcome]], int] = {
        executor.submit(replay_chunk, tasks[start : start + size]): start
        for start in range(0, len(tasks), size)
    }
    outcomes: list[Outcome | None] = [None] * len(tasks)
    for future in as_completed(futures):
        done = future.result()
        start = futures[future]
        outcomes[start : start + len(done)] = done
        advance(len(done))
    assert all(o is not None for o in outcomes)
    return outcomes  # type: ignore[return-value]


def _local_pool(count: int) -> ProcessPoolExecutor:
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    return ProcessPoolExecutor(max_workers=count, mp_context=context)


def run_tasks(
    tasks: Sequence[Task],
    *,
    workers: int | None,
    executor: Executor | None,
    progress: bool | None,
) -> list[tuple[Replay, ...]]:
    """Every task's replays, in the tasks' order whatever the scheduling.

    Without ``executor``: ``workers`` local processes (all cores by default; 1, or a single
    task, replays in this process). With one: chunks sized for ``workers`` slots, or for
    what :func:`executor_slots` finds.
    """
    with tqdm(
        total=len(tasks), file=sys.stderr, disable=not _show_progress(progress), unit="rollout"
    ) as bar:
        if executor is not None:
            slots = workers or executor_slots(executor)
            outcomes = _on_executor(executor, tasks, slots=slots, advance=bar.update)
        elif (count := workers or os.cpu_count() or 1) <= 1 or len(tasks) <= 1:
            outcomes = []
            for task in tasks:
                outcomes.append(replay_task(task))
                bar.update()
        else:
            with _local_pool(count) as pool:
                outcomes = _on_executor(pool, tasks, slots=count, advance=bar.update)
    wrong = [
        violation
        for task, outcome in zip(tasks, outcomes, strict=True)
        if isinstance(outcome, Failed)
        for violation in _violations(task, outcome)
    ]
    if wrong:
        raise InvalidArgument(wrong)
    return [outcome for outcome in outcomes if not isinstance(outcome, Failed)]
