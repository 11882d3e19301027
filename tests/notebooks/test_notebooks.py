"""Execute the notebooks headless (nbclient, the venv's python3 kernel, Agg) and check what they computed.

Each notebook ends with a cell tagged ``results`` that prints its replay results as JSON;
the tests compare them with the same replays run here and with counts taken straight from
the data files.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import nbformat
import pandas as pd
import pytest
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_notebook

from gatekeeper import replay
from gatekeeper.sources.recorded import read_recorded
from gatekeeper.spec import load_spec

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
DATA = NOTEBOOKS / "data"


@pytest.fixture(autouse=True)
def _headless(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MPLBACKEND", "Agg")


def execute(book: nbformat.NotebookNode) -> nbformat.NotebookNode:
    client = NotebookClient(
        book,
        kernel_name="python3",
        timeout=120,
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    client.execute()
    return book


def results(name: str) -> dict[str, Any]:
    """Run a notebook (each cell within nbclient's timeout); the JSON its ``results`` cell printed."""
    # nbformat's reader and v4 constructors are unannotated; they build a NotebookNode.
    book: nbformat.NotebookNode = nbformat.read(NOTEBOOKS / name, as_version=4)  # type: ignore[no-untyped-call]
    execute(book)
    for cell in book.cells:
        if "results" in cell.get("metadata", {}).get("tags", []):
            text = "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
            found: dict[str, Any] = json.loads(text)
            return found
    raise AssertionError(f"{name} has no cell tagged results")


def test_the_kernel_is_the_venv_python() -> None:
    book: nbformat.NotebookNode = new_notebook(  # type: ignore[no-untyped-call]
        cells=[new_code_cell("import sys; print(sys.prefix)")]  # type: ignore[no-untyped-call]
    )
    execute(book)
    assert book.cells[0].outputs[0]["text"].strip() == sys.prefix


def test_replay_historic_rollout() -> None:
    found = results("replay-historic-rollout.ipynb")
    spec = load_spec((DATA / "spec.yaml").read_text(), queries=False)
    expected = replay.replay_recorded(spec, read_recorded(DATA / "historic-rollout.csv"))
    assert found["decision"] == "FAIL"
    assert found["decision"] == expected.summary.decision.value
    assert found["decided_after_seconds"] == expected.summary.decided_after_seconds
    assert found["looks"] == expected.summary.looks
    # the errors start at minute 5: the rollback comes after that, within the window
    assert 300 < found["decided_after_seconds"] <= 1200
    assert found["first_fail_seconds"] == found["decided_after_seconds"]
    # canary errors served up to the rollback, counted straight from the file
    table = pd.read_csv(DATA / "historic-rollout.csv")
    table["time"] = pd.to_datetime(table["time"], utc=True)
    decided = pd.Timestamp(found["start"] + found["decided_after_seconds"], unit="s", tz="UTC")
    served = table[
        (table["side"] == "canary") & (table["metric"] == "error-rate") & (table["time"] <= decided)
    ]
    assert found["canary_bad_before_decision"] == served["bad"].sum()
    assert found["canary_requests_before_decision"] == served["total"].sum()


def test_tune_tolerances() -> None:
    found = results("tune-tolerances.ipynb")
    spec = load_spec((DATA / "spec.yaml").read_text(), queries=False)
    rollouts = replay.read_labelled(DATA / "labelled" / "index.csv")
    here = replay.evaluate(spec, rollouts, workers=1)  # in this process: same results
    assert found["evaluation"] == here.rates()
    by_name = {row["name"]: row for row in found["results"]}
    for row in here.results.itertuples(index=False):
        assert by_name[row.name]["decision"] == row.decision
    assert found["evaluation"]["false_rollback_rate"] == 0.0
    assert all(by_name[r.name]["decision"] == "FAIL" for r in rollouts if "errors-x10" in r.name)
    sweep = pd.DataFrame(found["sweep"])
    assert list(sweep["tolerance"]) == [0.1, 0.25, 0.5, 1.0, 2.0, 4.0]
    assert (sweep["false_rollback_rate"] == 0.0).all()
    # a tolerance of 4 (5x allowed) lets the x1.5 to x4 regressions through
    assert sweep["catch_rate"].iloc[-1] < sweep["catch_rate"].iloc[0]
