"""`gatekeeper demo`: the whole system in one command, the same story every run."""

from __future__ import annotations

import io
import json

from gatekeeper import demo
from tests.process import gatekeeper


def test_the_demo_promotes_v2_and_rolls_back_v3_with_no_human() -> None:
    done = gatekeeper("demo", "--speed", "0", "--output", "json", timeout=300)
    assert done.returncode == 0, done.stderr
    v2, v3 = json.loads(done.stdout)["rollouts"]
    assert (v2["version"], v2["outcome"]) == ("v2", "promoted")
    assert (v3["version"], v3["outcome"]) == ("v3", "rolled back")
    # One analysis per rollout: the quiet 5 % stage (steps[1]) leaves it INCONCLUSIVE, the
    # looks go on numbered across the steps, and the verdicts of its analysis steps ask for
    # load that a load test supplies.
    for rollout in (v2, v3):
        looks = rollout["looks"]
        assert rollout["load_tests"]
        assert {test["step"] for test in rollout["load_tests"]} <= {1, 3, 5}
        assert 1 in {look["step"] for look in looks if look["decision"] == "INCONCLUSIVE"}
        assert [look["look"] for look in looks] == list(range(1, len(looks) + 1))
        assert {look["planned"] for look in looks} == {26}
    assert v3["looks"][-1]["decision"] == "FAIL"
    assert "(HIGH)" in v3["looks"][-1]["summary"]
    # What an absolute 99 % success-rate gate would have done with the same traffic.
    assert v3["absolute_gate"]["decision"] == "promoted"
    assert v3["canary_bad"] < v3["canary_requests"] * 0.01


def test_the_demo_is_seeded() -> None:
    first, second = io.StringIO(), io.StringIO()
    assert demo.main(demo.DemoOptions(speed=0, output="json", stream=first)) == 0
    assert demo.main(demo.DemoOptions(speed=0, output="json", stream=second)) == 0
    assert first.getvalue() == second.getvalue()


def test_the_table_tells_the_story() -> None:
    out = io.StringIO()
    assert demo.main(demo.DemoOptions(speed=0, stream=out)) == 0
    text = out.getvalue()
    assert "rolling out v2" in text and "rolling out v3" in text
    assert "load test:" in text
    assert "absolute 99 % gate" in text
    assert "rolled back at step 4" in text
