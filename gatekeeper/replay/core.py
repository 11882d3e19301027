"""Replay one rollout look by look, as a controller's analysis would have judged it.

An analysis looks every interval from its start; look ``k`` of ``n`` judges the cumulative
data from the start to ``start + k * interval`` with ``Look(k, n)``, through
:func:`gatekeeper.engine.judge` with the analysis spec's settings. The looks run across the
rollout's analysis steps (:mod:`gatekeeper.replay.steps`; ``n`` is the plan's looks): a
controller stops at the first FAIL, or at a PASS in the final step (a PASS in an earlier
step only ends that step); ``every_look`` replays the remaining looks anyway (for plots), and the
summary still reports where the controller would have stopped. A look whose verdict is
ERROR (the metric source failed) ends the replay with that decision.

The data comes from a recorded rollout (:mod:`gatekeeper.sources.recorded`, laid on the
grid once and cut to each look) or from a metric source such as Prometheus (each look
fetched with :func:`gatekeeper.engine.fetch`, as Analyze does).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd

from gatekeeper import engine
from gatekeeper.errors import InvalidArgument
from gatekeeper.replay.steps import StepPlan, whole_window
from gatekeeper.sources.base import MetricSource, Window
from gatekeeper.sources.recorded import Grid, RecordedRollout
from gatekeeper.spec import AnalysisSpec
from gatekeeper.stats.model import HistogramSeries, LookPosition, MetricData, RatioSeries
from gatekeeper.stats.results import Decision, MetricKind, MetricResult, Verdict
from gatekeeper.stats.tails import histogram_quantile


class Looks(Protocol):
    """Where a replay gets each look's cumulative data."""

    @property
    def window(self) -> Window:
        """The whole replayed window; look k covers its first k points."""
        ...

    def upto(self, points: int) -> list[MetricData]:
        """Every metric's data over the window's first ``points`` points."""
        ...


@dataclass(frozen=True, slots=True, eq=False)
class RecordedLooks:
    """Looks cut from a recorded rollout laid on the replay's grid."""

    grid: Grid

    @property
    def window(self) -> Window:
        """The grid's window."""
        return self.grid.window

    def upto(self, points: int) -> list[MetricData]:
        """The grid's first ``points`` points."""
        return self.grid.upto(points)


@dataclass(frozen=True, slots=True, eq=False)
class SourceLooks:
    """Looks fetched from a metric source, one Analyze-like fetch per look."""

    spec: AnalysisSpec
    source: MetricSource
    sides: engine.Sides
    window: Window

    def upto(self, points: int) -> list[MetricData]:
        """Fetch both sides of every metric from the window's start over ``points`` points."""
        step = self.window.step
        cut = Window(self.window.start, self.window.start + points * step, step)
        return engine.fetch(self.spec, source=self.source, sides=self.sides, window=cut)


@dataclass(frozen=True, slots=True)
class ReplaySummary:
    """What a controller would have done.

    Attributes
    ----------
    decision : Decision
        The decision the analysis ended with: the first PASS or FAIL, else the last look's
        (INCONCLUSIVE, or ERROR when the metric source failed).
    looks : int
        Looks the controller took (to its decision, or all of them).
    planned_looks : int
        Looks of the whole plan (of the window without a step plan).
    interval_seconds : float
        Spacing of the looks.
    start : float
        Unix seconds of the analysis's start.
    decided_after_seconds : float or None
        Seconds from the start to the PASS or FAIL; None when the analysis ran out undecided.
    first_fail_seconds : float or None
        Seconds from the start to the first FAIL among the replayed looks (with
        ``every_look``, possibly after a PASS); None without a FAIL.
    canary_bad_before_decision, canary_requests_before_decision : float or None
        Bad and all canary events of ``bad_metric`` from the start to the controller's last
        look; None without a RATIO metric.
    bad_metric : str or None
        The RATIO metric those counts come from.
    summary : str
        The sentence of the deciding verdict.
    """

    decision: Decision
    looks: int
    planned_looks: int
    interval_seconds: float
    start: float
    decided_after_seconds: float | None
    first_fail_seconds: float | None
    canary_bad_before_decision: float | None
    canary_requests_before_decision: float | None
    bad_metric: str | None
    summary: str

    @property
    def first_fail_time(self) -> float | None:
        """Unix seconds of the first FAIL, or None."""
        if self.first_fail_seconds is None:
            return None
        return self.start + self.first_fail_seconds


@dataclass(frozen=True, slots=True, eq=False)
class Replay:
    """A replayed analysis: the summary, a timeline of its looks and their verdicts.

    ``timeline`` has one row per replayed look: ``look``, ``step`` (its analysis step,
    1-based), ``time`` (UTC), ``elapsed_seconds``,
    ``decision``, ``score``, ``after_decision`` (a look the controller would not have taken),
    ``canary_bad`` and ``canary_requests`` (cumulative, of the summary's ``bad_metric``),
    then per metric ``<name>.outcome``, ``<name>.p_value``, ``<name>.estimate``,
    ``<name>.lower`` and ``<name>.upper``. ``data`` is the cumulative data of the last look
    replayed (per-interval series for plots).
    """

    summary: ReplaySummary
    timeline: pd.DataFrame
    verdicts: tuple[Verdict, ...]
    data: tuple[MetricData, ...]
    window: Window
    steps: StepPlan

    def to_json(self, *, timeline: bool = True) -> dict[str, Any]:
        """The summary and (with ``timeline``) every replayed look, JSON-ready (NaN as None)."""
        summary = self.summary
        found: dict[str, Any] = {
            "decision": summary.decision.value,
            "decided_after_seconds": summary.decided_after_seconds,
            "canary_bad_before_decision": summary.canary_bad_before_decision,
            "canary_requests_before_decision": summary.canary_requests_before_decision,
            "looks": summary.looks,
            "planned_looks": summary.planned_looks,
            "interval_seconds": summary.interval_seconds,
            "start": summary.start,
            "first_fail_seconds": summary.first_fail_seconds,
            "bad_metric": summary.bad_metric,
            "summary": summary.summary,
            "steps": {
                "ends": list(self.steps.ends),
                "weights": list(self.steps.weights),
                "origin": self.steps.origin,
            },
        }
        if timeline:
            found["timeline"] = [
                self._look_json(k, v) for k, v in enumerate(self.verdicts, start=1)
            ]
        return found

    def _look_json(self, look: int, verdict: Verdict) -> dict[str, Any]:
        row = self.timeline.iloc[look - 1]
        return {
            "look": look,
            "step": self.steps.step_of(look),
            "time": row["time"].isoformat().replace("+00:00", "Z"),
            "elapsed_seconds": float(row["elapsed_seconds"]),
            "decision": verdict.decision.value,
            "score": _finite(verdict.score),
            "after_decision": bool(row["after_decision"]),
            "canary_bad": _finite(row["canary_bad"]),
            "canary_requests": _finite(row["canary_requests"]),
            "metrics": {m.name: _metric_json(m) for m in verdict.metrics},
        }


def _finite(value: object) -> float | None:
    number = float(value)  # type: ignore[arg-type]
    return number if math.isfinite(number) else None


def _metric_json(result: MetricResult) -> dict[str, Any]:
    return {
        "outcome": result.outcome.value,
        "p_value": _finite(result.p_value),
        "estimate": _finite(result.effect.estimate),
        "lower": _finite(result.effect.lower),
        "upper": _finite(result.effect.upper),
        "scale": result.effect.scale,
        "reason": result.reason,
    }


def bad_metric_of(spec: AnalysisSpec, name: str | None = None) -> str | None:
    """The RATIO metric whose canary bad events a replay counts.

    ``name`` when given (it must be a RATIO metric of the spec), else the first RATIO
    metric that is not dry-run, else the first RATIO metric, else None.

    Raises
    ------
    ValueError
        When ``name`` is not a RATIO metric of the spec.
    """
    ratios = [m for m in spec.metrics if spec.kind_of(m) is MetricKind.RATIO]
    if name is not None:
        if name not in {m.name for m in ratios}:
            allowed = ", ".join(m.name for m in ratios) or "none"
            raise ValueError(f"bad_metric must be a RATIO metric of the spec ({allowed})")
        return name
    live = [m for m in ratios if not m.dry_run]
    chosen = live or ratios
    return chosen[0].name if chosen else None


def _canary_counts(data: Sequence[MetricData], name: str | None) -> tuple[float, float]:
    for metric in data:
        if metric.settings.name == name and isinstance(metric.canary, RatioSeries):
            return float(metric.canary.bad.sum()), float(metric.canary.total.sum())
    return math.nan, math.nan


@dataclass(frozen=True, slots=True)
class _Look:
    index: int
    verdict: Verdict
    canary_bad: float
    canary_requests: float


def run(
    spec: AnalysisSpec,
    looks: Looks,
    *,
    every_look: bool = False,
    bad_metric: str | None = None,
    steps: StepPlan | None = None,
) -> Replay:
    """Replay ``looks`` with ``spec`` across ``steps``, stopping where a controller would.

    The controller stops at the first FAIL or at a PASS in the final analysis step;
    ``every_look`` replays on anyway.

    Parameters
    ----------
    spec : AnalysisSpec
        The analysis spec the controller judged with.
    looks : Looks
        Where each look's cumulative data comes from; its window sets the looks.
    every_look : bool
        Replay all looks, also after the controller's decision.
    bad_metric : str or None
        The RATIO metric whose canary bad events are counted (:func:`bad_metric_of`).
    steps : StepPlan or None
        The rollout's analysis steps; None: one step over the whole window.

    Returns
    -------
    Replay
    """
    window = looks.window
    plan = steps if steps is not None else whole_window(window.points)
    planned = plan.planned
    counted = bad_metric_of(spec, bad_metric)
    taken: list[_Look] = []
    decided: int | None = None
    data: list[MetricData] = []
    for index in range(1, window.points + 1):
        data = looks.upto(index)
        settings = spec.judge_settings(
            look=LookPosition(index, planned), interval_seconds=window.step
        )
        verdict = engine.judge(data, settings)
        taken.append(_Look(index, verdict, *_canary_counts(data, counted)))
        ends = verdict.decision is Decision.FAIL or (
            verdict.decision is Decision.PASS and plan.promotes(index)
        )
        if decided is None and ends:
            decided = index
            if not every_look:
                break
        if verdict.decision is Decision.ERROR:
            break  # the source failed: the rest of the window cannot be judged either
    return Replay(
        summary=_summary(taken, decided, window=window, bad_metric=counted, planned=planned),
        timeline=_timeline(taken, decided, window=window, plan=plan),
        verdicts=tuple(look.verdict for look in taken),
        data=tuple(data),
        window=window,
        steps=plan,
    )


def _summary(
    taken: Sequence[_Look],
    decided: int | None,
    *,
    window: Window,
    bad_metric: str | None,
    planned: int,
) -> ReplaySummary:
    last = taken[decided - 1] if decided is not None else taken[-1]
    fails = [look.index for look in taken if look.verdict.decision is Decision.FAIL]
    counts_known = bad_metric is not None and not math.isnan(last.canary_bad)
    return ReplaySummary(
        decision=last.verdict.decision,
        looks=last.index,
        planned_looks=planned,
        interval_seconds=window.step,
        start=window.start,
        decided_after_seconds=None if decided is None else decided * window.step,
        first_fail_seconds=fails[0] * window.step if fails else None,
        canary_bad_before_decision=last.canary_bad if counts_known else None,
        canary_requests_before_decision=last.canary_requests if counts_known else None,
        bad_metric=bad_metric,
        summary=last.verdict.summary,
    )


def _timeline(
    taken: Sequence[_Look], decided: int | None, *, window: Window, plan: StepPlan
) -> pd.DataFrame:
    rows = []
    for look in taken:
        elapsed = look.index * window.step
        row: dict[str, object] = {
            "look": look.index,
            "step": plan.step_of(look.index),
            "time": pd.Timestamp(window.start + elapsed, unit="s", tz="UTC"),
            "elapsed_seconds": elapsed,
            "decision": look.verdict.decision.value,
            "score": look.verdict.score,
            "after_decision": decided is not None and look.index > decided,
            "canary_bad": look.canary_bad,
            "canary_requests": look.canary_requests,
        }
        for metric in look.verdict.metrics:
            row[f"{metric.name}.outcome"] = metric.outcome.value
            row[f"{metric.name}.p_value"] = metric.p_value
            row[f"{metric.name}.estimate"] = metric.effect.estimate
            row[f"{metric.name}.lower"] = metric.effect.lower
            row[f"{metric.name}.upper"] = metric.effect.upper
        rows.append(row)
    return pd.DataFrame(rows)


def replay_recorded(
    spec: AnalysisSpec,
    rollout: RecordedRollout,
    *,
    interval_seconds: float | None = None,
    start: float | None = None,
    end: float | None = None,
    every_look: bool = False,
    bad_metric: str | None = None,
    steps: StepPlan | None = None,
) -> Replay:
    """Replay a recorded rollout with ``spec``.

    Parameters
    ----------
    spec : AnalysisSpec
        Its metrics are matched to the file's ``metric`` column by name; queries are unused.
    rollout : RecordedRollout
        The recorded data (:func:`gatekeeper.sources.recorded.read_recorded`).
    interval_seconds : float or None
        Spacing of the looks; the spec's interval by default.
    start, end : float or None
        Unix seconds of the analysis; by default from the first row's interval to the last
        row (:meth:`RecordedRollout.window`).
    every_look, bad_metric, steps
        As :func:`run`.

    Raises
    ------
    InvalidArgument
        When a metric's kind in the file is not the spec's, or the window is empty.
    """
    interval = interval_seconds or spec.interval_seconds
    window = rollout.window(interval_seconds=interval, start=start, end=end)
    settings = [spec.settings(metric) for metric in spec.metrics]
    looks = RecordedLooks(rollout.grid(settings, window=window))
    return run(spec, looks, every_look=every_look, bad_metric=bad_metric, steps=steps)


def replay_source(
    spec: AnalysisSpec,
    *,
    source: MetricSource,
    sides: engine.Sides,
    start: float,
    end: float,
    interval_seconds: float | None = None,
    every_look: bool = False,
    bad_metric: str | None = None,
    steps: StepPlan | None = None,
) -> Replay:
    """Replay a historic window of a metric source (Prometheus) with ``spec``.

    Each look fetches the cumulative window from ``start`` with :func:`engine.fetch`, as
    Analyze would have at that time; a source failure is that look's ERROR. ``steps`` as
    :func:`run`.

    Raises
    ------
    InvalidArgument
        When the selectors are not label matchers or the window holds no whole interval.
    QueryRejected
        When the source refuses a query.
    """
    interval = interval_seconds or spec.interval_seconds
    window = _whole_window(start, end, interval)
    looks = SourceLooks(spec, source, sides, window)
    return run(spec, looks, every_look=every_look, bad_metric=bad_metric, steps=steps)


def _whole_window(start: float, end: float, interval: float) -> Window:
    if not end > start:
        raise InvalidArgument.single("end", f"must be after the start {start:.3f}, got {end:.3f}")
    window = Window(start, end, interval)
    if window.points < 1:
        raise InvalidArgument.single(
            "end", f"the window {end - start:g}s is shorter than one interval ({interval:g}s)"
        )
    return Window(start, start + window.points * interval, interval)


# --- per-interval series, for plots ---------------------------------------------------------


def per_interval(replay: Replay, *, quantile: float = 0.99) -> pd.DataFrame:
    """Each metric's per-interval level on both sides over the replayed looks.

    RATIO: the bad share (NaN where an interval had no events); HISTOGRAM: the
    ``quantile`` of the interval's buckets (NaN where empty); VALUES metrics are left out
    (their samples carry no time once cut). Columns ``time``, ``elapsed_seconds`` (at the
    interval's end), ``metric``, ``side``, ``value``.
    """
    frames = []
    for metric in replay.data:
        for side, series in (("baseline", metric.baseline), ("canary", metric.canary)):
            if isinstance(series, RatioSeries):
                with np.errstate(invalid="ignore", divide="ignore"):
                    level = np.where(series.total > 0, series.bad / series.total, np.nan)
            elif isinstance(series, HistogramSeries):
                bounds = series.upper_bounds
                level = np.array(
                    [
                        histogram_quantile(q=quantile, upper_bounds=bounds, cumulative=row)
                        for row in series.counts
                    ]
                )
            else:
                continue
            elapsed = replay.window.step * np.arange(1, level.size + 1)
            frames.append(
                pd.DataFrame(
                    {
                        "time": pd.to_datetime(replay.window.start + elapsed, unit="s", utc=True),
                        "elapsed_seconds": elapsed,
                        "metric": metric.settings.name,
                        "side": side,
                        "value": level,
                    }
                )
            )
    if not frames:
        return pd.DataFrame(columns=["time", "elapsed_seconds", "metric", "side", "value"])
    return pd.concat(frames, ignore_index=True)
