"""Leader election with a coordination.k8s.io/v1 Lease (optimistic concurrency).

Several replicas may run; only the holder of the Lease acts. Every ``retry_period`` each
replica tries to acquire or renew it: it reads the Lease and writes it back with the
``resourceVersion`` it read as precondition, so of two replicas writing at once the API
server accepts one and rejects the other with 409 Conflict. A Lease held by another
replica is taken over only when it has not changed for ``lease_duration`` as measured on
this replica's own clock since it saw the change (the holders' clocks are never compared).
The leader acts only while its last renewal is younger than ``renew_deadline`` (shorter
than ``lease_duration``), so a leader that cannot renew stops before anyone may take over;
failover happens within ``lease_duration`` (plus one ``retry_period``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from controller.clock import Clock
from controller.kube import Kube
from controller.model import from_rfc3339, to_rfc3339
from controller.resources import LEASES, KubeError, Object

log = logging.getLogger("controller.leader")

DEFAULT_LEASE_NAME = "canary-gatekeeper-controller"
DEFAULT_LEASE_SECONDS = 15.0
DEFAULT_RENEW_DEADLINE_SECONDS = 10.0
DEFAULT_RETRY_PERIOD_SECONDS = 2.0


@dataclass(frozen=True, slots=True, kw_only=True)
class LeaseConfig:
    """Where the Lease lives and its timings (seconds)."""

    namespace: str
    name: str = DEFAULT_LEASE_NAME
    lease_duration: float = DEFAULT_LEASE_SECONDS
    renew_deadline: float = DEFAULT_RENEW_DEADLINE_SECONDS
    retry_period: float = DEFAULT_RETRY_PERIOD_SECONDS


def _microtime(seconds: float) -> str:
    text = to_rfc3339(seconds) or ""
    return text if "." in text else text.replace("Z", ".000000Z")


class LeaderElector:
    """Acquires and renews one Lease for ``identity``.

    Parameters
    ----------
    kube : Kube
        The API.
    config : LeaseConfig
        Lease name, namespace and timings.
    identity : str
        This replica (the pod's name).
    clock : Clock
        Time (a manual clock in tests).
    """

    def __init__(self, *, kube: Kube, config: LeaseConfig, identity: str, clock: Clock) -> None:
        if not config.renew_deadline < config.lease_duration:
            raise ValueError("renew_deadline must be shorter than lease_duration")
        self.kube = kube
        self.config = config
        self.identity = identity
        self.clock = clock
        self.renewed_at: float | None = None
        self._observed: tuple[str, str] | None = None  # (holder, renewTime) last seen
        self._observed_at = 0.0

    def is_leader(self) -> bool:
        """Whether this replica may act now: its last renewal is within the renew deadline."""
        if self.renewed_at is None:
            return False
        return self.clock.now() < self.renewed_at + self.config.renew_deadline

    def try_acquire_or_renew(self) -> bool:
        """One attempt; True when this replica holds the Lease afterwards."""
        now = self.clock.now()
        try:
            lease = self.kube.get(LEASES, namespace=self.config.namespace, name=self.config.name)
            won = self._create(now) if lease is None else self._update(lease, now)
        except KubeError as exc:
            if exc.status != 409:
                log.warning("leader election: %s", exc)
            won = False
        if won:
            if self.renewed_at is None or not self.is_leader():
                log.info("%s is now the leader", self.identity)
            self.renewed_at = now
        elif self.renewed_at is not None and not self.is_leader():
            log.warning("%s lost the leadership", self.identity)
            self.renewed_at = None
        return won

    def release(self) -> None:
        """Give the Lease up (on shutdown) so another replica takes over at once."""
        if self.renewed_at is None:
            return
        self.renewed_at = None
        try:
            lease = self.kube.get(LEASES, namespace=self.config.namespace, name=self.config.name)
            if lease is None or lease.get("spec", {}).get("holderIdentity") != self.identity:
                return
            self.kube.patch_if_unchanged(
                LEASES,
                namespace=self.config.namespace,
                name=self.config.name,
                resource_version=lease["metadata"]["resourceVersion"],
                patch={"spec": {"holderIdentity": None, "leaseDurationSeconds": 1}},
            )
        except KubeError as exc:
            log.warning("releasing the lease: %s", exc)

    def _spec(self, now: float, *, acquired: bool, transitions: int) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": int(self.config.lease_duration),
            "renewTime": _microtime(now),
            "leaseTransitions": transitions,
        }
        if acquired:
            spec["acquireTime"] = _microtime(now)
        return spec

    def _create(self, now: float) -> bool:
        body = {
            "metadata": {"name": self.config.name, "namespace": self.config.namespace},
            "spec": self._spec(now, acquired=True, transitions=0),
        }
        self.kube.create(LEASES, namespace=self.config.namespace, body=body)
        return True

    def _expired(self, spec: Object, now: float) -> bool:
        """Whether the holder's Lease ran out, as seen on this replica's clock."""
        record = (str(spec.get("holderIdentity") or ""), str(spec.get("renewTime") or ""))
        if record != self._observed:
            self._observed, self._observed_at = record, now
        if not record[0]:
            return True  # released
        duration = float(spec.get("leaseDurationSeconds") or self.config.lease_duration)
        return now >= self._observed_at + duration

    def _update(self, lease: Object, now: float) -> bool:
        spec = lease.get("spec") or {}
        holder = spec.get("holderIdentity")
        ours = holder == self.identity
        if not ours and not self._expired(spec, now):
            return False
        transitions = int(spec.get("leaseTransitions") or 0) + (0 if ours else 1)
        new = self._spec(now, acquired=not ours, transitions=transitions)
        self.kube.patch_if_unchanged(
            LEASES,
            namespace=self.config.namespace,
            name=self.config.name,
            resource_version=lease["metadata"]["resourceVersion"],
            patch={"spec": new},
        )
        if not ours:
            log.info("%s takes the lease over from %s", self.identity, holder or "nobody")
        return True


def renew_time(lease: Object) -> float | None:
    """The Lease's renewTime as epoch seconds (for status tools and tests)."""
    return from_rfc3339((lease.get("spec") or {}).get("renewTime"))
