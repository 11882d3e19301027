"""One judgement, from request to encoded verdict: run inline or in a pool worker.

Pool workers receive the request's bytes (cheap to pickle, and the expensive decoding and
validation of a large request then happens in the worker, not in the server's event loop)
and send back the encoded verdict. Domain errors cross the process boundary as
:class:`Rejected` values: exceptions with custom constructors do not survive pickling.
"""

from __future__ import annotations

import os
import pickle
import select
import signal
import socket
import struct
import threading
import time
from dataclasses import dataclass

from gatekeeper import engine, limits, wire
from gatekeeper.api.v1 import gatekeeper_pb2 as pb
from gatekeeper.errors import (
    DeadlineExceeded,
    FailedPrecondition,
    FieldViolation,
    GatekeeperError,
    InvalidArgument,
    PermanentError,
    TemporaryError,
    Unavailable,
)

WORKER_NICENESS = 5
#: Length prefix of every frame between the server and a worker (big-endian uint32).
HEADER = struct.Struct("!I")


@dataclass(frozen=True, slots=True)
class Judged:
    """An encoded verdict, with what the server logs and counts about it."""

    verdict: bytes
    decision: str
    summary: str
    score: float
    judge_seconds: float


class WorkerFault(RuntimeError):
    """An unexpected exception in a pool worker (not a domain error): INTERNAL."""


@dataclass(frozen=True, slots=True)
class Rejected:
    """A domain error raised in a worker, in a form that pickles."""

    kind: str
    message: str
    violations: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(cls, error: GatekeeperError) -> Rejected:
        """Capture ``error``."""
        if isinstance(error, InvalidArgument):
            pairs = tuple((v.field, v.description) for v in error.violations)
            return cls(kind="InvalidArgument", message=str(error), violations=pairs)
        return cls(kind=_kind(error), message=str(error))

    def error(self) -> Exception:
        """The domain error again, in the server process."""
        if self.kind == "InvalidArgument":
            return InvalidArgument([FieldViolation(f, d) for f, d in self.violations])
        if self.kind == "Internal":
            return WorkerFault(self.message)
        return _KINDS.get(self.kind, GatekeeperError)(self.message)


_KINDS: dict[str, type[GatekeeperError]] = {
    "FailedPrecondition": FailedPrecondition,
    "DeadlineExceeded": DeadlineExceeded,
    "Unavailable": Unavailable,
    "PermanentError": PermanentError,
    "TemporaryError": TemporaryError,
}


def _kind(error: GatekeeperError) -> str:
    for name, kind in _KINDS.items():
        if isinstance(error, kind):
            return name
    return "GatekeeperError"


def data_points(request: pb.JudgeRequest) -> int:
    """Total data points of both sides of every metric: the cost measure for dispatch.

    Values and counts count one each; histograms count their buckets (the first
    histogram's bucket count times the number of histograms, so that counting stays
    cheap for large requests).
    """
    total = 0
    for metric in request.metrics:
        for series in (metric.baseline, metric.canary):
            total += len(series.values) + len(series.counts)
            if series.histograms:
                buckets = max(1, len(series.histograms[0].counts))
                total += len(series.histograms) * buckets
    return total


def judge_request(
    request: pb.JudgeRequest, *, max_metrics: int = limits.DEFAULT_MAX_METRICS
) -> Judged:
    """Validate, judge and encode; domain errors are raised.

    Parameters
    ----------
    request : JudgeRequest
        A decoded request (not yet validated).
    max_metrics : int
        More metrics than this is INVALID_ARGUMENT (``--max-metrics``).

    Returns
    -------
    Judged
        The encoded verdict and its decision, summary and score.
    """
    judged = wire.judge_input(request, max_metrics=max_metrics)
    start = time.perf_counter()
    verdict = engine.judge(judged.metrics, judged.settings)
    elapsed = time.perf_counter() - start
    return Judged(
        verdict=wire.verdict_message(verdict).SerializeToString(),
        decision=verdict.decision.value,
        summary=verdict.summary,
        score=float(verdict.score),
        judge_seconds=elapsed,
    )


def judge_bytes(data: bytes, *, max_metrics: int = limits.DEFAULT_MAX_METRICS) -> Judged | Rejected:
    """Pool entry point: decode, validate, judge and encode one request.

    Parameters
    ----------
    data : bytes
        A JudgeRequest in the protobuf binary encoding.
    max_metrics : int
        More metrics than this is INVALID_ARGUMENT (``--max-metrics``).

    Returns
    -------
    Judged or Rejected
        The verdict, or the domain error the request raised. Anything else propagates
        (the pool carries it to the server, which answers INTERNAL).
    """
    try:
        request = wire.parse_judge_request(data, json=False)
        return judge_request(request, max_metrics=max_metrics)
    except GatekeeperError as error:
        return Rejected.of(error)


def initialize(server_pid: int) -> None:
    """Pool worker initializer: leave Ctrl-C to the server, yield the CPU to its I/O, and
    exit when the server process is gone (even when it was killed without a shutdown)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.nice(WORKER_NICENESS)
    threading.Thread(target=_exit_with, args=(server_pid,), daemon=True).start()


def _exit_with(server_pid: int) -> None:
    try:
        handle = os.pidfd_open(server_pid)
    except (AttributeError, OSError):  # no pidfd (old kernel) or the server is gone already
        handle = None
    if handle is not None:
        select.select([handle], [], [])  # readable once the server has exited
    else:
        while os.path.exists(f"/proc/{server_pid}"):
            time.sleep(1.0)
    os._exit(1)


def serve(
    connection: socket.socket, server_pid: int, max_metrics: int = limits.DEFAULT_MAX_METRICS
) -> None:
    """Pool worker main loop (:mod:`gatekeeper.server.pool`): greet, then judge frames.

    Each request is a 4-byte big-endian length and a JudgeRequest; each answer a length
    and a pickled :class:`Judged` or :class:`Rejected`. An unexpected exception is
    answered as ``Rejected(kind="Internal")`` (the server answers INTERNAL and logs it);
    the loop ends when the server closes its end.
    """
    initialize(server_pid)
    stream = connection.makefile("rb")
    _send(connection, os.getpid())
    while header := stream.read(HEADER.size):
        if len(header) < HEADER.size:
            break
        (size,) = HEADER.unpack(header)
        data = stream.read(size)
        if len(data) < size:
            break
        try:
            answer: Judged | Rejected = judge_bytes(data, max_metrics=max_metrics)
        except Exception as error:  # carried to the server, which logs it
            answer = Rejected(kind="Internal", message=f"{type(error).__name__}: {error}")
        _send(connection, answer)
    connection.close()


def _send(connection: socket.socket, answer: object) -> None:
    body = pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL)
    connection.sendall(HEADER.pack(len(body)) + body)
