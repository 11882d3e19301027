"""The decision-quality summaries on hand-made rows (benchmarks/quality_summary.py).

The oracle comparison divides medians of canary bad requests before FAIL, over the
rollouts each rule rolled back and over those both rolled back; the healthy PASS rate is
the share of a healthy family's rollouts promoted.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from benchmarks import quality_summary as qs
from benchmarks.rules import FAIL, INCONCLUSIVE, PASS


def row(name: str, family: str, rule: str, decision: str, bad: float) -> dict[str, Any]:
    return {
        "name": name,
        "family": family,
        "label": "good" if family == "aa" else "bad",
        "weight": 0.05,
        "rule": rule,
        "decision": decision,
        "seconds": 300.0,
        "judgements": 10,
        "canary_requests": 1000.0,
        "canary_bad": bad,
        "without_enough_data": False,
    }


def rows() -> pd.DataFrame:
    # x3/0: both FAIL (gatekeeper 30 bad, oracle 10); x3/1: only the oracle (20);
    # x3/2: only the gatekeeper (50). aa/0 PASSes, aa/1 and aa/2 do not.
    found = [
        row("x3/0", "errors-x3", "gatekeeper", FAIL, 30.0),
        row("x3/0", "errors-x3", qs.ORACLE, FAIL, 10.0),
        row("x3/1", "errors-x3", "gatekeeper", INCONCLUSIVE, 70.0),
        row("x3/1", "errors-x3", qs.ORACLE, FAIL, 20.0),
        row("x3/2", "errors-x3", "gatekeeper", FAIL, 50.0),
        row("x3/2", "errors-x3", qs.ORACLE, INCONCLUSIVE, 5.0),
        row("aa/0", "aa", "gatekeeper", PASS, 0.0),
        row("aa/1", "aa", "gatekeeper", INCONCLUSIVE, 0.0),
        row("aa/2", "aa", "gatekeeper", FAIL, 0.0),
    ]
    for rule in qs.RULES[1:]:
        found += [row(n, f, rule, PASS, 0.0) for n, f in (("x3/0", "errors-x3"), ("aa/0", "aa"))]
    return pd.DataFrame(found)


def test_against_oracle_divides_the_medians_of_bad_requests_before_fail() -> None:
    results = rows()
    summary = qs.by_family(results)
    found = qs.against_oracle(summary, results)["errors-x3"]
    assert (found["oracle_caught"], found["oracle_median_bad"]) == (2, 15.0)
    assert found["oracle_catch_rate"] == pytest.approx(2 / 3)
    gatekeeper = found["rules"]["gatekeeper"]
    assert (gatekeeper["caught"], gatekeeper["median_bad"]) == (2, 40.0)
    assert gatekeeper["ratio"] == pytest.approx(40.0 / 15.0)
    assert found["rules"]["argo"]["ratio"] is None  # argo caught none
    assert found["paired"] == {
        "both_caught": 1,
        "median_bad": 30.0,
        "oracle_median_bad": 10.0,
        "ratio": 3.0,
    }
    assert qs.against_oracle(summary, results)["errors-x10"]["rules"]["gatekeeper"]["ratio"] is None


def test_healthy_pass_rate_and_the_headline() -> None:
    results = rows()
    summary = qs.by_family(results)
    passed = qs.healthy_pass(summary)
    assert passed["aa"]["gatekeeper"] == pytest.approx(1 / 3)
    assert passed["aa"]["argo"] == 1.0
    assert passed["diurnal"]["gatekeeper"] is None  # no rollout of the family
    report = {"healthy_pass": passed, "oracle": qs.against_oracle(summary, results)}
    head = qs.headline(report)
    assert head["healthy_pass_rate"]["healthy"] == pytest.approx(1 / 3)
    assert head["oracle_ratio"]["errors-x3"] == pytest.approx(40.0 / 15.0)
    assert head["oracle_ratio_paired"]["errors-x3"] == 3.0


def test_the_speed_goal_is_the_oracle_ratio() -> None:
    results = rows()
    summary = qs.by_family(results)
    found = qs.goals(summary, results, qs.against_oracle(summary, results))
    x3 = next(g for g in found if g["goal"].startswith("errors-x3: median bad"))
    assert "1.3x the oracle" in x3["goal"] and not x3["met"]
    assert x3["measured"] == "gatekeeper 40.0, oracle 15.0: 2.67x"
    assert not any("half the best anchor" in g["goal"] for g in found)
