"""A real Prometheus for tests: Debian's ``prometheus``, backfilled with promtool, on 127.0.0.1.

History is written as OpenMetrics by :mod:`gatekeeper.simulate` (seconds timestamps, ending
before now, ``# EOF``), turned into blocks with ``promtool tsdb create-blocks-from
openmetrics``, and served by a Prometheus started on a free port with a temporary TSDB.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from gatekeeper import simulate

PROVIDERS = ("generic", "istio", "linkerd", "nginx", "gateway-api")
STEP = 15.0
WINDOW = 1800.0

# 200 rps with the canary at 25 %: enough for a healthy canary's bounds to settle.
BUSY = simulate.Scenario(rps=200.0, canary_weight=0.25)
SCENARIOS = {
    "healthy": BUSY,
    "errors": replace(BUSY, fault=simulate.Fault(simulate.FaultKind.ERRORS, 3.0)),
    "tail": replace(BUSY, fault=simulate.Fault(simulate.FaultKind.TAIL, 6.0, share=0.03)),
    "quiet": replace(BUSY, canary_weight=0.0002),  # 0.04 canary requests/s
}
SIDES = {"baseline": {"track": "baseline"}, "canary": {"track": "canary"}}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class PrometheusServer:
    """A running Prometheus and the time range its backfilled data covers."""

    url: str
    process: subprocess.Popen[bytes]
    start: float
    end: float
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    @property
    def running(self) -> bool:
        return self.process.poll() is None


def binaries() -> tuple[str, str]:
    prometheus, promtool = shutil.which("prometheus"), shutil.which("promtool")
    if not prometheus or not promtool:
        pytest.fail(
            "Debian's prometheus is not installed: `make test` installs it "
            "(apt-get install --no-install-recommends prometheus)"
        )
    return prometheus, promtool


def backfill(
    folder: Path,
    *,
    end: float,
    providers: tuple[str, ...] = PROVIDERS,
    sides: dict[str, dict[str, str]] = SIDES,
) -> float:
    """Write the providers' scenarios as blocks into ``folder``; returns the data's start.

    ``sides`` are the labels that select each side (``track`` by default).
    """
    start = end - WINDOW
    lines: list[tuple[str, str]] = []
    for index, provider in enumerate(providers):
        for number, (service, scenario) in enumerate(SCENARIOS.items()):
            traffic = simulate.simulate(
                replace(scenario, seed=1000 * index + number, seconds=WINDOW, step_seconds=STEP)
            )
            names = simulate.provider_names(provider, service=service, namespace=f"ns-{provider}")
            lines += simulate.openmetrics_lines(
                traffic, names=names, side_labels=sides, start=start
            )
    source = folder / "history.om"
    source.write_text(simulate.openmetrics(lines))
    _, promtool = binaries()
    subprocess.run(
        [promtool, "tsdb", "create-blocks-from", "openmetrics", str(source), str(folder / "data")],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return start


def start_prometheus(folder: Path, *, start: float, end: float) -> PrometheusServer:
    prometheus, _ = binaries()
    config = folder / "prometheus.yml"
    config.write_text("global:\n  scrape_interval: 15s\nscrape_configs: []\n")
    port = free_port()
    log = folder / "prometheus.log"
    process = subprocess.Popen(
        [
            prometheus,
            f"--config.file={config}",
            f"--storage.tsdb.path={folder / 'data'}",
            "--storage.tsdb.retention.time=30d",
            f"--web.listen-address=127.0.0.1:{port}",
            "--web.enable-remote-write-receiver",
        ],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    server = PrometheusServer(f"http://127.0.0.1:{port}", process, start, end, log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if not server.running:
            raise RuntimeError(f"prometheus exited: {log.read_text()[-2000:]}")
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(f"{server.url}/-/ready", timeout=2) as answer,
        ):
            if answer.status == 200:
                return server
        time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"prometheus not ready in 60 s: {log.read_text()[-2000:]}")
