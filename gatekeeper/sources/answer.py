"""A Prometheus range-query answer, from JSON bytes to series, its shape checked throughout.

A 200 answer is still untrusted: ``data`` may be a list, ``result`` an object, a point may
lack its value or carry a string timestamp, a value may not be a number, and a series may
hold more points than the query's window has evaluation times. Each of these is a
:class:`~gatekeeper.errors.SourceError` (the metric's verdict is ERROR), naming the query
and the first offending place, never a crash and never data.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from gatekeeper.errors import SourceError
from gatekeeper.sources.base import RangeSeries, Window

#: Answers larger than this are parsed in a thread, off the event loop (bounded CPU).
INLINE_PARSE_BYTES = 1024 * 1024


class Malformed(SourceError):
    """A Prometheus answer that is not a well-formed range-query result."""


def parse(body: bytes | bytearray, *, url: str, query: str, window: Window) -> list[RangeSeries]:
    """The series of a range-query answer.

    Parameters
    ----------
    body : bytes
        The answer's (decompressed) body.
    url : str
        The source, for messages.
    query : str
        The query asked, for messages.
    window : Window
        The query's window: a series may have at most ``window.points`` points (the
        points-per-series limit; a Prometheus never returns more).

    Raises
    ------
    SourceError
        The body is not JSON, not a successful matrix, has warnings (a partial response),
        or has the wrong shape anywhere.
    """
    where = f"Prometheus at {url}"
    try:
        document = json.loads(body)
    except ValueError:
        raise SourceError(f"{where} answered with a body that is not JSON") from None
    if not isinstance(document, dict):
        raise _shape(where, query, f"the answer is a JSON {_kind(document)}, not an object")
    if document.get("status") != "success":
        raise SourceError(
            f"{where} answered status {document.get('status')!r}: {document.get('error')}"
        )
    warnings = document.get("warnings") or []
    if warnings:
        text = "; ".join(map(str, warnings)) if isinstance(warnings, list) else str(warnings)
        raise SourceError(f"{where} answered a partial response: {text}")
    data = document.get("data")
    if not isinstance(data, dict):
        raise _shape(where, query, f"data is a JSON {_kind(data)}, not an object")
    if data.get("resultType", "matrix") != "matrix":
        raise SourceError(f"{where} answered a {data['resultType']}, not a matrix")
    result = data.get("result")
    if not isinstance(result, list):
        raise _shape(where, query, f"data.result is a JSON {_kind(result)}, not a list")
    return [_series(item, k, where, query, window) for k, item in enumerate(result)]


def _series(item: Any, k: int, where: str, query: str, window: Window) -> RangeSeries:
    place = f"data.result[{k}]"
    if not isinstance(item, dict):
        raise _shape(where, query, f"{place} is a JSON {_kind(item)}, not an object")
    labels = item.get("metric", {})
    if not isinstance(labels, dict) or not all(
        isinstance(key, str) and isinstance(value, str) for key, value in labels.items()
    ):
        raise _shape(where, query, f"{place}.metric is not an object of string labels")
    points = item.get("values", [])
    if not isinstance(points, list):
        raise _shape(where, query, f"{place}.values is a JSON {_kind(points)}, not a list")
    if len(points) > window.points:
        raise SourceError(
            f"{where} answered {len(points)} points in one series for query {query}; the "
            f"window has {window.points} evaluation times, so at most {window.points} points "
            "per series are accepted (the points-per-series limit)"
        )
    times, values = _points(points, f"{place}.values", where, query)
    return RangeSeries(labels=dict(labels), times=times, values=values)


def _points(
    points: Sequence[Any], place: str, where: str, query: str
) -> tuple[np.ndarray, np.ndarray]:
    times = np.empty(len(points))
    values = np.empty(len(points))
    for j, point in enumerate(points):
        if not isinstance(point, list) or len(point) != 2:
            raise _shape(where, query, f"{place}[{j}] is not a [timestamp, value] pair")
        stamp, text = point
        if isinstance(stamp, bool) or not isinstance(stamp, int | float):
            raise _shape(where, query, f"{place}[{j}] has a {_kind(stamp)} timestamp {stamp!r}")
        if not math.isfinite(stamp):
            raise _shape(where, query, f"{place}[{j}] has the timestamp {stamp!r}")
        if not isinstance(text, str):
            raise _shape(where, query, f"{place}[{j}] has a {_kind(text)} value, not a string")
        try:
            values[j] = float(text)
        except ValueError:
            raise SourceError(
                f"{where} answered the unparseable value {text[:40]!r} at {place}[{j}] "
                f"(time {stamp}) for query {query}"
            ) from None
        times[j] = stamp
    return times, values


def _shape(where: str, query: str, problem: str) -> Malformed:
    return Malformed(
        f"{where} answered a malformed range-query result for query {query}: {problem}"
    )


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    return {dict: "object", list: "list", str: "string", int: "number", float: "number"}.get(
        type(value), type(value).__name__
    )
