"""Recorded rollouts: the table format, its validation with line numbers, and the judge's series."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gatekeeper import simulate
from gatekeeper.errors import InvalidArgument
from gatekeeper.sources.base import Window
from gatekeeper.sources.recorded import from_table, parse_time, read_recorded
from gatekeeper.stats.model import HistogramSeries, MetricSettings, RatioSeries
from gatekeeper.stats.results import MetricKind

HEADER = "time,side,metric,bad,total,value,le,count\n"
ERRORS = MetricSettings(name="errors", kind=MetricKind.RATIO)
SIMULATED_ERRORS = MetricSettings(name="error-rate", kind=MetricKind.RATIO)
LATENCY = MetricSettings(name="latency", kind=MetricKind.HISTOGRAM)
CPU = MetricSettings(name="cpu", kind=MetricKind.VALUES)
T0 = 1714572000.0  # 2024-05-01T14:00:00Z


def write(tmp_path: Path, body: str, name: str = "rollout.csv") -> Path:
    path = tmp_path / name
    path.write_text(HEADER + body)
    return path


def violations(path: Path) -> dict[str, str]:
    with pytest.raises(InvalidArgument) as caught:
        read_recorded(path)
    return {v.field: v.description for v in caught.value.violations}


# --- times --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("2024-05-01T14:00:00Z", T0),
        ("2024-05-01T16:00:00+02:00", T0),
        ("2024-05-01T14:00:00.250Z", T0 + 0.25),
        ("2024-05-01 14:00:00z", T0),
        ("1714572000", T0),
        ("1714572000.5", T0 + 0.5),
    ],
)
def test_parse_time_takes_rfc3339_and_epoch_seconds(text: str, seconds: float) -> None:
    assert parse_time(text) == seconds


@pytest.mark.parametrize("text", ["2024-05-01T14:00:00", "yesterday", "inf", "", "2024-05-01"])
def test_parse_time_refuses_what_is_neither(text: str) -> None:
    with pytest.raises(ValueError, match="RFC 3339 with a time zone"):
        parse_time(text)


def test_rfc3339_and_epoch_files_read_the_same(tmp_path: Path) -> None:
    rfc = write(
        tmp_path,
        "2024-05-01T14:01:00Z,baseline,errors,1,100,,,\n"
        "2024-05-01T16:01:00+02:00,canary,errors,2,50,,,\n",
        "rfc.csv",
    )
    epoch = write(
        tmp_path,
        f"{T0 + 60:.0f},baseline,errors,1,100,,,\n{T0 + 60:.0f},canary,errors,2,50,,,\n",
        "epoch.csv",
    )
    assert read_recorded(rfc).rows["time"].tolist() == read_recorded(epoch).rows["time"].tolist()
    assert read_recorded(rfc).rows["time"].tolist() == [T0 + 60, T0 + 60]


# --- bad rows -----------------------------------------------------------------------------


def test_bad_rows_are_reported_with_their_line_numbers(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "2024-05-01T14:01:00Z,baseline,errors,1,100,,,\n"  # line 2: fine
        "2024-05-01T14:01:00Z,Canary,errors,1,100,,,\n"  # line 3
        "\n"  # line 4: a blank line is skipped, not an error
        "2024-05-01T14:01:00Z,canary,errors,12,10,,,\n"  # line 5
        "2024-05-01T14:01:00,canary,errors,1,10,,,\n"  # line 6: no time zone
        "2024-05-01T14:01:00Z,canary,errors,1,,,,\n"  # line 7
        "2024-05-01T14:01:00Z,canary,errors,x,10,,,\n"  # line 8
        "2024-05-01T14:01:00Z,canary,errors,-1,10,,,\n"  # line 9
        "2024-05-01T14:01:00Z,,errors,1,10,,,\n"  # line 10
        "2024-05-01T14:01:00Z,canary,errors,1,10,0.5,,\n"  # line 11
        "2024-05-01T14:01:00Z,canary,errors,,,,,\n"  # line 12
        "2024-05-01T14:01:00Z,canary,latency,,,,fast,3\n"  # line 13
        "2024-05-01T14:01:00Z,canary,cpu,,,inf,,\n",  # line 14
    )
    found = violations(path)
    assert set(found) == {f"line {n}" for n in (3, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14)}
    assert "unknown side 'Canary'; allowed: baseline, canary" in found["line 3"]
    assert "bad 12 > total 10" in found["line 5"]
    assert "RFC 3339 with a time zone" in found["line 6"]
    assert "missing total" in found["line 7"]
    assert "bad: not a number ('x')" in found["line 8"]
    assert "bad: must be a finite count >= 0" in found["line 9"]
    assert "got -1" in found["line 9"]
    assert "side: missing" in found["line 10"]
    assert "mixes the data columns" in found["line 11"]
    assert "no data" in found["line 12"]
    assert "le: not a bucket bound ('fast'); allowed: a number or +Inf" in found["line 13"]
    assert "value: must be NaN or finite within" in found["line 14"]


def test_histogram_intervals_are_checked_as_a_whole(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "60,canary,latency,,,,0.1,5\n"  # line 2
        "60,canary,latency,,,,+Inf,3\n"  # line 3: fewer than le 0.1
        "120,canary,latency,,,,0.1,5\n"  # line 4: no +Inf
        "180,canary,latency,,,,0.2,5\n"  # line 5: other bounds than line 2's interval
        "180,canary,latency,,,,+Inf,7\n"
        "180,canary,errors,1,2,,,\n"
        "240,canary,errors,,,,0.1,5\n",  # line 8: errors is RATIO from line 7
    )
    found = violations(path)
    assert found["line 2"] == "buckets are not cumulative: le +Inf counts fewer than le 0.1"
    assert found["line 4"] == 'the buckets of this interval lack le="+Inf"'
    assert "bucket bounds differ from those at line 2" in found["line 5"]
    assert "metric errors has bad,total rows (RATIO) from line 7" in found["line 8"]


def test_missing_columns_are_one_violation(tmp_path: Path) -> None:
    path = tmp_path / "short.csv"
    path.write_text("time,metric,bad,total\n60,errors,1,2\n")
    assert violations(path) == {
        "columns": "short.csv lacks side; a recorded rollout has time, side, metric and "
        "bad,total (RATIO) | value (VALUES) | le,count (HISTOGRAM)"
    }


def test_parquet_rows_are_named_by_row(tmp_path: Path) -> None:
    table = pd.DataFrame(
        {"time": [60.0, 60.0], "side": ["baseline", "nope"], "metric": "errors", "bad": 1.0}
    ).assign(total=[10.0, 10.0])
    path = tmp_path / "bad.parquet"
    table.to_parquet(path)
    assert list(violations(path)) == ["row 2"]


def test_many_bad_rows_are_capped(tmp_path: Path) -> None:
    path = write(tmp_path, "".join(f"{60 * k},canary,errors,5,1,,,\n" for k in range(1, 151)))
    found = violations(path)
    assert len(found) == 101
    assert found["rollout.csv"] == "and 50 more bad rows"


def test_unreadable_files_name_the_file(tmp_path: Path) -> None:
    assert "cannot read" in violations(tmp_path / "missing.csv")["FILE"]


def test_extra_columns_are_ignored_and_per_pod_rows_add_up(tmp_path: Path) -> None:
    path = tmp_path / "pods.csv"
    path.write_text(
        "time,pod,side,metric,bad,total\n"
        "60,a,canary,errors,1,10\n60,b,canary,errors,2,20\n"
        "60,c,baseline,errors,3,30\n120,c,baseline,errors,0,30\n"
    )
    data = read_recorded(path).metric_data([ERRORS], window=Window(0, 120, 60))[0]
    base, can = data.baseline, data.canary
    assert isinstance(base, RatioSeries) and isinstance(can, RatioSeries)
    assert can.bad.tolist() == [3.0, 0.0] and can.total.tolist() == [30.0, 0.0]
    assert base.total.tolist() == [30.0, 30.0]


# --- the judge's series -------------------------------------------------------------------


def test_simulated_traffic_round_trips_through_csv_and_parquet(tmp_path: Path) -> None:
    traffic = simulate.simulate(simulate.Scenario(seconds=300, rps=40, seed=3))
    for name, rfc3339 in (("t.csv", True), ("t.parquet", False)):
        path = simulate.write_recorded(traffic, tmp_path / name, start=T0, rfc3339=rfc3339)
        rollout = read_recorded(path)
        window = rollout.window(interval_seconds=15)
        assert window.start == T0 and window.points == 20
        errors, latency = rollout.metric_data([SIMULATED_ERRORS, LATENCY], window=window)
        assert isinstance(errors.canary, RatioSeries)
        assert isinstance(errors.baseline, RatioSeries)
        np.testing.assert_array_equal(errors.canary.bad, traffic.canary.errors)
        np.testing.assert_array_equal(errors.baseline.total, traffic.baseline.requests)
        assert isinstance(latency.canary, HistogramSeries)
        np.testing.assert_array_equal(latency.canary.upper_bounds, simulate.BUCKETS)
        np.testing.assert_array_equal(latency.canary.counts, traffic.canary.buckets)


def test_a_coarser_interval_sums_the_recorded_steps() -> None:
    traffic = simulate.simulate(simulate.Scenario(seconds=300, rps=40, seed=4))
    rollout = from_table(simulate.recorded_table(traffic, start=T0))
    window = rollout.window(interval_seconds=60)
    assert window.points == 5
    grid = rollout.grid([SIMULATED_ERRORS], window=window)
    look2 = grid.upto(2)[0].canary
    assert isinstance(look2, RatioSeries)
    per_minute = traffic.canary.errors.reshape(5, 4).sum(axis=1)
    assert look2.bad.tolist() == per_minute[:2].tolist()


def test_values_keep_every_sample_and_cut_by_time(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "60,canary,cpu,,,1.0,,\n60,canary,cpu,,,2.0,,\n120,canary,cpu,,,3.0,,\n"
        "120,baseline,cpu,,,4.0,,\n180,canary,cpu,,,NaN,,\n",  # NaN written out is a value
    )
    grid = read_recorded(path).grid([CPU], window=Window(0, 180, 60))
    assert grid.upto(1)[0].canary.tolist() == [1.0, 2.0]  # type: ignore[union-attr]
    assert grid.upto(2)[0].canary.tolist() == [1.0, 2.0, 3.0]  # type: ignore[union-attr]
    assert np.isnan(grid.upto(3)[0].canary[-1])  # type: ignore[index]
    assert grid.upto(3)[0].baseline.tolist() == [4.0]  # type: ignore[union-attr]


def test_no_canary_rows_is_a_silent_canary_not_an_error() -> None:
    traffic = simulate.simulate(
        simulate.Scenario(seconds=120, fault=simulate.Fault(simulate.FaultKind.SILENT))
    )
    rollout = from_table(simulate.recorded_table(traffic, start=T0))
    assert rollout.silent_canary
    window = rollout.window(interval_seconds=60)
    data = rollout.metric_data([SIMULATED_ERRORS], window=window)[0]
    assert isinstance(data.canary, RatioSeries)
    assert data.canary.total.tolist() == [0.0, 0.0]


def test_a_metric_judged_as_another_kind_is_refused() -> None:
    table = pd.DataFrame({"time": [60.0], "side": "canary", "metric": "errors"}).assign(
        bad=1.0, total=2.0
    )
    rollout = from_table(table)
    wrong = MetricSettings(name="errors", kind=MetricKind.HISTOGRAM)
    with pytest.raises(InvalidArgument) as caught:
        rollout.grid([wrong], window=Window(0, 60, 60))
    assert caught.value.violations[0].field == "metric errors"
    assert "judged as HISTOGRAM" in caught.value.violations[0].description


def test_a_metric_missing_from_the_file_is_noted() -> None:
    table = pd.DataFrame({"time": [60.0], "side": "canary", "metric": "errors"}).assign(
        bad=1.0, total=2.0
    )
    data = from_table(table).metric_data([LATENCY], window=Window(0, 60, 60))[0]
    assert data.notes == ("no rows for latency in table (metrics there: errors)",)
    assert isinstance(data.canary, HistogramSeries) and data.canary.counts.shape == (1, 1)


def test_window_defaults_cover_the_recording() -> None:
    table = pd.DataFrame(
        {"time": [T0 + 15, T0 + 30, T0 + 100], "side": "canary", "metric": "errors"}
    ).assign(bad=0.0, total=1.0)
    window = from_table(table).window(interval_seconds=60)
    assert window.start == T0  # the first row covers the 15 s before it
    assert window.points == 2  # whole looks up to the last row
    explicit = from_table(table).window(interval_seconds=30, start=T0 + 30, end=T0 + 90)
    assert (explicit.start, explicit.points) == (T0 + 30, 2)


def test_values_beyond_the_statistics_range_are_bad_rows_not_internal_errors(
    tmp_path: Path,
) -> None:
    path = tmp_path / "huge.csv"
    path.write_text(
        "time,side,metric,bad,total,value,le,count\n"
        "2024-05-01T14:01:00Z,baseline,cpu,,,-1e308,,\n"
        "2024-05-01T14:01:00Z,canary,cpu,,,1e308,,\n"
    )
    with pytest.raises(InvalidArgument) as raised:
        read_recorded(path)
    assert "line 3: value: must be NaN or finite within [-1e+100, 1e+100]" in str(raised.value)
