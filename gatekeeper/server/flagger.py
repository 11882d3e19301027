"""Flagger's webhooks: ``POST /flagger/rollout`` and ``POST /flagger/confirm-promotion``.

Flagger posts ``{name, namespace, phase, checksum, metadata}`` and goes on only on 200-202;
it retries a 5xx and counts anything else as a failed check (DESIGN.md, "Drop-in
adapters"). Each call is one Analyze of the canary ``<name>`` against its primary
``<name>-primary``:

=================================  ======  ============  ======  ======
webhook                            PASS    INCONCLUSIVE  FAIL    ERROR
=================================  ======  ============  ======  ======
``rollout`` (each check)           200     200           412     503
``confirm-promotion``              200     412           412     412
=================================  ======  ============  ======  ======

``metadata`` (string values) names the spec and may override the rest:

- ``spec`` (required): a spec the server was started with (``--spec-dir``);
- ``baselineSelector``, ``canarySelector``: PromQL label matchers; by default the pods of
  Flagger's two Deployments in ``namespace`` (``pod=~"<name>-primary-<hash>-<id>"`` and
  ``pod=~"<name>-<hash>-<id>"``);
- ``start`` (RFC 3339) and ``lookback`` (a duration such as ``30m``): without ``start`` the
  analysis starts at the canary's first sample within the lookback (default 1h).

Bad payloads are 400 with the field paths, like every endpoint.
"""

from __future__ import annotations

import time
from typing import Annotated

from aiohttp import web
from google.protobuf import timestamp_pb2
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from gatekeeper.api.v1 import gatekeeper_pb2 as pb
from gatekeeper.errors import FieldViolation, InvalidArgument, collect
from gatekeeper.server.http import GATEWAY, Gateway, pydantic_violations, verdict_response
from gatekeeper.spec import parse_duration

#: A Kubernetes object name (RFC 1123 label): safe to place in a PromQL matcher.
Name = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")]
METADATA_KEYS = ("spec", "baselineSelector", "canarySelector", "start", "lookback")
_POD = "[0-9a-zA-Z]+(-[0-9a-zA-Z]+)"
Statuses = dict["pb.Decision.ValueType", int]
ROLLOUT: Statuses = {pb.DECISION_PASS: 200, pb.DECISION_INCONCLUSIVE: 200, pb.DECISION_FAIL: 412}
CONFIRM: Statuses = {pb.DECISION_PASS: 200}


class Payload(BaseModel):
    """Flagger's webhook payload (fields Flagger may add later are ignored)."""

    model_config = ConfigDict(extra="ignore")

    name: Name
    namespace: Name
    phase: str = ""
    checksum: str = ""
    metadata: dict[str, str] = Field(default_factory=dict)


def payload(data: bytes) -> Payload:
    """Validate the body; violations name ``name``, ``metadata.start`` and so on."""
    try:
        return Payload.model_validate_json(data)
    except ValidationError as exc:
        raise InvalidArgument(pydantic_violations(exc)) from None


def selectors(hook: Payload) -> tuple[str, str]:
    """Baseline and canary matchers: the metadata's, or Flagger's naming."""
    namespace = f'namespace="{hook.namespace}"'
    baseline = f'{namespace}, pod=~"{hook.name}-primary-{_POD}"'
    canary = f'{namespace}, pod=~"{hook.name}-{_POD}"'
    return (
        hook.metadata.get("baselineSelector", baseline),
        hook.metadata.get("canarySelector", canary),
    )


def analyze_request(hook: Payload, *, now: float) -> pb.AnalyzeRequest:
    """The AnalyzeRequest of one webhook call."""
    meta = hook.metadata
    problems = [
        FieldViolation(f"metadata.{key}", f"unknown key; allowed: {', '.join(METADATA_KEYS)}")
        for key in meta
        if key not in METADATA_KEYS
    ]
    if not meta.get("spec", "").strip():
        problems.append(FieldViolation("metadata.spec", "is required: a spec served by --spec-dir"))
    baseline, canary = selectors(hook)
    request = pb.AnalyzeRequest(
        spec_name=meta.get("spec", ""), baseline_selector=baseline, canary_selector=canary
    )
    if "start" in meta:
        try:
            request.start.FromJsonString(meta["start"])
            request.end.CopyFrom(timestamp_pb2.Timestamp(seconds=int(now)))
        except ValueError:
            problems.append(
                FieldViolation("metadata.start", "must be RFC 3339, e.g. 2026-01-02T15:04:05Z")
            )
    if "lookback" in meta:
        try:
            request.lookback.FromSeconds(int(parse_duration(meta["lookback"])))
        except ValueError as exc:
            problems.append(FieldViolation("metadata.lookback", str(exc)))
    collect(problems)
    return request


async def _judge(request: web.Request, statuses: Statuses, other: int) -> web.Response:
    gateway: Gateway = request.app[GATEWAY]
    hook = payload(await request.read())
    verdict = await gateway.analyze(analyze_request(hook, now=time.time()))
    return verdict_response(verdict, status=statuses.get(verdict.decision, other))


async def rollout(request: web.Request) -> web.Response:
    """A rollout check: 200 unless FAIL (412, a failed check) or ERROR (503, retried)."""
    return await _judge(request, ROLLOUT, 503)


async def confirm_promotion(request: web.Request) -> web.Response:
    """The promotion gate: 200 only on PASS; 412 holds the promotion."""
    return await _judge(request, CONFIRM, 412)


def routes(app: web.Application) -> None:
    """Add the two webhooks."""
    app.router.add_post("/flagger/rollout", rollout)
    app.router.add_post("/flagger/confirm-promotion", confirm_promotion)
