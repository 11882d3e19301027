"""Prometheus metrics of the service itself (not of the canaries it judges)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class ServiceMetrics:
    """The service's instruments, in a registry of their own (one per server).

    Parameters
    ----------
    registry : CollectorRegistry, optional
        Where to register; a new registry when omitted.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.calls = Counter(
            "gatekeeper_grpc_calls",
            "Finished gRPC calls by method and status code.",
            ("method", "code"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "gatekeeper_grpc_call_seconds",
            "Latency of gRPC calls by method, from the handler's start to its answer.",
            ("method",),
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "gatekeeper_grpc_calls_in_flight",
            "gRPC calls being served.",
            ("method",),
            registry=self.registry,
        )
        self.verdicts = Counter(
            "gatekeeper_verdicts",
            "Verdicts by decision.",
            ("decision",),
            registry=self.registry,
        )
        self.judge_seconds = Histogram(
            "gatekeeper_judge_seconds",
            "Time spent in the judge (statistics only, without decoding and encoding).",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.judgements = Counter(
            "gatekeeper_judgements",
            "Judge calls by where they were judged: 'inline' in the server's event loop "
            "(small, and the server quiet or every judge process full) or in the 'pool' of "
            "judge processes.",
            ("where",),
            registry=self.registry,
        )
        self.abandoned = Counter(
            "gatekeeper_judge_abandoned",
            "Pooled judgements whose caller left or ran out of time: 'queued' ones were "
            "cancelled before they ran, 'running' ones finished for nobody.",
            ("stage",),
            registry=self.registry,
        )

        self.http_requests = Counter(
            "gatekeeper_http_requests",
            "Finished HTTP requests of the adapters by route and status.",
            ("route", "status"),
            registry=self.registry,
        )
        self.http_latency = Histogram(
            "gatekeeper_http_request_seconds",
            "Latency of HTTP requests by route, from the body's arrival to the answer.",
            ("route",),
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )

    def dispatched(self, where: str) -> None:
        """Count a judgement by where it ran ("inline" or "pool")."""
        self.judgements.labels(where=where).inc()

    def abandon(self, stage: str) -> None:
        """Count a pooled judgement whose caller went away."""
        self.abandoned.labels(stage=stage).inc()

    def sample(self, name: str, labels: dict[str, str] | None = None) -> float:
        """The current value of one sample (0 when absent)."""
        value = self.registry.get_sample_value(name, labels or {})
        return 0.0 if value is None else value


class MetricsEndpoint:
    """``/metrics`` over HTTP, for Prometheus to scrape.

    Parameters
    ----------
    metrics : ServiceMetrics
        What to expose.
    host : str
        Address to bind.
    port : int
        Port to bind; 0 picks a free one (see :attr:`port`).
    """

    def __init__(self, metrics: ServiceMetrics, *, host: str, port: int) -> None:
        self._server, self._thread = start_http_server(port, addr=host, registry=metrics.registry)
        self.port: int = self._server.server_port

    def close(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
