"""Replay across a rollout's analysis steps: one analysis, looks numbered across the steps."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gatekeeper import replay, simulate
from gatekeeper.errors import InvalidArgument
from gatekeeper.replay.steps import parse_steps
from gatekeeper.simulate import Fault, FaultKind
from gatekeeper.stats.results import Decision
from tests.unit.test_replay import PLENTY, SPEC, T0, gatekeeper, recorded, spec_file, traffic

__all__ = ["spec_file"]  # the fixture, used by name

#: The simulator's step plan (5 % for 2 min, 25 % for 5 min, 50 % for 10 min) as --steps.
EXAMPLE_STEPS = "5%:2m,25%:5m,50%:10m"


def test_steps_are_read_as_looks_of_the_interval() -> None:
    plan = parse_steps(EXAMPLE_STEPS, interval_seconds=60.0)
    assert (plan.ends, plan.weights, plan.planned) == ((2, 7, 17), (5.0, 25.0, 50.0), 17)
    assert [plan.step_of(k) for k in (1, 2, 3, 7, 8, 17, 18)] == [1, 1, 2, 2, 3, 3, 3]
    assert (plan.label(3), plan.label(18)) == ("2 (25%)", "3 (50%)+")
    assert parse_steps("90s,3m", interval_seconds=60.0).ends == (1, 4)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("5%:2m,,1m", "comma-separated analysis steps WEIGHT%:DURATION or DURATION"),
        ("5%:soon", "got '5%:soon'"),
        ("30s", "each step must last at least one interval (1m); got '30s'"),
    ],
)
def test_bad_steps_name_the_flag_and_the_form(text: str, problem: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_steps(text, interval_seconds=60.0)
    assert "--steps" in str(caught.value) and problem in str(caught.value)


def test_a_pass_in_an_earlier_step_goes_on_and_the_final_step_promotes() -> None:
    rollout = recorded(traffic(seed=6, **PLENTY))
    alone = replay.replay_recorded(SPEC, rollout)
    assert (alone.summary.decision, alone.summary.looks) == (Decision.PASS, 1)
    steps = parse_steps("3m,12m", interval_seconds=60.0)
    across = replay.replay_recorded(SPEC, rollout, steps=steps)
    # The same verdicts; the PASS at look 1 only ends step 1, the first PASS of step 2 promotes.
    assert across.verdicts[0].decision is Decision.PASS
    assert (across.summary.decision, across.summary.looks) == (Decision.PASS, 4)
    assert list(across.timeline["step"]) == [1, 1, 1, 2]
    assert across.summary.planned_looks == 15
    assert across.summary.decided_after_seconds == 240.0


def test_a_fail_in_any_step_rolls_back_there_with_the_plan_s_look_numbers() -> None:
    found = traffic(
        Fault(FaultKind.ERRORS, 10.0, onset_seconds=180.0), seed=3, plan=simulate.EXAMPLE_PLAN
    )
    result = replay.replay_recorded(
        SPEC, recorded(found), steps=parse_steps(EXAMPLE_STEPS, interval_seconds=60.0)
    )
    summary = result.summary
    assert summary.decision is Decision.FAIL
    assert summary.planned_looks == 17  # the plan's looks, not the 15 of the recorded window
    assert result.timeline["step"].iloc[-1] == result.steps.step_of(summary.looks)
    assert summary.looks > 3  # after the onset, in the 25 % step or later
    assert set(result.timeline["decision"][:-1]) <= {"INCONCLUSIVE", "PASS"}


def test_looks_past_the_plan_are_the_final_step_s_extra_looks() -> None:
    found = traffic(Fault(FaultKind.SILENT), seed=6)
    result = replay.replay_recorded(
        SPEC, recorded(found), steps=parse_steps("2m,3m", interval_seconds=60.0)
    )
    # A silent canary stays INCONCLUSIVE: the final step holds for the 10 recorded looks past
    # its 5 planned ones and the rollout is never promoted.
    assert result.summary.decision is Decision.INCONCLUSIVE
    assert (result.summary.looks, result.summary.planned_looks) == (15, 5)
    assert [result.steps.label(k) for k in (2, 3, 5, 6)] == ["1", "2", "2", "2+"]


def test_the_command_prints_the_looks_across_the_steps_and_says_where_they_come_from(
    tmp_path: Path, spec_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    found = traffic(
        Fault(FaultKind.ERRORS, 10.0, onset_seconds=180.0), seed=3, plan=simulate.EXAMPLE_PLAN
    )
    path = simulate.write_recorded(found, tmp_path / "r.csv", start=T0)
    code = gatekeeper("replay", str(path), "--spec", str(spec_file), "--steps", EXAMPLE_STEPS)
    out = capsys.readouterr().out
    assert code == 1
    assert f"analysis steps: step boundaries from --steps {EXAMPLE_STEPS}" in out
    header = next(line for line in out.splitlines() if line.startswith("look"))
    assert header.split()[:3] == ["look", "step", "elapsed"]
    assert "1 (5%)" in out and "2 (25%)" in out and "of 17, every 1m" in out
    assert gatekeeper("replay", str(path), "--spec", str(spec_file), "--output", "json") == 1
    plain = json.loads(capsys.readouterr().out)
    assert plain["steps"]["origin"].startswith("one step over the whole window")
    assert {look["step"] for look in plain["timeline"]} == {1}


def test_the_command_rejects_bad_steps_and_steps_with_labelled(
    tmp_path: Path, spec_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = simulate.write_recorded(traffic(seed=5), tmp_path / "r.csv", start=T0)
    assert gatekeeper("replay", str(path), "--spec", str(spec_file), "--steps", "2x") == 4
    assert "  --steps: " in capsys.readouterr().err
    index = tmp_path / "index.csv"
    index.write_text("file,label\nr.csv,good\n")
    argv = ["replay", "--labelled", str(index), "--spec", str(spec_file), "--steps", "2m"]
    assert gatekeeper(*argv) == 4
    assert "--steps does not apply to --labelled INDEX" in capsys.readouterr().err
