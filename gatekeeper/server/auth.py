"""Optional bearer-token authentication: ``authorization: Bearer <token>`` metadata.

Every method needs the token except health checking, which load balancers and kubelets
call without credentials. Tokens are compared in constant time.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeAlias

import grpc
import grpc.aio
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from gatekeeper.errors import FailedPrecondition
from gatekeeper.server.errors import DOMAIN, refusing

OPEN_PREFIXES = ("/grpc.health.v1.Health/",)
MESSAGE = "missing or wrong bearer token: send metadata 'authorization: Bearer <token>'"

Context = grpc.aio.ServicerContext[Any, Any]
Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"
Continuation = Callable[[grpc.HandlerCallDetails], Awaitable[Handler]]


def read_token(path: Path) -> bytes:
    """The token in ``path`` (surrounding whitespace removed); it must not be empty."""
    try:
        token = path.read_bytes().strip()
    except OSError as exc:
        raise FailedPrecondition(f"cannot read the auth token file {path}: {exc}") from None
    if not token or b"\n" in token:
        raise FailedPrecondition(f"the auth token file {path} must hold one non-empty line")
    return token


def _status() -> grpc.Status:
    status = status_pb2.Status(code=code_pb2.UNAUTHENTICATED, message=MESSAGE)
    status.details.add().Pack(error_details_pb2.ErrorInfo(reason="UNAUTHENTICATED", domain=DOMAIN))
    return rpc_status.to_status(status)


class BearerTokenAuth(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Rejects calls without the right bearer token with UNAUTHENTICATED.

    Parameters
    ----------
    token : bytes
        The shared secret.
    """

    def __init__(self, token: bytes) -> None:
        self._token = token

    def authorized(self, metadata: grpc.Metadata | None) -> bool:
        """Whether the call's metadata carries the right token."""
        for key, value in metadata or ():
            if key == "authorization":
                text = value if isinstance(value, str) else value.decode("latin-1")
                scheme, _, given = text.partition(" ")
                same = hmac.compare_digest(given.strip().encode(), self._token)
                return scheme.lower() == "bearer" and same
        return False

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> Handler:
        """Pass authorized and open calls on; answer the others UNAUTHENTICATED."""
        handler = await continuation(handler_call_details)
        if handler is None or handler_call_details.method.startswith(OPEN_PREFIXES):
            return handler
        if self.authorized(handler_call_details.invocation_metadata):
            return handler
        return refusing(handler, _status())
