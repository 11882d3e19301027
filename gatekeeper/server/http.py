"""JSON over HTTP beside gRPC: the app, its middleware and the wire contract's endpoints.

``gatekeeper serve --http-port N`` serves, on the gRPC server's event loop and through the
same :class:`~gatekeeper.server.servicer.GatekeeperServicer` (so the same judge pool,
validation, limits, verdict counters and logs), the drop-in adapters of DESIGN.md:

========================================  ================================================
``GET /healthz``                          200 while the process serves (liveness)
``GET /readyz``                           200 when it takes calls, 503 while it shuts down
``GET /metrics``                          the service's Prometheus metrics (gRPC's too)
``POST /v1/judge``, ``POST /v1/analyze``  protobuf JSON mapping in and out; Argo Rollouts'
                                          ``web`` provider calls ``/v1/analyze``
``POST /flagger/...``                     Flagger's webhooks (:mod:`.flagger`)
``POST /judge``                           Kayenta's remote judge (:mod:`.kayenta_remote`)
========================================  ================================================

A Verdict answers 200 whatever its decision, except ERROR: 503 with the Verdict in the body.
Errors answer the HTTP column of :mod:`gatekeeper.server.errors`'s table with a JSON body
``{"error": {"code", "status", "message", "details"}}``, the ``google.rpc.Status`` of the
gRPC answer (``BadRequest`` field violations for bad input); a body over the limit
(``--max-message-bytes``) is 413 naming it. With ``--auth-token-file`` every route but the
three GET routes needs ``Authorization: Bearer <token>`` (401 otherwise); with
``--tls-cert`` the port serves HTTPS with gRPC's certificate (and client CA).

Extending: :func:`application` assembles the app from route sets, callables that add
routes to it and may read the :class:`Gateway` (``app[GATEWAY]``); pass more to
:func:`gatekeeper.server.app.start` as ``routes=``. Seeing every verdict (gRPC and HTTP):
the ``observer`` of :func:`gatekeeper.server.app.start`, a
:class:`~gatekeeper.server.verdicts.VerdictObserver`.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from aiohttp import web
from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import ValidationError

from gatekeeper import wire
from gatekeeper.api.v1 import gatekeeper_pb2 as pb
from gatekeeper.errors import FailedPrecondition, FieldViolation, GatekeeperError, InvalidArgument
from gatekeeper.server.auth import BearerTokenAuth
from gatekeeper.server.drain import Drain
from gatekeeper.server.errors import HTTP_STATUS, http_status, status_code, to_status
from gatekeeper.server.logs import REQUEST_ID, REQUEST_ID_KEY, request_id
from gatekeeper.server.metrics import ServiceMetrics
from gatekeeper.server.servicer import GatekeeperServicer

log = logging.getLogger("gatekeeper.server")
M = TypeVar("M", bound=Message)

OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
JSON = "application/json"
UNAUTHENTICATED = "missing or wrong bearer token: send the header 'Authorization: Bearer <token>'"
SHUTTING_DOWN = "the gatekeeper is shutting down; retry"


@dataclass(frozen=True, slots=True)
class Gateway:
    """What the HTTP routes share: the servicer, the metrics, the drain, auth and limits."""

    servicer: GatekeeperServicer
    metrics: ServiceMetrics
    drain: Drain
    auth: BearerTokenAuth | None
    max_body_bytes: int

    async def judge(self, request: pb.JudgeRequest | bytes) -> pb.Verdict:
        """Judge a request (or its binary encoding) through the servicer (pool, counters,
        logs, observer)."""
        data = request if isinstance(request, bytes) else request.SerializeToString()
        return pb.Verdict.FromString(await self.servicer.judge(data, time_remaining=None))

    async def analyze(self, request: pb.AnalyzeRequest) -> pb.Verdict:
        """Fetch and judge through the servicer."""
        return pb.Verdict.FromString(await self.servicer.analyze(request.SerializeToString()))


GATEWAY = web.AppKey("gateway", Gateway)
RouteSet = Callable[[web.Application], None]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error_response(error: BaseException) -> web.Response:
    """The JSON answer to ``error``: the HTTP status of the table, the ``google.rpc.Status``."""
    call_id = REQUEST_ID.get()
    if not isinstance(error, GatekeeperError):
        log.error("unexpected error", exc_info=error, extra={"request_id": call_id})
    body = json_format.MessageToDict(to_status(error, request_id=call_id))
    body["code"] = http_status(error)
    body["status"] = status_code(error).name
    return web.json_response({"error": body}, status=body["code"])


def _refusal(status: str, message: str) -> web.Response:
    code = next(http for grpc_code, http in HTTP_STATUS.items() if grpc_code.name == status)
    body = {"error": {"code": code, "status": status, "message": message}}
    return web.json_response(body, status=code)


def too_large(limit: int) -> web.Response:
    """413, naming the limit."""
    message = f"the body is larger than the limit of {limit} bytes (--max-message-bytes)"
    body = {"error": {"code": 413, "status": "RESOURCE_EXHAUSTED", "message": message}}
    return web.json_response(body, status=413)


def verdict_response(verdict: pb.Verdict, *, status: int | None = None) -> web.Response:
    """A Verdict in the protobuf JSON mapping; 200, or 503 for ERROR unless ``status``."""
    if status is None:
        status = 503 if verdict.decision == pb.DECISION_ERROR else 200
    return web.Response(text=wire.verdict_json(verdict), status=status, content_type=JSON)


def json_object(data: bytes, name: str) -> bytes:
    """``data`` if it is a JSON object (protobuf's parser would take ``[]`` for an empty one)."""
    if not data.lstrip().startswith(b"{"):
        raise InvalidArgument.single(
            "request", f"the body must be a JSON object: a {name} in the protobuf JSON mapping"
        )
    return data


def parse_json(data: bytes, message: M) -> M:
    """Decode ``data`` (protobuf's JSON mapping) into ``message``; bad JSON is bad input."""
    json_object(data, message.DESCRIPTOR.full_name)
    try:
        json_format.Parse(data, message)
    except (
        json_format.ParseError,
        DecodeError,
        UnicodeDecodeError,
        ValueError,
        RecursionError,
    ) as exc:
        name = message.DESCRIPTOR.full_name
        raise InvalidArgument.single(
            "request", f"not a {name} in the protobuf JSON mapping: {exc}"
        ) from None
    return message


def pydantic_violations(error: ValidationError) -> list[FieldViolation]:
    """A peer payload's validation errors as field violations (``metadata.start``, ...)."""
    found = []
    for item in error.errors():
        path = ""
        for part in item["loc"]:
            path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
        found.append(FieldViolation(path or "request", str(item["msg"])))
    return found


async def _guarded(request: web.Request, handler: Handler) -> web.StreamResponse:
    gateway = request.app[GATEWAY]
    if request.path not in OPEN_PATHS:
        if gateway.drain.draining:
            return _refusal("UNAVAILABLE", SHUTTING_DOWN)
        header = request.headers.get("Authorization", "")
        if gateway.auth is not None and not gateway.auth.authorized((("authorization", header),)):
            refused = _refusal("UNAUTHENTICATED", UNAUTHENTICATED)
            refused.headers["WWW-Authenticate"] = "Bearer"
            return refused
    try:
        return await handler(request)
    except web.HTTPRequestEntityTooLarge:
        return too_large(gateway.max_body_bytes)
    except web.HTTPException:
        raise
    except Exception as error:
        return error_response(error)


@web.middleware
async def observed(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Request id, auth, draining, errors as JSON, and the request counted and timed."""
    metrics = request.app[GATEWAY].metrics
    call_id = request_id([(REQUEST_ID_KEY, request.headers.get(REQUEST_ID_KEY, ""))])
    REQUEST_ID.set(call_id)
    resource = request.match_info.route.resource
    route = "unmatched" if resource is None else resource.canonical
    started = time.perf_counter()
    status = 500
    try:
        response = await _guarded(request, handler)
        status = response.status
        response.headers["X-Request-Id"] = call_id
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        elapsed = time.perf_counter() - started
        metrics.http_requests.labels(route=route, status=str(status)).inc()
        metrics.http_latency.labels(route=route).observe(elapsed)
        log.debug(
            "http %s %s: %d",
            request.method,
            request.path,
            status,
            extra={"route": route, "status": status, "ms": round(elapsed * 1e3, 3)},
        )


async def healthz(_request: web.Request) -> web.Response:
    """Liveness: the process serves."""
    return web.json_response({"status": "SERVING"})


async def readyz(request: web.Request) -> web.Response:
    """Readiness: 503 once shutting down, so that load balancers stop sending calls."""
    if request.app[GATEWAY].drain.draining:
        return web.json_response({"status": "NOT_SERVING"}, status=503)
    return web.json_response({"status": "SERVING"})


async def metrics(request: web.Request) -> web.Response:
    """The service's metrics in Prometheus' text format."""
    body = generate_latest(request.app[GATEWAY].metrics.registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def _binary_judge_request(body: bytes) -> bytes:
    """A JudgeRequest in the JSON mapping, re-encoded in the binary one for the judge pool."""
    json_object(body, pb.JudgeRequest.DESCRIPTOR.full_name)
    return wire.parse_judge_request(body, json=True).SerializeToString()


async def judge(request: web.Request) -> web.Response:
    """``POST /v1/judge``: a JudgeRequest in, a Verdict out.

    The JSON mapping is decoded in a thread: protobuf's JSON parser is Python, a few
    milliseconds per thousand values, and the event loop must keep answering meanwhile.
    """
    data = await asyncio.to_thread(_binary_judge_request, await request.read())
    return verdict_response(await request.app[GATEWAY].judge(data))


async def analyze(request: web.Request) -> web.Response:
    """``POST /v1/analyze``: an AnalyzeRequest in, a Verdict out (Argo's web provider)."""
    message = parse_json(await request.read(), pb.AnalyzeRequest())
    return verdict_response(await request.app[GATEWAY].analyze(message))


def routes(app: web.Application) -> None:
    """Health, metrics and the wire contract's two methods."""
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.router.add_post("/v1/judge", judge)
    app.router.add_post("/v1/analyze", analyze)


def application(gateway: Gateway, route_sets: Iterable[RouteSet]) -> web.Application:
    """The app: the middleware, the gateway (``app[GATEWAY]``) and every route set."""
    app = web.Application(middlewares=[observed], client_max_size=gateway.max_body_bytes)
    app[GATEWAY] = gateway
    for add in route_sets:
        add(app)
    return app


def ssl_context(
    *, cert: Path | None, key: Path | None, client_ca: Path | None
) -> ssl.SSLContext | None:
    """gRPC's TLS for HTTPS (the pairs were checked by the gRPC credentials); None: plain."""
    if cert is None or key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(cert, key)
        if client_ca is not None:
            context.load_verify_locations(client_ca)
            context.verify_mode = ssl.CERT_REQUIRED
    except (OSError, ssl.SSLError) as exc:
        raise FailedPrecondition(f"cannot load TLS files for HTTP: {exc}") from None
    return context


class HttpEndpoint:
    """The app served on ``host:port`` on the running event loop."""

    def __init__(self, runner: web.AppRunner, port: int) -> None:
        self._runner = runner
        self.port = port

    @classmethod
    async def start(
        cls,
        app: web.Application,
        *,
        host: str,
        port: int,
        tls: ssl.SSLContext | None,
        grace_seconds: float,
    ) -> HttpEndpoint:
        """Listen; ``port`` 0 picks a free one (see :attr:`port`)."""
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=grace_seconds)
        await runner.setup()
        site = web.TCPSite(runner, host, port, ssl_context=tls)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise FailedPrecondition(f"cannot listen on {host}:{port} for HTTP: {exc}") from None
        bound = runner.addresses[0][1]
        return cls(runner, int(bound))

    async def close(self) -> None:
        """Stop listening; requests in flight finish within the grace period."""
        await self._runner.cleanup()
