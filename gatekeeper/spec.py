"""Analysis specs: what to watch, parsed and validated once (YAML or JSON).

Unknown keys and values are rejected with the path of the offending field; enum values use
the short names (``RATIO``, ``INCREASE``); defaults follow DESIGN.md. A metric names a
built-in ``template`` of its ``provider`` or brings its own queries (``kind`` with
``query`` / ``bad`` + ``total`` / ``buckets``). Custom queries must select the side with
``{{selector}}`` (or ``{{matchers}}``): a query that renders the same for baseline and
canary would compare the service with itself.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from gatekeeper import limits
from gatekeeper.errors import FieldViolation, InvalidArgument, collect
from gatekeeper.sources import queries
from gatekeeper.stats import model
from gatekeeper.stats import warmup as warmup_rule
from gatekeeper.stats.results import Direction, MetricKind

_INNER_PATH = re.compile(r"^(metrics\[\d+\]\.\w+): (.*)$", re.DOTALL)
_DURATION = re.compile(
    r"^(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+)s)?(?:(\d+)ms)?$"
)

Fraction = Annotated[float, Field(ge=0.0, allow_inf_nan=False)]
Positive = Annotated[float, Field(gt=0.0, allow_inf_nan=False)]


def parse_duration(text: str) -> float:
    """Seconds of a Prometheus duration such as ``30s``, ``1m30s``, ``2h``, ``7d``, ``500ms``."""
    match = _DURATION.match(text.strip())
    if not text.strip() or not match or not any(match.groups()):
        raise ValueError(f"must be a duration such as 30s, 1m or 1h30m, got {text!r}")
    weeks, days, hours, minutes, seconds, millis = (int(g) if g else 0 for g in match.groups())
    return (((weeks * 7 + days) * 24 + hours) * 60 + minutes) * 60 + seconds + millis / 1000


def format_duration(seconds: float) -> str:
    """A Prometheus duration for ``seconds`` (``90`` -> ``1m30s``)."""
    if seconds != int(seconds):
        return f"{round(seconds * 1000)}ms"
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    text = (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "")
    return text + (f"{secs}s" if secs or not text else "")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class KayentaMetricSpec(_Strict):
    """Per-metric parameters of KAYENTA mode."""

    effect_size_measure: Literal["MEAN_RATIO", "CLES"] = "MEAN_RATIO"
    allowed_decrease: Positive = 1.0
    allowed_increase: Positive = 1.0
    critical_decrease: Positive = 1.0
    critical_increase: Positive = 1.0
    nodata_fail: bool = False


def _queries_required(info: ValidationInfo) -> bool:
    """Whether metrics must bring queries (not for recorded data: ``{"queries": False}``)."""
    context = info.context if isinstance(info.context, dict) else {}
    return bool(context.get("queries", True))


class MetricSpec(_Strict):
    """One metric of an analysis."""

    name: Annotated[str, Field(min_length=1)]
    template: str | None = None
    kind: Literal["RATIO", "VALUES", "HISTOGRAM"] | None = None
    query: str | None = None
    bad: str | None = None
    total: str | None = None
    buckets: str | None = None
    direction: Literal["INCREASE", "DECREASE", "EITHER"] | None = None
    tolerance: Fraction = model.DEFAULT_TOLERANCE
    absolute_tolerance: Fraction = 0.0
    pass_tolerance: Fraction | None = None
    pass_absolute_tolerance: Fraction | None = None
    objective: Annotated[float, Field(gt=0.0, lt=1.0)] | None = None
    critical: bool = False
    weight: Positive = 1.0
    group: str = ""
    quantile: Annotated[float, Field(gt=0.0, lt=1.0)] = model.DEFAULT_QUANTILE
    dry_run: bool = False
    nan_strategy: Literal["REMOVE", "REPLACE"] = "REMOVE"
    nan_replacement: Annotated[float, Field(allow_inf_nan=False)] = 0.0
    outliers: Literal["NONE", "IQR", "KSIGMA"] = "NONE"
    outlier_factor: Positive = model.DEFAULT_OUTLIER_FACTOR
    kayenta: KayentaMetricSpec = KayentaMetricSpec()

    @model_validator(mode="after")
    def _pass_margins_contain_the_fail_margins(self) -> MetricSpec:
        conflicts = model.margin_conflicts(
            tolerance=self.tolerance,
            absolute_tolerance=self.absolute_tolerance,
            pass_tolerance=self.pass_tolerance,
            pass_absolute_tolerance=self.pass_absolute_tolerance,
        )
        if conflicts:
            raise ValueError("; ".join(f"{name} {text}" for name, text in conflicts.items()))
        return self

    @model_validator(mode="after")
    def _queries_match_the_kind(self, info: ValidationInfo) -> MetricSpec:
        custom = {r: getattr(self, r) for r in ("query", "bad", "total", "buckets")}
        given = {role for role, text in custom.items() if text is not None}
        if self.template is not None:
            if given:
                both = ", ".join(sorted(given))
                raise ValueError(
                    f"a metric uses either template or its own queries, not both ({both})"
                )
            return self
        if self.kind is None:
            raise ValueError(
                "needs a template (e.g. request-success-rate) or a kind with its queries"
            )
        if not given and not _queries_required(info):
            return self
        needed = set(queries.ROLES[MetricKind(self.kind)])
        if given != needed:
            raise ValueError(
                f"kind {self.kind} needs exactly {' and '.join(sorted(needed))}, got "
                f"{', '.join(sorted(given)) or 'no query'}"
            )
        for role in sorted(given):
            used = queries.placeholders(custom[role])
            unknown = used - queries.PLACEHOLDERS
            if unknown:
                raise ValueError(
                    f"{role} uses unknown placeholder(s) {', '.join(sorted(unknown))}; allowed: "
                    f"{', '.join(sorted(queries.PLACEHOLDERS))}"
                )
            live = queries.placeholders(queries.without_comments(custom[role]))
            if not live & {"selector", "matchers"}:
                raise ValueError(
                    f"{role} must select the side with {{{{selector}}}} (outside a comment): "
                    "without it baseline and canary render to the same query"
                )
        return self

    @property
    def custom(self) -> bool:
        """Whether the metric brings its own PromQL."""
        return self.template is None


class Thresholds(_Strict):
    """Score thresholds, 0..100."""

    pass_score: Annotated[float, Field(ge=0, le=100)] = model.DEFAULT_PASS_SCORE
    marginal_score: Annotated[float, Field(ge=0, le=100)] = model.DEFAULT_MARGINAL_SCORE

    @model_validator(mode="after")
    def _ordered(self) -> Thresholds:
        if self.marginal_score > self.pass_score:
            raise ValueError("marginal_score must be <= pass_score")
        return self


class KayentaSpec(_Strict):
    """Request-level parameters of KAYENTA mode."""

    tolerance: Fraction = model.DEFAULT_KAYENTA_TOLERANCE
    confidence: Annotated[float, Field(gt=0.0, lt=1.0)] = model.DEFAULT_KAYENTA_CONFIDENCE


class AnalysisSpec(_Strict):
    """What an analysis watches and how it judges."""

    provider: Literal["generic", "istio", "linkerd", "nginx", "gateway-api"] = "generic"
    service: str | None = None
    namespace: str | None = None
    interval: str = "30s"
    warmup: str = format_duration(warmup_rule.DEFAULT_WARMUP_SECONDS)
    mode: Literal["DEFAULT", "KAYENTA"] = "DEFAULT"
    alpha: Annotated[float, Field(gt=0.0, le=0.5)] = model.DEFAULT_ALPHA
    beta: Annotated[float, Field(gt=0.0, le=0.5)] = model.DEFAULT_BETA
    thresholds: Thresholds = Thresholds()
    group_weights: dict[str, Fraction] = {}
    kayenta: KayentaSpec = KayentaSpec()
    metrics: Annotated[list[MetricSpec], Field(min_length=1)]

    @field_validator("interval")
    @classmethod
    def _interval_is_a_duration(cls, value: str) -> str:
        if parse_duration(value) <= 0:
            raise ValueError("must be longer than 0s")
        return value

    @field_validator("warmup")
    @classmethod
    def _warmup_is_a_duration(cls, value: str) -> str:
        if value.strip() in ("0", "0s"):
            return value
        parse_duration(value)
        return value

    @model_validator(mode="after")
    def _consistent(self) -> AnalysisSpec:
        names = [m.name for m in self.metrics]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"metric names must be unique, repeated: {', '.join(duplicates)}")
        catalogue = queries.provider(self.provider)
        missing = [key for key in catalogue.requires if getattr(self, key) is None]
        if missing:
            raise ValueError(f"provider {self.provider} needs {' and '.join(missing)}")
        for index, metric in enumerate(self.metrics):
            if metric.template is None:
                continue
            template = catalogue.templates.get(metric.template)
            if template is None:
                allowed = ", ".join(sorted(catalogue.templates))
                raise ValueError(
                    f"metrics[{index}].template: unknown template {metric.template!r} for "
                    f"provider {self.provider}; allowed: {allowed}"
                )
            if metric.kind is not None and metric.kind != template.kind.value:
                raise ValueError(
                    f"metrics[{index}].kind: template {metric.template} is {template.kind.value}"
                )
        return self

    @property
    def interval_seconds(self) -> float:
        """The interval in seconds."""
        return parse_duration(self.interval)

    @property
    def warmup_seconds(self) -> float:
        """The warm-up in seconds (0: off)."""
        return 0.0 if self.warmup.strip() == "0" else parse_duration(self.warmup)

    @property
    def custom_queries(self) -> bool:
        """Whether any metric brings its own PromQL."""
        return any(m.custom for m in self.metrics)

    def kind_of(self, metric: MetricSpec) -> MetricKind:
        """The metric's kind (from its template where it has one)."""
        if metric.template is not None:
            return queries.provider(self.provider).templates[metric.template].kind
        assert metric.kind is not None
        return MetricKind(metric.kind)

    def query_templates(self, metric: MetricSpec) -> dict[str, str]:
        """The metric's query templates by role."""
        if metric.template is not None:
            return dict(queries.provider(self.provider).templates[metric.template].queries)
        roles = queries.ROLES[self.kind_of(metric)]
        return {role: getattr(metric, role) for role in roles}

    def settings(self, metric: MetricSpec) -> model.MetricSettings:
        """The judge's settings for one metric."""
        direction = metric.direction or ("EITHER" if self.mode == "KAYENTA" else "INCREASE")
        return model.MetricSettings(
            name=limits.normalized_name(metric.name),
            kind=self.kind_of(metric),
            direction=Direction(direction),
            tolerance=metric.tolerance,
            absolute_tolerance=metric.absolute_tolerance,
            pass_tolerance=metric.pass_tolerance,
            pass_absolute_tolerance=metric.pass_absolute_tolerance,
            objective=metric.objective,
            critical=metric.critical,
            weight=metric.weight,
            group=metric.group,
            quantile=metric.quantile,
            dry_run=metric.dry_run,
            nan_strategy=model.NanStrategy(metric.nan_strategy),
            nan_replacement=metric.nan_replacement,
            outlier_strategy=model.OutlierStrategy(metric.outliers),
            outlier_factor=metric.outlier_factor,
            kayenta=model.KayentaMetricOptions(**metric.kayenta.model_dump()),
        )

    def judge_settings(
        self, *, look: model.LookPosition | None = None, interval_seconds: float | None = None
    ) -> model.JudgeSettings:
        """The judge's settings of a whole analysis."""
        return model.JudgeSettings(
            alpha=self.alpha,
            beta=self.beta,
            pass_score=self.thresholds.pass_score,
            marginal_score=self.thresholds.marginal_score,
            interval_seconds=interval_seconds or self.interval_seconds,
            look=look,
            group_weights=dict(self.group_weights),
            mode=model.JudgeMode(self.mode),
            kayenta_tolerance=self.kayenta.tolerance,
            kayenta_confidence=self.kayenta.confidence,
            warmup_seconds=self.warmup_seconds,
        )


def _path(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif not part.startswith(("function-", "literal[", "constrained-")):
            text += f".{part}" if text else part
    return text or "spec"


def _violations(error: ValidationError) -> list[FieldViolation]:
    found = []
    for item in error.errors():
        message = str(item["msg"]).removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown field (not part of the analysis spec)"
        path = _path(tuple(item["loc"]))
        inner = _INNER_PATH.match(message)
        if inner:
            path, message = inner.group(1), inner.group(2)
        found.append(FieldViolation(path, message))
    return found


def load_spec(text: str, *, field: str = "spec", queries: bool = True) -> AnalysisSpec:
    """Parse and validate an analysis spec (YAML or JSON).

    Parameters
    ----------
    text : str
        The spec, YAML or JSON.
    field : str
        The name of the spec in violations of its top level.
    queries : bool
        Whether a metric with a ``kind`` must bring its queries. False for recorded data
        (:mod:`gatekeeper.replay`), where a metric needs only its name, its kind or template
        and its judgement settings.

    Raises
    ------
    InvalidArgument
        With one violation per problem, each naming the path of the field.
    """
    try:
        raw: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidArgument.single(field, f"not YAML or JSON: {exc}") from None
    except RecursionError:
        raise _too_deep(field) from None
    if not isinstance(raw, dict):
        raise InvalidArgument.single(field, "must be a mapping with provider, interval and metrics")
    try:
        spec = AnalysisSpec.model_validate(raw, context={"queries": queries})
    except ValidationError as exc:
        raise InvalidArgument(_violations(exc)) from None
    except RecursionError:
        raise _too_deep(field) from None
    collect(_hostile(spec))
    return spec


def _too_deep(field: str) -> InvalidArgument:
    return InvalidArgument.single(
        field, "is nested too deeply to be an analysis spec (mappings and lists a few levels deep)"
    )


def _hostile(spec: AnalysisSpec) -> list[FieldViolation]:
    """The rules of :mod:`gatekeeper.limits` on a spec: metric names and weights."""
    found = limits.check_names("metrics[{index}].name", [m.name for m in spec.metrics])
    for index, metric in enumerate(spec.metrics):
        found += limits.check_weight(f"metrics[{index}].weight", metric.weight)
        found += limits.check_group(f"metrics[{index}].group", metric.group)
    for group, weight in spec.group_weights.items():
        found += limits.check_weight(f"group_weights[{group!r}]", weight)
    return found
