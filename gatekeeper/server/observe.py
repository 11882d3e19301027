"""Per-call observability: request id, calls by method and code, latency, in-flight calls.

An interceptor wraps every unary-unary handler (Judge, Analyze, health Check), so that
calls rejected by authentication are counted too.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeAlias

import grpc
import grpc.aio

from gatekeeper.server.logs import REQUEST_ID, request_id
from gatekeeper.server.metrics import ServiceMetrics

log = logging.getLogger("gatekeeper.server")

Context = grpc.aio.ServicerContext[Any, Any]
Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"
Continuation = Callable[[grpc.HandlerCallDetails], Awaitable[Handler]]


def _code(context: Context) -> str:
    code = context.code()
    return code.name if isinstance(code, grpc.StatusCode) else "UNKNOWN"


class ObservingInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Sets the call's request id, counts and times every unary call.

    Parameters
    ----------
    metrics : ServiceMetrics
        Where to count.
    """

    def __init__(self, metrics: ServiceMetrics) -> None:
        self._metrics = metrics
        self._arrived: dict[str, int] = {}

    def arrived(self, method: str) -> int:
        """Calls of ``method`` whose headers arrived and whose handler has not finished.

        Counted from the interception, before the request message is read: while one
        call is judged inline, the calls queued behind it are already counted.
        """
        return self._arrived.get(method, 0)

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> Handler:
        """Wrap the unary-unary handler of the call; others pass through."""
        handler = await continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        method = handler_call_details.method.rsplit("/", 1)[-1]
        call_id = request_id(handler_call_details.invocation_metadata)
        self._arrived[method] = self._arrived.get(method, 0) + 1
        return grpc.unary_unary_rpc_method_handler(
            self._wrap(handler.unary_unary, method, call_id),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    def _wrap(
        self, behavior: Callable[..., Any], method: str, call_id: str
    ) -> Callable[[Any, Context], Awaitable[Any]]:
        metrics = self._metrics

        async def observed(request: Any, context: Context) -> Any:
            REQUEST_ID.set(call_id)
            start = time.perf_counter()
            metrics.in_flight.labels(method=method).inc()
            log.debug("call %s started", method, extra={"method": method})
            code = "UNKNOWN"
            try:
                response = await behavior(request, context)
                code = "OK"
                return response
            except asyncio.CancelledError:
                code = "CANCELLED"
                raise
            except Exception:
                code = _code(context)
                raise
            finally:
                self._arrived[method] -= 1
                metrics.in_flight.labels(method=method).dec()
                metrics.calls.labels(method=method, code=code).inc()
                elapsed = time.perf_counter() - start
                metrics.latency.labels(method=method).observe(elapsed)
                log.debug(
                    "call %s finished: %s",
                    method,
                    code,
                    extra={"method": method, "code": code, "ms": round(elapsed * 1e3, 3)},
                )

        return observed
