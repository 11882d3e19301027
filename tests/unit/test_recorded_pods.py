"""The recorded table's optional pod column: RATIO counts kept per pod for the judge."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gatekeeper.errors import InvalidArgument
from gatekeeper.sources.base import Window
from gatekeeper.sources.recorded import read_recorded
from gatekeeper.stats.model import MetricSettings, RatioSeries
from gatekeeper.stats.results import MetricKind

ERRORS = MetricSettings(name="errors", kind=MetricKind.RATIO)
CPU = MetricSettings(name="cpu", kind=MetricKind.VALUES)


def test_pod_rows_are_kept_per_pod_and_add_up(tmp_path: Path) -> None:
    path = tmp_path / "pods.csv"
    path.write_text(
        "time,side,metric,bad,total,pod\n"
        "60,baseline,errors,1,10,b-0\n60,baseline,errors,2,20,b-1\n"
        "90,baseline,errors,1,5,b-1\n120,baseline,errors,0,30,b-0\n"
        "60,canary,errors,4,40,c-0\n"
    )
    rollout = read_recorded(path)
    data = rollout.metric_data([ERRORS], window=Window(0, 120, 60))[0]
    base, can = data.baseline, data.canary
    assert isinstance(base, RatioSeries) and base.pods is not None
    assert base.pods.names == ("b-0", "b-1")
    np.testing.assert_array_equal(base.pods.bad, [[1, 2], [0, 1]])
    np.testing.assert_array_equal(base.pods.total, [[10, 20], [30, 5]])
    assert base.bad.tolist() == [3.0, 1.0] and base.total.tolist() == [30.0, 35.0]
    assert isinstance(can, RatioSeries) and can.pods is not None and can.pods.count == 1
    first = rollout.grid([ERRORS], window=Window(0, 120, 60)).upto(1)[0].baseline
    assert isinstance(first, RatioSeries) and first.pods is not None
    assert first.pods.bad.shape == (1, 2)


def test_a_side_without_pods_stays_aggregate(tmp_path: Path) -> None:
    path = tmp_path / "mixed.csv"
    path.write_text(
        "time,side,metric,bad,total,pod\n60,baseline,errors,1,10,b-0\n60,canary,errors,1,10,\n"
    )
    data = read_recorded(path).metric_data([ERRORS], window=Window(0, 60, 60))[0]
    assert isinstance(data.canary, RatioSeries) and data.canary.pods is None
    assert isinstance(data.baseline, RatioSeries) and data.baseline.pods is not None


def test_a_side_that_names_pods_on_some_rows_only_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "partial.csv"
    path.write_text(
        "time,side,metric,bad,total,pod\n60,baseline,errors,1,10,b-0\n120,baseline,errors,1,10,\n"
    )
    with pytest.raises(InvalidArgument) as caught:
        read_recorded(path)
    found = {v.field: v.description for v in caught.value.violations}
    assert "pod: missing" in found["line 3"] and "line 2" in found["line 3"]


def test_values_rows_with_pods_keep_every_sample(tmp_path: Path) -> None:
    path = tmp_path / "cpu.csv"
    path.write_text(
        "time,side,metric,value,pod\n60,baseline,cpu,0.5,b-0\n60,baseline,cpu,0.7,b-1\n"
        "60,canary,cpu,0.6,c-0\n"
    )
    data = read_recorded(path).metric_data([CPU], window=Window(0, 60, 60))[0]
    assert sorted(np.asarray(data.baseline).tolist()) == [0.5, 0.7]
