"""OpenTelemetry traces for the gRPC server and the model calls (the optional ``otel`` extra).

Off unless the standard OpenTelemetry variables ask for it: ``OTEL_EXPORTER_OTLP_ENDPOINT``
(or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) set, and ``OTEL_SDK_DISABLED`` not ``true``. The
exporter is OTLP over gRPC and reads the rest of its configuration (headers, certificate,
timeout) from the same variables; ``OTEL_SERVICE_NAME`` names the service (default
``moderation``) and ``OTEL_TRACES_SAMPLER`` samples as the SDK defines.

Each RPC is a server span (a caller's ``traceparent`` continues its trace); each model call is
an HTTP client span inside it. Spans carry methods, status codes, hosts and timings, never
the content: the HTTP instrumentation records the URL and status only, not bodies. The decision
log line and the access line carry ``trace_id`` and ``span_id``, so a log line leads to its
trace.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from moderation.errors import ConfigError

if TYPE_CHECKING:
    import grpc
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter


def wanted(environ: Mapping[str, str] = os.environ) -> bool:
    """True when the environment asks for traces."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return bool(
        environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


@dataclass(frozen=True, slots=True)
class Tracing:
    """A tracer provider wired to an exporter, and the pieces that use it."""

    provider: TracerProvider

    def server_interceptor(self) -> grpc.aio.ServerInterceptor:
        """The interceptor that opens a span per RPC (outermost, so it times everything)."""
        from opentelemetry.instrumentation.grpc import aio_server_interceptor

        interceptor: grpc.aio.ServerInterceptor = aio_server_interceptor(  # type: ignore[no-untyped-call]
            tracer_provider=self.provider
        )
        return interceptor

    def shutdown(self) -> None:
        """Export what is pending and stop."""
        self.provider.shutdown()


def start(
    environ: Mapping[str, str] = os.environ, exporter: SpanExporter | None = None
) -> Tracing | None:
    """Traces as the environment asks (None: off); ``exporter`` replaces OTLP (tests).

    Instruments httpx from here on, so the model client built afterwards makes spans.
    Raises ``ConfigError`` when traces are asked for without the extra installed.
    """
    if exporter is None and not wanted(environ):
        return None
    try:
        from opentelemetry import trace
        from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    except ImportError as exc:
        raise ConfigError(
            "OTEL_EXPORTER_OTLP_ENDPOINT asks for traces, but the tracing extra is not "
            "installed: pip install 'moderation[otel]'"
        ) from exc
    name = environ.get("OTEL_SERVICE_NAME") or "moderation"
    provider = TracerProvider(resource=Resource.create({"service.name": name}))
    if exporter is None:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    else:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    HTTPXClientInstrumentor().instrument(tracer_provider=provider)
    return Tracing(provider)


def log_processor() -> Any:
    """A structlog processor adding the current span's ``trace_id`` and ``span_id``; None
    without the extra (``start`` then says what to install)."""
    try:
        from opentelemetry import trace
    except ImportError:
        return None
    current_span = trace.get_current_span

    def trace_ids(
        _logger: Any, _name: str, event: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        context = current_span().get_span_context()
        if context.is_valid:
            event["trace_id"] = format(context.trace_id, "032x")
            event["span_id"] = format(context.span_id, "016x")
        return event

    return trace_ids
