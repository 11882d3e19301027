"""A whole judgement in KAYENTA mode: NetflixACAJudge's pipeline over our metric data.

Kayenta judges time series of values. RATIO metrics are therefore judged on their
per-interval rates (bad / total, intervals without traffic dropped) and HISTOGRAM metrics
on their per-interval quantile (``histogram_quantile``), which is what a Kayenta user's
PromQL would have fetched. Then each metric is classified (:mod:`.classifier`), the run is
scored (:mod:`.scorer`) and decided: a critical failure or a score at or below the
marginal threshold is FAIL, a score reaching the pass threshold PASS, a score between
them INCONCLUSIVE (Kayenta's "marginal"). As in Kayenta, a metric without data is left out
of the score, so this mode may PASS on missing data; the default mode never does.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from gatekeeper.stats import tails
from gatekeeper.stats.kayenta.classifier import (
    EffectSizeMeasure,
    KayentaClassification,
    KayentaMetricParams,
    classify_metric,
)
from gatekeeper.stats.kayenta.scorer import ScoredMetric, did_pass, score
from gatekeeper.stats.model import (
    FloatArray,
    HistogramSeries,
    JudgeSettings,
    MetricData,
    RatioSeries,
    Series,
)
from gatekeeper.stats.results import (
    Decision,
    Effect,
    GroupScore,
    MetricResult,
    Outcome,
    SideSummary,
    Verdict,
)

_MEASURES = {"MEAN_RATIO": EffectSizeMeasure.MEAN_RATIO, "CLES": EffectSizeMeasure.CLES}


def as_values(series: Series, *, quantile: float) -> FloatArray:
    """The per-interval values Kayenta would judge for a series of any kind."""
    if isinstance(series, RatioSeries):
        busy = series.total > 0
        rates: FloatArray = series.bad[busy] / series.total[busy]
        return rates
    if isinstance(series, HistogramSeries):
        merged = [
            tails.histogram_quantile(q=quantile, upper_bounds=series.upper_bounds, cumulative=row)
            for row in series.counts
        ]
        values = np.asarray(merged, dtype=float)
        kept: FloatArray = values[~np.isnan(values)]
        return kept
    return series


def params_of(data: MetricData, settings: JudgeSettings) -> KayentaMetricParams:
    """Kayenta's classifier parameters for one metric."""
    metric = data.settings
    options = metric.kayenta
    return KayentaMetricParams(
        name=metric.name,
        direction=metric.direction,
        tolerance=settings.kayenta_tolerance,
        confidence=settings.kayenta_confidence,
        effect_size_measure=_MEASURES[options.effect_size_measure],
        allowed_decrease=options.allowed_decrease,
        allowed_increase=options.allowed_increase,
        critical_decrease=options.critical_decrease,
        critical_increase=options.critical_increase,
        critical=metric.critical,
        nodata_fail=options.nodata_fail,
        nan_strategy=metric.nan_strategy,
        nan_replacement=metric.nan_replacement,
        outlier_strategy=metric.outlier_strategy,
        outlier_factor=metric.outlier_factor,
    )


def _summary(values: FloatArray) -> SideSummary:
    finite = values[~np.isnan(values)]
    if finite.size == 0:
        return SideSummary()
    p50, p99 = np.quantile(finite, [0.5, 0.99])
    return SideSummary(
        count=float(finite.size), mean=float(finite.mean()), p50=float(p50), p99=float(p99)
    )


def _result(
    data: MetricData, found: KayentaClassification, base: FloatArray, can: FloatArray
) -> MetricResult:
    metric = data.settings
    outcome = found.label.outcome
    if data.error is not None:
        outcome = Outcome.ERROR
    return MetricResult(
        name=metric.name,
        outcome=outcome,
        critical=metric.critical,
        test=found.test or "kayenta",
        p_value=found.p_value,
        effect=Effect(
            estimate=found.estimate,
            lower=found.lower,
            upper=found.upper,
            confidence=found.confidence,
            scale=found.scale,
        ),
        baseline=_summary(base),
        canary=_summary(can),
        reason=data.error or found.reason,
        dry_run=metric.dry_run,
        group=metric.group,
        weight=metric.weight,
        queries=data.queries,
    )


def judge(metrics: Sequence[MetricData], settings: JudgeSettings) -> Verdict:
    """Judge as NetflixACAJudge: classify every metric, score the groups, decide."""
    results: list[MetricResult] = []
    scored: list[ScoredMetric] = []
    for data in metrics:
        quantile = data.settings.quantile
        base = as_values(data.baseline, quantile=quantile)
        can = as_values(data.canary, quantile=quantile)
        found = classify_metric(baseline=base, canary=can, params=params_of(data, settings))
        result = _result(data, found, base, can)
        results.append(result)
        if not data.settings.dry_run:
            scored.append(ScoredMetric.of(found, groups=(data.settings.group,), name=result.name))
    errors = [r for r in results if r.outcome is Outcome.ERROR and not r.dry_run]
    run = score(classifications=scored, group_weights=settings.group_weights)
    passed = did_pass(
        score=run.score,
        pass_threshold=settings.pass_score,
        marginal_threshold=settings.marginal_score,
    )
    if run.critical_failure or run.score <= settings.marginal_score:
        decision = Decision.FAIL
    elif errors:
        decision = Decision.ERROR
    elif passed:
        decision = Decision.PASS
    else:
        decision = Decision.INCONCLUSIVE
    why = run.reason or _why(results, run.score, settings)
    return Verdict(
        decision=decision,
        score=run.score,
        metrics=tuple(results),
        summary=f"{decision.value} (KAYENTA mode): {why}",
        load_hint=None,
        groups=tuple(GroupScore(g.name, g.score, g.weight) for g in run.groups),
        alpha=1.0 - settings.kayenta_confidence,
    )


def _why(results: Sequence[MetricResult], run_score: float, settings: JudgeSettings) -> str:
    flagged = [r for r in results if r.outcome is not Outcome.PASS and not r.dry_run]
    listed = ", ".join(f"{r.name} ({r.outcome.value})" for r in flagged) or "none"
    return (
        f"score {run_score:g} (pass {settings.pass_score:g}, marginal "
        f"{settings.marginal_score:g}); not passing: {listed}"
    )
