"""Notifications of promotions and rollbacks: a Slack-compatible JSON webhook.

A message is ``{"text": ..., "severity": ..., "page": ..., "fields": {...},
"attachments": [{"color": ..., "fields": [{"title", "value", "short"}]}]}``: Slack (and
Mattermost, Rocket.Chat, most chat bridges) show ``text`` and the attachment; an alert
router can key on ``severity``/``page``. Only a rollback that itself failed is
``critical`` (pages); promotions are ``info`` and rollbacks ``warning``. Each message
carries ``idempotencyKey``: the controller sends a notification until the webhook confirmed
it (2xx), again after a restart (:mod:`controller.outbox`), so a receiver that dedupes on the
key shows it once. A failing webhook is logged and never stops a rollout.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

log = logging.getLogger("controller.notify")

SEVERITIES = ("info", "warning", "critical")
_COLORS = {"info": "good", "warning": "warning", "critical": "danger"}


@dataclass(frozen=True, slots=True, kw_only=True)
class Notification:
    """One message: ``text``, ``severity`` (info, warning, critical), extra fields and
    the idempotency key (the same for every delivery of one message)."""

    text: str
    severity: str = "info"
    fields: Mapping[str, str] = field(default_factory=dict)
    key: str = ""

    @property
    def page(self) -> bool:
        """Whether someone should be woken: only critical (a rollback that failed)."""
        return self.severity == "critical"


class Notifier(Protocol):
    """Somewhere to send notifications."""

    def send(self, note: Notification) -> bool:
        """Deliver ``note`` (never raises); whether the receiver confirmed it."""
        ...


def payload(note: Notification) -> dict[str, object]:
    """The JSON body of a notification."""
    return {
        "text": note.text,
        "severity": note.severity,
        "page": note.page,
        "fields": dict(note.fields),
        "idempotencyKey": note.key,
        "attachments": [
            {
                "color": _COLORS.get(note.severity, "warning"),
                "fields": [
                    {"title": key, "value": value, "short": len(value) < 40}
                    for key, value in note.fields.items()
                ],
            }
        ],
    }


class WebhookNotifier:
    """POSTs notifications as JSON to a webhook URL.

    Parameters
    ----------
    url : str
        The webhook (http or https).
    timeout : float
        Seconds per attempt.
    attempts : int
        Tries per notification.
    """

    def __init__(self, url: str, *, timeout: float = 5.0, attempts: int = 2) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"notification webhook must be an http(s) URL, got {url!r}")
        self.url = url
        self.timeout = timeout
        self.attempts = attempts

    def send(self, note: Notification) -> bool:
        """POST the notification; whether the webhook answered 2xx (never raises)."""
        body = json.dumps(payload(note)).encode()
        for attempt in range(1, self.attempts + 1):
            request = urllib.request.Request(
                self.url, data=body, headers={"Content-Type": "application/json"}, method="POST"
            )
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as answer:
                    answer.read()
                return True
            except (urllib.error.URLError, OSError) as exc:
                log.warning("notification webhook attempt %d failed: %s", attempt, exc)
        log.error("notification not delivered (yet): %s", note.text)
        return False
