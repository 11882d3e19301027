"""The one place where data meets statistics: preprocess -> classify -> score.

``judge`` takes data the caller supplies; the Analyze path (fetch from a metric source,
then judge) builds on it.
"""

from __future__ import annotations

from collections.abc import Sequence

from gatekeeper.stats import classify, score, sequential
from gatekeeper.stats.kayenta import judge as kayenta_judge
from gatekeeper.stats.model import JudgeMode, JudgeSettings, MetricData
from gatekeeper.stats.results import Verdict


def judge(metrics: Sequence[MetricData], settings: JudgeSettings) -> Verdict:
    """Judge the canary against the baseline on every metric and decide.

    Parameters
    ----------
    metrics : sequence of MetricData
        Validated metrics (names unique, series consistent).
    settings : JudgeSettings
        alpha, beta, score thresholds, interval and look.

    Returns
    -------
    Verdict
        The decision with every metric's outcome, effect, summaries and reason.
    """
    if settings.mode is JudgeMode.KAYENTA:
        return kayenta_judge.judge(metrics, settings)
    alpha = settings.alpha
    if settings.look is not None:
        alpha = sequential.look_alpha(
            alpha=alpha, index=settings.look.index, planned=settings.look.planned
        )
    classified = classify.classify(metrics, alpha=alpha, beta=settings.beta)
    return score.build_verdict(classified, metrics, settings, alpha=alpha)
