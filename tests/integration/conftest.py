"""Fixtures of the gRPC server tests: real servers on port 0, real stubs, a private CA."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest

from gatekeeper.api.v1 import gatekeeper_pb2_grpc as pb_grpc
from gatekeeper.server import app
from gatekeeper.server.dispatch import Judging
from tests.integration import prom
from tests.integration.grpc_server import Pki, ServeProcess, ServerThread, make_pki
from tests.integration.prom import PrometheusServer

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


#: Side labels of the adapters' Prometheus: Argo's pod-template hashes and Flagger's pod names.
ADAPTER_SIDES = {
    "baseline": {
        "rollouts_pod_template_hash": "5b6c7d8f9",
        "pod": "podinfo-primary-5b6c7d8f9-abcde",
    },
    "canary": {"rollouts_pod_template_hash": "7f8e9d6c5", "pod": "podinfo-7f8e9d6c5-fghij"},
}
ADAPTER_SPEC = """provider: generic
service: {service}
namespace: ns-generic
interval: 30s
metrics:
  - {{name: error-rate, template: request-success-rate, critical: true}}
  - {{name: latency-p99, template: request-duration, critical: true}}
"""


@pytest.fixture(scope="session")
def adapter_prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    """A Prometheus with the generic provider's scenarios labelled as Argo and Flagger see them."""
    folder = tmp_path_factory.mktemp("adapter-prometheus")
    end = (time.time() // 60) * 60 - 120
    start = prom.backfill(folder, end=end, providers=("generic",), sides=ADAPTER_SIDES)
    server = prom.start_prometheus(folder, start=start, end=end)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def adapter_specs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Named specs, one per scenario (healthy, errors, tail, quiet)."""
    folder = tmp_path_factory.mktemp("adapter-specs")
    for service in prom.SCENARIOS:
        (folder / f"{service}.yaml").write_text(ADAPTER_SPEC.format(service=service))
    return folder
