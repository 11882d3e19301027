"""The objects the controller keeps beside the user's Deployment, built as plain dicts.

Pure. The target Deployment (``spec.targetRef``) is the canary. Beside it the controller
keeps ``<name>-stable`` (the version serving production), optionally ``<name>-baseline``
(the stable version at the canary's size, fresh pods), and Services ``<name>-stable``,
``<name>-canary`` and ``<name>-baseline``. Their pods carry the target's template labels
with the values of the target's selector labels suffixed (``app: podinfo`` ->
``app: podinfo-stable``), so that the ``-canary`` Service (the target's own selector)
never selects stable or baseline pods, plus ``gatekeeper.dev/canary`` and
``gatekeeper.dev/track``.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from controller.model import GROUP, KIND, VERSION, ServicePort
from controller.resources import Object

HASH_ANNOTATION = f"{GROUP}/template-hash"
CANARY_LABEL = f"{GROUP}/canary"
TRACK_LABEL = f"{GROUP}/track"
MANAGED_BY = ("app.kubernetes.io/managed-by", "canary-gatekeeper")


class TargetError(ValueError):
    """The target Deployment cannot be managed as it is (names the field)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Names:
    """Names of everything a Canary keeps."""

    canary: str
    target: str

    @property
    def stable(self) -> str:
        """``<name>-stable`` (Deployment and Service)."""
        return f"{self.canary}-stable"

    @property
    def baseline(self) -> str:
        """``<name>-baseline`` (Deployment and Service)."""
        return f"{self.canary}-baseline"

    @property
    def canary_service(self) -> str:
        """``<name>-canary`` (Service selecting the target's pods)."""
        return f"{self.canary}-canary"


def template_hash(deployment: Mapping[str, Any]) -> str:
    """A short hash of a Deployment's pod template (canonical JSON, SHA-256)."""
    template = deployment.get("spec", {}).get("template", {})
    text = json.dumps(template, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def selector_labels(target: Mapping[str, Any]) -> dict[str, str]:
    """The target's ``spec.selector.matchLabels``.

    Raises
    ------
    TargetError
        A selector with ``matchExpressions`` or without labels.
    """
    selector = target.get("spec", {}).get("selector", {})
    name = target.get("metadata", {}).get("name", "?")
    if selector.get("matchExpressions"):
        raise TargetError(
            f"Deployment {name}: spec.selector.matchExpressions is not supported; "
            "select with matchLabels"
        )
    labels = selector.get("matchLabels") or {}
    if not labels:
        raise TargetError(f"Deployment {name}: spec.selector.matchLabels is empty")
    return dict(labels)


def track_labels(selector: Mapping[str, str], *, canary: str, track: str) -> dict[str, str]:
    """The selector of a track: the target's labels suffixed, plus the canary and track."""
    labels = {key: f"{value}-{track}" for key, value in selector.items()}
    return {**labels, CANARY_LABEL: canary, TRACK_LABEL: track}


def owner_reference(canary: Mapping[str, Any]) -> dict[str, Any]:
    """An ownerReference to the Canary (garbage collection when it is deleted)."""
    meta = canary.get("metadata", {})
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "name": meta.get("name"),
        "uid": meta.get("uid"),
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _metadata(
    *, name: str, canary: str, track: str, owner: Mapping[str, Any], template_hash: str = ""
) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "labels": {CANARY_LABEL: canary, TRACK_LABEL: track, MANAGED_BY[0]: MANAGED_BY[1]},
        "ownerReferences": [dict(owner)],
    }
    if template_hash:
        meta["annotations"] = {HASH_ANNOTATION: template_hash}
    return meta


def track_template(
    template: Mapping[str, Any], *, selector: Mapping[str, str], canary: str, track: str
) -> dict[str, Any]:
    """A copy of a pod template relabelled for ``track``."""
    result = copy.deepcopy(dict(template))
    metadata = result.setdefault("metadata", {})
    labels = dict(metadata.get("labels") or {})
    labels.update(track_labels(selector, canary=canary, track=track))
    metadata["labels"] = labels
    return result


def track_deployment(
    *,
    names: Names,
    track: str,
    target: Mapping[str, Any],
    template: Mapping[str, Any],
    template_hash: str,
    replicas: int,
    owner: Mapping[str, Any],
) -> Object:
    """The ``<name>-stable`` or ``<name>-baseline`` Deployment running ``template``."""
    selector = selector_labels(target)
    spec = target.get("spec", {})
    body: Object = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(
            name=f"{names.canary}-{track}",
            canary=names.canary,
            track=track,
            owner=owner,
            template_hash=template_hash,
        ),
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": track_labels(selector, canary=names.canary, track=track)},
            "template": track_template(
                template, selector=selector, canary=names.canary, track=track
            ),
        },
    }
    for key in ("strategy", "minReadySeconds", "progressDeadlineSeconds"):
        if key in spec:
            body["spec"][key] = copy.deepcopy(spec[key])
    return body


def service(
    *,
    name: str,
    canary: str,
    track: str,
    selector: Mapping[str, str],
    port: ServicePort,
    owner: Mapping[str, Any],
) -> Object:
    """A ClusterIP Service of one track."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(name=name, canary=canary, track=track, owner=owner),
        "spec": {
            "type": "ClusterIP",
            "selector": dict(selector),
            "ports": [
                {
                    "name": port.name,
                    "port": port.port,
                    "targetPort": port.target_port,
                    "protocol": "TCP",
                }
            ],
        },
    }


def services(
    *,
    names: Names,
    target: Mapping[str, Any],
    port: ServicePort,
    owner: Mapping[str, Any],
    baseline: bool,
) -> list[Object]:
    """The Services of every track: stable, canary (the target's selector), baseline."""
    selector = selector_labels(target)
    result = [
        service(
            name=names.stable,
            canary=names.canary,
            track="stable",
            selector=track_labels(selector, canary=names.canary, track="stable"),
            port=port,
            owner=owner,
        ),
        service(
            name=names.canary_service,
            canary=names.canary,
            track="canary",
            selector=selector,
            port=port,
            owner=owner,
        ),
    ]
    if baseline:
        result.append(
            service(
                name=names.baseline,
                canary=names.canary,
                track="baseline",
                selector=track_labels(selector, canary=names.canary, track="baseline"),
                port=port,
                owner=owner,
            )
        )
    return result


def deployment_ready(deployment: Mapping[str, Any] | None) -> bool:
    """Whether a rollout of the Deployment is complete (as ``kubectl rollout status``).

    Every desired pod updated and available, no old pods left, and the status observed
    the latest generation.
    """
    if deployment is None:
        return False
    spec = deployment.get("spec", {})
    status = deployment.get("status") or {}
    desired = spec.get("replicas", 1)
    generation = deployment.get("metadata", {}).get("generation")
    if generation is not None and status.get("observedGeneration", 0) < generation:
        return False
    updated = status.get("updatedReplicas", 0)
    return bool(
        updated >= desired
        and status.get("replicas", 0) == updated
        and status.get("availableReplicas", 0) >= updated
    )


def merge_patch(old: Any, new: Any) -> Any:
    """The JSON merge patch (RFC 7386) turning ``old`` into ``new``; None for no change.

    Keys missing from ``new`` become ``null`` (removed); lists are replaced whole.
    """
    if not isinstance(old, Mapping) or not isinstance(new, Mapping):
        return None if old == new else new
    patch: dict[str, Any] = {}
    for key in old:
        if key not in new:
            patch[key] = None
    for key, value in new.items():
        if key not in old:
            patch[key] = value
            continue
        inner = merge_patch(old[key], value)
        if inner is not None or (value is None and old[key] is not None):
            patch[key] = inner
    return patch or None
