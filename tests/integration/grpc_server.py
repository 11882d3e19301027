"""Real gatekeeper gRPC servers for tests: in-process (own event loop thread) or a subprocess.

Also seeded requests and the certificates of a private CA.
"""

from __future__ import annotations

import datetime
import ipaddress
import queue
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from gatekeeper import engine, wire
from gatekeeper.api.v1 import gatekeeper_pb2 as pb
from gatekeeper.server import app

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 60.0


ServerThread = app.ServerThread  # the in-process server, shared with the demo


class ServeProcess:
    """``gatekeeper serve --port 0`` as a subprocess; its stderr log lines are queued.

    Parameters
    ----------
    args : str
        Extra command-line flags.
    """

    def __init__(self, *args: str) -> None:
        command = [sys.executable, "-m", "gatekeeper.cli", "serve", "--port", "0", *args]
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self._stderr = threading.Thread(target=self._drain, daemon=True)
        self._stderr.start()
        assert self.process.stdout is not None
        first = self.process.stdout.readline()
        match = re.search(r"serving on ([\d.]+):(\d+)", first)
        if match is None:
            self.process.kill()
            raise RuntimeError(f"server did not start: {first!r}")
        self.port = int(match.group(2))
        self.target = f"{match.group(1)}:{self.port}"

    def _drain(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.put(line)

    def wait_for_log(self, predicate: Callable[[str], bool], *, timeout: float = 60.0) -> str:
        """Block until a log line satisfies ``predicate``; return it."""
        while True:
            line = self.lines.get(timeout=timeout)
            if predicate(line):
                return line

    def stop(self) -> int:
        """Kill the server if it still runs; its exit code."""
        if self.process.poll() is None:
            self.process.kill()
        return self.process.wait(timeout=START_TIMEOUT)


def wait_until(condition: Callable[[], bool], *, timeout: float = 60.0) -> None:
    """Poll ``condition`` (for state another process or thread owns) until it holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not reached")
        time.sleep(0.005)


def judge_request(
    *,
    kind: str = "values",
    metrics: int = 10,
    points: int = 60,
    seed: int = 0,
    shift: float = 0.0,
) -> pb.JudgeRequest:
    """A seeded request: ``metrics`` metrics of ``points`` points per side.

    ``kind`` is ``values`` (log-normal latencies; the canary's scaled by ``exp(shift)``)
    or ``ratio`` (errors of 1,000 requests per interval, 1 % error rate; the canary's
    rate times ``1 + shift``).
    """
    rng = np.random.default_rng(seed)
    request = pb.JudgeRequest(interval_seconds=60.0)
    for index in range(metrics):
        metric = request.metrics.add()
        metric.config.name = f"{kind}-{index}"
        if kind == "values":
            metric.config.kind = pb.METRIC_KIND_VALUES
            metric.baseline.values.extend(rng.lognormal(0.0, 0.3, points).tolist())
            metric.canary.values.extend(rng.lognormal(shift, 0.3, points).tolist())
            continue
        metric.config.kind = pb.METRIC_KIND_RATIO
        for side, rate in ((metric.baseline, 0.01), (metric.canary, 0.01 * (1 + shift))):
            total = rng.poisson(1000, points)
            bad = rng.binomial(total, min(rate, 1.0))
            side.counts.extend(
                pb.Counts(bad=float(b), total=float(t)) for b, t in zip(bad, total, strict=True)
            )
    return request


def local_verdict(request: pb.JudgeRequest) -> bytes:
    """The verdict of ``request`` judged in this process, deterministically encoded."""
    judged = wire.judge_input(request)
    verdict = wire.verdict_message(engine.judge(judged.metrics, judged.settings))
    return verdict.SerializeToString(deterministic=True)


@dataclass(frozen=True, slots=True)
class Pki:
    """PEM files of a private CA, a server certificate and client certificates."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    rogue_cert: Path
    rogue_key: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _certificate(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    *,
    issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None,
    usage: str,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(subject) if issuer is None else issuer[0].subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=usage == "ca", path_length=None), critical=True)
    )
    if usage == "server":
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        ).add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    elif usage == "client":
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
    signer = key if issuer is None else issuer[1]
    return builder.sign(signer, hashes.SHA256())


def _write(
    folder: Path, name: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey
) -> tuple[Path, Path]:
    cert_path, key_path = folder / f"{name}.crt", folder / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def make_pki(folder: Path) -> Pki:
    """A CA, a server certificate for localhost/127.0.0.1, a client of the CA and a rogue one."""
    ca_key, rogue_ca_key = _key(), _key()
    ca = _certificate("gatekeeper test CA", ca_key, issuer=None, usage="ca")
    rogue_ca = _certificate("rogue CA", rogue_ca_key, issuer=None, usage="ca")
    ca_path, _ = _write(folder, "ca", ca, ca_key)
    server_key, client_key, rogue_key = _key(), _key(), _key()
    server = _certificate("localhost", server_key, issuer=(ca, ca_key), usage="server")
    client = _certificate("controller", client_key, issuer=(ca, ca_key), usage="client")
    rogue = _certificate("intruder", rogue_key, issuer=(rogue_ca, rogue_ca_key), usage="client")
    server_paths = _write(folder, "server", server, server_key)
    client_paths = _write(folder, "client", client, client_key)
    rogue_paths = _write(folder, "rogue", rogue, rogue_key)
    return Pki(ca_path, *server_paths, *client_paths, *rogue_paths)
