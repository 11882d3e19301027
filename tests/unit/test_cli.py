"""`gatekeeper judge`: verdicts and exit codes, as a separate process the way CI jobs call it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gatekeeper import cli, engine
from tests.process import gatekeeper

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


@pytest.mark.parametrize(
    ("example", "decision", "code"),
    [
        ("healthy", "DECISION_PASS", 0),
        ("zero-error-healthy", "DECISION_PASS", 0),
        ("error-regression", "DECISION_FAIL", 1),
        ("p99-regression", "DECISION_FAIL", 1),
        ("sparse-errors", "DECISION_FAIL", 1),
        ("quiet-canary", "DECISION_INCONCLUSIVE", 2),
    ],
)
def test_judge_examples_json(example: str, decision: str, code: int) -> None:
    done = gatekeeper("judge", str(EXAMPLES / f"{example}.json"), "--output", "json")
    assert done.returncode == code, done.stderr
    verdict = json.loads(done.stdout)
    assert verdict["decision"] == decision
    assert verdict["summary"]
    for metric in verdict["metrics"]:
        assert set(metric) >= {
            "name",
            "outcome",
            "pValue",
            "effect",
            "baseline",
            "canary",
            "reason",
        }


def test_table_output_shows_outcome_effect_and_reason() -> None:
    done = gatekeeper("judge", str(EXAMPLES / "error-regression.json"))
    assert done.returncode == 1
    assert "error-rate" in done.stdout and "HIGH" in done.stdout
    assert "rate_ratio" in done.stdout
    assert "regression beyond the FAIL boundary (rolled back beyond +20%" in done.stdout
    assert "promoted only below +100% + 0.0005" in done.stdout


def test_quiet_canary_table_shows_the_load_hint() -> None:
    done = gatekeeper("judge", str(EXAMPLES / "quiet-canary.json"))
    assert done.returncode == 2
    assert "load hint:" in done.stdout


@pytest.mark.parametrize("name", ["bad-input", "unknown-enum"])
def test_bad_input_exits_4_naming_the_field_without_a_traceback(name: str) -> None:
    done = gatekeeper("judge", str(EXAMPLES / "invalid" / f"{name}.json"))
    assert done.returncode == 4
    assert "metrics[0]" in done.stderr
    assert "Traceback" not in done.stderr


def test_bad_input_lists_every_violation() -> None:
    done = gatekeeper("judge", str(EXAMPLES / "invalid" / "bad-input.json"))
    assert "metrics[0].config.tolerance" in done.stderr
    assert "metrics[0].baseline.counts[1]" in done.stderr
    assert "metrics[0].canary.counts[0]" in done.stderr


def test_usage_errors_exit_4(tmp_path: Path) -> None:
    assert gatekeeper("judge").returncode == 4
    assert gatekeeper("frobnicate").returncode == 4
    assert gatekeeper("judge", str(tmp_path / "missing.json")).returncode == 4
    notjson = tmp_path / "x.json"
    notjson.write_text("{not json")
    done = gatekeeper("judge", str(notjson))
    assert done.returncode == 4 and "Traceback" not in done.stderr


def test_unexpected_exception_exits_3_without_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(engine, "judge", broken)
    code = cli.main(["judge", str(EXAMPLES / "healthy.json")])
    err = capsys.readouterr().err
    assert code == 3
    assert "internal error: RuntimeError" in err
    assert "Traceback" not in err and "disk on fire" not in err


def test_compare_shows_where_kayenta_mode_passes_what_the_default_mode_fails() -> None:
    done = gatekeeper(
        "judge", "--compare", str(EXAMPLES / "kayenta" / "sparse-errors-compare.json")
    )
    assert done.returncode == 1  # the default mode's decision
    assert "default mode: FAIL" in done.stdout and "KAYENTA mode: PASS" in done.stdout
    row = next(line for line in done.stdout.splitlines() if line.startswith("error-rate  "))
    assert "HIGH" in row and "PASS" in row and row.rstrip().endswith("!")


def test_compare_json_lists_both_verdicts_and_the_differences() -> None:
    done = gatekeeper("judge", "--compare", "--output", "json", str(EXAMPLES / "healthy.json"))
    report = json.loads(done.stdout)
    assert report["default"]["decision"] == "DECISION_PASS"
    assert {d["metric"] for d in report["differences"]} == {
        "error-rate",
        "latency-p99",
        "cpu-per-pod",
    }


def test_import_kayenta_prints_a_spec_and_notes(tmp_path: Path) -> None:
    out = tmp_path / "spec.yaml"
    done = gatekeeper(
        "import-kayenta", str(EXAMPLES / "kayenta" / "canary-config.json"), "-o", str(out)
    )
    assert done.returncode == 0, done.stderr
    assert "mode: KAYENTA" in out.read_text()
    assert "note: metric latency: its atlas query cannot be carried over" in done.stderr
    bad = tmp_path / "bad.json"
    bad.write_text('{"metrics": []}')
    assert gatekeeper("import-kayenta", str(bad)).returncode == 4
