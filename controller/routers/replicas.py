"""Replica ratio, without a mesh: scale stable and canary so pods approximate the weight.

Clients reach both tracks through one Service selecting a template label the target's
selector does not use (``app.kubernetes.io/name`` beside ``app``: the stable and baseline
pods carry every template label, and only the selector's values are suffixed). Of
``total`` pods the canary gets ``round(total * weight / 100)`` (at least one when the
weight is positive), a dedicated baseline as many, the stable the rest. The weight asked
for is kept in the annotation ``gatekeeper.dev/weights`` of the stable Deployment; the
read-back reports it once every Deployment has its pods ready, and None before.
Header routes are not offered: a ``setHeaderRoute`` step is a spec error.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from controller.model import GROUP, HeaderMatch, Weights, replica_split
from controller.resources import DEPLOYMENTS, Object
from controller.routers import (
    RouterContext,
    RouterError,
    check_weights,
    header_route_unsupported,
)
from controller.workloads import deployment_ready

WEIGHTS_ANNOTATION = f"{GROUP}/weights"


def _format(weights: Weights) -> str:
    return f"canary={weights.canary},baseline={weights.baseline}"


def _parse(text: object) -> Weights | None:
    if not isinstance(text, str):
        return None
    try:
        pairs = dict(item.split("=", 1) for item in text.split(","))
        return Weights(canary=int(pairs["canary"]), baseline=int(pairs["baseline"]))
    except (KeyError, ValueError):
        return None


class ReplicaRouter:
    """Moves traffic by the pods' share among ``context.total_replicas``."""

    def __init__(self, context: RouterContext) -> None:
        self._context = context
        names = context.names
        self._deployments = {
            "stable": names.stable,
            "canary": names.target,
            "baseline": names.baseline,
        }

    def _get(self, track: str) -> Object | None:
        context = self._context
        return context.kube.get(
            DEPLOYMENTS, namespace=context.namespace, name=self._deployments[track]
        )

    def _scale(self, track: str, replicas: int, extra: Mapping[str, Any] | None = None) -> None:
        found = self._get(track)
        if found is None:
            if replicas == 0:
                return
            raise RouterError(
                f"Deployment {self._context.namespace}/{self._deployments[track]} does not "
                "exist yet",
                permanent=False,
            )
        patch: dict[str, Any] = {}
        if found.get("spec", {}).get("replicas") != replicas:
            patch["spec"] = {"replicas": replicas}
        if extra:
            patch["metadata"] = {"annotations": dict(extra)}
        if patch:
            self._context.kube.patch(
                DEPLOYMENTS,
                namespace=self._context.namespace,
                name=self._deployments[track],
                patch=patch,
            )

    def set_weights(self, weights: Weights) -> None:
        """Scale the Deployments to the split of the weights."""
        check_weights(weights)
        stable, canary, baseline = replica_split(
            total=self._context.total_replicas, weights=weights
        )
        # Grow the new side first so capacity never drops below the total.
        self._scale("canary", canary)
        if self._context.spec.dedicated_baseline:
            self._scale("baseline", baseline)
        stable_found = self._get("stable")
        annotations = (stable_found or {}).get("metadata", {}).get("annotations") or {}
        note = None if annotations.get(WEIGHTS_ANNOTATION) == _format(weights) else weights
        self._scale("stable", stable, {WEIGHTS_ANNOTATION: _format(note)} if note else None)

    def set_header_route(self, match: Sequence[HeaderMatch]) -> None:
        """Removing is a no-op; adding one is a spec error."""
        if match:
            raise header_route_unsupported("replicas")

    def read_weights(self) -> Weights | None:
        """The weights asked for, once every Deployment runs its share ready."""
        stable = self._get("stable")
        if stable is None:
            return None
        tracks = ["stable", "canary"]
        if self._context.spec.dedicated_baseline:
            tracks.append("baseline")
        for track in tracks:
            found = stable if track == "stable" else self._get(track)
            if found is not None and not deployment_ready(found):
                return None
        annotations = stable.get("metadata", {}).get("annotations") or {}
        return _parse(annotations.get(WEIGHTS_ANNOTATION))

    def finalize(self) -> None:
        """All pods to the target (grown first), none to stable or a baseline."""
        self.set_weights(Weights(canary=100))
