"""SMI: weights in a TrafficSplit's ``spec.backends`` (``split.smi-spec.io``).

The controller owns ``spec.backends`` of the named TrafficSplit (creating it for the root
Service when it does not exist): ``-stable``, ``-baseline`` and ``-canary`` with whole
number weights. Header routes are not offered (SMI needs separate HTTPRouteGroups for
them): a ``setHeaderRoute`` step is a spec error.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from controller.model import HeaderMatch, Weights
from controller.resources import Object, traffic_splits
from controller.routers import (
    RouterContext,
    check_weights,
    header_route_unsupported,
    release,
    release_canary_service,
)


class SMIRouter:
    """Moves traffic through an SMI TrafficSplit."""

    def __init__(self, context: RouterContext) -> None:
        self._context = context
        self._kind = traffic_splits(context.spec.router.api_version)
        self._name = context.spec.router.resource or context.names.canary
        names = context.names
        self._services = {
            "stable": names.stable,
            "baseline": names.baseline,
            "canary": names.canary_service,
        }

    def _backends(self, weights: Weights) -> list[dict[str, Any]]:
        backends = [{"service": self._services["stable"], "weight": weights.stable}]
        if self._context.spec.dedicated_baseline:
            backends.append({"service": self._services["baseline"], "weight": weights.baseline})
        backends.append({"service": self._services["canary"], "weight": weights.canary})
        return backends

    def _split(self) -> Object:
        context = self._context
        found = context.kube.get(self._kind, namespace=context.namespace, name=self._name)
        if found is not None:
            return found
        root = context.spec.router.root_service or context.spec.target
        body: Object = {
            "apiVersion": self._kind.api_version,
            "kind": self._kind.kind,
            "metadata": {"name": self._name, "ownerReferences": [dict(context.owner)]},
            "spec": {"service": root, "backends": self._backends(Weights())},
        }
        return context.kube.create(self._kind, namespace=context.namespace, body=body)

    def _weights(self, split: Mapping[str, Any]) -> Weights | None:
        by_service = {
            b.get("service"): int(b.get("weight", 0))
            for b in split.get("spec", {}).get("backends", [])
        }
        if self._services["stable"] not in by_service:
            return None
        return Weights(
            canary=by_service.get(self._services["canary"], 0),
            baseline=by_service.get(self._services["baseline"], 0),
        )

    def set_weights(self, weights: Weights) -> None:
        """Rewrite the backends' weights."""
        check_weights(weights)
        if self._weights(self._split()) == weights:
            return
        self._context.kube.patch(
            self._kind,
            namespace=self._context.namespace,
            name=self._name,
            patch={"spec": {"backends": self._backends(weights)}},
        )

    def set_header_route(self, match: Sequence[HeaderMatch]) -> None:
        """Removing is a no-op; adding one is a spec error."""
        if match:
            raise header_route_unsupported("smi")

    def read_weights(self) -> Weights | None:
        """The backends' weights."""
        context = self._context
        found = context.kube.get(self._kind, namespace=context.namespace, name=self._name)
        return None if found is None else self._weights(found)

    def finalize(self) -> None:
        """One backend, ``-canary`` (the target), at weight 100; release it and the split."""
        context = self._context
        if context.kube.get(self._kind, namespace=context.namespace, name=self._name) is None:
            release_canary_service(context)
            return  # no route of ours carries traffic
        backends = [{"service": self._services["canary"], "weight": 100}]
        context.kube.patch(
            self._kind,
            namespace=context.namespace,
            name=self._name,
            patch={"spec": {"backends": backends}},
        )
        release_canary_service(context)
        release(context, self._kind, self._name)
