"""The router of a Canary's ``spec.router.type``; unknown types are spec errors."""

from __future__ import annotations

from typing import Any

from controller.routers import RouterContext, RouterError, TrafficRouter
from controller.routers.gateway_api import GatewayAPIRouter
from controller.routers.istio import IstioRouter
from controller.routers.memory import MemoryRouters
from controller.routers.replicas import ReplicaRouter
from controller.routers.smi import SMIRouter


def make_router(context: RouterContext, *, memory: MemoryRouters | None = None) -> TrafficRouter:
    """The router of ``context.spec.router.type``.

    Parameters
    ----------
    context : RouterContext
        What the router works on.
    memory : MemoryRouters, optional
        Where in-memory routers live (type ``memory``).

    Raises
    ------
    RouterError
        An unknown type, or ``memory`` without a registry (permanent).
    """
    kind = context.spec.router.type
    builders: dict[str, Any] = {
        "gatewayAPI": GatewayAPIRouter,
        "istio": IstioRouter,
        "smi": SMIRouter,
        "replicas": ReplicaRouter,
    }
    if kind in builders:
        router: TrafficRouter = builders[kind](context)
        return router
    if kind == "memory":
        if memory is None:
            raise RouterError(
                "spec.router.type: 'memory' is for tests and the demo; this controller runs "
                "without in-memory routers (use gatewayAPI, istio, smi or replicas)"
            )
        found: TrafficRouter = memory.get(context.namespace, context.names.canary)
        return found
    raise RouterError(
        f"spec.router.type: unknown router {kind!r}; allowed: gatewayAPI, istio, smi, "
        "replicas, memory"
    )
