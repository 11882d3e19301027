"""The decision rules the benchmark compares, as pure functions of per-interval data.

The anchor rules (Argo Rollouts, Flagger) see what their documented configurations see: an
absolute threshold on the canary's success rate and on its p99 (``histogram_quantile`` of
the canary's buckets) over a 1-minute window. The step walkers turn a judge's per-look
decisions into a rollout's fate the way each controller does: the gatekeeper's own
controller (per-step analyses, PASS moves on at once), a fixed-window judge, and
Spinnaker's canary stage (Kayenta). Nothing here knows about the simulator or the
gatekeeper's statistics; ``tests/benchmarks/test_decision_rules.py`` tests each rule on
tiny hand-made inputs.

Time is counted in analysis intervals (30 s): "interval t" is the end of the t-th interval
since the canary got its traffic, and a decision "at t" means the controller acted then.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from gatekeeper.stats.tails import histogram_quantile

FloatArray = NDArray[np.float64]

PASS, FAIL, INCONCLUSIVE = "PASS", "FAIL", "INCONCLUSIVE"
DECISIONS = (PASS, FAIL, INCONCLUSIVE)


@dataclass(frozen=True, slots=True)
class Outcome:
    """A rollout's fate under one rule.

    ``decision``: PASS (promoted), FAIL (rolled back on a failed check or verdict) or
    INCONCLUSIVE (neither within the time the rule had: never a promotion). ``at``: the
    interval at which the controller acted (or gave up). ``judgements``: the looks,
    measurements or checks taken until then. ``reason``: one short sentence.
    """

    decision: str
    at: int
    judgements: int
    reason: str = ""


@dataclass(frozen=True, slots=True, eq=False)
class CanarySeries:
    """The canary's per-interval data, as a Prometheus query over it would see it.

    ``requests`` and ``errors`` per interval; ``buckets`` the per-interval increase of
    each cumulative latency bucket (shape (intervals, len(bounds)), last bound +Inf).
    """

    requests: FloatArray
    errors: FloatArray
    buckets: FloatArray
    bounds: FloatArray

    @property
    def intervals(self) -> int:
        """Number of intervals of data."""
        return int(self.requests.shape[0])


def _span(end: int, width: int) -> slice:
    return slice(max(0, end - width), end)


def success_rate(series: CanarySeries, *, end: int, width: int) -> float:
    """Share of non-error requests over intervals ``(end - width, end]``; NaN without requests.

    The same as ``sum(rate(ok[1m])) / sum(rate(all[1m]))``: 0/0 is NaN in PromQL.
    """
    span = _span(end, width)
    total = float(series.requests[span].sum())
    if total <= 0:
        return math.nan
    return 1.0 - float(series.errors[span].sum()) / total


def p99(series: CanarySeries, *, end: int, width: int, q: float = 0.99) -> float:
    """``histogram_quantile(q, sum by (le) (rate(bucket[window])))``; NaN without requests."""
    cumulative = series.buckets[_span(end, width)].sum(axis=0)
    return histogram_quantile(q=q, upper_bounds=series.bounds, cumulative=cumulative)


# --- Argo Rollouts ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ArgoTemplate:
    """The AnalysisTemplate users copy from the Argo Rollouts docs, with the brief's numbers.

    Two metrics, each ``interval: 30s``, ``count: 6``, ``failureLimit: 2``:
    ``successCondition: result[0] >= 0.99`` on the success rate over ``[1m]`` and
    ``result[0] <= 0.5`` on ``histogram_quantile(0.99, ...[1m])`` (seconds).
    """

    count: int = 6
    failure_limit: int = 2
    window: int = 2  #: 1m in 30-s intervals
    min_success: float = 0.99
    max_p99_seconds: float = 0.5


def argo_rollout(
    series: CanarySeries, steps: Sequence[int], template: ArgoTemplate = ArgoTemplate()
) -> Outcome:
    """Argo Rollouts: ``setWeight``, then an inline ``analysis`` step, then the rest of the pause.

    Behaviour as documented and implemented by Argo Rollouts:

    - An analysis step starts an AnalysisRun and "blocks the rollout until the run is
      completed. The success or failure of the analysis run decides if the rollout will
      proceed to the next step, or abort the rollout completely"
      (argoproj/argo-rollouts, docs/features/analysis.md, "Analysis at a Predefined Step").
    - Each measurement evaluates ``successCondition``; "Without a failure condition, a
      measurement is considered a failure if the measurement's success condition is not
      true" (utils/evaluate/evaluate.go, ``EvaluateResult``). A NaN result (0/0: no canary
      request in the window) compares false, so it is a failed measurement.
    - A metric is Failed when ``failed > failureLimit``, Successful when ``count``
      measurements are taken (analysis/analysis.go, ``assessMetricStatus``); the run fails
      with its first failed metric, and a failed run aborts the rollout (traffic back to
      stable).

    Measurements are taken at the end of each 30-s interval of the run (the first one after
    30 s, as with ``initialDelay: 30s``: at the run's very start the canary's 1-minute
    window would be empty). ``steps`` are the plan's step lengths in intervals; a step lasts
    at least its analysis run (``count`` intervals). Promotion after the last step.
    """
    t = 0
    taken = 0
    for length in steps:
        failed = {"success-rate": 0, "p99": 0}
        for m in range(1, template.count + 1):
            end = t + m
            if end > series.intervals:
                return Outcome(INCONCLUSIVE, series.intervals, taken, "ran out of data")
            taken += 1
            rate = success_rate(series, end=end, width=template.window)
            latency = p99(series, end=end, width=template.window)
            if not rate >= template.min_success:  # NaN fails too
                failed["success-rate"] += 1
            if not latency <= template.max_p99_seconds:
                failed["p99"] += 1
            over = [name for name, n in failed.items() if n > template.failure_limit]
            if over:
                return Outcome(
                    FAIL, end, taken, f"{over[0]}: {failed[over[0]]} failed measurements"
                )
        t += max(length, template.count)
    return Outcome(PASS, t, taken, "every analysis run successful")


# --- Flagger -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FlaggerAnalysis:
    """Flagger's canary analysis with its builtin metrics, as in Flagger's docs.

    ``interval: 1m``, ``threshold: 5``; ``request-success-rate`` ``thresholdRange.min: 99``
    (percent) and ``request-duration`` ``thresholdRange.max: 500`` (ms, the p99), each over
    ``interval: 1m``; ``iterations`` passing checks to walk the step plan (17 one-minute
    steps: 2 at 5 %, 5 at 25 %, 10 at 50 %).
    """

    every: int = 2  #: 1m in 30-s intervals
    window: int = 2
    threshold: int = 5
    iterations: int = 17
    min_success: float = 0.99
    max_p99_seconds: float = 0.5


def flagger_rollout(series: CanarySeries, analysis: FlaggerAnalysis = FlaggerAnalysis()) -> Outcome:
    """Flagger: a metric check every interval; rollback once ``threshold`` checks failed.

    Behaviour as implemented by Flagger (fluxcd/flagger, pkg/controller/scheduler.go and
    scheduler_metrics.go; docs/gitbook/usage/metrics.md for the builtin metrics):

    - At each scheduler tick it first checks "if the number of failed checks reached the
      threshold" (``FailedChecks >= threshold``) and rolls back; otherwise it runs the
      metric checks.
    - A check fails when the success rate is below ``thresholdRange.min`` or the p99 above
      ``thresholdRange.max``, and also when the query has no value ("Halt advancement no
      values found ... probably ... is not receiving traffic"): the failed-checks counter
      grows by one (it is not reset by a later passing check) and the weight does not
      advance.
    - A passing check advances the canary one step; after the last step it is promoted.
    """
    failed = 0
    passed = 0
    taken = 0
    tick = 0
    while True:
        tick += analysis.every
        if tick > series.intervals:
            return Outcome(INCONCLUSIVE, series.intervals, taken, "ran out of data")
        if failed >= analysis.threshold:
            return Outcome(FAIL, tick, taken, f"{failed} failed checks")
        taken += 1
        rate = success_rate(series, end=tick, width=analysis.window)
        latency = p99(series, end=tick, width=analysis.window)
        if rate >= analysis.min_success and latency <= analysis.max_p99_seconds:
            passed += 1
            if passed >= analysis.iterations:
                return Outcome(PASS, tick, taken, f"{passed} checks passed")
        else:
            failed += 1


# --- step walkers over a judge -----------------------------------------------------------------

#: judge(step, start, points, planned) -> decision: the verdict of a look at the ``points``
#: intervals of step ``step`` (0-based) that began at interval ``start``.
Judge = Callable[[int, int, int, int], str]


def walk_looks(steps: Sequence[int], judge: Judge, *, budget: int) -> Outcome:
    """The gatekeeper's controller: per-step analyses, a look every interval.

    Step ``j`` is an analysis of ``steps[j]`` planned looks from where the last one ended;
    each look judges the step's cumulative data. PASS moves to the next step at once, FAIL
    rolls back at once, INCONCLUSIVE looks again (``onInconclusive: extend`` past the
    planned looks) while the rollout's ``budget`` of intervals lasts; then the rollout ends
    INCONCLUSIVE (the controller rolls back or pauses for a human: no promotion).
    """
    t = 0
    taken = 0
    for j, planned in enumerate(steps):
        start = t
        points = 0
        while True:
            if start + points >= budget:
                return Outcome(INCONCLUSIVE, budget, taken, f"step {j + 1} undecided")
            points += 1
            taken += 1
            decision = judge(j, start, points, planned)
            if decision == FAIL:
                return Outcome(FAIL, start + points, taken, f"FAIL in step {j + 1}")
            if decision == PASS:
                t = start + points
                break
    return Outcome(PASS, t, taken, "every step passed")


def walk_windows(steps: Sequence[int], judge: Judge) -> Outcome:
    """A fixed-window judge: one judgement at the end of each step's window.

    The plan is walked on time: step ``j`` covers its ``steps[j]`` intervals and is judged
    once on them at its end. FAIL rolls back; PASS or INCONCLUSIVE go on to the next step
    (the window is over either way). Promoted when every step PASSed; INCONCLUSIVE when
    none failed but some did not pass.
    """
    t = 0
    undecided = 0
    for j, length in enumerate(steps):
        decision = judge(j, t, length, length)
        t += length
        if decision == FAIL:
            return Outcome(FAIL, t, j + 1, f"FAIL at the end of step {j + 1}")
        undecided += decision != PASS
    if undecided:
        return Outcome(INCONCLUSIVE, t, len(steps), f"{undecided} step(s) not passed")
    return Outcome(PASS, t, len(steps), "every step passed")


def walk_kayenta(steps: Sequence[int], judge: Judge, *, every: int = 2) -> Outcome:
    """Spinnaker's real-time canary stage (Kayenta) run once per step of the plan.

    Each step is a stage whose lifetime is the step and whose interval is ``every``
    analysis intervals (1 minute, the stage's finest), with a growing lookback: each
    judgement covers the data from the step's start. An interim judgement below the
    marginal score fails the stage at once; the last one must reach the pass score,
    otherwise the stage fails (spinnaker/deck, kayenta module, ``getClassFromScore``: "if
    isLastCanaryExecution: score < pass ? 'fail' : 'pass'; otherwise score >= pass ?
    'pass' : score >= marginal ? 'marginal' : 'fail'"; spinnaker.io, "Add a canary stage",
    Lookback Type Growing). ``judge`` returns the KAYENTA-mode decision (FAIL at or below
    the marginal score or on a critical metric, PASS at or above the pass score).
    """
    t = 0
    taken = 0
    for j, length in enumerate(steps):
        for points in range(every, length + 1, every):
            taken += 1
            decision = judge(j, t, points, length)
            last = points + every > length
            if decision == FAIL or (last and decision != PASS):
                return Outcome(FAIL, t + points, taken, f"stage {j + 1} failed")
        t += length
    return Outcome(PASS, t, taken, "every stage passed")


# --- data sufficiency -------------------------------------------------------------------------


def requests_needed(baseline_error_rate: float, *, tolerance: float = 0.2) -> float:
    """Canary requests needed before a promotion can rest on data, by one objective rule.

    At least one error expected at the tolerated rate (baseline x (1 + tolerance)): with
    fewer requests, "no canary error seen" is what even a canary at the tolerance boundary
    most likely shows. And at least 100 requests, the fewest whose p99 is not simply the
    slowest request. NaN for a baseline without errors (the rule does not apply).
    """
    if baseline_error_rate <= 0:
        return math.nan
    return max(100.0, 1.0 / (baseline_error_rate * (1.0 + tolerance)))


def promoted_without_enough_data(
    outcome: Outcome, *, canary_requests: float, baseline_error_rate: float
) -> bool:
    """Whether a promotion rested on fewer canary requests than :func:`requests_needed`."""
    needed = requests_needed(baseline_error_rate)
    return outcome.decision == PASS and not math.isnan(needed) and canary_requests < needed
