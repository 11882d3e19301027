"""A hostile or broken Prometheus never gives PASS: bad values, wrong shapes, trickles, floods.

Every answer comes from the scripted endpoint (:mod:`tests.integration.scripted`) on
127.0.0.1, since a real Prometheus answers none of these. Baseline: 10,000 requests and 20
errors (0.2 %) per interval; the canary's answers carry the fault.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gatekeeper import engine
from gatekeeper.errors import SourceError
from gatekeeper.sources.base import Window
from gatekeeper.sources.prometheus import PrometheusOptions, PrometheusSource
from gatekeeper.spec import load_spec
from gatekeeper.stats.results import Decision, Outcome, Verdict
from tests.integration.scripted import Reply, endpoint, matrix
from tests.process import gatekeeper

WINDOW = Window(start=1_700_000_000.0, end=1_700_000_300.0, step=30.0)
SIDES = engine.Sides(baseline='track="baseline"', canary='track="canary"')
SPEC = load_spec(
    "provider: generic\nservice: shop\ninterval: 30s\nmetrics:\n"
    "  - {name: errors, template: request-success-rate, critical: true}\n"
)
FAST = PrometheusOptions(retries=1, backoff_seconds=0.01, timeout_seconds=5.0)
N = WINDOW.points


def counts(bad: list[Any], total: list[Any]) -> Callable[[str], Reply]:
    """Baseline 20/10,000 per interval; the canary's bad and total values as given."""

    def reply(query: str) -> Reply:
        canary = 'track="canary"' in query
        if 'code=~"5.."' in query:
            return Reply(matrix(WINDOW, ({}, bad if canary else [20] * N)))
        return Reply(matrix(WINDOW, ({}, total if canary else [10_000] * N)))

    return reply


def analyze(url: str, options: PrometheusOptions = FAST) -> Verdict:
    source = PrometheusSource(url, options)
    return engine.analyze(SPEC, data=engine.PromQLData(source), sides=SIDES, window=WINDOW)


def test_the_healthy_script_passes() -> None:
    """The control: the same script with a healthy canary is judged, and PASSes."""
    with endpoint(counts([20] * N, [10_000] * N)) as prometheus:
        verdict = analyze(prometheus.url)
    assert verdict.decision is Decision.PASS


@pytest.mark.parametrize(
    ("bad", "total", "shown"),
    [
        (["NaN"] * N, [10_000] * N, "nan"),
        (["abc"] * N, [10_000] * N, "'abc'"),
        ([20] * (N - 1) + [-100], [10_000] * N, "-100"),
        ([0] * N, ["+Inf"] * N, "inf"),
        ([0] * N, ["1e308"] * N, "1e+308"),
    ],
)
def test_unusable_canary_counts_are_an_error_naming_side_query_and_point(
    bad: list[Any], total: list[Any], shown: str
) -> None:
    with endpoint(counts(bad, total)) as prometheus:
        verdict = analyze(prometheus.url)
    assert verdict.decision is Decision.ERROR
    (metric,) = verdict.metrics
    assert metric.outcome is Outcome.ERROR
    assert "canary" in metric.reason
    assert 'track="canary"' in metric.reason  # the query
    assert shown in metric.reason


def test_the_first_bad_point_is_named_by_its_time() -> None:
    bad = [20] * 6 + [-1, -5, 20, 20]
    with endpoint(counts(bad, [10_000] * N)) as prometheus:
        (metric,) = analyze(prometheus.url).metrics
    assert "answered -1.0 at 2023-11-14T22:16:50Z" in metric.reason  # the 7th time


def _shaped(body: Any) -> Callable[[str], Reply]:
    def reply(query: str) -> Reply:
        if 'track="canary"' in query and 'code=~"5.."' in query:
            return Reply(body)
        return counts([20] * N, [10_000] * N)(query)

    return reply


def _ok(result: Any) -> dict[str, Any]:
    return {"status": "success", "data": {"resultType": "matrix", "result": result}}


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"status": "success", "data": [1, 2]}, "data is a JSON list"),
        (_ok({"metric": {}, "values": []}), "data.result is a JSON object"),
        (_ok([{"metric": {}, "values": [[WINDOW.start + 30]]}]), "not a [timestamp, value] pair"),
        (_ok([{"metric": {}, "values": [["1700000030", "1"]]}]), "string timestamp"),
        (_ok([{"metric": {}, "values": [[WINDOW.start + 30, 1]]}]), "number value"),
        (_ok(["x"]), "data.result[0] is a JSON string"),
        (_ok([{"metric": {"a": 1}, "values": []}]), "string labels"),
        ([1, 2, 3], "the answer is a JSON list"),
        (b'{"status": "success", "data": {', "not JSON"),
    ],
)
def test_a_200_answer_of_the_wrong_shape_is_an_error_not_a_crash(body: Any, problem: str) -> None:
    with endpoint(_shaped(body)) as prometheus:
        verdict = analyze(prometheus.url)
    assert verdict.decision is Decision.ERROR
    assert problem in verdict.metrics[0].reason


def test_a_series_with_more_points_than_the_window_is_refused() -> None:
    many = {"metric": {}, "values": [[WINDOW.start + k, "1"] for k in range(1, 2001)]}
    with endpoint(_shaped(_ok([many]))) as prometheus:
        verdict = analyze(prometheus.url)
    assert verdict.decision is Decision.ERROR
    assert "points-per-series limit" in verdict.metrics[0].reason
    assert f"at most {N} points" in verdict.metrics[0].reason


def _padded(size: int) -> bytes:
    """A valid answer of ``size`` bytes (JSON whitespace after the document)."""
    document = b'{"status": "success", "data": {"resultType": "matrix", "result": []}}'
    return document + b" " * (size - len(document))


@pytest.mark.parametrize("declared", [True, False])
def test_an_answer_beyond_the_byte_limit_is_refused(declared: bool) -> None:
    headers = {} if declared else {"X-Length": "omitted"}
    reply = Reply(_padded(2 * 1024 * 1024), headers=headers, declare_length=declared)
    options = PrometheusOptions(max_answer_bytes=1024 * 1024, max_decompressed_bytes=1024 * 1024)
    with endpoint(lambda _query: reply) as prometheus:
        with pytest.raises(SourceError, match=r"limit of 1 MiB \(max_answer_bytes"):
            PrometheusSource(prometheus.url, options).query_range("up", window=WINDOW)
        assert len(prometheus.seen) == 1  # a limit is not retried


def test_a_gzip_bomb_is_refused_at_the_decompressed_limit() -> None:
    bomb = Reply(_padded(300 * 1024 * 1024 // 10), gzip=True)  # 30 MiB in about 30 KiB
    options = PrometheusOptions(
        max_answer_bytes=1024 * 1024, max_decompressed_bytes=2 * 1024 * 1024
    )
    refused = pytest.raises(SourceError, match=r"decompresses to more than the limit of 2 MiB")
    with endpoint(lambda _query: bomb) as prometheus, refused:
        PrometheusSource(prometheus.url, options).query_range("up", window=WINDOW)


def test_a_gzip_answer_within_the_limits_is_read() -> None:
    with endpoint(lambda _q: Reply(matrix(WINDOW, ({}, [1] * N)), gzip=True)) as prometheus:
        (found,) = PrometheusSource(prometheus.url).query_range("up", window=WINDOW)
    assert found.values.tolist() == [1.0] * N


TRICKLE = Reply(matrix(WINDOW, ({}, [1] * N)), trickle=4, every=0.25, trickle_seconds=30)


def test_a_trickling_source_is_cut_at_the_deadline_of_the_whole_call() -> None:
    """Headers at once, then 16 bytes a second: each read is quick, the answer never ends.
    All queries and retries of the call end at its deadline, and the verdict is ERROR,
    naming the metric and the source."""
    options = PrometheusOptions(timeout_seconds=60, retries=3, deadline_seconds=2)
    with endpoint(lambda _query: TRICKLE) as prometheus:
        started = time.monotonic()
        verdict = analyze(prometheus.url, options)
        elapsed = time.monotonic() - started
    assert elapsed < 2 + 1.5  # the deadline, and the judging after it
    assert verdict.decision is Decision.ERROR
    (metric,) = verdict.metrics
    assert metric.name == "errors"
    assert f"Prometheus at {prometheus.url} did not answer within" in metric.reason
    assert "deadline of 2s" in metric.reason


def test_each_attempt_is_bounded_as_a_whole_not_per_read() -> None:
    options = PrometheusOptions(timeout_seconds=0.5, retries=2, backoff_seconds=0.01)
    timed_out = pytest.raises(SourceError, match=r"timed out after 0\.5\d*s \(3 attempts\)")
    with endpoint(lambda _query: TRICKLE) as prometheus, timed_out:
        PrometheusSource(prometheus.url, options).query_range("up", window=WINDOW)


def test_the_callers_deadline_cuts_the_sources_own() -> None:
    with endpoint(lambda _query: TRICKLE) as prometheus:
        source = PrometheusSource(prometheus.url, PrometheusOptions(deadline_seconds=60))

        async def fetch() -> list[Any]:
            return await engine.fetch_async(
                SPEC, source=source, sides=SIDES, window=WINDOW, timeout=1.0
            )

        started = time.monotonic()
        metrics = asyncio.run(fetch())
        assert time.monotonic() - started < 2.5
    assert metrics[0].error is not None
    assert "deadline of 1s" in metrics[0].error


def test_a_cancelled_fetch_closes_its_connections_at_once() -> None:
    """The caller leaves (or the server stops): every query's connection closes, so the
    source sees the client gone at its next write, and nothing runs on."""
    with endpoint(lambda _query: TRICKLE) as prometheus:
        source = PrometheusSource(prometheus.url)

        async def cancelled() -> None:
            task = asyncio.ensure_future(
                engine.fetch_async(SPEC, source=source, sides=SIDES, window=WINDOW)
            )
            while prometheus.active[0] < 4:  # both sides' bad and total queries
                await asyncio.sleep(0.02)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

        asyncio.run(cancelled())
        deadline = time.monotonic() + 5
        while prometheus.active[0] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert prometheus.active[0] == 0


def test_cli_analyze_on_a_trickling_source_exits_3_within_its_deadline(tmp_path: Path) -> None:
    """The reported case: ``analyze --prometheus-timeout 5`` had not answered after 240 s."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "provider: generic\nservice: shop\ninterval: 30s\nmetrics:\n"
        "  - {name: errors, template: request-success-rate, critical: true}\n"
    )
    with endpoint(lambda _query: TRICKLE) as prometheus:
        started = time.monotonic()
        done = gatekeeper(
            "analyze", "--prometheus", prometheus.url, "--prometheus-timeout", "5",
            "--prometheus-deadline", "3", "--spec", str(spec),
            "--baseline", 'track="baseline"', "--canary", 'track="canary"',
            "--start", f"{WINDOW.start:.0f}", "--end", f"{WINDOW.end:.0f}",
        )  # fmt: skip
        elapsed = time.monotonic() - started
    assert done.returncode == 3, done.stderr
    assert "ERROR" in done.stdout
    assert "did not answer within" in done.stdout
    assert elapsed < 3 + 20  # the deadline, plus the interpreter's start (a shared CI core)


def test_fetched_values_beyond_the_statistics_range_are_an_error_not_internal() -> None:
    """VALUES of 1e308 against -1e308 from the source: the metric is ERROR naming the side."""
    spec = load_spec(
        "provider: generic\nservice: shop\ninterval: 30s\nmetrics:\n"
        "  - name: cpu\n    kind: VALUES\n"
        "    query: 'sum by (pod) (rate(cpu_seconds_total{ {{selector}} }[{{interval}}]))'\n"
    )

    def reply(query: str) -> Reply:
        value = 1e308 if 'track="canary"' in query else -1e308
        return Reply(matrix(WINDOW, ({"pod": "a"}, [value] * N)))

    with endpoint(reply) as prometheus:
        source = PrometheusSource(prometheus.url, FAST)
        verdict = engine.analyze(spec, data=engine.PromQLData(source), sides=SIDES, window=WINDOW)
    assert verdict.decision is Decision.ERROR
    (metric,) = verdict.metrics
    assert metric.outcome is Outcome.ERROR
    assert "unusable baseline data" in metric.reason and "1e+100" in metric.reason
