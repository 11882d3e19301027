"""aiohttp routes of the pages: ``/ui/`` (recent verdicts) and ``/ui/verdicts/{id}``.

With a token the pages need ``Authorization: Bearer <token>`` as the API does (compared in
constant time); without, 401. Pages are rendered in a worker thread (a Judge entry's data
is decoded then), so the event loop keeps serving.
"""

from __future__ import annotations

import asyncio
import hmac
from dataclasses import dataclass
from html import escape
from urllib.parse import quote

from aiohttp import web

from gatekeeper.errors import InvalidArgument
from gatekeeper.ui import pages
from gatekeeper.ui.store import Entry, VerdictStore

PREFIX = "/ui"
UNAUTHORIZED = "missing or wrong bearer token: send 'Authorization: Bearer <token>'"
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
STORE_KEY = web.AppKey("gatekeeper_ui_store", VerdictStore)


def page_path(ident: str, *, prefix: str = PREFIX) -> str:
    """The path of a verdict's page (ids may hold ``/``, kept as path separators)."""
    return f"{prefix}/verdicts/{quote(ident, safe='/:=+-._')}"


def page_of(entry: Entry, store: VerdictStore, *, prometheus: str | None, home: str) -> pages.Page:
    """The :class:`~gatekeeper.ui.pages.Page` of a stored entry (decodes its data)."""
    looks = store.looks(entry)
    return pages.Page(
        ident=entry.id,
        call=entry.call,
        at=entry.at,
        label=entry.label,
        verdict=entry.verdict,
        metrics=entry.load(),
        interval_seconds=entry.interval_seconds,
        start=entry.start,
        looks=tuple((e.look.index, e.verdict) for e in looks if e.look is not None),
        prometheus=prometheus,
        home=home,
    )


def _authorized(request: web.Request, token: bytes | None) -> bool:
    if token is None:
        return True
    sent = request.headers.get("Authorization", "")
    scheme, _, value = sent.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), token)


def _html(text: str, status: int = 200) -> web.Response:
    return web.Response(
        text=text,
        status=status,
        content_type="text/html",
        charset="utf-8",
        headers={
            "Content-Security-Policy": CSP,
            "Cache-Control": "no-store",
        },
    )


@dataclass(frozen=True, slots=True)
class _Pages:
    store: VerdictStore
    token: bytes | None
    prometheus: str | None
    prefix: str

    @property
    def home(self) -> str:
        return f"{self.prefix}/"

    async def index(self, request: web.Request) -> web.Response:
        if not _authorized(request, self.token):
            return web.Response(status=401, text=UNAUTHORIZED)
        rows = [
            (page_path(e.id, prefix=self.prefix), e.verdict, e.at, e.call, e.label)
            for e in self.store.recent()
        ]
        return _html(pages.list_page(rows, limit=self.store.limit))

    async def verdict(self, request: web.Request) -> web.Response:
        if not _authorized(request, self.token):
            return web.Response(status=401, text=UNAUTHORIZED)
        entry = self.store.get(request.match_info["ident"])
        if entry is None:
            body = [
                f'<p><a href="{self.home}">All verdicts</a></p>',
                "<h1>No such verdict</h1><p>It was never given or is no longer kept "
                f"(the last {self.store.limit} are).</p>",
            ]
            return _html(pages.document("verdict not found", body), status=404)
        try:
            page = await asyncio.to_thread(
                page_of, entry, self.store, prometheus=self.prometheus, home=self.home
            )
        except InvalidArgument as exc:  # the data of a Judge call that was refused
            body = [f"<p>{escape(str(exc))}</p>"]
            return _html(pages.document("bad request data", body), status=422)
        return _html(await asyncio.to_thread(pages.verdict_page, page))

    async def redirect(self, _request: web.Request) -> web.Response:
        raise web.HTTPFound(self.home)


def add_routes(
    app: web.Application,
    store: VerdictStore,
    *,
    token: bytes | None = None,
    prometheus: str | None = None,
    prefix: str = PREFIX,
) -> None:
    """Register the pages on ``app`` under ``prefix``.

    Parameters
    ----------
    app : aiohttp.web.Application
        The HTTP server's application (before it starts).
    store : VerdictStore
        Where the verdicts are kept.
    token : bytes, optional
        The bearer token the pages need (where the app's own middleware does not check one).
    prometheus : str, optional
        Base URL of the Prometheus the queries ran on, for links to its graph page.
    prefix : str
        Where the pages live.
    """
    served = _Pages(store, token, prometheus, prefix)
    app[STORE_KEY] = store
    app.router.add_get(prefix, served.redirect)
    app.router.add_get(served.home, served.index)
    app.router.add_get(prefix + "/verdicts/{ident:.+}", served.verdict)
