"""Convert a Kayenta canary config (JSON) into an analysis spec, in KAYENTA or default mode.

Carried over: metrics with their groups, directions, critical and ``mustHaveData`` flags,
effect sizes (allowed and critical increase/decrease, meanRatio or CLES), NaN strategy and
outlier removal; the classifier's group weights and score thresholds; Prometheus queries
(``customInlineTemplate`` with its ``PromQL:`` prefix, or ``metricName`` with label
bindings and ``groupByFields``), where the ``scope`` label matcher becomes our
``{{selector}}``. Everything that cannot be carried over is named in a message: queries of
other metric stores, ``${location}``, ``functions``, several groups per metric, and the
interval, which Kayenta leaves to the execution.

In default mode (``mode="DEFAULT"``) the spec is judged by the gatekeeper's own two-boundary
rule instead: Kayenta's allowed effect size in the harmful direction (``allowedIncrease:
1.1``, a significant change of up to 10 % still passes) becomes the FAIL boundary's
``tolerance``, and the PASS boundary's ``pass_tolerance`` is written out at the kind's
default, widened to the tolerance where that is wider. ``mustHaveData`` needs no carrying
over there: missing data is never a PASS in default mode.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from gatekeeper.errors import InvalidArgument
from gatekeeper.spec import AnalysisSpec, load_spec
from gatekeeper.stats.model import DEFAULT_PASS_TOLERANCE, DEFAULT_TOLERANCE
from gatekeeper.stats.results import MetricKind

_SCOPE_MATCHER = re.compile(r'[A-Za-z_][A-Za-z0-9_]*\s*(?:=~|!~|!=|=)\s*"[^"]*\$\{scope\}[^"]*"')
_EFFECT_FIELDS = {
    "allowedIncrease": "allowed_increase",
    "allowedDecrease": "allowed_decrease",
    "criticalIncrease": "critical_increase",
    "criticalDecrease": "critical_decrease",
}
_MEASURES = {"meanRatio": "MEAN_RATIO", "cles": "CLES"}
DEFAULT_INTERVAL = "1m"
MODES = ("KAYENTA", "DEFAULT")


@dataclass(frozen=True, slots=True)
class Conversion:
    """The spec (as data and as validated AnalysisSpec) and what could not be carried over."""

    document: dict[str, Any]
    spec: AnalysisSpec
    messages: tuple[str, ...]

    def yaml(self) -> str:
        """The spec as YAML text, the messages as comments on top."""
        head = "".join(f"# {m}\n" for m in self.messages)
        return head + yaml.safe_dump(self.document, sort_keys=False, allow_unicode=True)


def _query(metric: Mapping[str, Any], name: str, notes: list[str]) -> str | None:
    query = metric.get("query") or {}
    kind = query.get("type") or query.get("serviceType") or metric.get("serviceName")
    if kind != "prometheus":
        notes.append(
            f"metric {name}: its {kind or 'unknown'} query cannot be carried over; metric left out"
        )
        return None
    if query.get("functions"):
        functions = query["functions"]
        notes.append(
            f"metric {name}: functions {functions} not carried over; put them in the query"
        )
    template = query.get("customInlineTemplate") or ""
    if template:
        text = template.removeprefix("PromQL:").strip()
    else:
        bindings = [b for b in query.get("labelBindings") or [] if b]
        scope = query.get("scopeLabel") or "scope"
        matchers = ", ".join([f'{scope}="${{scope}}"', *bindings])
        text = f"{query['metricName']}{{ {matchers} }}"
        groups = query.get("groupByFields") or []
        if groups:
            text = f"sum by ({', '.join(groups)}) ({text})"
    if not _SCOPE_MATCHER.search(text):
        notes.append(f"metric {name}: the query does not select a ${{scope}}; metric left out")
        return None
    text = _SCOPE_MATCHER.sub(" {{selector}} ", text)
    notes.append(
        f"metric {name}: the ${{scope}} matcher became {{{{selector}}}}: pass the side's labels"
    )
    if "${scope}" in text:
        notes.append(f"metric {name}: ${{scope}} outside a label matcher; metric left out")
        return None
    if "${location}" in text:
        notes.append(
            f"metric {name}: ${{location}} has no equivalent; removed from the query, check it"
        )
        text = re.sub(r',?\s*[A-Za-z_][A-Za-z0-9_]*\s*=~?\s*"\$\{location\}"', "", text)
    if "${" in text:
        notes.append(f"metric {name}: template variables left in the query: {text}")
    return text


def _metric(metric: Mapping[str, Any], notes: list[str]) -> dict[str, Any] | None:
    name = str(metric.get("name") or "").strip()
    if not name:
        notes.append("a metric without a name was left out")
        return None
    query = _query(metric, name, notes)
    if query is None:
        return None
    canary = (metric.get("analysisConfigurations") or {}).get("canary") or {}
    out: dict[str, Any] = {"name": name, "kind": "VALUES", "query": query}
    groups = metric.get("groups") or []
    if groups:
        out["group"] = groups[0]
        if len(groups) > 1:
            notes.append(f"metric {name}: in groups {groups}; only the first is carried over")
    out["direction"] = str(canary.get("direction", "either")).upper()
    if canary.get("critical"):
        out["critical"] = True
    if canary.get("nanStrategy"):
        out["nan_strategy"] = str(canary["nanStrategy"]).upper()
    outliers = canary.get("outliers") or {}
    if outliers.get("strategy") == "remove":
        out["outliers"] = "IQR"
        if "outlierFactor" in outliers:
            out["outlier_factor"] = float(outliers["outlierFactor"])
    kayenta: dict[str, Any] = {}
    effect = canary.get("effectSize") or {}
    for theirs, ours in _EFFECT_FIELDS.items():
        if theirs in effect:
            kayenta[ours] = float(effect[theirs])
    if "measure" in effect:
        measure = _MEASURES.get(effect["measure"])
        if measure is None:
            notes.append(
                f"metric {name}: effect size measure {effect['measure']!r} unknown; meanRatio used"
            )
        else:
            kayenta["effect_size_measure"] = measure
    if canary.get("mustHaveData"):
        kayenta["nodata_fail"] = True
    if kayenta:
        out["kayenta"] = kayenta
    return out


def _as_default_mode(metric: dict[str, Any]) -> dict[str, Any]:
    """A KAYENTA-mode metric with its effect sizes turned into the two boundaries."""
    out = {key: value for key, value in metric.items() if key != "kayenta"}
    options = metric.get("kayenta") or {}
    direction = out.get("direction", "EITHER")
    # Only mean ratios carry over: CLES thresholds are probabilities, not changes.
    ratios = options.get("effect_size_measure", "MEAN_RATIO") == "MEAN_RATIO"
    allowed = [
        options.get(name, 1.0)
        for name, harmful in (("allowed_increase", "INCREASE"), ("allowed_decrease", "DECREASE"))
        if ratios and direction in (harmful, "EITHER")
    ]
    # A ratio of 1.1 (or, decreasing, 0.9) allows a change of 10 %.
    tolerance = max([abs(a - 1.0) for a in allowed if a != 1.0], default=DEFAULT_TOLERANCE)
    out["tolerance"] = round(tolerance, 6)
    out["pass_tolerance"] = max(DEFAULT_PASS_TOLERANCE[MetricKind(out["kind"])], out["tolerance"])
    return out


def convert(config: Mapping[str, Any], *, mode: str = "KAYENTA") -> Conversion:
    """Convert a parsed Kayenta canary config; raises InvalidArgument when nothing is left.

    ``mode`` is "KAYENTA" (Kayenta's own judgement, for migration) or "DEFAULT" (the
    gatekeeper's two-boundary rule, the effect sizes carried over as tolerances).
    """
    if mode not in MODES:
        raise InvalidArgument.single("mode", f"must be one of {', '.join(MODES)}, got {mode!r}")
    notes: list[str] = [f"interval: Kayenta leaves it to the execution; {DEFAULT_INTERVAL} assumed"]
    metrics = [m for m in (_metric(raw, notes) for raw in config.get("metrics") or []) if m]
    if not metrics:
        raise InvalidArgument.single("metrics", "no metric with a Prometheus query to carry over")
    document: dict[str, Any] = {"provider": "generic", "interval": DEFAULT_INTERVAL}
    if mode == "KAYENTA":
        document["mode"] = "KAYENTA"
    else:
        metrics = [_as_default_mode(m) for m in metrics]
        notes.append(
            "default mode: each metric's allowed effect size is its tolerance (the FAIL "
            "boundary); pass_tolerance is the PASS boundary a promotion must rule out"
        )
    document["metrics"] = metrics
    classifier = config.get("classifier") or {}
    weights = classifier.get("groupWeights") or {}
    if weights:
        document["group_weights"] = {str(k): float(v) for k, v in weights.items()}
    thresholds = classifier.get("scoreThresholds") or {}
    if thresholds:
        document["thresholds"] = {
            "pass_score": float(thresholds.get("pass", 95.0)),
            "marginal_score": float(thresholds.get("marginal", 75.0)),
        }
    for key in ("templates",):
        if config.get(key):
            notes.append(f"{key}: Kayenta's named templates are not carried over; inline them")
    spec = load_spec(json.dumps(document), field="converted spec")
    return Conversion(document=document, spec=spec, messages=tuple(notes))


def convert_text(text: str, *, mode: str = "KAYENTA") -> Conversion:
    """Convert a Kayenta canary config given as JSON text (``mode``: see :func:`convert`)."""
    try:
        config = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidArgument.single("CONFIG", f"not JSON: {exc}") from None
    if not isinstance(config, dict):
        raise InvalidArgument.single("CONFIG", "must be a Kayenta canary config object")
    return convert(config, mode=mode)
