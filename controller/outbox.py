"""Events and notifications at least once, through an outbox in the Canary's status.

A transition's announcements (its Events; the notification of a promotion, a rollback or
a failed rollback) go into ``status.outbox`` in the very status write that records the
transition, each under an idempotency key ``<transition id>-<n>``: ``status.transitionId``
numbers the Canary's announced transitions. Only then are they sent, and a later status
write removes those confirmed. A controller that dies in between finds them in the outbox
and sends them again, under the same keys:

- an Event is named after its key (:func:`controller.events.event_name`): creating it
  again answers 409 AlreadyExists, which confirms it, so it is recorded once;
- a notification carries the key as ``idempotencyKey`` (prefixed with the Canary and its
  uid): a receiver that dedupes on it shows it once.

One that is not confirmed (the API or the webhook failing) stays and is sent again at the
next reconcile, up to :data:`MAX_ATTEMPTS` sends; the outbox keeps at most
:data:`MAX_ENTRIES` (the oldest dropped first). Both losses are logged at error.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from controller.clock import Clock
from controller.events import Change, event_body
from controller.kube import Kube
from controller.notify import Notification, Notifier
from controller.resources import CANARIES, EVENTS, KubeError, Object

log = logging.getLogger("controller.outbox")

MAX_ATTEMPTS = 10
MAX_ENTRIES = 50
#: The status keys this module writes.
STATUS_KEYS = ("transitionId", "outbox")


@dataclass(frozen=True, slots=True, kw_only=True)
class Entry:
    """One announcement waiting for confirmation: an Event or a notification."""

    key: str
    event: Change | None = None
    notification: Notification | None = None
    attempts: int = 0


def _entry_dict(entry: Entry) -> dict[str, Any]:
    found: dict[str, Any] = {"key": entry.key, "attempts": entry.attempts}
    if entry.event is not None:
        change = entry.event
        found["event"] = {
            "reason": change.reason,
            "message": change.message,
            "warning": change.warning,
        }
    if entry.notification is not None:
        note = entry.notification
        found["notification"] = {
            "text": note.text,
            "severity": note.severity,
            "fields": dict(note.fields),
        }
    return found


def _entry(found: Mapping[str, Any], *, prefix: str) -> Entry:
    key = str(found.get("key", ""))
    event = found.get("event")
    note = found.get("notification")
    return Entry(
        key=key,
        attempts=int(found.get("attempts") or 0),
        event=None
        if not isinstance(event, Mapping)
        else Change(
            reason=str(event.get("reason", "")),
            message=str(event.get("message", "")),
            warning=bool(event.get("warning")),
        ),
        notification=None
        if not isinstance(note, Mapping)
        else Notification(
            text=str(note.get("text", "")),
            severity=str(note.get("severity", "info")),
            fields={str(k): str(v) for k, v in (note.get("fields") or {}).items()},
            key=f"{prefix}/{key}",
        ),
    )


def _prefix(canary: Mapping[str, Any]) -> str:
    meta = canary.get("metadata", {})
    return f"{meta.get('namespace', 'default')}/{meta.get('name', '?')}/{meta.get('uid', '')}"


def pending(canary: Mapping[str, Any]) -> list[Entry]:
    """The announcements the Canary's status says are not confirmed yet."""
    stored = (canary.get("status") or {}).get("outbox") or []
    prefix = _prefix(canary)
    return [_entry(found, prefix=prefix) for found in stored if isinstance(found, Mapping)]


def queue(
    canary: Mapping[str, Any],
    *,
    events: Sequence[Change],
    notification: Notification | None = None,
) -> dict[str, Any]:
    """The status keys that add one transition's announcements (none: ``{}``).

    Returns
    -------
    dict
        ``transitionId`` (the next one) and ``outbox`` (what was pending, then these),
        to write together with the transition.
    """
    if not events and notification is None:
        return {}
    status = canary.get("status") or {}
    transition = int(status.get("transitionId") or 0) + 1
    entries = [Entry(key=f"{transition}-{n}", event=change) for n, change in enumerate(events)]
    if notification is not None:
        entries.append(Entry(key=f"{transition}-{len(events)}", notification=notification))
    outbox = [*pending(canary), *entries]
    for dropped in outbox[:-MAX_ENTRIES]:
        log.error("announcement %s dropped unsent: the outbox is full", dropped.key)
    return {
        "transitionId": transition,
        "outbox": [_entry_dict(e) for e in outbox[-MAX_ENTRIES:]],
    }


class Announcer:
    """Sends what the outbox holds and writes back what is still unconfirmed.

    Parameters
    ----------
    kube : Kube
        The API (Events, the status).
    notifier : Notifier, optional
        The webhook; without it notifications are dropped as sent.
    clock : Clock
        Time of the Events.
    identity : str
        This replica's name (the Events' ``reportingInstance``).
    """

    def __init__(
        self, *, kube: Kube, notifier: Notifier | None, clock: Clock, identity: str
    ) -> None:
        self.kube = kube
        self.notifier = notifier
        self.clock = clock
        self.identity = identity

    def flush(self, canary: Object) -> None:
        """Send every pending announcement of ``canary``; keep the unconfirmed ones."""
        entries = pending(canary)
        if not entries:
            return
        left = []
        for entry in entries:
            if self._send(canary, entry):
                continue
            if entry.attempts + 1 >= MAX_ATTEMPTS:
                log.error("announcement %s dropped after %d sends", entry.key, MAX_ATTEMPTS)
                continue
            left.append(replace(entry, attempts=entry.attempts + 1))
        outbox = [_entry_dict(e) for e in left]
        meta = canary["metadata"]
        self.kube.patch_status(
            CANARIES,
            namespace=meta.get("namespace", "default"),
            name=meta["name"],
            status={"outbox": outbox or None},
        )
        canary.setdefault("status", {})["outbox"] = outbox

    def _send(self, canary: Object, entry: Entry) -> bool:
        if entry.event is not None and not self._event(canary, entry.event, key=entry.key):
            return False
        if entry.notification is None or self.notifier is None:
            return True
        return self.notifier.send(entry.notification)

    def _event(self, canary: Object, change: Change, *, key: str) -> bool:
        body = event_body(canary, change, now=self.clock.now(), key=key, instance=self.identity)
        namespace = canary["metadata"].get("namespace", "default")
        try:
            self.kube.create(EVENTS, namespace=namespace, body=body)
        except KubeError as exc:
            if exc.status == 409:  # sent before a restart: the same name, recorded once
                return True
            log.warning("cannot record Event %s (kept for later): %s", change.reason, exc)
            return False
        return True
