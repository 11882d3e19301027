"""The domain error tree. Its classes encode what a caller should do about them.

- :class:`PermanentError` subclasses: retrying the same call gives the same answer; a
  controller fails the rollout (bad input, a spec error, a query the source rejects).
- :class:`TemporaryError` subclasses: retry with backoff; a metric source that is down,
  a server that cannot serve, a deadline.

No gRPC here: the server maps these to status codes (DESIGN.md, "Errors").
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FieldViolation:
    """One bad field: its path in the request (``metrics[2].canary.counts[5].bad``) and why."""

    field: str
    description: str


class GatekeeperError(Exception):
    """Base of every error the gatekeeper raises on purpose."""

    retryable: bool = False
    reason: str = "GATEKEEPER_ERROR"


class PermanentError(GatekeeperError):
    """The same call will fail the same way: fix the input or the configuration."""


class TemporaryError(GatekeeperError):
    """The call may succeed later: retry with backoff."""

    retryable = True


class InvalidArgument(PermanentError):
    """Bad input: each violation names the field and the allowed values."""

    reason = "INVALID_ARGUMENT"

    def __init__(self, violations: Sequence[FieldViolation] | FieldViolation) -> None:
        items = (violations,) if isinstance(violations, FieldViolation) else tuple(violations)
        if not items:
            raise ValueError("InvalidArgument needs at least one violation")
        self.violations: tuple[FieldViolation, ...] = items
        super().__init__("; ".join(f"{v.field}: {v.description}" for v in items))

    def __reduce__(self) -> tuple[type[InvalidArgument], tuple[tuple[FieldViolation, ...]]]:
        """Pickle by violations (errors cross process pools)."""
        return (type(self), (self.violations,))

    @classmethod
    def single(cls, field: str, description: str) -> InvalidArgument:
        """One violation."""
        return cls(FieldViolation(field, description))


class FailedPrecondition(PermanentError):
    """The request is well-formed but cannot be served as configured (spec, query)."""

    reason = "FAILED_PRECONDITION"


class SourceError(TemporaryError):
    """The metric source is down, timed out, answered 5xx or a partial response."""

    reason = "METRIC_SOURCE_ERROR"


class Unavailable(TemporaryError):
    """The gatekeeper cannot be reached or cannot serve now."""

    reason = "UNAVAILABLE"


class DeadlineExceeded(TemporaryError):
    """The call ran out of time."""

    reason = "DEADLINE_EXCEEDED"


def collect(violations: Iterable[FieldViolation]) -> None:
    """Raise :class:`InvalidArgument` with every violation, if there is any."""
    found = list(violations)
    if found:
        raise InvalidArgument(found)


class QueryRejected(FailedPrecondition):
    """The metric source refused a query as malformed (HTTP 400/422): fix the spec."""

    reason = "QUERY_REJECTED"

    def __init__(self, message: str, *, query: str, metric: str = "") -> None:
        self.query = query
        self.metric = metric
        super().__init__(message)

    def __reduce__(self) -> tuple[object, ...]:
        """Pickle with the query and metric (errors cross process pools)."""
        return (_query_rejected, (str(self), self.query, self.metric))


def _query_rejected(message: str, query: str, metric: str) -> QueryRejected:
    return QueryRejected(message, query=query, metric=metric)
