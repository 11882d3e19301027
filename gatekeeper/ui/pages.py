"""Server-rendered HTML: the list of recent verdicts and one page per verdict.

Pages are plain HTML with inline CSS and inline SVG: no script, no fonts, nothing fetched,
so a page saved to a file is whole; a terminal browser (w3m, lynx) reads it, since what the
charts tell (levels, boundaries, effects look by look) is also in text and tables.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from urllib.parse import quote, urlencode

from gatekeeper.api.v1 import gatekeeper_pb2 as pb
from gatekeeper.present import decision_name
from gatekeeper.stats.model import HistogramSeries, MetricData, RatioSeries
from gatekeeper.ui import charts, views

STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em;max-width:72em;color:#111;background:#fff}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.2em .5em;
text-align:left;vertical-align:top}code{font-size:.85em;word-break:break-all}
.d{font-weight:bold;padding:.1em .5em;border-radius:.3em;color:#fff}
.PASS{background:#15803d}.FAIL{background:#b91c1c}.INCONCLUSIVE{background:#a16207}
.ERROR{background:#4b5563}section.metric{border-top:2px solid #ddd;margin-top:1.5em}
svg.chart{max-width:100%;height:auto;display:block;margin:.5em 0}
"""


@dataclass(frozen=True, slots=True)
class Page:
    """Everything one verdict's page shows.

    ``looks`` are (look index, verdict) of the analysis up to this one (one entry when the
    verdict was not a look); ``decided`` marks the deciding look of a replay, whose look k
    covers the window's first k intervals.
    """

    ident: str
    call: str
    at: float
    label: str
    verdict: pb.Verdict
    metrics: tuple[MetricData, ...]
    interval_seconds: float | None = None
    start: float | None = None
    looks: tuple[tuple[int, pb.Verdict], ...] = ()
    decided: int | None = None
    prometheus: str | None = None
    home: str | None = None


def _time(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _decision(verdict: pb.Verdict) -> str:
    name = decision_name(verdict.decision)
    return f'<span class="d {escape(name)}">{escape(name)}</span>'


def document(title: str, body: Sequence[str]) -> str:
    """A whole HTML document around ``body``."""
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>",
            *body,
            "</body></html>",
        ]
    )


def list_page(entries: Sequence[tuple[str, pb.Verdict, float, str, str]], *, limit: int) -> str:
    """The recent verdicts, newest first: (link, verdict, time, call, label) each."""
    rows = [
        "<tr>"
        f"<td>{escape(_time(at))}</td><td>{_decision(verdict)}</td><td>{escape(call)}</td>"
        f"<td>{escape(label)}</td>"
        f'<td><a href="{escape(link)}">{escape(verdict.summary or "(no summary)")}</a></td>'
        "</tr>"
        for link, verdict, at, call, label in entries
    ]
    body = [
        "<h1>Recent verdicts</h1>",
        f"<p>The last {limit} Judge and Analyze verdicts are kept in memory; "
        f"{len(entries)} now.</p>",
    ]
    if rows:
        head = (
            "<tr><th>time</th><th>decision</th><th>call</th><th>metrics</th><th>summary</th></tr>"
        )
        body += ["<table>", head, *rows, "</table>"]
    else:
        body.append("<p>No verdict yet.</p>")
    return document("canary-gatekeeper: recent verdicts", body)


def graph_link(prometheus: str, query: str, page: Page) -> str:
    """Prometheus' graph page for ``query`` over the page's window, where known."""
    params = {"g0.expr": query, "g0.tab": "0"}
    points = max((_points(m) for m in page.metrics), default=0)
    if page.start is not None and page.interval_seconds:
        span = points * page.interval_seconds
        params["g0.range_input"] = f"{max(span, page.interval_seconds):.0f}s"
        end = dt.datetime.fromtimestamp(page.start + span, dt.UTC)
        params["g0.end_input"] = end.strftime("%Y-%m-%d %H:%M:%S")
        params["g0.step_input"] = f"{page.interval_seconds:g}"
    return f"{prometheus.rstrip('/')}/graph?{urlencode(params, quote_via=quote)}"


def _points(data: MetricData) -> int:
    series = data.canary
    return series.intervals if isinstance(series, RatioSeries | HistogramSeries) else 0


def _queries(data: MetricData, page: Page) -> list[str]:
    return _query_items(list(data.queries), page) if data.queries else []


def _query_items(queries: list[str], page: Page) -> list[str]:
    items = []
    for shown in queries:
        side, _, query = shown.partition(": ")
        if not query:
            items.append(f"<li>{escape(shown)}</li>")
            continue
        text = f"{escape(side)}: <code>{escape(query)}</code>"
        if page.prometheus:
            link = escape(graph_link(page.prometheus, query, page))
            text += f' (<a href="{link}">graph in Prometheus</a>)'
        items.append(f"<li>{text}</li>")
    return ["<h3>Queries</h3><ul>", *items, "</ul>"]


def _summary_table(result: pb.MetricResult) -> list[str]:
    rows = [
        "<tr><th>side</th><th>count</th><th>rate</th><th>mean</th><th>p50</th><th>p99</th></tr>"
    ]
    for side in ("baseline", "canary"):
        s = getattr(result, side)
        cells = [charts.number(v) for v in (s.count, s.rate, s.mean, s.p50, s.p99)]
        rows.append(f"<tr><td>{side}</td>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    e = result.effect
    effect = (
        f"<p>Effect ({escape(e.scale or 'n/a')}): {charts.number(e.estimate)} "
        f"[{charts.number(e.lower)}, {charts.number(e.upper)}] at confidence "
        f"{charts.number(e.confidence)}; test {escape(result.test or 'n/a')}, "
        f"p = {charts.number(result.p_value)}.</p>"
    )
    return ["<table>", *rows, "</table>", effect]


def _levels_text(chart: charts.Chart, data: MetricData) -> str:
    if not chart.levels:
        return "<p>No boundary is drawn: the baseline has no level over the window.</p>"
    shown = ", ".join(f"{escape(lv.label)} {charts.number(lv.value)}" for lv in chart.levels)
    harm = data.settings.direction.value.lower()
    return (
        f"<p>Boundaries around the baseline's level over the window (harmful: {harm}): {shown}.</p>"
    )


def _looks_table(name: str, looks: Sequence[tuple[int, pb.Verdict]]) -> list[str]:
    rows = ["<tr><th>look</th><th>decision</th><th>outcome</th><th>effect [bounds]</th></tr>"]
    for index, verdict in looks:
        for r in verdict.metrics:
            if r.name == name:
                outcome = pb.Outcome.Name(r.outcome).removeprefix("OUTCOME_")
                e = r.effect
                bounds = f"{charts.number(e.estimate)} [{charts.number(e.lower)}, "
                bounds += f"{charts.number(e.upper)}]"
                rows.append(
                    f"<tr><td>{index}</td><td>{decision_name(verdict.decision)}</td>"
                    f"<td>{outcome}</td><td>{bounds}</td></tr>"
                )
    return ["<table>", *rows, "</table>"]


def _metric_section(data: MetricData, result: pb.MetricResult | None, page: Page) -> list[str]:
    name = data.settings.name
    decided = None if page.decided is None else page.decided - 1  # look k ends interval k-1
    chart = views.data_chart(data, interval_seconds=page.interval_seconds, mark=decided)
    out = [f'<section class="metric" data-metric="{escape(name)}">']
    outcome = "n/a" if result is None else pb.Outcome.Name(result.outcome).removeprefix("OUTCOME_")
    critical = " (critical)" if result is not None and result.critical else ""
    out.append(f"<h2>{escape(name)}: <span class='outcome'>{escape(outcome)}</span>{critical}</h2>")
    if result is not None:
        out.append(f"<p class='reason'>{escape(result.reason)}</p>")
    if data.error:
        out.append(f"<p>The data could not be had: {escape(data.error)}</p>")
    out += [charts.svg(chart), _levels_text(chart, data)]
    if result is not None:
        out += _summary_table(result)
    if page.looks and (page.looks[-1][0] > 1 or len(page.looks) > 1):
        effect = views.effect_chart(data, page.looks, mark=page.decided)
        if effect is not None:
            out += ["<h3>Look by look</h3>", charts.svg(effect), *_looks_table(name, page.looks)]
    out += _queries(data, page)
    out.append("</section>")
    return out


def _result_section(result: pb.MetricResult, page: Page) -> list[str]:
    """A metric the verdict has no data of (a preflight): its outcome, reason and numbers."""
    outcome = pb.Outcome.Name(result.outcome).removeprefix("OUTCOME_")
    out = [
        f'<section class="metric" data-metric="{escape(result.name)}">',
        f"<h2>{escape(result.name)}: <span class='outcome'>{escape(outcome)}</span></h2>",
        f"<p class='reason'>{escape(result.reason)}</p>",
        "<p>No chart: the verdict's data were not kept.</p>",
        *_summary_table(result),
    ]
    if result.queries:
        out += _query_items(list(result.queries), page)
    out.append("</section>")
    return out


def _timeline(page: Page) -> list[str]:
    if page.decided is None and len(page.looks) <= 1:
        return []
    rows = ["<tr><th>look</th><th>decision</th><th>score</th><th>summary</th></tr>"]
    for index, verdict in page.looks:
        mark = " (decision)" if index == page.decided else ""
        rows.append(
            f"<tr><td>{index}{mark}</td><td>{_decision(verdict)}</td>"
            f"<td>{verdict.score:.0f}</td><td>{escape(verdict.summary)}</td></tr>"
        )
    score = charts.Chart(
        title="score look by look",
        x_label="look",
        series=(
            charts.Series(
                "score", "canary", tuple(v.score for _, v in page.looks), x0=page.looks[0][0]
            ),
        ),
        mark=None if page.decided is None else float(page.decided),
        x_start=page.looks[0][0],
    )
    return ["<h2>Timeline of looks</h2>", charts.svg(score), "<table>", *rows, "</table>"]


def _head(page: Page) -> list[str]:
    v = page.verdict
    out = [] if page.home is None else [f'<p><a href="{escape(page.home)}">All verdicts</a></p>']
    out += [
        f"<h1>{_decision(v)} {escape(page.label)}</h1>",
        f"<p class='summary'>{escape(v.summary)}</p>",
        f"<p>{escape(page.call)} {escape(page.ident)} at {escape(_time(page.at))}; "
        f"score {v.score:.0f}.</p>",
    ]
    if page.start is not None:
        out.append(f"<p>Window from {escape(_time(page.start))}.</p>")
    if v.HasField("load_hint") and v.load_hint.canary_requests_needed > 0:
        h = v.load_hint
        need = (
            "unbounded"
            if math.isinf(h.canary_requests_needed)
            else f"{h.canary_requests_needed:,.0f}"
        )
        out.append(
            f"<p>Needs about {need} more canary requests ({h.rps:.3g} rps for {h.seconds} s).</p>"
        )
    return out


def verdict_page(page: Page) -> str:
    """One verdict's page: headline, timeline of looks (if any), then every metric."""
    results = {r.name: r for r in page.verdict.metrics}
    body = [*_head(page), *_timeline(page)]
    for data in page.metrics:
        body += _metric_section(data, results.get(data.settings.name), page)
    charted = {data.settings.name for data in page.metrics}
    for result in page.verdict.metrics:
        if result.name not in charted:
            body += _result_section(result, page)
    title = f"{decision_name(page.verdict.decision)} {page.label}: canary-gatekeeper"
    return document(title, body)
