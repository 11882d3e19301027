"""Decision quality: the gatekeeper against Argo Rollouts, Flagger and Kayenta rules.

Run by ``make bench-quality`` (``python -m benchmarks.decision_quality``; never from the
tests). Simulates the labelled corpus of :mod:`benchmarks.corpus` (756 rollouts, seeded),
judges every rollout with every rule of :mod:`benchmarks.rules` on the same per-interval
data, and writes ``benchmarks/results/decision_quality.json``, the plot
``benchmarks/results/decision_quality.png`` and the tables between the markers of
``benchmarks/README.md``. Rollouts are judged in a process pool over all cores; results are
gathered by position, so every number but the wall time is the same from run to run.

Rules (see benchmarks/README.md for the full definitions):

- ``gatekeeper``: the default spec (RATIO error rate and HISTOGRAM p99, both critical,
  default tolerances), replayed look by look with :func:`gatekeeper.replay.replay_recorded`
  (a ``Look`` every 30 s: anytime-valid), per step of the plan as its controller runs it.
- ``gatekeeper-fixed``: the same spec, one fixed-sample judgement (no ``Look``) at the end
  of each step's window.
- ``gatekeeper-naive``: the same spec judged every 30 s as independent fixed-sample tests
  (no ``Look``): what repeated looks without sequential inference do.
- ``argo``, ``flagger``: the anchor rules on absolute thresholds.
- ``kayenta``: KAYENTA mode (tolerance 0.25, confidence 0.98, pass 95 / marginal 75).
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import platform
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks import corpus, rules
from gatekeeper import engine
from gatekeeper.replay import replay_recorded
from gatekeeper.simulate import BUCKETS, recorded_table, simulate
from gatekeeper.sources.base import Window
from gatekeeper.sources.recorded import Grid, RecordedRollout, from_table
from gatekeeper.spec import AnalysisSpec, load_spec
from gatekeeper.stats.model import HistogramSeries, RatioSeries
from gatekeeper.stats.results import Decision
from gatekeeper.stats.tails import histogram_quantile

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "decision_quality.json"
PLOT = HERE / "results" / "decision_quality.png"
README = HERE / "README.md"
BEGIN, END = "<!-- decision-quality:begin -->", "<!-- decision-quality:end -->"

START = 1_767_225_600.0  #: 2026-01-01T00:00:00Z; the hour of day comes from the scenario
STEP = corpus.INTERVAL_SECONDS

DEFAULT_SPEC = """
interval: 30s
metrics:
  - {name: error-rate, kind: RATIO, critical: true}
  - {name: latency, kind: HISTOGRAM, quantile: 0.99, critical: true}
"""
KAYENTA_SPEC = """
interval: 30s
mode: KAYENTA
kayenta: {tolerance: 0.25, confidence: 0.98}
thresholds: {pass_score: 95, marginal_score: 75}
metrics:
  - {name: error-rate, kind: RATIO, critical: true, direction: INCREASE}
  - {name: latency, kind: HISTOGRAM, quantile: 0.99, critical: true, direction: INCREASE}
"""

RULES = ("gatekeeper", "argo", "flagger", "kayenta", "gatekeeper-fixed", "gatekeeper-naive")
ANCHORS = ("argo", "flagger", "kayenta")
MAIN_RULES = ("gatekeeper", *ANCHORS)
SEQUENTIAL = ("gatekeeper", "gatekeeper-fixed", "gatekeeper-naive")
SEQUENTIAL_FAMILIES = ("errors-x1.5", "errors-x3", "errors-x10", "p99+20%", "p99+100%")
RULE_TEXT = {
    "gatekeeper": "gatekeeper, default spec, a Look every 30 s (anytime-valid), per step",
    "argo": "Argo Rollouts: success rate >= 0.99 and p99 <= 500 ms over 1m, every 30 s, "
    "count 6, failureLimit 2, an inline analysis at each step",
    "flagger": "Flagger: request-success-rate min 99, request-duration max 500 ms, "
    "interval 1m, threshold 5, 17 one-minute iterations",
    "kayenta": "Kayenta (KAYENTA mode, tolerance 0.25, confidence 0.98, pass 95 / "
    "marginal 75), a stage per step, judged every minute",
    "gatekeeper-fixed": "gatekeeper, one fixed-sample judgement (no Look) at the end of "
    "each step's window",
    "gatekeeper-naive": "gatekeeper, a fixed-sample judgement (no Look) every 30 s",
}


@cache
def specs() -> tuple[AnalysisSpec, AnalysisSpec]:
    """The default and the KAYENTA-mode spec (for recorded data: no queries)."""
    return load_spec(DEFAULT_SPEC, queries=False), load_spec(KAYENTA_SPEC, queries=False)


# --- one rollout ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class Prepared:
    """A simulated rollout as recorded data, with its canary's per-interval series."""

    rollout: RecordedRollout
    canary: rules.CanarySeries
    bad: np.ndarray  #: canary bad requests per interval (errors, or slow requests)
    slow_bound: float


def prepare(case: corpus.Case) -> Prepared:
    """Simulate ``case`` and lay it on the 30-s grid the replay uses."""
    traffic = simulate(case.scenario)
    rollout = from_table(recorded_table(traffic, start=START), origin=case.name)
    default, _ = specs()
    settings = [default.settings(m) for m in default.metrics]
    window = Window(START, START + corpus.SIM_INTERVALS * STEP, STEP)
    data = rollout.grid(settings, window=window).upto(corpus.SIM_INTERVALS)
    ratio = next(m for m in data if isinstance(m.canary, RatioSeries))
    hist = next(m for m in data if isinstance(m.baseline, HistogramSeries))
    assert isinstance(ratio.canary, RatioSeries)
    assert isinstance(hist.baseline, HistogramSeries) and isinstance(hist.canary, HistogramSeries)
    bounds = hist.baseline.upper_bounds
    buckets = hist.canary.counts
    if buckets.shape[1] != bounds.size:  # a silent canary has no bucket rows at all
        buckets = np.zeros((corpus.SIM_INTERVALS, bounds.size))
    canary = rules.CanarySeries(
        requests=ratio.canary.total.copy(),
        errors=ratio.canary.bad.copy(),
        buckets=buckets,
        bounds=bounds,
    )
    baseline_p99 = histogram_quantile(
        q=0.99, upper_bounds=bounds, cumulative=hist.baseline.counts.sum(axis=0)
    )
    index = int(np.searchsorted(bounds, baseline_p99 - 1e-12))
    slow_bound = float(bounds[min(index, bounds.size - 2)])
    if case.family in corpus.LATENCY_FAMILIES:
        bad = buckets[:, -1] - buckets[:, min(index, bounds.size - 2)]
    else:
        bad = canary.errors
    assert np.array_equal(bounds, BUCKETS)
    return Prepared(rollout, canary, np.asarray(bad, dtype=float), slow_bound)


def _gatekeeper_replayed(spec: AnalysisSpec, rollout: RecordedRollout) -> rules.Outcome:
    """:func:`rules.walk_looks` carried out by the replay, one ``replay_recorded`` per step.

    Each step's analysis is replayed from its start to the end of the rollout's budget,
    stopping at the first PASS or FAIL (a ``Look`` at every interval, as the controller).
    """
    budget = corpus.PLAN_INTERVALS
    t = taken = 0
    for j in range(len(corpus.PLAN_STEPS)):
        if t >= budget:
            return rules.Outcome(rules.INCONCLUSIVE, budget, taken, f"step {j + 1} undecided")
        replay = replay_recorded(
            spec, rollout, interval_seconds=STEP, start=START + t * STEP, end=START + budget * STEP
        )
        summary = replay.summary
        taken += summary.looks
        if summary.decision is Decision.FAIL:
            return rules.Outcome(rules.FAIL, t + summary.looks, taken, f"FAIL in step {j + 1}")
        if summary.decision is not Decision.PASS:
            return rules.Outcome(rules.INCONCLUSIVE, budget, taken, f"step {j + 1} undecided")
        t += summary.looks
    return rules.Outcome(rules.PASS, t, taken, "every step passed")


def _fixed_sample_judge(spec: AnalysisSpec, rollout: RecordedRollout) -> rules.Judge:
    """A judge of a step's first ``points`` intervals, without a Look (fixed-sample tests)."""
    settings = [spec.settings(m) for m in spec.metrics]
    grids: dict[int, Grid] = {}

    def judge(step: int, start: int, points: int, planned: int) -> str:
        del step, planned
        if start not in grids:
            window = Window(START + start * STEP, START + corpus.SIM_INTERVALS * STEP, STEP)
            grids[start] = rollout.grid(settings, window=window)
        verdict = engine.judge(
            grids[start].upto(points), spec.judge_settings(interval_seconds=STEP)
        )
        return verdict.decision.value

    return judge


def _row(
    case: corpus.Case, prepared: Prepared, rule: str, outcome: rules.Outcome
) -> dict[str, Any]:
    requests = float(prepared.canary.requests[: outcome.at].sum())
    return {
        "name": case.name,
        "family": case.family,
        "label": case.label,
        "weight": case.weight,
        "rps": case.scenario.rps,
        "baseline_error_rate": case.baseline_error_rate,
        "rule": rule,
        "decision": outcome.decision,
        "seconds": outcome.at * STEP,
        "judgements": outcome.judgements,
        "canary_requests": requests,
        "canary_bad": float(prepared.bad[: outcome.at].sum()),
        "canary_errors": float(prepared.canary.errors[: outcome.at].sum()),
        "plan_bad": float(prepared.bad[: corpus.PLAN_INTERVALS].sum()),
        "without_enough_data": rules.promoted_without_enough_data(
            outcome, canary_requests=requests, baseline_error_rate=case.baseline_error_rate
        ),
        "reason": outcome.reason,
    }


def judge_case(case: corpus.Case) -> list[dict[str, Any]]:
    """Every rule's outcome for one rollout (runs in a worker process)."""
    default, kayenta = specs()
    prepared = prepare(case)
    steps = corpus.PLAN_STEPS
    budget = corpus.PLAN_INTERVALS
    fixed = _fixed_sample_judge(default, prepared.rollout)
    outcomes = {
        "gatekeeper": _gatekeeper_replayed(default, prepared.rollout),
        "argo": rules.argo_rollout(prepared.canary, steps),
        "flagger": rules.flagger_rollout(prepared.canary),
        "kayenta": rules.walk_kayenta(steps, _fixed_sample_judge(kayenta, prepared.rollout)),
        "gatekeeper-fixed": rules.walk_windows(steps, fixed),
        "gatekeeper-naive": rules.walk_looks(steps, fixed, budget=budget),
    }
    return [_row(case, prepared, rule, outcomes[rule]) for rule in RULES]


def judge_all(cases: Sequence[corpus.Case], *, workers: int) -> pd.DataFrame:
    """Judge every case on ``workers`` processes; rows in the cases' order."""
    if workers <= 1:
        found = [judge_case(c) for c in cases]
    else:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload([__name__])
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            found = list(pool.map(judge_case, cases, chunksize=4))
    return pd.DataFrame([row for rows in found for row in rows])


# --- summaries ----------------------------------------------------------------------------


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
    for rule in RULES:
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


def _fmt_rate(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f} %"


def _fmt_num(value: float | None, *, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:,.{digits}f}"


# --- goals ------------------------------------------------------------------------------------


def goals(
    summary: dict[str, dict[str, dict[str, Any]]], results: pd.DataFrame
) -> list[dict[str, Any]]:
    """The issue's goals for the gatekeeper, each with the measured value and whether it holds."""
    gk = summary["gatekeeper"]
    found: list[dict[str, Any]] = []

    def add(goal: str, measured: str, held: bool) -> None:
        found.append({"goal": goal, "measured": measured, "met": held})

    fr = gk["healthy"]["fail_rate"] or 0.0
    add("false rollbacks <= 1 % of healthy rollouts", _fmt_rate(fr), fr <= 0.01)
    fx = gk["healthy-except-warmup-shared"]["fail_rate"] or 0.0
    add(
        "(the same, without the warmup-shared family)",
        _fmt_rate(fx),
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
        add(f"catch >= {target:.0%} of {family}", _fmt_rate(rate), rate >= target)
    for family in corpus.BAD:
        if family == "silent":
            continue
        mine = gk[family]["median_bad_before_fail"]
        anchors = [summary[a][family]["median_bad_before_fail"] for a in ANCHORS]
        caught = [v for v in anchors if v is not None]
        if mine is None or not caught:
            best_text = _fmt_num(min(caught) if caught else None)
            add(
                f"{family}: median bad requests before rollback <= half the best anchor's",
                f"gatekeeper {_fmt_num(mine)}, best anchor {best_text}",
                not (mine is None and caught),
            )
            continue
        best = min(caught)
        add(
            f"{family}: median bad requests before rollback <= half the best anchor's",
            f"gatekeeper {_fmt_num(mine, digits=1)}, best anchor {_fmt_num(best, digits=1)}",
            mine <= 0.5 * best,
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
                "measured": f"anytime {_fmt_num(anytime, digits=1)}, "
                f"fixed {_fmt_num(fixed, digits=1)}",
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
                "measured": f"anytime {_fmt_rate(fa)}, fixed {_fmt_rate(ff)}",
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


# --- report -----------------------------------------------------------------------------------


def _outcome_table(
    summary: dict[str, Any], title: str, families: tuple[str, ...], names: dict[str, str]
) -> list[str]:
    """A FAIL / PASS / INCONCLUSIVE rate table of ``families`` for the main rules."""
    lines = [
        title,
        "",
        "| family | n | " + " | ".join(MAIN_RULES) + " |",
        "|---|---|" + "---|" * len(MAIN_RULES),
    ]
    for family in families:
        n = summary["gatekeeper"][family]["rollouts"]
        cells = [
            f"{_fmt_rate(summary[r][family]['fail_rate'])} / "
            f"{_fmt_rate(summary[r][family]['pass_rate'])} / "
            f"{_fmt_rate(summary[r][family]['inconclusive_rate'])}"
            for r in MAIN_RULES
        ]
        lines.append(f"| {names.get(family, family)} | {n} | " + " | ".join(cells) + " |")
    return lines


def markdown(report: dict[str, Any]) -> str:
    """The generated part of benchmarks/README.md."""
    summary = report["per_rule"]
    lines = [
        f"Measured by `make bench-quality` on {report['corpus']['rollouts']} rollouts "
        f"({report['environment']['cpus']} cores, {report['environment']['wall_seconds']:.0f} s). "
        "Rates are shares of the family's rollouts; medians are over the rollouts a rule "
        "rolled back (FAIL), with their count.",
        "",
    ]
    lines += _outcome_table(
        summary,
        "### Healthy rollouts: false rollbacks / promotions / inconclusive",
        (*corpus.HEALTHY, "healthy-except-warmup-shared", "healthy"),
        {"healthy": "**all healthy**", "healthy-except-warmup-shared": "*all but warmup-shared*"},
    )
    lines += [""]
    lines += _outcome_table(
        summary,
        "### Bad rollouts: caught (FAIL) / promoted / inconclusive",
        (*corpus.BAD, "bad-except-silent", "bad"),
        {"bad": "**all bad**", "bad-except-silent": "*all but silent*"},
    )
    lines += [
        "",
        "### Caught rollouts: median time to rollback (s) / median canary bad requests "
        "served before it (caught count)",
        "",
        "| family | " + " | ".join(MAIN_RULES) + " |",
        "|---|" + "---|" * len(MAIN_RULES),
    ]
    for family in corpus.BAD:
        cells = []
        for r in MAIN_RULES:
            s = summary[r][family]
            cells.append(
                f"{_fmt_num(s['median_seconds_to_fail'])} s / "
                f"{_fmt_num(s['median_bad_before_fail'], digits=1)} ({s['fail']})"
            )
        lines.append(f"| {family} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "### The same rollouts caught by both: gatekeeper against each anchor",
        "",
        "Bad rollouts both rules rolled back: how many, median canary bad requests served "
        "(gatekeeper vs anchor), and which acted first (gatekeeper first / anchor first).",
        "",
        "| family | " + " | ".join(ANCHORS) + " |",
        "|---|" + "---|" * len(ANCHORS),
    ]
    for family, per_anchor in report["paired"].items():
        cells = []
        for anchor in ANCHORS:
            p = per_anchor[anchor]
            cells.append(
                f"{p['both_caught']}: {_fmt_num(p['gatekeeper_median_bad'], digits=1)} vs "
                f"{_fmt_num(p['anchor_median_bad'], digits=1)}; first "
                f"{p['gatekeeper_first']}/{p['anchor_first']}"
            )
        lines.append(f"| {family} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "### By the baseline's error rate: FAIL share of healthy / of bad rollouts",
        "",
        "| rule | " + " | ".join(b[2] for b in BASELINE_BANDS) + " |",
        "|---|" + "---|" * len(BASELINE_BANDS),
    ]
    for rule in (*MAIN_RULES, "gatekeeper-fixed", "gatekeeper-naive"):
        bands = report["by_baseline_error"][rule]
        cells = [
            f"{_fmt_rate(bands['good'][b[2]]['fail_rate'])} / "
            f"{_fmt_rate(bands['bad'][b[2]]['fail_rate'])}"
            for b in BASELINE_BANDS
        ]
        lines.append(f"| {rule} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "### Catch rate by the canary bad requests the whole 17-minute plan serves",
        "",
        "gatekeeper / argo / flagger / kayenta (rollouts in the band). Below 10 bad requests "
        "no judge can tell a x3 from noise; anchors there only catch on absolute thresholds.",
        "",
        "| family | " + " | ".join(b[2] for b in PLAN_BAD_BANDS) + " |",
        "|---|" + "---|" * len(PLAN_BAD_BANDS),
    ]
    for family in report["by_plan_bad"]["gatekeeper"]:
        cells = []
        for band in PLAN_BAD_BANDS:
            rates = [report["by_plan_bad"][r][family][band[2]] for r in MAIN_RULES]
            cells.append(
                " / ".join(_fmt_rate(x["fail_rate"]).replace(" %", "") for x in rates)
                + f" ({rates[0]['rollouts']})"
            )
        lines.append(f"| {family} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "### By canary weight: caught (bad) or false rollback (healthy), 5 % / 25 %",
        "",
        "| family | " + " | ".join(MAIN_RULES) + " |",
        "|---|" + "---|" * len(MAIN_RULES),
    ]
    for family in (*corpus.HEALTHY, *corpus.BAD):
        cells = [
            f"{_fmt_rate(summary[r][f'{family}@5%']['fail_rate'])} / "
            f"{_fmt_rate(summary[r][f'{family}@25%']['fail_rate'])}"
            for r in MAIN_RULES
        ]
        lines.append(f"| {family} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "### Promotions without enough data (all families / low-traffic family)",
        "",
        "| rule | all | low-traffic |",
        "|---|---|---|",
    ]
    for r in MAIN_RULES:
        total = sum(
            summary[r][f]["promoted_without_enough_data"] for f in (*corpus.HEALTHY, *corpus.BAD)
        )
        low = summary[r]["low-traffic"]["promoted_without_enough_data"]
        lines.append(f"| {r} | {total} | {low} |")
    lines += ["", "### Goals of the gatekeeper", "", "| goal | measured | met |", "|---|---|---|"]
    for goal in report["goals"]:
        lines.append(f"| {goal['goal']} | {goal['measured']} | {'yes' if goal['met'] else 'no'} |")
    seq = report["sequential"]
    lines += [
        "",
        "### Sequential looks: fixed windows, naive looks, anytime-valid looks",
        "",
        "Caught share, median looks / seconds / canary bad requests until FAIL, per judge; "
        "false rollbacks over all healthy rollouts.",
        "",
        "| family | " + " | ".join(SEQUENTIAL) + " |",
        "|---|" + "---|" * len(SEQUENTIAL),
    ]
    for family in SEQUENTIAL_FAMILIES:
        cells = []
        for r in SEQUENTIAL:
            f = seq[r]["families"][family]
            cells.append(
                f"{_fmt_rate(f['catch_rate'])}: {_fmt_num(f['median_looks_to_fail'])} looks, "
                f"{_fmt_num(f['median_seconds_to_fail'])} s, "
                f"{_fmt_num(f['median_bad_before_fail'], digits=1)} bad"
            )
        lines.append(f"| {family} | " + " | ".join(cells) + " |")
    lines.append(
        "| **false rollbacks** | "
        + " | ".join(_fmt_rate(seq[r]["false_rollback_rate"]) for r in SEQUENTIAL)
        + " |"
    )
    lines.append(
        "| *false rollbacks without warmup-shared* | "
        + " | ".join(
            _fmt_rate(seq[r]["false_rollback_rate_except_warmup_shared"]) for r in SEQUENTIAL
        )
        + " |"
    )
    lines += ["", "| goal | measured | met |", "|---|---|---|"]
    for goal in seq["goals"]:
        lines.append(f"| {goal['goal']} | {goal['measured']} | {'yes' if goal['met'] else 'no'} |")
    return "\n".join(lines)


ROLLOUT_COLUMNS = ("name", "family", "label", "weight", "rps", "baseline_error_rate", "plan_bad")
OUTCOME_COLUMNS = (
    "decision",
    "seconds",
    "judgements",
    "canary_bad",
    "canary_requests",
    "without_enough_data",
)


def _compact(value: Any) -> Any:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (float, np.floating)):
        number = float(value)
        return int(number) if number.is_integer() else float(f"{number:.4g}")
    if isinstance(value, np.integer):
        return int(value)
    return value


def with_rollouts(report: dict[str, Any], results: pd.DataFrame) -> str:
    """The report as JSON, with every rollout's outcome under every rule, one line each.

    ``rollouts.rows[i]`` is ``[*ROLLOUT_COLUMNS, {rule: [*OUTCOME_COLUMNS]}]``.
    """
    rows = []
    for _, mine in results.groupby("name", sort=False):
        first = mine.iloc[0]
        outcomes = {
            str(r["rule"]): [_compact(r[c]) for c in OUTCOME_COLUMNS] for _, r in mine.iterrows()
        }
        rows.append([_compact(first[c]) for c in ROLLOUT_COLUMNS] + [outcomes])
    head = json.dumps(report, indent=1, allow_nan=False)
    assert head.endswith("\n}")
    columns = json.dumps(list(ROLLOUT_COLUMNS))
    outcome_columns = json.dumps(list(OUTCOME_COLUMNS))
    lines = ",\n".join(json.dumps(row, separators=(",", ":"), allow_nan=False) for row in rows)
    text = (
        f'{head[:-2]},\n "rollouts": {{\n  "columns": {columns},\n'
        f'  "outcome_columns": {outcome_columns},\n  "rows": [\n{lines}\n  ]\n }}\n}}\n'
    )
    json.loads(text)  # the splice is valid JSON
    return text


def write_readme(text: str) -> None:
    """Replace the generated part of benchmarks/README.md (between the markers)."""
    current = README.read_text() if README.exists() else f"{BEGIN}\n{END}\n"
    head, _, rest = current.partition(BEGIN)
    _, _, tail = rest.partition(END)
    README.write_text(f"{head}{BEGIN}\n{text}\n{END}{tail}")


def plot(summary: dict[str, dict[str, dict[str, Any]]], path: Path) -> None:
    """Catch rate against median bad requests before rollback, per rule (and per family)."""
    import matplotlib  # noqa: PLC0415 (the plots extra, only when a plot is drawn)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    colours = {"gatekeeper": "C0", "argo": "C1", "flagger": "C2", "kayenta": "C3"}
    fig, ax = plt.subplots(figsize=(8, 5.5))
    families = [f for f in corpus.BAD if f != "silent"]
    for rule in MAIN_RULES:
        xs, ys = [], []
        for family in families:
            s = summary[rule][family]
            if s["median_bad_before_fail"] is None:
                continue
            xs.append(max(s["median_bad_before_fail"], 0.5))
            ys.append(s["fail_rate"])
        ax.scatter(xs, ys, color=colours[rule], alpha=0.35, s=25)
        caught = summary[rule]["bad-except-silent"]
        false = summary[rule]["healthy"]["fail_rate"] or 0.0
        ax.scatter(
            [max(caught["median_bad_before_fail"] or 0.5, 0.5)],
            [caught["fail_rate"]],
            color=colours[rule],
            s=140,
            edgecolor="black",
            label=f"{rule}: bad families but silent ({100 * false:.1f} % false rollbacks)",
        )
    ax.set_xscale("log")
    ax.set_xlabel("median canary bad requests served before rollback (caught rollouts)")
    ax.set_ylabel("catch rate (share of bad rollouts rolled back)")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title("Catch rate vs harm (large: all bad but silent; small: one family each)")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and write its results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--limit", type=int, default=0, help="judge every n-th rollout only")
    args = parser.parse_args(argv)
    cases = corpus.build()
    if args.limit:
        cases = cases[:: args.limit]
    began = time.perf_counter()
    results = judge_all(cases, workers=args.workers)
    wall = time.perf_counter() - began
    summary = by_family(results)
    report: dict[str, Any] = {
        "generated_by": "benchmarks/decision_quality.py (make bench-quality)",
        "corpus": {
            "seed": corpus.CORPUS_SEED,
            "rollouts": len(cases),
            "healthy": sum(c.label == "good" for c in cases),
            "bad": sum(c.label == "bad" for c in cases),
            "families": {f: corpus.DESCRIPTIONS[f] for f in (*corpus.HEALTHY, *corpus.BAD)},
            "canary_weights": list(corpus.ARMS),
            "plan_steps_intervals": list(corpus.PLAN_STEPS),
            "plan_weights": list(corpus.PLAN_WEIGHTS),
            "interval_seconds": STEP,
            "simulated_seconds": corpus.SIM_SECONDS,
        },
        "rules": RULE_TEXT,
        "environment": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "workers": args.workers,
            "wall_seconds": wall,
        },
        "per_rule": summary,
    }
    report["goals"] = goals(summary, results)
    report["paired"] = paired(results)
    report["by_baseline_error"] = by_baseline_error(results)
    report["by_plan_bad"] = by_plan_bad(results)
    report["sequential"] = sequential(summary)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(with_rollouts(report, results))
    plot(summary, PLOT)
    text = markdown(report)
    if not args.limit:
        write_readme(text)
    print(text)
    print(
        f"\nwrote {RESULTS.relative_to(HERE.parent)} and {PLOT.relative_to(HERE.parent)} "
        f"in {wall:.0f} s",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
