"""Driving the controller in tests: reconcile, let the fake Deployment controller settle."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

from controller.clock import ManualClock
from controller.kube import Kube
from controller.model import Phase, status_from_dict
from controller.reconcile import Reconciler
from controller.resources import CANARIES, DEPLOYMENTS, Object
from controller.routers.memory import MemoryRouters
from gatekeeper.client import GatekeeperClient, RetryPolicy
from tests.controller.conftest import NAMESPACE, DeploymentController, canary_object, get_canary
from tests.controller.conftest import target_deployment as target


def unreachable_gatekeeper() -> GatekeeperClient:
    """A client of a port nobody listens on (fails fast, one attempt)."""
    return GatekeeperClient("127.0.0.1:9", timeout=2.0, retry=RetryPolicy(attempts=1))


class Rig:
    """A Canary, its target, a reconciler on a manual clock, and the fake Deployment controller."""

    def __init__(
        self,
        *,
        kube: Kube,
        deployments: DeploymentController,
        clock: ManualClock,
        analyzer: Any = None,
        memory: MemoryRouters | None = None,
        name: str = "podinfo",
    ) -> None:
        self.kube = kube
        self.deployments = deployments
        self.clock = clock
        self.name = name
        self.memory = memory if memory is not None else MemoryRouters()
        self.analyzer = analyzer if analyzer is not None else unreachable_gatekeeper()
        self.reconciler = Reconciler(
            kube=kube, analyzer=self.analyzer, clock=clock, memory=self.memory, analyze_timeout=2.0
        )

    def create(self, *, replicas: int = 3, **spec: Any) -> None:
        """Create the target Deployment and the Canary."""
        self.kube.create(
            DEPLOYMENTS, namespace=NAMESPACE, body=target(self.name, replicas=replicas)
        )
        spec.setdefault("targetRef", {"name": self.name})
        spec.setdefault("router", {"type": "memory"})
        self.kube.create(CANARIES, namespace=NAMESPACE, body=canary_object(self.name, **spec))
        self.deployments.wait_settled()

    def canary(self) -> Object:
        """The stored Canary."""
        return get_canary(self.kube, self.name)

    def status(self) -> Any:
        """The stored status, parsed."""
        return status_from_dict(self.canary().get("status"))

    def reconcile(self, *, settle: bool = True) -> float | None:
        """One reconcile of the stored Canary, then let Deployments roll out."""
        due = self.reconciler.reconcile(self.canary())
        if settle:
            self.deployments.wait_settled()
        return due

    def until(self, phase: Phase, *, rounds: int = 10, step_seconds: float = 0.0) -> Any:
        """Reconcile (moving the clock by ``step_seconds`` each round) until ``phase``."""
        for _ in range(rounds):
            self.reconcile()
            status = self.status()
            if status.phase is phase:
                return status
            self.clock.advance(step_seconds)
        raise AssertionError(f"not {phase.value} after {rounds} rounds: {self.status()}")

    def deployment(self, name: str) -> Object | None:
        """A Deployment by name."""
        return self.kube.get(DEPLOYMENTS, namespace=NAMESPACE, name=name)

    def replicas(self, name: str) -> int:
        """A Deployment's spec.replicas."""
        found = self.deployment(name)
        assert found is not None, name
        return int(found["spec"]["replicas"])

    def image(self, name: str) -> str:
        """The image of a Deployment's first container."""
        found = self.deployment(name)
        assert found is not None, name
        return str(found["spec"]["template"]["spec"]["containers"][0]["image"])


class Hook:
    """A webhook receiver on 127.0.0.1; it answers 503 (recording nothing) ``down`` times."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.down = 0
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                body = json.loads(self.rfile.read(length))
                if hook.down > 0:
                    hook.down -= 1
                    self.send_response(503)
                else:
                    hook.received.append(body)
                    self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
