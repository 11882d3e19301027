"""The only module that talks to the Kubernetes API (the official ``kubernetes`` client).

Objects travel as plain JSON dicts: reads are decoded from the response body, writes are
JSON merge patches (RFC 7386, ``application/merge-patch+json``: lists are replaced whole,
``null`` removes a key), which every API server and custom resource accepts. Status is
written through the ``/status`` subresource. Watches use the client's
:class:`kubernetes.watch.Watch`. Failures raise :class:`~controller.resources.KubeError`.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator, Mapping
from typing import Any, cast

import urllib3
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes import watch as k8s_watch
from kubernetes.client.exceptions import ApiException

from controller.resources import KubeError, Object, ResourceKind

log = logging.getLogger("controller.kube")

MERGE_PATCH = "application/merge-patch+json"
DEFAULT_TIMEOUT_SECONDS = 30.0


def load_api_client(
    *, kubeconfig: str | None = None, context: str | None = None, host: str | None = None
) -> k8s.ApiClient:
    """A configured API client: in-cluster, a kubeconfig, or a plain ``host`` URL.

    Parameters
    ----------
    kubeconfig, context : str, optional
        A kubeconfig file and its context; the default kubeconfig when neither ``host``
        is given nor the process runs in a cluster.
    host : str, optional
        A server URL without credentials (tests and ``kubectl proxy``).
    """
    if host is not None:
        configuration = k8s.Configuration()
        configuration.host = host
        return k8s.ApiClient(configuration)
    if kubeconfig is None and context is None:
        try:
            k8s_config.load_incluster_config()
            return k8s.ApiClient()
        except k8s_config.ConfigException:
            pass
    return cast(
        k8s.ApiClient,
        k8s_config.new_client_from_config(config_file=kubeconfig, context=context),
    )


def _error(exc: ApiException, what: str) -> KubeError:
    reason, message = exc.reason or "", str(exc.reason or "")
    try:
        body = json.loads(exc.body or "{}")
        reason = body.get("reason", reason)
        message = body.get("message", message)
    except (TypeError, ValueError):
        pass
    return KubeError(
        f"{what}: {exc.status} {reason}: {message}", status=exc.status or 0, reason=reason
    )


class Kube:
    """Get, list, create, merge-patch, delete and watch objects as dicts.

    Parameters
    ----------
    api : ApiClient
        The official client, configured (see :func:`load_api_client`).
    timeout : float
        Seconds per request.
    """

    def __init__(self, api: k8s.ApiClient, *, timeout: float = DEFAULT_TIMEOUT_SECONDS) -> None:
        self.api = api
        self.timeout = timeout
        self._custom = k8s.CustomObjectsApi(api)

    def _call(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        query: list[tuple[str, str]] | None = None,
        content_type: str = "application/json",
        what: str,
    ) -> Object:
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type
        serialized = self.api.param_serialize(
            method=method,
            resource_path=path,
            query_params=query or [],
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        try:
            response = self.api.call_api(*serialized, _request_timeout=self.timeout)
            data = response.read()
        except ApiException as exc:
            raise _error(exc, what) from None
        except urllib3.exceptions.HTTPError as exc:
            raise KubeError(f"{what}: no answer from the API server: {exc}", status=0) from None
        if not 200 <= response.status <= 299:
            raise _error(ApiException(http_resp=response, body=data.decode()), what)
        decoded: Object = json.loads(data or b"{}")
        return decoded

    def get(self, kind: ResourceKind, *, namespace: str, name: str) -> Object | None:
        """The object, or None when it does not exist."""
        try:
            return self._call(
                "GET",
                kind.path(namespace=namespace, name=name),
                what=f"get {kind.kind} {namespace}/{name}",
            )
        except KubeError as exc:
            if exc.status == 404:
                return None
            raise

    def list(
        self,
        kind: ResourceKind,
        *,
        namespace: str | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> list[Object]:
        """Every object of ``kind`` in ``namespace`` (all when None) with these ``labels``.

        The label selector is sent to the server and also applied to the answer (servers
        that ignore it, such as test emulators, give the same result).
        """
        wanted = dict(labels or {})
        query = [("labelSelector", ",".join(f"{k}={v}" for k, v in wanted.items()))]
        answer = self._call(
            "GET",
            kind.path(namespace=namespace),
            query=query if wanted else None,
            what=f"list {kind.plural} in {namespace or '*'}",
        )
        items: list[Object] = answer.get("items") or []
        return [
            item
            for item in items
            if all(
                (item.get("metadata", {}).get("labels") or {}).get(k) == v
                for k, v in wanted.items()
            )
        ]

    def create(self, kind: ResourceKind, *, namespace: str, body: Mapping[str, Any]) -> Object:
        """Create ``body`` in ``namespace``."""
        name = body.get("metadata", {}).get("name", "?")
        full = {"apiVersion": kind.api_version, "kind": kind.kind, **body}
        log.info("creating %s %s/%s", kind.kind, namespace, name)
        return self._call(
            "POST",
            kind.path(namespace=namespace),
            body=full,
            what=f"create {kind.kind} {namespace}/{name}",
        )

    def patch(
        self, kind: ResourceKind, *, namespace: str, name: str, patch: Mapping[str, Any]
    ) -> Object:
        """Apply a JSON merge patch to the object."""
        log.debug("patching %s %s/%s: %s", kind.kind, namespace, name, patch)
        return self._call(
            "PATCH",
            kind.path(namespace=namespace, name=name),
            body=dict(patch),
            content_type=MERGE_PATCH,
            what=f"patch {kind.kind} {namespace}/{name}",
        )

    def patch_if_unchanged(
        self,
        kind: ResourceKind,
        *,
        namespace: str,
        name: str,
        resource_version: str,
        patch: Mapping[str, Any],
    ) -> Object:
        """A merge patch with ``metadata.resourceVersion`` as precondition.

        The API server rejects it with 409 Conflict when the object changed since
        ``resource_version`` was read (optimistic concurrency, as an update would).
        """
        body = dict(patch)
        meta = dict(body.get("metadata") or {})
        meta["resourceVersion"] = resource_version
        body["metadata"] = meta
        return self.patch(kind, namespace=namespace, name=name, patch=body)

    def patch_status(
        self, kind: ResourceKind, *, namespace: str, name: str, status: Mapping[str, Any]
    ) -> Object:
        """Merge ``status`` into the object's status (the ``/status`` subresource)."""
        return self._call(
            "PATCH",
            kind.path(namespace=namespace, name=name) + "/status",
            body={"status": dict(status)},
            content_type=MERGE_PATCH,
            what=f"patch the status of {kind.kind} {namespace}/{name}",
        )

    def delete(
        self, kind: ResourceKind, *, namespace: str, name: str, propagation: str | None = None
    ) -> bool:
        """Delete the object (``propagation``: Background, Foreground, Orphan); False when gone."""
        try:
            self._call(
                "DELETE",
                kind.path(namespace=namespace, name=name),
                query=[("propagationPolicy", propagation)] if propagation else None,
                what=f"delete {kind.kind} {namespace}/{name}",
            )
        except KubeError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def watch(
        self,
        kind: ResourceKind,
        *,
        namespace: str | None,
        stop: threading.Event,
        timeout_seconds: int = 60,
    ) -> Iterator[tuple[str, Object]]:
        """Yield ``(event type, object)`` until ``stop`` is set; reconnects on timeouts.

        Only kinds of a named API group (``apps``, ``gatekeeper.dev``, ...) are watched.
        """
        if not kind.group:
            raise ValueError(f"watching core {kind.plural} is not supported here")
        while not stop.is_set():
            watcher = k8s_watch.Watch()
            try:
                yield from self._watch_once(watcher, kind, namespace, timeout_seconds)
            except (ApiException, urllib3.exceptions.HTTPError) as exc:
                log.warning("watch of %s interrupted: %s", kind.plural, exc)
                stop.wait(1.0)
            finally:
                watcher.stop()

    def _watch_once(
        self,
        watcher: k8s_watch.Watch,
        kind: ResourceKind,
        namespace: str | None,
        timeout_seconds: int,
    ) -> Iterator[tuple[str, Object]]:
        common: dict[str, Any] = {
            "group": kind.group,
            "version": kind.version,
            "plural": kind.plural,
            "timeout_seconds": timeout_seconds,
            "_request_timeout": timeout_seconds + 5,
        }
        if namespace:
            events = watcher.stream(
                self._custom.list_namespaced_custom_object, namespace=namespace, **common
            )
        else:
            events = watcher.stream(self._custom.list_cluster_custom_object, **common)
        for event in events:
            kind_of_event = str(event.get("type", ""))
            obj = event.get("object")
            if isinstance(obj, dict):
                yield kind_of_event, obj
