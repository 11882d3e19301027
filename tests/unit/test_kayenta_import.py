"""`gatekeeper import-kayenta`: a Kayenta canary config becomes a KAYENTA-mode spec."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gatekeeper.errors import InvalidArgument
from gatekeeper.kayenta_import import convert, convert_text
from gatekeeper.sources import queries
from gatekeeper.spec import load_spec
from gatekeeper.stats.results import Direction, MetricKind

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "kayenta" / "canary-config.json"


def test_the_example_config_converts_to_a_valid_kayenta_spec() -> None:
    conversion = convert_text(EXAMPLE.read_text())
    spec = load_spec(conversion.yaml())  # the YAML round-trips through the validator
    assert spec.mode == "KAYENTA"
    assert [m.name for m in spec.metrics] == ["error-rate", "cpu"]
    errors, cpu = (spec.settings(m) for m in spec.metrics)
    assert errors.kind is MetricKind.VALUES and errors.critical
    assert errors.direction is Direction.INCREASE
    assert errors.kayenta.allowed_increase == 1.1 and errors.kayenta.critical_increase == 3.0
    assert cpu.direction is Direction.EITHER
    assert cpu.kayenta.effect_size_measure == "CLES" and cpu.kayenta.nodata_fail
    assert cpu.outlier_strategy.value == "IQR"
    assert spec.group_weights == {"errors": 60.0, "system": 30.0, "latency": 10.0}
    assert spec.thresholds.pass_score == 95.0


def test_the_scope_matcher_becomes_the_side_selector() -> None:
    spec = convert_text(EXAMPLE.read_text()).spec
    rendered = queries.render(
        spec.metrics[0].query or "",
        context=queries.Context(selector='pod=~"checkout-canary.*"', interval="1m"),
    )
    assert rendered.count('pod=~"checkout-canary.*"') == 2
    assert "${" not in rendered


def test_every_field_that_cannot_be_carried_over_is_named() -> None:
    messages = convert_text(EXAMPLE.read_text()).messages
    assert any("latency: its atlas query cannot be carried over" in m for m in messages)
    assert any("cpu: in groups ['system', 'capacity']" in m for m in messages)
    assert any(m.startswith("interval:") for m in messages)


def test_location_and_functions_are_reported() -> None:
    config = {
        "metrics": [
            {
                "name": "m",
                "query": {
                    "type": "prometheus",
                    "customInlineTemplate": 'PromQL:up{instance=~"${scope}", region="${location}"}',
                    "functions": ["rate"],
                },
                "analysisConfigurations": {"canary": {}},
            }
        ]
    }
    conversion = convert(config)
    assert "${location}" not in (conversion.spec.metrics[0].query or "")
    assert any("${location}" in m for m in conversion.messages)
    assert any("functions ['rate']" in m for m in conversion.messages)
    assert conversion.spec.settings(conversion.spec.metrics[0]).direction is Direction.EITHER


def test_a_config_with_nothing_to_carry_over_is_bad_input() -> None:
    with pytest.raises(InvalidArgument, match="no metric with a Prometheus query"):
        convert({"metrics": [{"name": "x", "query": {"type": "datadog"}}]})
    with pytest.raises(InvalidArgument, match="not JSON"):
        convert_text("{")
    with pytest.raises(InvalidArgument, match="canary config object"):
        convert_text(json.dumps([1]))


def test_default_mode_carries_the_effect_sizes_over_as_the_two_boundaries() -> None:
    conversion = convert_text(EXAMPLE.read_text(), mode="DEFAULT")
    spec = load_spec(conversion.yaml())
    assert spec.mode == "DEFAULT"
    errors, cpu = (spec.settings(m) for m in spec.metrics)
    # allowedIncrease 1.1: a significant increase of up to 10 % still passes in Kayenta.
    assert errors.tolerance == pytest.approx(0.1)
    assert errors.pass_margin.relative == 0.5  # VALUES' default PASS boundary
    assert errors.kayenta.allowed_increase == 1.0  # no Kayenta options in default mode
    assert cpu.tolerance == 0.2 and cpu.pass_tolerance == 0.5
    assert any("PASS boundary" in note for note in conversion.messages)


def test_an_unknown_mode_is_bad_input_naming_the_modes() -> None:
    with pytest.raises(InvalidArgument, match="KAYENTA, DEFAULT"):
        convert_text(EXAMPLE.read_text(), mode="kayenta")
