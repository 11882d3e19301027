"""Prometheus (and Thanos, Mimir, VictoriaMetrics: anything with the Prometheus HTTP API).

Built on prometheus-api-client's ``PrometheusConnect``, which holds the configured HTTP
session (auth, TLS, headers such as ``X-Scope-OrgID``). Its ``custom_query_range`` hides
the HTTP status and drops the response's ``warnings``, both of which decide here between
"the source is down" (retry, then ERROR) and "the query is wrong" (fix the spec), so range
queries go through that same configured session directly.

Failure handling (DESIGN.md, "Errors"): connection errors, timeouts and 5xx are retried
with exponential backoff and then raised as :class:`~gatekeeper.errors.SourceError`; a
response with warnings (a partial response from Thanos or a federated setup) is a
SourceError too, never data; 400 and 422 are
:class:`~gatekeeper.errors.QueryRejected`.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import requests
from prometheus_api_client import PrometheusConnect
from urllib3.util.retry import Retry

from gatekeeper.errors import QueryRejected, SourceError
from gatekeeper.sources.base import RangeSeries, Window

log = logging.getLogger(__name__)

_REJECTED = (400, 422)


@dataclass(frozen=True, slots=True)
class PrometheusOptions:
    """How to reach a Prometheus-compatible server.

    Attributes
    ----------
    timeout_seconds : float
        Per-query timeout (sent to Prometheus as ``timeout`` and used for the HTTP call).
    retries : int
        Extra attempts after a connection error, timeout or 5xx.
    backoff_seconds : float
        First backoff; doubled each retry, with jitter.
    bearer_token : str or None
        Sent as ``Authorization: Bearer``.
    basic_auth : (user, password) or None
    ca_file : str or None
        CA bundle to verify the server's certificate.
    client_cert, client_key : str or None
        Client certificate for mutual TLS.
    insecure_skip_verify : bool
        Do not verify the server's certificate.
    headers : mapping
        Extra headers, such as ``X-Scope-OrgID`` for Mimir or Cortex tenants.
    """

    timeout_seconds: float = 10.0
    retries: int = 3
    backoff_seconds: float = 0.2
    bearer_token: str | None = None
    basic_auth: tuple[str, str] | None = None
    ca_file: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    insecure_skip_verify: bool = False
    headers: Mapping[str, str] | None = None


class PrometheusSource:
    """A :class:`~gatekeeper.sources.base.MetricSource` over the Prometheus HTTP API."""

    def __init__(self, url: str, options: PrometheusOptions | None = None) -> None:
        self.url = url.rstrip("/")
        self.options = options or PrometheusOptions()
        opts = self.options
        headers = dict(opts.headers or {})
        if opts.bearer_token:
            headers["Authorization"] = f"Bearer {opts.bearer_token}"
        self._client = PrometheusConnect(
            url=self.url,
            headers=headers or None,
            disable_ssl=opts.insecure_skip_verify,
            retry=Retry(total=0),  # retries are ours: they must see the status
            auth=opts.basic_auth,
            timeout=opts.timeout_seconds,
        )
        session = self._client._session  # the client's configured session (see module docstring)
        if opts.ca_file and not opts.insecure_skip_verify:
            session.verify = opts.ca_file
        if opts.client_cert:
            session.cert = (
                (opts.client_cert, opts.client_key) if opts.client_key else opts.client_cert
            )
        self._session: requests.Session = session

    def close(self) -> None:
        """Release the HTTP connections."""
        self._client.close()

    def query_range(self, query: str, *, window: Window) -> list[RangeSeries]:
        """Evaluate ``query`` at every time of ``window`` (see the module docstring for errors)."""
        params = {
            "query": query,
            "start": f"{window.start + window.step:.3f}",
            "end": f"{window.start + window.points * window.step:.3f}",
            "step": f"{window.step:g}",
            "timeout": f"{self.options.timeout_seconds:g}s",
        }
        body = self._request("/api/v1/query_range", params, query)
        return [_series(item) for item in body.get("data", {}).get("result", [])]

    def _request(self, path: str, params: dict[str, str], query: str) -> dict[str, Any]:
        attempts = self.options.retries + 1
        problem = ""
        for attempt in range(attempts):
            if attempt:
                delay = self.options.backoff_seconds * 2 ** (attempt - 1)
                time.sleep(delay * (0.5 + random.random()))
            try:
                response = self._session.request(
                    "POST",
                    f"{self.url}{path}",
                    data=params,
                    headers=self._client.headers,
                    auth=self._client.auth,
                    timeout=self.options.timeout_seconds,
                )
            except requests.Timeout:
                problem = f"timed out after {self.options.timeout_seconds:g}s"
                continue
            except requests.RequestException as exc:
                problem = f"unreachable: {type(exc).__name__}"
                continue
            status, text = response.status_code, _error_text(response)
            if status in _REJECTED:
                raise QueryRejected(
                    f"Prometheus rejected the query ({status}): {text}", query=query
                )
            if status >= 500 or status == 429:
                problem = f"answered {status}: {text}"
                continue
            if status != 200:
                raise SourceError(f"Prometheus at {self.url} answered {status}: {text}")
            return _checked(response, self.url)
        log.warning("prometheus query failed after %d attempts: %s", attempts, problem)
        raise SourceError(f"Prometheus at {self.url} {problem} ({attempts} attempts)")


def _error_text(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200].strip() or response.reason
    return str(body.get("error") or body)[:300]


def _checked(response: requests.Response, url: str) -> dict[str, Any]:
    try:
        body: dict[str, Any] = response.json()
    except ValueError:
        raise SourceError(f"Prometheus at {url} answered with a body that is not JSON") from None
    if body.get("status") != "success":
        raise SourceError(
            f"Prometheus at {url} answered status {body.get('status')!r}: {body.get('error')}"
        )
    warnings = body.get("warnings") or []
    if warnings:
        raise SourceError(
            f"Prometheus at {url} answered a partial response: {'; '.join(map(str, warnings))}"
        )
    if body.get("data", {}).get("resultType") not in ("matrix", None):
        raise SourceError(
            f"Prometheus at {url} answered a {body['data']['resultType']}, not a matrix"
        )
    return body


def _value(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan


def _series(item: Mapping[str, Any]) -> RangeSeries:
    points = item.get("values", [])
    times = np.fromiter((float(p[0]) for p in points), dtype=float, count=len(points))
    values = np.fromiter((_value(p[1]) for p in points), dtype=float, count=len(points))
    return RangeSeries(labels=dict(item.get("metric", {})), times=times, values=values)
