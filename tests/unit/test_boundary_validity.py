"""Anytime validity of both boundaries of every path, counted not timed (issue: two margins).

Each case replays 2,000 seeded rollouts of 34 looks with the canary exactly on one boundary,
the worst case for that boundary's errors, and counts the rollouts that cross it at any look:

- at the FAIL boundary, rollouts that FAIL: at most alpha = 1 %, so at most the 99 %
  binomial bound ``qbinom(0.99, 2000, 0.01) = 31``;
- at the PASS boundary, rollouts that PASS: at most beta = 20 %, so at most
  ``qbinom(0.99, 2000, 0.2) = 442``.

Each look is the judge's own tests (``classify.tested``) on the cumulative data with its
``Look``: a FAIL is ``p_fail <= alpha`` (one metric, so Holm's level is alpha) and a PASS is
``passes(beta)``, the same calls ``classify`` decides every outcome by.
"""

from __future__ import annotations

import functools
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
import pytest
from scipy import stats

from gatekeeper.stats import classify
from gatekeeper.stats.model import (
    DEFAULT_ALPHA,
    DEFAULT_BETA,
    HistogramSeries,
    LookPosition,
    MetricData,
    MetricSettings,
    RatioSeries,
    Series,
)
from gatekeeper.stats.results import MetricKind
from tests import traffic

ROLLOUTS, LOOKS = 2000, 34
FAIL_BOUND = int(stats.binom.ppf(0.99, ROLLOUTS, DEFAULT_ALPHA))
PASS_BOUND = int(stats.binom.ppf(0.99, ROLLOUTS, DEFAULT_BETA))
BOUNDS = np.concatenate((np.geomspace(0.01, 2.0, 60), [np.inf]))

Rollout = Callable[[np.random.Generator], tuple[Series, Series]]


def test_the_bounds_are_the_binomial_quantiles() -> None:
    assert (FAIL_BOUND, PASS_BOUND) == (31, 442)


def _ratio_rollout(
    rng: np.random.Generator, *, baseline_rate: float, canary_rate: float, requests: float
) -> tuple[Series, Series]:
    """5 baseline pods against 3 canary pods, ``requests`` per pod and interval."""
    b = traffic.pod_counts(
        rng, pods=5, intervals=LOOKS, requests_per_pod=requests, error_rate=baseline_rate
    )
    c = traffic.pod_counts(
        rng, pods=3, intervals=LOOKS, requests_per_pod=requests, error_rate=canary_rate
    )
    return b, c


def _tail_rollout(rng: np.random.Generator, *, stretch: float) -> tuple[Series, Series]:
    """The canary's latencies are the baseline's law stretched by ``stretch``."""
    base = [rng.lognormal(np.log(0.05), 0.5, 400) for _ in range(LOOKS)]
    can = [stretch * rng.lognormal(np.log(0.05), 0.5, 100) for _ in range(LOOKS)]
    return traffic.histograms(base, BOUNDS), traffic.histograms(can, BOUNDS)


def _values_rollout(rng: np.random.Generator, *, shift: float) -> tuple[Series, Series]:
    """Five samples a side per look; the canary shifted by ``shift`` (baseline median 100)."""
    return rng.normal(100.0, 10.0, 5 * LOOKS), rng.normal(100.0 + shift, 10.0, 5 * LOOKS)


def _ratio(baseline_rate: float, canary_rate: float, requests: float) -> Rollout:
    return functools.partial(
        _ratio_rollout, baseline_rate=baseline_rate, canary_rate=canary_rate, requests=requests
    )


def _tail(stretch: float) -> Rollout:
    return functools.partial(_tail_rollout, stretch=stretch)


def _values(shift: float) -> Rollout:
    return functools.partial(_values_rollout, shift=shift)


def _upto(series: Series, look: int) -> Series:
    if isinstance(series, RatioSeries):
        return RatioSeries(series.bad[:look], series.total[:look])
    if isinstance(series, HistogramSeries):
        return HistogramSeries(series.upper_bounds, series.counts[:look])
    return series[: 5 * look]


def _looks(settings: MetricSettings, rollout: tuple[Series, Series]) -> Iterator[classify.Tested]:
    looks_of = classify.Looks
    for k in range(1, LOOKS + 1):
        data = MetricData(settings, _upto(rollout[0], k), _upto(rollout[1], k))
        position = LookPosition(index=k, planned=LOOKS)
        yield classify.tested(data, looks=looks_of(position=position, alpha=DEFAULT_ALPHA))


@dataclass(frozen=True)
class Case:
    """One boundary of one path: the metric, the canary on that boundary, and which side."""

    name: str
    settings: MetricSettings
    rollout: Rollout
    side: str  # "fail": count FAILs; "pass": count PASSes

    def crossed(self, seed: int) -> bool:
        rollout = self.rollout(np.random.default_rng([16, seed, zlib.crc32(self.name.encode())]))
        for tested in _looks(self.settings, rollout):
            if self.side == "fail" and tested.p_fail <= DEFAULT_ALPHA:
                return True
            if self.side == "pass" and tested.passes(DEFAULT_BETA):
                return True
        return False


def _metric(kind: MetricKind, **settings: float) -> MetricSettings:
    return MetricSettings(name="m", kind=kind, **settings)  # type: ignore[arg-type]


RATIO, HISTOGRAM, VALUES = MetricKind.RATIO, MetricKind.HISTOGRAM, MetricKind.VALUES
CASES = [
    # RATIO relative: FAIL boundary 1.2x, PASS boundary 2x (no absolute part).
    Case("ratio-fail", _metric(RATIO), _ratio(0.01, 0.012, 60), "fail"),
    Case("ratio-pass", _metric(RATIO, pass_absolute_tolerance=0.0), _ratio(0.01, 0.02, 60), "pass"),
    # RATIO with absolute margins on a 0.1 % baseline: FAIL at 1.2 b + 0.001, PASS at the
    # default 2 b + 0.0005.
    Case(
        "ratio-absolute-fail",
        _metric(RATIO, absolute_tolerance=0.001),
        _ratio(0.001, 0.0022, 200),
        "fail",
    ),
    Case("ratio-absolute-pass", _metric(RATIO), _ratio(0.001, 0.0025, 200), "pass"),
    # HISTOGRAM p99: FAIL boundary 1.2x, PASS boundary 1.5x the baseline's quantile.
    Case("tail-fail", _metric(HISTOGRAM), _tail(1.2), "fail"),
    Case("tail-pass", _metric(HISTOGRAM), _tail(1.5), "pass"),
    # VALUES: FAIL boundary a shift of 0.2 of the baseline's level (100), PASS 0.5.
    Case("values-fail", _metric(VALUES), _values(20.0), "fail"),
    Case("values-pass", _metric(VALUES), _values(50.0), "pass"),
]


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_no_boundary_is_crossed_more_often_than_its_level(case: Case) -> None:
    with ProcessPoolExecutor(max_workers=2) as pool:  # the rollouts are independent
        crossed = sum(pool.map(case.crossed, range(ROLLOUTS), chunksize=100))
    bound = FAIL_BOUND if case.side == "fail" else PASS_BOUND
    assert crossed <= bound, f"{case.name}: {crossed} of {ROLLOUTS} rollouts crossed"
    print(f"{case.name}: {crossed} of {ROLLOUTS} (bound {bound})")


def _fixed_sample_crossed(case: Case, seed: int) -> bool:
    """One judgement without a Look of the whole rollout's data: the fixed-sample tests."""
    baseline, canary = case.rollout(
        np.random.default_rng([17, seed, zlib.crc32(case.name.encode())])
    )
    tested = classify.tested(MetricData(case.settings, baseline, canary))
    if case.side == "fail":
        return tested.p_fail <= DEFAULT_ALPHA
    return tested.passes(DEFAULT_BETA)


#: A known gap, counted: VALUES' relative margins are a share of the baseline's *sample*
#: median, taken as if it were known. Its noise moves the boundary with the baseline's own
#: noise, so one fixed-sample judgement at the boundary FAILs 35 of 2,000 (bound 31) and
#: PASSes 527 of 2,000 (bound 442). Over the looks the spending of alpha and beta absorbs it
#: (13 and 210 above). Strict: the mark fails the run once a fix brings them within bound.
_MEDIAN_AS_KNOWN = pytest.mark.xfail(
    strict=True, reason="VALUES margin from the sample median, treated as known"
)
FIXED_CASES = [
    pytest.param(c, id=c.name, marks=_MEDIAN_AS_KNOWN if c.name.startswith("values") else ())
    for c in CASES
]


@pytest.mark.parametrize("case", FIXED_CASES)
def test_the_fixed_sample_tests_keep_their_levels_too(case: Case) -> None:
    """Without a Look each test is judged once; its crossings are counted the same way."""
    crossed = sum(_fixed_sample_crossed(case, seed) for seed in range(ROLLOUTS))
    bound = FAIL_BOUND if case.side == "fail" else PASS_BOUND
    assert crossed <= bound, f"{case.name}: {crossed} of {ROLLOUTS} judgements crossed"
    print(f"{case.name} (fixed sample): {crossed} of {ROLLOUTS} (bound {bound})")


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_each_case_can_cross_its_boundary_when_the_canary_is_beyond_it(case: Case) -> None:
    """The counts above are not vacuous: well beyond each boundary the same tests cross it."""
    far = {
        "ratio-fail": _ratio(0.01, 0.03, 60),
        "ratio-pass": _ratio(0.01, 0.01, 60),
        "ratio-absolute-fail": _ratio(0.001, 0.006, 200),
        "ratio-absolute-pass": _ratio(0.001, 0.001, 600),
        "tail-fail": _tail(2.0),
        "tail-pass": _tail(1.0),
        "values-fail": _values(40.0),
        "values-pass": _values(0.0),
    }[case.name]
    shifted = Case(case.name, case.settings, far, case.side)
    assert sum(shifted.crossed(seed) for seed in range(20)) >= 18
