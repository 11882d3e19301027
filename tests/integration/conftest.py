"""Fixtures of the gRPC server tests: real servers on port 0, real stubs, a private CA."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest

from gatekeeper.api.v1 import gatekeeper_pb2_grpc as pb_grpc
from gatekeeper.server import app
from gatekeeper.server.dispatch import Judging
from tests.integration.grpc_server import Pki, ServeProcess, ServerThread, make_pki

StartServer = Callable[..., ServerThread]
StartProcess = Callable[..., ServeProcess]


@pytest.fixture(scope="module")
def grpc_server() -> Iterator[ServerThread]:
    """A plaintext server with a 2-worker pool and /metrics, shared by a module's tests."""
    server = ServerThread(app.ServerConfig(port=0, workers=2, metrics_port=0))
    yield server
    server.stop()


@pytest.fixture
def stub(grpc_server: ServerThread) -> Iterator[pb_grpc.GatekeeperStub]:
    """A real stub on a fresh channel to :func:`grpc_server`."""
    with grpc.insecure_channel(grpc_server.target) as channel:
        yield pb_grpc.GatekeeperStub(channel)


@pytest.fixture
def start_server() -> Iterator[StartServer]:
    """Start servers with a config of the test's own (port 0); stopped after the test."""
    started: list[ServerThread] = []

    def start(*, judging: Judging | None = None, **config: object) -> ServerThread:
        options: dict[str, object] = {"port": 0, "workers": 1, **config}
        server = ServerThread(app.ServerConfig(**options), judging=judging)  # type: ignore[arg-type]
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def serve_process() -> Iterator[StartProcess]:
    """Start ``gatekeeper serve --port 0`` subprocesses; killed after the test if still up."""
    started: list[ServeProcess] = []

    def start(*args: str) -> ServeProcess:
        process = ServeProcess(*args)
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """Certificates of a private CA (and of a rogue one) for TLS and mutual TLS."""
    return make_pki(Path(tmp_path_factory.mktemp("pki")))
