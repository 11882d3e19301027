"""Prometheus (and Thanos, Mimir, VictoriaMetrics: anything with the Prometheus HTTP API).

All I/O runs on an event loop with aiohttp, so that every fetch is bounded and cancellable:

- **one deadline per call**: :meth:`PrometheusSource.query_many` answers all the queries of
  one Analyze call, retries included, by ``deadline_seconds`` (or the caller's deadline if
  sooner); a query without an answer by then is a :class:`~gatekeeper.errors.SourceError`
  naming the source and the deadline. Each attempt is bounded as a whole
  (``timeout_seconds`` from connect to the last byte), so a server that trickles its answer
  a byte a second is cut off like one that never answers. A cancelled call (its client went
  away, the server shuts down) closes its connections at once: no thread runs on.
- **bounded answers**: at most ``max_answer_bytes`` on the wire and ``max_decompressed_bytes``
  after gzip or deflate (decompressed incrementally, never beyond the limit), and at most the
  window's evaluation times as points per series (:mod:`gatekeeper.sources.answer`). A refusal
  names the limit and is not retried.

Failure handling (DESIGN.md, "Errors"): connection errors, timeouts, 429 and 5xx are retried
with exponential backoff and then raised as :class:`~gatekeeper.errors.SourceError`; a
response with warnings (a partial response from Thanos or a federated setup) or of the wrong
shape is a SourceError too, never data; 400 and 422 are
:class:`~gatekeeper.errors.QueryRejected`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import ssl
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import aiohttp

from gatekeeper.errors import QueryRejected, SourceError
from gatekeeper.sources import answer
from gatekeeper.sources.base import RangeSeries, Window
from gatekeeper.sources.bounded import Limits, read_body

log = logging.getLogger(__name__)

_REJECTED = (400, 422)
#: Queries of one call in flight at once against the source.
CONCURRENCY = 8
MIB = 1024 * 1024
DEFAULT_DEADLINE_SECONDS = 30.0
DEFAULT_MAX_ANSWER_BYTES = 16 * MIB
DEFAULT_MAX_DECOMPRESSED_BYTES = 32 * MIB

Answer = list[RangeSeries] | SourceError


@dataclass(frozen=True, slots=True)
class PrometheusOptions:
    """How to reach a Prometheus-compatible server, and how long and how much to accept.

    Attributes
    ----------
    timeout_seconds : float
        One attempt of one query, from connect to the last byte (also sent to Prometheus
        as ``timeout``).
    deadline_seconds : float
        All queries and retries of one call (one Analyze); a caller's earlier deadline wins.
    retries : int
        Extra attempts after a connection error, timeout, 429 or 5xx.
    backoff_seconds : float
        First backoff; doubled each retry, with jitter.
    max_answer_bytes : int
        Largest answer accepted, as received (compressed or not).
    max_decompressed_bytes : int
        Largest answer accepted after decompression.
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
    deadline_seconds: float = DEFAULT_DEADLINE_SECONDS
    retries: int = 3
    backoff_seconds: float = 0.2
    max_answer_bytes: int = DEFAULT_MAX_ANSWER_BYTES
    max_decompressed_bytes: int = DEFAULT_MAX_DECOMPRESSED_BYTES
    bearer_token: str | None = None
    basic_auth: tuple[str, str] | None = None
    ca_file: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    insecure_skip_verify: bool = False
    headers: Mapping[str, str] | None = None

    def __post_init__(self) -> None:
        for name in ("timeout_seconds", "deadline_seconds", "max_answer_bytes"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")
        if self.max_decompressed_bytes < self.max_answer_bytes:
            raise ValueError("max_decompressed_bytes must be >= max_answer_bytes")
        if self.retries < 0 or self.backoff_seconds < 0:
            raise ValueError("retries and backoff_seconds must be >= 0")


class PrometheusSource:
    """A :class:`~gatekeeper.sources.base.MetricSource` over the Prometheus HTTP API.

    Also a :class:`~gatekeeper.sources.base.BatchSource`: :meth:`query_many` answers all the
    queries of a call on the running event loop within one deadline.
    """

    def __init__(self, url: str, options: PrometheusOptions | None = None) -> None:
        self.url = url.rstrip("/")
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(f"the Prometheus URL must start with http:// or https://, got {url!r}")
        self.options = options or PrometheusOptions()
        opts = self.options
        self._headers = {"Accept-Encoding": "gzip, deflate", **dict(opts.headers or {})}
        if opts.bearer_token:
            self._headers["Authorization"] = f"Bearer {opts.bearer_token}"
        if opts.basic_auth is not None:
            self._headers["Authorization"] = aiohttp.encode_basic_auth(*opts.basic_auth)
        self._ssl = _ssl_context(opts)
        self._limits = Limits(
            answer_bytes=opts.max_answer_bytes, decompressed_bytes=opts.max_decompressed_bytes
        )

    @property
    def deadline_seconds(self) -> float:
        """All queries and retries of one call end by then (``options.deadline_seconds``)."""
        return self.options.deadline_seconds

    def close(self) -> None:
        """Nothing to release: every call opens and closes its own connections."""

    def query_range(self, query: str, *, window: Window) -> list[RangeSeries]:
        """Evaluate ``query`` at every time of ``window``, blocking, within the deadline.

        Not for a thread that runs an event loop: there, await :meth:`query_many`.
        """
        (found,) = asyncio.run(self.query_many([query], window=window))
        if isinstance(found, SourceError):
            raise found
        return found

    async def query_many(
        self, queries: Sequence[str], *, window: Window, timeout: float | None = None
    ) -> list[Answer]:
        """Every query's series, or its SourceError, within one deadline.

        Parameters
        ----------
        queries : sequence of str
            The call's queries; at most :data:`CONCURRENCY` run at once.
        window : Window
            Where to evaluate them.
        timeout : float, optional
            Seconds the caller can wait; the source's ``deadline_seconds`` when sooner or
            not given.

        Raises
        ------
        QueryRejected
            When the source refuses a query (the other queries are cancelled).
        """
        limit = self.options.deadline_seconds
        budget = limit if timeout is None else min(limit, timeout)
        gate = asyncio.Semaphore(CONCURRENCY)
        connector = aiohttp.TCPConnector(ssl=self._ssl, limit=CONCURRENCY)
        async with aiohttp.ClientSession(
            connector=connector,
            headers=self._headers,
            auto_decompress=False,  # bounded.read_body inflates, within the limits
            trust_env=True,  # HTTP(S)_PROXY and NO_PROXY, as the requests-based client honoured
        ) as session:

            async def one(query: str) -> Answer:
                async with gate:
                    return await self._query(session, query, window)

            tasks = [asyncio.ensure_future(one(q)) for q in queries]
            try:
                done, pending = await asyncio.wait(
                    tasks, timeout=max(0.0, budget), return_when=asyncio.FIRST_EXCEPTION
                )
            finally:  # on a deadline and on cancellation: nothing runs on
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
        for task in done:
            error = task.exception()
            if error is not None:  # QueryRejected, or a bug
                raise error
        late = SourceError(
            f"Prometheus at {self.url} did not answer within the call's deadline of {budget:.3g}s"
        )
        answers = [late if task in pending else task.result() for task in tasks]
        if pending:
            log.warning("prometheus: %d of %d queries past the deadline", len(pending), len(tasks))
        return answers

    async def _query(self, session: aiohttp.ClientSession, query: str, window: Window) -> Answer:
        params = {
            "query": query,
            "start": f"{window.start + window.step:.3f}",
            "end": f"{window.start + window.points * window.step:.3f}",
            "step": f"{window.step:g}",
            "timeout": f"{self.options.timeout_seconds:g}s",
        }
        try:
            body = await self._request(session, params, query)
        except SourceError as error:
            return error
        try:
            if len(body) > answer.INLINE_PARSE_BYTES:  # bounded CPU, off the event loop
                return await asyncio.to_thread(
                    answer.parse, body, url=self.url, query=query, window=window
                )
            return answer.parse(body, url=self.url, query=query, window=window)
        except SourceError as error:
            return error

    async def _request(
        self, session: aiohttp.ClientSession, params: dict[str, str], query: str
    ) -> bytearray:
        attempts = self.options.retries + 1
        problem = ""
        for attempt in range(attempts):
            if attempt:
                delay = self.options.backoff_seconds * 2 ** (attempt - 1)
                await asyncio.sleep(delay * (0.5 + random.random()))
            started = time.monotonic()
            try:
                async with asyncio.timeout(self.options.timeout_seconds):
                    status, body = await self._post(session, params)
            except TimeoutError:
                problem = f"timed out after {time.monotonic() - started:.3g}s"
                continue
            except aiohttp.ClientError as exc:
                problem = f"unreachable: {type(exc).__name__}"
                continue
            text = _error_text(body)
            if status in _REJECTED:
                raise QueryRejected(
                    f"Prometheus rejected the query ({status}): {text}", query=query
                )
            if status >= 500 or status == 429:
                problem = f"answered {status}: {text}"
                continue
            if status != 200:
                raise SourceError(f"Prometheus at {self.url} answered {status}: {text}")
            return body
        log.warning("prometheus query failed after %d attempts: %s", attempts, problem)
        raise SourceError(f"Prometheus at {self.url} {problem} ({attempts} attempts)")

    async def _post(
        self, session: aiohttp.ClientSession, params: dict[str, str]
    ) -> tuple[int, bytearray]:
        async with session.post(f"{self.url}/api/v1/query_range", data=params) as response:
            body = await read_body(response, self._limits, source=f"Prometheus at {self.url}")
            return response.status, body


def _ssl_context(options: PrometheusOptions) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=options.ca_file)
    if options.insecure_skip_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if options.client_cert:
        context.load_cert_chain(options.client_cert, options.client_key)
    return context


def _error_text(body: bytearray) -> str:
    text = body[:2000].decode("utf-8", "replace")
    try:
        document = json.loads(body)
    except ValueError:
        return text[:200].strip() or "(empty body)"
    if isinstance(document, dict):
        return str(document.get("error") or document)[:300]
    return text[:300]
