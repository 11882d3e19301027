"""The verdict service: servicer, error table, auth, observability and lifecycle, and the
HTTP adapters beside gRPC (:mod:`.http`, :mod:`.flagger`, :mod:`.kayenta_remote`).

Start one with :func:`gatekeeper.server.app.start` (in-process) or ``gatekeeper serve``;
:mod:`.verdicts` is how other parts see every verdict served.
"""
