"""Conformance of KAYENTA mode with Kayenta's own judge test suites.

Every vector of ``tests/data/kayenta-judge-vectors.json`` (see ``tests/data/README.md``) is
one test case, named after the vector. Classifications are compared exactly; numbers within
the tolerance the vector states, else the tolerance of the upstream suite, else half a unit
in the last decimal the vector prints. Vectors whose two inputs are each constant are
compared on their classification only: Kayenta adds Gaussian noise to such inputs before the
rank test, so no number of theirs is reproducible (see the vectors' ``about``).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gatekeeper.stats.kayenta import (
    ClassifierKind,
    EffectSizeMeasure,
    KayentaLabel,
    KayentaMetricParams,
    ScoredMetric,
    classify_metric,
    cles,
    cohen_d,
    did_pass,
    mean_ratio,
    normal_quantile,
    percentile,
    score,
    summary,
    uniroot_wdiff,
    wdiff,
    wilcox_test,
)
from gatekeeper.stats.model import NanStrategy
from gatekeeper.stats.preprocess import iqr_outliers, ksigma_outliers
from gatekeeper.stats.results import Direction

VECTORS_PATH = Path(__file__).resolve().parents[1] / "data" / "kayenta-judge-vectors.json"
VECTORS: dict[str, Any] = json.loads(VECTORS_PATH.read_text(encoding="utf-8"))
SECTIONS = (
    "mann_whitney_classifier",
    "mann_whitney_ci",
    "detectors",
    "statistics",
    "scorer",
    "aggregated_judgement",
)
#: Tolerance of kayenta-mannwhitney's MannWhitneySuite.scala (``E``).
MANN_WHITNEY_SUITE_TOL = 1e-6


def _judgement_id(vector: dict[str, Any]) -> str:
    return (
        f"aggregated judgement: score {vector['finalScore']}, marginal {vector['marginal']}, "
        f"pass {vector['passThr']}"
    )


def _cases(section: str) -> list[Any]:
    vectors = VECTORS[section]
    if section == "aggregated_judgement":
        return [pytest.param(v, id=_judgement_id(v)) for v in vectors]
    return [pytest.param(v, id=v["name"]) for v in vectors]


def _printed_tolerance(expected: float) -> float:
    """Half a unit in the last decimal of ``expected`` as the vector prints it."""
    text = repr(float(expected))
    if "e" in text or "E" in text:
        return abs(expected) * 1e-12
    decimals = len(text.split(".")[1].rstrip("0")) if "." in text else 0
    return 0.5 * 10.0**-decimals


def _assert_close(actual: float, expected: Any, tol: float | None = None) -> None:
    if isinstance(expected, str):
        if expected == "NaN":
            assert math.isnan(actual), f"expected NaN, got {actual!r}"
            return
        match = re.fullmatch(r"\s*(\S+)\s*\+-\s*(\S+)\s*", expected)
        assert match, f"unreadable expected value {expected!r}"
        expected, tol = float(match.group(1)), float(match.group(2))
    limit = _printed_tolerance(expected) if tol is None else tol
    assert abs(actual - expected) <= limit, f"{actual!r} != {expected!r} +- {limit!r}"


def test_every_vector_is_a_case() -> None:
    """No section and no vector is left out of the parametrisations below."""
    assert set(VECTORS) == {"about", *SECTIONS}
    assert "a69573be9d8fededacf80817e4151a2c8df41276" in VECTORS["about"]
    for section in SECTIONS:
        ids = [case.id for case in _cases(section)]
        assert len(ids) == len(VECTORS[section]) > 0
        assert len(set(ids)) == len(ids), f"duplicate vector names in {section}"


# --- mann_whitney_classifier ---------------------------------------------------------

_DIRECTIONS = {"increase": Direction.INCREASE, "decrease": Direction.DECREASE}
_DIRECTIONS["either"] = Direction.EITHER
_MEASURES = {"meanRatio": EffectSizeMeasure.MEAN_RATIO, "cles": EffectSizeMeasure.CLES}
_NAN_STRATEGIES = {"remove": NanStrategy.REMOVE, "replace": NanStrategy.REPLACE}


def _params(vector: dict[str, Any]) -> KayentaMetricParams:
    raw = vector["params"]
    if vector.get("classifier") == "MeanInequality":
        return KayentaMetricParams(
            name=vector["name"],
            direction=_DIRECTIONS[raw["direction"]],
            classifier=ClassifierKind.MEAN_INEQUALITY,
        )
    return KayentaMetricParams(
        name=vector["name"],
        direction=_DIRECTIONS[raw["direction"]],
        tolerance=raw["tolerance"],
        confidence=raw["confLevel"],
        effect_size_measure=_MEASURES[raw["effectSizeMeasure"]],
        allowed_decrease=raw["effectSizeThresholds"][0],
        allowed_increase=raw["effectSizeThresholds"][1],
        critical_decrease=raw["criticalThresholds"][0],
        critical_increase=raw["criticalThresholds"][1],
        critical=raw["isCriticalMetric"],
        nan_strategy=_NAN_STRATEGIES[raw["nanStrategy"]],
    )


def _constant_inputs(vector: dict[str, Any]) -> bool:
    """Both inputs constant but different: upstream ran the test on noised data."""
    canary, baseline = set(vector["experiment"]), set(vector["control"])
    return len(canary) == 1 and len(baseline) == 1 and canary != baseline


@pytest.mark.parametrize("vector", _cases("mann_whitney_classifier"))
def test_mann_whitney_classifier(vector: dict[str, Any]) -> None:
    expected = vector["expected"]
    result = classify_metric(
        baseline=vector["control"], canary=vector["experiment"], params=_params(vector)
    )
    asserted = 0
    if expected["classification"] is not None:
        assert result.label is KayentaLabel(expected["classification"])
        asserted += 1
    else:
        # Upstream asserts only the reason here. Both sides empty with NaN strategy
        # "remove" on a critical metric is also the path of the vector "Missing Experiment
        # Data: Critical Metric" (Nodata, critical), which is checked as well.
        assert vector["params"]["isCriticalMetric"]
        assert result.label is KayentaLabel.NODATA
        assert result.critical
    if expected.get("reason_non_empty"):
        assert result.reason.strip()
        asserted += 1
    if "critical" in expected:
        assert result.critical is expected["critical"]
        asserted += 1
    if "deviation" in expected:
        assert not _constant_inputs(vector), "no number is comparable for noised inputs"
        _assert_close(result.deviation, expected["deviation"])
        asserted += 1
    assert asserted > 0, "the vector must be asserted on something"
    # Our own invariants on top of Kayenta's: the reason is always a sentence and the
    # classification's outcome matches its label.
    assert result.reason.strip()
    assert result.outcome is result.label.outcome


# --- mann_whitney_ci -----------------------------------------------------------------

_WDIFF_KEY = re.compile(r"wilcoxonDiff\(mu=([^,]+),q=([^)]+)\)")
_QNORM_KEY = re.compile(r"qnorm\(([^)]+)\)")


@pytest.mark.parametrize("vector", _cases("mann_whitney_ci"))
def test_mann_whitney_ci(vector: dict[str, Any]) -> None:
    expected = dict(vector["expected"])
    name = vector["name"]
    if "x" in vector:  # wdiff at given shifts; x is the experiment (canary)
        tol = expected.pop("tol")
        assert expected
        for key, value in expected.items():
            match = _WDIFF_KEY.fullmatch(key)
            assert match, key
            actual = wdiff(
                canary=vector["x"],
                baseline=vector["y"],
                d=float(match.group(1)),
                zq=float(match.group(2)),
            )
            _assert_close(actual, value, tol)
        return
    if "x_experiment" not in vector:  # the normal quantile
        assert expected
        for key, value in expected.items():
            match = _QNORM_KEY.fullmatch(key)
            assert match, key
            _assert_close(normal_quantile(float(match.group(1))), value, MANN_WHITNEY_SUITE_TOL)
        return

    result = wilcox_test(
        canary=vector["x_experiment"],
        baseline=vector["y_control"],
        confidence=vector["confidenceLevel"],
    )
    if name == "Mann-Whitney Intermediate Values / Variables":
        _check_intermediates(vector, result)
        return
    tol_ci = expected.get("tol_ci", expected.get("tol"))
    tol_estimate = expected.get("tol_estimate", expected.get("tol"))
    assert tol_ci is not None and tol_estimate is not None
    _assert_close(result.lower, expected["ci_lower"], tol_ci)
    _assert_close(result.upper, expected["ci_upper"], tol_ci)
    _assert_close(result.estimate, expected["estimate"], tol_estimate)


def _check_intermediates(vector: dict[str, Any], result: Any) -> None:
    """R's own intermediate values, from the R script of MannWhitneySuite.scala.

    The values are of order 1e-5 where the suite's absolute 1e-6 would say little; since
    the emulation repeats R's arithmetic step by step, they are compared to 1e-9 relative.
    """
    expected = vector["expected"]
    inter = result.intermediates
    pairs = {
        "rMumin": inter.mumin,
        "rMumax": inter.mumax,
        "rZqLower": inter.zq_lower,
        "rZqUpper": inter.zq_upper,
        "rFlower1": inter.f_mumin_zq_lower,
        "rFupper1": inter.f_mumax_zq_lower,
        "rFlower2": inter.f_mumin_zq_upper,
        "rFupper2": inter.f_mumax_zq_upper,
        "rCil": result.lower,
        "rCiu": result.upper,
        # The script keeps ``correct <- TRUE`` for its estimate, unlike wilcox.test itself
        # (which sets it to FALSE first); uniroot_wdiff reproduces the script's call.
        "rEst": uniroot_wdiff(
            canary=vector["x_experiment"], baseline=vector["y_control"], zq=0.0, correct=True
        ),
    }
    assert set(pairs) == set(expected)
    for key, actual in pairs.items():
        assert math.isclose(actual, expected[key], rel_tol=1e-9, abs_tol=0.0), (
            f"{key}: {actual!r} != {expected[key]!r}"
        )
    # R's root finder stops at 1e-4, so here the "interval" is inverted, as in R.
    assert result.lower > result.upper
    # wilcox.test's own estimate (without continuity correction) agrees to R's tolerance.
    assert abs(result.estimate - expected["rEst"]) <= 1e-4


# --- detectors -----------------------------------------------------------------------


@pytest.mark.parametrize("vector", _cases("detectors"))
def test_detectors(vector: dict[str, Any]) -> None:
    data = np.asarray(vector["data"], dtype=np.float64)
    if vector["detector"] == "iqr":
        mask = iqr_outliers(data, factor=vector["factor"])
    else:
        assert vector["detector"] == "ksigma"
        mask = ksigma_outliers(data, k=vector["k"])
    assert np.flatnonzero(mask).tolist() == vector["expected_outliers"]


# --- statistics ----------------------------------------------------------------------

_PERCENTILE_KEY = re.compile(r"p(\d+(?:\.\d+)?)")


@pytest.mark.parametrize("vector", _cases("statistics"))
def test_statistics(vector: dict[str, Any]) -> None:
    name = vector["name"]
    expected = vector.get("expected")
    if name.startswith("summary"):
        stats = summary(vector["data"])
        assert expected
        for key, value in expected.items():
            field = "std" if key.startswith("std") else key
            if field == "count":
                assert stats.count == value
            else:
                _assert_close(getattr(stats, field), value)
    elif name == "meanRatio":
        assert vector["cases"]
        for case in vector["cases"]:
            _assert_close(mean_ratio(baseline=case["ctl"], canary=case["exp"]), case["expected"])
    elif name == "cohenD":
        _assert_close(
            cohen_d(baseline=vector["ctl"], canary=vector["exp"]), expected, vector["tol"]
        )
    elif name.startswith("CLES"):
        _assert_close(
            cles(baseline=vector["ctl"], canary=vector["exp"]), expected, vector.get("tol")
        )
    else:
        assert "ercentile" in name
        assert isinstance(expected, dict) and expected
        for key, value in expected.items():
            match = _PERCENTILE_KEY.fullmatch(key)
            assert match, key
            _assert_close(percentile(vector["data"], float(match.group(1))), value)


# --- scorer --------------------------------------------------------------------------


@pytest.mark.parametrize("vector", _cases("scorer"))
def test_scorer(vector: dict[str, Any]) -> None:
    metrics = [
        ScoredMetric(label=KayentaLabel(label), groups=tuple(groups), critical=critical)
        for label, groups, critical in vector["metrics"]
    ]
    result = score(classifications=metrics, group_weights=vector["weights"])
    # Kayenta rounds the summary score to two decimals, as the vectors print it.
    assert result.score == vector["expected"]
    if "expected_group_score" in vector:
        assert len(result.groups) == 1
        assert result.groups[0].score == vector["expected_group_score"]
    if "expected_group_scores_sorted" in vector:
        group_scores = sorted(group.score for group in result.groups)
        assert group_scores == vector["expected_group_scores_sorted"]


# --- aggregated_judgement ------------------------------------------------------------


@pytest.mark.parametrize("vector", _cases("aggregated_judgement"))
def test_aggregated_judgement(vector: dict[str, Any]) -> None:
    passed = did_pass(
        score=vector["finalScore"],
        pass_threshold=vector["passThr"],
        marginal_threshold=vector["marginal"],
    )
    assert passed is vector["expected_didPass"]
