"""Range-query results per pod into RATIO series (gatekeeper.sources.series.ratio)."""

from __future__ import annotations

import numpy as np

from gatekeeper.sources import series
from gatekeeper.sources.base import RangeSeries, Window
from gatekeeper.stats.model import RatioSeries

WINDOW = Window(0.0, 90.0, 30.0)
TIMES = np.array([30.0, 60.0, 90.0])


def _series(values: list[float], **labels: str) -> RangeSeries:
    return RangeSeries(labels=labels, times=TIMES, values=np.array(values))


def test_series_with_a_pod_label_stay_per_pod() -> None:
    total = [_series([10, 10, 10], pod="b"), _series([20, 0, 20], pod="a")]
    bad = [_series([1, 12, 0], pod="b"), _series([3, 1, 0], pod="zombie")]
    fetched = series.ratio(bad, total, WINDOW)
    found = fetched.series
    assert isinstance(found, RatioSeries) and found.pods is not None
    assert found.pods.names == ("a", "b")
    np.testing.assert_array_equal(found.pods.total, [[20, 10], [0, 10], [20, 10]])
    np.testing.assert_array_equal(found.pods.bad, [[0, 1], [0, 10], [0, 0]])
    np.testing.assert_array_equal(found.bad, [1, 10, 0])
    assert any("clamped" in note for note in fetched.notes)
    assert any("without a total" in note for note in fetched.notes)


def test_series_without_a_pod_label_are_summed() -> None:
    total = [_series([10, 10, 10]), _series([5, 5, 5], pod="a")]
    found = series.ratio([_series([1, 0, 0])], total, WINDOW).series
    assert isinstance(found, RatioSeries) and found.pods is None
    np.testing.assert_array_equal(found.total, [15, 15, 15])


def test_no_bad_series_means_no_bad_events_per_pod() -> None:
    found = series.ratio([], [_series([10, 10, 10], pod="a")], WINDOW).series
    assert isinstance(found, RatioSeries) and found.pods is not None
    np.testing.assert_array_equal(found.pods.bad, np.zeros((3, 1)))
