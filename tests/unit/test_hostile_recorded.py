"""Recorded replays follow the source rule: unusable counts are refused, naming the row."""

from __future__ import annotations

from pathlib import Path

import pytest

from gatekeeper.errors import InvalidArgument
from gatekeeper.sources.recorded import read_recorded

HEADER = "time,side,metric,bad,total,value,le,count\n"
FINE = "60,baseline,errors,2,1000,,,\n"


@pytest.mark.parametrize(
    ("row", "shown"),
    [
        ("60,canary,errors,NaN,1000,,,", "bad: must be a finite count >= 0"),
        ("60,canary,errors,abc,1000,,,", "bad: not a number ('abc')"),
        ("60,canary,errors,-100,1000,,,", "got -100"),
        ("60,canary,errors,0,+Inf,,,", "total: must be a finite count >= 0"),
        ("60,canary,errors,0,1e308,,,", "at most 1e+12 per interval, got 1e+308"),
        ("60,canary,latency,,,,+Inf,1e15", "count: must be a finite count >= 0"),
    ],
)
def test_unusable_canary_counts_in_a_recording_are_refused_naming_the_line(
    tmp_path: Path, row: str, shown: str
) -> None:
    path = tmp_path / "rollout.csv"
    path.write_text(HEADER + FINE + row + "\n")
    with pytest.raises(InvalidArgument) as caught:
        read_recorded(path)
    found = {v.field: v.description for v in caught.value.violations}
    assert shown in found["line 3"]


def test_a_plausible_recording_is_read(tmp_path: Path) -> None:
    path = tmp_path / "rollout.csv"
    path.write_text(HEADER + FINE + "60,canary,errors,0,1e9,,,\n")
    assert len(read_recorded(path).rows) == 2
