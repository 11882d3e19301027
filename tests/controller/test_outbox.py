"""Events and notifications at least once across a crash, through the status' outbox.

A crash is injected at the status write: right after the write that records a transition
(before anything is sent), or right before the write that confirms what was sent. A fresh
Reconciler (a restarted process) then sends what the outbox holds, under the same
idempotency keys: an Event is recorded once (its name is its key), a notification may
arrive twice but with one key.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from controller.kube import Kube
from controller.model import Phase
from controller.notify import WebhookNotifier
from controller.reconcile import Reconciler
from controller.resources import EVENTS, Object
from tests.controller.conftest import NAMESPACE, set_image
from tests.controller.helpers import Hook, Rig

NEW = "ghcr.io/stefanprodan/podinfo:6.6.0"


class Crash(BaseException):
    """The process dies (not an Exception: nothing catches it)."""


class CrashingStatusWrites(Kube):
    """A Kube that dies at a status write.

    ``after_queue``: just after every write that queued announcements (they are stored,
    none sent); otherwise just before every other write that confirms them (all sent,
    unconfirmed), so that the restarted process confirms them and goes on. ``confirms``
    counts those writes across processes.
    """

    def __init__(self, kube: Kube, *, after_queue: bool, confirms: list[int]) -> None:
        super().__init__(kube.api, timeout=kube.timeout)
        self.after_queue = after_queue
        self.confirms = confirms

    def patch_status(self, kind: Any, *, status: Mapping[str, Any], **kw: Any) -> Object:
        confirming = set(status) == {"outbox"}
        if not self.after_queue and confirming:
            self.confirms[0] += 1
            if self.confirms[0] % 2:
                raise Crash()
        written = super().patch_status(kind, status=status, **kw)
        if self.after_queue and not confirming and status.get("outbox"):
            raise Crash()
        return written


def restarted(rig: Rig, kube: Kube, hook: Hook) -> Reconciler:
    """A fresh controller process: nothing survives but the cluster."""
    return Reconciler(
        kube=kube,
        analyzer=rig.analyzer,
        clock=rig.clock,
        memory=rig.memory,
        notifier=WebhookNotifier(hook.url, timeout=2.0, attempts=1),
    )


def roll_out_crashing(rig: Rig, kube: Kube, hook: Hook, *, after_queue: bool) -> int:
    """A rollout to Succeeded, crashing at every transition; the crashes."""
    rig.create(steps=[{"setWeight": 20}, {"setWeight": 50}])
    crashes, confirms = 0, [0]
    for round_ in range(40):
        if round_ == 6:
            set_image(kube, "podinfo", NEW)
        crashing = CrashingStatusWrites(kube, after_queue=after_queue, confirms=confirms)
        try:
            restarted(rig, crashing, hook).reconcile(rig.canary())
        except Crash:
            crashes += 1
        rig.deployments.wait_settled()
        if rig.status().phase is Phase.SUCCEEDED and round_ > 6:
            break
    restarted(rig, kube, hook).reconcile(rig.canary())  # one more start, without a crash
    return crashes


def event_reasons(kube: Kube) -> list[str]:
    return [e["reason"] for e in kube.list(EVENTS, namespace=NAMESPACE)]


EXPECTED = ["Idle", "Progressing", "Promoting", "Succeeded"]


def test_a_crash_after_the_status_write_loses_no_event_and_no_notification(
    rig: Rig, kube: Kube, hook: Hook
) -> None:
    crashes = roll_out_crashing(rig, kube, hook, after_queue=True)
    assert rig.status().phase is Phase.SUCCEEDED
    # Every transition died after its status write, before its announcements.
    assert crashes == rig.canary()["status"]["transitionId"] == len(EXPECTED)
    assert Counter(event_reasons(kube)) == Counter(EXPECTED)  # each one, once
    assert [m["text"].split(":")[0] for m in hook.received] == ["Promoted"]
    uid = rig.canary()["metadata"]["uid"]
    key = hook.received[0]["idempotencyKey"]
    assert key.startswith(f"{NAMESPACE}/podinfo/{uid}/")
    assert not rig.canary()["status"].get("outbox")


def test_a_crash_before_the_confirmation_resends_under_the_same_key(
    rig: Rig, kube: Kube, hook: Hook
) -> None:
    crashes = roll_out_crashing(rig, kube, hook, after_queue=False)
    assert rig.status().phase is Phase.SUCCEEDED
    assert crashes == len(EXPECTED)  # one per transition, after its sends
    assert Counter(event_reasons(kube)) == Counter(EXPECTED)  # resent: 409, recorded once
    promoted = [m for m in hook.received if m["text"].startswith("Promoted")]
    assert len(promoted) >= 2  # at least once: sent, crashed unconfirmed, sent again
    assert len({m["idempotencyKey"] for m in promoted}) == 1  # a receiver can dedupe
    assert not rig.canary()["status"].get("outbox")


def test_a_notification_the_webhook_refused_is_sent_at_the_next_reconcile(
    rig: Rig, kube: Kube, hook: Hook
) -> None:
    rig.reconciler.notifier = WebhookNotifier(hook.url, timeout=2.0, attempts=1)
    rig.create(steps=[{"setWeight": 50}])
    rig.until(Phase.IDLE)
    set_image(kube, "podinfo", NEW)
    hook.down = 3
    rig.until(Phase.SUCCEEDED)
    assert hook.received == []
    pending = rig.canary()["status"]["outbox"]
    assert [e["notification"]["severity"] for e in pending] == ["info"]
    assert pending[0]["attempts"] >= 1
    for _ in range(3):
        rig.reconcile()
    assert [m["text"].split(":")[0] for m in hook.received] == ["Promoted"]
    assert not rig.canary()["status"].get("outbox")
