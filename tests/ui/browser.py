"""A real headless chromium driven over the DevTools protocol (a websocket, with aiohttp).

:func:`load` opens a URL in a fresh tab, waits for the load event, reports every console
error, uncaught exception and failed load (a CSP violation included), evaluates a script
in the page and takes a PNG screenshot.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import re
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from PIL import Image

TIMEOUT = 60.0
#: What the tests read from a verdict page: the decision and every metric's charts.
PAGE_FACTS = """JSON.stringify({
  decision: (document.querySelector('h1 .d') || {}).textContent,
  metrics: [...document.querySelectorAll('section.metric')].map(s => ({
    name: s.dataset.metric,
    outcome: (s.querySelector('.outcome') || {}).textContent,
    charts: s.querySelectorAll('svg.chart').length,
    sides: [...s.querySelectorAll('svg.chart g.series')].map(g => ({
      side: g.dataset.side,
      shapes: g.querySelectorAll('polyline, circle').length})),
    levels: s.querySelectorAll('svg.chart g.level').length,
    bands: s.querySelectorAll('svg.chart g.band').length,
    links: [...s.querySelectorAll('a')].map(a => a.href)})),
  marks: document.querySelectorAll('svg.chart g.mark').length,
  links: [...document.querySelectorAll('a')].map(a => a.href),
  width: document.documentElement.scrollWidth
})"""


def chromium() -> str:
    """Debian's chromium (installed by the Makefile's system-deps), or skip."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return found


@dataclass
class Loaded:
    """What a page load gave."""

    facts: dict[str, Any]
    errors: list[str]
    screenshot: Path


@dataclass
class _Devtools:
    ws: aiohttp.ClientWebSocketResponse
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    waiting: dict[int, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)
    events: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue)

    async def read(self) -> None:
        async for message in self.ws:
            data = json.loads(message.data)
            future = self.waiting.pop(data.get("id", -1), None)
            if future is not None and not future.done():
                future.set_result(data)
            elif "method" in data:
                await self.events.put(data)

    async def send(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        ident = next(self.ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.waiting[ident] = future
        message: dict[str, Any] = {"id": ident, "method": method, "params": params}
        if session is not None:
            message["sessionId"] = session
        await self.ws.send_json(message)
        answer = await asyncio.wait_for(future, TIMEOUT)
        if "error" in answer:
            raise AssertionError(f"DevTools {method}: {answer['error']}")
        result: dict[str, Any] = answer.get("result", {})
        return result


@contextlib.asynccontextmanager
async def _browser(profile: Path) -> AsyncIterator[_Devtools]:
    process = await asyncio.create_subprocess_exec(
        chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--remote-debugging-address=127.0.0.1",
        "--remote-debugging-port=0",
        f"--user-data-dir={profile}",
        "--window-size=1100,1400",
        "about:blank",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stderr is not None
        url = None
        while url is None:
            line = (await asyncio.wait_for(process.stderr.readline(), TIMEOUT)).decode()
            assert line, "chromium exited before it listened"
            match = re.search(r"DevTools listening on (ws://\S+)", line)
            url = match.group(1) if match else None
        async with aiohttp.ClientSession() as http, http.ws_connect(url, max_msg_size=0) as ws:
            tools = _Devtools(ws)
            reader = asyncio.create_task(tools.read())
            try:
                yield tools
            finally:
                reader.cancel()
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), TIMEOUT)


def _error_of(event: dict[str, Any]) -> str | None:
    method, params = event["method"], event.get("params", {})
    if method == "Runtime.exceptionThrown":
        return f"exception: {params['exceptionDetails'].get('text')}"
    if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
        return f"console.{params['type']}: {params.get('args')}"
    if method == "Log.entryAdded" and params["entry"].get("level") == "error":
        return f"log: {params['entry'].get('text')}"
    if method == "Network.loadingFailed":
        return f"load failed: {params.get('errorText')}"
    return None


async def _load_one(
    tools: _Devtools, url: str, screenshot: Path, headers: dict[str, str]
) -> Loaded:
    target = await tools.send("Target.createTarget", url="about:blank")
    attached = await tools.send("Target.attachToTarget", targetId=target["targetId"], flatten=True)
    session = attached["sessionId"]
    for domain in ("Page", "Runtime", "Log", "Network"):
        await tools.send(f"{domain}.enable", session)
    if headers:
        await tools.send("Network.setExtraHTTPHeaders", session, headers=headers)
    await tools.send("Page.navigate", session, url=url)
    errors: list[str] = []
    while True:
        event = await asyncio.wait_for(tools.events.get(), TIMEOUT)
        if event.get("sessionId") != session:
            continue
        error = _error_of(event)
        if error is not None:
            errors.append(error)
        if event["method"] == "Page.loadEventFired":
            break
    await asyncio.sleep(0.2)  # late console messages
    while not tools.events.empty():
        error = _error_of(tools.events.get_nowait())
        if error is not None:
            errors.append(error)
    value = await tools.send("Runtime.evaluate", session, expression=PAGE_FACTS, returnByValue=True)
    shot = await tools.send(
        "Page.captureScreenshot", session, format="png", captureBeyondViewport=True
    )
    screenshot.write_bytes(base64.b64decode(shot["data"]))
    await tools.send("Target.closeTarget", targetId=target["targetId"])
    return Loaded(json.loads(value["result"]["value"]), errors, screenshot)


async def load_all(
    urls: dict[str, str], folder: Path, *, headers: dict[str, str] | None = None
) -> dict[str, Loaded]:
    """Load each named URL in one browser; screenshots go to ``folder/<name>.png``."""
    found = {}
    async with _browser(folder / "chromium-profile") as tools:
        for name, url in urls.items():
            found[name] = await _load_one(tools, url, folder / f"{name}.png", headers or {})
    return found


def assert_not_blank(png: Path) -> None:
    """The screenshot holds a picture: many colours, dark text on the light page."""
    with Image.open(png) as image:
        rgb = image.convert("RGB")
        assert rgb.width >= 600 and rgb.height >= 400, rgb.size
        colours = [(n, tuple(c)) for n, c in rgb.getcolors(maxcolors=1 << 20) or []]  # type: ignore[arg-type]
        assert len(colours) > 50, f"{png} has {len(colours)} colours: blank?"
        light = max(colours)[1]
        assert sum(light) > 600, f"{png}: the page is not light ({light})"
        dark = sum(n for n, c in colours if sum(c) < 200)
        assert dark > 1000, f"{png}: almost no dark pixels (text, axes)"
