"""Deleting a Canary gives the service back to its target before anything goes away.

Every Canary carries the finalizer ``gatekeeper.dev/restore-target`` from its first
reconcile on. Deleting it sets ``metadata.deletionTimestamp``; the API server keeps the
Canary, and so the garbage collector keeps what it owns (``<name>-stable``, the Services,
the routes the controller created), until the finalizer is removed. The controller then
restores the target, as Flagger's ``revertOnDeletion`` does:

1. the target is scaled to the size that serves (``router.replicas.totalReplicas``, else
   the stable's size; never below its own);
2. once all its pods are ready, the router sends all traffic to it and releases what
   carries that traffic (:meth:`~controller.routers.TrafficRouter.finalize`);
3. the finalizer is removed, with the ``resourceVersion`` read as precondition, and the
   garbage collector removes the rest.

Until the target's pods are ready nothing else moves: stable keeps serving and the Canary
stays ``Terminating``. A Canary that never created ``<name>-stable`` changed nothing and
is let go at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from controller.kube import Kube
from controller.model import GROUP
from controller.resources import CANARIES, DEPLOYMENTS, Object
from controller.routers import TrafficRouter
from controller.workloads import deployment_ready

FINALIZER = f"{GROUP}/restore-target"


def deleting(canary: Mapping[str, Any]) -> bool:
    """Whether the Canary was deleted (it waits for its finalizers)."""
    return bool(canary.get("metadata", {}).get("deletionTimestamp"))


def held(canary: Mapping[str, Any]) -> bool:
    """Whether the Canary carries this controller's finalizer."""
    return FINALIZER in (canary.get("metadata", {}).get("finalizers") or [])


def _set_finalizers(kube: Kube, canary: Object, finalizers: list[str]) -> None:
    meta = canary["metadata"]
    stored = kube.patch_if_unchanged(
        CANARIES,
        namespace=meta.get("namespace", "default"),
        name=meta["name"],
        resource_version=str(meta.get("resourceVersion", "")),
        patch={"metadata": {"finalizers": finalizers or None}},
    )
    meta["finalizers"] = finalizers
    meta["resourceVersion"] = stored.get("metadata", {}).get("resourceVersion")


def hold(kube: Kube, canary: Object) -> None:
    """Add the finalizer (others kept) unless the Canary has it; updates ``canary``."""
    if not held(canary):
        theirs = list(canary["metadata"].get("finalizers") or [])
        _set_finalizers(kube, canary, [*theirs, FINALIZER])


def let_go(kube: Kube, canary: Object) -> None:
    """Remove the finalizer (others kept): the API server may delete the Canary now."""
    if held(canary):
        theirs = [f for f in canary["metadata"].get("finalizers") or [] if f != FINALIZER]
        _set_finalizers(kube, canary, theirs)


def serving_size(*, total: int, stable: Mapping[str, Any], target: Mapping[str, Any]) -> int:
    """The pods the target needs to carry all traffic alone.

    Parameters
    ----------
    total : int
        The pods the rollout shares out (``totalReplicas`` or the stable's size recorded
        in the status).
    stable, target : mapping
        ``<name>-stable`` and the target Deployment, as read.
    """
    sizes = (total, stable.get("spec", {}).get("replicas"), target.get("spec", {}).get("replicas"))
    return max([1, *(int(size) for size in sizes if isinstance(size, int))])


def restore(
    kube: Kube, *, namespace: str, target: Mapping[str, Any], size: int, router: TrafficRouter
) -> str | None:
    """One step of giving the traffic back to the target.

    Returns
    -------
    str or None
        What it waits for, or None once all traffic goes to the target.
    """
    name = target["metadata"]["name"]
    if target.get("spec", {}).get("replicas") != size:
        kube.patch(DEPLOYMENTS, namespace=namespace, name=name, patch={"spec": {"replicas": size}})
        return f"deleting: scaling the target {name} to {size} pods before routing to it"
    if not deployment_ready(target):
        return (
            f"deleting: waiting for the {size} pods of the target {name} to be ready; "
            "stable serves until then"
        )
    router.finalize()
    return None
