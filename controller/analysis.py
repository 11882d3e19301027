"""An analysis step's look as an AnalyzeRequest, and the answer as stepper feedback.

The gatekeeper is reached over the wire only (``gatekeeper.api.v1`` messages and the
typed client's error tree). Every look sends the cumulative window from the analysis'
start and ``Look(index, planned)``: the gatekeeper is stateless and its inference valid at
every look. A gatekeeper that refuses the request as sent (bad spec, rejected query) is a
permanent error; one that cannot be reached, times out or fails is an ERROR, like an ERROR
verdict: never a PASS.
"""

from __future__ import annotations

import datetime
from typing import Protocol
from urllib.parse import quote

from google.protobuf import duration_pb2, timestamp_pb2

from controller.model import render_selector
from controller.stepper import LoadHint, RequestVerdict, VerdictFeedback
from controller.workloads import Names
from gatekeeper.api.v1 import gatekeeper_pb2 as pb
from gatekeeper.errors import GatekeeperError, PermanentError


class Analyzer(Protocol):
    """What the controller needs of a gatekeeper client (``GatekeeperClient`` fits)."""

    def analyze(
        self,
        request: pb.AnalyzeRequest,
        *,
        timeout: float | None = None,
        request_id: str | None = None,
    ) -> pb.Verdict:
        """Fetch and judge on the server."""
        ...


def _timestamp(seconds: float) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(datetime.datetime.fromtimestamp(seconds, tz=datetime.UTC))
    return stamp


def selector_values(*, namespace: str, names: Names, dedicated_baseline: bool) -> dict[str, str]:
    """The values of the selector placeholders."""
    return {
        "namespace": namespace,
        "name": names.canary,
        "stable": names.stable,
        "baseline": names.baseline if dedicated_baseline else names.stable,
        "canary": names.target,
    }


def analyze_request(
    action: RequestVerdict, *, namespace: str, names: Names, dedicated_baseline: bool
) -> pb.AnalyzeRequest:
    """The AnalyzeRequest of one look."""
    analysis = action.analysis
    values = selector_values(
        namespace=namespace, names=names, dedicated_baseline=dedicated_baseline
    )
    interval = duration_pb2.Duration()
    interval.FromTimedelta(datetime.timedelta(seconds=analysis.interval_seconds))
    return pb.AnalyzeRequest(
        spec=analysis.spec or "",
        spec_name=analysis.spec_name or "",
        baseline_selector=render_selector(analysis.baseline_selector, values=values),
        canary_selector=render_selector(analysis.canary_selector, values=values),
        start=_timestamp(action.start),
        end=_timestamp(action.end),
        interval=interval,
        look=pb.Look(index=action.look, planned=action.planned),
    )


def request_id(action: RequestVerdict, *, namespace: str, names: Names, revision: str) -> str:
    """``namespace/name/revision/step-I/look-K``: one id per look, in both logs."""
    return look_id(
        namespace=namespace,
        canary=names.canary,
        revision=revision,
        step_index=action.step_index,
        look=action.look,
    )


def look_id(*, namespace: str, canary: str, revision: str, step_index: int, look: int) -> str:
    """The request id of one look (see :func:`request_id`)."""
    return f"{namespace}/{canary}/{revision}/step-{step_index}/look-{look}"


def verdict_page(ui_url: str, ident: str) -> str:
    """The gatekeeper's page of the verdict given under request id ``ident``.

    The gatekeeper serves it at ``<ui_url>/verdicts/<request id>`` (``ui_url`` such as
    ``https://gatekeeper.example/ui``) while it still keeps the verdict.
    """
    return f"{ui_url.rstrip('/')}/verdicts/{quote(ident, safe='/:=+-._')}"


def feedback(verdict: pb.Verdict, action: RequestVerdict) -> VerdictFeedback:
    """The stepper's view of a verdict; an unspecified decision counts as ERROR."""
    decision = pb.Decision.Name(verdict.decision).removeprefix("DECISION_")
    if decision not in ("PASS", "FAIL", "INCONCLUSIVE"):
        decision = "ERROR"
    hint = verdict.load_hint if verdict.HasField("load_hint") else None
    return VerdictFeedback(
        step_index=action.step_index,
        look=action.look,
        decision=decision,
        summary=verdict.summary or f"{decision} without a summary",
        load_hint=None
        if hint is None
        else LoadHint(
            canary_requests_needed=hint.canary_requests_needed, rps=hint.rps, seconds=hint.seconds
        ),
    )


def error_feedback(error: Exception, action: RequestVerdict) -> VerdictFeedback:
    """The stepper's view of a failed call: permanent for refusals, ERROR otherwise."""
    kind = type(error).__name__
    permanent = isinstance(error, PermanentError)
    if not isinstance(error, GatekeeperError):
        kind = f"unexpected {kind}"
    return VerdictFeedback(
        step_index=action.step_index,
        look=action.look,
        decision="ERROR",
        summary=f"gatekeeper call failed ({kind}): {error}",
        permanent=permanent,
    )
