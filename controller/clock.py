"""Clocks: the system's, and a manual one tests move forward (rollouts in seconds).

The controller reads time only through a :class:`Clock` and waits only through
:meth:`Clock.wait_until`, which also returns when an event is set (a watch saw a change),
so that a test advancing a :class:`ManualClock` wakes the controller at once.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    """Time as epoch seconds, and waiting for it."""

    def now(self) -> float:
        """The current time."""
        ...

    def wait_until(self, deadline: float | None, *, wake: threading.Event) -> None:
        """Return at ``deadline`` (None: never by itself) or when ``wake`` is set."""
        ...


class SystemClock:
    """The wall clock."""

    def now(self) -> float:
        """``time.time()``."""
        return time.time()

    def wait_until(self, deadline: float | None, *, wake: threading.Event) -> None:
        """Wait on ``wake`` until the deadline."""
        wake.wait(None if deadline is None else max(0.0, deadline - time.time()))


class ManualClock:
    """A clock that moves only when told; waiters wake on every move.

    Parameters
    ----------
    start : float
        The initial reading (epoch seconds).
    """

    def __init__(self, start: float) -> None:
        self._now = start
        self._moved = threading.Condition()

    def now(self) -> float:
        """The current reading."""
        with self._moved:
            return self._now

    def advance(self, seconds: float) -> float:
        """Move forward by ``seconds``; the new reading."""
        with self._moved:
            self._now += seconds
            self._moved.notify_all()
            return self._now

    def set(self, moment: float) -> None:
        """Move to ``moment`` (never backwards)."""
        with self._moved:
            self._now = max(self._now, moment)
            self._moved.notify_all()

    def wait_until(self, deadline: float | None, *, wake: threading.Event) -> None:
        """Return once the reading reaches ``deadline`` or ``wake`` is set.

        Real time is polled only to notice ``wake`` (an event cannot be waited on together
        with a condition); the manual reading itself never moves by waiting.
        """
        with self._moved:
            while not wake.is_set() and (deadline is None or self._now < deadline):
                self._moved.wait(0.05)
