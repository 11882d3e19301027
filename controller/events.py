"""Kubernetes Events of a Canary's transitions, built as plain dicts (core v1 Events).

Pure. One Event per transition: a new phase (reason = the phase, ``RolledBack`` for
``Failed``), a new step, a load test started, a rollback that failed (``RollbackFailed``,
type Warning) or recovered. ``kubectl describe canary NAME`` and ``kubectl get events``
show them. An Event's name comes from its idempotency key (:mod:`controller.outbox`), so
sending it again after a restart finds it (409) instead of recording it twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from controller.model import GROUP, Phase, Status, to_rfc3339
from controller.resources import Object

COMPONENT = "canary-gatekeeper"
MAX_MESSAGE = 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class Change:
    """A transition worth an Event: its reason, message and whether it is a warning."""

    reason: str
    message: str
    warning: bool = False


def changes(before: Status, after: Status) -> list[Change]:
    """The transitions from ``before`` to ``after`` (none when nothing moved)."""
    found: list[Change] = []
    if after.phase is not before.phase:
        reason = "RolledBack" if after.phase is Phase.FAILED else after.phase.value
        found.append(Change(reason=reason, message=after.message, warning=reason == "RolledBack"))
    elif after.phase is Phase.PROGRESSING and after.step_index != before.step_index:
        found.append(Change(reason="Step", message=f"steps[{after.step_index}]: {after.message}"))
    started = after.load_test is not None and (
        before.load_test is None
        or (before.load_test.step_index, before.load_test.look)
        != (after.load_test.step_index, after.load_test.look)
    )
    if started and after.load_test is not None:
        state = after.load_test
        found.append(
            Change(
                reason="LoadTestStarted",
                message=f"Job {state.job}: {state.rps:g} requests/s for "
                f"{state.duration_seconds:g}s (steps[{state.step_index}], look {state.look})",
            )
        )
    return found


def event_name(canary: Mapping[str, Any], key: str) -> str:
    """``<canary>.<uid prefix>-<key>``: one name per announcement of one Canary object."""
    meta = canary.get("metadata", {})
    uid = str(meta.get("uid") or "").replace("-", "")[:8] or "0"
    return f"{meta.get('name', '?')}.{uid}-{key}"


def event_body(
    canary: Mapping[str, Any], change: Change, *, now: float, key: str, instance: str = ""
) -> Object:
    """A core v1 Event about the Canary, named after the announcement's idempotency key."""
    meta = canary.get("metadata", {})
    name, namespace = meta.get("name", "?"), meta.get("namespace", "default")
    stamp = to_rfc3339(now)
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": event_name(canary, key), "namespace": namespace},
        "involvedObject": {
            "apiVersion": canary.get("apiVersion", f"{GROUP}/v1alpha1"),
            "kind": canary.get("kind", "Canary"),
            "name": name,
            "namespace": namespace,
            "uid": meta.get("uid", ""),
            "resourceVersion": meta.get("resourceVersion", ""),
        },
        "reason": change.reason,
        "message": change.message[:MAX_MESSAGE],
        "type": "Warning" if change.warning else "Normal",
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
        "source": {"component": COMPONENT},
        "reportingComponent": f"{GROUP}/controller",
        "reportingInstance": instance,
    }
