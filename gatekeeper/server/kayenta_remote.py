"""Kayenta's remote judge: ``POST /judge``, a RemoteJudgeRequest in, a CanaryJudgeResult out.

Kayenta (``kayenta.remote-judge.endpoint.baseUrl``) posts ``{canary_config, score_thresholds,
metric_set_pair_list}``: per metric the control's and the experiment's values (``"NaN"`` as a
string for a missing point). The pairs are judged as VALUES metrics by the default mode's
statistics (Mann-Whitney U with the Hodges-Lehmann shift; DESIGN.md, "Statistics"),
control as baseline and experiment as canary, with each metric's direction (Kayenta's
default: either) and critical flag from the config, its group (the first of its groups
that has a weight in ``classifier.group_weights``, else its first), the config's group
weights, and the score thresholds of the request (else of the config's classifier).

Classifications: Pass, High, Low, Nodata (NO_DATA and LOW_TRAFFIC: all-NaN control data
is Nodata, never Pass) and Error. The run's classification follows the verdict's decision
(Pass, Fail, Marginal for INCONCLUSIVE, Error); since Spinnaker gates on the score alone,
the score of a verdict that is not PASS is held below the pass threshold, and that of a
FAIL below the marginal one, so that only a PASS verdict can pass the canary stage.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Literal

from aiohttp import web
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from gatekeeper.api.v1 import gatekeeper_pb2 as pb
from gatekeeper.errors import FieldViolation, InvalidArgument
from gatekeeper.server.http import GATEWAY, Gateway, pydantic_violations
from gatekeeper.stats.model import DEFAULT_MARGINAL_SCORE, DEFAULT_PASS_SCORE

JUDGE_NAME = "canary-gatekeeper"
DIRECTIONS = {
    "increase": pb.DIRECTION_INCREASE,
    "decrease": pb.DIRECTION_DECREASE,
    "either": pb.DIRECTION_EITHER,
}
LABELS = {
    pb.OUTCOME_PASS: "Pass",
    pb.OUTCOME_HIGH: "High",
    pb.OUTCOME_LOW: "Low",
    pb.OUTCOME_NO_DATA: "Nodata",
    pb.OUTCOME_LOW_TRAFFIC: "Nodata",
}
SCORE_LABELS = {
    pb.DECISION_PASS: "Pass",
    pb.DECISION_FAIL: "Fail",
    pb.DECISION_INCONCLUSIVE: "Marginal",
}
#: How far below a threshold a held score is (Kayenta's scores have two decimals).
HELD_BELOW = 0.01


def _number(value: object) -> object:
    """Kayenta writes a missing point as the string "NaN"."""
    return math.nan if value == "NaN" else value


def _finite_or_nan(value: float) -> float:
    if math.isinf(value):
        raise ValueError('must be a finite number or "NaN"')
    return value


Value = Annotated[float, BeforeValidator(_number), AfterValidator(_finite_or_nan)]


class _Peer(BaseModel):
    """Kayenta's objects carry more than the judge needs: the rest is ignored."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True, alias_generator=to_camel)


class Analysis(_Peer):
    """A metric's ``analysisConfigurations.canary``."""

    direction: Literal["increase", "decrease", "either"] = "either"
    critical: bool = False


class ConfigMetric(_Peer):
    """One metric of the canary config."""

    name: str = Field(min_length=1)
    groups: list[str] = Field(default_factory=list)
    analysis: dict[str, Analysis] = Field(default_factory=dict, alias="analysisConfigurations")
    extensions: dict[str, Analysis] = Field(default_factory=dict)

    def canary(self) -> Analysis:
        """The canary analysis settings (``extensions`` in older configs)."""
        return self.analysis.get("canary") or self.extensions.get("canary") or Analysis()


class Thresholds(_Peer):
    """Score thresholds, 0..100."""

    pass_: float = Field(alias="pass", ge=0, le=100)
    marginal: float = Field(ge=0, le=100)


class Classifier(_Peer):
    """The config's classifier: group weights and thresholds."""

    group_weights: dict[str, Annotated[float, Field(ge=0)]] = Field(default_factory=dict)
    score_thresholds: Thresholds | None = None


class CanaryConfig(_Peer):
    """The parts of a Kayenta canary config the judge uses."""

    metrics: list[ConfigMetric] = Field(min_length=1)
    classifier: Classifier = Field(default_factory=Classifier)


class Values(_Peer):
    """Both sides' values of one metric."""

    control: list[Value] = Field(default_factory=list)
    experiment: list[Value] = Field(default_factory=list)


class MetricSetPair(_Peer):
    """One metric's data for the judge."""

    name: str = Field(min_length=1)
    id: str = ""
    tags: dict[str, str] = Field(default_factory=dict)
    values: Values = Field(default_factory=Values)


class RemoteJudgeRequest(_Peer):
    """What Kayenta posts to a remote judge."""

    canary_config: CanaryConfig
    score_thresholds: Thresholds | None = None
    metric_set_pair_list: list[MetricSetPair] = Field(min_length=1)


def parse(data: bytes) -> RemoteJudgeRequest:
    """Validate the body; violations carry Kayenta's field paths."""
    try:
        return RemoteJudgeRequest.model_validate_json(data)
    except ValidationError as exc:
        raise InvalidArgument(pydantic_violations(exc)) from None


def _group(metric: ConfigMetric, weights: dict[str, float]) -> str:
    weighted = [g for g in metric.groups if g in weights]
    return (weighted or metric.groups or [""])[0]


def judge_request(remote: RemoteJudgeRequest) -> pb.JudgeRequest:
    """The JudgeRequest of a RemoteJudgeRequest (default mode, VALUES metrics)."""
    config = remote.canary_config
    by_name = {m.name: m for m in config.metrics}
    weights = config.classifier.group_weights
    problems = []
    request = pb.JudgeRequest(mode=pb.JUDGE_MODE_DEFAULT)
    for index, pair in enumerate(remote.metric_set_pair_list):
        metric = by_name.get(pair.name)
        if metric is None:
            allowed = ", ".join(sorted(by_name))
            problems.append(
                FieldViolation(
                    f"metricSetPairList[{index}].name",
                    f"{pair.name!r} is not a metric of canary_config; allowed: {allowed}",
                )
            )
            continue
        analysis = metric.canary()
        added = request.metrics.add()
        added.config.name = pair.name
        added.config.kind = pb.METRIC_KIND_VALUES
        added.config.direction = DIRECTIONS[analysis.direction]
        added.config.critical = analysis.critical
        added.config.group = _group(metric, weights)
        added.baseline.values.extend(pair.values.control)
        added.canary.values.extend(pair.values.experiment)
    if problems:
        raise InvalidArgument(problems)
    request.group_weights.update({g: w for g, w in weights.items() if w > 0})
    thresholds = remote.score_thresholds or config.classifier.score_thresholds
    request.thresholds.pass_score = DEFAULT_PASS_SCORE if thresholds is None else thresholds.pass_
    request.thresholds.marginal_score = (
        DEFAULT_MARGINAL_SCORE if thresholds is None else thresholds.marginal
    )
    return request


_FIELD = re.compile(r"^metrics\[(\d+)\]\.(baseline|canary)")
_SIDES = {"baseline": "control", "canary": "experiment"}


def _renamed(error: InvalidArgument) -> InvalidArgument:
    """Violations of the JudgeRequest, in the RemoteJudgeRequest's paths."""
    return InvalidArgument(
        [
            FieldViolation(
                _FIELD.sub(
                    lambda m: f"metricSetPairList[{m[1]}].values.{_SIDES[m[2]]}", v.field
                ).replace("metrics[", "metricSetPairList["),
                v.description,
            )
            for v in error.violations
        ]
    )


def _summary(summary: pb.Summary) -> dict[str, Any]:
    return {
        "stats": {
            "count": summary.count,
            "mean": summary.mean,
            "median": summary.p50,
            "p99": summary.p99,
        }
    }


def _result(pair: MetricSetPair, metric: ConfigMetric, result: pb.MetricResult) -> dict[str, Any]:
    return {
        "name": pair.name,
        "id": pair.id,
        "tags": pair.tags,
        "classification": LABELS.get(result.outcome, "Error"),
        "classificationReason": result.reason,
        "groups": metric.groups,
        "experimentMetadata": _summary(result.canary),
        "controlMetadata": _summary(result.baseline),
        "resultMetadata": {
            "test": result.test,
            "pValue": result.p_value,
            "effect": {
                "estimate": result.effect.estimate,
                "lower": result.effect.lower,
                "upper": result.effect.upper,
                "confidence": result.effect.confidence,
            },
            "outcome": pb.Outcome.Name(result.outcome).removeprefix("OUTCOME_"),
        },
        "critical": result.critical,
        "muted": False,
    }


def held_score(verdict: pb.Verdict, request: pb.JudgeRequest) -> float:
    """The score to report: below the pass threshold unless PASS, below marginal on FAIL."""
    thresholds = request.thresholds
    if verdict.decision == pb.DECISION_PASS:
        return verdict.score
    bound = (
        thresholds.marginal_score if verdict.decision == pb.DECISION_FAIL else thresholds.pass_score
    )
    return max(0.0, min(verdict.score, bound - HELD_BELOW))


def canary_judge_result(
    remote: RemoteJudgeRequest, request: pb.JudgeRequest, verdict: pb.Verdict
) -> dict[str, Any]:
    """The CanaryJudgeResult of a verdict."""
    by_name = {m.name: m for m in remote.canary_config.metrics}
    results = {r.name: r for r in verdict.metrics}
    return {
        "judgeName": JUDGE_NAME,
        "results": [
            _result(pair, by_name[pair.name], results[pair.name])
            for pair in remote.metric_set_pair_list
            if pair.name in results
        ],
        "groupScores": [
            {"name": g.name, "score": g.score, "classification": "", "classificationReason": ""}
            for g in verdict.groups
        ],
        "score": {
            "score": held_score(verdict, request),
            "classification": SCORE_LABELS.get(verdict.decision, "Error"),
            "classificationReason": verdict.summary,
        },
    }


def _json_safe(value: Any) -> Any:
    """NaN as Kayenta writes it ("NaN"), so that the body is strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


async def judge(request: web.Request) -> web.Response:
    """``POST /judge``: judge Kayenta's metric set pairs."""
    gateway: Gateway = request.app[GATEWAY]
    remote = parse(await request.read())
    message = judge_request(remote)
    try:
        verdict = await gateway.judge(message)
    except InvalidArgument as exc:
        raise _renamed(exc) from None
    status = 503 if verdict.decision == pb.DECISION_ERROR else 200
    body = _json_safe(canary_judge_result(remote, message, verdict))
    return web.json_response(body, status=status)


def routes(app: web.Application) -> None:
    """Add the remote judge."""
    app.router.add_post("/judge", judge)
