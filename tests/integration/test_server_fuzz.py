"""Fuzzing Judge: whatever arrives, the answer is a status of the table and the server lives.

Hypothesis builds JudgeRequest messages with NaN, infinities, huge and negative numbers,
empty and long series, unknown enum values and duplicate names, and throws random bytes.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gatekeeper.api.v1 import gatekeeper_pb2 as pb
from gatekeeper.client import GatekeeperClient
from gatekeeper.limits import DEFAULT_MAX_METRICS
from tests.integration.grpc_server import ServerThread, judge_request

JUDGE = "/gatekeeper.api.v1.Gatekeeper/Judge"
ALLOWED = {
    grpc.StatusCode.OK,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.DEADLINE_EXCEEDED,
}
FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 1.0, -1.0, 1e308, -1e308, 5e-324, float("nan")]),
    st.integers(-(10**6), 10**9).map(float),
)
counts = st.integers(-5, 10**6).map(float) | numbers
enum_numbers = st.integers(-2, 5)
names = st.sampled_from(
    [
        "",
        " ",
        "errors",
        "latency",
        "errors",
        "ü\u0000",
        "x" * 300,
        "caf\u00e9",
        "cafe\u0301",  # the same name once NFC-normalised
        "err\u200bors",  # "errors" with a zero-width space
        "a\nINFO forged",
        "\u200b",
    ]
)


@st.composite
def series(draw: st.DrawFn) -> pb.Series:
    message = pb.Series()
    length = draw(st.sampled_from([0, 1, 2, 5, 30, 200]))
    shape = draw(st.sampled_from(["values", "counts", "histograms", "mixed"]))
    if shape in ("values", "mixed"):
        message.values.extend(draw(st.lists(numbers, min_size=length, max_size=length)))
    if shape in ("counts", "mixed"):
        for _ in range(length):
            message.counts.add(bad=draw(counts), total=draw(counts))
    if shape == "histograms":
        bounds = draw(st.lists(numbers, min_size=0, max_size=6))
        if draw(st.booleans()):
            bounds = [0.1, 0.5, 1.0, float("inf")]
        if draw(st.booleans()):  # per-bucket counts sent as if cumulative, or cumulative
            for _ in range(min(length, 30)):
                buckets = draw(st.lists(counts, min_size=len(bounds), max_size=len(bounds)))
                sorted_ = draw(st.booleans()) and all(math.isfinite(c) for c in buckets)
                message.histograms.add(
                    upper_bounds=bounds, counts=sorted(buckets) if sorted_ else buckets
                )
            return message
        for _ in range(min(length, 30)):
            size = len(bounds) + draw(st.integers(-1, 1))
            message.histograms.add(
                upper_bounds=bounds,
                counts=draw(st.lists(counts, min_size=max(size, 0), max_size=max(size, 0))),
            )
    return message


@st.composite
def requests(draw: st.DrawFn) -> pb.JudgeRequest:
    # Enum fields get numbers outside their enums on purpose: hence the ignores below.
    request = pb.JudgeRequest(mode=draw(st.integers(-1, 3)))  # type: ignore[arg-type]
    for _ in range(draw(st.integers(0, 4))):
        metric = request.metrics.add()
        config = metric.config
        config.name = draw(names)
        config.kind = draw(enum_numbers)  # type: ignore[assignment]
        config.direction = draw(enum_numbers)  # type: ignore[assignment]
        config.critical = draw(st.booleans())
        for field in ("tolerance", "absolute_tolerance", "quantile", "weight"):
            if draw(st.booleans()):
                setattr(config, field, draw(numbers))
        metric.baseline.CopyFrom(draw(series()))
        metric.canary.CopyFrom(draw(series()))
    for field in ("alpha", "beta", "interval_seconds"):
        if draw(st.booleans()):
            setattr(request, field, draw(numbers))
    if draw(st.booleans()):
        request.look.index = draw(st.integers(-(2**31), 2**31 - 1))
        request.look.planned = draw(st.integers(-(2**31), 2**31 - 1))
    if draw(st.booleans()):
        request.thresholds.pass_score = draw(numbers)
        request.thresholds.marginal_score = draw(numbers)
    return request


@pytest.fixture(scope="module")
def judge(grpc_server: ServerThread) -> Iterator[grpc.UnaryUnaryMultiCallable]:  # type: ignore[type-arg]
    """Judge with bytes in and out on one channel for the module."""
    with grpc.insecure_channel(grpc_server.target) as channel:
        yield channel.unary_unary(JUDGE, request_serializer=None, response_deserializer=None)


def code_of(judge: grpc.UnaryUnaryMultiCallable, data: bytes) -> grpc.StatusCode:  # type: ignore[type-arg]
    try:
        judge(data, timeout=60)
    except grpc.RpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


@FUZZ
@given(request=requests())
def test_generated_requests_get_a_status_of_the_table(
    judge: grpc.UnaryUnaryMultiCallable,  # type: ignore[type-arg]
    request: pb.JudgeRequest,
) -> None:
    assert code_of(judge, request.SerializeToString()) in ALLOWED


@FUZZ
@given(data=st.binary(max_size=4096))
def test_random_bytes_get_a_status_of_the_table(
    judge: grpc.UnaryUnaryMultiCallable,  # type: ignore[type-arg]
    data: bytes,
) -> None:
    assert code_of(judge, data) in ALLOWED


@pytest.mark.parametrize(
    "request_",
    [
        judge_request(metrics=1, points=0),  # empty series: missing data, not bad input
        judge_request(metrics=1, points=400_000),  # huge but inside 16 MiB
        judge_request(kind="ratio", metrics=1, points=700_000),  # beyond 16 MiB
    ],
    ids=["empty", "huge", "oversized"],
)
def test_empty_huge_and_oversized_series(
    judge: grpc.UnaryUnaryMultiCallable,  # type: ignore[type-arg]
    request_: pb.JudgeRequest,
) -> None:
    assert code_of(judge, request_.SerializeToString()) in ALLOWED


@pytest.mark.parametrize("extra", [-1, 0, 1])
def test_requests_at_the_metric_limit(
    judge: grpc.UnaryUnaryMultiCallable,  # type: ignore[type-arg]
    extra: int,
) -> None:
    request = judge_request(kind="ratio", metrics=DEFAULT_MAX_METRICS + extra, points=1)
    expected = grpc.StatusCode.INVALID_ARGUMENT if extra > 0 else grpc.StatusCode.OK
    assert code_of(judge, request.SerializeToString()) is expected


def test_the_server_answers_after_the_fuzzing(grpc_server: ServerThread) -> None:
    with GatekeeperClient(grpc_server.target) as client:
        assert client.serving()
        assert client.judge(judge_request()).decision == pb.DECISION_PASS
