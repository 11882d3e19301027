"""Gateway API: weights and header routes in an HTTPRoute's ``spec.rules``.

The controller owns ``spec.rules`` of the named HTTPRoute (creating the route with
``parentRefs`` and ``hostnames`` from the spec when it does not exist): one rule without
matches sends every request to the ``-stable``, ``-baseline`` and ``-canary`` Services by
``backendRefs[].weight`` (weights are proportional; they are written as percentages), and
while a header route is active a rule before it matches the headers (``type: Exact`` or
``RegularExpression``) and sends those requests to ``-canary`` only. Gateway API gives the
rule with more header matches precedence, so the header rule wins for matching requests.

Read-back takes the weights from the route; when the route has a ``status.parents``, only
once every parent accepted the route's current generation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from controller.model import HeaderMatch, Weights
from controller.resources import HTTPROUTES, Object
from controller.routers import (
    RouterContext,
    RouterError,
    check_weights,
    release,
    release_canary_service,
)


def _headers(match: Sequence[HeaderMatch]) -> list[dict[str, str]]:
    return [
        {"type": "Exact", "name": m.name, "value": m.exact or ""}
        if m.regex is None
        else {"type": "RegularExpression", "name": m.name, "value": m.regex}
        for m in match
    ]


def _header_match(headers: Sequence[Mapping[str, Any]]) -> tuple[HeaderMatch, ...]:
    return tuple(
        HeaderMatch(name=h["name"], regex=h["value"])
        if h.get("type") == "RegularExpression"
        else HeaderMatch(name=h["name"], exact=h["value"])
        for h in headers
    )


def accepted(route: Mapping[str, Any]) -> bool:
    """Whether every parent in ``status.parents`` accepted the current generation."""
    parents = (route.get("status") or {}).get("parents")
    if not parents:
        return True
    generation = route.get("metadata", {}).get("generation")
    for parent in parents:
        conditions = {c.get("type"): c for c in parent.get("conditions", [])}
        condition = conditions.get("Accepted")
        if condition is None or condition.get("status") != "True":
            return False
        observed = condition.get("observedGeneration")
        if generation is not None and observed is not None and observed < generation:
            return False
    return True


class GatewayAPIRouter:
    """Moves traffic through an HTTPRoute (``gateway.networking.k8s.io/v1``)."""

    def __init__(self, context: RouterContext) -> None:
        self._context = context
        self._name = context.spec.router.resource or context.names.canary
        names = context.names
        self._services = {
            "stable": names.stable,
            "baseline": names.baseline,
            "canary": names.canary_service,
        }

    def _backend(self, track: str, weight: int) -> dict[str, Any]:
        return {
            "group": "",
            "kind": "Service",
            "name": self._services[track],
            "port": self._context.spec.service.port,
            "weight": weight,
        }

    def _rules(self, weights: Weights, match: Sequence[HeaderMatch]) -> list[dict[str, Any]]:
        backends = [self._backend("stable", weights.stable)]
        if self._context.spec.dedicated_baseline:
            backends.append(self._backend("baseline", weights.baseline))
        backends.append(self._backend("canary", weights.canary))
        rules: list[dict[str, Any]] = []
        if match:
            rules.append(
                {
                    "matches": [{"headers": _headers(match)}],
                    "backendRefs": [self._backend("canary", 100)],
                }
            )
        rules.append({"backendRefs": backends})
        return rules

    def _route(self) -> Object:
        context = self._context
        route = context.kube.get(HTTPROUTES, namespace=context.namespace, name=self._name)
        if route is not None:
            return route
        router = context.spec.router
        if not router.parent_refs:
            raise RouterError(
                f"spec.router.gatewayAPI.parentRefs: HTTPRoute {context.namespace}/{self._name} "
                "does not exist, and creating it needs the Gateways to attach to"
            )
        body: Object = {
            "apiVersion": HTTPROUTES.api_version,
            "kind": HTTPROUTES.kind,
            "metadata": {"name": self._name, "ownerReferences": [dict(context.owner)]},
            "spec": {
                "parentRefs": [dict(p) for p in router.parent_refs],
                "rules": self._rules(Weights(), ()),
            },
        }
        if router.hosts:
            body["spec"]["hostnames"] = list(router.hosts)
        return context.kube.create(HTTPROUTES, namespace=context.namespace, body=body)

    def _state(self, route: Mapping[str, Any]) -> tuple[Weights | None, tuple[HeaderMatch, ...]]:
        weights: Weights | None = None
        match: tuple[HeaderMatch, ...] = ()
        for rule in route.get("spec", {}).get("rules", []):
            headers = [h for m in rule.get("matches", []) for h in m.get("headers", [])]
            if headers:
                match = _header_match(headers)
                continue
            by_name = {b.get("name"): int(b.get("weight", 1)) for b in rule.get("backendRefs", [])}
            if self._services["stable"] in by_name:
                weights = Weights(
                    canary=by_name.get(self._services["canary"], 0),
                    baseline=by_name.get(self._services["baseline"], 0),
                )
        return weights, match

    def _write(self, weights: Weights, match: Sequence[HeaderMatch]) -> None:
        route = self._route()
        if self._state(route) == (weights, tuple(match)):
            return
        self._context.kube.patch(
            HTTPROUTES,
            namespace=self._context.namespace,
            name=self._name,
            patch={"spec": {"rules": self._rules(weights, match)}},
        )

    def set_weights(self, weights: Weights) -> None:
        """Rewrite the weighted rule's ``backendRefs`` weights."""
        check_weights(weights)
        _, match = self._state(self._route())
        self._write(weights, match)

    def set_header_route(self, match: Sequence[HeaderMatch]) -> None:
        """Add, replace or (empty) remove the header rule."""
        weights, _ = self._state(self._route())
        self._write(weights or Weights(), match)

    def read_weights(self) -> Weights | None:
        """The weighted rule's weights, once the Gateways accepted them."""
        context = self._context
        route = context.kube.get(HTTPROUTES, namespace=context.namespace, name=self._name)
        if route is None or not accepted(route):
            return None
        return self._state(route)[0]

    def finalize(self) -> None:
        """One rule sending everything to ``-canary`` (the target); release it and the route."""
        context = self._context
        if context.kube.get(HTTPROUTES, namespace=context.namespace, name=self._name) is None:
            release_canary_service(context)
            return  # no route of ours carries traffic
        rules = [{"backendRefs": [self._backend("canary", 100)]}]
        context.kube.patch(
            HTTPROUTES,
            namespace=context.namespace,
            name=self._name,
            patch={"spec": {"rules": rules}},
        )
        release_canary_service(context)
        release(context, HTTPROUTES, self._name)
