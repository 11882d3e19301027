"""The ``gatekeeper.api.v1.Gatekeeper`` service: proto <-> domain, nothing else.

Methods are registered with bytes in and bytes out: requests are decoded by our own code
(:func:`gatekeeper.wire.parse_judge_request`, in the server or in a judge worker), so that
an undecodable message is INVALID_ARGUMENT with a field violation rather than gRPC's
UNKNOWN with exception text, and pooled judgements pass the bytes on undecoded.
"""

from __future__ import annotations

import logging
import time
from typing import Any, NoReturn

import grpc
import grpc.aio
from grpc_status import rpc_status

from gatekeeper.api.v1 import gatekeeper_pb2 as pb
from gatekeeper.errors import GatekeeperError
from gatekeeper.server.analysis import AnalysisService
from gatekeeper.server.dispatch import Judging
from gatekeeper.server.errors import to_status
from gatekeeper.server.logs import REQUEST_ID
from gatekeeper.server.metrics import ServiceMetrics
from gatekeeper.server.verdicts import Method, VerdictObserver
from gatekeeper.server.worker import Judged

SERVICE = "gatekeeper.api.v1.Gatekeeper"

log = logging.getLogger("gatekeeper.server")

Context = grpc.aio.ServicerContext[bytes, bytes]


async def abort(context: Context, error: BaseException) -> NoReturn:
    """End the call with the status that DESIGN.md's table gives ``error``."""
    call_id = REQUEST_ID.get()
    if not isinstance(error, GatekeeperError):
        log.error("unexpected error", exc_info=error, extra={"request_id": call_id})
    status = rpc_status.to_status(to_status(error, request_id=call_id))
    await context.abort(status.code, status.details, status.trailing_metadata)


class GatekeeperServicer:
    """Judge and Analyze, for gRPC and for the HTTP adapters.

    :meth:`judge` and :meth:`analyze` take and give the protobuf binary encoding and raise
    domain errors; the gRPC methods turn those into statuses of the table, the HTTP layer
    (:mod:`gatekeeper.server.http`) into HTTP statuses of the same table.

    Parameters
    ----------
    judging : Judging
        Runs judgements inline or in the process pool.
    metrics : ServiceMetrics
        Verdict and judge-time instruments.
    analysis : AnalysisService
        Analyze's source, specs and limits.
    observer : VerdictObserver, optional
        Told every verdict (:mod:`gatekeeper.server.verdicts`).
    """

    def __init__(
        self,
        *,
        judging: Judging,
        metrics: ServiceMetrics,
        analysis: AnalysisService,
        observer: VerdictObserver | None = None,
    ) -> None:
        self._judging = judging
        self._metrics = metrics
        self._analysis = analysis
        self._observer = observer

    async def judge(self, data: bytes, *, time_remaining: float | None) -> bytes:
        """Judge an encoded JudgeRequest; the encoded Verdict, or a domain error raised."""
        judged = await self._judging.judge(data, time_remaining=time_remaining)
        self._record(judged)
        if self._observer is not None:
            self._observe("Judge", pb.JudgeRequest.FromString(data), judged.verdict)
        return judged.verdict

    async def analyze(self, data: bytes, *, time_remaining: float | None = None) -> bytes:
        """Fetch and judge an encoded AnalyzeRequest within the caller's remaining time; the
        encoded Verdict, or a domain error raised."""
        started = time.perf_counter()
        answer = await self._analysis.analyze(data, time_remaining=time_remaining)
        verdict = pb.Verdict.FromString(answer)
        decision = pb.Decision.Name(verdict.decision).removeprefix("DECISION_")
        self._metrics.verdicts.labels(decision=decision).inc()
        log.info(
            "analysis verdict %s",  # the summary once, as a field (never twice)
            decision,
            extra={
                "request_id": REQUEST_ID.get(),
                "decision": decision,
                "summary": verdict.summary,
                "analyze_ms": round((time.perf_counter() - started) * 1e3, 3),
            },
        )
        if self._observer is not None:
            self._observe("Analyze", pb.AnalyzeRequest.FromString(data), answer)
        return answer

    async def Judge(self, data: bytes, context: Context) -> bytes:  # noqa: N802 (gRPC name)
        """Decode, judge, encode; every failure becomes a status of the table."""
        try:
            return await self.judge(data, time_remaining=context.time_remaining())
        except Exception as error:
            await abort(context, error)

    async def Analyze(self, data: bytes, context: Context) -> bytes:  # noqa: N802
        """Fetch from the metric source and judge; failures become statuses of the table."""
        try:
            return await self.analyze(data, time_remaining=context.time_remaining())
        except Exception as error:
            await abort(context, error)

    def _observe(
        self, method: Method, request: pb.JudgeRequest | pb.AnalyzeRequest, verdict: bytes
    ) -> None:
        assert self._observer is not None
        try:
            self._observer(method=method, request=request, verdict=pb.Verdict.FromString(verdict))
        except Exception:
            log.exception("the verdict observer failed", extra={"request_id": REQUEST_ID.get()})

    def _record(self, judged: Judged) -> None:
        self._metrics.verdicts.labels(decision=judged.decision).inc()
        self._metrics.judge_seconds.observe(judged.judge_seconds)
        log.info(
            "verdict %s",  # the summary once, as a field (never twice)
            judged.decision,
            extra={
                "request_id": REQUEST_ID.get(),
                "decision": judged.decision,
                "summary": judged.summary,
                "score": judged.score,
                "judge_ms": round(judged.judge_seconds * 1e3, 3),
            },
        )

    def handler(self) -> grpc.GenericRpcHandler:  # type: ignore[type-arg]
        """The service's methods, bytes in and bytes out."""
        methods: dict[str, grpc.RpcMethodHandler[Any, Any]] = {
            "Judge": grpc.unary_unary_rpc_method_handler(self.Judge),
            "Analyze": grpc.unary_unary_rpc_method_handler(self.Analyze),
        }
        return grpc.method_handlers_generic_handler(SERVICE, methods)
