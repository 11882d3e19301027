"""The default judgement with warm-up left out: split, classify the rest, watch the young.

Every metric's sides are parted by :func:`gatekeeper.stats.warmup.split`; the warm data is
classified as before (Holm across the metrics, at the family's share of alpha), the canary's
warm-up data is held to the catastrophe check (:mod:`gatekeeper.stats.catastrophe`), and
each metric's reason (the summary, when all of a side is warm-up) says what was left out.
A catastrophe makes its metric HIGH and the verdict FAIL.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from gatekeeper.stats import catastrophe, classify, score, warmup
from gatekeeper.stats.model import JudgeSettings, MetricData, Series
from gatekeeper.stats.results import Decision, Direction, Outcome, Verdict


@dataclass(frozen=True, slots=True, eq=False)
class _Parted:
    """One metric: its warm data (with a note of what was left out) and both splits."""

    warm: MetricData
    baseline: warmup.Split
    canary: warmup.Split

    @property
    def left_out(self) -> bool:
        return self.baseline.left_out > 0 or self.canary.left_out > 0


def _part(data: MetricData, settings: JudgeSettings) -> _Parted:
    def side(series: Series) -> warmup.Split:
        return warmup.split(
            series,
            starts=data.pod_starts,
            interval_seconds=settings.interval_seconds,
            warmup_seconds=settings.warmup_seconds,
        )

    if data.error is not None:
        base = warmup.Split(data.baseline, None, 0.0, 0.0, data.baseline)
        return _Parted(data, base, warmup.Split(data.canary, None, 0.0, 0.0, data.canary))
    base, can = side(data.baseline), side(data.canary)
    notes = data.notes
    if base.left_out or can.left_out:
        notes += (_note(base, can, settings.warmup_seconds),)
    warm = dataclasses.replace(data, baseline=base.warm, canary=can.warm, notes=notes)
    return _Parted(warm, base, can)


def _note(base: warmup.Split, can: warmup.Split, seconds: float) -> str:
    return (
        f"warm-up (pods younger than {seconds:g}s) left out: {can.left_out:,.0f} of "
        f"{can.total:,.0f} canary and {base.left_out:,.0f} of {base.total:,.0f} baseline "
        "requests"
    )


def judge(metrics: Sequence[MetricData], settings: JudgeSettings) -> Verdict:
    """Judge ``metrics`` in the default mode with the warm-up of ``settings`` left out.

    With nothing left out this is the plain judgement at the whole alpha; otherwise the
    Holm family gets ``alpha x (1 - CATASTROPHE_SHARE)`` and the catastrophe check the
    rest (:func:`gatekeeper.stats.catastrophe.alpha_split`).
    """
    parted = [_part(m, settings) for m in metrics]
    warm = [p.warm for p in parted]
    young = any(p.left_out for p in parted)
    family, share = catastrophe.alpha_split(settings.alpha) if young else (settings.alpha, 0.0)
    looks = classify.Looks(position=settings.look, alpha=family)
    classified = classify.classify(warm, alpha=family, beta=settings.beta, looks=looks)
    checked = [p for p in parted if _watched(p)]
    level = catastrophe.look_level(share, look=settings.look, checks=len(checked))
    found: list[tuple[str, str]] = []
    for index, item in enumerate(parted):
        result = _watch(item, level) if item in checked else None
        if result is None or not result.found:
            continue
        classified[index] = _catastrophic(classified[index], result)
        if not item.warm.settings.dry_run:
            found.append((item.warm.settings.name, result.detail))
    verdict = score.build_verdict(classified, warm, settings, alpha=settings.alpha)
    return _summarised(verdict, parted, found)


def _watched(item: _Parted) -> bool:
    settings = item.warm.settings
    return (
        item.canary.young is not None
        and item.warm.error is None
        and settings.direction is not Direction.DECREASE
    )


def _watch(item: _Parted, level: float) -> catastrophe.Catastrophe | None:
    assert item.canary.young is not None
    return catastrophe.check(
        baseline=item.baseline.whole,
        canary=item.canary.young,
        quantile=item.warm.settings.quantile,
        level=level,
    )


def _catastrophic(
    found: classify.Classified, result: catastrophe.Catastrophe
) -> classify.Classified:
    comparison = dataclasses.replace(
        found.comparison,
        p_fail=result.p_value,
        harm=Outcome.HIGH,
        detail=f"catastrophe in the canary's warm-up: {result.detail}",
        missing=None,
    )
    return classify.Classified(Outcome.HIGH, comparison, result.level)


def _summarised(
    verdict: Verdict, parted: Sequence[_Parted], found: list[tuple[str, str]]
) -> Verdict:
    if found:
        name, detail = found[0]
        return dataclasses.replace(
            verdict,
            decision=Decision.FAIL,
            summary=f"FAIL: catastrophe in the canary's warm-up, metric {name}: {detail}",
            load_hint=None,
        )
    sides = [
        side for side in ("baseline", "canary") if any(getattr(p, side).all_young for p in parted)
    ]
    if not sides:
        return verdict
    text = " and ".join(f"the {s}'s" for s in sides)
    return dataclasses.replace(
        verdict, summary=f"{verdict.summary}; all of {text} data so far is warm-up (left out)"
    )
