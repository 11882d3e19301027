"""The longest window a replay may cover (``gatekeeper replay --max-window``).

One stray row from 1970 or 2100 in a recorded rollout would otherwise make the replay
judge decades of one-minute looks. A window beyond the bound is bad input that names the
offending rows: those far from the rest of the recording.
"""

from __future__ import annotations

import datetime

import numpy as np

from gatekeeper.errors import InvalidArgument
from gatekeeper.sources.recorded import RecordedRollout
from gatekeeper.spec import format_duration

#: Seven days: far beyond any rollout, far below a decade of looks.
DEFAULT_MAX_WINDOW_SECONDS = 7 * 86_400.0
#: Offending rows named in the error.
_SHOWN = 5


def _clock(epoch: float) -> str:
    try:
        return datetime.datetime.fromtimestamp(epoch, datetime.UTC).isoformat()
    except (OverflowError, OSError, ValueError):
        return f"{epoch:g} s"


def _length(seconds: float) -> str:
    """A duration as the flag is written: whole days as ``7d``, else ``1h30m``."""
    if seconds >= 86_400 and seconds % 86_400 == 0:
        return f"{int(seconds // 86_400)}d"
    if seconds >= 2 * 86_400:
        return f"{seconds / 86_400:.1f}d"
    return format_duration(round(seconds))


def check_span(*, start: float, end: float, limit: float, field: str = "--end") -> None:
    """Refuse an explicit window (``--start`` to ``--end``) longer than ``limit`` seconds."""
    if end - start > limit:
        raise InvalidArgument.single(
            field,
            f"the window {_clock(start)} to {_clock(end)} is longer than --max-window "
            f"{_length(limit)}",
        )


def check_recorded(
    rollout: RecordedRollout, *, start: float | None, end: float | None, limit: float
) -> None:
    """Refuse a recorded rollout whose window is longer than ``limit`` seconds.

    Parameters
    ----------
    rollout : RecordedRollout
        The recording; offending rows are named by side, metric and time.
    start, end : float or None
        ``--start`` and ``--end``, if given (they bound the window instead of the rows).
    limit : float
        ``--max-window`` in seconds.

    Raises
    ------
    InvalidArgument
        Naming ``--start``/``--end``, or the rows that lie far from the median row time.
    """
    if start is not None and end is not None:
        check_span(start=start, end=end, limit=limit)
        return
    if not len(rollout.rows):
        return
    times = rollout.rows["time"].to_numpy(dtype=float)
    begin = float(times.min()) if start is None else start
    until = float(times.max()) if end is None else end
    if until - begin <= limit:
        return
    middle = float(np.median(times))
    far = np.flatnonzero(np.abs(times - middle) > limit / 2)
    if far.size == 0:  # spread evenly: the ends are as good as any
        far = np.array([int(np.argmin(times)), int(np.argmax(times))])
    rows = rollout.rows
    named = ", ".join(
        f"{rows['side'].iat[i]} {rows['metric'].iat[i]} at {_clock(times[i])}" for i in far[:_SHOWN]
    )
    more = f" and {far.size - _SHOWN} more" if far.size > _SHOWN else ""
    raise InvalidArgument.single(
        "FILE",
        f"{rollout.origin} spans {_length(until - begin)}, more than "
        f"--max-window {_length(limit)}; rows far from the rest: {named}{more}",
    )
