"""Kubernetes resource kinds the controller uses, and the small interface routers get.

Pure: no client here. :mod:`controller.kube` implements :class:`KubeObjects` with the
official client; routers and the reconciler see only this protocol.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from controller.model import GROUP, PLURAL, VERSION

Object = dict[str, Any]


@dataclass(frozen=True, slots=True)
class ResourceKind:
    """One resource of the API: ``group`` ("" for the core group), version, plural, kind."""

    group: str
    version: str
    plural: str
    kind: str

    @property
    def api_version(self) -> str:
        """``apps/v1``, ``v1``, ``gateway.networking.k8s.io/v1``."""
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, *, namespace: str | None, name: str | None = None) -> str:
        """The REST path of the collection or of one object."""
        root = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        scope = f"/namespaces/{namespace}" if namespace else ""
        tail = f"/{name}" if name else ""
        return f"{root}{scope}/{self.plural}{tail}"


CANARIES = ResourceKind(GROUP, VERSION, PLURAL, "Canary")
DEPLOYMENTS = ResourceKind("apps", "v1", "deployments", "Deployment")
SERVICES = ResourceKind("", "v1", "services", "Service")
HTTPROUTES = ResourceKind("gateway.networking.k8s.io", "v1", "httproutes", "HTTPRoute")
VIRTUALSERVICES = ResourceKind(
    "networking.istio.io", "v1beta1", "virtualservices", "VirtualService"
)
JOBS = ResourceKind("batch", "v1", "jobs", "Job")
EVENTS = ResourceKind("", "v1", "events", "Event")
LEASES = ResourceKind("coordination.k8s.io", "v1", "leases", "Lease")
CRDS = ResourceKind(
    "apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition"
)


def traffic_splits(api_version: str) -> ResourceKind:
    """The SMI TrafficSplit of ``split.smi-spec.io/v1alpha2`` (or another version)."""
    group, _, version = api_version.partition("/")
    return ResourceKind(group, version, "trafficsplits", "TrafficSplit")


class KubeError(Exception):
    """The API server refused or failed a request.

    Attributes
    ----------
    status : int
        HTTP status (0: no answer).
    reason : str
        The Status' reason (``NotFound``, ``Conflict``, ...).
    """

    def __init__(self, message: str, *, status: int, reason: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason

    @property
    def temporary(self) -> bool:
        """Worth retrying: no answer, a conflict, throttling or a server error."""
        return self.status in (0, 409, 429) or self.status >= 500


class KubeObjects(Protocol):
    """Read, create and merge-patch objects: all a router needs of the API."""

    def get(self, kind: ResourceKind, *, namespace: str, name: str) -> Object | None:
        """The object, or None when it does not exist."""
        ...

    def create(self, kind: ResourceKind, *, namespace: str, body: Mapping[str, Any]) -> Object:
        """Create ``body``; the stored object."""
        ...

    def patch(
        self, kind: ResourceKind, *, namespace: str, name: str, patch: Mapping[str, Any]
    ) -> Object:
        """Apply a JSON merge patch (RFC 7386); the stored object."""
        ...
