"""The pages read in a terminal browser (Debian's w3m): every number a chart shows is text."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest

from gatekeeper import engine, wire
from gatekeeper.api.v1 import gatekeeper_pb2 as pb
from gatekeeper.present import decision_name
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
