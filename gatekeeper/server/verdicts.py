"""The verdict observer: told every Judge and Analyze verdict, over gRPC and HTTP alike.

Other parts of the server (the ``/ui/`` pages, for one) see the verdicts served without
a hook of their own in each transport: :func:`gatekeeper.server.app.start` takes an
``observer``, and :class:`~gatekeeper.server.servicer.GatekeeperServicer` calls it after
every verdict it answers, with the decoded request and the verdict. It runs on the event
loop, so it must be quick (append to a bounded buffer, say); an exception it raises is
logged and never reaches the caller.
"""

from __future__ import annotations

from typing import Literal, Protocol

from gatekeeper.api.v1 import gatekeeper_pb2 as pb

Method = Literal["Judge", "Analyze"]


class VerdictObserver(Protocol):
    """Called with each verdict the server answers (bad input and errors are not verdicts)."""

    def __call__(
        self, *, method: Method, request: pb.JudgeRequest | pb.AnalyzeRequest, verdict: pb.Verdict
    ) -> None:
        """Look at one verdict: ``method`` served ``request`` with ``verdict``."""
        ...
