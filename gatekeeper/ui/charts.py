"""Inline SVG charts: pure geometry from numbers to shapes, no I/O and no statistics.

A :class:`Chart` holds series of both sides over the analysis window (one value per
interval, NaN where an interval had no data), horizontal levels (the FAIL and PASS
boundaries) and optionally intervals (an effect's bounds look by look). :func:`svg` lays
them out in a fixed view box; larger values are drawn higher. Where the data come from and
how the boundaries are computed is the caller's business (:mod:`gatekeeper.ui.views`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape

WIDTH, HEIGHT = 640.0, 220.0
LEFT, RIGHT, TOP, BOTTOM = 64.0, 120.0, 16.0, 28.0
#: Stroke colour and dash pattern per side (dashes tell the sides apart without colour).
SIDE_STYLE = {"baseline": ("#1f5fa8", "6 3"), "canary": ("#c2410c", "")}
LEVEL_STYLE = {"fail": "#b91c1c", "pass": "#15803d", "mark": "#6b21a8"}


@dataclass(frozen=True, slots=True)
class Series:
    """One side's values at x = x0, x0 + 1, ... (intervals, sample ranks, looks); NaN is a gap."""

    label: str
    side: str
    values: tuple[float, ...]
    dots: bool = False
    x0: float = 0.0


@dataclass(frozen=True, slots=True)
class Level:
    """A horizontal line: ``kind`` is ``"fail"`` or ``"pass"`` (a boundary)."""

    label: str
    value: float
    kind: str


@dataclass(frozen=True, slots=True)
class Band:
    """An estimate with its bounds at x (a look); infinite bounds are drawn to the edge."""

    x: float
    lower: float
    estimate: float
    upper: float


@dataclass(frozen=True, slots=True)
class Chart:
    """What one chart shows; ``mark`` is an x to mark (the deciding look), if any."""

    title: str
    x_label: str
    series: tuple[Series, ...] = ()
    levels: tuple[Level, ...] = ()
    bands: tuple[Band, ...] = ()
    mark: float | None = None
    x_start: float = 0.0


@dataclass(frozen=True, slots=True)
class Frame:
    """The data ranges mapped onto the plot area."""

    x0: float
    x1: float
    y0: float
    y1: float
    ticks: tuple[float, ...] = field(default=())

    def x(self, value: float) -> float:
        """Horizontal position of ``value``."""
        span = self.x1 - self.x0 or 1.0
        return LEFT + (value - self.x0) / span * (WIDTH - LEFT - RIGHT)

    def y(self, value: float) -> float:
        """Vertical position of ``value`` (larger is higher), clipped to the plot area."""
        span = self.y1 - self.y0 or 1.0
        clipped = min(max(value, self.y0), self.y1)
        return HEIGHT - BOTTOM - (clipped - self.y0) / span * (HEIGHT - TOP - BOTTOM)


def _finite(values: Sequence[float]) -> list[float]:
    return [v for v in values if math.isfinite(v)]


def frame(chart: Chart) -> Frame:
    """The ranges that hold every finite value, level and bound of ``chart``."""
    ys = [v for s in chart.series for v in _finite(s.values)]
    ys += _finite([level.value for level in chart.levels])
    ys += _finite([v for b in chart.bands for v in (b.lower, b.estimate, b.upper)])
    xs = [s.x0 + len(s.values) - 1 for s in chart.series] + [b.x for b in chart.bands]
    xs += [] if chart.mark is None else [chart.mark]
    x0 = min([chart.x_start, *[s.x0 for s in chart.series], *[b.x for b in chart.bands]])
    x1 = max([x0 + 1.0, *xs])
    if not ys:
        return Frame(x0, x1, 0.0, 1.0, (0.0, 1.0))
    low, high = min(ys), max(ys)
    if math.isclose(low, high):
        low, high = low - (abs(low) or 1.0) * 0.5, high + (abs(high) or 1.0) * 0.5
    pad = (high - low) * 0.08
    low = 0.0 if min(ys) >= 0 and low - pad < 0 else low - pad
    return Frame(x0, x1, low, high + pad, (low, (low + high + pad) / 2, high + pad))


def points(series: Series, box: Frame) -> list[list[tuple[float, float]]]:
    """The series' positions, split into runs at gaps (NaN values)."""
    runs: list[list[tuple[float, float]]] = [[]]
    for i, value in enumerate(series.values):
        if not math.isfinite(value):
            if runs[-1]:
                runs.append([])
            continue
        runs[-1].append((round(box.x(series.x0 + i), 2), round(box.y(value), 2)))
    return [run for run in runs if run]


def number(value: float) -> str:
    """A short human number (axis ticks, labels)."""
    if not math.isfinite(value):
        return "inf" if value > 0 else "-inf" if value < 0 else "n/a"
    if value == 0:
        return "0"
    if abs(value) >= 1e4 or abs(value) < 1e-3:
        return f"{value:.2e}"
    return f"{value:.4g}"


def _series_svg(series: Series, box: Frame) -> list[str]:
    colour, dash = SIDE_STYLE.get(series.side, ("#333333", ""))
    label = escape(series.label)
    out = [f'<g class="series" data-side="{escape(series.side)}" data-label="{label}">']
    out.append(f"<title>{label}</title>")
    for run in points(series, box):
        if series.dots or len(run) == 1:
            out += [f'<circle cx="{x}" cy="{y}" r="2.5" fill="{colour}"/>' for x, y in run]
        else:
            coords = " ".join(f"{x},{y}" for x, y in run)
            style = f' stroke-dasharray="{dash}"' if dash else ""
            out.append(
                f'<polyline points="{coords}" fill="none" stroke="{colour}" '
                f'stroke-width="1.8"{style}/>'
            )
    out.append("</g>")
    return out


def _level_svg(level: Level, box: Frame) -> list[str]:
    if not math.isfinite(level.value):
        return []
    y = round(box.y(level.value), 2)
    colour = LEVEL_STYLE.get(level.kind, "#333333")
    label = escape(level.label)
    return [
        f'<g class="level" data-kind="{escape(level.kind)}">'
        f"<title>{label} {escape(number(level.value))}</title>",
        f'<line x1="{LEFT}" y1="{y}" x2="{WIDTH - RIGHT}" y2="{y}" stroke="{colour}" '
        'stroke-width="1.2" stroke-dasharray="2 3"/>',
        f'<text x="{WIDTH - RIGHT + 4}" y="{y + 4}" font-size="10" fill="{colour}">{label}</text>',
        "</g>",
    ]


def _band_svg(band: Band, box: Frame) -> list[str]:
    if any(math.isnan(v) for v in (band.lower, band.estimate, band.upper)):
        return []  # a look without an effect (all of a side's data warm-up, or none)
    x = round(box.x(band.x), 2)
    low, mid, high = (round(box.y(v), 2) for v in (band.lower, band.estimate, band.upper))
    colour = SIDE_STYLE["canary"][0]
    text = escape(f"look {band.x:g}: {number(band.estimate)} [{number(band.lower)}, ")
    text += escape(f"{number(band.upper)}]")
    return [
        f'<g class="band" data-x="{band.x:g}"><title>{text}</title>',
        f'<line x1="{x}" y1="{high}" x2="{x}" y2="{low}" stroke="{colour}" stroke-width="2"/>',
        f'<circle cx="{x}" cy="{mid}" r="3" fill="{colour}"/>',
        "</g>",
    ]


def _axes_svg(chart: Chart, box: Frame) -> list[str]:
    bottom, right = HEIGHT - BOTTOM, WIDTH - RIGHT
    out = [
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{bottom}" stroke="#555"/>',
        f'<line x1="{LEFT}" y1="{bottom}" x2="{right}" y2="{bottom}" stroke="#555"/>',
    ]
    for tick in box.ticks:
        y = round(box.y(tick), 2)
        out.append(
            f'<text x="{LEFT - 4}" y="{y + 3}" font-size="10" text-anchor="end">'
            f"{escape(number(tick))}</text>"
        )
    for value, anchor in ((box.x0, "start"), (box.x1, "end")):
        out.append(
            f'<text x="{round(box.x(value), 2)}" y="{bottom + 12}" font-size="10" '
            f'text-anchor="{anchor}">{escape(number(value))}</text>'
        )
    out.append(
        f'<text x="{(LEFT + right) / 2}" y="{HEIGHT - 4}" font-size="10" text-anchor="middle">'
        f"{escape(chart.x_label)}</text>"
    )
    return out


def _mark_svg(chart: Chart, box: Frame) -> list[str]:
    if chart.mark is None:
        return []
    x = round(box.x(chart.mark), 2)
    colour = LEVEL_STYLE["mark"]
    return [
        f'<g class="mark"><title>decision at {chart.mark:g}</title>',
        f'<line x1="{x}" y1="{TOP}" x2="{x}" y2="{HEIGHT - BOTTOM}" stroke="{colour}" '
        'stroke-width="1.5"/>',
        f'<text x="{x + 3}" y="{TOP + 10}" font-size="10" fill="{colour}">decision</text>',
        "</g>",
    ]


def _legend_svg(chart: Chart) -> list[str]:
    out = []
    for i, series in enumerate(chart.series):
        colour, dash = SIDE_STYLE.get(series.side, ("#333333", ""))
        y = TOP + 8 + 14 * (i + 4)
        style = f' stroke-dasharray="{dash}"' if dash else ""
        out.append(
            f'<line x1="{WIDTH - RIGHT + 4}" y1="{y}" x2="{WIDTH - RIGHT + 20}" y2="{y}" '
            f'stroke="{colour}" stroke-width="2"{style}/>'
        )
        out.append(
            f'<text x="{WIDTH - RIGHT + 24}" y="{y + 3}" font-size="10">'
            f"{escape(series.label)}</text>"
        )
    return out


def merged(levels: Sequence[Level]) -> list[Level]:
    """Levels at the same value drawn once, labelled by all (the PASS boundary on the FAIL one)."""
    found: dict[float, Level] = {}
    for level in levels:
        same = found.get(level.value)
        if same is None:
            found[level.value] = level
        else:
            found[level.value] = Level(f"{same.label}={level.label}", level.value, same.kind)
    return list(found.values())


def svg(chart: Chart) -> str:
    """The chart as an inline ``<svg>`` element (with a ``<title>`` for screen readers)."""
    box = frame(chart)
    body = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
        f'viewBox="0 0 {WIDTH:g} {HEIGHT:g}" width="{WIDTH:g}" height="{HEIGHT:g}">',
        f"<title>{escape(chart.title)}</title>",
        *_axes_svg(chart, box),
        *[part for level in merged(chart.levels) for part in _level_svg(level, box)],
        *[part for series in chart.series for part in _series_svg(series, box)],
        *[part for band in chart.bands for part in _band_svg(band, box)],
        *_mark_svg(chart, box),
        *_legend_svg(chart),
        "</svg>",
    ]
    return "\n".join(body)
