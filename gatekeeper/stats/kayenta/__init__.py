"""KAYENTA mode: a reproduction of Netflix's NetflixACAJudge (Spinnaker Kayenta).

Pure statistics, in the order the judge runs them:

- :mod:`.r_wilcox`: R's ``wilcox.test(exact = FALSE, correct = TRUE)`` with its
  root-finder confidence interval and estimate (Kayenta's ``kayenta-mannwhitney``).
- :mod:`.statistics`: percentile, summary and effect sizes (mean ratio, Cohen's d, CLES).
- :mod:`.classifier`: the Mann-Whitney and mean-inequality metric classifiers.
- :mod:`.scorer`: the weighted-sum group scorer and the pass/marginal rule.

Kayenta is Apache License 2.0; this is a re-implementation from its documented behaviour
and test suites (``tests/data/kayenta-judge-vectors.json``), not a copy of its code.
"""

from gatekeeper.stats.kayenta.classifier import (
    ClassifierKind,
    EffectSizeMeasure,
    KayentaClassification,
    KayentaLabel,
    KayentaMetricParams,
    classify_mann_whitney,
    classify_mean_inequality,
    classify_metric,
)
from gatekeeper.stats.kayenta.r_wilcox import (
    WilcoxonError,
    WilcoxonIntermediates,
    WilcoxonResult,
    normal_quantile,
    r_zeroin,
    uniroot_wdiff,
    wdiff,
    wilcox_test,
)
from gatekeeper.stats.kayenta.scorer import (
    KayentaGroupScore,
    KayentaScore,
    ScoredMetric,
    did_pass,
    score,
)
from gatekeeper.stats.kayenta.statistics import (
    SummaryStatistics,
    cles,
    cohen_d,
    mean_ratio,
    percentile,
    summary,
)

__all__ = [
    "ClassifierKind",
    "EffectSizeMeasure",
    "KayentaClassification",
    "KayentaGroupScore",
    "KayentaLabel",
    "KayentaMetricParams",
    "KayentaScore",
    "ScoredMetric",
    "SummaryStatistics",
    "WilcoxonError",
    "WilcoxonIntermediates",
    "WilcoxonResult",
    "classify_mann_whitney",
    "classify_mean_inequality",
    "classify_metric",
    "cles",
    "cohen_d",
    "did_pass",
    "mean_ratio",
    "normal_quantile",
    "percentile",
    "r_zeroin",
    "score",
    "summary",
    "uniroot_wdiff",
    "wdiff",
    "wilcox_test",
]
