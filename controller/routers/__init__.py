"""Traffic routers: one small protocol, one module per way of moving traffic.

A router sends a percentage of the traffic to the canary (and as much to a dedicated
baseline), routes requests matching headers to the canary, reads back the weights in
effect, and finalizes when its Canary goes away: all traffic to the target (through the
``-canary`` Service, which a mesh router then releases together with a route it created,
so both outlive the Canary). Routers reach the API only through
:class:`~controller.resources.KubeObjects`; none imports the client.

- ``gatewayAPI``: HTTPRoute ``spec.rules``: ``backendRefs[].weight``; a header rule.
- ``istio``: VirtualService ``spec.http``: ``route[].weight``; a header route.
- ``smi``: TrafficSplit ``spec.backends[].weight``; no header routes (spec error).
- ``replicas``: the Deployments' ``spec.replicas`` in proportion; no header routes.
- ``memory``: in-process, for tests and the demo.

An unknown type is a spec error, never a fallback (:mod:`controller.routers.factory`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from controller.model import CanarySpec, HeaderMatch, Weights
from controller.resources import SERVICES, KubeObjects, ResourceKind
from controller.workloads import Names


class RouterError(Exception):
    """The router cannot do what was asked.

    Attributes
    ----------
    permanent : bool
        The same call will fail the same way (a missing resource it may not create, a
        header route on a router without them): a spec or configuration error.
    """

    def __init__(self, message: str, *, permanent: bool = True) -> None:
        super().__init__(message)
        self.permanent = permanent


class TrafficRouter(Protocol):
    """What the controller needs of a way to move traffic."""

    def set_weights(self, weights: Weights) -> None:
        """Send ``weights.canary`` % to the canary, ``weights.baseline`` % to the baseline."""
        ...

    def set_header_route(self, match: Sequence[HeaderMatch]) -> None:
        """Route requests matching every header condition to the canary; empty: remove."""
        ...

    def read_weights(self) -> Weights | None:
        """The weights in effect, or None when they cannot be told (yet)."""
        ...

    def finalize(self) -> None:
        """Send all traffic to the target, no header route (the Canary is going away).

        What carries that traffic must outlive the Canary: the router releases (drops the
        Canary's ownerReference from) the ``-canary`` Service and a route it created.
        """
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class RouterContext:
    """What a router is built from.

    Attributes
    ----------
    namespace : str
        The Canary's namespace.
    names : Names
        Names of the Services and Deployments.
    spec : CanarySpec
        The Canary's spec (router options, service port).
    kube : KubeObjects
        The API.
    owner : mapping
        ownerReference to the Canary, for resources the router creates.
    total_replicas : int
        Pods the replica-ratio router shares between the tracks.
    """

    namespace: str
    names: Names
    spec: CanarySpec
    kube: KubeObjects
    owner: Mapping[str, Any]
    total_replicas: int = 1


def header_route_unsupported(kind: str) -> RouterError:
    """The spec error of a header route on a router without them."""
    return RouterError(
        f"spec.steps[].setHeaderRoute: router {kind!r} cannot route by header; "
        "header routes need router.type gatewayAPI, istio or memory"
    )


def check_weights(weights: Weights) -> None:
    """Weights are percentages that leave stable a non-negative share."""
    if min(weights.canary, weights.baseline, weights.stable) < 0:
        raise RouterError(f"weights must be percentages summing to 100, got {weights}")


def release(context: RouterContext, kind: ResourceKind, name: str) -> None:
    """Drop the Canary's ownerReference from an object, so it outlives the Canary.

    Other owners stay; an object that is missing or not owned by the Canary is left alone.
    """
    found = context.kube.get(kind, namespace=context.namespace, name=name)
    if found is None:
        return
    owners = found.get("metadata", {}).get("ownerReferences") or []
    uid = context.owner.get("uid")
    kept = [o for o in owners if o.get("uid") != uid]
    if len(kept) == len(owners):
        return
    context.kube.patch(
        kind,
        namespace=context.namespace,
        name=name,
        patch={"metadata": {"ownerReferences": kept or None}},
    )


def release_canary_service(context: RouterContext) -> None:
    """Keep ``<name>-canary`` (it selects the target's pods) after the Canary is gone."""
    release(context, SERVICES, context.names.canary_service)
