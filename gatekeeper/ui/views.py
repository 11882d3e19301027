"""What each metric's charts show: both sides per interval, the boundaries, the looks.

- RATIO: the error rate (bad / total) of each interval, per side;
- HISTOGRAM: p50 and p99 of each interval's buckets (Prometheus' ``histogram_quantile``);
- VALUES: the samples of each side, in the order received.

The boundaries are drawn in the metric's unit around the baseline's level over the whole
window, as :mod:`gatekeeper.stats.classify` states its acceptable region: for rates and
quantiles ``level x (1 + tolerance) + absolute`` upwards and ``level / (1 + tolerance) -
absolute`` downwards; for VALUES ``tolerance x |median| + absolute`` either way; the FAIL
and PASS margins are the settings' own (:attr:`MetricSettings.fail_margin` and
:attr:`~MetricSettings.pass_margin`, defaults resolved). They are drawn, never used to
decide.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from gatekeeper.api.v1 import gatekeeper_pb2 as pb
from gatekeeper.stats.model import (
    FloatArray,
    HistogramSeries,
    Margin,
    MetricData,
    MetricSettings,
    RatioSeries,
)
from gatekeeper.stats.model import Series as Data
from gatekeeper.stats.results import Direction, MetricKind
from gatekeeper.stats.tails import histogram_quantile
from gatekeeper.ui.charts import Band, Chart, Level, Series

#: Effect scales on which the relative margins are drawn as ratios (1 + tolerance).
RATIO_SCALES = ("rate_ratio", "quantile_ratio")


def margins(settings: MetricSettings) -> tuple[Margin, Margin]:
    """The FAIL and the PASS margin of a metric, as the judge resolves them."""
    return settings.fail_margin, settings.pass_margin


def _bounds(level: float, margin: Margin, *, kind: MetricKind) -> tuple[float, float]:
    """(downwards, upwards) worst acceptable values around ``level``."""
    if kind is MetricKind.VALUES:
        shift = margin.relative * abs(level) + margin.absolute
        return level - shift, level + shift
    return (
        level / (1.0 + margin.relative) - margin.absolute,
        level * (1.0 + margin.relative) + margin.absolute,
    )


def boundaries(settings: MetricSettings, level: float) -> tuple[Level, ...]:
    """The FAIL and PASS boundaries around the baseline's ``level`` in the harmful direction."""
    if not math.isfinite(level):
        return ()
    return _levels(settings.direction, margins(settings), level=level, kind=settings.kind)


def _levels(
    direction: Direction, pair: Sequence[Margin], *, level: float, kind: MetricKind
) -> tuple[Level, ...]:
    found = []
    for name, margin in zip(("fail", "pass"), pair, strict=True):
        down, up = _bounds(level, margin, kind=kind)
        if direction in (Direction.INCREASE, Direction.EITHER):
            found.append(Level(name.upper(), up, name))
        if direction in (Direction.DECREASE, Direction.EITHER):
            found.append(Level(name.upper(), down, name))
    return tuple(found)


def _rates(bad: FloatArray, total: FloatArray) -> tuple[float, ...]:
    with np.errstate(invalid="ignore", divide="ignore"):
        return tuple(np.where(total > 0, bad / np.where(total > 0, total, 1.0), np.nan).tolist())


def _quantiles(series: HistogramSeries, q: float) -> tuple[float, ...]:
    bounds = series.upper_bounds
    return tuple(
        histogram_quantile(q=q, upper_bounds=bounds, cumulative=row) for row in series.counts
    )


def _whole_quantile(series: HistogramSeries, q: float) -> float:
    if series.counts.shape[0] == 0:
        return math.nan
    merged = series.counts.sum(axis=0)
    return histogram_quantile(q=q, upper_bounds=series.upper_bounds, cumulative=merged)


def _values(series: Data) -> FloatArray:
    return np.asarray(series, dtype=np.float64)


def level_of(data: MetricData) -> float:
    """The baseline's level over the whole window, which the boundaries are drawn around."""
    base = data.baseline
    if isinstance(base, RatioSeries):
        total = float(np.sum(base.total))
        return float(np.sum(base.bad)) / total if total > 0 else math.nan
    if isinstance(base, HistogramSeries):
        return _whole_quantile(base, data.settings.quantile)
    values = _values(base)
    values = values[np.isfinite(values)]
    return float(np.median(values)) if values.size else math.nan


def quantile_name(q: float) -> str:
    """``p99``, ``p50``, ``p99.9``."""
    return f"p{100 * q:.4g}"


def side_series(data: MetricData) -> tuple[Series, ...]:
    """Both sides of one metric as chart series (see the module's list)."""
    kind = data.settings.kind
    found: list[Series] = []
    for side in ("baseline", "canary"):
        series = getattr(data, side)
        if kind is MetricKind.RATIO:
            found.append(Series(f"{side} error rate", side, _rates(series.bad, series.total)))
        elif kind is MetricKind.HISTOGRAM:
            for q in sorted({0.5, 0.99, data.settings.quantile}):
                found.append(Series(f"{side} {quantile_name(q)}", side, _quantiles(series, q)))
        else:
            found.append(Series(f"{side} samples", side, tuple(_values(series).tolist()), True))
    return tuple(found)


def data_chart(
    data: MetricData, *, interval_seconds: float | None, mark: int | None = None
) -> Chart:
    """The chart of both sides over the window, with the FAIL and PASS boundaries.

    ``mark`` is the 0-based interval to mark (where a replay decided); not on VALUES.
    """
    kind = data.settings.kind
    what = {
        MetricKind.RATIO: "error rate per interval",
        MetricKind.HISTOGRAM: "p50 and p99 per interval",
        MetricKind.VALUES: "samples",
    }[kind]
    if kind is MetricKind.VALUES:
        x_label = "sample"
    elif interval_seconds:
        x_label = f"interval ({interval_seconds:g} s each)"
    else:
        x_label = "interval"
    return Chart(
        title=f"{data.settings.name}: {what}, baseline and canary",
        x_label=x_label,
        series=side_series(data),
        levels=boundaries(data.settings, level_of(data)),
        mark=None if mark is None or kind is MetricKind.VALUES else float(mark),
    )


def effect_chart(
    data: MetricData,
    looks: Sequence[tuple[int, pb.Verdict]],
    *,
    mark: int | None = None,
) -> Chart | None:
    """The metric's effect and bounds look by look (with the boundaries on the effect's scale
    where it has them); None without a look."""
    name, settings = data.settings.name, data.settings
    bands, scale = [], ""
    for index, verdict in looks:
        for result in verdict.metrics:
            if result.name == name and result.HasField("effect"):
                effect = result.effect
                scale = effect.scale or scale
                bands.append(Band(float(index), effect.lower, effect.estimate, effect.upper))
    if not bands:
        return None
    levels: tuple[Level, ...] = ()
    if scale in RATIO_SCALES:  # the relative margins only: the absolute ones are in the unit
        relative = [Margin(m.relative, 0.0) for m in margins(settings)]
        levels = _levels(settings.direction, relative, level=1.0, kind=MetricKind.RATIO)
    elif scale in ("relative_shift", "shift"):  # the shift allowed, over the level or not
        level = abs(level_of(data))
        shifts = [Margin(0.0, m.absolute) for m in margins(settings)]
        if scale == "relative_shift" and math.isfinite(level) and level > 0:
            shifts = [Margin(0.0, m.relative + m.absolute / level) for m in margins(settings)]
        levels = _levels(settings.direction, shifts, level=0.0, kind=MetricKind.VALUES)
    return Chart(
        title=f"{name}: effect ({scale or 'canary vs baseline'}) with its bounds, look by look",
        x_label="look",
        bands=tuple(bands),
        levels=levels,
        mark=None if mark is None else float(mark),
        x_start=min(b.x for b in bands) - 0.5,
    )
