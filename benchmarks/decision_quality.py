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
- ``oracle``: the speed anchor, Wald's SPRT that knows the true regression
  (:mod:`benchmarks.oracle`, :mod:`benchmarks.truth`), on the regression families only.

This module simulates and judges; :mod:`benchmarks.quality_summary` counts and
:mod:`benchmarks.quality_report` renders. ``--keep-as-before LABEL`` also keeps the run's
headline (healthy PASS rates, oracle ratios) as the "before" of later runs' reports.
"""

from __future__ import annotations

import argparse
import json
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

from benchmarks import corpus, oracle, quality_report, rules, truth
from benchmarks import quality_summary as qs
from benchmarks.quality_summary import ORACLE
from gatekeeper import engine
from gatekeeper.replay import replay_recorded
from gatekeeper.simulate import BUCKETS, recorded_table, simulate
from gatekeeper.sources.base import Window
from gatekeeper.sources.recorded import Grid, RecordedRollout, from_table
from gatekeeper.spec import AnalysisSpec, load_spec
from gatekeeper.stats.model import HistogramSeries, RatioSeries
from gatekeeper.stats.results import Decision, MetricKind
from gatekeeper.stats.tails import histogram_quantile

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "decision_quality.json"
PLOT = HERE / "results" / "decision_quality.png"
README = HERE / "README.md"
BEFORE = HERE / "results" / quality_report.BEFORE_NAME

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
    ORACLE: "oracle SPRT (Wald): knows the true regression; the FAIL boundary at alpha after "
    "Holm, a look every 30 s over the plan's 17 minutes, regression families only",
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
    baseline: RatioSeries  #: the baseline's errors and requests per interval


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
    assert isinstance(ratio.baseline, RatioSeries)
    return Prepared(rollout, canary, np.asarray(bad, dtype=float), slow_bound, ratio.baseline)


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


def _oracle(case: corpus.Case, prepared: Prepared, spec: AnalysisSpec) -> rules.Outcome:
    """The oracle SPRT on the plan's looks of the rollout's regressed metric (see RULE_TEXT)."""
    budget = corpus.PLAN_INTERVALS
    level = oracle.metric_alpha(alpha=spec.alpha, metrics=len(spec.metrics))
    kind = MetricKind.RATIO if case.family in corpus.ERROR_FAMILIES else MetricKind.HISTOGRAM
    settings = next(s for s in map(spec.settings, spec.metrics) if s.kind is kind)
    if settings.absolute_tolerance != 0.0:
        raise ValueError(f"{settings.name}: the oracle tests a relative boundary only")
    canary = prepared.canary
    if kind is MetricKind.RATIO:
        increments = oracle.ratio_llr(
            baseline_bad=prepared.baseline.bad[:budget],
            baseline_total=prepared.baseline.total[:budget],
            canary_bad=canary.errors[:budget],
            canary_total=canary.requests[:budget],
            boundary=1.0 + settings.tolerance,
            ratio=truth.true_ratio(case.scenario, intervals=budget),
        )
    else:
        tail = truth.tail_truth(
            case.scenario,
            bounds=canary.bounds,
            quantile=settings.quantile,
            tolerance=settings.tolerance,
        )
        total = canary.buckets[:budget, -1]
        increments = oracle.tail_llr(
            canary_above=total - canary.buckets[:budget, tail.bound_index],
            canary_total=total,
            boundary_share=1.0 - settings.quantile,
            share=tail.share,
        )
    found = oracle.sprt(increments=increments, alpha=level)
    if found.look is None:
        return rules.Outcome(rules.INCONCLUSIVE, budget, budget, "never crossed log(1/alpha)")
    return rules.Outcome(rules.FAIL, found.look, found.look, "crossed log(1/alpha)")


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
    if case.family in qs.ORACLE_FAMILIES:
        outcomes[ORACLE] = _oracle(case, prepared, default)
    return [_row(case, prepared, rule, outcome) for rule, outcome in outcomes.items()]


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


def build_report(
    cases: Sequence[corpus.Case], results: pd.DataFrame, *, workers: int, wall: float
) -> dict[str, Any]:
    """Every summary of one run, as written to the JSON results (without the rollouts)."""
    summary = qs.by_family(results)
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
            "workers": workers,
            "wall_seconds": wall,
        },
        "per_rule": summary,
    }
    report["oracle"] = qs.against_oracle(summary, results)
    report["healthy_pass"] = qs.healthy_pass(summary)
    report["goals"] = qs.goals(summary, results, report["oracle"])
    report["paired"] = qs.paired(results)
    report["by_baseline_error"] = qs.by_baseline_error(results)
    report["by_plan_bad"] = qs.by_plan_bad(results)
    report["sequential"] = qs.sequential(summary)
    return report


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and write its results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--limit", type=int, default=0, help="judge every n-th rollout only")
    parser.add_argument(
        "--keep-as-before",
        metavar="LABEL",
        default="",
        help=f"also keep this run's headline in results/{quality_report.BEFORE_NAME}, "
        "labelled LABEL, as the 'before' of later reports",
    )
    args = parser.parse_args(argv)
    cases = corpus.build()
    if args.limit:
        cases = cases[:: args.limit]
    began = time.perf_counter()
    results = judge_all(cases, workers=args.workers)
    wall = time.perf_counter() - began
    report = build_report(cases, results, workers=args.workers, wall=wall)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(quality_report.with_rollouts(report, results))
    quality_report.plot(report["per_rule"], PLOT)
    if args.keep_as_before:
        before = {"label": args.keep_as_before, "headline": qs.headline(report)}
        BEFORE.write_text(json.dumps(before, indent=1, allow_nan=False) + "\n")
    kept = json.loads(BEFORE.read_text()) if BEFORE.exists() else None
    text = quality_report.markdown(report, before=kept)
    if not args.limit:
        quality_report.write_readme(text, README)
    print(text)
    print(
        f"\nwrote {RESULTS.relative_to(HERE.parent)} and {PLOT.relative_to(HERE.parent)} "
        f"in {wall:.0f} s",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
