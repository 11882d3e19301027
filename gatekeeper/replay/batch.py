"""Replay many recorded rollouts on every core, and evaluate a spec on a labelled set.

A labelled set is rollouts whose fate is known: ``good`` (should have been promoted) or
``bad`` (should have been stopped). :func:`evaluate` replays each as a controller would
and counts how many bad ones FAILed (catch rate), how many good ones FAILed (false
rollbacks), how many ended undecided, and how long the caught ones took. :func:`sweep`
does that for several tolerances at once, for choosing one.

Replays run in the local process pool, or on any :class:`concurrent.futures.Executor`
given as ``executor=``, such as a Dask cluster's ``Client(...).get_executor()``
(:mod:`gatekeeper.replay.dispatch`); results are gathered by position, so they do not
depend on scheduling. A rollout given as a path is read where it is judged: the path must
be readable there (a shared filesystem, or object storage such as ``s3://`` through pandas
with the optional fsspec packages).
"""

from __future__ import annotations

import math
import posixpath
from collections.abc import Iterable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from gatekeeper.errors import FieldViolation, InvalidArgument
from gatekeeper.replay.core import Replay
from gatekeeper.replay.dispatch import Task, run_tasks
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


def replay_many(
    spec: AnalysisSpec,
    rollouts: Sequence[LabelledRollout],
    *,
    interval_seconds: float | None = None,
    every_look: bool = False,
    workers: int | None = None,
    executor: Executor | None = None,
    progress: bool | None = None,
) -> list[Replay]:
    """Replay every rollout with ``spec`` in the local pool or on ``executor``.

    Parameters
    ----------
    spec : AnalysisSpec
    rollouts : sequence of LabelledRollout
    interval_seconds : float or None
        Spacing of the looks (the spec's interval by default).
    every_look : bool
        Replay the looks after each decision too.
    workers : int or None
        Without ``executor``: local processes, all cores by default; 1 replays in this
        process. With one: its parallel slots, to size the chunks (by default what the
        executor tells: a Dask cluster's threads, a pool's workers).
    executor : concurrent.futures.Executor or None
        Where the replays run, for example ``distributed.Client(...).get_executor()``;
        rollouts given as paths are read there. By default the local pool.
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
    tasks = [Task((spec,), r, interval_seconds, every_look) for r in rollouts]
    found = run_tasks(tasks, workers=workers, executor=executor, progress=progress)
    return [replays[0] for replays in found]


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
    executor: Executor | None = None,
    progress: bool | None = None,
) -> Evaluation:
    """Replay a labelled set with ``spec`` and measure catches, false rollbacks and delays.

    ``workers``, ``executor`` and ``progress`` are as for :func:`replay_many`.

    Raises
    ------
    InvalidArgument
        When a label is not ``good`` or ``bad``, or a rollout cannot be replayed.
    """
    _check_labels(rollouts)
    replays = replay_many(
        spec,
        rollouts,
        interval_seconds=interval_seconds,
        workers=workers,
        executor=executor,
        progress=progress,
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
    executor: Executor | None = None,
    progress: bool | None = None,
) -> pd.DataFrame:
    """Evaluate the labelled set under each tolerance (all replays in one batch).

    Each rollout is read once and replayed with every tolerance where it is read;
    ``workers``, ``executor`` and ``progress`` are as for :func:`replay_many`.

    Returns
    -------
    pandas.DataFrame
        One row per tolerance: ``tolerance``, ``catch_rate``, ``false_rollback_rate``,
        ``inconclusive_rate``, ``missed_rate``, ``median_time_to_detect_seconds``.
    """
    _check_labels(rollouts)
    specs = tuple(with_tolerance(spec, t, metrics=metrics) for t in tolerances)
    tasks = [Task(specs, r, interval_seconds) for r in rollouts]
    replays = run_tasks(tasks, workers=workers, executor=executor, progress=progress)
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

    ``file`` is relative to the index's folder unless it is absolute or a URL; the
    rollout's name is the file's stem. Paths are made absolute, so workers whose working
    folder differs still find them; an index given as a URL (``s3://bucket/index.csv``,
    read through pandas) keeps its files as URLs beside it.

    Raises
    ------
    InvalidArgument
        When the index cannot be read, lacks a column or names a bad label (with its line).
    """
    index = Path(path)
    try:
        table = pd.read_csv(str(path), dtype=str, keep_default_na=False)
    except (OSError, ValueError, ImportError) as exc:
        raise InvalidArgument.single("FILE", f"cannot read {path}: {exc}") from None
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
        LabelledRollout(Path(f).stem, label, _beside(str(path), f))
        for f, label in zip(table["file"], table["label"], strict=True)
    ]


def _beside(index: str, file: str) -> str | Path:
    """Where ``file`` named in ``index`` is: a URL or absolute path as is, else beside it."""
    if "://" in file:
        return file
    if "://" in index:
        return posixpath.join(posixpath.dirname(index), file)
    return Path(index).absolute().parent / file
