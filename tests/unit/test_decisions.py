"""The decision rule on the cases a rollout meets (issue: judge core, "decision tests")."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from gatekeeper import engine
from gatekeeper.stats import classify, rates
from gatekeeper.stats.model import (
    HistogramSeries,
    JudgeSettings,
    MetricData,
    MetricSettings,
    RatioSeries,
)
from gatekeeper.stats.results import Decision, Direction, MetricKind, Outcome
from tests import traffic


def ratio_metric(baseline: RatioSeries, canary: RatioSeries, **settings: object) -> MetricData:
    return MetricData(
        MetricSettings(name="error-rate", kind=MetricKind.RATIO, **settings),  # type: ignore[arg-type]
        baseline,
        canary,
    )


def histogram_metric(
    baseline: HistogramSeries, canary: HistogramSeries, **settings: object
) -> MetricData:
    return MetricData(
        MetricSettings(name="latency", kind=MetricKind.HISTOGRAM, **settings),  # type: ignore[arg-type]
        baseline,
        canary,
    )


def test_error_rate_18x_worse_fails_where_an_absolute_99_percent_gate_passes() -> None:
    rng = np.random.default_rng(7)
    baseline = traffic.pod_counts(
        rng, pods=10, intervals=10, requests_per_pod=200, error_rate=0.0005
    )
    canary = traffic.pod_counts(rng, pods=10, intervals=10, requests_per_pod=200, error_rate=0.009)
    assert 19_000 < canary.total.sum() < 21_000
    canary_success = 1 - canary.bad.sum() / canary.total.sum()
    assert canary_success >= 0.99  # what Argo's and Flagger's documented 99 % gate would pass

    verdict = engine.judge([ratio_metric(baseline, canary, critical=True)], JudgeSettings())

    assert verdict.decision is Decision.FAIL
    result = verdict.metrics[0]
    assert result.outcome is Outcome.HIGH
    assert result.effect.lower > 1.2
    assert result.p_value <= result.alpha


def test_p99_doubled_with_p50_unchanged_fails_from_histograms() -> None:
    rng = np.random.default_rng(11)
    base = [traffic.latencies(rng, n=3000, median=0.05) for _ in range(10)]
    slow = [
        traffic.latencies(rng, n=300, median=0.05, slow_share=0.03, slow_factor=6.0)
        for _ in range(10)
    ]
    b_all, c_all = np.concatenate(base), np.concatenate(slow)
    assert abs(np.quantile(c_all, 0.5) / np.quantile(b_all, 0.5) - 1) < 0.05
    assert np.quantile(c_all, 0.99) / np.quantile(b_all, 0.99) > 1.9

    verdict = engine.judge(
        [histogram_metric(traffic.histograms(base), traffic.histograms(slow), critical=True)],
        JudgeSettings(),
    )

    assert verdict.decision is Decision.FAIL
    result = verdict.metrics[0]
    assert result.outcome is Outcome.HIGH
    assert result.canary.p99 > 1.5 * result.baseline.p99
    assert abs(result.canary.p50 / result.baseline.p50 - 1) < 0.1


def test_healthy_latency_histogram_passes() -> None:
    rng = np.random.default_rng(12)
    base = [traffic.latencies(rng, n=3000, median=0.05) for _ in range(10)]
    same = [traffic.latencies(rng, n=1000, median=0.05) for _ in range(10)]
    verdict = engine.judge(
        [histogram_metric(traffic.histograms(base), traffic.histograms(same))], JudgeSettings()
    )
    assert verdict.decision is Decision.PASS


def test_two_requests_a_minute_without_errors_is_inconclusive_with_a_load_hint() -> None:
    baseline = traffic.fixed_counts(bad=2, total=2400, intervals=3)  # 40 rps at 0.08 % errors
    canary = traffic.fixed_counts(bad=0, total=2, intervals=3)  # 2 requests a minute

    verdict = engine.judge([ratio_metric(baseline, canary)], JudgeSettings(interval_seconds=60.0))

    assert verdict.decision is Decision.INCONCLUSIVE
    assert verdict.metrics[0].outcome is Outcome.LOW_TRAFFIC
    hint = verdict.load_hint
    assert hint is not None
    assert hint.canary_requests_needed > 100
    assert hint.seconds == 180
    assert hint.rps == pytest.approx(hint.canary_requests_needed / 180 - 6 / 180)


def test_sparse_errors_from_a_zero_error_baseline_fail() -> None:
    verdict = engine.judge(
        [ratio_metric(traffic.fixed_counts(0, 10_000, 10), traffic.fixed_counts(3, 1_000, 10))],
        JudgeSettings(),
    )
    assert verdict.decision is Decision.FAIL
    assert verdict.metrics[0].effect.lower > 1.2


def test_healthy_zero_error_canary_passes_by_the_default_absolute_pass_margin() -> None:
    baseline = traffic.fixed_counts(0, 10_000, 10)
    canary = traffic.fixed_counts(0, 1_000, 10)

    ratio_only = engine.judge(
        [ratio_metric(baseline, canary, pass_absolute_tolerance=0.0)], JudgeSettings()
    )
    default = engine.judge([ratio_metric(baseline, canary)], JudgeSettings())
    allowed = engine.judge(
        [ratio_metric(baseline, canary, absolute_tolerance=0.001)], JudgeSettings()
    )

    assert ratio_only.decision is Decision.INCONCLUSIVE  # a ratio of 0/0 proves nothing
    assert "neither the PASS nor the FAIL boundary" in ratio_only.metrics[0].reason
    assert default.decision is Decision.PASS  # 0 errors in 10,000 rule out 0.05 points
    assert allowed.decision is Decision.PASS


def test_sparse_errors_still_fail_with_an_absolute_tolerance_they_exceed() -> None:
    verdict = engine.judge(
        [
            ratio_metric(
                traffic.fixed_counts(0, 10_000, 10),
                traffic.fixed_counts(3, 1_000, 10),
                absolute_tolerance=0.001,
            )
        ],
        JudgeSettings(),
    )
    assert verdict.decision is Decision.FAIL


def test_empty_canary_is_no_data_and_inconclusive_never_pass() -> None:
    empty = RatioSeries(bad=np.zeros(0), total=np.zeros(0))
    verdict = engine.judge([ratio_metric(traffic.fixed_counts(1, 1000, 5), empty)], JudgeSettings())
    assert verdict.metrics[0].outcome is Outcome.NO_DATA
    assert verdict.decision is Decision.INCONCLUSIVE


def _false_fails(ratio: float, *, seed: int, judgements: int = 1000) -> tuple[int, int]:
    """FAILs and PASSes of one canary pod against ten baseline pods, per-pod rates log-normal."""
    fails = passes = 0
    for i in range(judgements):
        rng = np.random.default_rng([seed, i])
        baseline = traffic.pod_counts(
            rng, pods=10, intervals=20, requests_per_pod=300, error_rate=0.01, sigma=0.5
        )
        canary = traffic.pod_counts(
            rng, pods=1, intervals=20, requests_per_pod=300, error_rate=0.01 * ratio, sigma=0.5
        )
        verdict = engine.judge([ratio_metric(baseline, canary)], JudgeSettings(alpha=0.01))
        fails += verdict.decision is Decision.FAIL
        passes += verdict.decision is Decision.PASS
    return fails, passes


# 99 % binomial bound for alpha = 0.01 over 1,000 judgements: qbinom(0.99, 1000, 0.01) = 18.
FALSE_FAIL_BOUND = 18


@pytest.mark.slow
def test_overdispersed_healthy_canary_false_fail_rate_within_alpha() -> None:
    fails, passes = _false_fails(1.0, seed=2024)
    assert fails <= FALSE_FAIL_BOUND
    assert passes > 300  # and the healthy canaries do get promoted


@pytest.mark.slow
def test_false_fail_rate_within_alpha_at_the_tolerance_boundary() -> None:
    fails, _ = _false_fails(1.2, seed=2025)
    assert fails <= FALSE_FAIL_BOUND


@pytest.mark.slow
def test_a_request_level_binomial_alone_would_exceed_alpha_at_the_boundary() -> None:
    """The overdispersion correction is what keeps the boundary case within alpha."""
    naive = corrected = 0
    for i in range(1000):
        rng = np.random.default_rng([2025, i])
        baseline = traffic.pod_counts(
            rng, pods=10, intervals=20, requests_per_pod=300, error_rate=0.01, sigma=0.5
        )
        canary = traffic.pod_counts(
            rng, pods=1, intervals=20, requests_per_pod=300, error_rate=0.012, sigma=0.5
        )
        counts = rates.stratify(baseline=baseline, canary=canary)
        binomial = replace(counts, dispersion=1.0)
        corrected += (
            rates.rate_ratio_pvalue(counts=counts, ratio=1.2, alternative="greater") <= 0.01
        )
        naive += rates.rate_ratio_pvalue(counts=binomial, ratio=1.2, alternative="greater") <= 0.01
    assert corrected <= FALSE_FAIL_BOUND < naive


@pytest.mark.parametrize(
    ("direction", "lower_level", "upper_level"),
    [(Direction.INCREASE, "alpha", "beta"), (Direction.DECREASE, "beta", "alpha")],
)
def test_the_fail_bound_is_at_the_metric_level_and_the_pass_bound_at_beta(
    direction: Direction, lower_level: str, upper_level: str
) -> None:
    baseline, canary = traffic.fixed_counts(40, 20_000, 10), traffic.fixed_counts(6, 2_000, 10)
    verdict = engine.judge(
        [ratio_metric(baseline, canary, direction=direction)], JudgeSettings(beta=0.2)
    )
    result = verdict.metrics[0]
    levels = {"alpha": result.alpha, "beta": 0.2}
    expected = rates.rate_ratio_interval(
        counts=rates.stratify(baseline=baseline, canary=canary),
        alpha_lower=levels[lower_level],
        alpha_upper=levels[upper_level],
    )
    assert result.effect.lower == pytest.approx(expected.lower)
    assert result.effect.upper == pytest.approx(expected.upper)
    assert result.effect.confidence == pytest.approx(1 - result.alpha - 0.2)


@pytest.mark.parametrize("side", ["baseline", "canary"])
def test_infinite_values_are_refused_not_judged(side: str) -> None:
    # The wire refuses inf; a data source that lets one through must not get a verdict.
    good = np.linspace(1.0, 2.0, 30)
    bad = np.append(good, np.inf)
    # Any: the parametrized key `side` is beyond what a TypedDict can check.
    samples: dict[str, Any] = {"baseline": good, "canary": good, side: bad}
    metric = MetricData(settings=MetricSettings(name="latency", kind=MetricKind.VALUES), **samples)
    with pytest.raises(ValueError, match=f"{side} must hold finite values"):
        engine.judge([metric], JudgeSettings())


def test_each_metric_is_finished_at_its_own_holm_level() -> None:
    # Every metric of the three kinds regresses: Holm rejects them one after another, each
    # at a larger level. The effect bounds (and the rest) are those of that level, as a
    # comparison of the metric alone at that level gives them.
    rng = np.random.default_rng(5)
    slow = [traffic.latencies(rng, n=400, median=0.2, slow_share=0.3, slow_factor=4.0)]
    fast = [traffic.latencies(rng, n=4000, median=0.2)]
    metrics = [
        ratio_metric(traffic.fixed_counts(10, 10_000, 6), traffic.fixed_counts(30, 1_000, 6)),
        histogram_metric(traffic.histograms(fast), traffic.histograms(slow)),
        MetricData(
            MetricSettings(name="latency-samples", kind=MetricKind.VALUES),
            rng.lognormal(0.0, 0.3, 80),
            rng.lognormal(0.6, 0.3, 80),
        ),
    ]
    found = classify.classify(metrics, alpha=0.01, beta=0.05)
    assert [c.outcome for c in found] == [Outcome.HIGH] * 3
    assert sorted(c.alpha for c in found) == pytest.approx([0.01 / 3, 0.01 / 2, 0.01])
    for data, classified in zip(metrics, found, strict=True):
        alone = classify.compare(data, alpha=classified.alpha, beta=0.05)
        assert classified.comparison == alone


# --- the gate opens: the two-margin rule's acceptance cases (issue: two margins) ----------

#: Prometheus' default buckets (client_golang's ``prometheus.DefBuckets``).
DEFAULT_BUCKETS = np.array([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, np.inf])


def _latency_histograms(seed: int, *, median: float, sigma: float) -> HistogramSeries:
    rng = np.random.default_rng(seed)
    samples = [rng.lognormal(np.log(median), sigma, 1_000) for _ in range(10)]
    return traffic.histograms(samples, DEFAULT_BUCKETS)


def _values(samples: np.ndarray, other: np.ndarray) -> MetricData:
    settings = MetricSettings(name="errors-per-pod", kind=MetricKind.VALUES)
    return MetricData(settings, samples, other)


@pytest.mark.parametrize(
    "metric",
    [
        pytest.param(_values(np.zeros(60), np.zeros(60)), id="all-zero-values"),
        pytest.param(
            ratio_metric(traffic.fixed_counts(10, 10_000, 10), traffic.fixed_counts(0.5, 500, 10)),
            id="0.1%-errors-5000-canary-requests",
        ),
        pytest.param(
            histogram_metric(
                _latency_histograms(1, median=0.1, sigma=0.6),
                _latency_histograms(2, median=0.1, sigma=0.6),
            ),
            id="healthy-p99-default-buckets",
        ),
        pytest.param(
            ratio_metric(
                traffic.fixed_counts(0, 20_000, 10),
                traffic.fixed_counts(0, 2_000, 10),
                objective=0.999,
            ),
            id="zero-errors-with-objective",
        ),
    ],
)
def test_healthy_canaries_pass(metric: MetricData) -> None:
    verdict = engine.judge([metric], JudgeSettings())
    assert verdict.decision is Decision.PASS, verdict.metrics[0].reason
    assert "inside the PASS boundary" in verdict.metrics[0].reason


def test_five_times_the_errors_still_fail() -> None:
    verdict = engine.judge(
        [ratio_metric(traffic.fixed_counts(10, 10_000, 10), traffic.fixed_counts(2.5, 500, 10))],
        JudgeSettings(),
    )
    assert verdict.decision is Decision.FAIL


def test_a_tail_the_buckets_cannot_resolve_says_so_instead_of_passing() -> None:
    # histogram_quantile puts p99 near 0.3 s (in bucket 0.25-0.5): 1.5x is 0.45 s, and the
    # bound at or below it (0.25 s) lies below the p99.
    found = engine.judge(
        [
            histogram_metric(
                _latency_histograms(3, median=0.1, sigma=0.41),
                _latency_histograms(4, median=0.1, sigma=0.41),
            )
        ],
        JudgeSettings(),
    )
    assert found.decision is Decision.INCONCLUSIVE
    assert "cannot show the canary inside it" in found.metrics[0].reason


def test_explicit_pass_margins_move_the_pass_boundary() -> None:
    baseline, canary = traffic.fixed_counts(20, 10_000, 10), traffic.fixed_counts(3, 1_000, 10)
    loose = engine.judge([ratio_metric(baseline, canary)], JudgeSettings())
    strict = engine.judge(
        [ratio_metric(baseline, canary, pass_tolerance=0.2, pass_absolute_tolerance=0.0)],
        JudgeSettings(),
    )
    assert loose.decision is Decision.PASS  # 1.5x the baseline: inside 2x + 0.05 points
    assert strict.decision is Decision.INCONCLUSIVE  # 1.5x cannot be shown below 1.2x
    assert "promoted only below +20%" in strict.metrics[0].reason
