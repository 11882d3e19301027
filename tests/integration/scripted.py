"""A scripted PromQL endpoint on 127.0.0.1: any answer a hostile or broken source could give.

Each request's ``query`` is handed to the test's ``reply`` function, which says what to send:
a status and body, optionally gzip-compressed, after a delay, or trickled a few bytes at a
time (headers at once, then ``trickle`` bytes every ``every`` seconds, for at most
``trickle_seconds``: bounded, so the endpoint's threads always end).
"""

from __future__ import annotations

import json
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

from gatekeeper.sources.base import Window


@dataclass(frozen=True)
class Reply:
    """What the endpoint sends for one request."""

    body: bytes | dict[str, Any] | list[Any] = b""
    status: int = 200
    gzip: bool = False
    delay: float = 0.0
    trickle: int = 0
    every: float = 1.0
    trickle_seconds: float = 60.0
    declare_length: bool = True
    headers: dict[str, str] = field(default_factory=dict)

    @staticmethod
    def packed(body: bytes) -> bytes:
        """``body`` as the endpoint gzips it."""
        packer = zlib.compressobj(wbits=31)
        return packer.compress(body) + packer.flush()


Script = Callable[[str], Reply]


def matrix(window: Window, *series: tuple[dict[str, str], list[Any]]) -> dict[str, Any]:
    """A successful range-query answer: each series' values on the window's times."""
    return {
        "status": "success",
        "data": {
            "resultType": "matrix",
            "result": [
                {
                    "metric": labels,
                    "values": [
                        [float(t), str(v)] for t, v in zip(window.times, values, strict=False)
                    ],
                }
                for labels, values in series
            ],
        },
    }


@dataclass
class Endpoint:
    """The running endpoint: its URL, the queries seen, and how many are being answered."""

    url: str
    seen: list[str]
    active: list[int]


def _handler(script: Script, seen: list[str], active: list[int]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            query = parse_qs(self.rfile.read(length).decode()).get("query", [""])[0]
            seen.append(query)
            active[0] += 1
            try:
                self._answer(script(query))
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up, as it should
            finally:
                active[0] -= 1

        def _answer(self, reply: Reply) -> None:
            time.sleep(reply.delay)
            body = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
            if reply.gzip:
                body = Reply.packed(body)
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json")
            if reply.gzip:
                self.send_header("Content-Encoding", "gzip")
            for name, value in reply.headers.items():
                self.send_header(name, value)
            if reply.declare_length:
                self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            if not reply.trickle:
                self.wfile.write(body)
                return
            until = time.monotonic() + reply.trickle_seconds
            for start in range(0, len(body), reply.trickle):
                if time.monotonic() > until:
                    return
                self.wfile.write(body[start : start + reply.trickle])
                self.wfile.flush()
                time.sleep(reply.every)

        def log_message(self, *args: object) -> None:
            pass

    return Handler


@contextmanager
def endpoint(script: Script) -> Iterator[Endpoint]:
    """Serve ``script`` on 127.0.0.1, port 0, until the block ends."""
    seen: list[str] = []
    active = [0]
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(script, seen, active))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Endpoint(f"http://127.0.0.1:{server.server_address[1]}", seen, active)
    finally:
        server.shutdown()
        server.server_close()
