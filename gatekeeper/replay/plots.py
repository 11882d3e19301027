"""Plots of replays (matplotlib, imported when a plot is drawn: ``pip install '.[plots]'``).

- :func:`plot_replay`: baseline and canary error rate and latency quantile per interval,
  with the verdict timeline below and the controller's decision (the rollback point of a
  FAIL) marked on every panel.
- :func:`plot_tradeoff`: catch rate against false rollbacks over a tolerance sweep.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from gatekeeper.replay.core import Replay, per_interval
from gatekeeper.stats.model import HistogramSeries
from gatekeeper.stats.results import Decision

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: Marker colours of the decisions.
COLOURS = {
    Decision.PASS.value: "tab:green",
    Decision.FAIL.value: "tab:red",
    Decision.INCONCLUSIVE.value: "tab:gray",
    Decision.ERROR.value: "tab:orange",
}
_SIDE_COLOURS = {"baseline": "tab:blue", "canary": "tab:red"}


def _latency_metric(replay: Replay) -> str | None:
    for metric in replay.data:
        if isinstance(metric.baseline, HistogramSeries):
            return metric.settings.name
    return None


def _levels(axes: Axes, levels: pd.DataFrame, metric: str | None, *, label: str) -> None:
    axes.set_ylabel(label)
    if metric is None:
        axes.text(0.5, 0.5, "no such metric", ha="center", transform=axes.transAxes)
        return
    mine = levels[levels["metric"] == metric]
    for side, colour in _SIDE_COLOURS.items():
        rows = mine[mine["side"] == side]
        minutes = rows["elapsed_seconds"] / 60.0
        axes.plot(minutes, rows["value"], label=side, drawstyle="steps-pre", color=colour)
    axes.legend(loc="upper left")
    axes.set_title(metric, loc="left", fontsize="medium")


def _verdicts(axes: Axes, replay: Replay) -> None:
    timeline = replay.timeline
    minutes = timeline["elapsed_seconds"] / 60.0
    axes.plot(minutes, timeline["score"], color="black", linewidth=1, label="score")
    for decision, colour in COLOURS.items():
        rows = timeline["decision"] == decision
        if rows.any():
            axes.scatter(
                minutes[rows], timeline["score"][rows], color=colour, label=decision, zorder=3
            )
    axes.set_ylim(-5, 105)
    axes.set_ylabel("score")
    axes.legend(loc="upper left", ncols=5, fontsize="small")


def _mark_decision(panels: list[Axes], replay: Replay) -> None:
    summary = replay.summary
    if summary.decided_after_seconds is None:
        return
    when = summary.decided_after_seconds / 60.0
    failed = summary.decision is Decision.FAIL
    label = "rollback" if failed else "promote"
    for axes in panels:
        axes.axvline(when, color=COLOURS[summary.decision.value], linestyle="--", linewidth=1.5)
    panels[0].annotate(
        label,
        xy=(when, 1.0),
        xycoords=("data", "axes fraction"),
        xytext=(4, -12),
        textcoords="offset points",
        color=COLOURS[summary.decision.value],
    )


def plot_replay(
    replay: Replay,
    *,
    error_metric: str | None = None,
    latency_metric: str | None = None,
    quantile: float = 0.99,
) -> Figure:
    """Baseline vs canary per interval, and the verdict of every look.

    Parameters
    ----------
    replay : Replay
        Best replayed with ``every_look=True`` to show the whole window.
    error_metric : str or None
        RATIO metric to draw (the summary's ``bad_metric`` by default).
    latency_metric : str or None
        HISTOGRAM metric to draw (the first one by default).
    quantile : float
        The latency quantile per interval.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt  # noqa: PLC0415 (optional: the plots extra)

    levels = per_interval(replay, quantile=quantile)
    figure, axes = plt.subplots(3, 1, sharex=True, figsize=(10, 8), layout="constrained")
    panels = list(axes)
    _levels(panels[0], levels, error_metric or replay.summary.bad_metric, label="error rate")
    _levels(
        panels[1],
        levels,
        latency_metric or _latency_metric(replay),
        label=f"p{quantile * 100:g} latency",
    )
    _verdicts(panels[2], replay)
    _mark_decision(panels, replay)
    panels[2].set_xlabel("minutes since the analysis started")
    figure.suptitle(replay.summary.summary, fontsize="small", wrap=True)
    return figure


def plot_tradeoff(frame: pd.DataFrame) -> Figure:
    """False rollbacks (x) against catch rate (y), one point per tolerance.

    Parameters
    ----------
    frame : pandas.DataFrame
        As :func:`gatekeeper.replay.sweep` returns.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt  # noqa: PLC0415 (optional: the plots extra)

    figure, axes = plt.subplots(figsize=(6, 5), layout="constrained")
    axes.plot(frame["false_rollback_rate"], frame["catch_rate"], marker="o", color="tab:blue")
    for row in frame.itertuples(index=False):
        axes.annotate(
            f"tolerance {row.tolerance:g}",
            xy=(row.false_rollback_rate, row.catch_rate),
            xytext=(6, -4),
            textcoords="offset points",
            fontsize="small",
        )
    axes.set_xlim(-0.05, 1.05)
    axes.set_ylim(-0.05, 1.05)
    axes.set_xlabel("false rollbacks (good rollouts that FAILed)")
    axes.set_ylabel("catch rate (bad rollouts that FAILed)")
    axes.grid(alpha=0.3)
    return figure
