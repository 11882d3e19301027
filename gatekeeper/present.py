"""Verdicts for people: a compact table of every metric's outcome, effect and reason."""

from __future__ import annotations

import math

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
