"""The pages read in a terminal browser (Debian's w3m): every number a chart shows is text."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from gatekeeper import engine, wire
from gatekeeper.api.v1 import gatekeeper_pb2 as pb
from gatekeeper.present import decision_name
from gatekeeper.stats.model import JudgeSettings, MetricData, MetricSettings, RatioSeries
from gatekeeper.stats.results import MetricKind
from gatekeeper.ui import charts, pages
from gatekeeper.ui.routes import page_of
from gatekeeper.ui.store import VerdictStore, judge_entry

ROOT = Path(__file__).resolve().parents[2]


def _dump(html: str, folder: Path) -> str:
    w3m = shutil.which("w3m")
    if w3m is None:
        pytest.skip("w3m is not installed (apt-get install w3m)")
    page = folder / "page.html"
    page.write_text(html, encoding="utf-8")
    done = subprocess.run(
        [w3m, "-dump", "-cols", "120", "-T", "text/html", str(page)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout


@pytest.mark.parametrize("example", ["error-regression", "p99-regression", "quiet-canary"])
def test_a_terminal_browser_shows_the_decision_outcomes_boundaries_and_numbers(
    example: str, tmp_path: Path
) -> None:
    request = wire.parse_judge_request(
        (ROOT / "examples" / f"{example}.json").read_bytes(), json=True
    )
    given = wire.judge_input(request)
    verdict = wire.verdict_message(engine.judge(given.metrics, given.settings))
    store = VerdictStore(5)
    entry = judge_entry("t1", at=time.time(), request=request, verdict=verdict)
    store.add(entry)
    text = _dump(pages.verdict_page(page_of(entry, store, prometheus=None, home="/ui/")), tmp_path)
    lines = [" ".join(line.split()) for line in text.splitlines()]
    decision = decision_name(verdict.decision)
    assert any(line.startswith(decision) for line in lines[:5]), lines[:5]
    assert not any(tag in text for tag in ("<svg", "<g ", "<polyline", "<td", "</"))
    for result in verdict.metrics:
        outcome = pb.Outcome.Name(result.outcome).removeprefix("OUTCOME_")
        assert f"{result.name}: {outcome}" in " ".join(lines)
        for side in ("baseline", "canary"):
            summary = getattr(result, side)
            row = f"{side} {charts.number(summary.count)} {charts.number(summary.rate)}"
            assert any(line.startswith(row) for line in lines), (row, lines)
    assert sum("Boundaries around the baseline's level" in line for line in lines) == len(
        verdict.metrics
    )


def test_an_error_verdict_says_the_data_could_not_be_had(tmp_path: Path) -> None:
    settings = MetricSettings(name="error-rate", kind=MetricKind.RATIO)
    empty = RatioSeries(bad=np.zeros(0), total=np.zeros(0))
    down = MetricData(settings, empty, empty, error="Prometheus at 127.0.0.1:9 refused")
    verdict = wire.verdict_message(engine.judge([down], JudgeSettings()))
    assert verdict.decision == pb.DECISION_ERROR
    page = pages.Page(
        ident="e1",
        call="Analyze",
        at=time.time(),
        label="checkout",
        verdict=verdict,
        metrics=(down,),
    )
    text = " ".join(_dump(pages.verdict_page(page), tmp_path).split())
    assert text.startswith("ERROR checkout")
    assert "The data could not be had: Prometheus at 127.0.0.1:9 refused" in text
    assert "No boundary is drawn" in text


def test_names_and_reasons_are_escaped(tmp_path: Path) -> None:
    hostile = "<script>alert(1)</script>"
    settings = MetricSettings(name=hostile, kind=MetricKind.RATIO)
    series = RatioSeries(bad=np.array([1.0, 2.0]), total=np.array([100.0, 100.0]))
    data = MetricData(settings, series, series, queries=(f"canary: up{{x={hostile!r}}}",))
    verdict = wire.verdict_message(engine.judge([data], JudgeSettings()))
    page = pages.Page(
        ident=hostile,
        call="Judge",
        at=time.time(),
        label=hostile,
        verdict=verdict,
        metrics=(data,),
        prometheus="http://127.0.0.1:9090",
    )
    html = pages.verdict_page(page)
    assert "<script" not in html
    assert hostile in _dump(html, tmp_path)  # shown as text
