"""Every status of DESIGN.md's error table, produced by a real server, seen by a real stub."""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import cast

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from gatekeeper import errors, wire
from gatekeeper.api.v1 import gatekeeper_pb2 as pb
from gatekeeper.api.v1 import gatekeeper_pb2_grpc as pb_grpc
from gatekeeper.client import GatekeeperClient, RejectedCall, RetryPolicy, ServerFault
from gatekeeper.limits import DEFAULT_MAX_METRICS
from gatekeeper.server.dispatch import Judging
from gatekeeper.server.worker import Judged
from tests.integration.conftest import StartServer
from tests.integration.grpc_server import ROOT, ServerThread, judge_request, wait_until

JUDGE = "/gatekeeper.api.v1.Gatekeeper/Judge"
IN_FLIGHT = "gatekeeper_grpc_calls_in_flight"


def details(error: grpc.RpcError) -> tuple[list[tuple[str, str]], error_details_pb2.ErrorInfo]:
    """The BadRequest violations and the ErrorInfo of a failed call."""
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None
    violations: list[tuple[str, str]] = []
    info = error_details_pb2.ErrorInfo()
    for detail in status.details:
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            violations += [(v.field, v.description) for v in bad.field_violations]
        else:
            assert detail.Unpack(info)
    return violations, info


def failing_call(call: Callable[[], object]) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return caught.value


@pytest.mark.parametrize("name", ["bad-input", "unknown-enum"])
def test_bad_input_is_invalid_argument_with_bad_request_details(
    stub: pb_grpc.GatekeeperStub, name: str
) -> None:
    text = (ROOT / "examples" / "invalid" / f"{name}.json").read_text()
    request = wire.parse_judge_request(text, json=True)
    error = failing_call(lambda: stub.Judge(request, timeout=10))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    violations, info = details(error)
    assert violations and all(field.startswith("metrics[0]") for field, _ in violations)
    assert (info.reason, info.domain) == ("INVALID_ARGUMENT", "gatekeeper.dev")
    assert info.metadata["request_id"]


def test_client_decodes_the_violations_into_invalid_argument(
    grpc_server: ServerThread, stub: pb_grpc.GatekeeperStub
) -> None:
    request = judge_request(metrics=2)
    request.metrics[1].config.name = request.metrics[0].config.name
    request.metrics[0].canary.values.append(float("inf"))
    target = grpc_server.target
    with GatekeeperClient(target) as client, pytest.raises(errors.InvalidArgument) as caught:
        client.judge(request)
    fields = {v.field for v in caught.value.violations}
    assert fields == {"metrics[0].canary.values[60]", "metrics[1].config.name"}


@pytest.mark.parametrize(
    "data", [b"\xff\xff\xff", b"\x0a\x05\x0a\x03", b"\x08" * 7, bytes(range(256))]
)
def test_undecodable_bytes_are_invalid_argument_not_unknown(
    grpc_server: ServerThread, data: bytes
) -> None:
    with grpc.insecure_channel(grpc_server.target) as channel:
        judge = channel.unary_unary(JUDGE, request_serializer=None, response_deserializer=None)
        error = failing_call(lambda: judge(data, timeout=10))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    violations, _ = details(error)
    assert violations[0][0] == "request"
    assert "JudgeRequest" in violations[0][1]


def test_a_thousand_violations_fit_in_bounded_details(stub: pb_grpc.GatekeeperStub) -> None:
    request = pb.JudgeRequest()
    for _ in range(DEFAULT_MAX_METRICS):  # as many metrics as a request may carry
        request.metrics.add().config.kind = pb.METRIC_KIND_VALUES  # unnamed: one violation each
    error = failing_call(lambda: stub.Judge(request, timeout=30))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    violations, _ = details(error)
    assert 1 < len(violations) < 100
    assert violations[-1][1].startswith("... and ")


def test_oversized_message_is_resource_exhausted_naming_the_limit(
    start_server: StartServer,
) -> None:
    server = start_server(max_message_bytes=100_000)
    request = judge_request(points=2_000)  # about 320 kB
    with grpc.insecure_channel(server.target) as channel:
        error = failing_call(lambda: pb_grpc.GatekeeperStub(channel).Judge(request, timeout=10))
        assert error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "100000" in cast(str, error.details())
        assert pb_grpc.GatekeeperStub(channel).Judge(judge_request(), timeout=10).decision
    with GatekeeperClient(server.target) as client, pytest.raises(RejectedCall) as caught:
        client.judge(request)
    assert caught.value.code == "RESOURCE_EXHAUSTED"


def test_expired_deadline_is_deadline_exceeded_and_queued_work_is_dropped(
    start_server: StartServer,
) -> None:
    server = start_server(workers=1)
    blocker = judge_request(points=20_000)  # in the pool, a good fraction of a second each
    late = judge_request(points=2_000, seed=1)
    with grpc.insecure_channel(server.target) as channel:
        judge = pb_grpc.GatekeeperStub(channel).Judge
        blocking = [judge.future(blocker, timeout=120) for _ in range(4)]
        # All four in the pool (one judging, one next, two waiting) before the late call.
        wait_until(lambda: server.running.metrics.sample(IN_FLIGHT, {"method": "Judge"}) >= 4)
        with pytest.raises(grpc.RpcError) as caught:
            judge(late, timeout=0.2)
        assert caught.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
        assert all(f.result().decision for f in blocking)
        assert judge(judge_request(), timeout=10).decision
    # The late call waited behind the blockers and was cancelled, never judged.
    metrics = server.running.metrics
    assert metrics.sample("gatekeeper_judge_abandoned_total", {"stage": "queued"}) == 1


class Failing(Judging):
    """Judging that raises a given error: fault injection through the real seam."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(workers=0)
        self.error = error

    async def judge(self, data: bytes, *, time_remaining: float | None) -> Judged:
        raise self.error


def test_unexpected_errors_are_internal_with_a_generic_message(
    start_server: StartServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="gatekeeper.server")
    server = start_server(judging=Failing(KeyError("secret-internal-detail")))
    with grpc.insecure_channel(server.target) as channel:
        error = failing_call(
            lambda: pb_grpc.GatekeeperStub(channel).Judge(judge_request(), timeout=10)
        )
    assert error.code() is grpc.StatusCode.INTERNAL
    assert "secret" not in cast(str, error.details())
    assert "KeyError" not in cast(str, error.details())
    _, info = details(error)
    assert info.reason == "INTERNAL"
    assert info.metadata["request_id"] in cast(str, error.details())
    (record,) = [r for r in caplog.records if r.exc_info]
    assert "secret-internal-detail" in caplog.text and record.levelno == logging.ERROR


@pytest.mark.parametrize(
    ("error", "code", "domain"),
    [
        (
            errors.FailedPrecondition("spec x: no such template"),
            "FAILED_PRECONDITION",
            errors.FailedPrecondition,
        ),
        (errors.Unavailable("busy"), "UNAVAILABLE", errors.Unavailable),
        (errors.SourceError("prometheus down"), "UNAVAILABLE", errors.Unavailable),
        (errors.DeadlineExceeded("late"), "DEADLINE_EXCEEDED", errors.DeadlineExceeded),
        (RuntimeError("boom"), "INTERNAL", ServerFault),
    ],
)
def test_domain_errors_map_to_status_codes_and_back(
    start_server: StartServer, error: Exception, code: str, domain: type[Exception]
) -> None:
    server = start_server(judging=Failing(error))
    with grpc.insecure_channel(server.target) as channel:
        raw = failing_call(lambda: pb_grpc.GatekeeperStub(channel).Judge(judge_request()))
    assert raw.code().name == code
    no_retry = RetryPolicy(attempts=1)
    with GatekeeperClient(server.target, retry=no_retry) as client, pytest.raises(domain):
        client.judge(judge_request())


def test_a_dead_judge_worker_is_unavailable_and_the_pool_recovers(
    start_server: StartServer,
) -> None:
    server = start_server(workers=1)
    request = judge_request(points=50_000)  # seconds of work in the pool
    (pid,) = server.running.judging.worker_pids()
    with grpc.insecure_channel(server.target) as channel:
        judge = pb_grpc.GatekeeperStub(channel).Judge
        pending = judge.future(request, timeout=120)
        wait_until(lambda: server.running.judging.busy_workers() == 1)
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(grpc.RpcError) as caught:
            pending.result()
        assert caught.value.code() is grpc.StatusCode.UNAVAILABLE
        small = judge_request(points=3_000)
        assert judge(small, timeout=60).decision  # the pool was restarted
        assert server.running.judging.worker_pids() != (pid,)


def test_an_idle_judge_worker_that_dies_is_replaced_without_losing_calls(
    start_server: StartServer,
) -> None:
    server = start_server(workers=1)
    (pid,) = server.running.judging.worker_pids()
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: server.running.judging.worker_pids() not in ((), (pid,)))
    with grpc.insecure_channel(server.target) as channel:
        judge = pb_grpc.GatekeeperStub(channel).Judge
        pooled = [judge.future(judge_request(points=3_000, seed=s), timeout=60) for s in range(3)]
        assert all(f.result().decision for f in pooled)


def test_the_client_retries_unavailable_with_backoff_then_gives_up(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="gatekeeper.client")
    retry = RetryPolicy(attempts=3, initial_backoff=0.01, max_backoff=0.05)
    client = GatekeeperClient("127.0.0.1:1", timeout=30, retry=retry)
    with client, pytest.raises(errors.Unavailable):
        client.judge(judge_request())
    retries = [r for r in caplog.records if "retrying" in r.getMessage()]
    assert [r.attempt for r in retries] == [2, 3]  # type: ignore[attr-defined]


def test_the_client_does_not_retry_permanent_errors(
    grpc_server: ServerThread, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gatekeeper.client")
    client = GatekeeperClient(grpc_server.target)
    with client, pytest.raises(errors.InvalidArgument):
        client.judge(pb.JudgeRequest())
    assert not [r for r in caplog.records if "retrying" in r.getMessage()]


def test_backoff_is_exponential_with_full_jitter_and_capped() -> None:
    policy = RetryPolicy(initial_backoff=0.1, max_backoff=1.0, multiplier=2.0)
    ceilings = [policy.backoff(n, rng=lambda low, high: high) for n in range(6)]
    assert ceilings == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0])
    assert all(policy.backoff(n, rng=lambda low, high: low) == 0.0 for n in range(6))


def test_bad_input_never_kills_the_server_under_concurrent_abuse(
    grpc_server: ServerThread,
) -> None:
    target = grpc_server.target
    garbage = [os.urandom(n) for n in (1, 7, 100, 10_000)] * 10
    with grpc.insecure_channel(target) as channel, ThreadPoolExecutor(8) as pool:
        judge = channel.unary_unary(JUDGE, request_serializer=None, response_deserializer=None)

        def code(data: bytes) -> grpc.StatusCode:
            try:
                judge(data, timeout=30)
            except grpc.RpcError as exc:
                return exc.code()
            return grpc.StatusCode.OK

        codes = set(pool.map(code, garbage))
    assert codes <= {grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT}
    with GatekeeperClient(target) as client:
        assert client.serving()
        assert client.judge(judge_request()).decision == pb.DECISION_PASS
