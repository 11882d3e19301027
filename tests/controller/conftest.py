"""A Kubernetes API for the controller's tests: kmock's emulator over HTTP, fixed up.

The controller uses the official (blocking) ``kubernetes`` client, so the emulator runs on
its own event loop in a thread and the tests stay synchronous. kmock 0.8's emulator
stores objects and merges JSON merge patches; what it lacks of a real API server and the
controller relies on is added here (:class:`FixedEmulator`):

- ``metadata.uid``, ``creationTimestamp``, ``resourceVersion`` and ``generation`` (bumped
  when a patch touches ``spec``), so ownerReferences and readiness (observedGeneration)
  are real;
- status subresource semantics: a patch of ``/status`` changes only ``status``, a patch
  of the object never does;
- creating a CustomResourceDefinition serves its resource (as installing a CRD does);
- optimistic concurrency for Leases: a patch carrying a stale ``metadata.resourceVersion``
  is rejected with 409 Conflict, atomically with the write (leader election is real).

The emulator runs no workloads, so :class:`DeploymentController` plays the Deployment
controller through the API: it watches Deployments and marks each one's status as rolled
out (every replica updated and available) unless a test made its image "broken"; and
:class:`JobController` plays the Job controller, marking Jobs complete (or failed).
kmock keeps an object with finalizers until they are removed (``deletionTimestamp`` set
meanwhile), but it has no garbage collector: :class:`GarbageCollector` plays it, deleting
what a deleted Canary owned.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import itertools
import threading
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import attrs
import kmock
import pytest
import yaml
from kmock._internal import enums

from controller.clock import ManualClock
from controller.kube import Kube, load_api_client
from controller.resources import (
    CANARIES,
    CRDS,
    DEPLOYMENTS,
    HTTPROUTES,
    JOBS,
    SERVICES,
    VIRTUALSERVICES,
    Object,
    traffic_splits,
)
from controller.workloads import deployment_ready

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "controller" / "manifests"
EXAMPLES = ROOT / "controller" / "examples"
NAMESPACE = "default"
#: Images whose pods never become ready (the fake Deployment controller leaves them).
BROKEN_MARK = ":crashloop"
START = datetime.datetime(2024, 5, 1, 14, 0, tzinfo=datetime.UTC).timestamp()

_versions = itertools.count(1)
_STATUS_SUBRESOURCE = {"deployments", "canaries", "httproutes", "jobs"}
_BUILTIN = (
    "apps/v1/deployments",
    "v1/services",
    "apiextensions.k8s.io/v1/customresourcedefinitions",
    "gateway.networking.k8s.io/v1/httproutes",
    "networking.istio.io/v1beta1/virtualservices",
    "split.smi-spec.io/v1alpha2/trafficsplits",
    "batch/v1/jobs",
    "v1/events",
    "coordination.k8s.io/v1/leases",
)
_CONFLICT_CHECKED = {"leases"}


@attrs.frozen
class StaleResourceVersion(kmock.KubernetesError):
    """409 Conflict, as an API server answers a write with a stale resourceVersion."""

    status: int = 409
    reason: str = "Conflict"
    message: str = "the object has been modified; please apply your changes to the latest version"


def _stamp_created(data: dict[str, Any], namespace: str | None) -> None:
    meta = data.setdefault("metadata", {})
    meta.setdefault("uid", str(uuid.uuid4()))
    meta.setdefault("creationTimestamp", datetime.datetime.now(datetime.UTC).isoformat())
    meta["resourceVersion"] = str(next(_versions))
    meta["generation"] = 1
    if namespace and "namespace" not in meta:
        meta["namespace"] = namespace


class FixedEmulator(kmock.KubernetesEmulator):
    """kmock's emulator with the API server behaviour the controller relies on."""

    conflicts = 0  # stale Lease writes rejected (tests check leader election met them)

    async def _handle(self, request: kmock.Request) -> Any:
        plural = getattr(request.resource, "plural", "")
        if plural in _CONFLICT_CHECKED and request.action == enums.action.UPDATE:
            async with self._write_lock:  # compare-and-write is atomic
                self._check_version(request)
                return await self._handle_fixed(request)
        return await self._handle_fixed(request)

    @property
    def _write_lock(self) -> asyncio.Lock:
        lock = self.__dict__.get("_cas_lock")
        if lock is None:
            lock = self.__dict__["_cas_lock"] = asyncio.Lock()
        return lock

    def _check_version(self, request: kmock.Request) -> None:
        if not isinstance(request.data, dict):
            return
        wanted = (request.data.get("metadata") or {}).get("resourceVersion")
        key = (request.resource, request.namespace, request.name)
        with contextlib.suppress(KeyError, ValueError):
            # The caller saw a resource; a request without a name finds nothing (KeyError).
            current = self.objects[key].raw.get("metadata", {}).get("resourceVersion")  # type: ignore[index]
            if wanted is not None and wanted != current:
                type(self).conflicts += 1
                raise StaleResourceVersion()

    async def _handle_fixed(self, request: kmock.Request) -> Any:
        if request.resource is not None and isinstance(request.data, dict):
            if request.action == enums.action.CREATE:
                _stamp_created(request.data, request.namespace)
                self._serve_crd(request.data, request.resource)
            elif request.action == enums.action.UPDATE:
                self._fix_patch(request)
        return await super()._handle(request)

    def _serve_crd(self, data: dict[str, Any], resource: Any) -> None:
        if getattr(resource, "plural", None) != "customresourcedefinitions":
            return
        spec = data.get("spec", {})
        for version in spec.get("versions", []):
            key = f"{spec['group']}/{version['name']}/{spec['names']['plural']}"
            self.resources[key] = kmock.ResourceInfo(
                kind=spec["names"]["kind"], namespaced=spec.get("scope") == "Namespaced"
            )

    def _fix_patch(self, request: kmock.Request) -> None:
        data: dict[str, Any] = request.data
        plural = getattr(request.resource, "plural", "")
        if request.subresource == "status":
            for key in [k for k in data if k != "status"]:
                del data[key]
        elif plural in _STATUS_SUBRESOURCE:
            data.pop("status", None)
        meta = data.setdefault("metadata", {})
        meta["resourceVersion"] = str(next(_versions))
        if "spec" in data and request.subresource is None:
            object_key = (request.resource, request.namespace, request.name)
            with contextlib.suppress(KeyError, ValueError):
                # As in _check_version: the resource is set, a missing name finds nothing.
                current = self.objects[object_key].raw.get("metadata", {}).get("generation", 1)  # type: ignore[index]
                meta["generation"] = int(current) + 1


class EmulatedCluster:
    """The emulator served on 127.0.0.1 from its own event loop thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self._stack = contextlib.AsyncExitStack()
        self.handler = FixedEmulator()
        for key in _BUILTIN:
            self.handler.resources[key] = kmock.ResourceInfo(namespaced=True)
        self.server = self._call(self._start())
        self.url = f"http://{self.server.host}:{self.server.port}"

    def _call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(30)

    async def _start(self) -> kmock.Server:
        await self._stack.enter_async_context(self.handler)
        server: kmock.Server = await self._stack.enter_async_context(kmock.Server(self.handler))
        return server

    async def _shutdown(self) -> None:
        # Open watch streams never end by themselves: cancel their handlers first.
        current = asyncio.current_task()
        others = [task for task in asyncio.all_tasks() if task is not current]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)
        await asyncio.wait_for(self._stack.aclose(), 5.0)

    def stop(self) -> None:
        """Stop serving and the loop (left unclosed: late callbacks find it stopped)."""
        with contextlib.suppress(Exception):
            self._call(self._shutdown())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)


class DeploymentController:
    """Plays the Deployment controller: marks Deployments rolled out, through the API.

    Deployments whose pod template uses an image containing ``:crashloop`` get no
    available replicas (their pods would never become ready).
    """

    def __init__(self, kube: Kube) -> None:
        self.kube = kube
        self.stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @staticmethod
    def broken(deployment: Object) -> bool:
        """Whether its pods never become ready."""
        containers = deployment.get("spec", {}).get("template", {}).get("spec", {})
        images = [c.get("image", "") for c in containers.get("containers", [])]
        return any(BROKEN_MARK in image for image in images)

    def settle(self, deployment: Object) -> None:
        """Write the status a finished rollout of ``deployment`` would have."""
        replicas = deployment.get("spec", {}).get("replicas", 1)
        available = 0 if self.broken(deployment) else replicas
        status = {
            "observedGeneration": deployment.get("metadata", {}).get("generation", 1),
            "replicas": replicas,
            "updatedReplicas": replicas,
            "readyReplicas": available,
            "availableReplicas": available,
        }
        current = deployment.get("status") or {}
        if any(current.get(k) != v for k, v in status.items()):
            meta = deployment["metadata"]
            self.kube.patch_status(
                DEPLOYMENTS, namespace=meta["namespace"], name=meta["name"], status=status
            )

    def _run(self) -> None:
        for _, deployment in self.kube.watch(
            DEPLOYMENTS, namespace=None, stop=self.stop, timeout_seconds=2
        ):
            if self.stop.is_set():
                return
            with contextlib.suppress(Exception):
                self.settle(deployment)

    def wait_settled(self, *, timeout: float = 10.0) -> None:
        """Poll until every Deployment's status matches its spec (broken ones excepted)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pending = [
                d
                for d in self.kube.list(DEPLOYMENTS)
                if not self.broken(d) and not deployment_ready(d)
            ]
            if not pending:
                return
            time.sleep(0.02)
        raise AssertionError(f"Deployments not settled: {[d['metadata']['name'] for d in pending]}")


class JobController:
    """Plays the Job controller: marks load-test Jobs complete, through the API.

    ``auto``: every Job completes as soon as it is seen; otherwise :meth:`finish` ends
    one. ``created`` counts distinct Job names ever seen (a second Job would show).
    """

    def __init__(self, kube: Kube, *, auto: bool = True) -> None:
        self.kube = kube
        self.auto = auto
        self.seen: list[str] = []
        self.stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def finish(self, name: str, *, succeeded: bool = True, namespace: str = NAMESPACE) -> None:
        """Write the status of a finished Job."""
        kind = "Complete" if succeeded else "Failed"
        status = {
            "succeeded": 1 if succeeded else 0,
            "failed": 0 if succeeded else 1,
            "conditions": [{"type": kind, "status": "True", "reason": kind, "message": ""}],
        }
        self.kube.patch_status(JOBS, namespace=namespace, name=name, status=status)

    def _run(self) -> None:
        for event, job in self.kube.watch(JOBS, namespace=None, stop=self.stop, timeout_seconds=2):
            if self.stop.is_set():
                return
            name = job["metadata"]["name"]
            if event == "ADDED" and name not in self.seen:
                self.seen.append(name)
            if self.auto and event == "ADDED" and not (job.get("status") or {}).get("conditions"):
                with contextlib.suppress(Exception):
                    self.finish(name, namespace=job["metadata"]["namespace"])

    def wait_finished(self, count: int, *, timeout: float = 10.0) -> list[Object]:
        """Poll until ``count`` Jobs exist and all are finished; the Jobs."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            jobs = self.kube.list(JOBS)
            if len(jobs) >= count and all((j.get("status") or {}).get("conditions") for j in jobs):
                return jobs
            time.sleep(0.02)
        raise AssertionError(f"{count} finished Jobs not seen: {self.kube.list(JOBS)}")


class GarbageCollector:
    """Plays the garbage collector, which kmock's emulator lacks, through the API.

    :meth:`collect` deletes every object whose ownerReferences all name Canaries that no
    longer exist, as Kubernetes' garbage collector does once an owner is gone (background
    propagation). The finalizer under test keeps the Canary, and so its objects, until it
    restored the target.
    """

    KINDS = (
        DEPLOYMENTS,
        SERVICES,
        HTTPROUTES,
        VIRTUALSERVICES,
        traffic_splits("split.smi-spec.io/v1alpha2"),
        JOBS,
    )

    def __init__(self, kube: Kube) -> None:
        self.kube = kube

    def collect(self) -> list[str]:
        """Delete the orphans of deleted Canaries; their ``Kind/name``."""
        alive = {c["metadata"]["uid"] for c in self.kube.list(CANARIES)}
        deleted = []
        for kind in self.KINDS:
            for found in self.kube.list(kind):
                meta = found["metadata"]
                owners = [o for o in meta.get("ownerReferences") or [] if o.get("kind") == "Canary"]
                if owners and not any(o.get("uid") in alive for o in owners):
                    self.kube.delete(kind, namespace=meta["namespace"], name=meta["name"])
                    deleted.append(f"{kind.kind}/{meta['name']}")
        return deleted


@pytest.fixture
def jobs(kube: Kube) -> Iterator[JobController]:
    """The fake Job controller, running (auto-completing Jobs)."""
    player = JobController(kube)
    yield player
    player.stop.set()


@pytest.fixture
def cluster() -> Iterator[EmulatedCluster]:
    """A fresh emulated API server."""
    emulated = EmulatedCluster()
    yield emulated
    emulated.stop()


@pytest.fixture
def kube(cluster: EmulatedCluster) -> Kube:
    """The controller's API access, to the emulator, with the Canary CRD installed."""
    client = Kube(load_api_client(host=cluster.url), timeout=10.0)
    crd = yaml.safe_load((MANIFESTS / "crd.yaml").read_text())
    client.create(CRDS, namespace="", body=crd)
    return client


@pytest.fixture
def deployments(kube: Kube) -> Iterator[DeploymentController]:
    """The fake Deployment controller, running."""
    player = DeploymentController(kube)
    yield player
    player.stop.set()


@pytest.fixture
def clock() -> ManualClock:
    """A manual clock at 2024-05-01T14:00:00Z."""
    return ManualClock(START)


def target_deployment(
    name: str = "podinfo", *, image: str = "ghcr.io/stefanprodan/podinfo:6.5.0", replicas: int = 3
) -> Object:
    """The user's Deployment."""
    labels = {"app": name, "app.kubernetes.io/name": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {"name": "app", "image": image, "ports": [{"containerPort": 9898}]}
                    ]
                },
            },
        },
    }


def canary_object(name: str = "podinfo", **spec: Any) -> Object:
    """A Canary with ``spec``."""
    return {
        "apiVersion": "gatekeeper.dev/v1alpha1",
        "kind": "Canary",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": spec,
    }


def set_image(kube: Kube, name: str, image: str) -> None:
    """Change the target's pod template: a new version to roll out."""
    kube.patch(
        DEPLOYMENTS,
        namespace=NAMESPACE,
        name=name,
        patch={"spec": {"template": {"spec": {"containers": [{"name": "app", "image": image}]}}}},
    )


def get_canary(kube: Kube, name: str = "podinfo") -> Object:
    """The stored Canary."""
    found = kube.get(CANARIES, namespace=NAMESPACE, name=name)
    assert found is not None
    return found


def wait_for(predicate: Callable[[], T], *, timeout: float = 10.0, what: str = "condition") -> T:
    """Poll ``predicate`` until it is truthy (a deadline, no fixed sleeps)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


@pytest.fixture
def rig(kube: Kube, deployments: DeploymentController, clock: ManualClock) -> Any:
    """A Rig (tests.controller.helpers) with in-memory routers and no reachable gatekeeper."""
    from tests.controller.helpers import Rig  # noqa: PLC0415  (helpers import this module)

    return Rig(kube=kube, deployments=deployments, clock=clock)


@pytest.fixture
def hook() -> Iterator[Any]:
    """A webhook receiver (tests.controller.helpers.Hook) on 127.0.0.1."""
    from tests.controller.helpers import Hook  # noqa: PLC0415  (helpers import this module)

    receiver = Hook()
    yield receiver
    receiver.server.shutdown()
