"""The verdict pages in a real headless chromium, fed by a real server and a real Prometheus.

A gatekeeper server (gRPC, port 0) keeps its verdicts; Analyze calls judge the healthy,
broken and quiet canaries of the Prometheus fixture (look by look for the broken one) and
a Judge call sends histograms; the pages are served by aiohttp on port 0 behind a token.
"""

from __future__ import annotations

import asyncio
import datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from gatekeeper import wire
from gatekeeper.api.v1 import gatekeeper_pb2 as pb
from gatekeeper.client import GatekeeperClient
from gatekeeper.server import app
from gatekeeper.ui.routes import add_routes, page_path
from tests.integration.prom import PrometheusServer
from tests.ui.browser import assert_not_blank, load_all

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "page-token-1"
SPEC = """provider: generic
service: {service}
namespace: ns-generic
interval: 30s
metrics:
  - {{name: error-rate, template: request-success-rate, critical: true}}
  - {{name: latency-p99, template: request-duration, critical: true}}
"""
#: page name -> (service of the Prometheus fixture, expected decision)
CASES = {
    "pass": ("healthy", "PASS"),
    "fail": ("errors", "FAIL"),
    "inconclusive": ("quiet", "INCONCLUSIVE"),
}
LOOKS = 3


def _request(
    prometheus: PrometheusServer, spec: str, *, end: float, look: int | None = None
) -> pb.AnalyzeRequest:
    message = pb.AnalyzeRequest(
        spec_name=spec, baseline_selector='track="baseline"', canary_selector='track="canary"'
    )
    message.start.FromDatetime(datetime.datetime.fromtimestamp(prometheus.start, datetime.UTC))
    message.end.FromDatetime(datetime.datetime.fromtimestamp(end, datetime.UTC))
    if look is not None:
        message.look.index, message.look.planned = look, LOOKS
    return message


def _judge_verdicts(server: app.ServerThread, prometheus: PrometheusServer) -> dict[str, str]:
    """Give the verdicts; the page id of each case (the request ids sent)."""
    ids = {}
    with GatekeeperClient(server.target) as client:
        for name, (spec, _) in CASES.items():
            ids[name] = f"ns-generic/{spec}/rev1/step-1/look-{LOOKS}"
            span = prometheus.end - prometheus.start
            for look in range(1, LOOKS + 1):
                end = prometheus.start + span * look / LOOKS
                client.analyze(
                    _request(prometheus, spec, end=end, look=look),
                    request_id=f"ns-generic/{spec}/rev1/step-1/look-{look}",
                )
        raw = (ROOT / "examples" / "p99-regression.json").read_bytes()
        client.judge(wire.parse_judge_request(raw, json=True), request_id="judge-histograms")
        ids["histograms"] = "judge-histograms"
    return ids


async def _serve_and_load(
    server: app.ServerThread, prometheus: PrometheusServer, ids: dict[str, str], folder: Path
) -> tuple[dict[str, Any], dict[str, int]]:
    assert server.running.store is not None
    pages = web.Application()
    add_routes(pages, server.running.store, token=TOKEN.encode(), prometheus=prometheus.url)
    runner = web.AppRunner(pages)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        base = f"http://127.0.0.1:{port}"
        statuses = {}
        async with aiohttp.ClientSession() as http:
            for path in ("/ui/", page_path(ids["fail"]), "/ui/verdicts/nope"):
                async with http.get(base + path) as answer:
                    statuses[f"anonymous {path}"] = answer.status
            headers = {"Authorization": f"Bearer {TOKEN}"}
            async with http.get(base + "/ui/verdicts/nope", headers=headers) as answer:
                statuses["missing"] = answer.status
        urls = {name: base + page_path(ident) for name, ident in ids.items()}
        urls["list"] = base + "/ui/"
        loaded = await load_all(urls, folder, headers={"Authorization": f"Bearer {TOKEN}"})
        return {name: page for name, page in loaded.items()}, statuses
    finally:
        await runner.cleanup()


@pytest.fixture(scope="module")
def pages(
    prometheus: PrometheusServer, tmp_path_factory: pytest.TempPathFactory
) -> tuple[dict[str, Any], dict[str, int], dict[str, str], Path]:
    specs = tmp_path_factory.mktemp("specs")
    for spec, _ in CASES.values():
        (specs / f"{spec}.yaml").write_text(SPEC.format(service=spec))
    server = app.ServerThread(
        app.ServerConfig(
            port=0, workers=1, prometheus_url=prometheus.url, spec_dir=specs, ui_verdicts=50
        )
    )
    try:
        ids = _judge_verdicts(server, prometheus)
        folder = tmp_path_factory.mktemp("screenshots")
        loaded, statuses = asyncio.run(_serve_and_load(server, prometheus, ids, folder))
    finally:
        server.stop()
    return loaded, statuses, ids, folder


@pytest.mark.parametrize("name", [*CASES, "histograms"])
def test_each_page_loads_clean_and_charts_every_metric_on_both_sides(
    pages: tuple[dict[str, Any], dict[str, int], dict[str, str], Path], name: str
) -> None:
    loaded = pages[0][name]
    assert loaded.errors == []
    facts = loaded.facts
    expected = CASES[name][1] if name in CASES else "FAIL"
    assert facts["decision"] == expected
    names = {m["name"] for m in facts["metrics"]}
    assert names == ({"latency-p99"} if name == "histograms" else {"error-rate", "latency-p99"})
    for metric in facts["metrics"]:
        assert metric["charts"] >= 1
        drawn = {s["side"] for s in metric["sides"] if s["shapes"] > 0}
        assert drawn == {"baseline", "canary"}, metric
        assert metric["levels"] >= 1, metric  # the FAIL (and PASS) boundaries
    assert_not_blank(loaded.screenshot)
    assert facts["width"] <= 1100  # no sideways scrolling at a laptop's width


@pytest.mark.parametrize("name", list(CASES))
def test_analyze_pages_show_the_looks_and_link_each_query_to_prometheus(
    prometheus: PrometheusServer,
    pages: tuple[dict[str, Any], dict[str, int], dict[str, str], Path],
    name: str,
) -> None:
    facts = pages[0][name].facts
    for metric in facts["metrics"]:
        assert metric["bands"] == LOOKS, metric  # the effect and its bounds, look by look
        graphs = [link for link in metric["links"] if link.startswith(f"{prometheus.url}/graph?")]
        assert len(graphs) >= 2, metric["links"]  # both sides' queries
        assert any("track%3D%22canary%22" in link for link in graphs)


def test_the_list_shows_every_verdict_and_the_pages_need_the_token(
    pages: tuple[dict[str, Any], dict[str, int], dict[str, str], Path],
) -> None:
    loaded, statuses, ids, _ = pages
    assert loaded["list"].errors == []
    links = loaded["list"].facts["links"]
    for ident in ids.values():
        assert any(link.endswith(page_path(ident)) for link in links), (ident, links)
    assert set(statuses.values()) - {404} == {401}
    assert statuses["missing"] == 404
    assert_not_blank(loaded["list"].screenshot)
