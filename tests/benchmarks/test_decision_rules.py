"""The decision-quality benchmark's rules on tiny hand-made inputs (benchmarks/rules.py).

Each anchor rule is checked against its documented behaviour: Argo Rollouts' failureLimit
("failed > failureLimit"), count and NaN results; Flagger's threshold of failed checks that
a passing check does not reset and that hold the canary's advance; Spinnaker's canary stage
(interim below marginal fails, the last judgement must pass); and the walkers that turn the
gatekeeper's per-look decisions into a rollout's fate.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pytest

from benchmarks import rules
from benchmarks.rules import FAIL, INCONCLUSIVE, PASS

BOUNDS = np.array([0.1, 0.5, 1.0, math.inf])
STEPS = (4, 10, 20)


def series(
    requests: Sequence[float], errors: Sequence[float], *, slow: Sequence[float] | None = None
) -> rules.CanarySeries:
    """Per-interval data: every request under 0.1 s except ``slow`` ones (0.5 to 1 s)."""
    total = np.asarray(requests, dtype=float)
    late = np.zeros_like(total) if slow is None else np.asarray(slow, dtype=float)
    fast = total - late
    buckets = np.column_stack((fast, fast, total, total))
    return rules.CanarySeries(total, np.asarray(errors, dtype=float), buckets, BOUNDS)


def steady(intervals: int, *, rate: float = 0.0, requests: float = 100.0) -> rules.CanarySeries:
    return series([requests] * intervals, [requests * rate] * intervals)


def with_bad(intervals: int, bad: Sequence[int], *, rate: float = 0.1) -> rules.CanarySeries:
    """100 requests per interval; the 1-based intervals in ``bad`` have ``rate`` errors."""
    errors = [100 * rate if k + 1 in bad else 0.0 for k in range(intervals)]
    return series([100.0] * intervals, errors)


# --- windows ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("end", "width", "expected"),
    [
        (1, 2, 0.99),  # the first interval alone: the window is clipped at the start
        (2, 2, 0.995),  # (99 + 100) / 200
        (3, 1, math.nan),  # no request: 0/0 is NaN, as in PromQL
        (4, 2, 0.9),  # 45 of 50
    ],
)
def test_success_rate(end: int, width: int, expected: float) -> None:
    data = series([100, 100, 0, 50], [1, 0, 0, 5])
    found = rules.success_rate(data, end=end, width=width)
    assert (math.isnan(found) and math.isnan(expected)) or found == pytest.approx(expected)


@pytest.mark.parametrize(
    ("slow", "expected"),
    [
        (0, 0.099),  # rank 99 of 100 inside (0, 0.1]: 0.1 * 99 / 100
        (2, 0.75),  # 98 fast, 2 in (0.5, 1]: rank 99 is the first slow one, half way
        (50, 0.99),
    ],
)
def test_p99_is_histogram_quantile(slow: int, expected: float) -> None:
    data = series([100], [0], slow=[slow])
    assert rules.p99(data, end=1, width=2) == pytest.approx(expected)


def test_p99_without_requests_is_nan() -> None:
    assert math.isnan(rules.p99(series([0], [0]), end=1, width=2))


# --- Argo Rollouts -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "decision", "at", "judgements"),
    [
        # every measurement successful: three runs of 6, steps of max(6, 4), 10 and 20
        (steady(40), PASS, 36, 18),
        # every measurement fails: failed (3) > failureLimit (2) at the third one
        (steady(40, rate=0.1), FAIL, 3, 3),
        # one bad interval fails the two measurements whose 1m window holds it: 2 failures
        # are within failureLimit 2, so the run and the rollout go on
        (with_bad(40, [1]), PASS, 36, 18),
        # bad intervals 1 and 4 fail measurements 1, 2 and 4: the third failure at 4
        (with_bad(40, [1, 4]), FAIL, 4, 4),
        # no canary request: NaN >= 0.99 is false, a failed measurement
        (steady(40, requests=0.0), FAIL, 3, 3),
        # a regression in step 2's analysis run (intervals 7..12)
        (with_bad(40, [7, 8, 9, 10]), FAIL, 9, 9),
        # the same regression during step 2's pause (intervals 13..16) is never measured
        (with_bad(40, [13, 14, 15, 16]), PASS, 36, 18),
        # data ends before the last run completes
        (steady(20), INCONCLUSIVE, 20, 16),
    ],
)
def test_argo(data: rules.CanarySeries, decision: str, at: int, judgements: int) -> None:
    found = rules.argo_rollout(data, STEPS)
    assert (found.decision, found.at, found.judgements) == (decision, at, judgements)


def test_argo_p99_threshold() -> None:
    slow = series([100.0] * 40, [0.0] * 40, slow=[50.0] * 40)  # p99 0.98 s > 0.5 s
    found = rules.argo_rollout(slow, STEPS)
    assert (found.decision, found.at) == (FAIL, 3)
    assert found.reason.startswith("p99")


# --- Flagger ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "decision", "at", "judgements"),
    [
        # 17 passing checks, one a minute: promoted at minute 17
        (steady(44), PASS, 34, 17),
        # every check fails: the 5th failure at minute 5, the rollback at the next tick
        (steady(44, rate=0.1), FAIL, 12, 5),
        # no traffic: "no values found" fails the check
        (steady(44, requests=0.0), FAIL, 12, 5),
        # 4 failed checks hold the advance 4 minutes, then promotion
        (with_bad(44, [1, 3, 5, 7]), PASS, 42, 21),
        # failed checks are not reset by passing ones: 5 scattered failures roll back
        (with_bad(44, [2, 9, 17, 25, 33]), FAIL, 36, 17),
        # a 99.0 % success rate is not below the minimum of 99
        (steady(44, rate=0.01), PASS, 34, 17),
    ],
)
def test_flagger(data: rules.CanarySeries, decision: str, at: int, judgements: int) -> None:
    found = rules.flagger_rollout(data)
    assert (found.decision, found.at, found.judgements) == (decision, at, judgements)


# --- walkers ----------------------------------------------------------------------------------


class Script:
    """A judge answering from a table {(step, points): decision}, INCONCLUSIVE otherwise."""

    def __init__(self, answers: dict[tuple[int, int], str]) -> None:
        self.answers = answers
        self.calls: list[tuple[int, int, int, int]] = []

    def __call__(self, step: int, start: int, points: int, planned: int) -> str:
        self.calls.append((step, start, points, planned))
        return self.answers.get((step, points), INCONCLUSIVE)


@pytest.mark.parametrize(
    ("answers", "decision", "at", "judgements"),
    [
        ({(0, 2): PASS, (1, 3): PASS, (2, 1): PASS}, PASS, 6, 6),
        ({(0, 4): PASS, (1, 2): FAIL}, FAIL, 6, 6),
        ({(0, 1): FAIL}, FAIL, 1, 1),
        # past the planned 4 looks the step extends (onInconclusive: extend)
        ({(0, 9): PASS, (1, 12): PASS, (2, 13): PASS}, PASS, 34, 34),
        ({(0, 9): PASS, (1, 12): PASS, (2, 14): PASS}, INCONCLUSIVE, 34, 34),
        ({}, INCONCLUSIVE, 34, 34),
    ],
)
def test_walk_looks(
    answers: dict[tuple[int, int], str], decision: str, at: int, judgements: int
) -> None:
    judge = Script(answers)
    found = rules.walk_looks(STEPS, judge, budget=34)
    assert (found.decision, found.at, found.judgements) == (decision, at, judgements)


def test_walk_looks_passes_the_step_start_and_plan() -> None:
    judge = Script({(0, 2): PASS, (1, 1): FAIL})
    rules.walk_looks(STEPS, judge, budget=34)
    assert judge.calls == [(0, 0, 1, 4), (0, 0, 2, 4), (1, 2, 1, 10)]


@pytest.mark.parametrize(
    ("answers", "decision", "at", "judgements"),
    [
        ({(0, 4): PASS, (1, 10): PASS, (2, 20): PASS}, PASS, 34, 3),
        ({(1, 10): FAIL}, FAIL, 14, 2),
        ({(0, 4): PASS, (2, 20): PASS}, INCONCLUSIVE, 34, 3),
        ({(2, 20): FAIL}, FAIL, 34, 3),
    ],
)
def test_walk_windows(
    answers: dict[tuple[int, int], str], decision: str, at: int, judgements: int
) -> None:
    judge = Script(answers)
    found = rules.walk_windows(STEPS, judge)
    assert (found.decision, found.at, found.judgements) == (decision, at, judgements)
    assert [c[2] for c in judge.calls] == [STEPS[c[0]] for c in judge.calls]  # one per window


@pytest.mark.parametrize(
    ("answers", "decision", "at", "judgements"),
    [
        # interim judgements may be marginal; the last of each stage must pass
        ({(0, 4): PASS, (1, 10): PASS, (2, 20): PASS}, PASS, 34, 17),
        # an interim judgement below marginal fails the stage at once
        ({(0, 2): FAIL}, FAIL, 2, 1),
        ({(0, 4): PASS, (1, 6): FAIL}, FAIL, 10, 5),
        # a marginal last judgement fails the stage
        ({(0, 4): PASS}, FAIL, 14, 7),
        # an interim PASS does not end the stage early
        ({(0, 2): PASS, (0, 4): FAIL}, FAIL, 4, 2),
    ],
)
def test_walk_kayenta(
    answers: dict[tuple[int, int], str], decision: str, at: int, judgements: int
) -> None:
    found = rules.walk_kayenta(STEPS, Script(answers))
    assert (found.decision, found.at, found.judgements) == (decision, at, judgements)


# --- enough data --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rate", "needed"),
    [
        (0.01, 100.0),  # 1 / 0.012 = 83 requests, but a p99 needs 100
        (0.001, 1 / 0.0012),
        (0.0001, 1 / 0.00012),
        (0.0, math.nan),
    ],
)
def test_requests_needed(rate: float, needed: float) -> None:
    found = rules.requests_needed(rate)
    assert (math.isnan(found) and math.isnan(needed)) or found == pytest.approx(needed)


@pytest.mark.parametrize(
    ("decision", "requests", "rate", "expected"),
    [
        (PASS, 500.0, 0.001, True),  # 500 < 834
        (PASS, 900.0, 0.001, False),
        (FAIL, 10.0, 0.001, False),  # only promotions count
        (INCONCLUSIVE, 10.0, 0.001, False),
        (PASS, 10.0, 0.0, False),  # no baseline errors: the rule does not apply
    ],
)
def test_promoted_without_enough_data(
    decision: str, requests: float, rate: float, expected: bool
) -> None:
    outcome = rules.Outcome(decision, 34, 34)
    found = rules.promoted_without_enough_data(
        outcome, canary_requests=requests, baseline_error_rate=rate
    )
    assert found is expected
