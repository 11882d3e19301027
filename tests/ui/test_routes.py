"""The pages' routes on their own aiohttp app (token checked by them) and on the server."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from aiohttp import web

from gatekeeper import engine, wire
from gatekeeper.server import app
from gatekeeper.ui.routes import add_routes, page_path
from gatekeeper.ui.store import VerdictStore, judge_entry
from tests.integration import http_client

ROOT = Path(__file__).resolve().parents[2]


def _store() -> VerdictStore:
    raw = (ROOT / "examples" / "healthy.json").read_bytes()
    request = wire.parse_judge_request(raw, json=True)
    given = wire.judge_input(request)
    verdict = wire.verdict_message(engine.judge(given.metrics, given.settings))
    store = VerdictStore(3)
    store.add(judge_entry("a/b/c", at=time.time(), request=request, verdict=verdict))
    return store


def test_own_routes_need_the_token_and_serve_ids_with_slashes() -> None:
    async def scenario() -> dict[str, int]:
        pages = web.Application()
        add_routes(pages, _store(), token=b"t0ken")
        runner = web.AppRunner(pages)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        base = f"http://127.0.0.1:{runner.addresses[0][1]}"
        good, bad = {"Authorization": "Bearer t0ken"}, {"Authorization": "Bearer nope"}
        checks = {
            "none": ("/ui/", {}),
            "wrong": ("/ui/", bad),
            "list": ("/ui/", good),
            "page": (page_path("a/b/c"), good),
            "page without": (page_path("a/b/c"), {}),
        }
        try:
            return {
                name: (
                    await asyncio.to_thread(
                        http_client.call, base + path, method="GET", headers=headers
                    )
                ).status
                for name, (path, headers) in checks.items()
            }
        finally:
            await runner.cleanup()

    statuses = asyncio.run(scenario())
    assert statuses == {"none": 401, "wrong": 401, "list": 200, "page": 200, "page without": 401}


def test_a_server_keeping_no_verdicts_serves_no_pages() -> None:
    server = app.ServerThread(app.ServerConfig(port=0, http_port=0, workers=0, ui_verdicts=0))
    try:
        assert server.running.store is None
        answer = http_client.call(f"http://127.0.0.1:{server.running.http_port}/ui/", method="GET")
        assert answer.status == 404
    finally:
        server.stop()
