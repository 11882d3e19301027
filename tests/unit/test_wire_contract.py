"""The wire contract: generated code up to date, and no field removed or renamed."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from gatekeeper.api.v1 import gatekeeper_pb2

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))

if TYPE_CHECKING:  # mypy cannot follow the sys.path insert: it finds tools/ from the root
    from tools import descriptor_snapshot, genproto
else:
    import descriptor_snapshot
    import genproto

GENERATED = ROOT / "gatekeeper" / "api" / "v1"


def test_generated_code_matches_a_fresh_generation(tmp_path: Path) -> None:
    fresh = genproto.generate(tmp_path)
    assert len(fresh) == 4
    for path in fresh:
        committed = GENERATED / path.name
        assert committed.read_text() == path.read_text(), (
            f"{committed.relative_to(ROOT)} is stale: run `make protos` and commit"
        )


def _removed(old: dict[str, Any], new: dict[str, Any], where: str) -> list[str]:
    problems: list[str] = []
    for name, before in old.get("fields", {}).items():
        after = new.get("fields", {}).get(name)
        if after is None:
            problems.append(f"{where}.{name} removed or renamed")
        elif after != before:
            problems.append(f"{where}.{name} changed: {before} -> {after}")
    for name, values in old.get("enums", {}).items():
        problems += _enum_removed(values, new.get("enums", {}).get(name), f"{where}.{name}")
    for name, nested in old.get("nested", {}).items():
        if name not in new.get("nested", {}):
            problems.append(f"{where}.{name} removed or renamed")
        else:
            problems += _removed(nested, new["nested"][name], f"{where}.{name}")
    return problems


def _enum_removed(old: dict[str, int], new: dict[str, int] | None, where: str) -> list[str]:
    if new is None:
        return [f"{where} removed or renamed"]
    return [
        f"{where}.{value} removed, renamed or renumbered"
        for value, number in old.items()
        if new.get(value) != number
    ]


def compatibility_problems(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """What a change of the contract breaks for existing callers."""
    problems: list[str] = []
    if old["package"] != new["package"]:
        problems.append(f"package {old['package']} -> {new['package']}")
    for name, message in old["messages"].items():
        if name not in new["messages"]:
            problems.append(f"message {name} removed or renamed")
        else:
            problems += _removed(message, new["messages"][name], name)
    for name, values in old["enums"].items():
        problems += _enum_removed(values, new["enums"].get(name), name)
    for name, methods in old["services"].items():
        for method, signature in methods.items():
            if new["services"].get(name, {}).get(method) != signature:
                problems.append(f"rpc {name}.{method} removed, renamed or retyped")
    return problems


RELEASED = json.loads((ROOT / "protos/gatekeeper/api/v1/released.json").read_text())


def test_descriptor_keeps_every_released_field() -> None:
    current = descriptor_snapshot.inventory(gatekeeper_pb2.DESCRIPTOR)
    assert compatibility_problems(RELEASED, current) == []


def test_the_check_catches_a_renamed_field() -> None:
    current = descriptor_snapshot.inventory(gatekeeper_pb2.DESCRIPTOR)
    fields = current["messages"]["Counts"]["fields"]
    fields["errors"] = fields.pop("bad")
    assert compatibility_problems(RELEASED, current) == ["Counts.bad removed or renamed"]


def test_the_check_catches_a_renumbered_enum_value() -> None:
    current = descriptor_snapshot.inventory(gatekeeper_pb2.DESCRIPTOR)
    current["enums"]["Decision"]["DECISION_FAIL"] = 9
    assert compatibility_problems(RELEASED, current) == [
        "Decision.DECISION_FAIL removed, renamed or renumbered"
    ]


@pytest.mark.parametrize(
    ("message", "fields"),
    [
        ("JudgeRequest", ["metrics", "thresholds", "look", "alpha", "interval_seconds", "mode"]),
        (
            "MetricConfig",
            [
                "name",
                "kind",
                "direction",
                "tolerance",
                "critical",
                "weight",
                "group",
                "quantile",
                "absolute_tolerance",
                "dry_run",
            ],
        ),
        ("Verdict", ["decision", "score", "metrics", "summary", "load_hint"]),
        (
            "MetricResult",
            [
                "name",
                "outcome",
                "critical",
                "test",
                "p_value",
                "effect",
                "baseline",
                "canary",
                "reason",
                "queries",
            ],
        ),
        (
            "AnalyzeRequest",
            [
                "spec",
                "spec_name",
                "baseline_selector",
                "canary_selector",
                "start",
                "end",
                "interval",
                "look",
                "preflight",
            ],
        ),
    ],
)
def test_design_field_numbers(message: str, fields: list[str]) -> None:
    """The numbers DESIGN.md fixes: fields 1..n in the order it lists them."""
    descriptor = gatekeeper_pb2.DESCRIPTOR.message_types_by_name[message]
    assert [descriptor.fields_by_name[f].number for f in fields] == list(range(1, len(fields) + 1))
