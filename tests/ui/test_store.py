"""The verdict store: bounded by count and bytes, newest first, looks of one analysis."""

from __future__ import annotations

from pathlib import Path

import pytest

from gatekeeper import engine, wire
from gatekeeper.api.v1 import gatekeeper_pb2 as pb
from gatekeeper.ui.store import VerdictStore, judge_entry

ROOT = Path(__file__).resolve().parents[2]


def _judged(
    name: str, *, look: int | None = None, cut: int | None = None
) -> tuple[pb.JudgeRequest, pb.Verdict]:
    """A real Judge request (an example, optionally as look ``look`` of its first ``cut``
    intervals) and the engine's verdict on it, as the server has them."""
    request = wire.parse_judge_request((ROOT / "examples" / f"{name}.json").read_bytes(), json=True)
    if cut is not None:
        for metric in request.metrics:
            for side in (metric.baseline, metric.canary):
                del side.counts[cut:]
    if look is not None:
        request.look.index, request.look.planned = look, 3
    given = wire.judge_input(request)
    return request, wire.verdict_message(engine.judge(given.metrics, given.settings))


def test_the_oldest_are_forgotten_beyond_the_limit_and_a_retried_id_replaces() -> None:
    store = VerdictStore(2)
    request, verdict = _judged("healthy")
    for ident in ("a", "b", "c"):
        assert store.add(judge_entry(ident, at=0.0, request=request, verdict=verdict))
    assert [e.id for e in store.recent()] == ["c", "b"]
    assert store.get("a") is None
    store.add(judge_entry("b", at=1.0, request=request, verdict=verdict))
    assert [e.id for e in store.recent()] == ["b", "c"] and len(store) == 2


def test_the_bytes_kept_are_bounded_and_an_oversized_entry_is_refused() -> None:
    request, verdict = _judged("healthy")
    size = request.ByteSize() + verdict.ByteSize()
    store = VerdictStore(100, max_bytes=2 * size + 1)
    for ident in "abc":
        store.add(judge_entry(ident, at=0.0, request=request, verdict=verdict))
    assert [e.id for e in store.recent()] == ["c", "b"] and store.bytes == 2 * size
    small = VerdictStore(100, max_bytes=size - 1)
    assert not small.add(judge_entry("x", at=0.0, request=request, verdict=verdict))
    assert len(small) == 0


def test_an_entry_decodes_its_data_on_demand_and_keeps_the_verdict() -> None:
    request, verdict = _judged("error-regression")
    entry = judge_entry("e", at=0.0, request=request, verdict=verdict)
    assert entry.verdict.decision == pb.DECISION_FAIL
    (metric,) = entry.load()
    assert metric.settings.name == "error-rate"
    assert entry.look is None and entry.analysis == ""


def test_looks_of_one_analysis_are_found_together_and_others_are_not() -> None:
    store = VerdictStore(10)
    for look in (1, 2, 3):
        request, verdict = _judged("error-regression", look=look, cut=3 * look)
        store.add(judge_entry(f"look-{look}", at=float(look), request=request, verdict=verdict))
    other_request, other_verdict = _judged("healthy", look=2)
    store.add(judge_entry("other", at=4.0, request=other_request, verdict=other_verdict))
    third = store.get("look-3")
    assert third is not None and third.look is not None
    assert [e.id for e in store.looks(third)] == ["look-1", "look-2", "look-3"]
    second = store.get("look-2")
    assert second is not None
    assert [e.id for e in store.looks(second)] == ["look-1", "look-2"]
    other = store.get("other")
    assert other is not None and [e.id for e in store.looks(other)] == ["other"]


def test_a_store_without_room_is_refused() -> None:
    with pytest.raises(ValueError, match="limit"):
        VerdictStore(0)
