"""The wire contract <-> the domain: validation of requests, encoding of verdicts.

Every rule of DESIGN.md's error table for bad input lives here: negative or non-finite
counts, bad > total, unknown enum values, bounds not increasing, mismatched lengths,
missing or duplicate names. All violations of a request are reported at once, each with
the path of the field and the allowed values. An empty series is missing data, not bad
input.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
from google.protobuf import json_format
from google.protobuf.descriptor import EnumDescriptor
from google.protobuf.message import DecodeError

from gatekeeper import limits
from gatekeeper.api.v1 import gatekeeper_pb2 as pb
from gatekeeper.errors import FieldViolation, InvalidArgument, collect
from gatekeeper.stats.model import (
    DEFAULT_ALPHA,
    DEFAULT_BETA,
    DEFAULT_KAYENTA_CONFIDENCE,
    DEFAULT_KAYENTA_TOLERANCE,
    DEFAULT_MARGINAL_SCORE,
    DEFAULT_OUTLIER_FACTOR,
    DEFAULT_PASS_SCORE,
    DEFAULT_QUANTILE,
    DEFAULT_TOLERANCE,
    HistogramSeries,
    JudgeMode,
    JudgeSettings,
    KayentaMetricOptions,
    LookPosition,
    MetricData,
    MetricSettings,
    NanStrategy,
    OutlierStrategy,
    PodCounts,
    RatioSeries,
    Series,
    margin_conflicts,
)
from gatekeeper.stats.results import (
    Decision,
    Direction,
    Effect,
    MetricKind,
    MetricResult,
    Outcome,
    SideSummary,
    Verdict,
)
from gatekeeper.stats.warmup import DEFAULT_WARMUP_SECONDS


@dataclass(frozen=True, slots=True)
class JudgeInput:
    """A validated JudgeRequest (the judge mode is in ``settings``)."""

    metrics: tuple[MetricData, ...]
    settings: JudgeSettings


E = TypeVar("E", bound=enum.Enum)


def _enum_map(
    proto_enum: EnumDescriptor, prefix: str, domain: type[E], unspecified: E | None
) -> dict[int, E]:
    values: dict[int, E] = {}
    for value in proto_enum.values:
        short, number = value.name.removeprefix(prefix), value.number
        if short == "UNSPECIFIED":
            if unspecified is not None:
                values[number] = unspecified
            continue
        values[number] = domain[short]
    return values


KINDS = _enum_map(pb.MetricKind.DESCRIPTOR, "METRIC_KIND_", MetricKind, None)
DIRECTIONS = _enum_map(pb.Direction.DESCRIPTOR, "DIRECTION_", Direction, Direction.INCREASE)
MODES = _enum_map(pb.JudgeMode.DESCRIPTOR, "JUDGE_MODE_", JudgeMode, JudgeMode.DEFAULT)
NAN_STRATEGIES = _enum_map(
    pb.NanStrategy.DESCRIPTOR, "NAN_STRATEGY_", NanStrategy, NanStrategy.REMOVE
)
OUTLIER_STRATEGIES = _enum_map(
    pb.OutlierStrategy.DESCRIPTOR, "OUTLIER_STRATEGY_", OutlierStrategy, OutlierStrategy.NONE
)
EFFECT_SIZE_MEASURES = {
    pb.EFFECT_SIZE_MEASURE_UNSPECIFIED: "MEAN_RATIO",
    pb.EFFECT_SIZE_MEASURE_MEAN_RATIO: "MEAN_RATIO",
    pb.EFFECT_SIZE_MEASURE_CLES: "CLES",
}
DECISIONS = {d: pb.Decision.Value(f"DECISION_{d.value}") for d in Decision}
OUTCOMES = {o: pb.Outcome.Value(f"OUTCOME_{o.value}") for o in Outcome}


class _Checker:
    """Collects the violations of one request."""

    def __init__(self) -> None:
        self.violations: list[FieldViolation] = []

    def add(self, field: str, description: str) -> None:
        self.violations.append(FieldViolation(field, description))

    def enum(
        self, field: str, number: int, table: dict[int, E], proto_enum: EnumDescriptor
    ) -> E | None:
        if number in table:
            return table[number]
        names = ", ".join(v.name for v in proto_enum.values if v.number in table)
        self.add(field, f"unknown value {number}; allowed: {names}")
        return None

    def number(
        self,
        field: str,
        value: float,
        *,
        low: float,
        high: float = math.inf,
        low_open: bool = False,
        high_open: bool = False,
    ) -> float:
        ok = math.isfinite(value) and (value > low if low_open else value >= low)
        ok = ok and (value < high if high_open else value <= high)
        if not ok:
            left = "(" if low_open else "["
            right = ")" if high_open or math.isinf(high) else "]"
            upper = "inf" if math.isinf(high) else f"{high:g}"
            self.add(
                field, f"must be a finite number in {left}{low:g}, {upper}{right}, got {value!r}"
            )
        return value


def _optional(message: object, name: str, default: float) -> float:
    return float(getattr(message, name)) if message.HasField(name) else default  # type: ignore[attr-defined]


#: A side's data: the aggregate Series, or one pod's share of it (the same fields).
_Side = pb.Series | pb.PodSeries


def _ratio_series(check: _Checker, field: str, series: _Side) -> RatioSeries:
    bad = np.fromiter((c.bad for c in series.counts), dtype=float, count=len(series.counts))
    total = np.fromiter((c.total for c in series.counts), dtype=float, count=len(series.counts))
    broken = ~np.isfinite(bad) | ~np.isfinite(total) | (bad < 0) | (total < 0) | (bad > total)
    for index in np.flatnonzero(broken)[:5]:
        b, t = bad[index], total[index]
        check.add(
            f"{field}.counts[{index}]",
            f"bad and total must be finite, >= 0 and bad <= total, got bad={b:g} total={t:g}",
        )
    if series.values or series.histograms:
        check.add(field, "RATIO metrics carry counts only (values and histograms must be empty)")
    return RatioSeries(bad=bad, total=total)


def _values_series(check: _Checker, field: str, series: _Side) -> np.ndarray:
    values = np.array(series.values, dtype=float)
    infinite = np.isinf(values)
    if infinite.any():
        check.add(
            f"{field}.values[{np.flatnonzero(infinite)[0]}]",
            "values must be finite or NaN (NaN follows the metric's nan_strategy)",
        )
    if series.counts or series.histograms:
        check.add(field, "VALUES metrics carry values only (counts and histograms must be empty)")
    return values


def _histogram_series(check: _Checker, field: str, series: _Side) -> HistogramSeries:
    if series.values or series.counts:
        check.add(
            field, "HISTOGRAM metrics carry histograms only (values and counts must be empty)"
        )
    if not series.histograms:
        return HistogramSeries(np.array([math.inf]), np.zeros((0, 1)))
    bounds = np.asarray(series.histograms[0].upper_bounds, dtype=float)
    rows = []
    for index, histogram in enumerate(series.histograms):
        where = f"{field}.histograms[{index}]"
        these = np.asarray(histogram.upper_bounds, dtype=float)
        counts = np.asarray(histogram.counts, dtype=float)
        if index == 0:
            _check_bounds(check, where, these)
        elif these.shape != bounds.shape or not np.array_equal(these, bounds):
            check.add(
                f"{where}.upper_bounds", "every histogram of a metric must have the same bounds"
            )
            continue
        if counts.shape != these.shape:
            check.add(
                f"{where}.counts",
                f"needs one count per upper bound ({these.size}), got {counts.size}",
            )
            continue
        if not np.all(np.isfinite(counts)) or np.any(counts < 0):
            check.add(f"{where}.counts", "counts must be finite and >= 0")
            continue
        rows.append(counts)
    matrix = (
        np.vstack(rows)
        if rows and len(rows) == len(series.histograms)
        else np.zeros((0, bounds.size))
    )
    return HistogramSeries(upper_bounds=bounds, counts=matrix)


def _check_bounds(check: _Checker, where: str, bounds: np.ndarray) -> None:
    if bounds.size == 0 or not math.isinf(bounds[-1]) or bounds[-1] < 0:
        check.add(f"{where}.upper_bounds", 'must end with +Inf (Prometheus\' le="+Inf" bucket)')
    elif np.any(np.isnan(bounds)) or np.any(np.diff(bounds) <= 0):
        check.add(f"{where}.upper_bounds", "must be strictly increasing")


_SERIES: dict[MetricKind, Callable[[_Checker, str, _Side], Series]] = {
    MetricKind.RATIO: _ratio_series,
    MetricKind.VALUES: _values_series,
    MetricKind.HISTOGRAM: _histogram_series,
}


def _side(check: _Checker, field: str, series: pb.Series, kind: MetricKind) -> Series:
    """One side's series: from its aggregate fields, or derived from its pods."""
    if not series.pods:
        return _SERIES[kind](check, field, series)
    if series.counts or series.values or series.histograms:
        check.add(
            field,
            "with pods, counts, values and histograms must be empty (derived from the pods)",
        )
    names = _pod_names(check, field, series.pods)
    parts = [_SERIES[kind](check, f"{field}.pods[{i}]", p) for i, p in enumerate(series.pods)]
    if kind is MetricKind.VALUES:
        return np.concatenate([np.asarray(p, dtype=float) for p in parts])
    lengths = [_length(p) for p in parts]
    if len(set(lengths)) > 1:
        check.add(
            f"{field}.pods",
            "every pod of a side must cover the same intervals (zeros where it served "
            f"nothing), got {', '.join(map(str, lengths))}",
        )
        return _SERIES[kind](check, field, pb.Series())
    if kind is MetricKind.RATIO:
        ratios = [p for p in parts if isinstance(p, RatioSeries)]
        bad = np.column_stack([p.bad for p in ratios])
        total = np.column_stack([p.total for p in ratios])
        return RatioSeries.from_pods(PodCounts(names=names, bad=bad, total=total))
    return _summed_histograms(check, field, parts)


def _pod_names(check: _Checker, field: str, pods: Sequence[pb.PodSeries]) -> tuple[str, ...]:
    """The pods' names, each required and unique within the side."""
    seen: set[str] = set()
    for index, pod in enumerate(pods):
        if not pod.pod.strip():
            check.add(f"{field}.pods[{index}].pod", "is required (a non-empty pod name)")
        elif pod.pod in seen:
            check.add(
                f"{field}.pods[{index}].pod",
                f"duplicate pod name {pod.pod!r}; names must be unique within a side",
            )
        seen.add(pod.pod)
    return tuple(pod.pod for pod in pods)


def _summed_histograms(check: _Checker, field: str, parts: list[Series]) -> HistogramSeries:
    """The pods' histograms added up per interval (all with the same bucket bounds)."""
    histograms = [p for p in parts if isinstance(p, HistogramSeries) and p.counts.size]
    if not histograms:
        return HistogramSeries(np.array([math.inf]), np.zeros((0, 1)))
    bounds = histograms[0].upper_bounds
    if any(not np.array_equal(h.upper_bounds, bounds) for h in histograms):
        check.add(f"{field}.pods", "every pod of a side must use the same bucket bounds")
        return HistogramSeries(np.array([math.inf]), np.zeros((0, 1)))
    if len(histograms) < len(parts):  # a pod without histograms: the pods do not line up
        return HistogramSeries(bounds, np.sum([h.counts for h in histograms], axis=0))
    pods = np.stack([h.counts for h in histograms], axis=1)
    return HistogramSeries(upper_bounds=bounds, counts=pods.sum(axis=1), pods=pods)


def _length(series: Series) -> int:
    if isinstance(series, RatioSeries | HistogramSeries):
        return series.intervals
    return int(series.shape[0])


def _kayenta_options(
    check: _Checker, field: str, options: pb.KayentaMetricOptions
) -> KayentaMetricOptions:
    measure = options.effect_size_measure
    if measure not in EFFECT_SIZE_MEASURES:
        allowed = ", ".join(pb.EffectSizeMeasure.keys())
        check.add(f"{field}.effect_size_measure", f"unknown value {measure}; allowed: {allowed}")
    thresholds = {
        name: check.number(f"{field}.{name}", _optional(options, name, 1.0), low=0.0, low_open=True)
        for name in (
            "allowed_decrease",
            "allowed_increase",
            "critical_decrease",
            "critical_increase",
        )
    }
    return KayentaMetricOptions(
        effect_size_measure=EFFECT_SIZE_MEASURES.get(measure, "MEAN_RATIO"),
        nodata_fail=options.nodata_fail,
        **thresholds,
    )


#: What an absent ``kayenta`` message means (every field at its default).
_NO_KAYENTA_OPTIONS = KayentaMetricOptions()


def _settings(
    check: _Checker, field: str, config: pb.MetricConfig, mode: JudgeMode | None
) -> MetricSettings | None:
    kind = check.enum(f"{field}.kind", config.kind, KINDS, pb.MetricKind.DESCRIPTOR)
    direction = check.enum(
        f"{field}.direction", config.direction, DIRECTIONS, pb.Direction.DESCRIPTOR
    )
    if mode is JudgeMode.KAYENTA and config.direction == pb.DIRECTION_UNSPECIFIED:
        direction = Direction.EITHER  # Kayenta's default direction
    nan = check.enum(
        f"{field}.nan_strategy", config.nan_strategy, NAN_STRATEGIES, pb.NanStrategy.DESCRIPTOR
    )
    outliers = check.enum(
        f"{field}.outlier_strategy",
        config.outlier_strategy,
        OUTLIER_STRATEGIES,
        pb.OutlierStrategy.DESCRIPTOR,
    )
    tolerance = check.number(
        f"{field}.tolerance", _optional(config, "tolerance", DEFAULT_TOLERANCE), low=0.0
    )
    absolute = check.number(
        f"{field}.absolute_tolerance", _optional(config, "absolute_tolerance", 0.0), low=0.0
    )
    weight = check.number(
        f"{field}.weight", _optional(config, "weight", 1.0), low=0.0, low_open=True
    )
    quantile = check.number(
        f"{field}.quantile",
        _optional(config, "quantile", DEFAULT_QUANTILE),
        low=0.0,
        high=1.0,
        low_open=True,
        high_open=True,
    )
    replacement = _optional(config, "nan_replacement", 0.0)
    if not math.isfinite(replacement):
        check.add(f"{field}.nan_replacement", f"must be finite, got {replacement!r}")
    factor = check.number(
        f"{field}.outlier_factor",
        _optional(config, "outlier_factor", DEFAULT_OUTLIER_FACTOR),
        low=0.0,
        low_open=True,
    )
    margins = _pass_margins(check, field, config, tolerance=tolerance, absolute=absolute)
    if kind is None or direction is None or nan is None or outliers is None:
        return None
    return MetricSettings(
        name=limits.normalized_name(config.name),
        kind=kind,
        direction=direction,
        tolerance=tolerance,
        absolute_tolerance=absolute,
        critical=config.critical,
        weight=weight,
        group=config.group,
        quantile=quantile,
        dry_run=config.dry_run,
        nan_strategy=nan,
        nan_replacement=replacement,
        outlier_strategy=outliers,
        outlier_factor=factor,
        kayenta=(
            _kayenta_options(check, f"{field}.kayenta", config.kayenta)
            if config.HasField("kayenta")
            else _NO_KAYENTA_OPTIONS
        ),
        pass_tolerance=margins[0],
        pass_absolute_tolerance=margins[1],
        objective=margins[2],
    )


def _pass_margins(
    check: _Checker, field: str, config: pb.MetricConfig, *, tolerance: float, absolute: float
) -> tuple[float | None, float | None, float | None]:
    """(pass_tolerance, pass_absolute_tolerance, objective), checked against the FAIL margins."""
    found: dict[str, float | None] = {}
    for name in ("pass_tolerance", "pass_absolute_tolerance"):
        found[name] = (
            check.number(f"{field}.{name}", float(getattr(config, name)), low=0.0)
            if config.HasField(name)
            else None
        )
    found["objective"] = (
        check.number(
            f"{field}.objective", config.objective, low=0.0, high=1.0, low_open=True, high_open=True
        )
        if config.HasField("objective")
        else None
    )
    conflicts = margin_conflicts(
        tolerance=tolerance,
        absolute_tolerance=absolute,
        pass_tolerance=found["pass_tolerance"],
        pass_absolute_tolerance=found["pass_absolute_tolerance"],
    )
    for name, message in conflicts.items():
        check.add(f"{field}.{name}", message)
    return found["pass_tolerance"], found["pass_absolute_tolerance"], found["objective"]


def _metric(
    check: _Checker, index: int, metric: pb.Metric, mode: JudgeMode | None
) -> MetricData | None:
    field = f"metrics[{index}]"
    if not metric.config.name.strip():
        check.add(f"{field}.config.name", "is required (a non-empty metric name)")
    settings = _settings(check, f"{field}.config", metric.config, mode)
    if settings is None:
        return None
    baseline = _side(check, f"{field}.baseline", metric.baseline, settings.kind)
    canary = _side(check, f"{field}.canary", metric.canary, settings.kind)
    if settings.kind is not MetricKind.VALUES:
        n_base, n_canary = _length(baseline), _length(canary)
        if min(n_base, n_canary) > 0 and n_base != n_canary:
            check.add(
                f"{field}.canary",
                f"baseline and canary must cover the same intervals, got {n_base} and {n_canary}",
            )
    if (
        isinstance(baseline, HistogramSeries)
        and isinstance(canary, HistogramSeries)
        and baseline.counts.size
        and canary.counts.size
        and not np.array_equal(baseline.upper_bounds, canary.upper_bounds)
    ):
        check.add(
            f"{field}.canary.histograms", "baseline and canary must use the same bucket bounds"
        )
    return MetricData(settings=settings, baseline=baseline, canary=canary)


def judge_input(
    request: pb.JudgeRequest, *, max_metrics: int = limits.DEFAULT_MAX_METRICS
) -> JudgeInput:
    """Validate a JudgeRequest into the domain, or raise :class:`InvalidArgument`.

    More than ``max_metrics`` metrics is refused before anything else is looked at.
    """
    collect(limits.check_metric_count("metrics", len(request.metrics), max_metrics))
    check = _Checker()
    if not request.metrics:
        check.add("metrics", "at least one metric is required")
    check.violations.extend(_hostile(request))
    mode = check.enum("mode", request.mode, MODES, pb.JudgeMode.DESCRIPTOR)
    metrics = [_metric(check, i, m, mode) for i, m in enumerate(request.metrics)]
    settings = _judge_settings(check, request, mode or JudgeMode.DEFAULT)
    collect(check.violations)
    return JudgeInput(tuple(m for m in metrics if m is not None), settings)


def _hostile(request: pb.JudgeRequest) -> list[FieldViolation]:
    """The rules of :mod:`gatekeeper.limits`: names, weights, magnitudes, cumulative buckets."""
    found = limits.check_names(
        "metrics[{index}].config.name", [m.config.name for m in request.metrics]
    )
    for group, weight in request.group_weights.items():
        found += limits.check_weight(f"group_weights[{group!r}]", weight)
    for index, metric in enumerate(request.metrics):
        field = f"metrics[{index}]"
        if metric.config.HasField("weight"):
            found += limits.check_weight(f"{field}.config.weight", metric.config.weight)
        found += limits.check_group(f"{field}.config.group", metric.config.group)
        for side in ("baseline", "canary"):
            series: pb.Series = getattr(metric, side)
            if series.values:
                found += limits.check_values(
                    f"{field}.{side}", np.asarray(series.values, dtype=float)
                )
            for at, histogram in enumerate(series.histograms):
                found += limits.check_cumulative(
                    f"{field}.{side}.histograms[{at}]",
                    np.asarray(histogram.counts, dtype=float),
                    np.asarray(histogram.upper_bounds, dtype=float),
                    interval=at,
                )
    return found


def _judge_warmup(request: pb.JudgeRequest, interval: float | None) -> float:
    """Judge's warm-up: the default, over per-pod data on a known interval; else none.

    A Judge request carries no pod ages: each pod's first interval with data is its start,
    as in replay without start times (:mod:`gatekeeper.stats.warmup`). Aggregate series
    are the caller's own cut of the data and are judged whole.
    """
    per_pod = any(len(m.baseline.pods) or len(m.canary.pods) for m in request.metrics)
    return DEFAULT_WARMUP_SECONDS if per_pod and interval else 0.0


def _judge_settings(check: _Checker, request: pb.JudgeRequest, mode: JudgeMode) -> JudgeSettings:
    alpha = check.number(
        "alpha", _optional(request, "alpha", DEFAULT_ALPHA), low=0.0, high=0.5, low_open=True
    )
    beta = check.number(
        "beta", _optional(request, "beta", DEFAULT_BETA), low=0.0, high=0.5, low_open=True
    )
    thresholds = request.thresholds
    pass_score = check.number(
        "thresholds.pass_score",
        _optional(thresholds, "pass_score", DEFAULT_PASS_SCORE),
        low=0.0,
        high=100.0,
    )
    marginal = check.number(
        "thresholds.marginal_score",
        _optional(thresholds, "marginal_score", DEFAULT_MARGINAL_SCORE),
        low=0.0,
        high=100.0,
    )
    if marginal > pass_score:
        check.add(
            "thresholds.marginal_score",
            f"must be <= pass_score ({pass_score:g}), got {marginal:g}",
        )
    interval: float | None = None
    if request.HasField("interval_seconds"):
        interval = check.number(
            "interval_seconds", request.interval_seconds, low=0.0, low_open=True
        )
    look: LookPosition | None = None
    if request.HasField("look"):
        if request.look.index < 1:
            check.add("look.index", f"must be >= 1 (1-based), got {request.look.index}")
        if request.look.planned < 0:
            check.add("look.planned", f"must be >= 0 (0: unknown), got {request.look.planned}")
        look = LookPosition(index=max(1, request.look.index), planned=max(0, request.look.planned))
    weights: dict[str, float] = {}
    for group, weight in request.group_weights.items():
        weights[group] = check.number(f"group_weights[{group!r}]", weight, low=0.0)
    return JudgeSettings(
        alpha=alpha,
        beta=beta,
        pass_score=pass_score,
        marginal_score=marginal,
        interval_seconds=interval,
        look=look,
        group_weights=weights,
        mode=mode,
        kayenta_tolerance=check.number(
            "kayenta.tolerance",
            _optional(request.kayenta, "tolerance", DEFAULT_KAYENTA_TOLERANCE),
            low=0.0,
        ),
        warmup_seconds=_judge_warmup(request, interval),
        kayenta_confidence=check.number(
            "kayenta.confidence",
            _optional(request.kayenta, "confidence", DEFAULT_KAYENTA_CONFIDENCE),
            low=0.0,
            high=1.0,
            low_open=True,
            high_open=True,
        ),
    )


def parse_judge_request(data: bytes | str, *, json: bool) -> pb.JudgeRequest:
    """Decode a JudgeRequest from protobuf's binary or JSON mapping; bad bytes are bad input."""
    request = pb.JudgeRequest()
    try:
        if json:
            json_format.Parse(data, request)
        else:
            request.ParseFromString(data if isinstance(data, bytes) else data.encode())
    except (
        json_format.ParseError,
        DecodeError,
        UnicodeDecodeError,
        ValueError,
        RecursionError,
    ) as exc:
        mapping = "protobuf JSON mapping" if json else "protobuf binary encoding"
        raise InvalidArgument.single(
            "request", f"not a gatekeeper.api.v1.JudgeRequest in the {mapping}: {exc}"
        ) from None
    return request


def _effect(effect: Effect) -> pb.Effect:
    return pb.Effect(
        estimate=effect.estimate,
        lower=effect.lower,
        upper=effect.upper,
        confidence=effect.confidence,
        scale=effect.scale,
    )


def _summary(summary: SideSummary) -> pb.Summary:
    return pb.Summary(
        count=summary.count, mean=summary.mean, p50=summary.p50, p99=summary.p99, rate=summary.rate
    )


def _metric_result(result: MetricResult) -> pb.MetricResult:
    return pb.MetricResult(
        name=result.name,
        outcome=OUTCOMES[result.outcome],
        critical=result.critical,
        test=result.test,
        p_value=result.p_value,
        effect=_effect(result.effect),
        baseline=_summary(result.baseline),
        canary=_summary(result.canary),
        reason=result.reason,
        queries=list(result.queries),
        dry_run=result.dry_run,
        group=result.group,
        alpha=result.alpha,
    )


def verdict_message(verdict: Verdict) -> pb.Verdict:
    """Encode a verdict for the wire."""
    message = pb.Verdict(
        decision=DECISIONS[verdict.decision],
        score=verdict.score,
        metrics=[_metric_result(r) for r in verdict.metrics],
        summary=verdict.summary,
        groups=[pb.GroupScore(name=g.name, score=g.score, weight=g.weight) for g in verdict.groups],
        alpha=verdict.alpha,
    )
    if verdict.load_hint is not None:
        hint = verdict.load_hint
        message.load_hint.CopyFrom(
            pb.LoadHint(
                canary_requests_needed=hint.canary_requests_needed,
                rps=hint.rps,
                seconds=hint.seconds,
            )
        )
    return message


def verdict_json(verdict: pb.Verdict) -> str:
    """The verdict in protobuf's JSON mapping, zero-valued fields included."""
    return json_format.MessageToJson(verdict, always_print_fields_with_no_presence=True, indent=2)
