"""Prometheus metrics on their own port: RPCs, decisions, escalations, the model, the cache.

The endpoint listens on loopback unless told otherwise; beyond loopback it can ask for a bearer
token and speak TLS (the gRPC server's own certificate, and its client CA for mTLS).
RPC metrics follow the go-grpc-prometheus names (``grpc_server_started_total``,
``grpc_server_handled_total``, ``grpc_server_handling_seconds``). Decision metrics are fed by
the ``Moderator``'s result hook; model, breaker and cache figures are read from the escalator
at scrape time. Each ``Metrics`` has its own registry (tests build several).
"""

from __future__ import annotations

import hmac
import ssl
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import (
    CollectorRegistry,
    Counter,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    make_wsgi_app,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import ThreadingWSGIServer
from prometheus_client.registry import Collector

from moderation.domain import ModelUsage, ModerationResult

_LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
    5,
    10,
    30,
)


class _ModelCollector(Collector):
    """Reads the model's figures (``ModelUsage``) when Prometheus scrapes."""

    def __init__(self, usage: Callable[[], ModelUsage]) -> None:
        self._usage = usage

    def collect(self) -> Iterator[Any]:
        usage = self._usage()
        calls = CounterMetricFamily("moderation_model_requests", "HTTP requests sent to the model")
        calls.add_metric([], usage.requests)
        retries = CounterMetricFamily(
            "moderation_model_retries", "Model requests that were retries"
        )
        retries.add_metric([], usage.retries)
        tokens = CounterMetricFamily("moderation_model_tokens", "Tokens billed", labels=["kind"])
        tokens.add_metric(["prompt"], usage.prompt_tokens)
        tokens.add_metric(["completion"], usage.completion_tokens)
        cost = CounterMetricFamily("moderation_model_cost", "Cost reported by the endpoint")
        cost.add_metric([], usage.cost)
        breaker = GaugeMetricFamily(
            "moderation_model_breaker_state", "Circuit breaker: 0 closed, 1 half-open, 2 open"
        )
        breaker.add_metric([], {"closed": 0, "half_open": 1, "open": 2}[usage.breaker])
        hits = CounterMetricFamily(
            "moderation_verdict_cache", "Verdict cache look-ups", labels=["result"]
        )
        hits.add_metric(["hit"], usage.cache_hits)
        hits.add_metric(["miss"], usage.cache_misses)
        yield from (calls, retries, tokens, cost, breaker, hits)


class Children:
    """A labelled metric's children by their label values, each looked up once.

    ``labels`` checks and joins the values and takes a lock on every call (about 1.5 µs); the
    label sets here are small and fixed (methods, codes, decisions, jurisdictions, categories).
    """

    def __init__(self, metric: Counter | Histogram) -> None:
        self._metric = metric
        self._children: dict[tuple[str, ...], Any] = {}

    def __call__(self, *values: str) -> Any:
        """The child for ``values``."""
        try:
            return self._children[values]
        except KeyError:
            child = self._children[values] = self._metric.labels(*values)
            return child


class Metrics:
    """The service's metrics and their HTTP endpoint."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        labels = ["grpc_type", "grpc_service", "grpc_method"]
        self.started = Counter(
            "grpc_server_started", "RPCs started on the server", labels, registry=self.registry
        )
        self.handled = Counter(
            "grpc_server_handled",
            "RPCs completed on the server, by status code",
            [*labels, "grpc_code"],
            registry=self.registry,
        )
        self.handling = Histogram(
            "grpc_server_handling_seconds",
            "RPC handling time",
            labels,
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.decisions = Counter(
            "moderation_decisions",
            "Decisions",
            ["decision", "jurisdiction"],
            registry=self.registry,
        )
        self.labels = Counter(
            "moderation_labels",
            "Labels on decisions",
            ["category", "jurisdiction"],
            registry=self.registry,
        )
        self.escalations = Counter(
            "moderation_escalations",
            "Escalation outcomes (share: not NOT_NEEDED over all)",
            ["status"],
            registry=self.registry,
        )
        self.risk = Histogram(
            "moderation_risk_score",
            "The learned scorer's probability per decision (watch it for drift)",
            buckets=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0),
            registry=self.registry,
        )
        self.model_latency = Histogram(
            "moderation_model_latency_seconds",
            "Time spent on model calls that answered",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.client_calls = Counter(
            "moderation_client_calls",
            "Calls of the moderation service by client (the keys file's names; - for none)",
            ["client", "grpc_method", "grpc_code"],
            registry=self.registry,
        )
        # The process itself: CPU, memory, open files, start time; the runtime and its GC.
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self.client_calls_by = Children(self.client_calls)
        self.started_by, self.handled_by, self.handling_by = (
            Children(self.started),
            Children(self.handled),
            Children(self.handling),
        )
        self._decisions_by, self._labels_by, self._escalations_by = (
            Children(self.decisions),
            Children(self.labels),
            Children(self.escalations),
        )

    def watch(self, usage: Callable[[], ModelUsage]) -> None:
        """Report the model's request, token, cost, breaker and cache figures from ``usage``
        (``Moderator.model_usage``)."""
        self.registry.register(_ModelCollector(usage))

    def observe(self, result: ModerationResult) -> None:
        """Count one decision (the ``Moderator``'s result hook)."""
        self._decisions_by(result.decision.name, result.jurisdiction).inc()
        for label in result.labels:
            self._labels_by(label.category.name, result.jurisdiction).inc()
        self._escalations_by(result.escalation.status.name).inc()
        if result.risk is not None:
            self.risk.observe(result.risk)
        if result.escalation.latency_s and result.escalation.status.name != "CACHED":
            self.model_latency.observe(result.escalation.latency_s)

    def serve(self, host: str, port: int, access: MetricsAccess | None = None) -> int:
        """Serve ``/metrics`` on ``host:port`` from a daemon thread; returns the port.

        With ``access``, a scrape must carry ``Authorization: Bearer <token>`` (else 401),
        and the endpoint speaks TLS (mTLS with a client CA).
        """
        access = access or MetricsAccess()
        app = _guarded(make_wsgi_app(self.registry), access.token)
        server = make_server(host, port, app, ThreadingWSGIServer, handler_class=_QuietHandler)
        if access.cert_file is not None and access.key_file is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(access.cert_file, access.key_file)
            if access.client_ca_file is not None:
                context.load_verify_locations(access.client_ca_file)
                context.verify_mode = ssl.CERT_REQUIRED
            server.socket = context.wrap_socket(server.socket, server_side=True)
        threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
        return int(server.server_address[1])


@dataclass(frozen=True, slots=True)
class MetricsAccess:
    """Who may scrape: a bearer token, and TLS files (from settings)."""

    token: str = ""
    cert_file: Path | None = None
    key_file: Path | None = None
    client_ca_file: Path | None = None

    @property
    def protected(self) -> bool:
        """True when a scrape needs a token or a TLS client certificate."""
        return bool(self.token) or self.client_ca_file is not None


WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def _guarded(app: WsgiApp, token: str) -> WsgiApp:
    """``app`` behind a bearer token (compared in constant time); no token: ``app`` itself."""
    if not token:
        return app
    expected = f"Bearer {token}".encode()

    def guarded(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        presented = str(environ.get("HTTP_AUTHORIZATION", "")).encode()
        if not hmac.compare_digest(presented, expected):
            start_response(
                "401 Unauthorized",
                [("Content-Type", "text/plain"), ("WWW-Authenticate", 'Bearer realm="metrics"')],
            )
            return [b"send the metrics token as 'Authorization: Bearer <token>'\n"]
        return app(environ, start_response)

    return guarded


class _QuietHandler(WSGIRequestHandler):
    """No access lines on stderr (the service logs JSON only)."""

    def log_message(self, format: str, *args: Any) -> None:  # the base's name
        """Say nothing."""
