"""Pod start times from kube-state-metrics, for the warm-up rule.

``kube_pod_start_time`` (kube-state-metrics; the value is the pod's start in Unix seconds)
is matched to the per-pod series of an analysis by the ``pod`` label. A source without it,
or without a pod in it, leaves those pods' starts unknown: the warm-up rule then counts a
pod's first sample as its start (:mod:`gatekeeper.stats.warmup`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from gatekeeper.sources.base import RangeSeries, Window

METRIC = "kube_pod_start_time"


def pod_names(answers: Iterable[object]) -> list[str]:
    """The ``pod`` labels of every series among range-query answers (errors skipped)."""
    found: set[str] = set()
    for answer in answers:
        if isinstance(answer, list):
            found.update(
                item.labels.get("pod", "") for item in answer if isinstance(item, RangeSeries)
            )
    return sorted(name for name in found if name)


def query(names: Sequence[str], *, namespace: str | None) -> str:
    """The PromQL of the start times of ``names`` (in ``namespace`` when the spec has one)."""
    pattern = "|".join(re.escape(name) for name in names)
    literal = pattern.replace("\\", "\\\\").replace('"', '\\"')
    matchers = f'pod=~"{literal}"'
    if namespace:
        matchers += ',namespace="' + namespace.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"max by (pod) ({METRIC}{{{matchers}}})"


def starts(series: Sequence[RangeSeries], window: Window) -> Mapping[str, float]:
    """Each pod's start in seconds after the window's start (its latest reported value)."""
    found: dict[str, float] = {}
    for item in series:
        name = item.labels.get("pod", "")
        values = item.values[np.isfinite(item.values)]
        if name and values.size:
            found[name] = float(values[-1]) - window.start
    return found
