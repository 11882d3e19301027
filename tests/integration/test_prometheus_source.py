"""PrometheusSource's failure handling and options, against a scripted HTTP endpoint.

A real Prometheus cannot be made to answer 503, a partial response with warnings, or to
hang; this endpoint speaks the same HTTP API from a script of answers, on 127.0.0.1.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import pytest

from gatekeeper.errors import QueryRejected, SourceError
from gatekeeper.sources.base import Window
from gatekeeper.sources.prometheus import PrometheusOptions, PrometheusSource

WINDOW = Window(start=1_700_000_000.0, end=1_700_000_120.0, step=30.0)


def matrix(values: list[float]) -> dict[str, Any]:
    points = [[WINDOW.start + 30 * (k + 1), str(v)] for k, v in enumerate(values)]
    return {
        "status": "success",
        "data": {"resultType": "matrix", "result": [{"metric": {}, "values": points}]},
    }


@dataclass
class Script:
    """Answers to give, in order (the last one repeats), and the requests seen."""

    answers: list[tuple[int, dict[str, Any] | str, float]] = field(default_factory=list)
    seen: list[dict[str, Any]] = field(default_factory=list)


class Endpoint(BaseHTTPRequestHandler):
    script: Script

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        form = parse_qs(self.rfile.read(length).decode())
        self.script.seen.append({"form": form, "headers": dict(self.headers)})
        index = min(len(self.script.seen), len(self.script.answers)) - 1
        status, body, delay = self.script.answers[index]
        time.sleep(delay)
        payload = body if isinstance(body, str) else json.dumps(body)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(payload.encode())

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def endpoint() -> Iterator[tuple[str, Script]]:
    script = Script()
    handler = type("Handler", (Endpoint,), {"script": script})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", script
    server.shutdown()
    server.server_close()


FAST = PrometheusOptions(retries=2, backoff_seconds=0.01, timeout_seconds=1.0)


def test_5xx_is_retried_and_then_succeeds(endpoint: tuple[str, Script]) -> None:
    url, script = endpoint
    script.answers = [
        (503, {"status": "error", "error": "busy"}, 0.0),
        (200, matrix([1, 2, 3, 4]), 0.0),
    ]
    result = PrometheusSource(url, FAST).query_range("up", window=WINDOW)
    assert result[0].values.tolist() == [1, 2, 3, 4]
    assert len(script.seen) == 2


def test_persistent_5xx_is_a_source_error(endpoint: tuple[str, Script]) -> None:
    url, script = endpoint
    script.answers = [(502, "bad gateway", 0.0)]
    with pytest.raises(SourceError, match="502"):
        PrometheusSource(url, FAST).query_range("up", window=WINDOW)
    assert len(script.seen) == 3


def test_warnings_mean_a_partial_response_which_is_an_error(endpoint: tuple[str, Script]) -> None:
    url, script = endpoint
    partial = {**matrix([1, 2]), "warnings": ["store 10.0.0.3 unavailable"]}
    script.answers = [(200, partial, 0.0)]
    with pytest.raises(SourceError, match=r"partial response: store 10\.0\.0\.3 unavailable"):
        PrometheusSource(url, FAST).query_range("up", window=WINDOW)


def test_timeouts_are_retried_then_an_error(endpoint: tuple[str, Script]) -> None:
    url, script = endpoint
    script.answers = [(200, matrix([1]), 1.5)]
    options = PrometheusOptions(retries=1, backoff_seconds=0.01, timeout_seconds=0.3)
    with pytest.raises(SourceError, match="timed out"):
        PrometheusSource(url, options).query_range("up", window=WINDOW)


@pytest.mark.parametrize("status", [400, 422])
def test_a_rejected_query_is_not_retried(endpoint: tuple[str, Script], status: int) -> None:
    url, script = endpoint
    script.answers = [
        (status, {"status": "error", "errorType": "bad_data", "error": "parse error"}, 0.0)
    ]
    with pytest.raises(QueryRejected, match="parse error") as caught:
        PrometheusSource(url, FAST).query_range("sum(", window=WINDOW)
    assert caught.value.query == "sum("
    assert len(script.seen) == 1


def test_unreachable_is_a_source_error() -> None:
    with pytest.raises(SourceError, match="unreachable"):
        PrometheusSource("http://127.0.0.1:9", FAST).query_range("up", window=WINDOW)


def test_auth_tenant_header_and_parameters_are_sent(endpoint: tuple[str, Script]) -> None:
    url, script = endpoint
    script.answers = [(200, matrix([1]), 0.0)]
    options = PrometheusOptions(
        bearer_token="s3cret", headers={"X-Scope-OrgID": "team-a"}, timeout_seconds=7
    )
    PrometheusSource(url, options).query_range("up", window=WINDOW)
    seen = script.seen[0]
    assert seen["headers"]["Authorization"] == "Bearer s3cret"
    assert seen["headers"]["X-Scope-OrgID"] == "team-a"
    assert seen["form"]["query"] == ["up"]
    assert seen["form"]["step"] == ["30"]
    assert seen["form"]["timeout"] == ["7s"]
    assert float(seen["form"]["start"][0]) == WINDOW.start + 30
    assert float(seen["form"]["end"][0]) == WINDOW.end


def test_basic_auth_is_sent(endpoint: tuple[str, Script]) -> None:
    url, script = endpoint
    script.answers = [(200, matrix([1]), 0.0)]
    PrometheusSource(url, PrometheusOptions(basic_auth=("ann", "pw"))).query_range(
        "up", window=WINDOW
    )
    assert script.seen[0]["headers"]["Authorization"].startswith("Basic ")
