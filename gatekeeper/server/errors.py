"""Domain errors -> gRPC status (and HTTP status), per DESIGN.md's "Errors" table.

| error                                        | status              | HTTP | details          |
|----------------------------------------------|---------------------|------|------------------|
| :class:`~gatekeeper.errors.InvalidArgument`  | INVALID_ARGUMENT    | 400  | BadRequest, Info |
| :class:`~gatekeeper.errors.FailedPrecondition` | FAILED_PRECONDITION | 400 | ErrorInfo       |
| other :class:`~gatekeeper.errors.PermanentError` | FAILED_PRECONDITION | 400 | ErrorInfo     |
| :class:`~gatekeeper.errors.DeadlineExceeded` | DEADLINE_EXCEEDED   | 504  | ErrorInfo        |
| :class:`~gatekeeper.errors.Unavailable`, other temporary | UNAVAILABLE | 503 | ErrorInfo    |
| anything else                                | INTERNAL            | 500  | ErrorInfo; generic |

The HTTP column (the HTTP adapters, :mod:`gatekeeper.server.http`) follows google.rpc's
own code-to-HTTP mapping; a permanent error is a 4xx (not retried), a temporary one a 5xx.

Each status carries ``google.rpc.Status`` details in the ``grpc-status-details-bin``
trailer (grpcio-status). Details are bounded: the trailer must stay well inside gRPC's
metadata limit (8 KiB by default) however many violations a request has, or the client
would see a transport error instead of the answer.
"""

from __future__ import annotations

from typing import Any, NoReturn

import grpc
import grpc.aio
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

from gatekeeper.errors import (
    DeadlineExceeded,
    FailedPrecondition,
    GatekeeperError,
    InvalidArgument,
    PermanentError,
    TemporaryError,
    Unavailable,
)

DOMAIN = "gatekeeper.dev"
INTERNAL_REASON = "INTERNAL"
MAX_MESSAGE_CHARS = 1000
MAX_DESCRIPTION_CHARS = 300
MAX_DETAILS_BYTES = 3000

_CODES: tuple[tuple[type[GatekeeperError], grpc.StatusCode], ...] = (
    (InvalidArgument, grpc.StatusCode.INVALID_ARGUMENT),
    (FailedPrecondition, grpc.StatusCode.FAILED_PRECONDITION),
    (DeadlineExceeded, grpc.StatusCode.DEADLINE_EXCEEDED),
    (Unavailable, grpc.StatusCode.UNAVAILABLE),
    (PermanentError, grpc.StatusCode.FAILED_PRECONDITION),
    (TemporaryError, grpc.StatusCode.UNAVAILABLE),
)


#: The HTTP status of each code the table gives (and of UNAUTHENTICATED, for the HTTP auth).
HTTP_STATUS: dict[grpc.StatusCode, int] = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.INTERNAL: 500,
}


def http_status(error: BaseException) -> int:
    """The HTTP status answering ``error`` (the table's HTTP column)."""
    return HTTP_STATUS[status_code(error)]


def status_code(error: BaseException) -> grpc.StatusCode:
    """The status code of an error (INTERNAL for anything not of the domain tree)."""
    for kind, code in _CODES:
        if isinstance(error, kind):
            return code
    return grpc.StatusCode.INTERNAL


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _pack(message: object) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)  # type: ignore[arg-type]
    return packed


def _bad_request(error: InvalidArgument) -> error_details_pb2.BadRequest:
    """The violations, as many as fit in the details budget, then a count of the rest."""
    bad = error_details_pb2.BadRequest()
    for index, violation in enumerate(error.violations):
        entry = bad.field_violations.add(
            field=_clip(violation.field, MAX_DESCRIPTION_CHARS),
            description=_clip(violation.description, MAX_DESCRIPTION_CHARS),
        )
        if bad.ByteSize() > MAX_DETAILS_BYTES:
            bad.field_violations.remove(entry)
            rest = len(error.violations) - index
            bad.field_violations.add(field="request", description=f"... and {rest} more")
            break
    return bad


def to_status(error: BaseException, *, request_id: str) -> status_pb2.Status:
    """The ``google.rpc.Status`` answering ``error``.

    Parameters
    ----------
    error : BaseException
        What the call raised.
    request_id : str
        The call's request id; named in INTERNAL messages so that the log entry with the
        traceback can be found.

    Returns
    -------
    google.rpc.status_pb2.Status
        Code, message (bounded) and details: ``ErrorInfo`` always, ``BadRequest`` for
        INVALID_ARGUMENT.
    """
    code = status_code(error)
    if isinstance(error, GatekeeperError):
        message, reason = str(error) or error.reason, error.reason
    else:
        message = f"internal error; the server log has the details (request id {request_id})"
        reason = INTERNAL_REASON
    status = status_pb2.Status(
        code=getattr(code_pb2, code.name), message=_clip(message, MAX_MESSAGE_CHARS)
    )
    if isinstance(error, InvalidArgument):
        status.details.append(_pack(_bad_request(error)))
    info = error_details_pb2.ErrorInfo(
        reason=reason, domain=DOMAIN, metadata={"request_id": request_id}
    )
    status.details.append(_pack(info))
    return status


def refusing(
    handler: grpc.RpcMethodHandler[Any, Any], status: grpc.Status
) -> grpc.RpcMethodHandler[Any, Any]:
    """A handler of the same shape as ``handler`` that answers ``status`` unread."""

    async def refuse(_request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> NoReturn:
        await context.abort(status.code, status.details, status.trailing_metadata)

    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(refuse)
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(refuse)
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(refuse)
    return grpc.unary_unary_rpc_method_handler(refuse)
