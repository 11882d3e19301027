"""The gRPC verdict service: servicer, error table, auth, observability and lifecycle.

Start one with :func:`gatekeeper.server.app.start` (in-process) or ``gatekeeper serve``.
"""
