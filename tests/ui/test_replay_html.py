"""``gatekeeper replay --html FILE``: one self-contained page, checked in a real chromium."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from gatekeeper import cli, simulate
from gatekeeper.simulate import Fault, FaultKind, Scenario
from tests.ui.browser import assert_not_blank, load_all

T0 = 1714572000.0  # 2024-05-01T14:00:00Z
SPEC = """
interval: 1m
metrics:
  - {name: error-rate, kind: RATIO, critical: true}
  - {name: latency, kind: HISTOGRAM, quantile: 0.99, critical: true}
"""


def test_a_replayed_rollout_page_has_the_timeline_and_the_decision_marked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario = Scenario(
        seconds=900.0,
        rps=100.0,
        canary_weight=0.25,
        pods_canary=2,
        fault=Fault(FaultKind.ERRORS, 10.0, onset_seconds=120.0),
        seed=3,
    )
    recorded = simulate.write_recorded(simulate.simulate(scenario), tmp_path / "r.csv", start=T0)
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC)
    page = tmp_path / "replay.html"
    argv = ["replay", str(recorded), "--spec", str(spec), "--every-look", "--html", str(page)]
    assert cli.main(argv) == 1
    headline = capsys.readouterr().out.splitlines()[0]
    looks = int(re.search(r"look (\d+) of (\d+)", headline).group(1))  # type: ignore[union-attr]
    text = page.read_text(encoding="utf-8")
    # one file: nothing to fetch, no script
    assert not re.search(r"<script|<link|<img|src=|@import|url\(", text, re.IGNORECASE)
    loaded = asyncio.run(load_all({"replay": page.as_uri()}, tmp_path))["replay"]
    assert loaded.errors == []
    facts = loaded.facts
    assert facts["decision"] == "FAIL"
    assert {m["name"] for m in facts["metrics"]} == {"error-rate", "latency"}
    for metric in facts["metrics"]:
        assert {s["side"] for s in metric["sides"] if s["shapes"]} == {"baseline", "canary"}
        # every replayed look with an effect; the first two (minutes) hold only warm-up data
        assert metric["bands"] == 15 - 2
    # the timeline, each data chart and each look-by-look chart mark the decision
    assert facts["marks"] == 1 + 2 * 2
    assert f"<td>{looks} (decision)</td>" in text
    assert_not_blank(loaded.screenshot)


def test_an_unwritable_html_file_is_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario = Scenario(seconds=300.0, rps=50.0, canary_weight=0.25, seed=1)
    recorded = simulate.write_recorded(simulate.simulate(scenario), tmp_path / "r.csv", start=T0)
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC)
    argv = ["replay", str(recorded), "--spec", str(spec), "--html", str(tmp_path / "no" / "x.html")]
    assert cli.main(argv) == 4
    assert "--html" in capsys.readouterr().err
