"""Decision quality, summarised: rates, delays and harm per rule and family, and the goals.

Pure functions of the per-rollout rows :mod:`benchmarks.decision_quality` computes (one
row per rollout and rule, the oracle SPRT's included); :mod:`benchmarks.quality_report`
renders what they return. Nothing here simulates or judges.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pandas as pd

from benchmarks import corpus, rules

RULES = ("gatekeeper", "argo", "flagger", "kayenta", "gatekeeper-fixed", "gatekeeper-naive")
ANCHORS = ("argo", "flagger", "kayenta")
MAIN_RULES = ("gatekeeper", *ANCHORS)
SEQUENTIAL = ("gatekeeper", "gatekeeper-fixed", "gatekeeper-naive")
SEQUENTIAL_FAMILIES = ("errors-x1.5", "errors-x3", "errors-x10", "p99+20%", "p99+100%")
#: The oracle SPRT (:mod:`benchmarks.oracle`): a speed anchor, judged on the regression
#: families only (it knows the true regression, so it has nothing to test on the others).
ORACLE = "oracle"
ORACLE_FAMILIES = tuple(
    f for f in corpus.BAD if f in (*corpus.ERROR_FAMILIES, *corpus.LATENCY_FAMILIES)
)
ORACLE_GOAL = 1.3
ORACLE_GOAL_FAMILIES = ("errors-x3", "errors-x10", "p99+100%")


def _median(values: pd.Series) -> float | None:
    return float(values.median()) if len(values) else None


def _share(hits: int, of: int) -> float | None:
    return hits / of if of else None


def summarise(rows: pd.DataFrame) -> dict[str, Any]:
    """Rates, delays and harm of one rule over one set of rollouts."""
    fail = rows[rows["decision"] == rules.FAIL]
    n = len(rows)
    return {
        "rollouts": n,
        "fail": len(fail),
        "pass": int((rows["decision"] == rules.PASS).sum()),
        "inconclusive": int((rows["decision"] == rules.INCONCLUSIVE).sum()),
        "fail_rate": _share(len(fail), n),
        "pass_rate": _share(int((rows["decision"] == rules.PASS).sum()), n),
        "inconclusive_rate": _share(int((rows["decision"] == rules.INCONCLUSIVE).sum()), n),
        "median_seconds_to_fail": _median(fail["seconds"]),
        "median_judgements_to_fail": _median(fail["judgements"]),
        "median_bad_before_fail": _median(fail["canary_bad"]),
        "median_canary_requests_before_fail": _median(fail["canary_requests"]),
        "promoted_without_enough_data": int(rows["without_enough_data"].sum()),
    }


def by_family(results: pd.DataFrame) -> dict[str, dict[str, dict[str, Any]]]:
    """rule -> group -> summary, groups: every family, ``healthy``, ``bad``, per arm."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for rule in (*RULES, ORACLE):
        mine = results[results["rule"] == rule]
        groups: dict[str, dict[str, Any]] = {
            "healthy": summarise(mine[mine["label"] == "good"]),
            "bad": summarise(mine[mine["label"] == "bad"]),
            "bad-except-silent": summarise(
                mine[(mine["label"] == "bad") & (mine["family"] != "silent")]
            ),
            "healthy-except-warmup-shared": summarise(
                mine[(mine["label"] == "good") & (mine["family"] != "warmup-shared")]
            ),
        }
        for family in (*corpus.HEALTHY, *corpus.BAD):
            of = mine[mine["family"] == family]
            groups[family] = summarise(of)
            for weight in corpus.ARMS:
                groups[f"{family}@{round(weight * 100)}%"] = summarise(of[of["weight"] == weight])
        out[rule] = groups
    return out


def fmt_rate(value: float | None) -> str:
    """A share as a percentage with one decimal; ``n/a`` for none."""
    return "n/a" if value is None else f"{100 * value:.1f} %"


def fmt_num(value: float | None, *, digits: int = 0) -> str:
    """A number with thousands separators; ``-`` for none or NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:,.{digits}f}"


# --- goals ------------------------------------------------------------------------------------


def goals(
    summary: dict[str, dict[str, dict[str, Any]]],
    results: pd.DataFrame,
    oracle: dict[str, dict[str, Any]],
) -> list[dict[str, Any]]:
    """The issues' goals for the gatekeeper, each with the measured value and whether it holds.

    ``oracle`` is :func:`against_oracle`: the speed goal is a ratio to the oracle SPRT's
    bad requests (issue 16; it replaces "half the best anchor rule's").
    """
    gk = summary["gatekeeper"]
    found: list[dict[str, Any]] = []

    def add(goal: str, measured: str, held: bool) -> None:
        found.append({"goal": goal, "measured": measured, "met": held})

    fr = gk["healthy"]["fail_rate"] or 0.0
    add("false rollbacks <= 1 % of healthy rollouts", fmt_rate(fr), fr <= 0.01)
    fx = gk["healthy-except-warmup-shared"]["fail_rate"] or 0.0
    add(
        "(the same, without the warmup-shared family)",
        fmt_rate(fx),
        fx <= 0.01,
    )
    for family, target in (
        ("errors-x3", 0.99),
        ("errors-x10", 0.99),
        ("p99+100%", 0.99),
        ("errors-x1.5", 0.90),
        ("p99+20%", 0.90),
    ):
        rate = gk[family]["fail_rate"] or 0.0
        add(f"catch >= {target:.0%} of {family}", fmt_rate(rate), rate >= target)
    for family in ORACLE_GOAL_FAMILIES:
        row = oracle[family]
        ratio = row["rules"]["gatekeeper"]["ratio"]
        add(
            f"{family}: median bad requests before rollback <= {ORACLE_GOAL:g}x the oracle SPRT's",
            f"gatekeeper {fmt_num(row['rules']['gatekeeper']['median_bad'], digits=1)}, "
            f"oracle {fmt_num(row['oracle_median_bad'], digits=1)}: {fmt_ratio(ratio)}",
            ratio is not None and ratio <= ORACLE_GOAL,
        )
    low = results[(results["rule"] == "gatekeeper") & (results["family"] == "low-traffic")]
    count = int(low["without_enough_data"].sum())
    add("no low-traffic canary promoted without enough data", f"{count}", count == 0)
    silent = results[(results["rule"] == "gatekeeper") & (results["family"] == "silent")]
    promoted = int((silent["decision"] == rules.PASS).sum())
    add("a silent canary never promoted", f"{promoted} promoted", promoted == 0)
    return found


def sequential(summary: dict[str, dict[str, dict[str, Any]]]) -> dict[str, Any]:
    """Before/after of anytime-valid looks: fixed windows, naive looks, anytime looks."""
    table: dict[str, Any] = {}
    for rule in SEQUENTIAL:
        table[rule] = {
            "false_rollback_rate": summary[rule]["healthy"]["fail_rate"],
            "false_rollback_rate_except_warmup_shared": summary[rule][
                "healthy-except-warmup-shared"
            ]["fail_rate"],
            "families": {
                family: {
                    "catch_rate": summary[rule][family]["fail_rate"],
                    "caught": summary[rule][family]["fail"],
                    "median_looks_to_fail": summary[rule][family]["median_judgements_to_fail"],
                    "median_seconds_to_fail": summary[rule][family]["median_seconds_to_fail"],
                    "median_bad_before_fail": summary[rule][family]["median_bad_before_fail"],
                }
                for family in SEQUENTIAL_FAMILIES
            },
        }
    checks = []
    for family in ("errors-x3", "errors-x10"):
        anytime = table["gatekeeper"]["families"][family]["median_bad_before_fail"]
        fixed = table["gatekeeper-fixed"]["families"][family]["median_bad_before_fail"]
        held = anytime is not None and fixed is not None and anytime * 2 <= fixed
        checks.append(
            {
                "goal": f"{family}: at least 2x fewer bad requests than the fixed-window judge",
                "measured": f"anytime {fmt_num(anytime, digits=1)}, "
                f"fixed {fmt_num(fixed, digits=1)}",
                "met": held,
            }
        )
    for key, text in (
        ("false_rollback_rate", "all healthy"),
        ("false_rollback_rate_except_warmup_shared", "healthy without warmup-shared"),
    ):
        fa = table["gatekeeper"][key] or 0.0
        ff = table["gatekeeper-fixed"][key] or 0.0
        checks.append(
            {
                "goal": f"false-rollback rate no higher than the fixed-window judge's ({text})",
                "measured": f"anytime {fmt_rate(fa)}, fixed {fmt_rate(ff)}",
                "met": fa <= ff,
            }
        )
    table["goals"] = checks
    return table


# --- where the rules differ -------------------------------------------------------------------

BASELINE_BANDS: tuple[tuple[float, float, str], ...] = (
    (0.0, 0.001, "< 0.1 %"),
    (0.001, 0.005, "0.1-0.5 %"),
    (0.005, 0.01, "0.5-1 %"),
    (0.01, 1.0, ">= 1 %"),
)
PLAN_BAD_BANDS = ((0.0, 10.0, "< 10"), (10.0, 30.0, "10-30"), (30.0, math.inf, ">= 30"))


def _band_rates(
    rows: pd.DataFrame, column: str, bands: Sequence[tuple[float, float, str]]
) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for low, high, name in bands:
        inside = rows[(rows[column] >= low) & (rows[column] < high)]
        found[name] = {
            "rollouts": len(inside),
            "fail_rate": _share(int((inside["decision"] == rules.FAIL).sum()), len(inside)),
        }
    return found


def by_baseline_error(results: pd.DataFrame) -> dict[str, Any]:
    """FAIL rate of healthy and of bad rollouts by the baseline's error rate, per rule."""
    out: dict[str, Any] = {}
    for rule in RULES:
        mine = results[results["rule"] == rule]
        out[rule] = {
            label: _band_rates(mine[mine["label"] == label], "baseline_error_rate", BASELINE_BANDS)
            for label in ("good", "bad")
        }
    return out


def by_plan_bad(results: pd.DataFrame) -> dict[str, Any]:
    """Catch rate by the canary bad requests the whole plan would serve, per rule and family."""
    out: dict[str, Any] = {}
    for rule in RULES:
        mine = results[results["rule"] == rule]
        out[rule] = {
            family: _band_rates(mine[mine["family"] == family], "plan_bad", PLAN_BAD_BANDS)
            for family in corpus.BAD
            if family != "silent"
        }
    return out


def paired(results: pd.DataFrame) -> dict[str, Any]:
    """Gatekeeper against each anchor on the bad rollouts both rolled back (same rollouts)."""
    table = results.pivot_table(
        index="name", columns="rule", values=["canary_bad", "seconds"], aggfunc="first"
    )
    decisions = results.pivot(index="name", columns="rule", values="decision")
    family = results.drop_duplicates("name").set_index("name")["family"]
    out: dict[str, Any] = {}
    for fam in corpus.BAD:
        if fam == "silent":
            continue
        names = family[family == fam].index
        out[fam] = {}
        for anchor in ANCHORS:
            both = [
                n
                for n in names
                if decisions.loc[n, "gatekeeper"] == rules.FAIL
                and decisions.loc[n, anchor] == rules.FAIL
            ]
            rows = table.loc[both]
            out[fam][anchor] = {
                "both_caught": len(both),
                "gatekeeper_median_bad": _median(rows[("canary_bad", "gatekeeper")]),
                "anchor_median_bad": _median(rows[("canary_bad", anchor)]),
                "gatekeeper_median_seconds": _median(rows[("seconds", "gatekeeper")]),
                "anchor_median_seconds": _median(rows[("seconds", anchor)]),
                "gatekeeper_first": int(
                    (rows[("seconds", "gatekeeper")] < rows[("seconds", anchor)]).sum()
                ),
                "anchor_first": int(
                    (rows[("seconds", "gatekeeper")] > rows[("seconds", anchor)]).sum()
                ),
            }
    return out


# --- the oracle SPRT --------------------------------------------------------------------------


def fmt_ratio(value: float | None) -> str:
    """A ratio to the oracle, ``2.41x``; ``-`` for none."""
    return "-" if value is None else f"{value:.2f}x"


def _ratio(mine: float | None, oracle: float | None) -> float | None:
    if mine is None or oracle is None or oracle <= 0:
        return None
    return mine / oracle


def _paired_with_oracle(results: pd.DataFrame, family: str, rule: str) -> dict[str, Any]:
    """``rule`` against the oracle on the rollouts of ``family`` both rolled back."""
    mine = results[(results["family"] == family) & (results["decision"] == rules.FAIL)]
    caught = {r: mine[mine["rule"] == r].set_index("name")["canary_bad"] for r in (rule, ORACLE)}
    both = caught[rule].index.intersection(caught[ORACLE].index)
    rule_bad = _median(caught[rule].loc[both])
    oracle_bad = _median(caught[ORACLE].loc[both])
    return {
        "both_caught": len(both),
        "median_bad": rule_bad,
        "oracle_median_bad": oracle_bad,
        "ratio": _ratio(rule_bad, oracle_bad),
    }


def against_oracle(
    summary: dict[str, dict[str, dict[str, Any]]], results: pd.DataFrame
) -> dict[str, dict[str, Any]]:
    """Per regression family: each main rule's median bad requests before FAIL over the oracle's.

    ``ratio`` divides the medians over the rollouts each one rolled back; ``paired`` is the
    same over the rollouts the gatekeeper and the oracle both rolled back.
    """
    out: dict[str, dict[str, Any]] = {}
    for family in ORACLE_FAMILIES:
        oracle = summary[ORACLE][family]
        base = oracle["median_bad_before_fail"]
        out[family] = {
            "oracle_caught": oracle["fail"],
            "oracle_catch_rate": oracle["fail_rate"],
            "oracle_median_bad": base,
            "oracle_median_seconds": oracle["median_seconds_to_fail"],
            "rules": {
                rule: {
                    "caught": summary[rule][family]["fail"],
                    "median_bad": summary[rule][family]["median_bad_before_fail"],
                    "ratio": _ratio(summary[rule][family]["median_bad_before_fail"], base),
                }
                for rule in MAIN_RULES
            },
            "paired": _paired_with_oracle(results, family, "gatekeeper"),
        }
    return out


def healthy_pass(summary: dict[str, dict[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Per healthy family (and all healthy): the share of rollouts each main rule promoted."""
    groups = (*corpus.HEALTHY, "healthy-except-warmup-shared", "healthy")
    return {g: {rule: summary[rule][g]["pass_rate"] for rule in MAIN_RULES} for g in groups}


def headline(report: dict[str, Any]) -> dict[str, Any]:
    """The figures compared before and after a change of the judge.

    The gatekeeper's healthy PASS rate per family and its ratio to the oracle per
    regression family (of each one's caught rollouts, and paired), from a report.
    """
    return {
        "healthy_pass_rate": {g: r["gatekeeper"] for g, r in report["healthy_pass"].items()},
        "oracle_ratio": {f: r["rules"]["gatekeeper"]["ratio"] for f, r in report["oracle"].items()},
        "oracle_ratio_paired": {f: r["paired"]["ratio"] for f, r in report["oracle"].items()},
    }
