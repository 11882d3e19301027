"""Fuzzing the source's limits and the answer's shape: refused exactly at each limit, never
a crash, and never PASS on what was refused.

One scripted endpoint (:mod:`tests.integration.scripted`) serves every example; Hypothesis
picks answer sizes around the byte and decompressed-byte limits, gzip or not, declared
length or not, series lengths around the window's points, and arbitrary JSON documents.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gatekeeper import engine
from gatekeeper.errors import SourceError
from gatekeeper.sources import answer
from gatekeeper.sources.bounded import LimitExceeded
from gatekeeper.sources.prometheus import PrometheusOptions, PrometheusSource
from gatekeeper.stats.results import Decision
from tests.integration.scripted import Endpoint, Reply, endpoint
from tests.integration.test_hostile_sources import SIDES, SPEC, WINDOW

FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
KIB = 1024
DOCUMENT = b'{"status": "success", "data": {"resultType": "matrix", "result": []}}'


class Scripted:
    """The reply of the current example."""

    reply = Reply(DOCUMENT)

    def __call__(self, _query: str) -> Reply:
        return self.reply


@pytest.fixture(scope="module")
def scripted() -> Iterator[tuple[Endpoint, Scripted]]:
    script = Scripted()
    with endpoint(script) as prometheus:
        yield prometheus, script


@FUZZ
@given(
    size=st.integers(len(DOCUMENT), 96 * KIB),
    answer_limit=st.integers(len(DOCUMENT), 64 * KIB),
    extra=st.integers(0, 64 * KIB),
    gzip=st.booleans(),
    declared=st.booleans(),
)
def test_answers_are_refused_exactly_beyond_the_byte_limits(
    scripted: tuple[Endpoint, Scripted],
    *,
    size: int,
    answer_limit: int,
    extra: int,
    gzip: bool,
    declared: bool,
) -> None:
    prometheus, script = scripted
    body = DOCUMENT + b" " * (size - len(DOCUMENT))
    script.reply = Reply(body, gzip=gzip, declare_length=declared)
    limits = PrometheusOptions(
        max_answer_bytes=answer_limit, max_decompressed_bytes=answer_limit + extra, retries=0
    )
    sent = len(Reply.packed(body)) if gzip else size
    within = sent <= answer_limit and size <= answer_limit + extra
    source = PrometheusSource(prometheus.url, limits)
    if within:
        assert source.query_range("up", window=WINDOW) == []
        return
    with pytest.raises(LimitExceeded) as refused:
        source.query_range("up", window=WINDOW)
    named = "max_answer_bytes" if sent > answer_limit else "max_decompressed_bytes"
    assert named in str(refused.value)


@FUZZ
@given(points=st.integers(0, 3 * WINDOW.points))
def test_series_are_refused_exactly_beyond_the_window_points(
    scripted: tuple[Endpoint, Scripted], points: int
) -> None:
    prometheus, script = scripted
    values = [[WINDOW.start + 30 * (k + 1), "1"] for k in range(points)]
    document = {
        "status": "success",
        "data": {"resultType": "matrix", "result": [{"metric": {}, "values": values}]},
    }
    script.reply = Reply(document)
    source = PrometheusSource(prometheus.url, PrometheusOptions(retries=0))
    if points <= WINDOW.points:
        (found,) = source.query_range("up", window=WINDOW)
        assert found.values.size == points
        return
    with pytest.raises(SourceError, match="points-per-series limit"):
        source.query_range("up", window=WINDOW)


json_values = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
shaped = st.fixed_dictionaries(
    {"status": st.just("success")},
    optional={
        "data": st.fixed_dictionaries(
            {},
            optional={
                "resultType": st.sampled_from(["matrix", "vector", 3]),
                "result": st.lists(
                    st.fixed_dictionaries(
                        {},
                        optional={
                            "metric": json_values,
                            "values": st.lists(st.lists(json_values, max_size=3), max_size=4),
                        },
                    ),
                    max_size=3,
                )
                | json_values,
            },
        )
        | json_values,
        "warnings": json_values,
    },
)


@settings(max_examples=400, deadline=None)
@given(document=shaped | json_values)
def test_any_json_answer_is_series_or_a_source_error(document: Any) -> None:
    body = json.dumps(document, allow_nan=True).encode()
    try:
        found = answer.parse(body, url="http://127.0.0.1:1", query="up", window=WINDOW)
    except SourceError:
        return
    for item in found:
        assert item.times.size == item.values.size <= WINDOW.points


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(document=shaped | json_values)
def test_analyze_on_any_json_answer_never_passes_on_it(
    scripted: tuple[Endpoint, Scripted], document: Any
) -> None:
    prometheus, script = scripted
    script.reply = Reply(json.dumps(document, allow_nan=True).encode())
    source = PrometheusSource(prometheus.url, PrometheusOptions(retries=0))
    verdict = engine.analyze(SPEC, data=engine.PromQLData(source), sides=SIDES, window=WINDOW)
    assert verdict.decision is not Decision.PASS
