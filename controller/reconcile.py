"""Reconcile one Canary: observe, step, act, write the status.

Level-triggered and idempotent: every reconcile reads the world, asks the pure stepper
what it should look like, makes it so (creating or patching only what differs) and writes
the status, the single source of truth of progress. Running it twice, or after a restart,
changes nothing that is already in place.

Problems are reported in the status, never guessed around: a spec the controller cannot
run (a field, a router that cannot do a step, a target it cannot manage) is written to
``status.specError`` with the rollout frozen where it is; an API error that may pass
(a conflict, a server error) is retried at the next reconcile.

A rollback decision is written to the status *before* it is carried out, so it is never
lost; a rollback that fails (router or API error) is retried every reconcile and raised
loudly: the condition ``RollbackFailed``, a Warning Event, a log at error and a critical
notification (the only one that pages). Every transition gets an Event; promotions and
rollbacks are notified (webhook). Both are written into the status' outbox with the
transition and sent after it, at least once (:mod:`controller.outbox`).

A deleted Canary first gives all traffic back to its target (:mod:`controller.finalizer`).

Load tests run as Jobs (:mod:`controller.loadtest`): created once per decision (an
existing Job of the same deterministic name is adopted), polled while the status says
one runs, and deleted once finished and no longer the status' current one.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from controller import analysis as analyses
from controller import events as transitions
from controller import finalizer, loadtest, outbox
from controller.clock import Clock
from controller.kube import Kube
from controller.model import (
    REQUEST_ANNOTATION,
    CanarySpec,
    Phase,
    SpecError,
    Status,
    parse_intervention,
    parse_spec,
    status_from_dict,
    status_to_dict,
    to_rfc3339,
)
from controller.notify import Notification, Notifier
from controller.resources import (
    CANARIES,
    DEPLOYMENTS,
    JOBS,
    SERVICES,
    KubeError,
    Object,
)
from controller.routers import RouterContext, RouterError, TrafficRouter
from controller.routers.factory import make_router
from controller.routers.memory import MemoryRouters
from controller.stepper import (
    Action,
    ActionFailed,
    EnsureBaseline,
    EnsureServices,
    EnsureStable,
    Feedback,
    LoadTestFinished,
    Observation,
    RequestVerdict,
    RouteHeaders,
    RunLoadTest,
    ScaleCanary,
    SetWeights,
    Transition,
    advance,
)
from controller.workloads import (
    CANARY_LABEL,
    HASH_ANNOTATION,
    Names,
    TargetError,
    deployment_ready,
    merge_patch,
    owner_reference,
    services,
    template_hash,
    track_deployment,
)

log = logging.getLogger("controller.reconcile")

#: Seconds until a reconcile that met a passing problem (API error, missing target) retries.
RETRY_SECONDS = 10.0
ROLLBACK_FAILED = "RollbackFailed"


class Waiting(Exception):
    """Something outside the spec is missing for now (the target Deployment)."""


class RollbackFailed(Exception):
    """Carrying out a rollback failed (router or API error); retried every reconcile."""


@dataclass(frozen=True, slots=True, kw_only=True)
class World:
    """One Canary's objects as read at the start of a reconcile."""

    namespace: str
    names: Names
    canary: Object
    target: Object
    stable: Object | None
    baseline: Object | None
    router: TrafficRouter


class Reconciler:
    """Reconciles Canaries one at a time.

    Parameters
    ----------
    kube : Kube
        The API.
    analyzer : Analyzer
        The gatekeeper client (``GatekeeperClient``).
    clock : Clock
        Time.
    memory : MemoryRouters, optional
        In-memory routers (tests, demo); without it ``router.type: memory`` is an error.
    analyze_timeout : float
        Seconds per Analyze call, retries included.
    notifier : Notifier, optional
        Where promotions, rollbacks and failed rollbacks are announced.
    identity : str
        This replica's name (the Events' ``reportingInstance``).
    """

    def __init__(
        self,
        *,
        kube: Kube,
        analyzer: analyses.Analyzer,
        clock: Clock,
        memory: MemoryRouters | None = None,
        analyze_timeout: float = 30.0,
        notifier: Notifier | None = None,
        identity: str = "",
    ) -> None:
        self.kube = kube
        self.analyzer = analyzer
        self.clock = clock
        self.memory = memory
        self.analyze_timeout = analyze_timeout
        self.notifier = notifier
        self.identity = identity

    def reconcile(self, canary: Object) -> float | None:
        """Reconcile one Canary object.

        Returns
        -------
        float or None
            When to reconcile it again at the latest (None: on the next event).
        """
        meta = canary.get("metadata", {})
        namespace, name = meta.get("namespace", "default"), meta["name"]
        stored = status_from_dict(canary.get("status"))
        generation = int(meta.get("generation") or 0)
        committed = [stored]  # the status last written (a rollback is written before acting)
        self._flush(canary)  # announcements a crash left unsent
        if finalizer.deleting(canary):
            return self._finalize(canary, stored, namespace=namespace)
        try:
            finalizer.hold(self.kube, canary)  # never manage a target a deletion would strand
            spec = parse_spec(canary.get("spec"), name=name)
            status, requeue = self._step(canary, spec, committed, namespace=namespace)
        except RollbackFailed as exc:
            return self._rollback_failed(canary, committed[-1], exc)
        except (SpecError, RouterError, TargetError) as exc:
            if isinstance(exc, RouterError) and not exc.permanent:
                return self._report(canary, stored, message=f"retrying: {exc}", retry=True)
            log.warning("Canary %s/%s cannot run: %s", namespace, name, exc)
            return self._report(canary, stored, spec_error=str(exc))
        except KubeError as exc:
            log.warning("reconciling Canary %s/%s: %s", namespace, name, exc)
            return self._report(canary, stored, message=f"retrying: {exc}", retry=True)
        except Waiting as exc:
            return self._report(canary, stored, message=str(exc), retry=True)
        status = replace(status, observed_generation=generation)
        self._commit(canary, committed[-1], status, recovered=self._rollback_failing(canary))
        self._clean_jobs(canary, before=stored, after=status, namespace=namespace)
        return requeue

    def _finalize(self, canary: Object, stored: Status, *, namespace: str) -> float | None:
        """The Canary was deleted: give all traffic back to the target, then let go."""
        name = canary["metadata"]["name"]
        try:
            names = Names(canary=name, target="")
            stable = self.kube.get(DEPLOYMENTS, namespace=namespace, name=names.stable)
            if stable is not None:
                spec = parse_spec(canary.get("spec"), name=name)
                world = self._world(canary, spec, namespace=namespace)
                total = spec.router.total_replicas or stored.replicas
                size = finalizer.serving_size(total=total, stable=stable, target=world.target)
                waiting = finalizer.restore(
                    self.kube,
                    namespace=namespace,
                    target=world.target,
                    size=size,
                    router=world.router,
                )
                if waiting is not None:
                    return self._report(canary, stored, message=waiting, retry=True)
            finalizer.let_go(self.kube, canary)
        except Waiting:  # no target: nothing can take the traffic, nothing to restore
            log.warning("Canary %s/%s deleted without its target", namespace, name)
            finalizer.let_go(self.kube, canary)
        except (SpecError, RouterError, TargetError, KubeError) as exc:
            log.warning("deleting Canary %s/%s: %s", namespace, name, exc)
            message = f"deleting: cannot restore the target yet, retrying: {exc}"
            return self._report(canary, stored, message=message, retry=True)
        log.info("Canary %s/%s deleted: all traffic to its target", namespace, name)
        return None

    # --- observe ---------------------------------------------------------------------

    def _world(self, canary: Object, spec: CanarySpec, *, namespace: str) -> World:
        names = Names(canary=canary["metadata"]["name"], target=spec.target)
        target = self.kube.get(DEPLOYMENTS, namespace=namespace, name=spec.target)
        if target is None:
            raise Waiting(f"spec.targetRef: Deployment {namespace}/{spec.target} not found")
        stored = status_from_dict(canary.get("status"))
        total = spec.router.total_replicas or stored.replicas
        context = RouterContext(
            namespace=namespace,
            names=names,
            spec=spec,
            kube=self.kube,
            owner=owner_reference(canary),
            total_replicas=total,
        )
        return World(
            namespace=namespace,
            names=names,
            canary=canary,
            target=target,
            stable=self.kube.get(DEPLOYMENTS, namespace=namespace, name=names.stable),
            baseline=self.kube.get(DEPLOYMENTS, namespace=namespace, name=names.baseline),
            router=make_router(context, memory=self.memory),
        )

    def _observe(self, world: World) -> Observation:
        stable_hash = ""
        if world.stable is not None:
            annotations = world.stable.get("metadata", {}).get("annotations") or {}
            stable_hash = annotations.get(HASH_ANNOTATION, "")
        try:
            weights = world.router.read_weights()
        except (RouterError, KubeError) as exc:
            log.info("cannot read the weights of %s back yet: %s", world.names.canary, exc)
            weights = None
        annotations = world.canary.get("metadata", {}).get("annotations") or {}
        return Observation(
            target_hash=template_hash(world.target),
            target_replicas=int(world.target.get("spec", {}).get("replicas", 1) or 1),
            stable_hash=stable_hash,
            stable_ready=deployment_ready(world.stable),
            canary_ready=deployment_ready(world.target),
            baseline_ready=deployment_ready(world.baseline),
            weights=weights,
            canary_replicas=int(world.target.get("spec", {}).get("replicas", 1)),
            baseline_replicas=None
            if world.baseline is None
            else int(world.baseline.get("spec", {}).get("replicas", 1)),
            request=parse_intervention(annotations.get(REQUEST_ANNOTATION)),
        )

    # --- step and act ----------------------------------------------------------------

    def _step(
        self, canary: Object, spec: CanarySpec, committed: list[Status], *, namespace: str
    ) -> tuple[Status, float | None]:
        stored = committed[-1]
        world = self._world(canary, spec, namespace=namespace)
        observation = self._observe(world)
        now = self.clock.now()
        finished = self._load_test_feedback(world, stored)
        transition = advance(
            spec=spec, status=stored, observation=observation, now=now, feedback=finished
        )
        for _ in range(3):  # a verdict or a failed action is fed back once per reconcile
            transition = replace(transition, status=self._name_job(world, transition.status))
            self._persist_rollback(canary, committed, transition.status)
            answer = self._act_checked(world, spec, transition)
            if answer is None:
                break
            transition = advance(
                spec=spec,
                status=transition.status,
                observation=observation,
                now=now,
                feedback=answer,
            )
            world = self._world(canary, spec, namespace=namespace)  # the first pass changed it
        return self._name_job(world, transition.status), transition.requeue_at

    def _persist_rollback(self, canary: Object, committed: list[Status], status: Status) -> None:
        """Write a rollback decision before carrying it out: it is never lost."""
        if status.phase is Phase.FAILED and committed[-1].phase is not Phase.FAILED:
            generation = int(canary.get("metadata", {}).get("generation") or 0)
            status = replace(status, observed_generation=generation)
            self._commit(canary, committed[-1], status)
            committed.append(status)

    def _act_checked(
        self, world: World, spec: CanarySpec, transition: Transition
    ) -> Feedback | None:
        try:
            return self._act(world, spec, transition)
        except (KubeError, RouterError) as exc:
            if transition.status.phase is Phase.FAILED:
                raise RollbackFailed(str(exc)) from exc
            raise

    # --- load tests ------------------------------------------------------------------

    def _job_name(self, world: World, status: Status) -> str:
        state = status.load_test
        assert state is not None
        return state.job or loadtest.job_name(
            canary=world.names.canary,
            revision=status.canary_hash,
            step_index=state.step_index,
            look=state.look,
        )

    def _name_job(self, world: World, status: Status) -> Status:
        state = status.load_test
        if state is None or state.job:
            return status
        return replace(status, load_test=replace(state, job=self._job_name(world, status)))

    def _load_test_feedback(self, world: World, stored: Status) -> Feedback | None:
        """The end of the load test the status says runs, once its Job finished."""
        state = stored.load_test
        if state is None or state.finished or stored.phase is not Phase.PROGRESSING:
            return None
        name = self._job_name(world, stored)
        job = self.kube.get(JOBS, namespace=world.namespace, name=name)
        log.debug("load test Job %s: %s", name, None if job is None else job.get("status"))
        if job is None:
            result = loadtest.JobResult(succeeded=False, message=f"Job {name} is gone")
        else:
            found = loadtest.job_result(job)
            if found is None:
                return None
            result = found
        log.info("load test Job %s/%s finished: %s", world.namespace, name, result)
        return LoadTestFinished(
            step_index=state.step_index,
            look=state.look,
            succeeded=result.succeeded,
            message=result.message,
        )

    def _run_load_test(
        self, world: World, spec: CanarySpec, status: Status, action: RunLoadTest
    ) -> Feedback | None:
        where = loadtest.JobSpec(
            namespace=world.namespace,
            names=world.names,
            revision=status.canary_hash,
            step_index=action.step_index,
            look=action.look,
            port=spec.service.port,
            owner=owner_reference(world.canary),
        )
        body = loadtest.job_body(action.load_test, where=where)
        name = body["metadata"]["name"]
        try:
            self.kube.create(JOBS, namespace=world.namespace, body=body)
        except KubeError as exc:
            if exc.status == 409:
                log.info("load test Job %s/%s exists: adopted", world.namespace, name)
                return None
            if exc.temporary:
                raise
            return ActionFailed(
                step_index=action.step_index, message=f"cannot create load test Job {name}: {exc}"
            )
        return None

    def _clean_jobs(self, canary: Object, *, before: Status, after: Status, namespace: str) -> None:
        """Delete this Canary's load-test Jobs except the one the status says runs."""
        busy = not after.phase.at_rest or after.phase is not before.phase
        if not busy and before.load_test is None:
            return
        keep = after.load_test.job if after.load_test and not after.load_test.finished else ""
        name = canary["metadata"]["name"]
        try:
            jobs = self.kube.list(JOBS, namespace=namespace, labels={CANARY_LABEL: name})
            for job in jobs:
                job_name = job["metadata"]["name"]
                if job_name != keep and loadtest.owned_by(job, canary=name):
                    self.kube.delete(
                        JOBS, namespace=namespace, name=job_name, propagation="Background"
                    )
                    log.info("deleted load test Job %s/%s", namespace, job_name)
        except KubeError as exc:
            log.warning("cleaning the load test Jobs of %s/%s: %s", namespace, name, exc)

    def _act(self, world: World, spec: CanarySpec, transition: Transition) -> Feedback | None:
        """Carry out the actions in order; the feedback of a one-shot action, if any."""
        answer: Feedback | None = None
        for action in transition.actions:
            result = self._do(world, spec, transition.status, action)
            answer = answer or result
        return answer

    def _do(
        self, world: World, spec: CanarySpec, status: Status, action: Action
    ) -> Feedback | None:
        if isinstance(action, EnsureStable):
            self._ensure_stable(world, action)
        elif isinstance(action, EnsureServices):
            self._ensure_services(world, spec, baseline=action.baseline)
        elif isinstance(action, ScaleCanary):
            self._scale(world.namespace, world.target, action.replicas)
        elif isinstance(action, EnsureBaseline):
            self._ensure_baseline(world, action)
        elif isinstance(action, SetWeights):
            world.router.set_weights(action.weights)
        elif isinstance(action, RouteHeaders):
            world.router.set_header_route(action.match)
        elif isinstance(action, RequestVerdict):
            return self._verdict(world, spec, status, action)
        elif isinstance(action, RunLoadTest):
            return self._run_load_test(world, spec, status, action)
        return None

    def _verdict(
        self, world: World, spec: CanarySpec, status: Status, action: RequestVerdict
    ) -> Feedback:
        request = analyses.analyze_request(
            action,
            namespace=world.namespace,
            names=world.names,
            dedicated_baseline=spec.dedicated_baseline,
        )
        ident = analyses.request_id(
            action, namespace=world.namespace, names=world.names, revision=status.canary_hash
        )
        try:
            verdict = self.analyzer.analyze(request, timeout=self.analyze_timeout, request_id=ident)
        except Exception as exc:  # every failure is an ERROR or a refusal, never a PASS
            log.warning("analysis %s failed: %s", ident, exc)
            return analyses.error_feedback(exc, action)
        answer = analyses.feedback(verdict, action)
        log.info("analysis %s: %s: %s", ident, answer.decision, answer.summary)
        return answer

    def _ensure_stable(self, world: World, action: EnsureStable) -> None:
        stable = world.stable
        current = (stable or {}).get("metadata", {}).get("annotations", {}) or {}
        if stable is not None and current.get(HASH_ANNOTATION) == action.template_hash:
            if action.replicas is not None:
                self._scale(world.namespace, stable, action.replicas)
            return
        if template_hash(world.target) != action.template_hash:
            log.info("the target no longer runs template %s; not copying", action.template_hash)
            return
        replicas = action.replicas
        if replicas is None:
            replicas = int((stable or {}).get("spec", {}).get("replicas", 1))
        body = track_deployment(
            names=world.names,
            track="stable",
            target=world.target,
            template=world.target.get("spec", {}).get("template", {}),
            template_hash=action.template_hash,
            replicas=replicas,
            owner=owner_reference(world.canary),
        )
        self._create_or_patch(world.namespace, stable, body)

    def _ensure_baseline(self, world: World, action: EnsureBaseline) -> None:
        baseline, stable = world.baseline, world.stable
        if action.replicas == 0 or stable is None:
            if baseline is not None and action.replicas is not None:
                self._scale(world.namespace, baseline, action.replicas)
            return
        stable_hash = (stable.get("metadata", {}).get("annotations") or {}).get(HASH_ANNOTATION)
        replicas = action.replicas
        if replicas is None:  # sized by the router: keep, or start from zero
            replicas = int((baseline or {}).get("spec", {}).get("replicas", 0))
        body = track_deployment(
            names=world.names,
            track="baseline",
            target=world.target,
            template=stable.get("spec", {}).get("template", {}),
            template_hash=stable_hash or "",
            replicas=replicas,
            owner=owner_reference(world.canary),
        )
        self._create_or_patch(world.namespace, baseline, body)

    def _create_or_patch(self, namespace: str, found: Object | None, body: Object) -> None:
        if found is None:
            self.kube.create(DEPLOYMENTS, namespace=namespace, body=body)
            return
        found_spec = found.get("spec", {})
        patch: dict[str, Any] = {}
        spec_patch = merge_patch({k: found_spec.get(k) for k in body["spec"]}, body["spec"])
        if spec_patch:
            patch["spec"] = spec_patch
        ours = body["metadata"].get("annotations") or {}
        theirs = found.get("metadata", {}).get("annotations") or {}
        changed = {k: v for k, v in ours.items() if theirs.get(k) != v}
        if changed:
            patch["metadata"] = {"annotations": changed}  # others' annotations stay
        if patch:
            name = body["metadata"]["name"]
            self.kube.patch(DEPLOYMENTS, namespace=namespace, name=name, patch=patch)

    def _scale(self, namespace: str, deployment: Mapping[str, Any], replicas: int) -> None:
        if deployment.get("spec", {}).get("replicas") == replicas:
            return
        self.kube.patch(
            DEPLOYMENTS,
            namespace=namespace,
            name=deployment["metadata"]["name"],
            patch={"spec": {"replicas": replicas}},
        )

    def _ensure_services(self, world: World, spec: CanarySpec, *, baseline: bool) -> None:
        for body in services(
            names=world.names,
            target=world.target,
            port=spec.service,
            owner=owner_reference(world.canary),
            baseline=baseline,
        ):
            name = body["metadata"]["name"]
            found = self.kube.get(SERVICES, namespace=world.namespace, name=name)
            if found is None:
                self.kube.create(SERVICES, namespace=world.namespace, body=body)
                continue
            wanted = {k: body["spec"][k] for k in ("selector", "ports")}
            current = {k: found.get("spec", {}).get(k) for k in ("selector", "ports")}
            if merge_patch(current, wanted) is not None:
                self.kube.patch(
                    SERVICES, namespace=world.namespace, name=name, patch={"spec": wanted}
                )

    # --- status ----------------------------------------------------------------------

    def _report(
        self,
        canary: Object,
        stored: Status,
        *,
        message: str = "",
        spec_error: str | None = None,
        retry: bool = False,
    ) -> float | None:
        status = stored if not message else replace(stored, message=message)
        if spec_error is not None:
            status = replace(status, message=f"spec error: {spec_error}")
        generation = int(canary.get("metadata", {}).get("generation") or 0)
        self._write(canary, replace(status, observed_generation=generation), spec_error=spec_error)
        return self.clock.now() + RETRY_SECONDS if retry else None

    # --- transitions: status, Events, notifications ----------------------------------

    def _commit(
        self, canary: Object, before: Status, after: Status, *, recovered: bool = False
    ) -> None:
        """Write the status with its announcements in the outbox, then send them."""
        condition = None
        changes = transitions.changes(before, after)
        if recovered:
            condition = self._condition(False, "Recovered", "the rollback was carried out")
            changes.append(transitions.Change(reason="RollbackRecovered", message=after.message))
        note = None
        if after.phase is not before.phase and after.phase in (Phase.SUCCEEDED, Phase.FAILED):
            promoted = after.phase is Phase.SUCCEEDED
            note = self._note(
                canary,
                after,
                text=("Promoted" if promoted else "Rolled back") + f": {after.message}",
                severity="info" if promoted else "warning",
            )
        announce = outbox.queue(canary, events=changes, notification=note)
        self._write(canary, after, spec_error=None, condition=condition, extra=announce)
        self._flush(canary)

    def _rollback_failing(self, canary: Object) -> bool:
        conditions = (canary.get("status") or {}).get("conditions") or []
        return any(
            c.get("type") == ROLLBACK_FAILED and c.get("status") == "True" for c in conditions
        )

    def _rollback_failed(self, canary: Object, status: Status, exc: RollbackFailed) -> float:
        meta = canary["metadata"]
        where = f"{meta.get('namespace', 'default')}/{meta['name']}"
        log.error("ROLLBACK FAILED for Canary %s (retrying): %s", where, exc)
        first = not self._rollback_failing(canary)
        message = f"rollback failed, retrying: {exc}"
        announce: dict[str, Any] = {}
        if first:  # once per episode, not at every retry
            announce = outbox.queue(
                canary,
                events=[transitions.Change(reason=ROLLBACK_FAILED, message=message, warning=True)],
                notification=self._note(
                    canary, status, text=f"ROLLBACK FAILED for {where}: {exc}", severity="critical"
                ),
            )
        self._write(
            canary,
            replace(status, message=message),
            spec_error=None,
            condition=self._condition(True, "RouterOrAPIError", str(exc)) if first else None,
            extra=announce,
        )
        self._flush(canary)
        return self.clock.now() + RETRY_SECONDS

    def _condition(self, failing: bool, reason: str, message: str) -> dict[str, Any]:
        return {
            "type": ROLLBACK_FAILED,
            "status": "True" if failing else "False",
            "reason": reason,
            "message": message[:1024],
            "lastTransitionTime": to_rfc3339(self.clock.now()),
        }

    def _flush(self, canary: Object) -> None:
        """Send what the outbox holds (at least once); an API error leaves it for later."""
        announcer = outbox.Announcer(
            kube=self.kube, notifier=self.notifier, clock=self.clock, identity=self.identity
        )
        try:
            announcer.flush(canary)
        except KubeError as exc:
            log.warning("cannot update the outbox of %s: %s", canary["metadata"]["name"], exc)

    def _note(self, canary: Object, status: Status, *, text: str, severity: str) -> Notification:
        meta = canary["metadata"]
        fields = {
            "canary": f"{meta.get('namespace', 'default')}/{meta['name']}",
            "phase": status.phase.value,
            "revision": status.canary_hash or "-",
            "stable": status.stable_hash or "-",
            "lastDecision": status.last_decision or "-",
        }
        return Notification(text=text, severity=severity, fields=fields)

    def _write(
        self,
        canary: Object,
        status: Status,
        *,
        spec_error: str | None,
        condition: dict[str, Any] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        body: dict[str, Any] = {**status_to_dict(status), "specError": spec_error, **(extra or {})}
        if condition is not None:
            body["conditions"] = [condition]
        current = canary.get("status") or {}
        if all(current.get(key) == value for key, value in body.items()):
            return
        meta = canary["metadata"]
        self.kube.patch_status(
            CANARIES, namespace=meta.get("namespace", "default"), name=meta["name"], status=body
        )
        canary["status"] = {**current, **{k: v for k, v in body.items() if v is not None}}
