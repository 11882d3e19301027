"""Server lifecycle: build, start, serve until SIGTERM/SIGINT, shut down gracefully.

Shutdown: health checks turn NOT_SERVING, new calls are refused with UNAVAILABLE, calls
in flight get ``grace_seconds`` to finish (then they are cancelled), then the judge pool
stops.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import grpc
import grpc.aio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection

from gatekeeper.engine import DataSource, PromQLData
from gatekeeper.errors import FailedPrecondition
from gatekeeper.limits import DEFAULT_MAX_METRICS
from gatekeeper.server import flagger, kayenta_remote
from gatekeeper.server import http as http_routes
from gatekeeper.server.analysis import (
    DEFAULT_MAX_POINTS,
    DEFAULT_MAX_QUERIES,
    DEFAULT_MAX_SPEC_METRICS,
    DEFAULT_MAX_WINDOW_SECONDS,
    AnalysisService,
    load_spec_dir,
)
from gatekeeper.server.auth import BearerTokenAuth, read_token
from gatekeeper.server.dispatch import DEFAULT_INLINE_MAX_POINTS, Judging
from gatekeeper.server.drain import Drain
from gatekeeper.server.http import Gateway, HttpEndpoint, RouteSet, application, ssl_context
from gatekeeper.server.metrics import MetricsEndpoint, ServiceMetrics
from gatekeeper.server.observe import ObservingInterceptor
from gatekeeper.server.servicer import SERVICE, GatekeeperServicer
from gatekeeper.server.verdict_pages import Recorder, route_set
from gatekeeper.server.verdicts import VerdictObserver
from gatekeeper.sources.prometheus import PrometheusOptions, PrometheusSource
from gatekeeper.ui import store as ui_store
from gatekeeper.ui.store import VerdictStore

log = logging.getLogger("gatekeeper.server")
T = TypeVar("T")

DEFAULT_PORT = 50051
DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024
DEFAULT_GRACE_SECONDS = 10.0
HEALTH_SERVICE = "grpc.health.v1.Health"
DEFAULT_UI_VERDICTS = ui_store.DEFAULT_LIMIT
DEFAULT_UI_MAX_BYTES = ui_store.DEFAULT_MAX_BYTES
#: The HTTP adapters' route sets (DESIGN.md, "Drop-in adapters").
ADAPTERS: tuple[RouteSet, ...] = (http_routes.routes, flagger.routes, kayenta_remote.routes)


def default_workers() -> int:
    """One pool worker per CPU this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerConfig:
    """Everything ``gatekeeper serve`` is told on its command line."""

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    grace_seconds: float = DEFAULT_GRACE_SECONDS
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    workers: int | None = None
    inline_max_points: int = DEFAULT_INLINE_MAX_POINTS
    max_metrics: int = DEFAULT_MAX_METRICS
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_client_ca: Path | None = None
    auth_token_file: Path | None = None
    metrics_port: int | None = None
    http_port: int | None = None
    prometheus_url: str | None = None
    prometheus: PrometheusOptions = field(default_factory=PrometheusOptions)
    spec_dir: Path | None = None
    allow_custom_queries: bool = False
    max_points: int = DEFAULT_MAX_POINTS
    max_window_seconds: float = DEFAULT_MAX_WINDOW_SECONDS
    max_spec_metrics: int = DEFAULT_MAX_SPEC_METRICS
    max_queries: int = DEFAULT_MAX_QUERIES
    #: Verdicts kept for the pages (``/ui/`` on the HTTP port); 0 keeps none and serves none.
    ui_verdicts: int = DEFAULT_UI_VERDICTS
    ui_max_bytes: int = DEFAULT_UI_MAX_BYTES


def verdict_store(config: ServerConfig) -> VerdictStore | None:
    """The pages' store of recent verdicts, when there are pages (an HTTP port) to show them."""
    if config.http_port is None or config.ui_verdicts <= 0:
        return None
    return VerdictStore(config.ui_verdicts, max_bytes=config.ui_max_bytes)


def analysis_service(
    config: ServerConfig, data: DataSource | None, recorder: Recorder | None = None
) -> AnalysisService:
    """Analyze's source, named specs and limits; ``data`` overrides ``--prometheus``."""
    specs = {} if config.spec_dir is None else load_spec_dir(config.spec_dir)
    promql = None
    if config.prometheus_url is not None:
        promql = PrometheusSource(config.prometheus_url, config.prometheus)
    if data is None and promql is not None:
        data = PromQLData(promql)
    return AnalysisService(
        data=data,
        promql=promql,
        specs=specs,
        allow_custom_queries=config.allow_custom_queries,
        max_points=config.max_points,
        max_window_seconds=config.max_window_seconds,
        max_spec_metrics=config.max_spec_metrics,
        max_queries=config.max_queries,
        on_analyzed=None if recorder is None else recorder.analyzed,
    )


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise FailedPrecondition(f"cannot read the {what} {path}: {exc}") from None


def credentials(config: ServerConfig) -> grpc.ServerCredentials | None:
    """TLS credentials (mutual TLS with a client CA), or None for plaintext."""
    if config.tls_cert is None and config.tls_key is None:
        if config.tls_client_ca is not None:
            raise FailedPrecondition("--tls-client-ca needs --tls-cert and --tls-key")
        return None
    if config.tls_cert is None or config.tls_key is None:
        raise FailedPrecondition("TLS needs both --tls-cert and --tls-key")
    pair = (_read(config.tls_key, "TLS key"), _read(config.tls_cert, "TLS certificate"))
    ca = None if config.tls_client_ca is None else _read(config.tls_client_ca, "client CA")
    return grpc.ssl_server_credentials(
        [pair], root_certificates=ca, require_client_auth=ca is not None
    )


class RunningServer:
    """A started server: its ports, its parts, and how to stop it."""

    def __init__(
        self,
        *,
        config: ServerConfig,
        server: grpc.aio.Server,
        port: int,
        judging: Judging,
        metrics: ServiceMetrics,
        health: HealthServicer,
        drain: Drain,
        endpoint: MetricsEndpoint | None,
        http: HttpEndpoint | None = None,
        store: VerdictStore | None = None,
    ) -> None:
        self.store = store
        self.config = config
        self.drain = drain
        self.server = server
        self.port = port
        self.judging = judging
        self.metrics = metrics
        self.health = health
        self.endpoint = endpoint
        self.http = http

    @property
    def target(self) -> str:
        """``host:port`` for clients."""
        return f"{self.config.host}:{self.port}"

    @property
    def metrics_port(self) -> int | None:
        """The port of ``/metrics``, if served."""
        return None if self.endpoint is None else self.endpoint.port

    @property
    def http_port(self) -> int | None:
        """The port of the HTTP adapters, if served."""
        return None if self.http is None else self.http.port

    async def stop(self, grace: float | None = None) -> None:
        """Refuse new calls, let calls in flight finish within ``grace`` seconds, stop."""
        grace = self.config.grace_seconds if grace is None else grace
        deadline = time.monotonic() + grace
        await self.health.enter_graceful_shutdown()
        await self.drain.drain(grace)
        if self.http is not None:
            await self.http.close()
        await self.server.stop(max(0.0, deadline - time.monotonic()))
        await self.judging.close(max(0.0, deadline - time.monotonic()))
        if self.endpoint is not None:
            self.endpoint.close()


class HealthFollower:
    """Health follows the judge pool: NOT_SERVING while no judge worker is alive (large
    Judge calls cannot be served then), SERVING again once a replacement is ready.

    Before the server has started, and once it shuts down (the health servicer then
    ignores updates), the pool's changes do not matter.
    """

    def __init__(self, health: HealthServicer) -> None:
        self._health = health
        self._tasks: set[asyncio.Task[None]] = set()
        self.started = False

    def changed(self, live: int) -> None:
        """The pool has ``live`` workers now."""
        if not self.started:
            return
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if live
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        if not live:
            log.error("no judge worker is alive: health is NOT_SERVING until one is replaced")
        task = asyncio.get_running_loop().create_task(self._set(status))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _set(self, status: health_pb2.HealthCheckResponse.ServingStatus.ValueType) -> None:
        for name in ("", SERVICE):
            await self._health.set(name, status)


async def start(
    config: ServerConfig,
    *,
    judging: Judging | None = None,
    data: DataSource | None = None,
    observer: VerdictObserver | None = None,
    routes: Sequence[RouteSet] = (),
) -> RunningServer:
    """Build and start a server; the judge pool is warm when this returns.

    Parameters
    ----------
    config : ServerConfig
        Address, limits, security, observability and the metric source.
    judging : Judging, optional
        Where judgements run; a pool of ``config.workers`` processes by default.
    data : DataSource, optional
        Analyze's data source, in place of ``config.prometheus_url`` (recorded or simulated
        data, for tests and the demo).

    Returns
    -------
    RunningServer
        The server, serving.
    """
    creds = credentials(config)
    store = verdict_store(config)
    recorder = None
    if store is not None:
        recorder = Recorder(store, also=observer)
        observer = recorder
        routes = (*routes, route_set(store, prometheus=config.prometheus_url))
    analysis = analysis_service(config, data, recorder)
    token = None if config.auth_token_file is None else read_token(config.auth_token_file)
    metrics = ServiceMetrics()
    observing = ObservingInterceptor(metrics)
    health = HealthServicer()
    follower = HealthFollower(health)
    if judging is None:
        judging = Judging(
            workers=default_workers() if config.workers is None else config.workers,
            inline_max_points=config.inline_max_points,
            max_metrics=config.max_metrics,
            contention=partial(observing.arrived, "Judge"),
            on_abandoned=metrics.abandon,
            on_dispatched=metrics.dispatched,
            on_capacity=follower.changed,
        )
    drain = Drain()
    interceptors: list[grpc.aio.ServerInterceptor] = [observing, drain]  # type: ignore[type-arg]
    if token is not None:
        interceptors.append(BearerTokenAuth(token))
    server = grpc.aio.server(
        interceptors=interceptors,
        options=[
            ("grpc.max_receive_message_length", config.max_message_bytes),
            ("grpc.so_reuseport", 0),
        ],
    )
    servicer = GatekeeperServicer(
        judging=judging, metrics=metrics, analysis=analysis, observer=observer
    )
    server.add_generic_rpc_handlers((servicer.handler(),))
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    reflection.enable_server_reflection((SERVICE, HEALTH_SERVICE, reflection.SERVICE_NAME), server)
    address = f"{config.host}:{config.port}"
    try:
        port = (
            server.add_insecure_port(address)
            if creds is None
            else server.add_secure_port(address, creds)
        )
    except RuntimeError as exc:
        raise FailedPrecondition(f"cannot listen on {address}: {exc}") from None
    await judging.start()
    endpoint = None
    if config.metrics_port is not None:
        endpoint = MetricsEndpoint(metrics, host=config.host, port=config.metrics_port)
    await server.start()
    http = None
    if config.http_port is not None:
        auth = None if token is None else BearerTokenAuth(token)
        gateway = Gateway(servicer, metrics, drain, auth, config.max_message_bytes)
        http = await start_http(config, gateway, routes)
    for name in ("", SERVICE):
        await health.set(name, health_pb2.HealthCheckResponse.SERVING)
    follower.started = True
    return RunningServer(
        config=config,
        server=server,
        port=port,
        judging=judging,
        metrics=metrics,
        health=health,
        drain=drain,
        endpoint=endpoint,
        http=http,
        store=store,
    )


async def start_http(
    config: ServerConfig, gateway: Gateway, routes: Sequence[RouteSet] = ()
) -> HttpEndpoint:
    """Serve the adapters and ``routes`` on ``config.http_port`` with gRPC's TLS."""
    tls = ssl_context(cert=config.tls_cert, key=config.tls_key, client_ca=config.tls_client_ca)
    return await HttpEndpoint.start(
        application(gateway, (*ADAPTERS, *routes)),
        host=config.host,
        port=config.http_port or 0,
        tls=tls,
        grace_seconds=config.grace_seconds,
    )


async def serve(config: ServerConfig, *, announce: Callable[[str], None] = print) -> None:
    """Serve until SIGTERM or SIGINT, then shut down gracefully.

    Parameters
    ----------
    config : ServerConfig
        What to serve.
    announce : callable
        Told the address once the server listens (stdout by default: ``gatekeeper serve
        --port 0`` prints the port it got).
    """
    running = await start(config)
    announce(f"gatekeeper serving on {running.target}")
    if running.metrics_port is not None:
        announce(f"metrics on http://{config.host}:{running.metrics_port}/metrics")
    if running.http_port is not None:
        scheme = "http" if config.tls_cert is None else "https"
        announce(f"http adapters on {scheme}://{config.host}:{running.http_port}")
        if running.store is not None:
            announce(f"verdict pages on {scheme}://{config.host}:{running.http_port}/ui/")
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    log.info("serving", extra={"address": running.target, "workers": running.judging.workers})
    await stopping.wait()
    log.info(
        "shutting down: finishing calls in flight", extra={"grace_seconds": config.grace_seconds}
    )
    await running.stop()
    log.info("stopped")


class ServerThread:
    """A server started in-process on its own event loop in a thread (demo and tests).

    Parameters
    ----------
    config : ServerConfig
        Use ``port=0``; :attr:`target` tells the port bound.
    judging : Judging, optional
        Where judgements run.
    data : DataSource, optional
        Analyze's data source (see :func:`start`).
    observer : VerdictObserver, optional
        Told every verdict (see :func:`start`).
    routes : sequence of RouteSet
        More HTTP routes (see :func:`start`).
    """

    START_TIMEOUT = 60.0

    def __init__(
        self,
        config: ServerConfig,
        *,
        judging: Judging | None = None,
        data: DataSource | None = None,
        observer: VerdictObserver | None = None,
        routes: Sequence[RouteSet] = (),
    ) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.running = self.call(
            start(config, judging=judging, data=data, observer=observer, routes=routes)
        )
        self.stopped = False

    def call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run ``coroutine`` on the server's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(self.START_TIMEOUT)

    @property
    def target(self) -> str:
        """``host:port``."""
        return self.running.target

    @property
    def http_url(self) -> str:
        """``http://host:port`` of the HTTP adapters (the server needs ``http_port``)."""
        assert self.running.http_port is not None, "started without http_port"
        return f"http://{self.running.config.host}:{self.running.http_port}"

    def stop(self, grace: float = 0.0) -> None:
        """Stop the server and its loop (idempotent)."""
        if self.stopped:
            return
        self.stopped = True
        self.call(self.running.stop(grace))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(self.START_TIMEOUT)
        self.loop.close()
