"""Keeps every Judge and Analyze verdict in the pages' store (:mod:`gatekeeper.ui`).

A verdict is kept under the call's request id (the caller's ``x-request-id``, so a
controller can link to the page of the look it asked for). Keeping it never fails a call:
an entry that cannot be built is logged and left out.
"""

from __future__ import annotations

import logging
import time
import uuid

from gatekeeper import wire
from gatekeeper.server.analysis import Analyzed
from gatekeeper.server.logs import REQUEST_ID
from gatekeeper.server.worker import Judged
from gatekeeper.ui.store import VerdictStore, analyze_entry, judge_entry

log = logging.getLogger("gatekeeper.server")


def _ident() -> str:
    ident = REQUEST_ID.get()
    return uuid.uuid4().hex if ident == "-" else ident


class Recorder:
    """Feeds ``store`` from :class:`~gatekeeper.server.dispatch.Judging` and Analyze."""

    def __init__(self, store: VerdictStore) -> None:
        self.store = store

    def judged(self, request: bytes, judged: Judged) -> None:
        """Keep a Judge verdict (its request is decoded only when its page is asked for)."""
        try:
            entry = judge_entry(_ident(), at=time.time(), request=request, verdict=judged.verdict)
        except Exception as exc:  # the verdict is given whatever happens here
            log.warning("verdict not kept for its page: %s", exc)
            return
        self._add(entry.id, self.store.add(entry))

    def analyzed(self, analyzed: Analyzed) -> None:
        """Keep an Analyze verdict with the data it fetched."""
        try:
            entry = analyze_entry(
                _ident(),
                at=time.time(),
                request=analyzed.request,
                metrics=analyzed.metrics,
                verdict=wire.verdict_message(analyzed.verdict),
                start=analyzed.window.start,
                interval_seconds=analyzed.window.step,
                look=analyzed.look,
            )
        except Exception as exc:
            log.warning("verdict not kept for its page: %s", exc)
            return
        self._add(entry.id, self.store.add(entry))

    def _add(self, ident: str, kept: bool) -> None:
        if not kept:
            log.info(
                "verdict %s not kept for its page: its data exceed the store's %d bytes",
                ident,
                self.store.max_bytes,
            )
