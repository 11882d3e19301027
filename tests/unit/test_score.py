"""Scoring and the decision rule, table-driven over outcomes (module docstring of score.py)."""

from __future__ import annotations

import math

import pytest

from gatekeeper.stats import score
from gatekeeper.stats.classify import holm_levels
from gatekeeper.stats.results import Decision, Effect, MetricResult, Outcome, SideSummary

P, H, L, N, T, E = (
    Outcome.PASS,
    Outcome.HIGH,
    Outcome.LOW,
    Outcome.NO_DATA,
    Outcome.LOW_TRAFFIC,
    Outcome.ERROR,
)


def result(
    outcome: Outcome,
    *,
    name: str = "m",
    critical: bool = False,
    group: str = "",
    weight: float = 1.0,
    dry_run: bool = False,
) -> MetricResult:
    return MetricResult(
        name=name,
        outcome=outcome,
        critical=critical,
        test="t",
        p_value=0.5,
        effect=Effect(1.0, 0.9, 1.1, 0.8, "x"),
        baseline=SideSummary(),
        canary=SideSummary(),
        reason=f"{name} reason",
        dry_run=dry_run,
        group=group,
        weight=weight,
    )


def decide(*results: MetricResult, pass_score: float = 95, marginal: float = 75) -> Decision:
    scores = score.score_groups(results, group_weights={})
    return score.decide(results, scores, pass_score=pass_score, marginal_score=marginal)[0]


# (outcomes as (outcome, critical), expected decision)
TABLE = [
    ([(P, True), (P, False)], Decision.PASS),
    ([(H, True), (P, False)], Decision.FAIL),
    ([(L, True), (T, False)], Decision.FAIL),
    ([(H, False)], Decision.FAIL),  # score 0 < marginal even if nothing else
    ([(P, True)] + [(P, False)] * 18 + [(H, False)], Decision.PASS),  # 95 >= pass 95
    ([(P, True)] + [(P, False)] * 8 + [(H, False)], Decision.INCONCLUSIVE),  # 90: marginal
    ([(P, True), (P, False), (H, False), (H, False)], Decision.FAIL),  # 50 < 75
    ([(P, True), (T, False)], Decision.INCONCLUSIVE),
    ([(N, True), (P, False)], Decision.INCONCLUSIVE),
    ([(T, False)] + [(P, False)] * 30, Decision.INCONCLUSIVE),  # never a silent PASS
    ([(E, False), (P, True)], Decision.ERROR),
    ([(E, False), (H, True)], Decision.FAIL),  # a certain FAIL is safe to act on
    ([(E, True), (T, False)], Decision.ERROR),
]


@pytest.mark.parametrize(("outcomes", "expected"), TABLE)
def test_decision_table(outcomes: list[tuple[Outcome, bool]], expected: Decision) -> None:
    results = [result(o, name=f"m{i}", critical=c) for i, (o, c) in enumerate(outcomes)]
    assert decide(*results) is expected


def test_dry_run_metrics_never_change_the_decision() -> None:
    assert decide(result(P), result(H, critical=True, dry_run=True)) is Decision.PASS
    assert decide(result(P), result(N, dry_run=True)) is Decision.PASS


def test_group_weights_and_equal_groups() -> None:
    results = [
        result(P, group="a"),
        result(P, group="a"),
        result(H, group="b"),
    ]
    equal = score.score_groups(results, group_weights={})
    assert equal.score == pytest.approx(50.0)
    weighted = score.score_groups(results, group_weights={"a": 75, "b": 25})
    assert weighted.score == pytest.approx(75.0)
    assert [(g.name, g.score) for g in weighted.groups] == [("a", 100.0), ("b", 0.0)]


def test_metric_weights_count_inside_a_group() -> None:
    results = [result(P, weight=3.0), result(H, weight=1.0)]
    assert score.score_groups(results, group_weights={}).score == pytest.approx(75.0)


def test_optimistic_score_counts_undecided_metrics_as_passing() -> None:
    found = score.score_groups([result(P), result(T), result(H)], group_weights={})
    assert found.score == pytest.approx(100 / 3)
    assert found.optimistic == pytest.approx(200 / 3)


def test_summary_sentence_names_the_metric() -> None:
    results = [result(H, name="error-rate", critical=True)]
    scores = score.score_groups(results, group_weights={})
    decision, why = score.decide(results, scores, pass_score=95, marginal_score=75)
    assert decision is Decision.FAIL and "error-rate" in why and "error-rate reason" in why


@pytest.mark.parametrize(
    ("p_values", "levels"),
    [
        ([0.001, 0.5], [0.005, 0.01]),
        ([0.004, 0.003, 0.2], [0.005, 10 / 3 * 1e-3, 0.01]),
        ([0.02, 0.001, 0.004], [0.01, 10 / 3 * 1e-3, 0.005]),
        ([0.006, 0.001, 0.007], [0.005, 10 / 3 * 1e-3, 0.005]),  # stops at rank 2
        ([], []),
    ],
)
def test_holm_levels(p_values: list[float], levels: list[float]) -> None:
    assert holm_levels(p_values, 0.01) == pytest.approx(levels)


def test_holm_rejects_what_bonferroni_misses() -> None:
    p_values = [0.003, 0.0045, 0.2]
    levels = holm_levels(p_values, 0.01)
    rejected = [p <= level for p, level in zip(p_values, levels, strict=True)]
    assert rejected == [True, True, False]
    assert not 0.0045 <= 0.01 / 3  # Bonferroni would keep the second
    assert math.isclose(levels[1], 0.005)
