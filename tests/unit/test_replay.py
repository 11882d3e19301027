"""Replays of simulated rollouts: decisions, timing, bad-request counts, evaluation and the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TypedDict

import numpy as np
import pytest

from gatekeeper import cli, engine, replay, simulate
from gatekeeper.errors import InvalidArgument
from gatekeeper.simulate import Fault, FaultKind, Scenario
from gatekeeper.sources.base import Window
from gatekeeper.sources.recorded import RecordedRollout, from_table, read_recorded
from gatekeeper.spec import load_spec
from gatekeeper.stats.model import LookPosition
from gatekeeper.stats.results import Decision

T0 = 1714572000.0  # 2024-05-01T14:00:00Z
# These tests judge the statistics look by look on traffic without a slow start; the
# warm-up rule has its own tests (tests/unit/test_warmup.py), so it is off here.
SPEC_TEXT = """
interval: 1m
warmup: 0s
metrics:
  - {name: error-rate, kind: RATIO, critical: true}
  - {name: latency, kind: HISTOGRAM, quantile: 0.99, critical: true}
"""
SPEC = load_spec(SPEC_TEXT, queries=False)
BUSY = {"seconds": 900.0, "rps": 100.0, "canary_weight": 0.25, "pods_canary": 2}


def traffic(fault: Fault | None = None, seed: int = 1, **extra: object) -> simulate.Traffic:
    scenario = Scenario(**{**BUSY, **extra}, fault=fault or Fault(), seed=seed)  # type: ignore[arg-type]
    return simulate.simulate(scenario)


def recorded(found: simulate.Traffic) -> RecordedRollout:
    return from_table(simulate.recorded_table(found, start=T0))


def canary_errors_until(found: simulate.Traffic, seconds: float) -> float:
    """Canary errors the simulator made in the steps ending at or before ``seconds``."""
    steps = int(seconds // found.scenario.step_seconds)
    return float(found.canary.errors[:steps].sum())


# --- single replays -----------------------------------------------------------------------


def test_an_error_regression_fails_soon_after_it_starts_with_the_bad_requests_served() -> None:
    found = traffic(Fault(FaultKind.ERRORS, 10.0, onset_seconds=120.0), seed=3)
    result = replay.replay_recorded(SPEC, recorded(found))
    summary = result.summary
    assert summary.decision is Decision.FAIL
    # cumulative looks dilute a late regression with the healthy minutes before it
    assert 120.0 < summary.decided_after_seconds <= 360.0  # type: ignore[operator]
    assert summary.first_fail_seconds == summary.decided_after_seconds
    assert summary.first_fail_time == T0 + summary.decided_after_seconds  # type: ignore[operator]
    assert summary.looks == summary.decided_after_seconds / 60  # type: ignore[operator]
    assert summary.planned_looks == 15
    assert summary.bad_metric == "error-rate"
    expected = canary_errors_until(found, summary.decided_after_seconds)  # type: ignore[arg-type]
    assert summary.canary_bad_before_decision == expected
    requests = float(found.canary.requests[: summary.looks * 4].sum())
    assert summary.canary_requests_before_decision == requests
    # the controller stopped at the FAIL: no look after it was taken
    assert len(result.timeline) == summary.looks
    assert list(result.timeline["decision"])[-1] == "FAIL"
    assert set(result.timeline["decision"][:-1]) <= {"INCONCLUSIVE", "PASS"}


def test_an_error_regression_from_the_start_fails_at_the_first_look() -> None:
    found = traffic(Fault(FaultKind.ERRORS, 10.0), seed=3)
    summary = replay.replay_recorded(SPEC, recorded(found)).summary
    assert (summary.decision, summary.looks, summary.decided_after_seconds) == (
        Decision.FAIL,
        1,
        60.0,
    )
    assert summary.canary_bad_before_decision == canary_errors_until(found, 60.0)


def test_a_tail_regression_fails_on_latency_alone() -> None:
    result = replay.replay_recorded(SPEC, recorded(traffic(Fault(FaultKind.TAIL, 6.0), seed=4)))
    assert result.summary.decision is Decision.FAIL
    last = result.timeline.iloc[-1]
    assert last["latency.outcome"] == "HIGH"
    assert last["error-rate.outcome"] != "HIGH"


class _Plenty(TypedDict):
    rps: float
    pod_sigma: float


# Enough traffic, and little enough pod-to-pod variation, for a healthy canary's anytime-valid
# upper bound to settle inside the tolerance within the 15 looks (18 of seeds 1-20 do).
PLENTY: _Plenty = {"rps": 400.0, "pod_sigma": 0.1}


def test_a_healthy_canary_passes_and_the_controller_stops_there() -> None:
    result = replay.replay_recorded(SPEC, recorded(traffic(seed=6, **PLENTY)))
    summary = result.summary
    assert summary.decision is Decision.PASS
    assert summary.first_fail_seconds is None
    assert len(result.timeline) == summary.looks
    assert summary.decided_after_seconds == summary.looks * 60.0


def test_a_pass_rests_on_healthy_data_and_later_looks_still_fail_a_late_regression() -> None:
    # The fault begins at 120 s. The PASS boundary (2x, + 0.05 points) is settled on the
    # healthy data up to then; the looks after it, judged as a controller keeps judging until
    # the step ends, FAIL the regression with no false FAIL before its onset.
    rollout = recorded(traffic(Fault(FaultKind.ERRORS, 10.0, onset_seconds=120.0), seed=7))
    stopped = replay.replay_recorded(SPEC, rollout)
    assert stopped.summary.decision is Decision.PASS
    assert stopped.summary.decided_after_seconds is not None
    assert stopped.summary.decided_after_seconds <= 120.0
    every = replay.replay_recorded(SPEC, rollout, every_look=True)
    assert every.summary.first_fail_seconds is not None
    assert every.summary.first_fail_seconds > 120.0
    assert every.timeline["decision"].iloc[-1] == "FAIL"


def test_every_look_replays_past_the_decision_with_the_same_summary() -> None:
    rollout = recorded(traffic(Fault(FaultKind.ERRORS, 10.0, onset_seconds=120.0), seed=3))
    stopped = replay.replay_recorded(SPEC, rollout)
    every = replay.replay_recorded(SPEC, rollout, every_look=True)
    assert every.summary == stopped.summary
    assert len(every.timeline) == every.summary.planned_looks == 15
    after = every.timeline["after_decision"]
    assert not after[: stopped.summary.looks].any() and after[stopped.summary.looks :].all()
    assert every.timeline["canary_bad"].is_monotonic_increasing


def test_a_silent_canary_is_inconclusive() -> None:
    found = traffic(Fault(FaultKind.SILENT), seed=6, plan=simulate.EXAMPLE_PLAN)
    rollout = recorded(found)
    assert rollout.silent_canary
    result = replay.replay_recorded(SPEC, rollout)
    summary = result.summary
    assert summary.decision is Decision.INCONCLUSIVE
    assert summary.decided_after_seconds is None
    assert summary.looks == summary.planned_looks
    assert summary.canary_bad_before_decision == 0.0
    assert set(result.timeline["error-rate.outcome"]) == {"NO_DATA"}


def test_each_look_is_the_judge_on_the_cumulative_window_with_its_look_position() -> None:
    rollout = recorded(traffic(Fault(FaultKind.ERRORS, 2.0, onset_seconds=120.0), seed=7))
    result = replay.replay_recorded(SPEC, rollout, every_look=True)
    settings = [SPEC.settings(m) for m in SPEC.metrics]
    planned = result.summary.planned_looks
    for look in (1, 4, planned):
        window = Window(T0, T0 + 60.0 * look, 60.0)
        data = rollout.metric_data(settings, window=window)
        judged = engine.judge(
            data, SPEC.judge_settings(look=LookPosition(look, planned), interval_seconds=60.0)
        )
        assert result.verdicts[look - 1] == judged


def test_csv_parquet_rfc3339_and_epoch_replay_alike(tmp_path: Path) -> None:
    found = traffic(Fault(FaultKind.ERRORS, 4.0, onset_seconds=240.0), seed=8)
    files = [
        simulate.write_recorded(found, tmp_path / "a.csv", start=T0, rfc3339=True),
        simulate.write_recorded(found, tmp_path / "b.csv", start=T0),
        simulate.write_recorded(found, tmp_path / "c.parquet", start=T0, rfc3339=True),
        simulate.write_recorded(found, tmp_path / "d.parquet", start=T0),
    ]
    replays = [replay.replay_recorded(SPEC, read_recorded(f), every_look=True) for f in files]
    assert all(r.summary == replays[0].summary for r in replays)
    assert all(r.verdicts == replays[0].verdicts for r in replays)
    assert replays[0].summary.decision is Decision.FAIL


def test_a_template_only_spec_replays_recorded_data() -> None:
    spec = load_spec(
        "interval: 1m\nmetrics:\n"
        "  - {name: error-rate, template: request-success-rate, critical: true}\n"
        "  - {name: latency, template: request-duration, critical: true}\n"
    )
    found = traffic(Fault(FaultKind.ERRORS, 10.0), seed=3)
    assert replay.replay_recorded(spec, recorded(found)).summary.decision is Decision.FAIL


def test_a_kind_mismatch_between_spec_and_file_is_bad_input() -> None:
    spec = load_spec("metrics:\n  - {name: latency, kind: RATIO}\n", queries=False)
    with pytest.raises(InvalidArgument) as caught:
        replay.replay_recorded(spec, recorded(traffic(seed=1)))
    assert caught.value.violations[0].field == "metric latency"


def test_the_counted_metric_can_be_chosen_and_must_be_ratio() -> None:
    assert replay.bad_metric_of(SPEC) == "error-rate"
    with pytest.raises(ValueError, match=r"RATIO metric of the spec \(error-rate\)"):
        replay.bad_metric_of(SPEC, "latency")
    latency_only = load_spec("metrics:\n  - {name: latency, kind: HISTOGRAM}\n", queries=False)
    summary = replay.replay_recorded(latency_only, recorded(traffic(seed=1))).summary
    assert summary.bad_metric is None and summary.canary_bad_before_decision is None


def test_the_json_summary_is_strict_json_with_the_documented_keys() -> None:
    result = replay.replay_recorded(SPEC, recorded(traffic(Fault(FaultKind.SILENT), seed=6)))
    text = json.dumps(result.to_json(), allow_nan=False)
    found = json.loads(text)
    for key in ("decision", "decided_after_seconds", "canary_bad_before_decision", "looks"):
        assert key in found
    assert len(found["timeline"]) == found["looks"]
    first = found["timeline"][0]
    assert first["time"] == "2024-05-01T14:01:00Z"
    assert first["metrics"]["error-rate"]["outcome"] == "NO_DATA"


def test_per_interval_levels_for_plots() -> None:
    found = traffic(seed=9)
    result = replay.replay_recorded(SPEC, recorded(found), every_look=True)
    levels = replay.per_interval(result)
    canary = levels[(levels["metric"] == "error-rate") & (levels["side"] == "canary")]
    per_minute = found.canary.errors.reshape(-1, 4).sum(1) / found.canary.requests.reshape(
        -1, 4
    ).sum(1)
    np.testing.assert_allclose(canary["value"], per_minute)
    p99 = levels[(levels["metric"] == "latency") & (levels["side"] == "baseline")]["value"]
    assert ((p99 > 0.05) & (p99 < 1.0)).all()


# --- labelled sets --------------------------------------------------------------------------


def labelled_set() -> list[replay.LabelledRollout]:
    good = [
        replay.LabelledRollout(f"aa-{seed}", "good", recorded(traffic(seed=seed)))
        for seed in range(20, 26)
    ]
    bad = [
        replay.LabelledRollout(
            f"x10-{seed}", "bad", recorded(traffic(Fault(FaultKind.ERRORS, 10.0), seed=seed))
        )
        for seed in range(30, 34)
    ]
    return good + bad


def test_evaluate_catches_every_x10_regression_without_false_rollbacks() -> None:
    rollouts = labelled_set()
    found = replay.evaluate(SPEC, rollouts, workers=1)
    assert found.catch_rate == 1.0
    assert found.false_rollback_rate == 0.0
    assert found.missed_rate == 0.0
    assert found.median_time_to_detect_seconds == 60.0
    assert list(found.results["name"]) == [r.name for r in rollouts]
    assert 0.0 <= found.inconclusive_rate < 1.0


def test_batches_on_several_processes_give_the_same_results_in_order(tmp_path: Path) -> None:
    rollouts = labelled_set()
    on_disk = [
        replay.LabelledRollout(
            r.name,
            r.label,
            _write(r.source, tmp_path / f"{r.name}.parquet"),  # type: ignore[arg-type]
        )
        for r in rollouts
    ]
    inline = replay.evaluate(SPEC, rollouts, workers=1)
    pooled = replay.evaluate(SPEC, on_disk, workers=2, progress=False)
    assert pooled.results.equals(inline.results)
    assert pooled.rates() == inline.rates()


def _write(rollout: RecordedRollout, path: Path) -> Path:
    table = rollout.rows[["time", "side", "metric", "bad", "total", "value", "le", "count"]]
    table.to_parquet(path)
    return path


def test_sweep_loosens_catches_as_the_tolerance_grows() -> None:
    rollouts = [
        replay.LabelledRollout(
            "x2", "bad", recorded(traffic(Fault(FaultKind.ERRORS, 2.0), seed=40))
        ),
        replay.LabelledRollout("aa", "good", recorded(traffic(seed=41))),
    ]
    frame = replay.sweep(SPEC, rollouts, tolerances=[0.2, 3.0], metrics=["error-rate"], workers=1)
    assert list(frame["tolerance"]) == [0.2, 3.0]
    assert list(frame["catch_rate"]) == [1.0, 0.0]
    assert list(frame["false_rollback_rate"]) == [0.0, 0.0]


def test_with_tolerance_names_unknown_metrics() -> None:
    changed = replay.with_tolerance(SPEC, 0.5, metrics=["latency"])
    assert [m.tolerance for m in changed.metrics] == [0.2, 0.5]
    with pytest.raises(InvalidArgument, match="unknown metric"):
        replay.with_tolerance(SPEC, 0.5, metrics=["nope"])


def test_labels_and_index_files_are_checked(tmp_path: Path) -> None:
    index = tmp_path / "index.csv"
    index.write_text("file,label\na.csv,good\nb.csv,maybe\n")
    with pytest.raises(InvalidArgument) as caught:
        replay.read_labelled(index)
    assert caught.value.violations[0].field == "line 3"
    bad_label = replay.LabelledRollout("a", "meh", recorded(traffic(seed=1)))  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="must be good or bad"):
        replay.evaluate(SPEC, [bad_label], workers=1)


def test_a_bad_file_in_a_batch_names_the_rollout(tmp_path: Path) -> None:
    broken = tmp_path / "broken.csv"
    broken.write_text("time,side,metric,bad,total\n60,canary,error-rate,5,1\n")
    rollouts = [*labelled_set()[:1], replay.LabelledRollout("broken", "bad", broken)]
    with pytest.raises(InvalidArgument) as caught:
        replay.evaluate(SPEC, rollouts, workers=2, progress=False)
    assert caught.value.violations[0].field == "broken: line 2"


# --- the command ----------------------------------------------------------------------------


def gatekeeper(*argv: str) -> int:
    return cli.main(list(argv))


@pytest.fixture
def spec_file(tmp_path: Path) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(SPEC_TEXT)
    return path


def test_replay_command_json(
    tmp_path: Path, spec_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    found = traffic(Fault(FaultKind.ERRORS, 10.0, onset_seconds=120.0), seed=3)
    path = simulate.write_recorded(found, tmp_path / "r.csv", start=T0, rfc3339=True)
    code = gatekeeper("replay", str(path), "--spec", str(spec_file), "--output", "json")
    assert code == 1
    out = json.loads(capsys.readouterr().out)
    assert out["decision"] == "FAIL"
    assert out["canary_bad_before_decision"] == canary_errors_until(
        found, out["decided_after_seconds"]
    )
    assert out["looks"] == len(out["timeline"])


def test_replay_command_interval_and_table(
    tmp_path: Path, spec_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = simulate.write_recorded(traffic(seed=6, **PLENTY), tmp_path / "r.parquet", start=T0)
    code = gatekeeper("replay", str(path), "--spec", str(spec_file), "--interval", "5m")
    out = capsys.readouterr().out
    assert code == 0
    assert out.startswith("PASS after 5m (look 1 of 3, every 5m)")  # the PASS boundary is 2x
    assert "error-rate" in out and "(* the controller's last look;" in out


def test_replay_command_silent_canary_exits_2(
    tmp_path: Path, spec_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = simulate.write_recorded(traffic(Fault(FaultKind.SILENT)), tmp_path / "s.csv", start=T0)
    assert gatekeeper("replay", str(path), "--spec", str(spec_file)) == 2
    assert "INCONCLUSIVE undecided at the end" in capsys.readouterr().out


def test_replay_command_bad_rows_exit_4_with_line_numbers(
    tmp_path: Path, spec_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(
        "time,side,metric,bad,total\n60,canary,error-rate,1,2\n60,stable,error-rate,1,2\n"
    )
    assert gatekeeper("replay", str(path), "--spec", str(spec_file)) == 4
    err = capsys.readouterr().err
    assert "line 3: side: unknown side 'stable'; allowed: baseline, canary" in err


@pytest.mark.parametrize(
    ("argv", "field"),
    [
        (["--interval", "soon"], "--interval"),
        (["--start", "yesterday"], "--start"),
        (["--bad-metric", "latency"], "--bad-metric"),
        (["--prometheus", "http://127.0.0.1:9"], "FILE"),
        (["--baseline", 'a="b"'], "--baseline"),
    ],
)
def test_replay_command_bad_flags_exit_4(
    tmp_path: Path,
    spec_file: Path,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    field: str,
) -> None:
    path = simulate.write_recorded(traffic(seed=5), tmp_path / "r.csv", start=T0)
    assert gatekeeper("replay", str(path), "--spec", str(spec_file), *argv) == 4
    assert f"  {field}: " in capsys.readouterr().err


def test_replay_command_prometheus_needs_its_flags(
    spec_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = gatekeeper(
        "replay",
        "--prometheus",
        "http://127.0.0.1:9",
        "--spec",
        str(spec_file),
        "--baseline",
        'a="b"',
    )
    assert code == 4
    assert "--prometheus needs --canary, --start, --end" in capsys.readouterr().err


def test_replay_command_spec_errors_exit_4(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text("metrics:\n  - {name: e, kind: RATIO, tolerance: -1}\n")
    data = simulate.write_recorded(traffic(seed=5), tmp_path / "r.csv", start=T0)
    assert gatekeeper("replay", str(data), "--spec", str(spec)) == 4
    assert "metrics[0].tolerance" in capsys.readouterr().err
    assert gatekeeper("replay", str(data), "--spec", str(tmp_path / "none.yaml")) == 4
