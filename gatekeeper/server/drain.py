"""Draining for graceful shutdown: refuse new calls with UNAVAILABLE, wait for the rest.

gRPC's own ``server.stop(grace)`` cancels calls that arrive on open connections during
the grace period (CANCELLED, which callers do not retry). Draining first answers them
UNAVAILABLE, the code that tells a client to retry (elsewhere), while the calls already
accepted finish. Health checks stay open: they report NOT_SERVING meanwhile.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeAlias

import grpc
import grpc.aio
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from gatekeeper.server.errors import DOMAIN, refusing

OPEN_PREFIXES = ("/grpc.health.v1.Health/",)
MESSAGE = "the gatekeeper is shutting down; retry"

Context = grpc.aio.ServicerContext[Any, Any]
Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"
Continuation = Callable[[grpc.HandlerCallDetails], Awaitable[Handler]]


def _status() -> grpc.Status:
    status = status_pb2.Status(code=code_pb2.UNAVAILABLE, message=MESSAGE)
    status.details.add().Pack(error_details_pb2.ErrorInfo(reason="SHUTTING_DOWN", domain=DOMAIN))
    return rpc_status.to_status(status)


class Drain(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Counts unary calls in flight; once draining, refuses new calls."""

    def __init__(self) -> None:
        self.draining = False
        self._active = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def active(self) -> int:
        """Unary calls being served."""
        return self._active

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> Handler:
        """Refuse when draining; count unary calls otherwise."""
        handler = await continuation(handler_call_details)
        if handler is None or handler_call_details.method.startswith(OPEN_PREFIXES):
            return handler
        if self.draining:
            return refusing(handler, _status())
        if handler.unary_unary is None:
            return handler
        return grpc.unary_unary_rpc_method_handler(
            self._counted(handler.unary_unary),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    def _counted(self, behavior: Callable[..., Any]) -> Callable[[Any, Context], Awaitable[Any]]:
        async def counted(request: Any, context: Context) -> Any:
            self._active += 1
            self._idle.clear()
            try:
                return await behavior(request, context)
            finally:
                self._active -= 1
                if self._active == 0:
                    self._idle.set()

        return counted

    async def drain(self, grace: float) -> None:
        """Refuse new calls; return when none is in flight or after ``grace`` seconds."""
        self.draining = True
        try:
            await asyncio.wait_for(self._idle.wait(), timeout=grace)
        except TimeoutError:
            return
