"""From per-metric outcomes to a verdict: group scores, critical metrics, the decision.

Scoring follows Kayenta's weighted-sum scorer: within a group each metric counts with its
weight and scores 100 when it PASSes; the total is the weighted mean of the group scores.
The decision then applies, in order:

0. no metric that decides (every one dry-run) -> INCONCLUSIVE, whatever the thresholds;
1. a critical metric that regressed (HIGH/LOW) -> FAIL;
2. a score below ``marginal_score`` even if every undecided metric passed -> FAIL;
3. a metric whose data could not be had (ERROR) -> ERROR (never a promotion);
4. an undecided metric (NO_DATA, LOW_TRAFFIC) -> INCONCLUSIVE, with a LoadHint;
5. score >= ``pass_score`` -> PASS, otherwise INCONCLUSIVE (marginal).

Missing data is therefore never a silent PASS. Dry-run metrics are reported, never scored.
A summary names at most :data:`SUMMARY_NAMES` metrics of a kind and counts the others.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from gatekeeper.stats.classify import Classified, Comparison
from gatekeeper.stats.model import JudgeSettings, MetricData, MetricSettings, RatioSeries
from gatekeeper.stats.results import (
    Decision,
    GroupScore,
    LoadHint,
    MetricResult,
    Outcome,
    Verdict,
)


@dataclass(frozen=True, slots=True)
class Scores:
    """The weighted score, and the score if every undecided metric passed."""

    score: float
    optimistic: float
    groups: tuple[GroupScore, ...]


def score_groups(results: Sequence[MetricResult], *, group_weights: Mapping[str, float]) -> Scores:
    """Weighted-sum score over the metric groups, 0..100.

    Parameters
    ----------
    results : sequence of MetricResult
        Dry-run metrics are ignored.
    group_weights : mapping
        Weight of each named group; groups not named weigh the mean of the named ones (1
        when none is named).

    Returns
    -------
    Scores
        ``score`` counts only PASS; ``optimistic`` also counts NO_DATA, LOW_TRAFFIC and ERROR.
    """
    scored = [r for r in results if not r.dry_run]
    names = list(dict.fromkeys(r.group for r in scored))
    default = (sum(group_weights.values()) / len(group_weights)) if group_weights else 1.0
    groups: list[GroupScore] = []
    total = optimistic = weights = 0.0
    for name in names:
        members = [r for r in scored if r.group == name]
        mass = sum(r.weight for r in members)
        passed = sum(r.weight for r in members if r.outcome is Outcome.PASS)
        maybe = sum(r.weight for r in members if r.outcome.is_unknown or r.outcome is Outcome.ERROR)
        group_score = 100.0 * passed / mass if mass > 0 else 0.0
        weight = group_weights.get(name, default)
        groups.append(GroupScore(name=name, score=group_score, weight=weight))
        total += weight * group_score
        optimistic += weight * (100.0 * (passed + maybe) / mass if mass > 0 else 0.0)
        weights += weight
    if weights <= 0:
        return Scores(0.0, 0.0, tuple(groups))
    return Scores(total / weights, optimistic / weights, tuple(groups))


def decide(
    results: Sequence[MetricResult], scores: Scores, *, pass_score: float, marginal_score: float
) -> tuple[Decision, str]:
    """The decision and one sentence why (rules in the module docstring)."""
    live = [r for r in results if not r.dry_run]
    if not live:  # nothing decides: whatever the thresholds, no data is never a PASS
        return Decision.INCONCLUSIVE, "every metric is dry-run: none of them decides"
    critical = [r for r in live if r.critical and r.outcome.is_regression]
    if critical:
        return Decision.FAIL, f"critical metric {_list(critical)}: {critical[0].reason}"
    regressed = [r for r in live if r.outcome.is_regression]
    if scores.optimistic < marginal_score:
        first = f": {regressed[0].reason}" if regressed else ""
        return Decision.FAIL, (
            f"regressed {_list(regressed)}{first}; the score cannot reach the marginal "
            f"{marginal_score:.0f} (at most {scores.optimistic:.0f})"
        )
    errors = [r for r in live if r.outcome is Outcome.ERROR]
    if errors:
        return Decision.ERROR, f"no data could be had for {_list(errors)}: {errors[0].reason}"
    unknown = [r for r in live if r.outcome.is_unknown]
    if unknown:
        detail = unknown[0].reason.removeprefix("not enough data to decide: ")
        return Decision.INCONCLUSIVE, f"not enough data yet for {_list(unknown)}: {detail}"
    if scores.score >= pass_score:
        note = f"; non-critical regressions: {_list(regressed)}" if regressed else ""
        return Decision.PASS, (
            f"every metric inside its PASS boundary{note}; score {scores.score:.0f}"
            if not regressed
            else f"score {scores.score:.0f} >= pass {pass_score:.0f}{note}"
        )
    return Decision.INCONCLUSIVE, (
        f"score {scores.score:.0f} is marginal (between {marginal_score:.0f} and "
        f"{pass_score:.0f}); regressed: {_list(regressed)}"
    )


#: Metrics a summary names; the rest are counted ("and 995 more"), so that the summary of
#: a request with many metrics stays one sentence.
SUMMARY_NAMES = 5


def _list(results: Sequence[MetricResult]) -> str:
    named = ", ".join(f"{r.name} ({r.outcome.value})" for r in results[:SUMMARY_NAMES])
    more = len(results) - SUMMARY_NAMES
    return (f"{named} and {more} more" if more > 0 else named) or "none"


def reason(classified: Classified, data: MetricData) -> str:
    """One sentence about a metric's outcome, with any notes on the data's cleaning."""
    text = _reason(classified, data)
    return f"{text} ({'; '.join(data.notes)})" if data.notes else text


def _reason(classified: Classified, data: MetricData) -> str:
    found = classified.comparison
    outcome = classified.outcome
    if outcome is Outcome.ERROR:
        return f"metric source error: {found.detail}"
    if outcome is Outcome.NO_DATA:
        return f"no data: {found.detail}"
    boundaries = _boundaries(data.settings)
    if outcome.is_regression:
        return (
            f"regression beyond the FAIL boundary ({boundaries}): {found.detail} "
            f"(p={found.p_fail:.2g} <= {classified.alpha:.2g})"
        )
    if outcome is Outcome.PASS:
        return f"inside the PASS boundary ({boundaries}): {found.detail}"
    return f"not enough data to decide ({boundaries}): {found.detail}; {_still_needed(found)}"


def _boundaries(settings: MetricSettings) -> str:
    """Both boundaries in words: "rolled back beyond +20%, promoted only below +100% + 0.0005"."""

    def margin(relative: float, absolute: float) -> str:
        text = f"+{relative:.0%}"
        return f"{text} + {absolute:g}" if absolute else text

    fail, passing = settings.fail_margin, settings.pass_margin
    return (
        f"rolled back beyond {margin(fail.relative, fail.absolute)}, "
        f"promoted only below {margin(passing.relative, passing.absolute)}"
    )


def _still_needed(found: Comparison) -> str:
    """Which boundary the data cannot settle yet, and how much more data that takes."""
    unit = found.unit
    if math.isfinite(found.needed):
        return (
            f"about {math.ceil(found.needed):,} more canary {unit} needed to settle the PASS "
            "boundary"
        )
    if math.isfinite(found.fail_needed) and found.fail_needed > 0:
        return (
            "the canary looks worse than the PASS boundary, so it will not be promoted; about "
            f"{math.ceil(found.fail_needed):,} more canary {unit} would settle the FAIL boundary"
        )
    return "more data at the current estimate will settle neither the PASS nor the FAIL boundary"


def to_result(classified: Classified, data: MetricData) -> MetricResult:
    """The reported result of one metric."""
    settings = data.settings
    found = classified.comparison
    return MetricResult(
        name=settings.name,
        outcome=classified.outcome,
        critical=settings.critical,
        test=found.test,
        p_value=found.p_fail,
        effect=found.effect,
        baseline=found.baseline,
        canary=found.canary,
        reason=reason(classified, data),
        dry_run=settings.dry_run,
        group=settings.group,
        weight=settings.weight,
        alpha=classified.alpha,
        queries=data.queries,
    )


def load_hint(
    classified: Sequence[Classified], metrics: Sequence[MetricData], settings: JudgeSettings
) -> LoadHint | None:
    """How many more canary requests the undecided metrics need, at what rate, how long.

    The largest finite need of the undecided request-counting metrics (RATIO, HISTOGRAM),
    each for its PASS boundary (or its FAIL boundary where PASS is out of reach).
    With ``interval_seconds``: ``seconds`` is the rest of the planned looks (or, without a
    plan, as long as the data seen so far) and ``rps`` the synthetic canary rate to add on
    top of the organic canary traffic seen so far (0: waiting is enough).
    """
    needs = [
        (_settling_need(c.comparison), m)
        for c, m in zip(classified, metrics, strict=True)
        if c.outcome is Outcome.LOW_TRAFFIC
        and not m.settings.dry_run
        and c.comparison.unit == "requests"
        and math.isfinite(_settling_need(c.comparison))
    ]
    if not needs:
        return None
    needed, metric = max(needs, key=lambda pair: pair[0])
    needed = float(math.ceil(needed))
    interval = settings.interval_seconds
    if not interval:
        return LoadHint(canary_requests_needed=needed, rps=0.0, seconds=0)
    intervals = _intervals(metric)
    look = settings.look
    if look is not None and look.planned > look.index:
        seconds = (look.planned - look.index) * interval
    else:
        seconds = max(1, intervals) * interval
    organic = classified_canary_count(metric) / (max(1, intervals) * interval)
    rps = max(0.0, needed / seconds - organic)
    return LoadHint(canary_requests_needed=needed, rps=rps, seconds=math.ceil(seconds))


def _settling_need(found: Comparison) -> float:
    """What the PASS bound needs, or, when the canary looks beyond its reach, the FAIL bound.

    A promotion waits for the PASS bound; a canary that looks worse than the PASS boundary
    will not be promoted, and more load then only hastens its FAIL.
    """
    return found.needed if math.isfinite(found.needed) else found.fail_needed or math.inf


def _intervals(metric: MetricData) -> int:
    canary = metric.canary
    if isinstance(canary, RatioSeries):
        return canary.intervals
    return int(getattr(canary, "intervals", 0))


def classified_canary_count(metric: MetricData) -> float:
    """The canary's requests in a request-counting metric's data."""
    canary = metric.canary
    if isinstance(canary, RatioSeries):
        return float(canary.total.sum())
    counts = getattr(canary, "counts", None)
    if counts is None or counts.size == 0:
        return 0.0
    return float(counts[:, -1].sum())


def build_verdict(
    classified: Sequence[Classified],
    metrics: Sequence[MetricData],
    settings: JudgeSettings,
    *,
    alpha: float,
) -> Verdict:
    """Assemble the verdict: results, scores, decision, summary and LoadHint."""
    results = tuple(to_result(c, m) for c, m in zip(classified, metrics, strict=True))
    scores = score_groups(results, group_weights=settings.group_weights)
    decision, why = decide(
        results, scores, pass_score=settings.pass_score, marginal_score=settings.marginal_score
    )
    hint = load_hint(classified, metrics, settings) if decision is Decision.INCONCLUSIVE else None
    return Verdict(
        decision=decision,
        score=scores.score,
        metrics=results,
        summary=f"{decision.value}: {why}",
        load_hint=hint,
        groups=scores.groups,
        alpha=alpha,
    )
