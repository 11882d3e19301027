"""Istio: weights and header routes in a VirtualService's ``spec.http``.

The controller owns ``spec.http`` of the named VirtualService (creating it with ``hosts``
and ``gateways`` from the spec when it does not exist): a route named ``canary-header``
matches the headers (``exact`` or ``regex``) and sends those requests to ``-canary``; the
route named ``weighted`` after it splits everything else between ``-stable``,
``-baseline`` and ``-canary`` by ``route[].weight`` (percentages summing to 100, as Istio
requires). Istio evaluates routes in order, so the header route wins for its requests.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from controller.model import HeaderMatch, Weights
from controller.resources import VIRTUALSERVICES, Object
from controller.routers import (
    RouterContext,
    RouterError,
    check_weights,
    release,
    release_canary_service,
)

HEADER_ROUTE = "canary-header"
WEIGHTED_ROUTE = "weighted"


class IstioRouter:
    """Moves traffic through a VirtualService (``networking.istio.io``)."""

    def __init__(self, context: RouterContext) -> None:
        self._context = context
        self._name = context.spec.router.resource or context.names.canary
        names = context.names
        self._hosts = {
            "stable": names.stable,
            "baseline": names.baseline,
            "canary": names.canary_service,
        }

    def _destination(self, track: str, weight: int) -> dict[str, Any]:
        return {
            "destination": {
                "host": self._hosts[track],
                "port": {"number": self._context.spec.service.port},
            },
            "weight": weight,
        }

    def _http(self, weights: Weights, match: Sequence[HeaderMatch]) -> list[dict[str, Any]]:
        routes = [self._destination("stable", weights.stable)]
        if self._context.spec.dedicated_baseline:
            routes.append(self._destination("baseline", weights.baseline))
        routes.append(self._destination("canary", weights.canary))
        http: list[dict[str, Any]] = []
        if match:
            headers = {
                m.name: ({"exact": m.exact} if m.regex is None else {"regex": m.regex})
                for m in match
            }
            http.append(
                {
                    "name": HEADER_ROUTE,
                    "match": [{"headers": headers}],
                    "route": [self._destination("canary", 100)],
                }
            )
        http.append({"name": WEIGHTED_ROUTE, "route": routes})
        return http

    def _service(self) -> Object:
        context = self._context
        found = context.kube.get(VIRTUALSERVICES, namespace=context.namespace, name=self._name)
        if found is not None:
            return found
        router = context.spec.router
        if not router.hosts:
            raise RouterError(
                f"spec.router.istio.hosts: VirtualService {context.namespace}/{self._name} "
                "does not exist, and creating it needs the hosts it serves"
            )
        spec: dict[str, Any] = {"hosts": list(router.hosts), "http": self._http(Weights(), ())}
        if router.gateways:
            spec["gateways"] = list(router.gateways)
        body: Object = {
            "apiVersion": VIRTUALSERVICES.api_version,
            "kind": VIRTUALSERVICES.kind,
            "metadata": {"name": self._name, "ownerReferences": [dict(context.owner)]},
            "spec": spec,
        }
        return context.kube.create(VIRTUALSERVICES, namespace=context.namespace, body=body)

    def _state(self, found: Mapping[str, Any]) -> tuple[Weights | None, tuple[HeaderMatch, ...]]:
        weights: Weights | None = None
        match: tuple[HeaderMatch, ...] = ()
        for route in found.get("spec", {}).get("http", []):
            if route.get("name") == HEADER_ROUTE:
                headers = route.get("match", [{}])[0].get("headers", {})
                match = tuple(
                    HeaderMatch(name=name, exact=cond.get("exact"), regex=cond.get("regex"))
                    for name, cond in headers.items()
                )
            elif route.get("name") == WEIGHTED_ROUTE:
                by_host = {
                    r.get("destination", {}).get("host"): int(r.get("weight", 0))
                    for r in route.get("route", [])
                }
                weights = Weights(
                    canary=by_host.get(self._hosts["canary"], 0),
                    baseline=by_host.get(self._hosts["baseline"], 0),
                )
        return weights, match

    def _write(self, weights: Weights, match: Sequence[HeaderMatch]) -> None:
        found = self._service()
        if self._state(found) == (weights, tuple(match)):
            return
        self._context.kube.patch(
            VIRTUALSERVICES,
            namespace=self._context.namespace,
            name=self._name,
            patch={"spec": {"http": self._http(weights, match)}},
        )

    def set_weights(self, weights: Weights) -> None:
        """Rewrite the weighted route's destination weights."""
        check_weights(weights)
        self._write(weights, self._state(self._service())[1])

    def set_header_route(self, match: Sequence[HeaderMatch]) -> None:
        """Add, replace or (empty) remove the header route."""
        self._write(self._state(self._service())[0] or Weights(), match)

    def read_weights(self) -> Weights | None:
        """The weighted route's weights."""
        context = self._context
        found = context.kube.get(VIRTUALSERVICES, namespace=context.namespace, name=self._name)
        return None if found is None else self._state(found)[0]

    def finalize(self) -> None:
        """One route sending everything to ``-canary`` (the target); release it and the route."""
        context = self._context
        if context.kube.get(VIRTUALSERVICES, namespace=context.namespace, name=self._name) is None:
            release_canary_service(context)
            return  # no route of ours carries traffic
        http = [{"name": WEIGHTED_ROUTE, "route": [self._destination("canary", 100)]}]
        context.kube.patch(
            VIRTUALSERVICES,
            namespace=context.namespace,
            name=self._name,
            patch={"spec": {"http": http}},
        )
        release_canary_service(context)
        release(context, VIRTUALSERVICES, self._name)
