"""Whether fetched counts can be used at all, and whether a side's errors can be seen.

Cleaning (:mod:`gatekeeper.sources.series`) repairs what Prometheus legitimately produces
(missing points, ``bad > total`` from separate queries). What it cannot produce from real
counters is refused here, so that unusable data never turns into zero errors and a PASS:

- **unusable counts**: a bad-event, total or bucket value that is NaN, infinite, negative, or
  beyond :data:`MAX_COUNT` per interval makes that metric ERROR, naming the side, the query
  and the first bad point (by time); so does a VALUES sample beyond
  :data:`gatekeeper.limits.MAX_VALUE_MAGNITUDE`, which the judge's statistics cannot hold;
- **invisible errors**: a bad-event query without series means zero bad events (sparse
  errors look so), unless the side's total series lack the label the bad query's matcher
  tests (``code=~"5.."`` on series without ``code``): then a probe, the bad query with each
  such matcher widened to ``label=~".+"``, finds nothing, and the metric is ERROR.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence

import numpy as np

from gatekeeper.sources.base import RangeSeries
from gatekeeper.stats.model import MAX_VALUE_MAGNITUDE

#: Counts per interval beyond this are not plausible (a million requests a second for
#: eleven days): a source answering more is broken or hostile.
MAX_COUNT = 1e12
COUNT_ROLES = ("bad", "total", "buckets")
#: A label matcher, as :mod:`gatekeeper.sources.queries` accepts in selectors, with groups.
_MATCHER = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\\n]|\\.)*)"')


def unusable_counts(
    side: str, results: Mapping[str, Sequence[RangeSeries]], queries: Mapping[str, str]
) -> str | None:
    """Why one side's count queries cannot be used, or None when they can.

    Parameters
    ----------
    side : str
        ``"baseline"`` or ``"canary"``, for the message.
    results : mapping
        The side's query results by role (``bad``, ``total``, ``buckets``; other roles are
        not counts and are not checked).
    queries : mapping
        The side's rendered queries by role.
    """
    for role in (*COUNT_ROLES, "query"):
        first = _first_bad(role, results.get(role, ()))
        if first is not None:
            stamp, value, labels = first
            when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(stamp))
            allowed = (
                f"samples must lie within [-{MAX_VALUE_MAGNITUDE:g}, {MAX_VALUE_MAGNITUDE:g}]"
                if role == "query"
                else f"counts must be finite, >= 0 and at most {MAX_COUNT:g} per interval"
            )
            return (
                f"unusable {side} data: the {role} query answered {value!r} at {when} "
                f"(series {labels or '{}'}); {allowed} [query: {queries[role]}]"
            )
    return None


def _first_bad(
    role: str, answer: Sequence[RangeSeries]
) -> tuple[float, float, dict[str, str]] | None:
    """The earliest unusable point of one role's series: (time, value, labels), or None.

    Counts must be finite, >= 0 and at most :data:`MAX_COUNT`; VALUES samples (role
    ``query``; infinities there are missing points) at most :data:`MAX_VALUE_MAGNITUDE`
    in size, so that no statistic overflows.
    """
    first: tuple[float, float, dict[str, str]] | None = None
    for item in answer:
        values = item.values
        if role == "query":
            bad = np.isfinite(values) & (np.abs(values) > MAX_VALUE_MAGNITUDE)
        else:
            bad = ~np.isfinite(values) | (values < 0) | (values > MAX_COUNT)
        if bad.any():
            k = int(np.argmax(bad))
            if first is None or item.times[k] < first[0]:
                first = (float(item.times[k]), float(values[k]), item.labels)
    return first


def visibility_probe(bad: str, total: str) -> tuple[str, tuple[str, ...]] | None:
    """The probe for a bad-event query that returned no series, and the labels it tests.

    The matchers of ``bad`` that ``total`` lacks and that cannot match a missing label
    (``=`` or ``=~`` with a value that does not match the empty string) are each widened
    to ``label=~".+"``. None when there is no such matcher (nothing to probe).
    """
    in_total = {_normal(m.group(0)) for m in _MATCHER.finditer(total)}
    pieces: list[str] = []
    labels: list[str] = []
    last = 0
    for match in _MATCHER.finditer(bad):
        if _normal(match.group(0)) in in_total:
            continue
        label, op, value = match.groups()
        if op not in ("=", "=~") or _matches_empty(op, value):
            continue
        pieces += [bad[last : match.start()], f'{label}=~".+"']
        labels.append(label)
        last = match.end()
    if not labels:
        return None
    return "".join([*pieces, bad[last:]]), tuple(labels)


def has_points(series: Sequence[RangeSeries]) -> bool:
    """Whether any series has a point."""
    return any(item.values.size for item in series)


def _normal(matcher: str) -> str:
    return re.sub(r"\s+", "", matcher)


def _matches_empty(op: str, value: str) -> bool:
    if op == "=":
        return value == ""
    try:
        return re.fullmatch(value.encode().decode("unicode_escape"), "") is not None
    except (re.error, UnicodeDecodeError):
        return True  # not a Python regex: assume it may match nothing, and do not probe
