"""The verdict pages in a real headless chromium, fed by a real server and a real Prometheus.

A gatekeeper server (gRPC and HTTP, port 0, a bearer token) keeps its verdicts; Analyze
calls over gRPC judge the healthy, broken and quiet canaries of the Prometheus fixture look
by look, and a Judge call over HTTP sends histograms; chromium loads the pages from the
server's HTTP port with the token.
"""

from __future__ import annotations

import asyncio
import datetime
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gatekeeper.api.v1 import gatekeeper_pb2 as pb
from gatekeeper.client import GatekeeperClient, Security
from gatekeeper.server import app
from gatekeeper.ui.routes import page_path
from tests.integration import http_client
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
    with GatekeeperClient(server.target, security=Security(token=TOKEN)) as client:
        for name, (spec, _) in CASES.items():
            ids[name] = f"ns-generic/{spec}/rev1/step-1/look-{LOOKS}"
            span = prometheus.end - prometheus.start
            for look in range(1, LOOKS + 1):
                end = prometheus.start + span * look / LOOKS
                client.analyze(
                    _request(prometheus, spec, end=end, look=look),
                    request_id=f"ns-generic/{spec}/rev1/step-1/look-{look}",
                )
    raw = (ROOT / "examples" / "p99-regression.json").read_text()
    headers = {"Authorization": f"Bearer {TOKEN}", "X-Request-Id": "judge-over-http"}
    answer = http_client.call(f"{_base(server)}/v1/judge", body=raw, headers=headers)
    assert answer.status == 200, answer.body
    ids["histograms"] = "judge-over-http"
    return ids


def _base(server: app.ServerThread) -> str:
    return f"http://127.0.0.1:{server.running.http_port}"


async def _load(server: app.ServerThread, ids: dict[str, str], folder: Path) -> dict[str, Any]:
    base = _base(server)
    urls = {name: base + page_path(ident) for name, ident in ids.items()}
    urls["list"] = base + "/ui/"
    return await load_all(urls, folder, headers={"Authorization": f"Bearer {TOKEN}"})


def _statuses(server: app.ServerThread, ids: dict[str, str]) -> dict[str, int]:
    base, found = _base(server), {}
    for path in ("/ui/", page_path(ids["fail"]), "/ui/verdicts/nope"):
        found[f"anonymous {path}"] = http_client.call(base + path, method="GET").status
    headers = {"Authorization": f"Bearer {TOKEN}"}
    found["missing"] = http_client.call(
        f"{base}/ui/verdicts/nope", method="GET", headers=headers
    ).status
    return found


@dataclass
class Seen:
    """What the module's server gave: loaded pages, HTTP statuses, page ids, a preflight's page."""

    loaded: dict[str, Any]
    statuses: dict[str, int]
    ids: dict[str, str]
    folder: Path
    preflight: str


def _preflight(server: app.ServerThread, prometheus: PrometheusServer) -> str:
    """A preflight over gRPC, and its page over HTTP."""
    message = pb.AnalyzeRequest(
        spec_name="healthy", baseline_selector='track="baseline"', preflight=True
    )
    message.end.FromDatetime(datetime.datetime.fromtimestamp(prometheus.end, datetime.UTC))
    with GatekeeperClient(server.target, security=Security(token=TOKEN)) as client:
        client.analyze(message, request_id="preflight-1")
    headers = {"Authorization": f"Bearer {TOKEN}"}
    answer = http_client.call(
        _base(server) + page_path("preflight-1"), method="GET", headers=headers
    )
    assert answer.status == 200
    return answer.body.decode()


@pytest.fixture(scope="module")
def pages(prometheus: PrometheusServer, tmp_path_factory: pytest.TempPathFactory) -> Seen:
    specs = tmp_path_factory.mktemp("specs")
    for spec, _ in CASES.values():
        (specs / f"{spec}.yaml").write_text(SPEC.format(service=spec))
    token = specs / "token"
    token.write_text(TOKEN)
    server = app.ServerThread(
        app.ServerConfig(
            port=0,
            http_port=0,
            workers=1,
            prometheus_url=prometheus.url,
            spec_dir=specs,
            auth_token_file=token,
        )
    )
    try:
        ids = _judge_verdicts(server, prometheus)
        folder = tmp_path_factory.mktemp("screenshots")
        statuses = _statuses(server, ids)
        preflight = _preflight(server, prometheus)
        loaded = asyncio.run(_load(server, ids, folder))
    finally:
        server.stop()
    return Seen(loaded, statuses, ids, folder, preflight)


@pytest.mark.parametrize("name", [*CASES, "histograms"])
def test_each_page_loads_clean_and_charts_every_metric_on_both_sides(
    pages: Seen, name: str
) -> None:
    loaded = pages.loaded[name]
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
    pages: Seen,
    name: str,
) -> None:
    facts = pages.loaded[name].facts
    for metric in facts["metrics"]:
        assert metric["bands"] == LOOKS, metric  # the effect and its bounds, look by look
        graphs = [link for link in metric["links"] if link.startswith(f"{prometheus.url}/graph?")]
        assert len(graphs) >= 2, metric["links"]  # both sides' queries
        assert any("track%3D%22canary%22" in link for link in graphs)


def test_the_list_shows_every_verdict_and_the_pages_need_the_token(
    pages: Seen,
) -> None:
    loaded, statuses, ids = pages.loaded, pages.statuses, pages.ids
    assert loaded["list"].errors == []
    links = loaded["list"].facts["links"]
    for ident in ids.values():
        assert any(link.endswith(page_path(ident)) for link in links), (ident, links)
    assert set(statuses.values()) - {404} == {401}
    assert statuses["missing"] == 404
    assert_not_blank(loaded["list"].screenshot)


def test_a_preflight_has_a_page_with_every_metric_and_no_chart(pages: Seen) -> None:
    text = pages.preflight
    assert "preflight of healthy" in text
    for name in ("error-rate", "latency-p99"):
        assert f'data-metric="{name}"' in text
    assert "No chart: the verdict's data were not kept." in text
    assert "<svg" not in text
