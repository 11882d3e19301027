"""Decision quality, rendered: the README's tables, the JSON results and the plot.

Renders what :mod:`benchmarks.quality_summary` computes from the rows of
:mod:`benchmarks.decision_quality`; nothing here simulates, judges or counts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks import corpus
from benchmarks.quality_summary import (
    ANCHORS,
    BASELINE_BANDS,
    MAIN_RULES,
    PLAN_BAD_BANDS,
    SEQUENTIAL,
    SEQUENTIAL_FAMILIES,
    fmt_num,
    fmt_rate,
    fmt_ratio,
    headline,
)

BEGIN, END = "<!-- decision-quality:begin -->", "<!-- decision-quality:end -->"
#: The headline of an earlier run kept for "before and after" (in benchmarks/results/).
BEFORE_NAME = "decision_quality_before.json"


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
            f"{fmt_rate(summary[r][family]['fail_rate'])} / "
            f"{fmt_rate(summary[r][family]['pass_rate'])} / "
            f"{fmt_rate(summary[r][family]['inconclusive_rate'])}"
            for r in MAIN_RULES
        ]
        lines.append(f"| {names.get(family, family)} | {n} | " + " | ".join(cells) + " |")
    return lines


def _intro(report: dict[str, Any]) -> list[str]:
    env = report["environment"]
    return [
        f"Measured by `make bench-quality` on {report['corpus']['rollouts']} rollouts "
        f"({env['cpus']} cores, {env['wall_seconds']:.0f} s). "
        "Rates are shares of the family's rollouts; medians are over the rollouts a rule "
        "rolled back (FAIL), with their count.",
        "",
    ]


def _before_after(report: dict[str, Any], before: dict[str, Any] | None) -> list[str]:
    """The gatekeeper's healthy PASS rate and oracle ratio, before a change and now."""
    now = headline(report)
    then = before["headline"] if before else None
    label = before["label"] if before else "no earlier run recorded"
    lines = [
        "### Before and after: healthy PASS rate and speed against the oracle",
        "",
        f"The gatekeeper now, and in the run recorded in `results/{BEFORE_NAME}` ({label}).",
        "",
        "| healthy family | PASS rate before | PASS rate now |",
        "|---|---|---|",
    ]
    for group, rate in now["healthy_pass_rate"].items():
        old = then["healthy_pass_rate"].get(group) if then else None
        lines.append(f"| {group} | {fmt_rate(old)} | {fmt_rate(rate)} |")
    lines += [
        "",
        "| regression family | bad requests / oracle's, before (paired) | now (paired) |",
        "|---|---|---|",
    ]
    for family, ratio in now["oracle_ratio"].items():
        paired = now["oracle_ratio_paired"][family]
        old = then["oracle_ratio"].get(family) if then else None
        old_paired = then["oracle_ratio_paired"].get(family) if then else None
        lines.append(
            f"| {family} | {fmt_ratio(old)} ({fmt_ratio(old_paired)}) | "
            f"{fmt_ratio(ratio)} ({fmt_ratio(paired)}) |"
        )
    return [*lines, ""]


def _healthy_pass(report: dict[str, Any]) -> list[str]:
    lines = [
        "### Healthy rollouts promoted (PASS rate)",
        "",
        "| family | " + " | ".join(MAIN_RULES) + " |",
        "|---|" + "---|" * len(MAIN_RULES),
    ]
    for group, rates in report["healthy_pass"].items():
        lines.append(f"| {group} | " + " | ".join(fmt_rate(rates[r]) for r in MAIN_RULES) + " |")
    return [*lines, ""]


def _caught(summary: dict[str, Any]) -> list[str]:
    lines = [
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
                f"{fmt_num(s['median_seconds_to_fail'])} s / "
                f"{fmt_num(s['median_bad_before_fail'], digits=1)} ({s['fail']})"
            )
        lines.append(f"| {family} | " + " | ".join(cells) + " |")
    return lines


def _oracle(report: dict[str, Any]) -> list[str]:
    lines = [
        "",
        "### Speed against the oracle SPRT",
        "",
        "The oracle: Wald's SPRT that knows the true regression, against the same FAIL "
        "boundary at the same level after Holm (`benchmarks/oracle.py`). Its rollbacks "
        "(catch rate), median seconds and canary bad requests before FAIL; then each rule's "
        "median bad requests before FAIL and its ratio to the oracle's; last, the gatekeeper "
        "and the oracle on the rollouts both rolled back.",
        "",
        "| family | oracle | " + " | ".join(MAIN_RULES) + " | gatekeeper, paired |",
        "|---|---|" + "---|" * len(MAIN_RULES) + "---|",
    ]
    for family, row in report["oracle"].items():
        cells = [
            f"{fmt_rate(row['oracle_catch_rate'])}: {fmt_num(row['oracle_median_seconds'])} s, "
            f"{fmt_num(row['oracle_median_bad'], digits=1)} bad"
        ]
        for r in MAIN_RULES:
            mine = row["rules"][r]
            cells.append(f"{fmt_num(mine['median_bad'], digits=1)} ({fmt_ratio(mine['ratio'])})")
        p = row["paired"]
        cells.append(
            f"{p['both_caught']}: {fmt_num(p['median_bad'], digits=1)} vs "
            f"{fmt_num(p['oracle_median_bad'], digits=1)} ({fmt_ratio(p['ratio'])})"
        )
        lines.append(f"| {family} | " + " | ".join(cells) + " |")
    return lines


def _paired(report: dict[str, Any]) -> list[str]:
    lines = [
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
                f"{p['both_caught']}: {fmt_num(p['gatekeeper_median_bad'], digits=1)} vs "
                f"{fmt_num(p['anchor_median_bad'], digits=1)}; first "
                f"{p['gatekeeper_first']}/{p['anchor_first']}"
            )
        lines.append(f"| {family} | " + " | ".join(cells) + " |")
    return lines


def _bands(report: dict[str, Any]) -> list[str]:
    lines = [
        "",
        "### By the baseline's error rate: FAIL share of healthy / of bad rollouts",
        "",
        "| rule | " + " | ".join(b[2] for b in BASELINE_BANDS) + " |",
        "|---|" + "---|" * len(BASELINE_BANDS),
    ]
    for rule in (*MAIN_RULES, "gatekeeper-fixed", "gatekeeper-naive"):
        bands = report["by_baseline_error"][rule]
        cells = [
            f"{fmt_rate(bands['good'][b[2]]['fail_rate'])} / "
            f"{fmt_rate(bands['bad'][b[2]]['fail_rate'])}"
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
                " / ".join(fmt_rate(x["fail_rate"]).replace(" %", "") for x in rates)
                + f" ({rates[0]['rollouts']})"
            )
        lines.append(f"| {family} | " + " | ".join(cells) + " |")
    return lines


def _weights_and_data(summary: dict[str, Any]) -> list[str]:
    lines = [
        "",
        "### By canary weight: caught (bad) or false rollback (healthy), 5 % / 25 %",
        "",
        "| family | " + " | ".join(MAIN_RULES) + " |",
        "|---|" + "---|" * len(MAIN_RULES),
    ]
    for family in (*corpus.HEALTHY, *corpus.BAD):
        cells = [
            f"{fmt_rate(summary[r][f'{family}@5%']['fail_rate'])} / "
            f"{fmt_rate(summary[r][f'{family}@25%']['fail_rate'])}"
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
    return lines


def _goal_rows(found: list[dict[str, Any]]) -> list[str]:
    lines = ["| goal | measured | met |", "|---|---|---|"]
    for goal in found:
        lines.append(f"| {goal['goal']} | {goal['measured']} | {'yes' if goal['met'] else 'no'} |")
    return lines


def _sequential(seq: dict[str, Any]) -> list[str]:
    lines = [
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
                f"{fmt_rate(f['catch_rate'])}: {fmt_num(f['median_looks_to_fail'])} looks, "
                f"{fmt_num(f['median_seconds_to_fail'])} s, "
                f"{fmt_num(f['median_bad_before_fail'], digits=1)} bad"
            )
        lines.append(f"| {family} | " + " | ".join(cells) + " |")
    for key, name in (
        ("false_rollback_rate", "**false rollbacks**"),
        ("false_rollback_rate_except_warmup_shared", "*false rollbacks without warmup-shared*"),
    ):
        lines.append(f"| {name} | " + " | ".join(fmt_rate(seq[r][key]) for r in SEQUENTIAL) + " |")
    return [*lines, "", *_goal_rows(seq["goals"])]


def markdown(report: dict[str, Any], *, before: dict[str, Any] | None = None) -> str:
    """The generated part of benchmarks/README.md (``before``: an earlier run's headline)."""
    summary = report["per_rule"]
    lines = _intro(report) + _before_after(report, before)
    lines += _outcome_table(
        summary,
        "### Healthy rollouts: false rollbacks / promotions / inconclusive",
        (*corpus.HEALTHY, "healthy-except-warmup-shared", "healthy"),
        {"healthy": "**all healthy**", "healthy-except-warmup-shared": "*all but warmup-shared*"},
    )
    lines += ["", *_healthy_pass(report)]
    lines += _outcome_table(
        summary,
        "### Bad rollouts: caught (FAIL) / promoted / inconclusive",
        (*corpus.BAD, "bad-except-silent", "bad"),
        {"bad": "**all bad**", "bad-except-silent": "*all but silent*"},
    )
    lines += _caught(summary) + _oracle(report) + _paired(report) + _bands(report)
    lines += _weights_and_data(summary)
    lines += ["", "### Goals of the gatekeeper", "", *_goal_rows(report["goals"])]
    lines += _sequential(report["sequential"])
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


def write_readme(text: str, path: Path) -> None:
    """Replace the generated part of benchmarks/README.md (between the markers)."""
    current = path.read_text() if path.exists() else f"{BEGIN}\n{END}\n"
    head, _, rest = current.partition(BEGIN)
    _, _, tail = rest.partition(END)
    path.write_text(f"{head}{BEGIN}\n{text}\n{END}{tail}")


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
