"""The stepper, table by table: every step kind and every outcome, as a pure function."""

from __future__ import annotations

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
        "INCONCLUSIVE at the last planned look, onInconclusive rollback",
        AN_SPEC,
        analyzing(3),
        seen(weights=Weights(canary=10)),
        now=T0 + 180,
        feedback=verdict("INCONCLUSIVE", look=3, step=1),
        expect={"phase": Phase.FAILED},
        message="still INCONCLUSIVE at steps[1] look 3 of 3",
    ),
    Case(
        "INCONCLUSIVE at the last planned look, onInconclusive pause",
        spec({"setWeight": 10}, {"analysis": {**ANALYSIS, "onInconclusive": "pause"}}),
        analyzing(3),
        seen(weights=Weights(canary=10)),
        now=T0 + 180,
        feedback=verdict("INCONCLUSIVE", look=3, step=1),
        expect={"phase": Phase.PAUSED, "weight": 10},
        message="onInconclusive: pause",
    ),
    Case(
        "INCONCLUSIVE at the last planned look, onInconclusive extend: look on",
        spec({"setWeight": 10}, {"analysis": {**ANALYSIS, "onInconclusive": "extend"}}),
        analyzing(3),
        seen(weights=Weights(canary=10)),
        now=T0 + 180,
        feedback=verdict("INCONCLUSIVE", look=3, step=1),
        expect={"phase": Phase.PROGRESSING, "step_index": 1},
    ),
    Case(
        "still INCONCLUSIVE at the end of the extension: roll back, never promote",
        spec(
            {"setWeight": 10},
            {"analysis": {**ANALYSIS, "onInconclusive": "extend", "maxExtraLooks": 2}},
        ),
        analyzing(5),
        seen(weights=Weights(canary=10)),
        now=T0 + 300,
        feedback=verdict("INCONCLUSIVE", look=5, step=1),
        expect={"phase": Phase.FAILED},
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
        expect={"analysis": AnalysisState(start=T0, looks_taken=10)},
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
