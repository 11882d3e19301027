"""The SVG's geometry follows the data (gatekeeper.ui.charts), and boundaries follow settings."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from gatekeeper import engine, wire
from gatekeeper.stats.model import (
    HistogramSeries,
    JudgeSettings,
    LookPosition,
    MetricData,
    MetricSettings,
    RatioSeries,
)
from gatekeeper.stats.results import Direction, MetricKind
from gatekeeper.ui import charts, views

SVG = "{http://www.w3.org/2000/svg}"


def _side_points(svg: str, side: str) -> list[tuple[float, float]]:
    root = ET.fromstring(svg)
    found: list[tuple[float, float]] = []
    for group in root.iter(f"{SVG}g"):
        if group.get("data-side") != side:
            continue
        for line in group.iter(f"{SVG}polyline"):
            found += [tuple(map(float, p.split(","))) for p in line.get("points", "").split()]  # type: ignore[misc]
        found += [
            (float(c.get("cx", 0)), float(c.get("cy", 0))) for c in group.iter(f"{SVG}circle")
        ]
    return found


def _ratio(bad: list[float], total: list[float]) -> RatioSeries:
    return RatioSeries(bad=np.array(bad, dtype=float), total=np.array(total, dtype=float))


@pytest.mark.parametrize("peak", [0, 3, 7])
def test_the_highest_canary_error_rate_is_drawn_highest(peak: int) -> None:
    rng = np.random.default_rng(peak)
    total = [1000.0] * 8
    canary_bad = list(rng.integers(1, 20, size=8).astype(float))
    canary_bad[peak] = 90.0
    data = MetricData(
        MetricSettings(name="errors", kind=MetricKind.RATIO),
        baseline=_ratio([2.0] * 8, total),
        canary=_ratio(canary_bad, total),
    )
    svg = charts.svg(views.data_chart(data, interval_seconds=60))
    points = _side_points(svg, "canary")
    assert len(points) == 8
    xs = [x for x, _ in points]
    assert xs == sorted(xs)  # later intervals further right
    ys = [y for _, y in points]
    assert ys.index(min(ys)) == peak  # SVG y grows downwards: highest is smallest y
    # Every canary point is drawn above the flat baseline except where its rate is lower.
    baseline_y = _side_points(svg, "baseline")[0][1]
    for (_, y), bad in zip(points, canary_bad, strict=True):
        assert (y < baseline_y) == (bad > 2.0)


def test_order_of_heights_follows_the_order_of_values() -> None:
    values = (0.5, 3.0, 1.0, 2.0, 0.0)
    chart = charts.Chart("c", "x", series=(charts.Series("canary", "canary", values),))
    ys = [y for _, y in _side_points(charts.svg(chart), "canary")]
    assert sorted(range(5), key=lambda i: ys[i]) == sorted(range(5), key=lambda i: -values[i])


def test_an_interval_without_data_is_a_gap_not_a_zero() -> None:
    chart = charts.Chart(
        "c", "x", series=(charts.Series("canary", "canary", (1.0, 2.0, math.nan, 3.0, 4.0)),)
    )
    runs = charts.points(chart.series[0], charts.frame(chart))
    assert [len(run) for run in runs] == [2, 2]
    root = ET.fromstring(charts.svg(chart))
    assert len(list(root.iter(f"{SVG}polyline"))) == 2


def _by_kind(levels: tuple[charts.Level, ...]) -> dict[str, list[float]]:
    found: dict[str, list[float]] = {}
    for level in levels:
        found.setdefault(level.kind, []).append(level.value)
    return {kind: sorted(values) for kind, values in found.items()}


def test_boundaries_sit_where_the_settings_put_them_in_the_harmful_direction() -> None:
    up = MetricSettings(name="e", kind=MetricKind.RATIO, tolerance=0.2, absolute_tolerance=0.001)
    found = _by_kind(views.boundaries(up, 0.01))
    assert found["fail"] == pytest.approx([0.01 * 1.2 + 0.001])
    # the default PASS margin: 2x, and the absolute part widened to the FAIL one's 0.001
    assert found["pass"] == pytest.approx([0.01 * 2.0 + 0.001])
    explicit = MetricSettings(
        name="e", kind=MetricKind.RATIO, pass_tolerance=0.5, pass_absolute_tolerance=0.002
    )
    assert _by_kind(views.boundaries(explicit, 0.01))["pass"] == pytest.approx([0.017])
    down = MetricSettings(name="t", kind=MetricKind.VALUES, direction=Direction.DECREASE)
    assert _by_kind(views.boundaries(down, 100.0)) == {
        "fail": pytest.approx([80.0]),
        "pass": pytest.approx([50.0]),
    }
    either = MetricSettings(name="q", kind=MetricKind.HISTOGRAM, direction=Direction.EITHER)
    assert _by_kind(views.boundaries(either, 1.2)) == {
        "fail": pytest.approx([1.0, 1.44]),
        "pass": pytest.approx([0.8, 1.8]),
    }


def test_a_pass_boundary_on_the_fail_one_is_drawn_once_and_named_by_both() -> None:
    same = MetricSettings(
        name="e", kind=MetricKind.RATIO, pass_tolerance=0.2, pass_absolute_tolerance=0.0
    )
    (level,) = charts.merged(views.boundaries(same, 0.01))
    assert level.label == "FAIL=PASS" and level.value == pytest.approx(0.012)


def test_a_boundary_above_the_data_is_inside_the_frame_and_above_every_point() -> None:
    chart = charts.Chart(
        "c",
        "x",
        series=(charts.Series("baseline", "baseline", (1.0, 1.1, 0.9)),),
        levels=(charts.Level("FAIL above", 5.0, "fail"),),
    )
    root = ET.fromstring(charts.svg(chart))
    (group,) = [g for g in root.iter(f"{SVG}g") if g.get("data-kind") == "fail"]
    (line,) = list(group.iter(f"{SVG}line"))
    level_y = float(line.get("y1", 0))
    assert charts.TOP <= level_y < min(y for _, y in _side_points(charts.svg(chart), "baseline"))


def test_effect_bands_follow_the_looks_and_infinite_bounds_reach_the_edge() -> None:
    chart = charts.Chart(
        "effect",
        "look",
        bands=(charts.Band(1, 0.2, 1.0, math.inf), charts.Band(2, 1.5, 2.0, 2.6)),
        mark=2.0,
        x_start=0.5,
    )
    root = ET.fromstring(charts.svg(chart))
    bands = [g for g in root.iter(f"{SVG}g") if g.get("class") == "band"]
    first, second = (next(iter(g.iter(f"{SVG}circle"))) for g in bands)
    assert float(first.get("cx", 0)) < float(second.get("cx", 0))
    assert float(second.get("cy", 0)) < float(first.get("cy", 0))  # estimate 2 above 1
    top = float(next(iter(bands[0].iter(f"{SVG}line"))).get("y1", 0))
    assert top == pytest.approx(charts.TOP)  # +inf drawn to the top edge
    assert [g for g in root.iter(f"{SVG}g") if g.get("class") == "mark"]


def test_text_is_escaped() -> None:
    chart = charts.Chart("<b>&", "x", series=(charts.Series("a<script>", "canary", (1.0,)),))
    svg = charts.svg(chart)
    assert "<script>" not in svg and "<b>" not in svg
    ET.fromstring(svg)


def test_a_values_metrics_looks_carry_the_shift_boundaries_and_a_tail_its_quantile() -> None:
    rng = np.random.default_rng(5)
    settings = MetricSettings(name="cpu", kind=MetricKind.VALUES, tolerance=0.2)
    data = MetricData(settings, rng.normal(100, 5, 40), rng.normal(130, 5, 40))
    verdicts = []
    for look in (1, 2):
        verdict = engine.judge([data], JudgeSettings(look=LookPosition(look, 2)))
        verdicts.append((look, wire.verdict_message(verdict)))
    assert verdicts[-1][1].metrics[0].effect.scale == "relative_shift"
    chart = views.effect_chart(data, verdicts, mark=2)
    assert chart is not None and len(chart.bands) == 2
    fail = [lv.value for lv in chart.levels if lv.kind == "fail"]
    assert fail == pytest.approx([0.2], rel=0.05)  # 0.2 of the baseline's level, as a share
    assert all(b.lower > fail[0] for b in chart.bands)  # a 30 % shift is drawn beyond it
    tail = MetricSettings(name="lat", kind=MetricKind.HISTOGRAM, quantile=0.95)
    bounds = np.array([0.1, 0.2, 0.5, np.inf])
    hist = HistogramSeries(bounds, np.array([[50.0, 90.0, 99.0, 100.0]] * 3))
    labels = [s.label for s in views.side_series(MetricData(tail, hist, hist))]
    assert labels == [
        f"{side} {q}" for side in ("baseline", "canary") for q in ("p50", "p95", "p99")
    ]


def test_a_look_without_an_effect_draws_no_band() -> None:
    box = charts.Frame(x0=1.0, x1=3.0, y0=0.0, y1=2.0)
    nothing = charts.Band(x=1.0, estimate=math.nan, lower=math.nan, upper=math.nan)
    assert charts._band_svg(nothing, box) == []
    drawn = charts._band_svg(charts.Band(x=2.0, estimate=1.0, lower=0.5, upper=math.inf), box)
    assert drawn and "nan" not in "".join(drawn)
