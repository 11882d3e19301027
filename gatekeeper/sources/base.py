"""The metric source protocol: range queries at an analysis's interval."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from gatekeeper.errors import SourceError
from gatekeeper.stats.model import FloatArray


@dataclass(frozen=True, slots=True)
class Window:
    """Evaluation times ``start + k * step`` for k = 1..n, each point covering the step before it.

    ``start`` and ``end`` are Unix seconds; ``end`` is rounded down to a whole step.
    """

    start: float
    end: float
    step: float

    def __post_init__(self) -> None:
        if not self.step > 0:
            raise ValueError(f"step must be > 0, got {self.step!r}")
        if not self.end > self.start:
            raise ValueError(f"end must be after start, got {self.start!r} .. {self.end!r}")

    @property
    def points(self) -> int:
        """Number of evaluation times (whole steps in the window).

        ``end - start`` carries the rounding error of Unix seconds (a few ulps of ``end``):
        a window built as ``start + n * step`` has n points whatever that error.
        """
        slack = 4.0 * math.ulp(max(abs(self.start), abs(self.end)))
        return math.floor((self.end - self.start + slack) / self.step)

    @property
    def times(self) -> FloatArray:
        """The evaluation times."""
        return self.start + self.step * np.arange(1, self.points + 1, dtype=float)


@dataclass(frozen=True, slots=True, eq=False)
class RangeSeries:
    """One series of a range query: its labels and its points."""

    labels: dict[str, str]
    times: FloatArray
    values: FloatArray = field(default_factory=lambda: np.zeros(0))


class MetricSource(Protocol):
    """Answers PromQL range queries.

    Implementations raise :class:`gatekeeper.errors.SourceError` when the source is down,
    times out, answers 5xx or a partial response, and
    :class:`gatekeeper.errors.QueryRejected` when it refuses the query itself.
    """

    def query_range(self, query: str, *, window: Window) -> list[RangeSeries]:
        """Evaluate ``query`` at every time of ``window``."""
        ...


@runtime_checkable
class BatchSource(Protocol):
    """A source that answers all the queries of one call on the event loop, by a deadline.

    Cancelling the call cancels its I/O; nothing runs on after it.
    """

    @property
    def deadline_seconds(self) -> float:
        """The longest a call may take, whatever the caller allows."""
        ...

    async def query_many(
        self, queries: Sequence[str], *, window: Window, timeout: float | None = None
    ) -> list[list[RangeSeries] | SourceError]:
        """Each query's series, or the :class:`~gatekeeper.errors.SourceError` that stopped
        it (a query without an answer after ``timeout`` seconds, or the source's own
        deadline, is one); :class:`~gatekeeper.errors.QueryRejected` is raised."""
        ...
