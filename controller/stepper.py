"""The rollout state machine: (spec, status, observation, feedback, now) -> (status, actions).

PURE: no Kubernetes, no gRPC, no clock of its own. The reconciler observes the world,
calls :func:`advance`, carries out the actions in order and writes the new status; when an
action yields something the machine must judge (a verdict, a failed action), it calls
:func:`advance` again with that ``feedback``. Actions are declarative ("the stable should
run template H with N pods", "weights should be 10/90"): carrying them out twice changes
nothing, so a reconcile can be repeated at any time, and the status alone says where a
rollout is.

Phases: ``Initializing`` (create the stable copy of the target, route all traffic to it)
-> ``Idle``; a new target template -> ``Progressing`` through ``spec.steps`` (``Paused`` at
manual gates) -> ``Promoting`` (the stable takes the canary's template) -> ``Succeeded``;
or a rollback -> ``Failed``. Decisions that never promote on doubt:

- FAIL, a permanent gatekeeper error (bad spec, rejected query), canary pods not ready
  within ``progressDeadlineSeconds``: roll back at once.
- ERROR verdicts or an unreachable gatekeeper: ask the same look again after a backoff
  (10 s, 20 s, ... up to the interval); roll back after ``consecutiveErrorLimit`` in a row.
- One analysis per rollout (:mod:`controller.plan`): the looks of all analysis steps are
  numbered across the rollout over one cumulative window from the first analysis step's
  start. PASS ends an analysis step; the plan's end needs a PASS to promote.
- INCONCLUSIVE at an intermediate step's last look: the next step. At the final step's:
  hold the weight for ``maxExtraLooks`` more looks, then ``onInconclusive`` (pause for a
  human, the default, whose resume looks on; roll back; or extend by ``maxExtraLooks``).
- INCONCLUSIVE with looks left, a LoadHint and an analysis ``loadTest``: a load test sized by
  the hint within the caps (:class:`RunLoadTest`, once per decision, none while one runs).
  Looks go on while it runs, so a canary that fails under load is rolled back at the first
  look that shows it; when it finished (:class:`LoadTestFinished`) the next look is due at
  once.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

from controller import plan
from controller.model import (
    VERDICTS_KEPT,
    Analysis,
    AnalysisState,
    CanarySpec,
    HeaderMatch,
    Intervention,
    LoadTest,
    LoadTestState,
    Pause,
    Phase,
    SetHeaderRoute,
    SetWeight,
    Status,
    Step,
    VerdictRecord,
    Weights,
    format_duration,
    replica_split,
)

#: How soon to look again while waiting for something without a known time.
RECHECK_SECONDS = 5.0
#: First backoff after an ERROR look; doubled per ERROR in a row, at most the interval.
RETRY_BASE_SECONDS = 10.0

DECISIONS = ("PASS", "FAIL", "INCONCLUSIVE", "ERROR")


# --- inputs -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Observation:
    """What the reconciler saw of the world before calling the stepper.

    Attributes
    ----------
    target_hash : str
        Hash of the target Deployment's pod template.
    target_replicas : int
        The target's ``spec.replicas`` (the stable's size at initialisation).
    stable_hash : str
        The template hash the stable Deployment runs ("" when it does not exist).
    stable_ready, canary_ready, baseline_ready : bool
        Whether each Deployment has all its pods updated and available.
    weights : Weights, optional
        The router's read-back of the weights in effect (None: cannot tell yet).
    canary_replicas, baseline_replicas : int, optional
        The Deployments' ``spec.replicas``: ready means ready at the size wanted
        (None: not checked).
    request : Intervention, optional
        A human's request (resume, promote, abort) from the annotation.
    """

    target_hash: str
    target_replicas: int = 1
    stable_hash: str = ""
    stable_ready: bool = False
    canary_ready: bool = False
    baseline_ready: bool = True
    weights: Weights | None = None
    canary_replicas: int | None = None
    baseline_replicas: int | None = None
    request: Intervention | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class LoadHint:
    """The gatekeeper's LoadHint: canary requests still needed, and at what rate for how long.

    ``rps`` is synthetic canary traffic to add on top of the organic traffic.
    """

    canary_requests_needed: float
    rps: float
    seconds: float


@dataclass(frozen=True, slots=True, kw_only=True)
class VerdictFeedback:
    """The answer to a :class:`RequestVerdict`.

    Attributes
    ----------
    step_index, look : int
        The step and look it answers.
    decision : str
        PASS, FAIL, INCONCLUSIVE or ERROR (ERROR also for an unreachable gatekeeper).
    summary : str
        The verdict's one sentence, or the error.
    permanent : bool
        The gatekeeper refused the request as sent (bad spec, rejected query): asking
        again gives the same answer, so the rollout fails.
    """

    step_index: int
    look: int
    decision: str
    summary: str
    permanent: bool = False
    load_hint: LoadHint | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ActionFailed:
    """A one-shot action of a step could not be carried out (e.g. not supported yet)."""

    step_index: int
    message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class LoadTestFinished:
    """The load test of ``(step_index, look)`` (a :class:`RunLoadTest`) ended."""

    step_index: int
    look: int
    succeeded: bool = True
    message: str = ""


Feedback = VerdictFeedback | ActionFailed | LoadTestFinished


# --- actions ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class EnsureStable:
    """The ``<name>-stable`` Deployment runs the target's template of hash ``template_hash``.

    ``replicas`` None: leave its size to the router (replica ratio).
    """

    template_hash: str
    replicas: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class EnsureServices:
    """The ``<name>-stable`` and ``<name>-canary`` (and ``-baseline``) Services exist."""

    baseline: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class ScaleCanary:
    """The target Deployment (the canary) has ``replicas`` pods."""

    replicas: int


@dataclass(frozen=True, slots=True, kw_only=True)
class EnsureBaseline:
    """``<name>-baseline`` runs the stable's template with ``replicas`` pods (0: scaled down).

    ``replicas`` None: leave its size to the router (replica ratio).
    """

    replicas: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class SetWeights:
    """The router sends these percentages to canary and baseline, the rest to stable."""

    weights: Weights


@dataclass(frozen=True, slots=True, kw_only=True)
class RouteHeaders:
    """Requests matching every header condition go to the canary; empty: no header route."""

    match: tuple[HeaderMatch, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestVerdict:
    """Ask the gatekeeper to judge ``[start, end]`` as look ``look`` of ``planned``."""

    step_index: int
    analysis: Analysis
    look: int
    planned: int
    start: float
    end: float


@dataclass(frozen=True, slots=True, kw_only=True)
class RunLoadTest:
    """Run a load test: ``load_test.rps`` requests/s for ``load_test.duration_seconds``.

    Emitted once, when the machine decides it (the status' ``load_test`` records it); the
    executor answers :class:`LoadTestFinished` with the same ``step_index`` and ``look``
    when it ended. ``look`` is the look whose LoadHint sized it (0: a ``loadTest`` step);
    ``(canary revision, step_index, look)`` identifies it (the Job's name).
    """

    step_index: int
    load_test: LoadTest
    look: int = 0


Action = (
    EnsureStable
    | EnsureServices
    | ScaleCanary
    | EnsureBaseline
    | SetWeights
    | RouteHeaders
    | RequestVerdict
    | RunLoadTest
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Transition:
    """The stepper's answer.

    Attributes
    ----------
    status : Status
        The new status, to be written.
    actions : tuple of Action
        To carry out in order.
    requeue_at : float, optional
        When to reconcile again at the latest (events may come sooner).
    """

    status: Status
    actions: tuple[Action, ...]
    requeue_at: float | None


# --- the machine ------------------------------------------------------------------------


def advance(
    *,
    spec: CanarySpec,
    status: Status,
    observation: Observation,
    now: float,
    feedback: Feedback | None = None,
) -> Transition:
    """One step of the machine.

    Parameters
    ----------
    spec : CanarySpec
        The validated spec.
    status : Status
        The stored status.
    observation : Observation
        The world as the reconciler saw it.
    now : float
        The clock's reading (epoch seconds).
    feedback : VerdictFeedback or ActionFailed, optional
        The result of a one-shot action of the previous call.

    Returns
    -------
    Transition
        New status, declarative actions in order, and when to look again.
    """
    if observation.request is not None and observation.request.id != status.handled_request:
        status = _intervene(spec, status, observation.request)
    if status.phase is Phase.INITIALIZING:
        status = _initialize(status, observation)
    elif status.phase.at_rest:
        status = _maybe_start(spec, status, observation, now)
    one_shot: list[Action] = []
    if status.phase in (Phase.PROGRESSING, Phase.PAUSED):
        status = _progress(
            spec, status=status, seen=observation, now=now, feedback=feedback, one_shot=one_shot
        )
    if status.phase is Phase.PROMOTING:
        status = _promote(spec, status, observation, now)
    actions = (*_desired(spec, status, observation), *one_shot)
    return Transition(status=status, actions=actions, requeue_at=_requeue_at(spec, status, now))


def _intervene(spec: CanarySpec, status: Status, request: Intervention) -> Status:
    """Apply a human's resume, promote or abort; anything else is acknowledged and ignored.

    A resume after an INCONCLUSIVE pause looks on (another ``maxExtraLooks``), never
    past the analysis: an INCONCLUSIVE canary is only promoted by an explicit promote.
    """
    status = replace(status, handled_request=request.id)
    in_flight = status.phase in (Phase.PROGRESSING, Phase.PAUSED)
    held = status.analysis is not None and status.analysis.held
    if request.verb == "resume" and status.phase is Phase.PAUSED and held:
        return _grant(spec, replace(status, phase=Phase.PROGRESSING), "resumed on request")
    if request.verb == "resume" and status.phase is Phase.PAUSED:
        return _next_step(replace(status, phase=Phase.PROGRESSING, message="resumed on request"))
    if request.verb == "promote" and in_flight:
        return replace(status, phase=Phase.PROMOTING, analysis=None, message="promotion requested")
    if request.verb == "abort" and (in_flight or status.phase is Phase.PROMOTING):
        return _rollback(status, "aborted on request")
    return replace(
        status, message=f"request {request.verb!r} ignored: phase is {status.phase.value}"
    )


def _initialize(status: Status, seen: Observation) -> Status:
    if not seen.stable_hash:
        status = replace(
            status,
            stable_hash=seen.target_hash,
            replicas=max(seen.target_replicas, 1),
            message="creating the stable Deployment",
        )
    confirmed = seen.weights == Weights()
    if seen.stable_ready and seen.stable_hash == status.stable_hash and confirmed:
        return replace(status, phase=Phase.IDLE, message="stable serving all traffic")
    return status


def _maybe_start(spec: CanarySpec, status: Status, seen: Observation, now: float) -> Status:
    new = seen.target_hash
    if not new or new in (status.stable_hash, status.failed_hash):
        return status
    return _start(spec, status, new, now)


def _start(spec: CanarySpec, status: Status, template_hash: str, now: float) -> Status:
    return replace(
        status,
        phase=Phase.PROGRESSING,
        message=f"rolling out template {template_hash} in {len(spec.steps)} steps",
        canary_hash=template_hash,
        step_index=0,
        step_started_at=now,
        weight=0,
        weight_confirmed_at=None,
        header_route=(),
        header_route_changed_at=None,
        not_ready_since=None,
        analysis=None,
        load_test=None,
    )


def _rollback(status: Status, reason: str) -> Status:
    return replace(
        status,
        load_test=None,
        phase=Phase.FAILED,
        message=f"rolled back: {reason}",
        failed_hash=status.canary_hash,
        weight=0,
        weight_confirmed_at=None,
        header_route=(),
        analysis=None,
        not_ready_since=None,
    )


def _next_step(status: Status) -> Status:
    """On to the next step; the rollout's analysis goes on, its step schedule closed."""
    analysis = status.analysis
    return replace(
        status,
        step_index=status.step_index + 1,
        step_started_at=None,
        analysis=None if analysis is None else replace(analysis, step_open=False, held=False),
        load_test=None,
    )


def _grant(spec: CanarySpec, status: Status, why: str) -> Status:
    """The final analysis step may look on: ``maxExtraLooks`` more looks at its weight."""
    step = spec.steps[status.step_index]
    analysis = status.analysis
    if not isinstance(step, Analysis) or analysis is None:
        return status
    more = plan.extension(step)
    analysis = replace(analysis, held=False, granted_looks=analysis.granted_looks + more)
    return replace(status, analysis=analysis, message=f"{why}: {more} more looks")


def _progress(
    spec: CanarySpec,
    *,
    status: Status,
    seen: Observation,
    now: float,
    feedback: Feedback | None,
    one_shot: list[Action],
) -> Status:
    if seen.target_hash != status.canary_hash:
        if seen.target_hash == status.stable_hash:
            return replace(
                _rollback(status, "the target went back to the stable template"),
                phase=Phase.IDLE,
                failed_hash=status.failed_hash,
            )
        return _start(spec, status, seen.target_hash, now)
    status = _readiness(spec, status, seen, now)
    if status.phase is Phase.FAILED:
        return status
    if status.weight_confirmed_at is None and seen.weights == _weights(spec, status):
        status = replace(status, weight_confirmed_at=now)
    if feedback is not None:
        status = _apply_feedback(spec, status, feedback, now=now, one_shot=one_shot)
    ready = status.not_ready_since is None
    for _ in range(len(spec.steps) + 1):
        if status.phase is not Phase.PROGRESSING or not ready:
            return status
        if status.step_index >= len(spec.steps):
            return _end_of_plan(spec, status)
        if status.step_started_at is None:
            status = replace(status, step_started_at=now)
        status, done = _run_step(spec, status, seen, now, one_shot)
        if not done:
            return status
        status = _next_step(status)
    return status


def _end_of_plan(spec: CanarySpec, status: Status) -> Status:
    """Promote after the last step, but only a canary whose analysis reached PASS."""
    passed = status.analysis is not None and status.analysis.passed
    if passed or not plan.has_analysis(spec):
        return replace(
            status, phase=Phase.PROMOTING, analysis=None, message="all steps passed: promoting"
        )
    return replace(
        status,
        step_index=len(spec.steps) - 1,
        phase=Phase.PAUSED,
        message="not promoted: the analysis never reached PASS (a step was resumed past); "
        "promote or abort",
    )


def _sizes(spec: CanarySpec, status: Status) -> tuple[int, int]:
    """The canary's and the dedicated baseline's pods wanted now."""
    if _router_sizes(spec):
        total = spec.router.total_replicas or status.replicas
        _, canary, baseline = replica_split(total=total, weights=_weights(spec, status))
        return canary, baseline
    return status.replicas, status.replicas if spec.dedicated_baseline else 0


def _readiness(spec: CanarySpec, status: Status, seen: Observation, now: float) -> Status:
    canary_size, baseline_size = _sizes(spec, status)
    sized = seen.canary_replicas in (None, canary_size) and (
        not spec.dedicated_baseline or seen.baseline_replicas in (None, baseline_size)
    )
    ready = sized and seen.canary_ready and (seen.baseline_ready or not spec.dedicated_baseline)
    if ready:
        return replace(status, not_ready_since=None)
    since = status.not_ready_since if status.not_ready_since is not None else now
    deadline = spec.progress_deadline_seconds
    if now - since >= deadline:
        who = "canary" if not seen.canary_ready else "baseline"
        return _rollback(
            status,
            f"{who} pods not ready within progressDeadlineSeconds ({format_duration(deadline)})",
        )
    return replace(status, not_ready_since=since)


def _run_step(
    spec: CanarySpec, status: Status, seen: Observation, now: float, one_shot: list[Action]
) -> tuple[Status, bool]:
    """Carry out the current step; True when it is done."""
    step: Step = spec.steps[status.step_index]
    if isinstance(step, SetWeight):
        if step.weight != status.weight:
            status = replace(status, weight=step.weight, weight_confirmed_at=None)
        return status, True
    if isinstance(step, SetHeaderRoute):
        if step.match != status.header_route:
            status = replace(status, header_route=step.match, header_route_changed_at=now)
        return status, True
    if isinstance(step, Pause):
        return _pause(status, step, now)
    if isinstance(step, LoadTest):
        return _load_step(status, step, now, one_shot)
    return _analyze(spec, status, step, now, one_shot)


def _load_step(
    status: Status, step: LoadTest, now: float, one_shot: list[Action]
) -> tuple[Status, bool]:
    state = status.load_test
    if state is not None and state.step_index == status.step_index:
        return status, state.finished
    return _start_load_test(status, step, look=0, now=now, one_shot=one_shot), False


def size_load_test(template: LoadTest, hint: LoadHint) -> LoadTest:
    """The load test a hint asks for, within the template's caps.

    The rate is capped at ``max_rps``; the requests still needed then take longer, up to
    ``max_duration_seconds``.
    """
    rps = min(hint.rps, template.max_rps)
    seconds = float(hint.seconds)
    if hint.canary_requests_needed > 0 and rps > 0:
        seconds = max(seconds, math.ceil(hint.canary_requests_needed / rps))
    seconds = min(max(seconds, 1.0), template.max_duration_seconds)
    return replace(template, rps=rps, duration_seconds=seconds)


def _start_load_test(
    status: Status, load: LoadTest, *, look: int, now: float, one_shot: list[Action]
) -> Status:
    one_shot.append(RunLoadTest(step_index=status.step_index, load_test=load, look=look))
    state = LoadTestState(
        step_index=status.step_index,
        look=look,
        rps=load.rps,
        duration_seconds=load.duration_seconds,
        started_at=now,
    )
    what = f"{load.rps:g} requests/s for {format_duration(load.duration_seconds)}"
    return replace(
        status,
        load_test=state,
        message=f"steps[{status.step_index}]: load test of the canary, {what}",
    )


def _load_running(status: Status) -> bool:
    state = status.load_test
    return state is not None and state.step_index == status.step_index and not state.finished


def _pause(status: Status, step: Pause, now: float) -> tuple[Status, bool]:
    if step.duration_seconds is None:
        return replace(
            status,
            phase=Phase.PAUSED,
            message=f"manual gate at steps[{status.step_index}]: resume, promote or abort",
        ), False
    started = status.step_started_at if status.step_started_at is not None else now
    return status, now >= started + step.duration_seconds


def _analyze(
    spec: CanarySpec, status: Status, step: Analysis, now: float, one_shot: list[Action]
) -> tuple[Status, bool]:
    """Ask the looks due: numbered across the rollout, each over ``[start, end]``."""
    if status.weight_confirmed_at is None:
        return replace(
            status, message=f"waiting for the router to confirm weight {status.weight}"
        ), False
    state = status.analysis
    changed = max(status.weight_confirmed_at, status.header_route_changed_at or 0.0)
    if state is None:
        state = AnalysisState(start=changed + step.warmup_seconds)
    elif not state.step_open:
        state = plan.open_step(state, origin=max(now, changed))
    status = replace(status, analysis=state)
    origin = plan.step_origin(state)
    local = math.floor((now - origin) / step.interval_seconds) if now > origin else 0
    due = state.looks_before_step + local
    if state.retry_at is not None:
        if now < state.retry_at:
            return status, False
        due = max(due, state.looks_taken + 1)
    due = min(due, plan.last_look(spec, status.step_index, state))
    if due > state.looks_taken:
        one_shot.append(
            RequestVerdict(
                step_index=status.step_index,
                analysis=step,
                look=due,
                planned=plan.planned_looks(spec),
                start=state.start,
                end=origin + (due - state.looks_before_step) * step.interval_seconds,
            )
        )
        status = replace(status, analysis=replace(state, looks_taken=due, retry_at=None))
    return status, False


def _apply_feedback(
    spec: CanarySpec, status: Status, feedback: Feedback, *, now: float, one_shot: list[Action]
) -> Status:
    if feedback.step_index != status.step_index:
        return status  # about a step already left (a resume, a restart): stale
    if isinstance(feedback, ActionFailed):
        return _paused_by_failure(status, feedback.message)
    step = spec.steps[status.step_index] if status.step_index < len(spec.steps) else None
    if isinstance(feedback, LoadTestFinished):
        return _load_finished(status, step, feedback, now=now)
    if not isinstance(step, Analysis) or status.analysis is None:
        return status
    return _judge(spec, status, step, feedback, now=now, one_shot=one_shot)


def _paused_by_failure(status: Status, message: str) -> Status:
    return replace(
        status,
        phase=Phase.PAUSED,
        message=f"steps[{status.step_index}]: {message}; "
        "resume to continue past it, or abort to roll back",
    )


def _load_finished(
    status: Status, step: Step | None, done: LoadTestFinished, *, now: float
) -> Status:
    state = status.load_test
    if state is None or state.look != done.look or state.finished:
        return status  # not the load test in flight: stale
    status = replace(status, load_test=replace(state, finished=True))
    if isinstance(step, LoadTest):
        if not done.succeeded:
            return _paused_by_failure(status, f"the load test failed: {done.message}")
        return replace(status, message=f"steps[{status.step_index}]: load test finished")
    if not isinstance(step, Analysis) or status.analysis is None:
        return status
    analysis = status.analysis
    # The next look is due at once and covers the whole window, the load test's included.
    base = plan.step_origin(replace(analysis, offset_seconds=0.0))
    offset = now - base - (plan.step_looks(analysis) + 1) * step.interval_seconds
    analysis = replace(analysis, offset_seconds=offset)
    outcome = "finished" if done.succeeded else f"failed ({done.message})"
    return replace(
        status,
        analysis=analysis,
        message=f"steps[{status.step_index}]: load test {outcome}; looking again",
    )


def _record(status: Status, verdict: VerdictFeedback) -> Status:
    record = VerdictRecord(
        step_index=verdict.step_index,
        look=verdict.look,
        decision=verdict.decision,
        summary=verdict.summary,
    )
    return replace(
        status,
        last_decision=verdict.decision,
        last_summary=verdict.summary,
        verdicts=(*status.verdicts, record)[-VERDICTS_KEPT:],
    )


def _judge(
    spec: CanarySpec,
    status: Status,
    step: Analysis,
    verdict: VerdictFeedback,
    *,
    now: float,
    one_shot: list[Action],
) -> Status:
    status = _record(status, verdict)
    state = status.analysis
    assert state is not None  # checked by the caller
    state = replace(state, passed=verdict.decision == "PASS")
    status = replace(status, analysis=state)
    where = f"steps[{status.step_index}] look {verdict.look}"
    if verdict.permanent:
        return _rollback(
            status, f"the gatekeeper refused the analysis of {where}: {verdict.summary}"
        )
    if verdict.decision == "FAIL":
        return _rollback(status, f"FAIL at {where}: {verdict.summary}")
    if verdict.decision == "PASS":
        return _next_step(replace(status, message=f"PASS at {where}: {verdict.summary}"))
    if verdict.decision == "INCONCLUSIVE":
        status = replace(status, analysis=replace(state, consecutive_errors=0, retry_at=None))
        return _inconclusive(spec, status, step, verdict, now=now, one_shot=one_shot)
    return _error(status, step, state, verdict, now=now)


def retry_backoff(*, errors: int, interval_seconds: float) -> float:
    """Seconds before asking a look again after ``errors`` ERROR answers in a row."""
    return float(min(interval_seconds, RETRY_BASE_SECONDS * 2 ** max(errors - 1, 0)))


def _error(
    status: Status, step: Analysis, state: AnalysisState, verdict: VerdictFeedback, *, now: float
) -> Status:
    where = f"steps[{status.step_index}] look {verdict.look}"
    errors = state.consecutive_errors + 1
    if errors >= step.consecutive_error_limit:
        return _rollback(
            status,
            f"the gatekeeper answered ERROR {errors} times in a row (limit "
            f"{step.consecutive_error_limit}), last at {where}: {verdict.summary}",
        )
    wait = retry_backoff(errors=errors, interval_seconds=step.interval_seconds)
    retry = replace(
        state,
        consecutive_errors=errors,
        looks_taken=min(state.looks_taken, verdict.look - 1),
        retry_at=now + wait,
    )
    return replace(
        status,
        analysis=retry,
        message=f"ERROR at {where} ({errors} of {step.consecutive_error_limit}), "
        f"asking again in {format_duration(wait)}: {verdict.summary}",
    )


def _inconclusive(
    spec: CanarySpec,
    status: Status,
    step: Analysis,
    verdict: VerdictFeedback,
    *,
    now: float,
    one_shot: list[Action],
) -> Status:
    """Look on while the step has looks left; then move on, or hold and ``onInconclusive``.

    An intermediate analysis step is done after its looks without FAIL; the final one
    holds its weight for ``maxExtraLooks`` more (load tests sized by the hint), then
    pauses, rolls back or (``extend``) grants itself another ``maxExtraLooks``.
    """
    state = status.analysis
    assert state is not None  # checked by the caller
    planned = plan.planned_looks(spec)
    where = f"steps[{status.step_index}] look {verdict.look} of {planned}"
    if verdict.look < plan.last_look(spec, status.step_index, state):
        return _look_on(
            status, step, verdict, f"INCONCLUSIVE at {where}", now=now, one_shot=one_shot
        )
    if not plan.is_final(spec, status.step_index):
        return _next_step(
            replace(
                status,
                message=f"INCONCLUSIVE at {where}: this step's looks are done "
                "without FAIL; on to the next step",
            )
        )
    extra = plan.step_looks(state) - step.looks
    held = f"still INCONCLUSIVE at {where} after {extra} extra looks"
    if step.on_inconclusive == "extend":
        return _grant(spec, status, f"{held}: extending (onInconclusive: extend)")
    if step.on_inconclusive == "pause":
        return replace(
            status,
            phase=Phase.PAUSED,
            analysis=replace(state, held=True),
            message=f"{held}: paused at weight {status.weight} (onInconclusive: pause); "
            "resume to look on, promote or abort",
        )
    return _rollback(status, f"{held}: {verdict.summary}")


def _look_on(
    status: Status,
    step: Analysis,
    verdict: VerdictFeedback,
    what: str,
    *,
    now: float,
    one_shot: list[Action],
) -> Status:
    """Looks left: go on, with a load test sized by the LoadHint where one is configured."""
    hint = verdict.load_hint
    if _load_running(status):
        return replace(status, message=f"{what}: looking on under load")
    if step.load_test is not None and hint is not None and hint.rps > 0 and hint.seconds > 0:
        load = size_load_test(step.load_test, hint)
        status = _start_load_test(status, load, look=verdict.look, now=now, one_shot=one_shot)
        return replace(status, message=f"{what}: {status.message}")
    return replace(status, message=f"{what}: looking on")


def _promote(spec: CanarySpec, status: Status, seen: Observation, now: float) -> Status:
    if status.canary_hash not in (seen.target_hash, seen.stable_hash):
        return _start(spec, status, seen.target_hash, now)  # a newer template arrived
    if seen.stable_hash == status.canary_hash and seen.stable_ready:
        return replace(
            status,
            phase=Phase.SUCCEEDED,
            message=f"promoted template {status.canary_hash}",
            stable_hash=status.canary_hash,
            weight=0,
            weight_confirmed_at=None,
            header_route=(),
            analysis=None,
            not_ready_since=None,
            load_test=None,
        )
    return replace(status, message=f"promoting: the stable takes template {status.canary_hash}")


# --- what the world should look like -----------------------------------------------------


def _weights(spec: CanarySpec, status: Status) -> Weights:
    in_flight = status.phase in (Phase.PROGRESSING, Phase.PAUSED, Phase.PROMOTING)
    weight = status.weight if in_flight else 0
    return Weights(canary=weight, baseline=weight if spec.dedicated_baseline else 0)


def _router_sizes(spec: CanarySpec) -> bool:
    """Whether the router sizes the Deployments (replica ratio) instead of the stepper."""
    return spec.router.type == "replicas"


def _desired(spec: CanarySpec, status: Status, seen: Observation) -> Sequence[Action]:
    sized = _router_sizes(spec)
    baseline = spec.dedicated_baseline
    if status.phase is Phase.INITIALIZING:
        actions: list[Action] = [
            EnsureStable(template_hash=status.stable_hash, replicas=status.replicas),
            EnsureServices(baseline=baseline),
        ]
        if seen.stable_ready and seen.stable_hash == status.stable_hash:
            actions += [SetWeights(weights=Weights()), RouteHeaders(match=())]
        return actions
    in_flight = status.phase in (Phase.PROGRESSING, Phase.PAUSED, Phase.PROMOTING)
    stable_hash = status.canary_hash if status.phase is Phase.PROMOTING else status.stable_hash
    canary_size = status.replicas if in_flight else 0
    actions = [
        EnsureStable(template_hash=stable_hash, replicas=None if sized else status.replicas),
        EnsureServices(baseline=baseline),
    ]
    scaling: list[Action] = [] if sized else [ScaleCanary(replicas=canary_size)]
    if baseline:
        scaling.append(EnsureBaseline(replicas=None if sized else canary_size))
    routing: list[Action] = [
        SetWeights(weights=_weights(spec, status)),
        RouteHeaders(match=status.header_route if in_flight else ()),
    ]
    # Scale up before traffic moves to the canary; move traffic away before scaling down.
    return [*actions, *scaling, *routing] if in_flight else [*actions, *routing, *scaling]


def _requeue_at(spec: CanarySpec, status: Status, now: float) -> float | None:
    """The next time something is due without an event announcing it."""
    if status.phase.at_rest:
        return None
    if status.phase in (Phase.INITIALIZING, Phase.PROMOTING):
        return now + RECHECK_SECONDS
    times: list[float] = []
    if status.not_ready_since is not None:
        times += [now + RECHECK_SECONDS, status.not_ready_since + spec.progress_deadline_seconds]
    step = spec.steps[status.step_index] if status.step_index < len(spec.steps) else None
    if status.phase is Phase.PAUSED:
        return min(times, default=None)
    if isinstance(step, Pause) and step.duration_seconds is not None:
        times.append((status.step_started_at or now) + step.duration_seconds)
    if _load_running(status) or isinstance(step, LoadTest):
        times.append(now + RECHECK_SECONDS)  # the load test's Job is polled
    elif isinstance(step, Analysis):
        state = status.analysis
        if state is None or not state.step_open:
            times.append(now + RECHECK_SECONDS)  # waiting for the router's read-back
        elif state.retry_at is not None:
            times.append(state.retry_at)
        else:
            origin = plan.step_origin(state)
            times.append(origin + (plan.step_looks(state) + 1) * step.interval_seconds)
    return min(times, default=now + RECHECK_SECONDS)
