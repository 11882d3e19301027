"""Offline replay of historic rollouts through the very same judge, and their evaluation.

Teams tune a gatekeeper on their own history before they trust it: which of last
quarter's rollouts would it have stopped, when, and how many users would the bad ones
have hurt? :func:`replay_recorded` replays a recorded rollout
(:mod:`gatekeeper.sources.recorded`) and :func:`replay_source` a historic window of
Prometheus, look by look as a controller's analysis would; :func:`evaluate` and
:func:`sweep` replay labelled sets on every core or any executor (a Dask cluster:
:mod:`gatekeeper.replay.dispatch`); :mod:`gatekeeper.replay.plots` draws them
(matplotlib, imported when used); :mod:`gatekeeper.replay.command` is ``gatekeeper replay``.
"""

from gatekeeper.replay.batch import (
    Evaluation,
    LabelledRollout,
    evaluate,
    read_labelled,
    replay_many,
    sweep,
    with_tolerance,
)
from gatekeeper.replay.core import (
    Replay,
    ReplaySummary,
    bad_metric_of,
    per_interval,
    replay_recorded,
    replay_source,
    run,
)

__all__ = [
    "Evaluation",
    "LabelledRollout",
    "Replay",
    "ReplaySummary",
    "bad_metric_of",
    "evaluate",
    "per_interval",
    "read_labelled",
    "replay_many",
    "replay_recorded",
    "replay_source",
    "run",
    "sweep",
    "with_tolerance",
]
