"""Where a judgement runs: inline in the event loop, or in the judge processes.

Expensive requests always go to the :class:`~gatekeeper.server.pool.WorkerPool`, so that
judging never starves the event loop: health checks and small calls are answered while
every core judges. A request is expensive when it has more than ``inline_max_points``
data points, more than :data:`DEFAULT_INLINE_MAX_BYTES` encoded (then it is not even
decoded here), or an estimated judge time (:mod:`gatekeeper.server.cost`: metrics, kinds,
looks, points) above ``inline_max_ms``: 10,000 one-interval metrics are few points but a
long judgement.
A cheap one is judged inline in two cases, and in the pool otherwise:

* The server is quiet: no other Judge call under way and none arrived in the previous
  ``quiet_seconds``. This is the lowest latency (no hop to another process). The count
  of calls under way alone is not enough, because while the loop judges inline it does
  not see the calls queued behind it: under steady load ``benchmarks/grpc_load.py``
  found 61 % of small calls judged inline that way, with the event loop the bottleneck
  and the workers idle.
* Every place at every worker is taken. The call would only wait for a worker; the event
  loop judges it instead, as one more judge, while each worker still holds its next
  request (the pool's ``depth``) and so never idles. This costs less CPU per call than
  the hop to a worker, which is what bounds throughput when every core is busy.

Without judge processes (``workers=0``) cheap requests are judged inline and expensive ones
in a thread (:func:`in_thread`), so that the event loop keeps serving either way.

A pooled judgement waits at most until the caller's deadline; one still queued then is
never judged (one already running cannot be stopped; its result is dropped).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
import time
from collections.abc import Callable

from gatekeeper import limits, wire
from gatekeeper.api.v1 import gatekeeper_pb2 as pb
from gatekeeper.errors import DeadlineExceeded
from gatekeeper.server import cost, worker
from gatekeeper.server.pool import AbandonedHook, CapacityHook, WorkerPool
from gatekeeper.server.worker import Judged, Rejected

DEFAULT_INLINE_MAX_POINTS = 20_000
#: The longest estimated judgement (ms of one core) that may run in the event loop: a
#: health check waits at most this long (twice that if the estimate is off by 2x).
DEFAULT_INLINE_MAX_MS = 25.0
#: Requests larger than this (encoded) are never decoded in the event loop: decoding and
#: estimating 10,000 metrics (700 kB) alone held the loop for tens of milliseconds. A
#: request within the other limits is smaller (20,000 VALUES points: about 180 kB).
DEFAULT_INLINE_MAX_BYTES = 256 * 1024
#: A quiet server: no Judge call arrived this long before this one.
DEFAULT_QUIET_SECONDS = 0.1


def _ignore(_label: str) -> None:
    return None


async def in_thread(request: pb.JudgeRequest, *, max_metrics: int) -> Judged:
    """Judge ``request`` in a daemon thread of its own (a server without judge processes).

    The event loop keeps serving meanwhile (the judge yields the GIL at every switch
    interval), and a shutdown need not wait for it: a daemon thread neither blocks the
    interpreter's exit nor, unlike :func:`asyncio.to_thread`, the loop's shutdown.
    """
    loop = asyncio.get_running_loop()
    answer: asyncio.Future[Judged] = loop.create_future()

    def settle(result: Judged | None, error: BaseException | None) -> None:
        if answer.done():  # the caller left
            return
        if error is None:
            answer.set_result(result)  # type: ignore[arg-type]
        else:
            answer.set_exception(error)

    def run() -> None:
        try:
            outcome: tuple[Judged | None, BaseException | None] = (
                worker.judge_request(request, max_metrics=max_metrics),
                None,
            )
        except Exception as error:  # carried to the caller, as an inline judgement's
            outcome = (None, error)
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits
            loop.call_soon_threadsafe(settle, *outcome)

    threading.Thread(target=run, daemon=True, name="gatekeeper-judge").start()
    return await answer


class Judging:
    """Runs judgements inline or in the pool, by size.

    Parameters
    ----------
    workers : int
        Pool processes (0: judge everything inline).
    inline_max_points : int
        Requests with at most this many data points may be judged inline.
    contention : callable, optional
        How many Judge calls are under way, this one included (by default, the calls
        inside :meth:`judge`); a quiet server judges small requests inline only when it is 1.
    on_abandoned : callable, optional
        Called with ``"queued"`` (cancelled before it ran) or ``"running"`` (judged for
        nobody) when a pooled judgement's caller went away.
    on_dispatched : callable, optional
        Called with ``"inline"`` or ``"pool"`` for every judgement, where it runs.
    quiet_seconds : float
        How long before a small request no other Judge call may have arrived for it to be
        judged inline.
    on_capacity : callable, optional
        Told the number of live pool workers whenever it changes (health follows it).
    max_metrics : int
        Metrics a request may carry; more is INVALID_ARGUMENT naming the limit.
    inline_max_ms : float
        Requests estimated to take longer than this are judged in the pool.
    """

    def __init__(
        self,
        *,
        workers: int,
        inline_max_points: int = DEFAULT_INLINE_MAX_POINTS,
        contention: Callable[[], int] | None = None,
        on_abandoned: AbandonedHook = _ignore,
        on_dispatched: Callable[[str], None] = _ignore,
        quiet_seconds: float = DEFAULT_QUIET_SECONDS,
        on_capacity: CapacityHook | None = None,
        max_metrics: int = limits.DEFAULT_MAX_METRICS,
        inline_max_ms: float = DEFAULT_INLINE_MAX_MS,
    ) -> None:
        self.workers = workers
        self.inline_max_points = inline_max_points
        self.max_metrics = max_metrics
        self.inline_max_ms = inline_max_ms
        self._on_abandoned = on_abandoned
        self._on_dispatched = on_dispatched
        self._quiet_seconds = quiet_seconds
        self._last_arrival = -math.inf
        self._pool: WorkerPool | None = None
        self._active = 0
        self._contention = contention or (lambda: self._active)
        self._on_capacity = on_capacity

    async def start(self) -> None:
        """Start the pool and wait until every worker has imported the judge."""
        if self.workers <= 0:
            return
        self._pool = WorkerPool(
            workers=self.workers,
            on_abandoned=self._on_abandoned,
            on_capacity=self._on_capacity,
            max_metrics=self.max_metrics,
        )
        await self._pool.start()

    def worker_pids(self) -> tuple[int, ...]:
        """Process ids of the pool's workers (for operators and tests)."""
        return () if self._pool is None else self._pool.pids()

    def busy_workers(self) -> int:
        """Pool workers judging a request right now."""
        return 0 if self._pool is None else self._pool.busy()

    async def judge(self, data: bytes, *, time_remaining: float | None) -> Judged:
        """Judge one request where its size says.

        The request is decoded here only when it may be judged inline (the server quiet,
        or the pool full); a pooled one is decoded in its worker. Bytes that do not decode
        are INVALID_ARGUMENT either way.

        Parameters
        ----------
        data : bytes
            The JudgeRequest as received, in the protobuf binary encoding.
        time_remaining : float or None
            Seconds to the caller's deadline; None for no deadline.

        Returns
        -------
        Judged
            The encoded verdict.

        Raises
        ------
        GatekeeperError
            Bad input, :class:`DeadlineExceeded`, or :class:`Unavailable` when a worker died.
        """
        if time_remaining is not None and time_remaining <= 0:
            raise DeadlineExceeded("the deadline passed before judging started")
        now = time.monotonic()
        quiet = now - self._last_arrival >= self._quiet_seconds
        self._last_arrival = now
        self._active += 1
        try:
            pool = self._pool
            request = self._inline(data, quiet=quiet)
            if request is not None:
                self._on_dispatched("inline")
                if pool is None and not self.cheap(request):  # no pool: off the loop
                    return await in_thread(request, max_metrics=self.max_metrics)
                return worker.judge_request(request, max_metrics=self.max_metrics)
            assert pool is not None
            self._on_dispatched("pool")
            outcome = await pool.judge(data, time_remaining=time_remaining)
        finally:
            self._active -= 1
        if isinstance(outcome, Rejected):
            raise outcome.error()
        return outcome

    def _inline(self, data: bytes, *, quiet: bool) -> pb.JudgeRequest | None:
        """The decoded request if it is to be judged inline (see the module), else None.

        A request for the pool is not decoded here: its worker decodes it.
        """
        pool = self._pool
        if pool is not None and not (quiet or pool.full()):
            return None
        if pool is not None and len(data) > DEFAULT_INLINE_MAX_BYTES:
            return None
        request = wire.parse_judge_request(data, json=False)
        if pool is None:
            return request
        if not self.cheap(request):
            return None
        # Quiet counts only if no other judgement is under way (this call is counted).
        return request if pool.full() or self._contention() <= 1 else None

    def cheap(self, request: pb.JudgeRequest) -> bool:
        """Whether ``request`` is cheap enough to be judged in the event loop."""
        return (
            len(request.metrics) <= self.max_metrics
            and worker.data_points(request) <= self.inline_max_points
            and cost.estimated_ms(request) <= self.inline_max_ms
        )

    async def close(self, timeout: float | None = None) -> None:
        """Stop the pool: queued judgements are refused, running ones finish (within
        ``timeout`` seconds, if given: then their workers are killed)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close(timeout)
