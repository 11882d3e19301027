"""A small HTTP client for tests of the HTTP adapters (the standard library's urllib)."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message

TIMEOUT = 60.0


@dataclass(frozen=True, slots=True)
class Answer:
    """Status, headers and body of one HTTP answer."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def call(
    url: str,
    *,
    method: str = "POST",
    body: bytes | str | None = None,
    headers: dict[str, str] | None = None,
    context: ssl.SSLContext | None = None,
) -> Answer:
    """One request; non-2xx answers are answers too."""
    data = body.encode() if isinstance(body, str) else body
    sent = {"Content-Type": "application/json", **(headers or {})}
    request = urllib.request.Request(url, data=data, method=method, headers=sent)
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT, context=context) as answer:
            return Answer(answer.status, dict(answer.headers), answer.read())
    except urllib.error.HTTPError as error:
        return Answer(error.code, dict(error.headers), error.read())


def post_message(url: str, message: Message, **options: Any) -> Answer:
    """POST a message in the protobuf JSON mapping."""
    return call(url, body=json_format.MessageToJson(message), **options)


def violations(answer: Answer) -> dict[str, str]:
    """Field -> description of a 400's BadRequest details."""
    found: dict[str, str] = {}
    for detail in answer.json()["error"].get("details", []):
        for violation in detail.get("fieldViolations", []):
            found[violation["field"]] = violation["description"]
    return found
