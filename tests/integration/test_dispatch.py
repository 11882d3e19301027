"""Where judgements run: inline when the server is quiet or the real worker pool is full,
in the pool otherwise."""

from __future__ import annotations

import asyncio

from gatekeeper.api.v1 import gatekeeper_pb2 as pb
from gatekeeper.errors import InvalidArgument
from gatekeeper.server.dispatch import Judging
from tests.integration.grpc_server import judge_request


def _judge_all(
    requests: list[pb.JudgeRequest], *, gap: float, quiet_seconds: float = 0.1
) -> tuple[list[str], list[str]]:
    """Judge ``requests`` one after another, ``gap`` seconds apart; where each ran, and the
    decisions."""
    where: list[str] = []

    async def run() -> list[str]:
        judging = Judging(
            workers=1,
            inline_max_points=5_000,
            on_dispatched=where.append,
            quiet_seconds=quiet_seconds,
        )
        await judging.start()
        try:
            decisions = []
            for request in requests:
                data = request.SerializeToString()
                judged = await judging.judge(data, time_remaining=30.0)
                decisions.append(judged.decision)
                await asyncio.sleep(gap)
            return decisions
        finally:
            await judging.close()

    decisions = asyncio.run(run())
    return where, decisions


def test_small_calls_of_a_quiet_server_are_judged_inline() -> None:
    requests = [judge_request(seed=s) for s in range(3)]
    where, decisions = _judge_all(requests, gap=0.05, quiet_seconds=0.02)
    assert where == ["inline", "inline", "inline"]
    assert all(decisions)


def test_back_to_back_small_calls_go_to_the_pool_after_the_first() -> None:
    # The steady load of a benchmark: each call arrives right after the previous one.
    requests = [judge_request(seed=s) for s in range(4)]
    where, decisions = _judge_all(requests, gap=0.0, quiet_seconds=10.0)
    assert where == ["inline", "pool", "pool", "pool"]
    # The same verdicts wherever they were judged.
    assert decisions == _judge_all(requests, gap=0.05, quiet_seconds=0.0)[1]


def test_large_calls_always_go_to_the_pool() -> None:
    where, _ = _judge_all([judge_request(points=1_000)], gap=0.0)  # 20,000 points
    assert where == ["pool"]


def test_small_calls_are_judged_inline_while_every_worker_place_is_taken() -> None:
    # One worker holding two requests (the pool's depth): later calls would only queue.
    requests = [judge_request(seed=s, shift=0.5 * (s % 2)) for s in range(6)]
    where: list[str] = []

    async def run() -> list[str]:
        judging = Judging(workers=1, on_dispatched=where.append, quiet_seconds=10.0)
        await judging.start()
        try:
            calls = (judging.judge(r.SerializeToString(), time_remaining=30.0) for r in requests)
            return [judged.decision for judged in await asyncio.gather(*calls)]
        finally:
            await judging.close()

    decisions = asyncio.run(run())
    # The first call finds the server quiet; two fill the worker; the rest are stolen.
    assert where == ["inline", "pool", "pool", "inline", "inline", "inline"]
    assert decisions == _judge_all(requests, gap=0.05, quiet_seconds=0.0)[1]
    assert set(decisions) == {"PASS", "FAIL"}


def test_large_calls_queue_for_a_full_pool() -> None:
    requests = [judge_request(points=1_000, seed=s) for s in range(4)]
    where: list[str] = []

    async def run() -> None:
        judging = Judging(workers=1, inline_max_points=5_000, on_dispatched=where.append)
        await judging.start()
        try:
            await asyncio.gather(
                *(judging.judge(r.SerializeToString(), time_remaining=60.0) for r in requests)
            )
        finally:
            await judging.close()

    asyncio.run(run())
    assert where == ["pool"] * 4


def test_bytes_that_do_not_decode_are_bad_input_in_the_pool_too() -> None:
    # Under load a request goes to the pool undecoded; its worker finds it undecodable.
    where: list[str] = []

    async def run() -> list[BaseException | None]:
        judging = Judging(workers=1, on_dispatched=where.append, quiet_seconds=10.0)
        await judging.start()
        try:
            first = judging.judge(judge_request().SerializeToString(), time_remaining=30.0)
            garbage = judging.judge(b"\xff\xff\xff", time_remaining=30.0)
            found = await asyncio.gather(first, garbage, return_exceptions=True)
            return [f if isinstance(f, BaseException) else None for f in found]
        finally:
            await judging.close()

    first, garbage = asyncio.run(run())
    assert where == ["inline", "pool"]
    assert first is None
    assert isinstance(garbage, InvalidArgument)
    assert [v.field for v in garbage.violations] == ["request"]
    assert "not a gatekeeper.api.v1.JudgeRequest" in garbage.violations[0].description
