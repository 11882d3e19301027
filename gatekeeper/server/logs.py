"""Structured logs: JSON lines or text, each record with the request id of its call."""

from __future__ import annotations

import json
import logging
import re
import sys
import uuid
from collections.abc import Iterable
from contextvars import ContextVar
from datetime import UTC, datetime

REQUEST_ID: ContextVar[str] = ContextVar("request_id", default="-")
REQUEST_ID_KEY = "x-request-id"
_VALID_ID = re.compile(r"[A-Za-z0-9._:/+=-]{1,128}")
_RESERVED = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "request_id"}


def request_id(metadata: Iterable[tuple[str, str | bytes]] | None) -> str:
    """The caller's ``x-request-id`` when it is a sane token, else a new random id."""
    for key, value in metadata or ():
        if key == REQUEST_ID_KEY and isinstance(value, str) and _VALID_ID.fullmatch(value):
            return value
    return uuid.uuid4().hex


def fields(record: logging.LogRecord) -> dict[str, object]:
    """The structured fields of a record: what was passed with ``extra=``."""
    return {k: v for k, v in record.__dict__.items() if k not in _RESERVED}


class RequestIdFilter(logging.Filter):
    """Stamps every record with the request id of the call being served."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Add ``request_id`` (from ``extra`` if given, else from the call context)."""
        if not hasattr(record, "request_id"):
            record.request_id = REQUEST_ID.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id, fields."""

    def format(self, record: logging.LogRecord) -> str:
        """Render ``record``."""
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
        }
        entry.update(fields(record))
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    """``time level logger [request id] message key=value ...``.

    One line per record (a traceback follows on its own lines): line breaks in the message,
    which may quote a caller's text, are escaped, so that no caller can forge a log line.
    """

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        """The head line, with ``\\n`` and ``\\r`` in the message escaped."""
        line = super().formatMessage(record)
        return line.replace("\r", "\\r").replace("\n", "\\n")

    def format(self, record: logging.LogRecord) -> str:
        """Render ``record``, its fields appended as ``key=value``."""
        text = super().format(record)
        extra = " ".join(f"{k}={v!r}" for k, v in fields(record).items())
        if not extra:
            return text
        head, newline, tail = text.partition("\n")
        return f"{head} {extra}{newline}{tail}"


def configure(*, fmt: str = "text", level: int | str = logging.INFO) -> None:
    """Send the gatekeeper's logs to stderr in ``fmt`` (``json`` or ``text``)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
