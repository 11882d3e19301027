"""The verdict pages on the HTTP port: keep every verdict, serve ``/ui/``.

:class:`Recorder` keeps each verdict in a :class:`~gatekeeper.ui.store.VerdictStore`
under the call's request id (the caller's ``x-request-id``, so a controller can link to
the page of the look it asked for): Judge verdicts as the
:class:`~gatekeeper.server.verdicts.VerdictObserver` sees them (over gRPC and HTTP),
Analyze verdicts from :class:`~gatekeeper.server.analysis.AnalysisService` with the data
they were judged on (preflights, which judge no canary, without data). Keeping a verdict
never fails a call: an entry that cannot be built is logged and left out.
:func:`route_set` mounts the pages, behind the HTTP port's token.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable

from aiohttp import web

from gatekeeper import wire
from gatekeeper.api.v1 import gatekeeper_pb2 as pb
from gatekeeper.server.analysis import Analyzed
from gatekeeper.server.http import RouteSet
from gatekeeper.server.logs import REQUEST_ID
from gatekeeper.server.verdicts import Method, VerdictObserver
from gatekeeper.ui import routes
from gatekeeper.ui.store import Entry, VerdictStore, analyze_entry, judge_entry, verdict_entry

log = logging.getLogger("gatekeeper.server")


def _ident() -> str:
    ident = REQUEST_ID.get()
    return uuid.uuid4().hex if ident == "-" else ident


class Recorder:
    """Feeds ``store``; ``also`` is another observer told every verdict as well."""

    def __init__(self, store: VerdictStore, also: VerdictObserver | None = None) -> None:
        self.store = store
        self.also = also

    def __call__(
        self, *, method: Method, request: pb.JudgeRequest | pb.AnalyzeRequest, verdict: pb.Verdict
    ) -> None:
        """Keep a Judge verdict, or a preflight's (other Analyze verdicts come with their
        data via :meth:`analyzed`)."""
        if self.also is not None:
            self.also(method=method, request=request, verdict=verdict)
        if isinstance(request, pb.JudgeRequest):
            self._keep(
                lambda: judge_entry(_ident(), at=time.time(), request=request, verdict=verdict)
            )
        elif request.preflight:
            label = f"preflight of {request.spec_name or 'an inline spec'}"
            self._keep(
                lambda: verdict_entry(
                    _ident(), at=time.time(), call="Analyze", label=label, verdict=verdict
                )
            )

    def analyzed(self, analyzed: Analyzed) -> None:
        """Keep an Analyze verdict with the data it fetched (called in Analyze's thread)."""
        self._keep(
            lambda: analyze_entry(
                _ident(),
                at=time.time(),
                request=analyzed.request,
                metrics=analyzed.metrics,
                verdict=wire.verdict_message(analyzed.verdict),
                start=analyzed.window.start,
                interval_seconds=analyzed.window.step,
                look=analyzed.look,
            )
        )

    def _keep(self, build: Callable[[], Entry]) -> None:
        try:
            entry = build()
        except Exception as exc:  # the verdict is given whatever happens here
            log.warning("verdict not kept for its page: %s", exc)
            return
        if not self.store.add(entry):
            log.info(
                "verdict %s not kept for its page: its data exceed the store's %d bytes",
                entry.id,
                self.store.max_bytes,
            )


def route_set(store: VerdictStore, *, prometheus: str | None) -> RouteSet:
    """The pages as a route set of the HTTP app (its middleware checks the token)."""

    def add(app: web.Application) -> None:
        routes.add_routes(app, store, prometheus=prometheus)

    return add
