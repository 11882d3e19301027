"""The controller's loop: watch Canaries and Deployments, reconcile, sleep until due.

Level-triggered: any event (a Canary or a Deployment changed) or a due time (the next
look, the end of a pause) reconciles every Canary; each reconcile is idempotent and the
status is the single source of truth of progress, so a restart simply continues. With a
:class:`~controller.leader.LeaderElector`, several replicas may run: only the Lease's
holder reconciles, and it checks that it still holds it before every Canary.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from controller.clock import Clock
from controller.kube import Kube
from controller.leader import LeaderElector
from controller.reconcile import RETRY_SECONDS, Reconciler
from controller.resources import CANARIES, DEPLOYMENTS, KubeError, ResourceKind

log = logging.getLogger("controller.main")

DEFAULT_RESYNC_SECONDS = 300.0


class Controller:
    """Watches and reconciles the Canaries of a namespace (or of all namespaces).

    Parameters
    ----------
    kube : Kube
        The API.
    reconciler : Reconciler
        Reconciles one Canary.
    clock : Clock
        Time (a manual clock in tests).
    namespace : str, optional
        Only this namespace; all when None.
    resync_seconds : float
        Reconcile everything at least this often, events or not.
    watch_timeout_seconds : int
        Server-side timeout of one watch request (it is renewed).
    elector : LeaderElector, optional
        Leader election; without it this replica always acts (one replica only).
    """

    def __init__(
        self,
        *,
        kube: Kube,
        reconciler: Reconciler,
        clock: Clock,
        namespace: str | None = None,
        resync_seconds: float = DEFAULT_RESYNC_SECONDS,
        watch_timeout_seconds: int = 60,
        elector: LeaderElector | None = None,
    ) -> None:
        self.kube = kube
        self.reconciler = reconciler
        self.clock = clock
        self.namespace = namespace
        self.resync_seconds = resync_seconds
        self.watch_timeout_seconds = watch_timeout_seconds
        self.wake = threading.Event()
        self.passes = 0
        self.elector = elector
        self._passed = threading.Condition()

    def reconcile_all(self) -> float:
        """Reconcile every Canary once; when the next one is due."""
        now = self.clock.now()
        due = now + self.resync_seconds
        try:
            canaries = self.kube.list(CANARIES, namespace=self.namespace)
        except KubeError as exc:
            log.warning("cannot list Canaries: %s", exc)
            return now + RETRY_SECONDS
        for canary in canaries:
            if not self.leading():
                log.warning("not the leader any more: stopping this pass")
                break
            meta = canary.get("metadata", {})
            try:
                requeue = self.reconciler.reconcile(canary)
            except Exception:  # one broken Canary must not stop the others
                log.exception("reconciling %s/%s failed", meta.get("namespace"), meta.get("name"))
                requeue = now + RETRY_SECONDS
            if requeue is not None:
                due = min(due, requeue)
        with self._passed:
            self.passes += 1
            self._passed.notify_all()
        return due

    def leading(self) -> bool:
        """Whether this replica may act (always, without leader election)."""
        return self.elector is None or self.elector.is_leader()

    def _campaign(self) -> float | None:
        """Acquire or renew the Lease; when to try again (None: no leader election)."""
        if self.elector is None:
            return None
        self.elector.try_acquire_or_renew()
        return self.clock.now() + self.elector.config.retry_period

    def wait_for_pass(self, after: int, *, timeout: float) -> bool:
        """Wait (real time) until more than ``after`` passes ran; for tests and tools."""
        with self._passed:
            return self._passed.wait_for(lambda: self.passes > after, timeout=timeout)

    def _watch(self, kind: ResourceKind, stop: threading.Event) -> None:
        for event, _ in self.kube.watch(
            kind,
            namespace=self.namespace,
            stop=stop,
            timeout_seconds=self.watch_timeout_seconds,
        ):
            log.debug("%s %s event", kind.kind, event)
            self.wake.set()

    def start_watches(self, stop: threading.Event) -> list[threading.Thread]:
        """Watch Canaries and Deployments in daemon threads; each event wakes the loop."""
        threads = []
        for kind in (CANARIES, DEPLOYMENTS):
            thread = threading.Thread(
                target=self._watch, args=(kind, stop), name=f"watch-{kind.plural}", daemon=True
            )
            thread.start()
            threads.append(thread)
        return threads

    def _wake_on(self, stop: threading.Event) -> None:
        stop.wait()
        self.wake.set()

    def run(self, stop: threading.Event, *, on_pass: Callable[[], None] | None = None) -> None:
        """Reconcile until ``stop`` is set: on events, at due times, at every resync."""
        self.start_watches(stop)
        threading.Thread(target=self._wake_on, args=(stop,), daemon=True).start()
        log.info("controller running", extra={"namespace": self.namespace or "*"})
        while not stop.is_set():
            self.wake.clear()
            renew = self._campaign()
            if not self.leading():
                self.clock.wait_until(renew, wake=stop)  # a follower ignores watch events
                continue
            due = self.reconcile_all()
            if on_pass is not None:
                on_pass()
            self.clock.wait_until(due if renew is None else min(due, renew), wake=self.wake)
        if self.elector is not None:
            self.elector.release()
        log.info("controller stopped")
