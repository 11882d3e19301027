"""The labelled corpus of the decision-quality benchmark (fixed before any tuning).

Every rollout is a seeded :class:`gatekeeper.simulate.Scenario`; the generator below and
``CORPUS_SEED`` are the whole definition, so the same commit gives the same traffic. Half
the rollouts are healthy (they should be promoted), half are bad (they should be rolled
back). Each family is simulated at two constant canary weights, 5 % and 25 % (alternating
by index), for ``SIM_SECONDS``: long enough for every rule to walk the step plan
(5 % for 2 min, 25 % for 5 min, 50 % for 10 min, then 100 %) including the extra time some
rules take (Flagger does not advance on a failed check). The weight is held constant so that
every rule sees exactly the same traffic whenever it would have advanced; the plan sets the
analysis windows the rules walk through (see ``benchmarks/README.md``).

Drawn for every rollout (log-uniform): the service's request rate (10 to 200 rps; 0.2 to
5 rps for the low-traffic family), the baseline error rate (0.01 % to 2 %) and the median
latency (20 to 100 ms, log-normal sigma 0.5, so the baseline p99 is 64 to 320 ms).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import cache
from typing import Literal

import numpy as np
from scipy import optimize, stats

from gatekeeper.simulate import Fault, FaultKind, Scenario

#: Fixed before the first run; never changed to suit a judge.
CORPUS_SEED = 20_251_010
INTERVAL_SECONDS = 30.0
#: The step plan in analysis intervals: 5 % for 2 min, 25 % for 5 min, 50 % for 10 min.
PLAN_WEIGHTS = (0.05, 0.25, 0.50)
PLAN_STEPS = (4, 10, 20)
PLAN_INTERVALS = sum(PLAN_STEPS)  #: 34 intervals = 17 minutes, then 100 %
#: Simulated length: the plan plus the four failed checks Flagger may add (22 minutes).
SIM_INTERVALS = 44
SIM_SECONDS = SIM_INTERVALS * INTERVAL_SECONDS
STEP_SECONDS = 15.0  #: simulation resolution; two steps make one analysis interval
ARMS = (0.05, 0.25)
LATENCY_SIGMA = 0.5
TAIL_FACTOR = 8.0  #: slow requests of a tail regression are 8x slower

Label = Literal["good", "bad"]

HEALTHY = (
    "aa",
    "diurnal",
    "noisy-pod",
    "bursts",
    "warmup-dedicated",
    "warmup-shared",
    "low-traffic",
)
BAD = (
    "errors-x1.5",
    "errors-x3",
    "errors-x10",
    "sparse",
    "p99+20%",
    "p99+100%",
    "latency+30%",
    "leak",
    "silent",
)
PER_HEALTHY = 108  #: 7 families x 108 = 756 healthy rollouts
PER_BAD = 84  #: 9 families x 84 = 756 bad rollouts

#: Families of error regressions (bad requests are canary errors) and of latency
#: regressions (bad requests are canary requests slower than the baseline's p99).
ERROR_FAMILIES = ("errors-x1.5", "errors-x3", "errors-x10", "sparse", "leak")
LATENCY_FAMILIES = ("p99+20%", "p99+100%", "latency+30%")

DESCRIPTIONS = {
    "aa": "A/A: the canary is the baseline's version",
    "diurnal": "A/A on a daily traffic curve (amplitude 60 %, any hour of the day)",
    "noisy-pod": "A/A, per-pod error rates log-normal with sigma 0.5 (0.3 elsewhere)",
    "bursts": "A/A with shared error bursts (6 per hour, 60 s, x10) hitting both sides",
    "warmup-dedicated": "new pods warm up for 2 min (errors x3, latency x2 at start); "
    "dedicated baseline of fresh pods warming up alike",
    "warmup-shared": "new canary pods warm up as above; baseline = the warm stable pods",
    "low-traffic": "A/A on a service of 0.2 to 5 rps",
    "errors-x1.5": "canary error rate x1.5",
    "errors-x3": "canary error rate x3",
    "errors-x10": "canary error rate x10",
    "sparse": "baseline without errors; canary 10 errors per 10,000 requests",
    "p99+20%": f"0.70 % of canary requests {TAIL_FACTOR:g}x slower: p99 +20 %, p50 +0.4 %",
    "p99+100%": f"1.47 % of canary requests {TAIL_FACTOR:g}x slower: p99 +100 %, p50 +0.9 %",
    "latency+30%": "every canary request 30 % slower",
    "leak": "canary error rate growing linearly from x1 to x5 over the 22 minutes",
    "silent": "the canary receives no traffic",
}


@dataclass(frozen=True, slots=True)
class Case:
    """One labelled rollout of the corpus."""

    name: str
    family: str
    label: Label
    weight: float
    scenario: Scenario

    @property
    def baseline_error_rate(self) -> float:
        """The baseline's true error rate (the scenario's)."""
        return self.scenario.error_rate

    @property
    def low_traffic(self) -> bool:
        """Whether the service runs at 0.2 to 5 rps."""
        return self.family == "low-traffic"


def _tail_share(p99_factor: float, factor: float = TAIL_FACTOR) -> float:
    """Share of requests ``factor`` x slower that moves a log-normal's p99 by ``p99_factor``."""
    z99 = float(stats.norm.ppf(0.99))
    at = z99 + math.log(p99_factor) / LATENCY_SIGMA
    fast = float(stats.norm.cdf(at))
    slow = float(stats.norm.cdf(at - math.log(factor) / LATENCY_SIGMA))
    return (fast - 0.99) / (fast - slow)


@cache
def tail_shares() -> tuple[float, float]:
    """Slow shares of the p99 +20 % and +100 % families (checked against the p50 shift)."""
    shares = (_tail_share(1.2), _tail_share(2.0))
    for share in shares:  # p50 moves by less than 1 %
        root = optimize.brentq(
            lambda z, s=share: (
                (1 - s) * stats.norm.cdf(z)
                + s * stats.norm.cdf(z - math.log(TAIL_FACTOR) / LATENCY_SIGMA)
                - 0.5
            ),
            -1.0,
            1.0,
        )
        assert math.exp(root * LATENCY_SIGMA) < 1.01
    return shares


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(math.exp(rng.uniform(math.log(low), math.log(high))))


def _scenario(family: str, weight: float, rng: np.random.Generator) -> Scenario:
    low_traffic = family == "low-traffic"
    rps = _log_uniform(rng, 0.2, 5.0) if low_traffic else _log_uniform(rng, 10.0, 200.0)
    error_rate = _log_uniform(rng, 1e-4, 2e-2)
    latency = _log_uniform(rng, 0.02, 0.1)
    start_hour = float(rng.uniform(0.0, 24.0))
    seed = int(rng.integers(0, 2**31 - 1))
    base = Scenario(
        seconds=SIM_SECONDS,
        step_seconds=STEP_SECONDS,
        rps=rps,
        canary_weight=weight,
        error_rate=error_rate,
        latency_median=latency,
        latency_sigma=LATENCY_SIGMA,
        pods_baseline=5,
        pods_canary=1,
        pod_sigma=0.3,
        seed=seed,
        start_hour=start_hour,
    )
    p99_20, p99_100 = tail_shares()
    changes: dict[str, Scenario] = {
        "aa": base,
        "low-traffic": base,
        "diurnal": replace(base, diurnal_amplitude=0.6),
        "noisy-pod": replace(base, pod_sigma=0.5),
        "bursts": replace(base, bursts_per_hour=6.0, burst_seconds=60.0, burst_factor=10.0),
        "warmup-dedicated": replace(base, warmup_seconds=120.0, dedicated_baseline=True),
        "warmup-shared": replace(base, warmup_seconds=120.0),
        "errors-x1.5": replace(base, fault=Fault(FaultKind.ERRORS, 1.5)),
        "errors-x3": replace(base, fault=Fault(FaultKind.ERRORS, 3.0)),
        "errors-x10": replace(base, fault=Fault(FaultKind.ERRORS, 10.0)),
        "sparse": replace(base, error_rate=0.0, fault=Fault(FaultKind.SPARSE, 10.0)),
        "p99+20%": replace(base, fault=Fault(FaultKind.TAIL, TAIL_FACTOR, share=p99_20)),
        "p99+100%": replace(base, fault=Fault(FaultKind.TAIL, TAIL_FACTOR, share=p99_100)),
        "latency+30%": replace(base, fault=Fault(FaultKind.LATENCY, 1.3)),
        "leak": replace(base, fault=Fault(FaultKind.LEAK, 5.0)),
        "silent": replace(base, fault=Fault(FaultKind.SILENT)),
    }
    return changes[family]


def build() -> list[Case]:
    """The whole corpus, healthy families first, in a fixed order."""
    cases: list[Case] = []
    families = [(f, "good", PER_HEALTHY) for f in HEALTHY] + [(f, "bad", PER_BAD) for f in BAD]
    for index, (family, label, count) in enumerate(families):
        for k in range(count):
            weight = ARMS[k % len(ARMS)]
            rng = np.random.default_rng([CORPUS_SEED, index, k])
            cases.append(
                Case(
                    name=f"{family}/w{round(weight * 100)}/{k:03d}",
                    family=family,
                    label=label,  # type: ignore[arg-type]
                    weight=weight,
                    scenario=_scenario(family, weight, rng),
                )
            )
    return cases
