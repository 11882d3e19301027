"""Verdicts for people: a compact table of every metric's outcome, effect and reason."""

from __future__ import annotations

import math
from dataclasses import dataclass

from gatekeeper.api.v1 import gatekeeper_pb2 as pb


def _num(value: float) -> str:
    if math.isnan(value):
        return "-"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.4g}"


def _effect(effect: pb.Effect) -> str:
    if math.isnan(effect.estimate):
        return "-"
    return f"{_num(effect.estimate)} [{_num(effect.lower)}, {_num(effect.upper)}] {effect.scale}"


def _side(summary: pb.Summary, kind_rate: bool) -> str:
    if kind_rate:
        return f"{summary.rate * 100:.3g}% of {summary.count:,.0f}"
    return f"n={summary.count:,.0f} p50={_num(summary.p50)} p99={_num(summary.p99)}"


def decision_name(decision: int) -> str:
    """``DECISION_PASS`` -> ``PASS``."""
    return pb.Decision.Name(decision).removeprefix("DECISION_")  # type: ignore[arg-type]


def verdict_table(verdict: pb.Verdict) -> str:
    """Render a verdict as a plain-text table followed by each metric's reason."""
    header = ("metric", "outcome", "effect [bounds]", "p", "baseline", "canary")
    rows: list[tuple[str, ...]] = []
    for m in verdict.metrics:
        outcome = pb.Outcome.Name(m.outcome).removeprefix("OUTCOME_")
        flags = "".join((" *" if m.critical else "", " (dry-run)" if m.dry_run else ""))
        rate = m.effect.scale == "rate_ratio"
        rows.append(
            (
                m.name + flags,
                outcome,
                _effect(m.effect),
                f"{m.p_value:.2g}",
                _side(m.baseline, rate),
                _side(m.canary, rate),
            )
        )
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        f"{decision_name(verdict.decision)}  score {verdict.score:.0f}  {verdict.summary}",
        "",
        "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)),
        "  ".join("-" * w for w in widths),
    ]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    lines.append("")
    lines += [f"{m.name}: {m.reason}" for m in verdict.metrics]
    if verdict.HasField("load_hint"):
        hint = verdict.load_hint
        lines.append(
            f"load hint: {hint.canary_requests_needed:,.0f} more canary requests"
            + (f", {hint.rps:.3g} rps for {hint.seconds} s" if hint.seconds else "")
        )
    lines.append("(* critical)")
    return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class Difference:
    """One metric judged by both modes."""

    metric: str
    default: str
    kayenta: str
    default_effect: str
    kayenta_effect: str
    differs: bool


def _outcome(result: pb.MetricResult) -> str:
    return pb.Outcome.Name(result.outcome).removeprefix("OUTCOME_")


def compare_verdicts(ours: pb.Verdict, theirs: pb.Verdict) -> list[Difference]:
    """Metric by metric: the default mode's outcome and effect beside KAYENTA mode's."""
    kayenta = {m.name: m for m in theirs.metrics}
    found = []
    for mine in ours.metrics:
        other = kayenta.get(mine.name)
        other_outcome = _outcome(other) if other is not None else "-"
        found.append(
            Difference(
                metric=mine.name,
                default=_outcome(mine),
                kayenta=other_outcome,
                default_effect=_effect(mine.effect),
                kayenta_effect=_effect(other.effect) if other is not None else "-",
                differs=_outcome(mine) != other_outcome,
            )
        )
    return found


def comparison_table(ours: pb.Verdict, theirs: pb.Verdict) -> str:
    """Both modes' decisions, then the metrics, differences marked with ``!``."""
    rows = [("metric", "default", "KAYENTA", "default effect", "KAYENTA effect", "")]
    for d in compare_verdicts(ours, theirs):
        rows.append(
            (
                d.metric,
                d.default,
                d.kayenta,
                d.default_effect,
                d.kayenta_effect,
                "!" if d.differs else "",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [
        f"default mode: {decision_name(ours.decision)} ({ours.summary})",
        f"KAYENTA mode: {decision_name(theirs.decision)} ({theirs.summary})",
        "",
    ]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    for mine in ours.metrics:
        lines.append(f"{mine.name} (default): {mine.reason}")
    for other in theirs.metrics:
        lines.append(f"{other.name} (KAYENTA): {other.reason}")
    return "\n".join(lines)
