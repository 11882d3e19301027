"""The stepper, table by table: every step kind and every outcome, as a pure function."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from controller.model import (
    AnalysisState,
    HeaderMatch,
    Intervention,
    LoadTestState,
    Phase,
    Status,
    Weights,
    parse_spec,
    status_from_dict,
    status_to_dict,
)
from controller.stepper import (
    ActionFailed,
    EnsureBaseline,
    EnsureServices,
    EnsureStable,
    Feedback,
    LoadHint,
    LoadTestFinished,
    Observation,
    RequestVerdict,
    RouteHeaders,
    RunLoadTest,
    ScaleCanary,
    SetWeights,
    Transition,
    VerdictFeedback,
    advance,
)

T0 = 1_000_000.0
ANALYSIS = {"specName": "http", "interval": "1m", "looks": 3}
QA = [{"name": "x-canary", "exact": "qa"}]


def spec(*steps: dict[str, Any], router: str = "memory", **extra: Any) -> Any:
    raw = {"targetRef": {"name": "app"}, "router": {"type": router}, "steps": list(steps)}
    return parse_spec({**raw, **extra}, name="app")


def rolling(step_index: int = 0, **changes: Any) -> Status:
    """A rollout of template h2 over stable h1, canary ready, at ``step_index``."""
    base = Status(
        phase=Phase.PROGRESSING,
        stable_hash="h1",
        canary_hash="h2",
        replicas=3,
        step_index=step_index,
        step_started_at=T0,
    )
    return replace(base, **changes)


def seen(**changes: Any) -> Observation:
    base = Observation(
        target_hash="h2",
        target_replicas=3,
        stable_hash="h1",
        stable_ready=True,
        canary_ready=True,
        weights=Weights(),
    )
    return replace(base, **changes)


def verdict(decision: str, look: int = 1, step: int = 0, **extra: Any) -> VerdictFeedback:
    return VerdictFeedback(
        step_index=step, look=look, decision=decision, summary=f"{decision} because", **extra
    )


@dataclass(frozen=True)
class Case:
    name: str
    spec: Any
    status: Status
    observation: Observation
    now: float = T0
    feedback: Feedback | None = None
    expect: dict[str, Any] = field(default_factory=dict)
    actions: tuple[type, ...] | None = None  # the action types in order, when checked
    message: str = ""


def run(case: Case) -> Transition:
    return advance(
        spec=case.spec,
        status=case.status,
        observation=case.observation,
        now=case.now,
        feedback=case.feedback,
    )


def check(case: Case) -> Transition:
    result = run(case)
    for key, value in case.expect.items():
        assert getattr(result.status, key) == value, (case.name, key)
    if case.actions is not None:
        assert tuple(type(a) for a in result.actions) == case.actions, case.name
    assert case.message in result.status.message, (case.name, result.status.message)
    return result


AT_REST = (EnsureStable, EnsureServices, SetWeights, RouteHeaders, ScaleCanary)
IN_FLIGHT = (EnsureStable, EnsureServices, ScaleCanary, SetWeights, RouteHeaders)

LIFECYCLE = [
    Case(
        "new Canary copies the target to a stable Deployment, no routing before it is ready",
        spec(),
        Status(),
        seen(target_hash="h1", stable_hash="", stable_ready=False, weights=None),
        expect={"phase": Phase.INITIALIZING, "stable_hash": "h1", "replicas": 3},
        actions=(EnsureStable, EnsureServices),
    ),
    Case(
        "stable ready: all traffic to it, waiting for the read-back",
        spec(),
        Status(stable_hash="h1", replicas=3),
        seen(target_hash="h1", weights=None),
        expect={"phase": Phase.INITIALIZING},
        actions=(EnsureStable, EnsureServices, SetWeights, RouteHeaders),
    ),
    Case(
        "weights confirmed: idle, the target scaled to zero after routing",
        spec(),
        Status(stable_hash="h1", replicas=3),
        seen(target_hash="h1"),
        expect={"phase": Phase.IDLE},
        actions=AT_REST,
    ),
    Case(
        "idle with the stable template: nothing to roll out",
        spec({"setWeight": 10}),
        Status(phase=Phase.IDLE, stable_hash="h1", replicas=3),
        seen(target_hash="h1"),
        expect={"phase": Phase.IDLE, "weight": 0},
        actions=AT_REST,
    ),
    Case(
        "a new template starts a rollout; the canary scales up before any traffic moves",
        spec({"setWeight": 10}),
        Status(phase=Phase.IDLE, stable_hash="h1", replicas=3),
        seen(canary_ready=False),
        expect={"phase": Phase.PROGRESSING, "canary_hash": "h2", "weight": 0},
        actions=IN_FLIGHT,
    ),
    Case(
        "a template that failed is not rolled out again",
        spec({"setWeight": 10}),
        Status(phase=Phase.FAILED, stable_hash="h1", failed_hash="h2", replicas=3),
        seen(),
        expect={"phase": Phase.FAILED},
    ),
    Case(
        "after a failure, a newer template starts a rollout",
        spec({"setWeight": 10}),
        Status(phase=Phase.FAILED, stable_hash="h1", failed_hash="h2", replicas=3),
        seen(target_hash="h3", canary_ready=False),
        expect={"phase": Phase.PROGRESSING, "canary_hash": "h3"},
    ),
    Case(
        "a newer template mid-rollout restarts the steps",
        spec({"setWeight": 10}, {"setWeight": 50}),
        rolling(1, weight=10),
        seen(target_hash="h3", canary_ready=False),
        expect={"phase": Phase.PROGRESSING, "canary_hash": "h3", "step_index": 0, "weight": 0},
    ),
    Case(
        "the target back at the stable template: idle again, nothing failed",
        spec({"setWeight": 10}),
        rolling(1, weight=10),
        seen(target_hash="h1"),
        expect={"phase": Phase.IDLE, "weight": 0, "failed_hash": ""},
        actions=AT_REST,
    ),
]

STEPS = [
    Case(
        "setWeight moves on at once and routes the weight",
        spec({"setWeight": 10}, {"pause": {}}),
        rolling(0),
        seen(),
        expect={"weight": 10, "step_index": 1, "weight_confirmed_at": None},
        actions=IN_FLIGHT,
    ),
    Case(
        "no step runs while the canary is not ready",
        spec({"setWeight": 10}),
        rolling(0),
        seen(canary_ready=False),
        expect={"weight": 0, "step_index": 0, "not_ready_since": T0},
    ),
    Case(
        "a timed pause waits",
        spec({"pause": {"duration": "5m"}}, {"setWeight": 20}),
        rolling(0),
        seen(),
        now=T0 + 299,
        expect={"step_index": 0, "phase": Phase.PROGRESSING},
    ),
    Case(
        "a timed pause ends",
        spec({"pause": {"duration": "5m"}}, {"setWeight": 20}),
        rolling(0),
        seen(),
        now=T0 + 300,
        expect={"step_index": 2, "weight": 20},
    ),
    Case(
        "a pause without duration is a manual gate",
        spec({"setWeight": 10}, {"pause": {}}, {"setWeight": 50}),
        rolling(0),
        seen(),
        expect={"phase": Phase.PAUSED, "step_index": 1, "weight": 10},
        message="manual gate at steps[1]",
    ),
    Case(
        "resume passes the gate",
        spec({"setWeight": 10}, {"pause": {}}, {"setWeight": 50}, {"pause": {"duration": "5m"}}),
        rolling(1, phase=Phase.PAUSED, weight=10),
        seen(request=Intervention(verb="resume", id="resume/1")),
        expect={"phase": Phase.PROGRESSING, "step_index": 3, "weight": 50},
    ),
    Case(
        "a request already carried out is not repeated",
        spec({"setWeight": 10}, {"pause": {}}, {"setWeight": 50}),
        rolling(1, phase=Phase.PAUSED, weight=10, handled_request="resume/1"),
        seen(request=Intervention(verb="resume", id="resume/1")),
        expect={"phase": Phase.PAUSED, "step_index": 1},
    ),
    Case(
        "resume outside a pause is acknowledged and ignored",
        spec({"setWeight": 10}),
        Status(phase=Phase.IDLE, stable_hash="h2", replicas=3),
        seen(request=Intervention(verb="resume", id="resume/2")),
        expect={"phase": Phase.IDLE, "handled_request": "resume/2"},
        message="ignored",
    ),
    Case(
        "setHeaderRoute routes the QA header to the canary",
        spec({"setHeaderRoute": {"match": QA}}, {"pause": {}}, router="memory"),
        rolling(0),
        seen(),
        expect={
            "header_route": (HeaderMatch(name="x-canary", exact="qa"),),
            "header_route_changed_at": T0,
            "phase": Phase.PAUSED,
        },
    ),
    Case(
        "an empty setHeaderRoute removes it",
        spec({"setHeaderRoute": {"match": QA}}, {"setHeaderRoute": {}}),
        rolling(1, header_route=(HeaderMatch(name="x-canary", exact="qa"),)),
        seen(),
        now=T0 + 30,
        expect={"header_route": (), "header_route_changed_at": T0 + 30, "phase": Phase.PROMOTING},
    ),
    Case(
        "loadTest is an action, never silently skipped",
        spec({"loadTest": {"rps": 5, "duration": "2m"}}),
        rolling(0),
        seen(),
        expect={"step_index": 0, "phase": Phase.PROGRESSING},
        actions=(*IN_FLIGHT, RunLoadTest),
    ),
    Case(
        "a loadTest step is started once and recorded in the status",
        spec({"loadTest": {"rps": 5, "duration": "2m"}}),
        rolling(
            0,
            load_test=LoadTestState(
                step_index=0, look=0, rps=5, duration_seconds=120, started_at=T0
            ),
        ),
        seen(),
        expect={"step_index": 0, "phase": Phase.PROGRESSING},
        actions=IN_FLIGHT,
    ),
    Case(
        "a loadTest step ends when its Job finished",
        spec({"loadTest": {"rps": 5, "duration": "2m"}}, {"pause": {}}),
        rolling(
            0,
            load_test=LoadTestState(
                step_index=0, look=0, rps=5, duration_seconds=120, started_at=T0
            ),
        ),
        seen(),
        feedback=LoadTestFinished(step_index=0, look=0),
        expect={"step_index": 1, "phase": Phase.PAUSED, "load_test": None},
    ),
    Case(
        "a failed load test Job pauses the loadTest step",
        spec({"loadTest": {"rps": 5, "duration": "2m"}}),
        rolling(
            0,
            load_test=LoadTestState(
                step_index=0, look=0, rps=5, duration_seconds=120, started_at=T0
            ),
        ),
        seen(),
        feedback=LoadTestFinished(
            step_index=0, look=0, succeeded=False, message="BackoffLimitExceeded"
        ),
        expect={"step_index": 0, "phase": Phase.PAUSED},
        message="the load test failed: BackoffLimitExceeded",
    ),
    Case(
        "a loadTest the executor cannot run pauses with its reason",
        spec({"loadTest": {"rps": 5, "duration": "2m"}}),
        rolling(0),
        seen(),
        feedback=ActionFailed(step_index=0, message="loadTest is not supported yet"),
        expect={"phase": Phase.PAUSED, "step_index": 0},
        message="steps[0]: loadTest is not supported yet",
    ),
    Case(
        "canary pods not ready within progressDeadlineSeconds roll back",
        spec({"setWeight": 10}, progressDeadlineSeconds=120),
        rolling(1, weight=10, not_ready_since=T0),
        seen(canary_ready=False),
        now=T0 + 120,
        expect={"phase": Phase.FAILED, "weight": 0, "failed_hash": "h2"},
        actions=AT_REST,
        message="canary pods not ready within progressDeadlineSeconds (2m)",
    ),
    Case(
        "after the last step: promote, the stable takes the canary's template",
        spec({"setWeight": 10}),
        rolling(1, weight=10),
        seen(),
        expect={"phase": Phase.PROMOTING, "weight": 10},
    ),
    Case(
        "promoted once the stable runs the canary's template, ready",
        spec({"setWeight": 10}),
        rolling(1, phase=Phase.PROMOTING, weight=10),
        seen(stable_hash="h2"),
        expect={"phase": Phase.SUCCEEDED, "stable_hash": "h2", "weight": 0},
        actions=AT_REST,
    ),
    Case(
        "promote skips the remaining steps",
        spec({"setWeight": 10}, {"pause": {}}, {"setWeight": 50}),
        rolling(1, phase=Phase.PAUSED, weight=10),
        seen(request=Intervention(verb="promote", id="promote/1")),
        expect={"phase": Phase.PROMOTING},
    ),
    Case(
        "abort rolls back",
        spec({"setWeight": 10}, {"pause": {}}),
        rolling(1, phase=Phase.PAUSED, weight=10),
        seen(request=Intervention(verb="abort", id="abort/1")),
        expect={"phase": Phase.FAILED, "weight": 0, "failed_hash": "h2"},
        message="aborted on request",
    ),
]


def test_promotion_actions_copy_the_canary_template() -> None:
    result = run(STEPS[-4])
    stable = [a for a in result.actions if isinstance(a, EnsureStable)]
    assert stable == [EnsureStable(template_hash="h2", replicas=3)]


HINT = LoadHint(canary_requests_needed=900, rps=8, seconds=120)
LT_SPEC = spec(
    {"setWeight": 10},
    {"analysis": {**ANALYSIS, "loadTest": {"maxRps": 10, "maxDuration": "5m"}}},
    {"setWeight": 50},
)
RUNNING = LoadTestState(step_index=1, look=1, rps=8, duration_seconds=120, started_at=T0 + 60)
CONFIRMED = T0 - 60  # the router confirmed weight 10 a minute before T0
ANALYZING = rolling(1, weight=10, weight_confirmed_at=CONFIRMED)
AN_SPEC = spec({"setWeight": 10}, {"analysis": ANALYSIS}, {"setWeight": 50})


def analyzing(looks_taken: int, errors: int = 0) -> Status:
    return replace(
        ANALYZING,
        analysis=AnalysisState(start=T0, looks_taken=looks_taken, consecutive_errors=errors),
    )


ANALYSES = [
    Case(
        "analysis waits for the router's read-back of the weight",
        AN_SPEC,
        rolling(1, weight=10),
        seen(weights=Weights()),
        expect={"analysis": None, "step_index": 1},
        actions=IN_FLIGHT,
        message="waiting for the router to confirm weight 10",
    ),
    Case(
        "the read-back confirms: the window starts one warm-up interval later",
        AN_SPEC,
        rolling(1, weight=10),
        seen(weights=Weights(canary=10)),
        expect={"weight_confirmed_at": T0, "analysis": AnalysisState(start=T0 + 60)},
        actions=IN_FLIGHT,
    ),
    Case(
        "no look before the first interval of the window ends",
        AN_SPEC,
        analyzing(0),
        seen(weights=Weights(canary=10)),
        now=T0 + 59,
        actions=IN_FLIGHT,
    ),
    Case(
        "PASS moves to the next step at once",
        AN_SPEC,
        analyzing(1),
        seen(weights=Weights(canary=10)),
        now=T0 + 60,
        feedback=verdict("PASS", step=1),
        expect={"step_index": 3, "weight": 50, "last_decision": "PASS", "analysis": None},
    ),
    Case(
        "FAIL rolls back at once with the verdict's summary",
        AN_SPEC,
        analyzing(1),
        seen(weights=Weights(canary=10)),
        now=T0 + 60,
        feedback=verdict("FAIL", step=1),
        expect={"phase": Phase.FAILED, "weight": 0, "last_decision": "FAIL"},
        actions=AT_REST,
        message="FAIL at steps[1] look 1: FAIL because",
    ),
    Case(
        "INCONCLUSIVE before the last planned look: look on",
        AN_SPEC,
        analyzing(2),
        seen(weights=Weights(canary=10)),
        now=T0 + 120,
        feedback=verdict("INCONCLUSIVE", look=2, step=1),
        expect={"phase": Phase.PROGRESSING, "step_index": 1, "last_decision": "INCONCLUSIVE"},
    ),
    Case(
        "INCONCLUSIVE at the last planned look of the final step: hold the weight, look on",
        AN_SPEC,
        analyzing(3),
        seen(weights=Weights(canary=10)),
        now=T0 + 180,
        feedback=verdict("INCONCLUSIVE", look=3, step=1),
        expect={"phase": Phase.PROGRESSING, "step_index": 1, "weight": 10},
        message="INCONCLUSIVE at steps[1] look 3 of 3: looking on",
    ),
    Case(
        "still INCONCLUSIVE after maxExtraLooks: paused by default, never promoted",
        AN_SPEC,
        analyzing(6),
        seen(weights=Weights(canary=10)),
        now=T0 + 360,
        feedback=verdict("INCONCLUSIVE", look=6, step=1),
        expect={
            "phase": Phase.PAUSED,
            "weight": 10,
            "analysis": AnalysisState(start=T0, looks_taken=6, held=True),
        },
        message="still INCONCLUSIVE at steps[1] look 6 of 3 after 3 extra looks: paused",
    ),
    Case(
        "still INCONCLUSIVE after maxExtraLooks, onInconclusive rollback",
        spec({"setWeight": 10}, {"analysis": {**ANALYSIS, "onInconclusive": "rollback"}}),
        analyzing(6),
        seen(weights=Weights(canary=10)),
        now=T0 + 360,
        feedback=verdict("INCONCLUSIVE", look=6, step=1),
        expect={"phase": Phase.FAILED},
        message="rolled back: still INCONCLUSIVE at steps[1] look 6 of 3 after 3 extra looks",
    ),
    Case(
        "still INCONCLUSIVE after maxExtraLooks, onInconclusive extend: maxExtraLooks more",
        spec(
            {"setWeight": 10},
            {"analysis": {**ANALYSIS, "onInconclusive": "extend", "maxExtraLooks": 2}},
        ),
        analyzing(5),
        seen(weights=Weights(canary=10)),
        now=T0 + 300,
        feedback=verdict("INCONCLUSIVE", look=5, step=1),
        expect={
            "phase": Phase.PROGRESSING,
            "analysis": AnalysisState(start=T0, looks_taken=5, granted_looks=2),
        },
        message="extending (onInconclusive: extend): 2 more looks",
    ),
    Case(
        "maxExtraLooks 0: the last planned look decides",
        spec({"setWeight": 10}, {"analysis": {**ANALYSIS, "maxExtraLooks": 0}}),
        analyzing(3),
        seen(weights=Weights(canary=10)),
        now=T0 + 180,
        feedback=verdict("INCONCLUSIVE", look=3, step=1),
        expect={"phase": Phase.PAUSED},
        message="after 0 extra looks: paused",
    ),
    Case(
        "an ERROR asks the same look again after a backoff",
        AN_SPEC,
        analyzing(1),
        seen(weights=Weights(canary=10)),
        now=T0 + 60,
        feedback=verdict("ERROR", step=1),
        expect={
            "phase": Phase.PROGRESSING,
            "analysis": AnalysisState(
                start=T0, looks_taken=0, consecutive_errors=1, retry_at=T0 + 70
            ),
        },
        message="ERROR at steps[1] look 1 (1 of 3), asking again in 10s",
    ),
    Case(
        "the second ERROR in a row backs off twice as long",
        AN_SPEC,
        analyzing(1, errors=1),
        seen(weights=Weights(canary=10)),
        now=T0 + 60,
        feedback=verdict("ERROR", step=1),
        expect={
            "analysis": AnalysisState(
                start=T0, looks_taken=0, consecutive_errors=2, retry_at=T0 + 80
            )
        },
    ),
    Case(
        "INCONCLUSIVE with a LoadHint and an analysis loadTest: a load test sized by the hint",
        LT_SPEC,
        analyzing(1),
        seen(weights=Weights(canary=10)),
        now=T0 + 60,
        feedback=verdict("INCONCLUSIVE", step=1, load_hint=HINT),
        expect={
            "phase": Phase.PROGRESSING,
            "load_test": LoadTestState(
                step_index=1, look=1, rps=8.0, duration_seconds=120.0, started_at=T0 + 60
            ),
        },
        actions=(*IN_FLIGHT, RunLoadTest),
        message="load test of the canary, 8 requests/s for 2m",
    ),
    Case(
        "a hint above the caps: maxRps, longer, at most maxDuration",
        LT_SPEC,
        analyzing(1),
        seen(weights=Weights(canary=10)),
        now=T0 + 60,
        feedback=verdict(
            "INCONCLUSIVE",
            step=1,
            load_hint=LoadHint(canary_requests_needed=9000, rps=90, seconds=100),
        ),
        expect={
            "load_test": LoadTestState(
                step_index=1, look=1, rps=10.0, duration_seconds=300.0, started_at=T0 + 60
            )
        },
    ),
    Case(
        "INCONCLUSIVE with a hint but no analysis loadTest: look on",
        AN_SPEC,
        analyzing(1),
        seen(weights=Weights(canary=10)),
        now=T0 + 60,
        feedback=verdict("INCONCLUSIVE", step=1, load_hint=HINT),
        expect={"load_test": None},
        actions=IN_FLIGHT,
    ),
    Case(
        "looks go on while the load test runs: a canary failing under load shows at once",
        LT_SPEC,
        replace(analyzing(1), load_test=RUNNING),
        seen(weights=Weights(canary=10)),
        now=T0 + 600,
        # Never past the final step's looks plus maxExtraLooks (3 + 3).
        expect={"analysis": AnalysisState(start=T0, looks_taken=6)},
        actions=(*IN_FLIGHT, RequestVerdict),
    ),
    Case(
        "no second load test while one runs",
        LT_SPEC,
        replace(analyzing(2), load_test=RUNNING),
        seen(weights=Weights(canary=10)),
        now=T0 + 120,
        feedback=verdict("INCONCLUSIVE", look=2, step=1, load_hint=HINT),
        expect={"load_test": RUNNING},
        actions=IN_FLIGHT,
    ),
    Case(
        "the load test finished: the next look is due at once over the whole window",
        LT_SPEC,
        replace(analyzing(1), load_test=RUNNING),
        seen(weights=Weights(canary=10)),
        now=T0 + 300,
        feedback=LoadTestFinished(step_index=1, look=1),
        expect={"load_test": replace(RUNNING, finished=True)},
        actions=(*IN_FLIGHT, RequestVerdict),
        message="",
    ),
    Case(
        "ERROR consecutiveErrorLimit times in a row rolls back",
        AN_SPEC,
        analyzing(3, errors=2),
        seen(weights=Weights(canary=10)),
        now=T0 + 180,
        feedback=verdict("ERROR", look=3, step=1),
        expect={"phase": Phase.FAILED},
        message="ERROR 3 times in a row",
    ),
    Case(
        "an INCONCLUSIVE answer resets the error count",
        AN_SPEC,
        analyzing(2, errors=2),
        seen(weights=Weights(canary=10)),
        now=T0 + 120,
        feedback=verdict("INCONCLUSIVE", look=2, step=1),
        expect={"analysis": AnalysisState(start=T0, looks_taken=2, consecutive_errors=0)},
    ),
    Case(
        "a refused request (bad spec, rejected query) fails the rollout",
        AN_SPEC,
        analyzing(1),
        seen(weights=Weights(canary=10)),
        now=T0 + 60,
        feedback=verdict("ERROR", step=1, permanent=True),
        expect={"phase": Phase.FAILED},
        message="the gatekeeper refused the analysis",
    ),
    Case(
        "an answer about a step already left is ignored",
        AN_SPEC,
        analyzing(1),
        seen(weights=Weights(canary=10)),
        now=T0 + 60,
        feedback=verdict("FAIL", step=0),
        expect={"phase": Phase.PROGRESSING, "step_index": 1},
    ),
]


# A rollout of two analysis steps: 3 looks at 10 %, 3 looks (+3 extra) at 50 %.
R_SPEC = spec({"setWeight": 10}, {"analysis": ANALYSIS}, {"setWeight": 50}, {"analysis": ANALYSIS})
R_LT_SPEC = spec(
    {"setWeight": 10},
    {"analysis": ANALYSIS},
    {"setWeight": 50},
    {"analysis": {**ANALYSIS, "loadTest": {"maxRps": 10, "maxDuration": "5m"}}},
)
AT_50 = T0 + 200  # the router confirmed weight 50


def second_step(looks_taken: int, **changes: Any) -> Status:
    """At the rollout's second analysis step (steps[3]), after 3 looks at 10 %."""
    state = AnalysisState(start=T0, looks_taken=looks_taken, looks_before_step=3, step_origin=AT_50)
    return rolling(3, weight=50, weight_confirmed_at=AT_50, analysis=replace(state, **changes))


CLOSED = AnalysisState(start=T0, looks_taken=3, step_open=False)

ROLLOUT = [
    Case(
        "PASS at an intermediate analysis step: the next step, the same analysis, no promotion",
        R_SPEC,
        analyzing(1),
        seen(weights=Weights(canary=10)),
        now=T0 + 60,
        feedback=verdict("PASS", step=1),
        expect={
            "phase": Phase.PROGRESSING,
            "step_index": 3,
            "weight": 50,
            "analysis": AnalysisState(start=T0, looks_taken=1, step_open=False, passed=True),
        },
    ),
    Case(
        "INCONCLUSIVE before an intermediate step's last look: look on",
        R_SPEC,
        analyzing(2),
        seen(weights=Weights(canary=10)),
        now=T0 + 120,
        feedback=verdict("INCONCLUSIVE", look=2, step=1),
        expect={"step_index": 1, "phase": Phase.PROGRESSING},
        message="INCONCLUSIVE at steps[1] look 2 of 6: looking on",
    ),
    Case(
        "an intermediate step's looks done without FAIL: the next step, no extra looks",
        R_SPEC,
        analyzing(3),
        seen(weights=Weights(canary=10)),
        now=T0 + 180,
        feedback=verdict("INCONCLUSIVE", look=3, step=1),
        expect={"phase": Phase.PROGRESSING, "step_index": 3, "weight": 50, "analysis": CLOSED},
        message="waiting for the router to confirm weight 50",
    ),
    Case(
        "the next analysis step goes on with the same analysis from its weight's confirmation",
        R_SPEC,
        rolling(3, weight=50, analysis=CLOSED),
        seen(weights=Weights(canary=50)),
        now=AT_50,
        expect={"analysis": second_step(3).analysis},
        actions=IN_FLIGHT,
    ),
    Case(
        "an earlier step's PASS does not carry into the next analysis step",
        R_SPEC,
        rolling(3, weight=50, analysis=replace(CLOSED, passed=True)),
        seen(weights=Weights(canary=50)),
        now=AT_50,
        expect={"analysis": second_step(3).analysis},
    ),
    Case(
        "FAIL at a later step's look rolls back",
        R_SPEC,
        second_step(4),
        seen(weights=Weights(canary=50)),
        now=AT_50 + 60,
        feedback=verdict("FAIL", look=4, step=3),
        expect={"phase": Phase.FAILED, "weight": 0},
        message="FAIL at steps[3] look 4",
    ),
    Case(
        "INCONCLUSIVE at the plan's last look: hold 50 % for maxExtraLooks",
        R_SPEC,
        second_step(6),
        seen(weights=Weights(canary=50)),
        now=AT_50 + 180,
        feedback=verdict("INCONCLUSIVE", look=6, step=3),
        expect={"phase": Phase.PROGRESSING, "step_index": 3, "weight": 50},
        message="INCONCLUSIVE at steps[3] look 6 of 6: looking on",
    ),
    Case(
        "an extra look with a LoadHint: a load test sized by the hint at the held weight",
        R_LT_SPEC,
        second_step(7),
        seen(weights=Weights(canary=50)),
        now=AT_50 + 240,
        feedback=verdict("INCONCLUSIVE", look=7, step=3, load_hint=HINT),
        expect={
            "load_test": LoadTestState(
                step_index=3, look=7, rps=8.0, duration_seconds=120.0, started_at=AT_50 + 240
            )
        },
        actions=(*IN_FLIGHT, RunLoadTest),
    ),
    Case(
        "still INCONCLUSIVE after the extra looks: paused (the default), weight held",
        R_SPEC,
        second_step(9),
        seen(weights=Weights(canary=50)),
        now=AT_50 + 360,
        feedback=verdict("INCONCLUSIVE", look=9, step=3),
        expect={
            "phase": Phase.PAUSED,
            "weight": 50,
            "analysis": second_step(9, held=True).analysis,
        },
        message="look 9 of 6 after 3 extra looks: paused at weight 50",
    ),
    Case(
        "resume after an INCONCLUSIVE pause looks on (maxExtraLooks more), never promotes",
        R_SPEC,
        replace(second_step(9, held=True), phase=Phase.PAUSED),
        seen(weights=Weights(canary=50), request=Intervention(verb="resume", id="resume/1")),
        now=AT_50 + 400,
        expect={
            "phase": Phase.PROGRESSING,
            "step_index": 3,
            "analysis": second_step(9, granted_looks=3).analysis,
        },
        message="resumed on request: 3 more looks",
    ),
    Case(
        "PASS at the final analysis step promotes",
        R_SPEC,
        second_step(5),
        seen(weights=Weights(canary=50)),
        now=AT_50 + 120,
        feedback=verdict("PASS", look=5, step=3),
        expect={"phase": Phase.PROMOTING, "analysis": None},
    ),
    Case(
        "the plan's end without PASS (a failed action resumed past): paused, not promoted",
        R_SPEC,
        replace(second_step(4), phase=Phase.PAUSED),
        seen(weights=Weights(canary=50), request=Intervention(verb="resume", id="resume/2")),
        now=AT_50 + 100,
        expect={"phase": Phase.PAUSED, "step_index": 3, "weight": 50},
        message="not promoted: the analysis never reached PASS",
    ),
    Case(
        "an ERROR at a later step asks its rollout-level look again",
        R_SPEC,
        second_step(4),
        seen(weights=Weights(canary=50)),
        now=AT_50 + 60,
        feedback=verdict("ERROR", look=4, step=3),
        expect={"analysis": second_step(3, consecutive_errors=1, retry_at=AT_50 + 70).analysis},
        message="ERROR at steps[3] look 4",
    ),
]


@pytest.mark.parametrize("case", ROLLOUT, ids=lambda c: c.name)
def test_one_analysis_per_rollout(case: Case) -> None:
    check(case)


def test_a_later_step_look_is_numbered_across_the_rollout_over_the_whole_window() -> None:
    result = advance(
        spec=R_SPEC,
        status=second_step(3),
        observation=seen(weights=Weights(canary=50)),
        now=AT_50 + 61,
    )
    ask = next(a for a in result.actions if isinstance(a, RequestVerdict))
    assert (ask.step_index, ask.look, ask.planned) == (3, 4, 6)
    assert (ask.start, ask.end) == (T0, AT_50 + 60)
    assert result.requeue_at == AT_50 + 120


def test_a_restarted_controller_resumes_the_same_rollout_analysis() -> None:
    status = second_step(4, consecutive_errors=1, granted_looks=2, passed=False)
    stored = json.loads(json.dumps(status_to_dict(status)))
    assert status_from_dict(stored) == status
    result = advance(
        spec=R_SPEC,
        status=status_from_dict(stored),
        observation=seen(weights=Weights(canary=50)),
        now=AT_50 + 125,
    )
    ask = next(a for a in result.actions if isinstance(a, RequestVerdict))
    assert (ask.look, ask.planned, ask.start) == (5, 6, T0)


def test_a_status_from_before_rollout_analyses_reads_as_the_current_step() -> None:
    legacy = {"start": "1970-01-12T13:46:40Z", "looksTaken": 2, "consecutiveErrors": 0}
    state = status_from_dict({"phase": "Progressing", "analysis": legacy}).analysis
    assert state == AnalysisState(start=T0, looks_taken=2)


STEPS_BY_NAME = {c.name: c for c in STEPS}


@pytest.mark.parametrize("case", LIFECYCLE, ids=lambda c: c.name)
def test_lifecycle(case: Case) -> None:
    check(case)


@pytest.mark.parametrize("case", STEPS, ids=lambda c: c.name)
def test_steps(case: Case) -> None:
    check(case)


@pytest.mark.parametrize("case", ANALYSES, ids=lambda c: c.name)
def test_analysis_outcomes(case: Case) -> None:
    check(case)


def test_look_asks_for_the_cumulative_window_with_its_index() -> None:
    result = advance(
        spec=AN_SPEC,
        status=analyzing(1),
        observation=seen(weights=Weights(canary=10)),
        now=T0 + 185,
    )
    asks = [a for a in result.actions if isinstance(a, RequestVerdict)]
    assert len(asks) == 1
    ask = asks[0]
    # Missed looks are not replayed: the look index is the number of intervals of data.
    assert (ask.look, ask.planned, ask.start, ask.end) == (3, 3, T0, T0 + 180)
    assert result.status.analysis == AnalysisState(start=T0, looks_taken=3)
    assert result.requeue_at == T0 + 240


def test_analysis_window_starts_after_the_header_route_is_removed() -> None:
    qa = spec(
        {"setHeaderRoute": {"match": QA}},
        {"pause": {}},
        {"setHeaderRoute": {}},
        {"setWeight": 10},
        {"analysis": {**ANALYSIS, "warmup": "2m"}},
    )
    status = rolling(4, weight=10, weight_confirmed_at=T0 - 600, header_route_changed_at=T0)
    result = advance(spec=qa, status=status, observation=seen(weights=Weights(canary=10)), now=T0)
    assert result.status.analysis == AnalysisState(start=T0 + 120)


def test_dedicated_baseline_gets_the_canary_weight_and_size() -> None:
    dedicated = spec({"setWeight": 20}, {"pause": {}}, baseline="dedicated")
    result = advance(spec=dedicated, status=rolling(0), observation=seen(), now=T0)
    assert SetWeights(weights=Weights(canary=20, baseline=20)) in result.actions
    assert EnsureBaseline(replicas=3) in result.actions


def test_replica_router_sizes_the_deployments_itself() -> None:
    ratio = spec({"setWeight": 20}, {"pause": {}}, router="replicas")
    result = advance(spec=ratio, status=rolling(0), observation=seen(), now=T0)
    assert not [a for a in result.actions if isinstance(a, ScaleCanary)]
    assert EnsureStable(template_hash="h1", replicas=None) in result.actions


def test_requeue_times() -> None:
    timed = spec({"pause": {"duration": "5m"}})
    assert advance(spec=timed, status=rolling(0), observation=seen(), now=T0).requeue_at == T0 + 300
    idle = Status(phase=Phase.IDLE, stable_hash="h2")
    assert advance(spec=timed, status=idle, observation=seen(), now=T0).requeue_at is None
    waiting = advance(spec=timed, status=rolling(0), observation=seen(canary_ready=False), now=T0)
    assert waiting.requeue_at == T0 + 5


def test_after_a_load_test_the_look_covers_the_window_to_now() -> None:
    status = replace(analyzing(1), load_test=RUNNING)
    result = advance(
        spec=LT_SPEC,
        status=status,
        observation=seen(weights=Weights(canary=10)),
        now=T0 + 300,
        feedback=LoadTestFinished(step_index=1, look=1),
    )
    ask = next(a for a in result.actions if isinstance(a, RequestVerdict))
    assert (ask.look, ask.start, ask.end) == (2, T0, T0 + 300)


def test_an_error_look_is_asked_again_at_its_retry_time() -> None:
    state = AnalysisState(start=T0, looks_taken=0, consecutive_errors=1, retry_at=T0 + 70)
    status = replace(analyzing(0), analysis=state)
    early = advance(
        spec=AN_SPEC, status=status, observation=seen(weights=Weights(canary=10)), now=T0 + 65
    )
    assert not [a for a in early.actions if isinstance(a, RequestVerdict)]
    assert early.requeue_at == T0 + 70
    due = advance(
        spec=AN_SPEC, status=status, observation=seen(weights=Weights(canary=10)), now=T0 + 70
    )
    ask = next(a for a in due.actions if isinstance(a, RequestVerdict))
    assert (
        ask.look == 1 and due.status.analysis is not None and due.status.analysis.retry_at is None
    )


def test_run_load_test_keeps_its_fields() -> None:
    result = run(STEPS_BY_NAME["loadTest is an action, never silently skipped"])
    action = next(a for a in result.actions if isinstance(a, RunLoadTest))
    assert (action.step_index, action.look) == (0, 0)
    assert (action.load_test.rps, action.load_test.duration_seconds) == (5.0, 120.0)
