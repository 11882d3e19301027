"""Where a judgement runs: inline in the event loop, or in a process pool.

Large requests (more than ``inline_max_points`` data points) always go to a
:class:`~concurrent.futures.ProcessPoolExecutor`, so that judging never starves the event
loop: health checks and small calls are answered while every core judges. Small ones are
judged inline when no other Judge call is under way (the lowest latency: no hop to another
process) and in the pool otherwise: under load the pool spreads them over every core and
the event loop keeps to I/O (``benchmarks/grpc_load.py`` measured 1.5x the small-Judge
throughput of always-inline on 2 cores). A pooled judgement waits at most until the
caller's deadline; one still queued then is cancelled and never judged (one already
running cannot be stopped; its result is dropped).
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from gatekeeper.api.v1 import gatekeeper_pb2 as pb
from gatekeeper.errors import DeadlineExceeded, Unavailable
from gatekeeper.server import worker
from gatekeeper.server.worker import Judged, Rejected

log = logging.getLogger("gatekeeper.server")

DEFAULT_INLINE_MAX_POINTS = 20_000

AbandonedHook = Callable[[str], None]


def _ignore(_stage: str) -> None:
    return None


class Judging:
    """Runs judgements inline or in the pool, by size.

    Parameters
    ----------
    workers : int
        Pool processes (0: judge everything inline).
    inline_max_points : int
        Requests with at most this many data points are judged inline.
    contention : callable, optional
        How many Judge calls are under way, this one included (by default, the calls
        inside :meth:`judge`); small requests are judged inline only when it is 1.
    on_abandoned : callable, optional
        Called with ``"queued"`` (cancelled before it ran) or ``"running"`` (judged for
        nobody) when a pooled judgement's caller went away.
    """

    def __init__(
        self,
        *,
        workers: int,
        inline_max_points: int = DEFAULT_INLINE_MAX_POINTS,
        contention: Callable[[], int] | None = None,
        on_abandoned: AbandonedHook = _ignore,
    ) -> None:
        self.workers = workers
        self.inline_max_points = inline_max_points
        self._on_abandoned = on_abandoned
        self._pool: ProcessPoolExecutor | None = None
        self._active = 0
        self._contention = contention or (lambda: self._active)
        self._closing = False

    def _new_pool(self) -> ProcessPoolExecutor:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["gatekeeper.server.worker"])
        return ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=context,
            initializer=worker.initialize,
            initargs=(os.getpid(),),
        )

    async def start(self) -> None:
        """Start the pool and wait until every worker has imported the judge."""
        if self.workers <= 0:
            return
        self._pool = self._new_pool()
        loop = asyncio.get_running_loop()
        await asyncio.gather(
            *(loop.run_in_executor(self._pool, worker.ready) for _ in range(self.workers))
        )

    def worker_pids(self) -> tuple[int, ...]:
        """Process ids of the pool's workers (for operators and tests)."""
        processes = getattr(self._pool, "_processes", None) or {}
        return tuple(processes)

    async def judge(
        self, data: bytes, request: pb.JudgeRequest, *, time_remaining: float | None
    ) -> Judged:
        """Judge one request where its size says.

        Parameters
        ----------
        data : bytes
            The request as received (the pool decodes it again in the worker).
        request : JudgeRequest
            The decoded request.
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
        self._active += 1
        try:
            if self._pool is None or self._inline(request):
                return worker.judge_request(request)
            outcome = await self._in_pool(self._pool, data, time_remaining)
        finally:
            self._active -= 1
        if isinstance(outcome, Rejected):
            raise outcome.error()
        return outcome

    def _inline(self, request: pb.JudgeRequest) -> bool:
        """Small, and no other judgement under way (this call is the only one counted)."""
        return self._contention() <= 1 and worker.data_points(request) <= self.inline_max_points

    async def _in_pool(
        self, pool: ProcessPoolExecutor, data: bytes, time_remaining: float | None
    ) -> Judged | Rejected:
        future: Future[Judged | Rejected] | None = None
        try:
            future = pool.submit(worker.judge_bytes, data)
            return await asyncio.wait_for(asyncio.wrap_future(future), timeout=time_remaining)
        except TimeoutError:
            self._abandoned(future)
            raise DeadlineExceeded("the deadline passed while the request was judged") from None
        except asyncio.CancelledError:
            self._abandoned(future)
            raise
        except BrokenProcessPool:
            self._replace(pool)
            raise Unavailable("a judge worker died; the pool was restarted, retry") from None

    def _abandoned(self, future: Future[Judged | Rejected] | None) -> None:
        if future is not None:
            self._on_abandoned("queued" if future.cancelled() else "running")

    def _replace(self, broken: ProcessPoolExecutor) -> None:
        if self._closing or self._pool is not broken:
            return
        log.error("a judge worker died; restarting the pool")
        broken.shutdown(wait=False, cancel_futures=True)
        self._pool = self._new_pool()

    async def close(self) -> None:
        """Stop the pool: queued judgements are cancelled, running ones finish."""
        self._closing = True
        pool, self._pool = self._pool, None
        if pool is not None:
            await asyncio.to_thread(pool.shutdown, wait=True, cancel_futures=True)
