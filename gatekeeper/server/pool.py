"""Judge processes driven by the event loop itself: one socket per worker, no threads.

:class:`concurrent.futures.ProcessPoolExecutor` hands every task through a feeder thread, a
management thread and a thread-safe wake-up of the event loop; for a judgement of a
millisecond or two that machinery costs as much main-process CPU as the gRPC call itself
(and the event loop's thread competes for the GIL with both). Here each worker owns one end
of a socket pair and the event loop owns the other: a request is one length-prefixed frame
of the JudgeRequest bytes, the answer one frame of a pickled
:class:`~gatekeeper.server.worker.Judged` or :class:`~gatekeeper.server.worker.Rejected`.
A worker judges one request at a time and holds at most ``depth`` (default 2): the next
request waits in its socket, so a busy worker goes from one judgement to the next without
sleeping in between. Callers wait for a free place in arrival order.

A worker that dies fails its current judgement with :class:`Unavailable` and is replaced
(its exit is awaited on the event loop through the process's sentinel, never in a thread,
so recovery cannot queue behind blocked ``to_thread`` calls; ``on_capacity`` tells the
server, whose health is NOT_SERVING while no worker is alive);
a caller whose deadline passes while queued is never judged ("queued"), one whose deadline
passes while judged gets :class:`DeadlineExceeded` and the result is dropped ("running").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import pickle
import socket
import weakref
from collections import deque
from collections.abc import Callable
from multiprocessing.process import BaseProcess

from gatekeeper import limits
from gatekeeper.errors import DeadlineExceeded, Unavailable
from gatekeeper.server import worker
from gatekeeper.server.worker import HEADER, Judged, Rejected

log = logging.getLogger("gatekeeper.server")

#: Requests a worker may hold at once: the next one waits in its socket while it judges,
#: so a busy worker goes from one judgement to the next without sleeping in between.
DEFAULT_DEPTH = 2
#: Seconds a stopping worker gets to exit after its socket closes, before it is killed.
STOP_SECONDS = 5.0

AbandonedHook = Callable[[str], None]
#: Told the number of live workers whenever it changes (health follows it).
CapacityHook = Callable[[int], None]


#: Per judge process, the future of its exit: one reader per sentinel, however many wait.
_EXITS: weakref.WeakKeyDictionary[BaseProcess, asyncio.Future[None]] = weakref.WeakKeyDictionary()


def _exit_of(process: BaseProcess) -> asyncio.Future[None]:
    loop = asyncio.get_running_loop()
    found = _EXITS.get(process)
    if found is not None and found.get_loop() is loop:
        return found
    gone: asyncio.Future[None] = loop.create_future()
    sentinel = process.sentinel

    def readable() -> None:
        loop.remove_reader(sentinel)
        if not gone.done():
            gone.set_result(None)

    loop.add_reader(sentinel, readable)
    _EXITS[process] = gone
    return gone


async def exited(process: BaseProcess, timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for ``process`` to exit, on the event loop.

    The process's sentinel (a descriptor readable once it exits) is watched by the loop
    itself: no thread is used, so the wait never queues behind blocked ``to_thread`` calls.
    """
    if process.exitcode is not None:
        return True
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.shield(_exit_of(process)), timeout)
    process.join(0)  # reaps it: returns at once
    return process.exitcode is not None


class WorkerStartError(RuntimeError):
    """A judge process exited before it was ready (an import failed, or it was killed)."""


class _Worker(asyncio.Protocol):
    """One judge process and the event loop's end of its socket.

    Answers are read as a protocol: the event loop hands each chunk that arrives to
    :meth:`data_received`, which resolves the futures of the complete frames in it, so an
    answer costs no task switch of its own.

    Parameters
    ----------
    process : BaseProcess
        The judge process (started).
    on_answered : callable
        Called with this worker after each answer (it has a free place again).
    on_lost : callable
        Called with this worker once its socket is closed (it exited, or was closed).
    """

    def __init__(
        self,
        process: BaseProcess,
        *,
        on_answered: Callable[[_Worker], None],
        on_lost: Callable[[_Worker], None],
    ) -> None:
        self.process = process
        self.answers: deque[asyncio.Future[Judged | Rejected]] = deque()
        self.greeting: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        self._transport: asyncio.WriteTransport | None = None
        self._buffer = bytearray()
        self._on_answered = on_answered
        self._on_lost = on_lost

    @property
    def pid(self) -> int:
        return self.process.pid or 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the transport to write requests to."""
        assert isinstance(transport, asyncio.WriteTransport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        """Deliver every complete frame: the greeting (the worker's pid), then answers."""
        buffer = self._buffer
        buffer += data
        start = 0
        while len(buffer) - start >= HEADER.size:
            (size,) = HEADER.unpack_from(buffer, start)
            end = start + HEADER.size + size
            if len(buffer) < end:
                break
            # A copy, not a memoryview: the buffer is resized below, which a view forbids.
            self._deliver(pickle.loads(buffer[start + HEADER.size : end]))
            start = end
        del buffer[:start]

    def _deliver(self, answer: object) -> None:
        if not self.greeting.done():
            self.greeting.set_result(answer)
            return
        pending = self.answers.popleft()
        if not pending.done():  # else the caller left; the answer is dropped
            assert isinstance(answer, Judged | Rejected), f"unexpected answer {answer!r}"
            pending.set_result(answer)
        self._on_answered(self)

    def connection_lost(self, exc: Exception | None) -> None:
        """The worker exited (or its socket was closed here)."""
        if not self.greeting.done():
            self.greeting.set_exception(ConnectionError("the judge worker closed its socket"))
        self._on_lost(self)

    def send(self, data: bytes) -> asyncio.Future[Judged | Rejected]:
        """Send one request; the future is the worker's answer (answers come in order)."""
        assert self._transport is not None
        answer: asyncio.Future[Judged | Rejected] = asyncio.get_running_loop().create_future()
        self.answers.append(answer)
        self._transport.write(HEADER.pack(len(data)) + data)  # one send, not two
        return answer

    def close(self) -> None:
        """Close this end of the socket: the worker's loop ends."""
        if self._transport is not None:
            self._transport.close()


class WorkerPool:
    """Judge processes, each fed over its own socket, judging one request at a time.

    Parameters
    ----------
    workers : int
        Processes, >= 1.
    on_abandoned : callable
        Called with ``"queued"`` or ``"running"`` when a caller went away (see the module).
    depth : int
        Requests one worker may hold (judged one after the other), >= 1.
    on_capacity : callable, optional
        Told the number of live workers whenever it changes.
    max_metrics : int
        Metrics a request may carry (checked in the worker, which decodes it).
    """

    def __init__(
        self,
        *,
        workers: int,
        on_abandoned: AbandonedHook,
        depth: int = DEFAULT_DEPTH,
        on_capacity: CapacityHook | None = None,
        max_metrics: int = limits.DEFAULT_MAX_METRICS,
    ) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers!r}")
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth!r}")
        self.workers = workers
        self.depth = depth
        self.max_metrics = max_metrics
        self._on_abandoned = on_abandoned
        self._on_capacity = on_capacity or (lambda _live: None)
        self._context = multiprocessing.get_context("forkserver")
        self._context.set_forkserver_preload(["gatekeeper.server.worker"])
        self._all: list[_Worker] = []
        self._idle: deque[_Worker] = deque()  # free places: a worker once per free place
        self._waiting: deque[asyncio.Future[_Worker]] = deque()
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = False
        self._starting = 0

    async def start(self) -> None:
        """Start every worker and wait until each has imported the judge."""
        started = await asyncio.gather(*(self._spawn() for _ in range(self.workers)))
        for _ in range(self.depth):
            for one in started:
                self._release(one)

    def pids(self) -> tuple[int, ...]:
        """Process ids of the live workers."""
        return tuple(one.pid for one in self._all)

    def full(self) -> bool:
        """Every place at every worker is taken."""
        return not self._idle

    def busy(self) -> int:
        """Workers judging a request right now."""
        return sum(1 for one in self._all if one.answers)

    async def _spawn(self) -> _Worker:
        self._starting += 1
        try:
            return await self._start_one()
        finally:
            self._starting -= 1

    async def _start_one(self) -> _Worker:
        ours, theirs = socket.socketpair()
        process = self._context.Process(
            target=worker.serve,
            args=(theirs, os.getpid(), self.max_metrics),
            daemon=True,
            name="gatekeeper-judge",
        )
        process.start()
        theirs.close()
        loop = asyncio.get_running_loop()
        _, one = await loop.create_connection(
            lambda: _Worker(process, on_answered=self._release, on_lost=self._on_lost), sock=ours
        )
        try:
            ready = await one.greeting  # the worker's pid, once its imports are done
        except ConnectionError:
            one.close()
            await exited(process, STOP_SECONDS)
            raise WorkerStartError(
                f"a judge worker exited before it was ready (exit code {process.exitcode})"
            ) from None
        assert ready == one.pid, f"unexpected greeting {ready!r} from a judge worker"
        self._all.append(one)
        self._on_capacity(len(self._all))
        return one

    def _on_lost(self, one: _Worker) -> None:
        """``one``'s socket closed: forget it, fail its judgements and replace it."""
        if one not in self._all:  # it never finished starting (see _start_one)
            return
        self._all.remove(one)
        self._idle = deque(slot for slot in self._idle if slot is not one)
        if not self._closing:
            self._on_capacity(len(self._all))
        self._starting += 1  # its replacement: callers wait for it rather than be refused
        task = asyncio.get_running_loop().create_task(self._lost(one))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _lost(self, one: _Worker) -> None:
        for pending in one.answers:
            if not pending.done():
                pending.set_exception(Unavailable("a judge worker died; it was replaced, retry"))
        try:
            if not await exited(one.process, STOP_SECONDS):
                one.process.kill()  # its socket closed but it hangs on: it is of no use
                await exited(one.process, STOP_SECONDS)
        finally:
            self._starting -= 1  # from here, the replacement's own start counts
        if self._closing:
            return
        code = one.process.exitcode
        log.error("judge worker %s died (exit code %s); starting another", one.pid, code)
        try:
            replacement = await self._spawn()
        except (OSError, WorkerStartError):
            log.exception("could not start a judge worker; the pool has %d", len(self._all))
            if not self._all and not self._starting:
                self._refuse_waiting(Unavailable("no judge worker is running; retry later"))
            return
        if self._closing:  # closed while the replacement started
            replacement.close()
            return
        for _ in range(self.depth):
            self._release(replacement)

    def _release(self, one: _Worker) -> None:
        """``one`` is idle: hand it to the first caller still waiting, or keep it."""
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(one)
                return
        self._idle.append(one)

    async def _acquire(self) -> _Worker:
        """A free place at a worker, in arrival order."""
        if self._closing:
            raise Unavailable("the server is shutting down")
        if not self._all and not self._starting:
            raise Unavailable("no judge worker is running (see the server's log); retry later")
        if self._idle and not self._waiting:
            return self._idle.popleft()
        waiter: asyncio.Future[_Worker] = asyncio.get_running_loop().create_future()
        self._waiting.append(waiter)
        try:
            return await waiter
        except asyncio.CancelledError:  # the caller left, or its deadline passed
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self._release(waiter.result())  # handed over just as the caller left
            raise

    async def judge(self, data: bytes, *, time_remaining: float | None) -> Judged | Rejected:
        """Judge the encoded request ``data`` in a worker.

        Raises
        ------
        DeadlineExceeded
            The deadline passed while queued (never judged) or while judged (dropped).
        Unavailable
            The worker died, or the pool is closing.
        """
        loop = asyncio.get_running_loop()
        deadline = None if time_remaining is None else loop.time() + time_remaining
        stage = "queued"
        try:
            async with asyncio.timeout_at(deadline):
                one = await self._acquire()
                stage = "running"
                # On a timeout the answer's future is cancelled; the worker's answer, when
                # it comes, is dropped.
                return await one.send(data)
        except TimeoutError:
            self._on_abandoned(stage)
            where = "waited" if stage == "queued" else "was judged"
            raise DeadlineExceeded(f"the deadline passed while the request {where}") from None
        except asyncio.CancelledError:
            self._on_abandoned(stage)
            raise

    def _refuse_waiting(self, error: Unavailable) -> None:
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_exception(error)

    async def close(self, timeout: float | None = None) -> None:
        """Stop: waiting callers get :class:`Unavailable`, running judgements finish.

        With a ``timeout``, judgements still running after that many seconds are failed
        with :class:`Unavailable` and their workers killed, so that shutdown keeps to its
        grace whatever the request.
        """
        self._closing = True
        self._refuse_waiting(Unavailable("the server is shutting down"))
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + max(0.0, timeout)
        running = [answer for one in self._all for answer in one.answers]
        if running:
            await asyncio.wait(running, timeout=None if deadline is None else timeout)
        for one in list(self._all):
            one.close()  # EOF: the worker's loop ends
        for one in list(self._all):
            left = STOP_SECONDS if deadline is None else deadline - loop.time()
            if left <= 0 or not await exited(one.process, min(STOP_SECONDS, left)):
                one.process.kill()
                await exited(one.process, STOP_SECONDS)
            for pending in one.answers:
                if not pending.done():
                    pending.set_exception(Unavailable("the server is shutting down"))
        for task in list(self._tasks):
            task.cancel()
        self._all.clear()
        self._idle.clear()
