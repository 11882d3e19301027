"""Rules against hostile input, shared by the wire (:mod:`gatekeeper.wire`) and specs.

Each check returns the violations it finds (field path and what is allowed), so that the
caller reports them with the rest of the request's problems:

* metric names: NFC-normalised, bounded in length, without control characters; names that
  differ only in Unicode normalisation or in invisible (format) characters are duplicates
  (group names follow the same length and character rules);
* weights bounded, so that a weighted score cannot overflow to NaN;
* VALUES bounded in magnitude, so that differences and sums of samples stay finite;
* histogram counts cumulative: per-bucket counts sent as if cumulative (or a decreasing
  ``+Inf`` bucket) would make a heavy tail look light;
* the number of metrics per request bounded (see :data:`DEFAULT_MAX_METRICS`).
"""

from __future__ import annotations

import unicodedata

import numpy as np

from gatekeeper.errors import FieldViolation
from gatekeeper.stats.model import MAX_VALUE_MAGNITUDE as STATS_MAX_VALUE_MAGNITUDE

#: Metrics one request may carry (``gatekeeper serve --max-metrics``).
DEFAULT_MAX_METRICS = 1_000
#: The longest metric name, in characters.
MAX_NAME_LENGTH = 200
#: The largest weight of a metric or a group.
MAX_WEIGHT = 1e6
#: The largest magnitude of a VALUES sample (the statistics' own range; see stats.model).
MAX_VALUE_MAGNITUDE = STATS_MAX_VALUE_MAGNITUDE


def name_key(name: str) -> str:
    """The identity of a metric name: NFC-normalised, invisible (format) characters removed.

    ``"café"`` written precomposed or with a combining accent, or with a zero-width space
    inside, are one name.
    """
    visible = "".join(c for c in name if unicodedata.category(c) != "Cf")
    return unicodedata.normalize("NFC", visible)


def normalized_name(name: str) -> str:
    """The name as the gatekeeper reports it: NFC-normalised."""
    return unicodedata.normalize("NFC", name)


def name_problems(name: str) -> list[str]:
    """What is wrong with a (non-empty) metric name, if anything."""
    problems = []
    if len(name) > MAX_NAME_LENGTH:
        problems.append(f"must be at most {MAX_NAME_LENGTH} characters long, got {len(name)}")
    control = [c for c in name if unicodedata.category(c) == "Cc"]
    if control:
        problems.append(
            f"must not contain control characters (newlines, tabs, ...), got {control[0]!r}"
        )
    if name.strip() and not name_key(name).strip():
        problems.append("must contain visible characters")
    return problems


def check_names(field: str, names: list[str]) -> list[FieldViolation]:
    """Length, characters and uniqueness (by :func:`name_key`) of metric names.

    Parameters
    ----------
    field : str
        The path of a name with an ``{index}`` placeholder, such as
        ``metrics[{index}].config.name``.
    names : list of str
        The names in order; empty names are left to the caller's "required" rule.

    Returns
    -------
    list of FieldViolation
        One per problem, each naming the metric's field.
    """
    found: list[FieldViolation] = []
    seen: dict[str, int] = {}
    for index, name in enumerate(names):
        where = field.format(index=index)
        found.extend(FieldViolation(where, p) for p in name_problems(name))
        key = name_key(name)
        if not key.strip():  # empty or invisible: the caller's "required" rule, or above
            continue
        if key in seen:
            found.append(
                FieldViolation(
                    where,
                    f"duplicate metric name {_shown(name)} (same as metric {seen[key]} once "
                    "normalised to NFC without invisible characters); names must be unique",
                )
            )
        seen.setdefault(key, index)
    return found


def _shown(name: str) -> str:
    return repr(name if len(name) <= 60 else name[:60] + "...")


def check_group(field: str, group: str) -> list[FieldViolation]:
    """A group name follows the length and character rules of metric names."""
    return [FieldViolation(field, problem) for problem in name_problems(group)]


def check_weight(field: str, weight: float) -> list[FieldViolation]:
    """A weight above :data:`MAX_WEIGHT` (or not finite) is refused."""
    if not np.isfinite(weight) or weight > MAX_WEIGHT:
        return [FieldViolation(field, f"must be at most {MAX_WEIGHT:g}, got {weight!r}")]
    return []


def check_values(field: str, values: np.ndarray) -> list[FieldViolation]:
    """VALUES samples beyond :data:`MAX_VALUE_MAGNITUDE` (infinities are the caller's rule)."""
    huge = np.isfinite(values) & (np.abs(values) > MAX_VALUE_MAGNITUDE)
    if not huge.any():
        return []
    index = int(np.flatnonzero(huge)[0])
    return [
        FieldViolation(
            f"{field}.values[{index}]",
            f"must lie within [-{MAX_VALUE_MAGNITUDE:g}, {MAX_VALUE_MAGNITUDE:g}], "
            f"got {float(values[index])!r}",
        )
    ]


def check_cumulative(
    field: str, counts: np.ndarray, bounds: np.ndarray, *, interval: int
) -> list[FieldViolation]:
    """Cumulative histogram counts never decrease from one bucket to the next.

    Parameters
    ----------
    field : str
        The histogram's path, e.g. ``metrics[0].canary.histograms[3]``.
    counts : ndarray
        Its counts, one per upper bound, the last one the ``+Inf`` bucket.
    bounds : ndarray
        Its upper bounds (a shape mismatch is the caller's rule: then buckets are numbered).
    interval : int
        The 0-based interval of the histogram, for the message.

    Returns
    -------
    list of FieldViolation
        At most one: the first bucket whose count is below the previous bucket's.
    """
    drops = np.flatnonzero(counts[1:] < counts[:-1])  # no subtraction: nothing overflows
    if drops.size == 0:
        return []
    bucket = int(drops[0]) + 1
    which = f"bucket {bucket}"
    if bounds.shape == counts.shape:
        which += f' (le="{float(bounds[bucket]):g}")'.replace("inf", "+Inf")
    return [
        FieldViolation(
            f"{field}.counts[{bucket}]",
            f"histogram counts must be cumulative (Prometheus le buckets, never decreasing): "
            f"in interval {interval}, {which} holds {counts[bucket]:g}, below the previous "
            f"bucket's {counts[bucket - 1]:g}",
        )
    ]


def check_metric_count(field: str, count: int, limit: int) -> list[FieldViolation]:
    """More than ``limit`` metrics in one request is refused, naming the limit."""
    if count <= limit:
        return []
    return [
        FieldViolation(
            field,
            f"at most {limit} metrics per request are allowed (the server's --max-metrics), "
            f"got {count}: split the request",
        )
    ]
