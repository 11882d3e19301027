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
    # Both begin with a quiet stage whose verdict asks for load that a load test supplies.
    for rollout in (v2, v3):
        assert rollout["load_tests"] and rollout["load_tests"][0]["step"] == 1
        assert any(look["decision"] == "INCONCLUSIVE" for look in rollout["looks"])
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
    assert "rolled back at step 2" in text
