"""The most recent verdicts with their request data, for the pages only.

A :class:`VerdictStore` keeps at most ``limit`` entries in memory, newest last; an entry
added under an id already kept (the same look retried) replaces it. Nothing but the pages
reads it: the service stays stateless. Entries are built by :func:`judge_entry` (from a
Judge call's request, validated only when its page is asked for) and :func:`analyze_entry`
(from the data Analyze fetched).
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from gatekeeper import wire
from gatekeeper.api.v1 import gatekeeper_pb2 as pb
from gatekeeper.stats.model import LookPosition, MetricData, RatioSeries

DEFAULT_LIMIT = 200
DEFAULT_MAX_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True, eq=False)
class Entry:
    """One verdict and what it was judged on.

    Attributes
    ----------
    id : str
        The call's request id (``x-request-id`` when the caller sent one): the page's name.
    at : float
        Unix seconds when the verdict was given.
    call : str
        ``"Judge"``, ``"Analyze"`` or ``"replay"``.
    label : str
        The spec's name, or the caller's metric names.
    verdict : pb.Verdict
        The verdict as it went on the wire.
    load : callable
        Returns every metric's settings and both sides' data (decoded on demand).
    interval_seconds, start : float or None
        Spacing of the points and Unix seconds of the window's start, where known.
    look : LookPosition or None
        The look this verdict was, if any.
    analysis : str
        Groups the looks of one analysis (the same spec, sides and start; for Judge, the
        same metrics and first data points); empty when the verdict was not a look.
    size : int
        Bytes the entry's data holds (what :class:`VerdictStore` bounds).
    """

    id: str
    at: float
    call: str
    label: str
    verdict: pb.Verdict
    load: Callable[[], tuple[MetricData, ...]]
    interval_seconds: float | None = None
    start: float | None = None
    look: LookPosition | None = None
    analysis: str = ""
    size: int = 0


class VerdictStore:
    """A bounded, thread-safe map of the most recent entries by id.

    Parameters
    ----------
    limit : int
        Entries kept; the oldest is forgotten first. Must be at least 1.
    max_bytes : int
        Bytes of data kept in all; the oldest entries are forgotten to make room, and an
        entry larger than this is not kept at all.
    """

    def __init__(self, limit: int = DEFAULT_LIMIT, *, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        if limit < 1:
            raise ValueError(f"the verdict store needs a limit of at least 1, got {limit}")
        if max_bytes < 1:
            raise ValueError(f"the verdict store needs max_bytes of at least 1, got {max_bytes}")
        self.limit = limit
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, Entry] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def add(self, entry: Entry) -> bool:
        """Keep ``entry`` (replacing one of the same id), forgetting the oldest beyond the bounds.

        Returns False (and keeps nothing) when the entry alone is larger than ``max_bytes``.
        """
        if entry.size > self.max_bytes:
            return False
        with self._lock:
            old = self._entries.pop(entry.id, None)
            self._bytes -= 0 if old is None else old.size
            self._entries[entry.id] = entry
            self._bytes += entry.size
            while len(self._entries) > self.limit or self._bytes > self.max_bytes:
                _, gone = self._entries.popitem(last=False)
                self._bytes -= gone.size
        return True

    @property
    def bytes(self) -> int:
        """Bytes of data kept now."""
        with self._lock:
            return self._bytes

    def get(self, ident: str) -> Entry | None:
        """The entry of ``ident``, if still kept."""
        with self._lock:
            return self._entries.get(ident)

    def recent(self) -> list[Entry]:
        """Every entry kept, newest first."""
        with self._lock:
            return list(reversed(self._entries.values()))

    def looks(self, entry: Entry) -> list[Entry]:
        """The kept looks of ``entry``'s analysis up to and including it, by look index."""
        if not entry.analysis or entry.look is None:
            return [entry]
        with self._lock:
            same = [
                e
                for e in self._entries.values()
                if e.analysis == entry.analysis
                and e.look is not None
                and e.look.index <= entry.look.index
                and e is not entry
            ]
        latest: dict[int, Entry] = {}
        for e in same:
            assert e.look is not None
            latest[e.look.index] = e
        latest[entry.look.index] = entry
        return [latest[k] for k in sorted(latest)]

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)


def _look(message: pb.Look | None) -> LookPosition | None:
    if message is None or message.index < 1:
        return None
    return LookPosition(index=message.index, planned=max(0, message.planned))


def _digest(*parts: bytes | str) -> str:
    sha = hashlib.sha256()
    for part in parts:
        sha.update(part.encode() if isinstance(part, str) else part)
        sha.update(b"\0")
    return sha.hexdigest()[:16]


def _first_points(series: pb.Series) -> bytes:
    first = pb.Series()
    if series.pods:
        first.pods.add().CopyFrom(series.pods[0])
    if series.values:
        first.values.append(series.values[0])
    if series.counts:
        first.counts.add().CopyFrom(series.counts[0])
    if series.histograms:
        first.histograms.add().CopyFrom(series.histograms[0])
    return first.SerializeToString(deterministic=True)


def judge_entry(ident: str, *, at: float, request: pb.JudgeRequest, verdict: pb.Verdict) -> Entry:
    """An entry for a Judge call from the request it decoded and the verdict it answered.

    The request is validated and turned into arrays only when its page is asked for.
    """
    names = [m.config.name for m in request.metrics]
    look = _look(request.look) if request.HasField("look") else None
    analysis = ""
    if look is not None:
        firsts = [_first_points(m.baseline) + _first_points(m.canary) for m in request.metrics]
        analysis = _digest("Judge", *names, str(look.planned), *firsts)

    def load() -> tuple[MetricData, ...]:
        return tuple(wire.judge_input(request).metrics)

    return Entry(
        id=ident,
        at=at,
        call="Judge",
        label=", ".join(names),
        verdict=verdict,
        load=load,
        interval_seconds=request.interval_seconds if request.HasField("interval_seconds") else None,
        look=look,
        analysis=analysis,
        size=request.ByteSize() + verdict.ByteSize(),
    )


def data_bytes(metrics: tuple[MetricData, ...]) -> int:
    """Bytes the arrays of ``metrics`` hold."""
    total = 0
    for metric in metrics:
        for series in (metric.baseline, metric.canary):
            if isinstance(series, np.ndarray):
                total += series.nbytes
            elif isinstance(series, RatioSeries):
                total += series.bad.nbytes + series.total.nbytes
            else:
                total += series.counts.nbytes + series.upper_bounds.nbytes
    return total


def analyze_entry(
    ident: str,
    *,
    at: float,
    request: pb.AnalyzeRequest,
    metrics: tuple[MetricData, ...],
    verdict: pb.Verdict,
    start: float,
    interval_seconds: float,
    look: LookPosition | None,
) -> Entry:
    """An entry for an Analyze call, with the data it fetched over ``start`` onwards.

    ``look`` is the look the verdict was (the request's, or the one the server counted).
    """
    label = request.spec_name or "inline spec"
    analysis = ""
    if look is not None:
        analysis = _digest(
            "Analyze",
            request.spec_name,
            request.spec,
            request.baseline_selector,
            request.canary_selector,
            f"{start:.3f}",
        )
    return Entry(
        id=ident,
        at=at,
        call="Analyze",
        label=label,
        verdict=verdict,
        load=lambda: metrics,
        interval_seconds=interval_seconds,
        start=start,
        look=look,
        analysis=analysis,
        size=data_bytes(metrics) + verdict.ByteSize(),
    )


def verdict_entry(ident: str, *, at: float, call: str, label: str, verdict: pb.Verdict) -> Entry:
    """An entry of a verdict without data to chart (an Analyze preflight)."""
    return Entry(
        id=ident,
        at=at,
        call=call,
        label=label,
        verdict=verdict,
        load=tuple,
        size=verdict.ByteSize(),
    )
