"""Production behaviour against the emulator: load-test Jobs, restarts, retries, leader
election, Events and notifications.

The fake Job controller (conftest.JobController) completes Jobs; Lease patches with a
stale resourceVersion get 409 Conflict. Verdicts here come from a scripted analyzer returning
``gatekeeper.api.v1`` Verdicts (INCONCLUSIVE with a LoadHint, then PASS), so that crash points
and Job names are deterministic; test_end_to_end.py runs the same load-test path against a
real gatekeeper on live simulated traffic, with the Jobs' load reaching the canary.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from controller.clock import ManualClock
from controller.kube import Kube
from controller.leader import LeaderElector, LeaseConfig
from controller.loadtest import job_name
from controller.main import Controller
from controller.model import Phase, Weights
from controller.notify import WebhookNotifier
from controller.reconcile import Reconciler
from controller.resources import EVENTS, JOBS, LEASES, Object
from controller.routers import RouterError
from gatekeeper.api.v1 import gatekeeper_pb2 as pb
from tests.controller.conftest import (
    NAMESPACE,
    DeploymentController,
    EmulatedCluster,
    FixedEmulator,
    JobController,
    set_image,
    wait_for,
)
from tests.controller.helpers import Hook, Rig, unreachable_gatekeeper

NEW = "ghcr.io/stefanprodan/podinfo:6.6.0"
HINTED = {
    "specName": "http",
    "interval": "1m",
    "looks": 5,
    "loadTest": {"maxRps": 10, "maxDuration": "5m"},
}
STEPS: list[dict[str, Any]] = [{"setWeight": 10}, {"analysis": HINTED}, {"setWeight": 50}]


class ScriptedGatekeeper:
    """Answers Analyze from a script of verdicts (the last one repeats); records the looks."""

    def __init__(self, *verdicts: pb.Verdict) -> None:
        self.verdicts = list(verdicts)
        self.looks: list[tuple[int, float]] = []

    def analyze(
        self,
        request: pb.AnalyzeRequest,
        *,
        timeout: float | None = None,
        request_id: str | None = None,
    ) -> pb.Verdict:
        self.looks.append((request.look.index, request.end.seconds))
        return self.verdicts.pop(0) if len(self.verdicts) > 1 else self.verdicts[0]


def quiet() -> pb.Verdict:
    return pb.Verdict(
        decision=pb.DECISION_INCONCLUSIVE,
        summary="not enough canary traffic",
        load_hint=pb.LoadHint(canary_requests_needed=1200, rps=8.0, seconds=150),
    )


def passing() -> pb.Verdict:
    return pb.Verdict(decision=pb.DECISION_PASS, score=100, summary="all metrics within tolerance")


def make_rig(
    kube: Kube,
    deployments: DeploymentController,
    clock: ManualClock,
    analyzer: Any,
    hook: Hook | None = None,
) -> Rig:
    rig = Rig(kube=kube, deployments=deployments, clock=clock, analyzer=analyzer)
    if hook is not None:
        rig.reconciler.notifier = WebhookNotifier(hook.url)
    return rig


def events(kube: Kube) -> list[Object]:
    return kube.list(EVENTS, namespace=NAMESPACE)


def reasons(kube: Kube) -> list[str]:
    return [e["reason"] for e in events(kube)]


def start_rollout(rig: Rig, steps: list[dict[str, Any]]) -> None:
    rig.create(steps=steps)
    rig.until(Phase.IDLE)
    set_image(rig.kube, "podinfo", NEW)
    rig.until(Phase.PROGRESSING)


def test_a_quiet_canary_gets_a_job_sized_by_the_load_hint_then_proceeds(
    kube: Kube,
    deployments: DeploymentController,
    clock: ManualClock,
    jobs: JobController,
    hook: Hook,
) -> None:
    gatekeeper = ScriptedGatekeeper(quiet(), passing())
    rig = make_rig(kube, deployments, clock, gatekeeper, hook)
    start_rollout(rig, STEPS)
    status = rig.until(Phase.PROGRESSING)
    for _ in range(6):  # weight confirmed, warm-up, first look: INCONCLUSIVE with a hint
        clock.advance(60)
        rig.reconcile()
        status = rig.status()
        if status.load_test is not None:
            break
    assert status.load_test is not None and status.step_index == 1
    name = job_name(canary="podinfo", revision=status.canary_hash, step_index=1, look=1)
    assert status.load_test.job == name and len(name) <= 63
    # 8 requests/s asked, within maxRps 10; 1200 requests at 8/s take 150 s.
    assert (status.load_test.rps, status.load_test.duration_seconds) == (8.0, 150.0)
    job = kube.get(JOBS, namespace=NAMESPACE, name=name)
    assert job is not None
    assert job["metadata"]["ownerReferences"][0]["uid"] == rig.canary()["metadata"]["uid"]
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == [
        "hey",
        "-z",
        "150s",
        "-q",
        "8",
        "-c",
        "1",
        "http://podinfo-canary.default.svc:80/",
    ]
    looks_before = len(gatekeeper.looks)
    jobs.wait_finished(1)
    clock.advance(5)
    rig.reconcile()  # the Job finished: look again at once, over the whole window
    assert len(gatekeeper.looks) == looks_before + 1
    assert gatekeeper.looks[-1][0] == 2
    status = rig.until(Phase.SUCCEEDED, rounds=10, step_seconds=5)
    assert jobs.seen == [name]
    assert kube.get(JOBS, namespace=NAMESPACE, name=name) is None  # cleaned up
    assert "LoadTestStarted" in reasons(kube) and "Succeeded" in reasons(kube)
    assert [m["severity"] for m in hook.received] == ["info"]
    assert hook.received[0]["text"].startswith("Promoted")


class Crash(BaseException):
    """The process dies (not an Exception: nothing catches it)."""


class CrashingKube(Kube):
    """A Kube whose every ``period``-th write kills the controller before it happens."""

    def __init__(self, kube: Kube, *, period: int, offset: int) -> None:
        super().__init__(kube.api, timeout=kube.timeout)
        self.period = period
        self.writes = offset

    def _tick(self) -> None:
        self.writes += 1
        if self.writes % self.period == 0:
            raise Crash()

    def create(self, kind: Any, **kw: Any) -> Object:
        self._tick()
        return super().create(kind, **kw)

    def patch(self, kind: Any, **kw: Any) -> Object:
        self._tick()
        return super().patch(kind, **kw)

    def patch_status(self, kind: Any, **kw: Any) -> Object:
        self._tick()
        return super().patch_status(kind, **kw)

    def delete(self, kind: Any, **kw: Any) -> bool:
        self._tick()
        return super().delete(kind, **kw)


@pytest.mark.parametrize(("period", "offset"), [(2, 0), (2, 1), (3, 1), (3, 2), (5, 3)])
def test_killed_and_restarted_at_every_step_resumes_without_a_second_job_or_promotion(  # noqa: PLR0917
    kube: Kube,
    deployments: DeploymentController,
    clock: ManualClock,
    jobs: JobController,
    hook: Hook,
    period: int,
    offset: int,
) -> None:
    gatekeeper = ScriptedGatekeeper(quiet(), passing())
    rig = make_rig(kube, deployments, clock, gatekeeper, hook)
    start_rollout(rig, STEPS)
    crashes = 0
    for round_ in range(80):
        # A fresh process after every crash: nothing survives but the cluster. Every other
        # round crashes at a different write, so crashes land at every point of the rollout.
        crashing: Kube = (
            CrashingKube(kube, period=period, offset=offset + crashes) if round_ % 2 == 0 else kube
        )
        reconciler = Reconciler(
            kube=crashing,
            analyzer=gatekeeper,
            clock=clock,
            memory=rig.memory,
            analyze_timeout=2.0,
            notifier=WebhookNotifier(hook.url),
        )
        try:
            reconciler.reconcile(rig.canary())
        except Crash:
            crashes += 1
        deployments.wait_settled()
        if rig.status().phase is Phase.SUCCEEDED:
            break
        clock.advance(20)
    assert rig.status().phase is Phase.SUCCEEDED, rig.status()
    assert crashes >= 2
    assert len(jobs.seen) == 1  # one load-test Job, adopted after restarts
    looks = [index for index, _ in gatekeeper.looks]
    assert looks == sorted(looks) and set(looks) == set(range(1, max(looks) + 1))  # none lost
    assert reasons(kube).count("Succeeded") == 1  # at least once, and named by its key
    promoted = {m["idempotencyKey"] for m in hook.received if m["text"].startswith("Promoted")}
    assert len(promoted) == 1  # sent at least once; a resend carries the same key
    assert rig.image("podinfo-stable") == NEW


class ByLook:
    """Answers INCONCLUSIVE before rollout-level look ``passes_at``, PASS from it on.

    Records every request's (look, planned, start), whatever crashes re-ask.
    """

    def __init__(self, passes_at: int) -> None:
        self.passes_at = passes_at
        self.asked: list[tuple[int, int, int]] = []

    def analyze(
        self,
        request: pb.AnalyzeRequest,
        *,
        timeout: float | None = None,
        request_id: str | None = None,
    ) -> pb.Verdict:
        self.asked.append((request.look.index, request.look.planned, request.start.seconds))
        if request.look.index >= self.passes_at:
            return passing()
        return pb.Verdict(decision=pb.DECISION_INCONCLUSIVE, summary="not settled yet")


@pytest.mark.parametrize(("period", "offset"), [(2, 0), (3, 1), (5, 3)])
def test_killed_and_restarted_the_rollout_analysis_goes_on_across_steps(
    kube: Kube,
    deployments: DeploymentController,
    clock: ManualClock,
    period: int,
    offset: int,
) -> None:
    two = {"specName": "http", "interval": "1m", "looks": 2}
    steps: list[dict[str, Any]] = [
        {"setWeight": 10},
        {"analysis": two},
        {"setWeight": 50},
        {"analysis": two},
    ]
    gatekeeper = ByLook(passes_at=4)  # steps[1] ends INCONCLUSIVE, steps[3] passes at look 4
    rig = make_rig(kube, deployments, clock, gatekeeper)
    start_rollout(rig, steps)
    crashes = 0
    for round_ in range(80):
        crashing: Kube = (
            CrashingKube(kube, period=period, offset=offset + crashes) if round_ % 2 == 0 else kube
        )
        reconciler = Reconciler(
            kube=crashing, analyzer=gatekeeper, clock=clock, memory=rig.memory, analyze_timeout=2.0
        )
        try:
            reconciler.reconcile(rig.canary())
        except Crash:
            crashes += 1
        deployments.wait_settled()
        if rig.status().phase in (Phase.SUCCEEDED, Phase.FAILED):
            break
        clock.advance(20)
    assert rig.status().phase is Phase.SUCCEEDED, rig.status()
    assert crashes >= 2
    looks = [look for look, _, _ in gatekeeper.asked]
    # One analysis: looks 1-4 of 4 across both steps, none lost, all over the same window.
    assert looks == sorted(looks) and set(looks) == {1, 2, 3, 4}
    assert {planned for _, planned, _ in gatekeeper.asked} == {4}
    assert len({start for _, _, start in gatekeeper.asked}) == 1


def test_gatekeeper_down_bounded_retries_with_backoff_then_rollback(
    kube: Kube, deployments: DeploymentController, clock: ManualClock, hook: Hook
) -> None:
    rig = make_rig(kube, deployments, clock, unreachable_gatekeeper(), hook)
    start_rollout(rig, [{"setWeight": 10}, {"analysis": {**HINTED, "consecutiveErrorLimit": 3}}])
    errors = []
    for _ in range(20):
        clock.advance(10)
        rig.reconcile()
        status = rig.status()
        if status.analysis is not None and status.analysis.consecutive_errors not in errors:
            errors.append(status.analysis.consecutive_errors)
        if status.phase is Phase.FAILED:
            break
    assert status.phase is Phase.FAILED, status
    assert "ERROR 3 times in a row" in status.message
    assert errors[:3] == [0, 1, 2]
    assert rig.memory.get(NAMESPACE, "podinfo").weights == Weights()
    assert "RolledBack" in reasons(kube)
    assert [m["severity"] for m in hook.received] == ["warning"]  # no page: the rollback worked


def test_a_failed_rollback_is_retried_raised_and_pages_once(
    kube: Kube,
    deployments: DeploymentController,
    clock: ManualClock,
    hook: Hook,
    caplog: pytest.LogCaptureFixture,
) -> None:
    rig = make_rig(
        kube,
        deployments,
        clock,
        ScriptedGatekeeper(pb.Verdict(decision=pb.DECISION_FAIL, summary="errors x18")),
        hook,
    )
    start_rollout(rig, [{"setWeight": 10}, {"analysis": HINTED}])
    router = rig.memory.get(NAMESPACE, "podinfo")
    original = router.set_weights
    broken = {"on": True}

    def set_weights(weights: Weights) -> None:
        if broken["on"] and weights == Weights():
            raise RouterError("mesh API unavailable", permanent=False)
        original(weights)

    router.set_weights = set_weights  # type: ignore[method-assign]
    for _ in range(6):
        clock.advance(60)
        rig.reconcile()
    canary = rig.canary()
    assert canary["status"]["phase"] == "Failed"  # the decision is written before acting
    condition = canary["status"]["conditions"][0]
    assert (condition["type"], condition["status"]) == ("RollbackFailed", "True")
    assert any(r.levelname == "ERROR" and "ROLLBACK FAILED" in r.message for r in caplog.records)
    assert router.weights.canary == 10  # still routing to the canary: loud, not silent
    assert reasons(kube).count("RollbackFailed") == 1
    severities = [m["severity"] for m in hook.received]
    assert severities == ["warning", "critical"]  # rolled back, then one page
    assert hook.received[1]["page"] is True
    broken["on"] = False
    clock.advance(10)
    rig.reconcile()
    assert router.weights == Weights()
    assert rig.canary()["status"]["conditions"][0]["status"] == "False"
    assert "RollbackRecovered" in reasons(kube)
    assert len(hook.received) == 2


def test_two_replicas_one_leader_and_failover_after_the_lease_duration(
    kube: Kube, cluster: EmulatedCluster, clock: ManualClock
) -> None:
    config = LeaseConfig(namespace=NAMESPACE, lease_duration=15, renew_deadline=10, retry_period=2)
    a = LeaderElector(kube=kube, config=config, identity="a", clock=clock)
    b = LeaderElector(kube=kube, config=config, identity="b", clock=clock)
    conflicts = FixedEmulator.conflicts
    # Both campaign at once, many times: the Lease's resourceVersion lets exactly one win.
    results: dict[str, list[bool]] = {"a": [], "b": []}

    def campaign(elector: LeaderElector) -> None:
        for _ in range(5):
            results[elector.identity].append(elector.try_acquire_or_renew())

    threads = [threading.Thread(target=campaign, args=(e,)) for e in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert a.is_leader() != b.is_leader()
    leader, follower = (a, b) if a.is_leader() else (b, a)
    assert not any(results[follower.identity][1:])
    lease = kube.get(LEASES, namespace=NAMESPACE, name=config.name)
    assert lease is not None and lease["spec"]["holderIdentity"] == leader.identity
    # A stale write is refused: the emulator really gives conflicts.
    stale = lease["metadata"]["resourceVersion"]
    leader.try_acquire_or_renew()
    with pytest.raises(Exception, match="409"):
        kube.patch_if_unchanged(
            LEASES,
            namespace=NAMESPACE,
            name=config.name,
            resource_version=stale,
            patch={"spec": {"holderIdentity": follower.identity}},
        )
    assert FixedEmulator.conflicts > conflicts
    # The leader stops renewing (killed): the follower waits the lease duration, then takes over.
    for _ in range(7):
        clock.advance(2)
        assert not follower.try_acquire_or_renew()
    assert not leader.is_leader()  # its renew deadline passed: it would not act any more
    clock.advance(2)
    assert follower.try_acquire_or_renew() and follower.is_leader()
    lease = kube.get(LEASES, namespace=NAMESPACE, name=config.name)
    assert lease is not None and lease["spec"]["holderIdentity"] == follower.identity
    assert lease["spec"]["leaseTransitions"] == 1


def test_only_the_leader_reconciles(
    kube: Kube, deployments: DeploymentController, clock: ManualClock, rig: Rig
) -> None:
    rig.create(steps=[{"setWeight": 10}])
    config = LeaseConfig(namespace=NAMESPACE, lease_duration=15, renew_deadline=10, retry_period=2)
    calls = {"a": 0, "b": 0}
    controllers = {}
    for name in ("a", "b"):
        reconciler = Reconciler(
            kube=kube, analyzer=unreachable_gatekeeper(), clock=clock, memory=rig.memory
        )
        original = reconciler.reconcile

        def counted(
            canary: Object,
            _name: str = name,
            _original: Callable[[Object], float | None] = original,
        ) -> float | None:
            calls[_name] += 1
            return _original(canary)

        reconciler.reconcile = counted  # type: ignore[method-assign]
        elector = LeaderElector(kube=kube, config=config, identity=name, clock=clock)
        controllers[name] = Controller(
            kube=kube, reconciler=reconciler, clock=clock, elector=elector
        )
    stops = {name: threading.Event() for name in controllers}
    threads = {
        name: threading.Thread(target=c.run, args=(stops[name],), daemon=True)
        for name, c in controllers.items()
    }
    for thread in threads.values():
        thread.start()
    wait_for(lambda: calls["a"] + calls["b"] >= 2, what="reconciles")
    leader = "a" if calls["a"] else "b"
    other = "b" if leader == "a" else "a"
    assert calls[other] == 0
    stops[leader].set()  # the leader shuts down and releases the Lease
    threads[leader].join(10)
    clock.advance(2)
    wait_for(lambda: calls[other] > 0, what="failover")
    stops[other].set()
    clock.advance(2)
    threads[other].join(10)
