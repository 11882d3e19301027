"""Score of a KAYENTA-mode run: NetflixACAJudge's weighted-sum scorer and pass rule.

Kayenta sources: ``kayenta-judge/.../judge/scorers/WeightedSumScorer.scala`` (group and
summary scores) and ``GenerateCanaryAnalysisResultTask.java`` of the standalone canary
analysis (``getAggregatedJudgment``: the pass/marginal rule over the final score).

Rules, in order:

1. Any metric flagged ``critical`` whose label is not Pass fails the run: score 0.
2. If at least half of the metrics are Nodata (Kayenta's ``NODATA_THRESHOLD`` of 50 %), the
   run fails: score 0.
3. Otherwise each group scores ``100 * Pass / (Pass + High + Low + NodataFailMetric)``;
   Nodata (and Error) metrics are left out. A group with none of those four counts as
   100 in the sum (it "has no data" and must not drag the score) and reports 0.
   Groups named in ``group_weights`` get that weight (in percent); the others share
   ``100 - sum(group_weights)`` equally. The score is ``sum(group score * weight / 100)``,
   rounded half-up to two decimals.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from gatekeeper.stats.kayenta.classifier import KayentaClassification, KayentaLabel

#: Share of Nodata metrics (percent) at or above which the run fails.
NODATA_THRESHOLD_PERCENT = 50.0


@dataclass(frozen=True, slots=True)
class ScoredMetric:
    """What the scorer needs of one metric: its label, groups and critical flag."""

    label: KayentaLabel
    groups: tuple[str, ...]
    critical: bool = False
    name: str = ""
    reason: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.label, KayentaLabel):
            allowed = ", ".join(label.name for label in KayentaLabel)
            raise ValueError(f"label must be one of {allowed}, got {self.label!r}")
        if isinstance(self.groups, str) or not all(isinstance(g, str) for g in self.groups):
            raise ValueError(f"groups must be a tuple of group names, got {self.groups!r}")

    @classmethod
    def of(
        cls, classification: KayentaClassification, *, groups: Sequence[str], name: str = ""
    ) -> ScoredMetric:
        """The scorer's view of a classification, placed in ``groups``."""
        return cls(
            label=classification.label,
            groups=tuple(groups),
            critical=classification.critical,
            name=name,
            reason=classification.reason,
        )


@dataclass(frozen=True, slots=True)
class KayentaGroupScore:
    """Score of one group (0..100), its weight in percent, and whether it had data."""

    name: str
    score: float
    weight: float
    no_data: bool
    metrics: int


@dataclass(frozen=True, slots=True)
class KayentaScore:
    """The run's score (0..100) with its groups, and why it is 0 when a rule forced it."""

    score: float
    groups: tuple[KayentaGroupScore, ...]
    metrics: int
    critical_failure: bool
    too_many_nodata: bool
    reason: str


_COUNTED = (
    KayentaLabel.PASS,
    KayentaLabel.HIGH,
    KayentaLabel.LOW,
    KayentaLabel.NODATA_FAIL_METRIC,
)


def _round_half_up(value: float, places: int = 2) -> float:
    if not math.isfinite(value):
        return value
    quantum = Decimal(1).scaleb(-places)
    return float(Decimal(repr(value)).quantize(quantum, rounding=ROUND_HALF_UP))


def _check_weights(group_weights: Mapping[str, float]) -> None:
    for group, weight in group_weights.items():
        if not isinstance(group, str):
            raise ValueError(f"group_weights keys must be group names, got {group!r}")
        if not (math.isfinite(weight) and weight >= 0):
            raise ValueError(
                f"group_weights[{group!r}] must be a finite number >= 0, got {weight!r}"
            )


def score(
    *, classifications: Sequence[ScoredMetric], group_weights: Mapping[str, float]
) -> KayentaScore:
    """NetflixACAJudge's weighted-sum score (``WeightedSumScorer.scala``).

    Parameters
    ----------
    classifications : sequence of ScoredMetric
        Every metric of the run with its label, groups and critical flag (the flag
        :func:`gatekeeper.stats.kayenta.classifier.classify_metric` set).
    group_weights : mapping of str to float
        Group weights in percent (Kayenta's ``classifier.groupWeights``); groups not named
        share what is left of 100 equally.

    Returns
    -------
    KayentaScore
        See the module docstring for the rules; groups are listed in order of first
        appearance.
    """
    if isinstance(classifications, ScoredMetric) or not all(
        isinstance(metric, ScoredMetric) for metric in classifications
    ):
        raise ValueError("classifications must be a sequence of ScoredMetric")
    _check_weights(group_weights)

    members: dict[str, list[KayentaLabel]] = {}
    for metric in classifications:
        for group in metric.groups:
            members.setdefault(group, []).append(metric.label)

    unweighted = [group for group in members if group not in group_weights]
    shared_weight = (100.0 - sum(group_weights.values())) / len(unweighted) if unweighted else 0.0
    groups: list[KayentaGroupScore] = []
    total = 0.0
    for group, labels in members.items():
        passed = sum(label is KayentaLabel.PASS for label in labels)
        counted = sum(label in _COUNTED for label in labels)
        no_data = counted == 0
        group_score = 0.0 if no_data else passed / counted * 100
        weight = group_weights.get(group, shared_weight)
        total += (100.0 if no_data else group_score) * (weight / 100)
        groups.append(
            KayentaGroupScore(
                name=group, score=group_score, weight=weight, no_data=no_data, metrics=len(labels)
            )
        )

    critical = [m for m in classifications if m.critical and m.label is not KayentaLabel.PASS]
    nodata = sum(m.label is KayentaLabel.NODATA for m in classifications)
    too_many_nodata = bool(classifications) and (
        nodata / len(classifications) * 100 >= NODATA_THRESHOLD_PERCENT
    )
    if critical:
        first = critical[0]
        what = first.reason or f"{first.name or 'a critical metric'} is {first.label.value}"
        return KayentaScore(
            score=0.0,
            groups=tuple(groups),
            metrics=len(classifications),
            critical_failure=True,
            too_many_nodata=too_many_nodata,
            reason=f"Canary failed: critical metric: {what}",
        )
    if too_many_nodata:
        return KayentaScore(
            score=0.0,
            groups=tuple(groups),
            metrics=len(classifications),
            critical_failure=False,
            too_many_nodata=True,
            reason=(
                f"Canary failed: {nodata} of {len(classifications)} metrics have no data "
                f"(at least {NODATA_THRESHOLD_PERCENT:g} %)."
            ),
        )
    return KayentaScore(
        score=_round_half_up(total),
        groups=tuple(groups),
        metrics=len(classifications),
        critical_failure=False,
        too_many_nodata=False,
        reason="",
    )


def did_pass(
    *, score: float, pass_threshold: float | None, marginal_threshold: float | None
) -> bool:
    """Kayenta's aggregate judgement over the final score (``getAggregatedJudgment``).

    Parameters
    ----------
    score : float
        The final score, 0..100.
    pass_threshold, marginal_threshold : float or None
        Thresholds; None when not configured.

    Returns
    -------
    bool
        True without thresholds; False when the score is not above the marginal threshold;
        True when no pass threshold is set; otherwise whether the score reaches the pass
        threshold.
    """
    for name, value in (
        ("score", score),
        ("pass_threshold", pass_threshold),
        ("marginal_threshold", marginal_threshold),
    ):
        if value is not None and not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number (or None for a threshold)")
    if pass_threshold is None and marginal_threshold is None:
        return True
    if marginal_threshold is not None and score <= marginal_threshold:
        return False
    if pass_threshold is None:
        return True
    return score >= pass_threshold
