"""Replay many recorded rollouts on every core, and evaluate a spec on a labelled set.

A labelled set is rollouts whose fate is known: ``good`` (should have been promoted) or
``bad`` (should have been stopped). :func:`evaluate` replays each as a controller would
and counts how many bad ones FAILed (catch rate), how many good ones FAILed (false
rollbacks), how many ended undecided, and how long the caught ones took. :func:`sweep`
does that for several tolerances at once, for choosing one.

Replays run in a process pool (``forkserver`` with this module preloaded, so workers start
fast and no threads are forked); results are gathered by position, so they do not depend
on scheduling. A progress bar goes to stderr when it is a
terminal, or when asked.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import sys
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NoReturn

import numpy as np
import pandas as pd
from tqdm import tqdm

from gatekeeper.errors import FieldViolation, GatekeeperError, InvalidArgument
from gatekeeper.replay.core import Replay, replay_recorded
from gatekeeper.sources.recorded import RecordedRollout, read_recorded
from gatekeeper.spec import AnalysisSpec
from gatekeeper.stats.results import Decision

Label = Literal["good", "bad"]
LABELS = ("good", "bad")


@dataclass(frozen=True, slots=True, eq=False)
class LabelledRollout:
    """A rollout whose fate is known: a recorded file (or table) and its label."""

    name: str
    label: Label
    source: str | Path | RecordedRollout

    def load(self) -> RecordedRollout:
        """The recorded rollout (read from its file when it is a path)."""
        if isinstance(self.source, RecordedRollout):
            return self.source
        return read_recorded(self.source)


@dataclass(frozen=True, slots=True, eq=False)
class _Task:
    """One rollout of a batch, replayed with each spec (read once)."""

    specs: tuple[AnalysisSpec, ...]
    rollout: LabelledRollout
    interval_seconds: float | None = None
    every_look: bool = False


@dataclass(frozen=True, slots=True)
class _Failed:
    """A replay's domain error, carried back from a worker as plain data."""

    message: str
    violations: tuple[FieldViolation, ...]


def _replay_task(task: _Task) -> tuple[Replay, ...] | _Failed:
    """Run one task (in a worker process); domain errors come back as data."""
    try:
        recorded = task.rollout.load()
        return tuple(
            replay_recorded(
                spec, recorded, interval_seconds=task.interval_seconds, every_look=task.every_look
            )
            for spec in task.specs
        )
    except InvalidArgument as exc:
        return _Failed(str(exc), exc.violations)
    except GatekeeperError as exc:
        return _Failed(str(exc), ())


def _raise(task: _Task, failed: _Failed) -> NoReturn:
    name = task.rollout.name
    if failed.violations:
        raise InvalidArgument(
            [FieldViolation(f"{name}: {v.field}", v.description) for v in failed.violations]
        )
    raise InvalidArgument.single(name, failed.message)


def _show_progress(progress: bool | None) -> bool:
    return sys.stderr.isatty() if progress is None else progress


def _run_tasks(
    tasks: Sequence[_Task], *, workers: int | None, progress: bool | None
) -> list[tuple[Replay, ...]]:
    """Every task's replays, in the tasks' order whatever the scheduling."""
    count = workers or os.cpu_count() or 1
    results: list[tuple[Replay, ...] | _Failed | None] = [None] * len(tasks)
    with tqdm(
        total=len(tasks), file=sys.stderr, disable=not _show_progress(progress), unit="rollout"
    ) as bar:
        if count <= 1 or len(tasks) <= 1:
            for index, task in enumerate(tasks):
                results[index] = _replay_task(task)
                bar.update()
        else:
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload([__name__])
            with ProcessPoolExecutor(max_workers=count, mp_context=context) as pool:
                futures: dict[Future[tuple[Replay, ...] | _Failed], int] = {
                    pool.submit(_replay_task, task): index for index, task in enumerate(tasks)
                }
                for future in as_completed(futures):
                    results[futures[future]] = future.result()
                    bar.update()
    replays: list[tuple[Replay, ...]] = []
    for task, result in zip(tasks, results, strict=True):
        if isinstance(result, _Failed):
            _raise(task, result)
        assert result is not None
        replays.append(result)
    return replays


def replay_many(
    spec: AnalysisSpec,
    rollouts: Sequence[LabelledRollout],
    *,
    interval_seconds: float | None = None,
    every_look: bool = False,
    workers: int | None = None,
    progress: bool | None = None,
) -> list[Replay]:
    """Replay every rollout with ``spec`` on ``workers`` processes.

    Parameters
    ----------
    spec : AnalysisSpec
    rollouts : sequence of LabelledRollout
    interval_seconds : float or None
        Spacing of the looks (the spec's interval by default).
    every_look : bool
        Replay the looks after each decision too.
    workers : int or None
        Processes; all cores by default; 1 replays in this process.
    progress : bool or None
        Show a progress bar on stderr; by default only when stderr is a terminal.

    Returns
    -------
    list of Replay
        One per rollout, in the rollouts' order whatever the scheduling.

    Raises
    ------
    InvalidArgument
        When a rollout cannot be read or replayed; fields are prefixed with its name.
    """
    tasks = [_Task((spec,), r, interval_seconds, every_look) for r in rollouts]
    return [found[0] for found in _run_tasks(tasks, workers=workers, progress=progress)]


# --- evaluation -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class Evaluation:
    """How a spec did on a labelled set.

    Attributes
    ----------
    catch_rate : float
        Share of bad rollouts that FAILed (NaN without bad rollouts).
    false_rollback_rate : float
        Share of good rollouts that FAILed (NaN without good rollouts).
    inconclusive_rate : float
        Share of all rollouts that ended neither PASS nor FAIL.
    missed_rate : float
        Share of bad rollouts that PASSed.
    median_time_to_detect_seconds, mean_time_to_detect_seconds : float
        Seconds from the start to the FAIL, over the caught bad rollouts (NaN without any).
    results : pandas.DataFrame
        One row per rollout: ``name``, ``label``, ``decision``, ``decided_after_seconds``,
        ``first_fail_seconds``, ``canary_bad_before_decision``, ``looks``.
    """

    catch_rate: float
    false_rollback_rate: float
    inconclusive_rate: float
    missed_rate: float
    median_time_to_detect_seconds: float
    mean_time_to_detect_seconds: float
    results: pd.DataFrame

    def rates(self) -> dict[str, float | None]:
        """The rates and times as JSON-ready values (NaN as None)."""
        values = {
            "catch_rate": self.catch_rate,
            "false_rollback_rate": self.false_rollback_rate,
            "inconclusive_rate": self.inconclusive_rate,
            "missed_rate": self.missed_rate,
            "median_time_to_detect_seconds": self.median_time_to_detect_seconds,
            "mean_time_to_detect_seconds": self.mean_time_to_detect_seconds,
        }
        return {k: (None if math.isnan(v) else v) for k, v in values.items()}


def _share(hits: int, of: int) -> float:
    return hits / of if of else math.nan


def _nan(value: float | None) -> float:
    return math.nan if value is None else value


def _results(rollouts: Sequence[LabelledRollout], replays: Sequence[Replay]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "name": [r.name for r in rollouts],
            "label": [r.label for r in rollouts],
            "decision": [p.summary.decision.value for p in replays],
            "decided_after_seconds": [_nan(p.summary.decided_after_seconds) for p in replays],
            "first_fail_seconds": [_nan(p.summary.first_fail_seconds) for p in replays],
            "canary_bad_before_decision": [
                _nan(p.summary.canary_bad_before_decision) for p in replays
            ],
            "looks": [p.summary.looks for p in replays],
        }
    )


def evaluation(results: pd.DataFrame) -> Evaluation:
    """The rates of a per-rollout results table (as :attr:`Evaluation.results`)."""
    bad = results[results["label"] == "bad"]
    good = results[results["label"] == "good"]
    fail, passed = Decision.FAIL.value, Decision.PASS.value
    caught = bad[bad["decision"] == fail]["decided_after_seconds"].to_numpy(dtype=float)
    undecided = ~results["decision"].isin([fail, passed])
    return Evaluation(
        catch_rate=_share(int((bad["decision"] == fail).sum()), len(bad)),
        false_rollback_rate=_share(int((good["decision"] == fail).sum()), len(good)),
        inconclusive_rate=_share(int(undecided.sum()), len(results)),
        missed_rate=_share(int((bad["decision"] == passed).sum()), len(bad)),
        median_time_to_detect_seconds=float(np.median(caught)) if caught.size else math.nan,
        mean_time_to_detect_seconds=float(np.mean(caught)) if caught.size else math.nan,
        results=results,
    )


def evaluate(
    spec: AnalysisSpec,
    rollouts: Sequence[LabelledRollout],
    *,
    interval_seconds: float | None = None,
    workers: int | None = None,
    progress: bool | None = None,
) -> Evaluation:
    """Replay a labelled set with ``spec`` and measure catches, false rollbacks and delays.

    Raises
    ------
    InvalidArgument
        When a label is not ``good`` or ``bad``, or a rollout cannot be replayed.
    """
    _check_labels(rollouts)
    replays = replay_many(
        spec, rollouts, interval_seconds=interval_seconds, workers=workers, progress=progress
    )
    return evaluation(_results(rollouts, replays))


def _check_labels(rollouts: Iterable[LabelledRollout]) -> None:
    wrong = [
        FieldViolation(f"{r.name}: label", f"must be good or bad, got {r.label!r}")
        for r in rollouts
        if r.label not in LABELS
    ]
    if wrong:
        raise InvalidArgument(wrong)


def with_tolerance(
    spec: AnalysisSpec, tolerance: float, *, metrics: Sequence[str] | None = None
) -> AnalysisSpec:
    """The spec with ``tolerance`` on ``metrics`` (all metrics by default).

    Raises
    ------
    InvalidArgument
        When a named metric is not in the spec or the tolerance is invalid.
    """
    names = {m.name for m in spec.metrics}
    unknown = sorted(set(metrics or ()) - names)
    if unknown:
        raise InvalidArgument.single(
            "metrics",
            f"unknown metric(s) {', '.join(unknown)}; allowed: {', '.join(sorted(names))}",
        )
    chosen = names if metrics is None else set(metrics)
    raw = spec.model_dump()
    for metric in raw["metrics"]:
        if metric["name"] in chosen:
            metric["tolerance"] = tolerance
    try:
        return AnalysisSpec.model_validate(raw, context={"queries": False})
    except ValueError as exc:
        raise InvalidArgument.single("tolerance", str(exc)) from None


def sweep(
    spec: AnalysisSpec,
    rollouts: Sequence[LabelledRollout],
    *,
    tolerances: Sequence[float],
    metrics: Sequence[str] | None = None,
    interval_seconds: float | None = None,
    workers: int | None = None,
    progress: bool | None = None,
) -> pd.DataFrame:
    """Evaluate the labelled set under each tolerance (all replays in one pool).

    Returns
    -------
    pandas.DataFrame
        One row per tolerance: ``tolerance``, ``catch_rate``, ``false_rollback_rate``,
        ``inconclusive_rate``, ``missed_rate``, ``median_time_to_detect_seconds``.
    """
    _check_labels(rollouts)
    specs = tuple(with_tolerance(spec, t, metrics=metrics) for t in tolerances)
    tasks = [_Task(specs, r, interval_seconds) for r in rollouts]
    replays = _run_tasks(tasks, workers=workers, progress=progress)
    rows = []
    for k, tolerance in enumerate(tolerances):
        found = evaluation(_results(rollouts, [per_rollout[k] for per_rollout in replays]))
        rows.append(
            {
                "tolerance": tolerance,
                "catch_rate": found.catch_rate,
                "false_rollback_rate": found.false_rollback_rate,
                "inconclusive_rate": found.inconclusive_rate,
                "missed_rate": found.missed_rate,
                "median_time_to_detect_seconds": found.median_time_to_detect_seconds,
            }
        )
    return pd.DataFrame(rows)


def read_labelled(path: str | Path) -> list[LabelledRollout]:
    """A labelled set from a CSV index with columns ``file`` and ``label`` (good | bad).

    ``file`` is relative to the index's folder; the rollout's name is the file's stem.

    Raises
    ------
    InvalidArgument
        When the index cannot be read, lacks a column or names a bad label (with its line).
    """
    index = Path(path)
    try:
        table = pd.read_csv(index, dtype=str, keep_default_na=False)
    except (OSError, ValueError) as exc:
        raise InvalidArgument.single("FILE", f"cannot read {index}: {exc}") from None
    missing = [c for c in ("file", "label") if c not in table.columns]
    if missing:
        raise InvalidArgument.single("columns", f"{index.name} lacks {', '.join(missing)}")
    wrong = [
        FieldViolation(f"line {k + 2}", f"label: must be good or bad, got {label!r}")
        for k, label in enumerate(table["label"])
        if label not in LABELS
    ]
    if wrong:
        raise InvalidArgument(wrong)
    return [
        LabelledRollout(Path(f).stem, label, index.parent / f)
        for f, label in zip(table["file"], table["label"], strict=True)
    ]
