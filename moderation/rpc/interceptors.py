"""One interceptor maps our exceptions to gRPC status codes, from one table.

Handlers raise domain errors; nothing else in the package picks status codes. The most
specific class in ``STATUS_BY_ERROR`` wins. Anything unknown becomes INTERNAL with a generic
message (the details go to the log, by type only: messages may quote user input).
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import grpc
import structlog
from google.protobuf import duration_pb2
from google.protobuf.message import DecodeError
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from moderation.errors import (
    DeadlineExceeded,
    InvalidRequest,
    ModerationError,
    Overloaded,
    PermissionDenied,
    ShuttingDown,
    Unauthenticated,
    Unavailable,
)
from moderation.metrics import Metrics
from moderation.rpc.access import OPEN_METHODS, Gate, current_client

log = structlog.get_logger("moderation.rpc")

#: Our own service's methods (their requests are parsed leniently, see ``MalformedRequest``).
OUR_METHODS = "/moderation.v1.ModerationService/"

#: Our exceptions and the status code each maps to; the most specific match wins.
STATUS_BY_ERROR: Mapping[type[BaseException], grpc.StatusCode] = {
    InvalidRequest: grpc.StatusCode.INVALID_ARGUMENT,
    Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    Overloaded: grpc.StatusCode.RESOURCE_EXHAUSTED,
    DeadlineExceeded: grpc.StatusCode.DEADLINE_EXCEEDED,
    Unavailable: grpc.StatusCode.UNAVAILABLE,
    ModerationError: grpc.StatusCode.INTERNAL,
}


def status_for(error: BaseException) -> grpc.StatusCode:
    """The status code for ``error``: its nearest class in ``STATUS_BY_ERROR``, else INTERNAL."""
    for cls in type(error).__mro__:
        code = STATUS_BY_ERROR.get(cls)
        if code is not None:
            return code
    return grpc.StatusCode.INTERNAL


def rich_status(error: BaseException) -> status_pb2.Status:
    """A ``google.rpc.Status`` with the details a client can act on."""
    code = status_for(error)
    status = status_pb2.Status(code=code.value[0])
    if isinstance(error, InvalidRequest):
        status.message = str(error)
        detail = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(
                    field=error.field, description=error.description
                )
            ]
        )
        status.details.add().Pack(detail)
    elif isinstance(error, Overloaded):
        status.message = str(error)
        delay = duration_pb2.Duration()
        delay.FromNanoseconds(max(1, round(error.retry_after * 1e9)))
        status.details.add().Pack(error_details_pb2.RetryInfo(retry_delay=delay))
    elif code is not grpc.StatusCode.INTERNAL:  # one of ours, said for the caller
        status.message = str(error)
    else:
        status.code = code_pb2.INTERNAL
        status.message = "internal error"
    return status


Context = grpc.aio.ServicerContext[Any, Any]


async def _abort(context: Context, error: BaseException, method: str) -> None:
    code = status_for(error)
    if code is grpc.StatusCode.INTERNAL:
        log.error(
            "rpc.internal_error", method=method, error_type=type(error).__name__, exc_info=False
        )
    await context.abort_with_status(rpc_status.to_status(rich_status(error)))


Behaviour = Callable[..., Awaitable[Any]]
#: Wraps a behaviour; told which kind of RPC it is (``unary`` or ``bidi_stream``).
Around = Callable[[Behaviour, str], Behaviour]


def _writing(inner: Callable[..., AsyncIterator[Any]]) -> Behaviour:
    """A streaming behaviour written as an async generator, as one that writes its answers
    (``context.write``) and returns None, like ours: one shape for every wrapper."""

    async def behaviour(requests: AsyncIterator[Any], context: Context) -> None:
        async for response in inner(requests, context):
            await context.write(response)

    return behaviour


class MalformedRequest:
    """Stands for a request message that could not be parsed (bytes that are not the message,
    or a string field that is not UTF-8). The handler refuses it as INVALID_ARGUMENT; on a
    stream, that item is answered with ``error`` and the stream goes on."""

    __slots__ = ("error",)
    content_id = ""

    def __init__(self, error: InvalidRequest) -> None:
        self.error = error


def _tolerant(deserialize: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    """``deserialize``, giving a ``MalformedRequest`` instead of raising."""

    def parse(raw: bytes) -> Any:
        try:
            return deserialize(raw)
        except DecodeError as exc:
            reason = str(exc).rpartition(": ")[2] or "corrupt bytes"
            return MalformedRequest(
                InvalidRequest("request", f"is not a valid message ({reason.rstrip('.')})")
            )

    return parse


def _wrap(handler: Any, around: Around, *, tolerant: bool = False) -> Any:
    """The same handler with its behaviour wrapped (our RPCs are unary or bidi streaming).

    A bidi behaviour is a coroutine reading and writing through its context (an async
    generator is adapted to that shape), so one wrapper serves both kinds and adds nothing
    per streamed message.
    """
    if handler is None:
        return handler
    deserializer = handler.request_deserializer
    if tolerant and deserializer is not None:
        deserializer = _tolerant(deserializer)
    if handler.unary_unary is not None:
        return grpc.unary_unary_rpc_method_handler(
            around(handler.unary_unary, "unary"),
            request_deserializer=deserializer,
            response_serializer=handler.response_serializer,
        )
    if handler.stream_stream is not None:
        inner = handler.stream_stream
        if inspect.isasyncgenfunction(inner):
            inner = _writing(inner)
        return grpc.stream_stream_rpc_method_handler(
            around(inner, "bidi_stream"),
            request_deserializer=deserializer,
            response_serializer=handler.response_serializer,
        )
    return handler


class _Wrapping(grpc.aio.ServerInterceptor):
    """An interceptor that wraps the behaviour of each method it cares for, as ``around_for``
    says (None: the handler as it is). With ``lenient``, requests to our service that cannot
    be parsed reach the behaviour as ``MalformedRequest``."""

    lenient = False

    def around_for(self, details: grpc.HandlerCallDetails) -> Around | None:
        """How to wrap the method's behaviour, or None to leave it alone."""
        raise NotImplementedError

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Any]],
        details: grpc.HandlerCallDetails,
    ) -> Any:
        handler = await continuation(details)
        around = self.around_for(details)
        if around is None:
            return handler
        lenient = self.lenient and details.method.startswith(OUR_METHODS)
        return _wrap(handler, around, tolerant=lenient)


class ErrorMapping(_Wrapping):
    """Turns exceptions raised by handlers into statuses (see ``STATUS_BY_ERROR``).

    Requests to our service that cannot be parsed reach the handler as ``MalformedRequest``
    (INVALID_ARGUMENT, not UNKNOWN with a parser's class name). An error raised after the
    client went away is that cancellation, not a fault of ours: it is neither logged nor
    answered.
    """

    lenient = True

    def around_for(self, details: grpc.HandlerCallDetails) -> Around:
        """Map what the behaviour raises to a status."""
        method = details.method

        def around(inner: Behaviour, kind: str) -> Behaviour:
            async def behaviour(request: Any, context: Context) -> Any:
                try:
                    if isinstance(request, MalformedRequest):
                        raise request.error
                    return await inner(request, context)
                except (asyncio.CancelledError, grpc.aio.AbortError):
                    raise
                except Exception as error:
                    if context.cancelled():
                        raise asyncio.CancelledError from error
                    await _abort(context, error, method)
                    raise  # unreachable: abort raises

            return behaviour

        return around


class Admission(_Wrapping):
    """Admits calls to our service: at most ``max_in_flight`` at once (more are refused with
    RESOURCE_EXHAUSTED, before any work), and none once the server is stopping (UNAVAILABLE,
    which clients retry elsewhere). Health checks and reflection are always admitted: a full
    server still answers its probes.
    """

    def __init__(self, max_in_flight: int) -> None:
        self._max = max_in_flight
        self.in_flight = 0
        self.closing = False

    def around_for(self, details: grpc.HandlerCallDetails) -> Around | None:
        """Count the call in, or refuse it; probes pass untouched."""
        if details.method.startswith(OPEN_METHODS):
            return None

        def around(inner: Behaviour, kind: str) -> Behaviour:
            async def behaviour(request: Any, context: Context) -> Any:
                if self.closing:
                    raise ShuttingDown("the server is shutting down; retry the call")
                if self.in_flight >= self._max:
                    raise Overloaded(f"the server is serving {self._max} calls at once")
                self.in_flight += 1
                try:
                    return await inner(request, context)
                finally:
                    self.in_flight -= 1

            return behaviour

        return around


class Access(_Wrapping):
    """Identifies the caller by API key (see ``rpc.access``); the servicer charges its rate,
    item by item.

    Errors are raised inside the behaviour, so ``ErrorMapping`` (outside this one) turns
    them into UNAUTHENTICATED.
    """

    def __init__(self, gate: Gate) -> None:
        self._gate = gate

    def around_for(self, details: grpc.HandlerCallDetails) -> Around | None:
        """Set ``current_client`` for the call; nothing to do without keys."""
        if not self._gate.enabled:
            return None
        metadata = {k: v for k, v in (details.invocation_metadata or ()) if isinstance(v, str)}
        method = details.method

        def around(inner: Behaviour, kind: str) -> Behaviour:
            async def behaviour(request: Any, context: Context) -> Any:
                current_client.set(self._gate.identify(method, metadata))
                return await inner(request, context)

            return behaviour

        return around


class Observe(_Wrapping):
    """Writes one access line per call, refused calls included, and with ``metrics`` counts
    and times every RPC by method and final status code (Prometheus names), and every call of
    our service by client.

    The line (``rpc.call``) holds the method, the status code, the time taken and the client's
    name from the keys file (``-`` without keys, or when the key was refused); never the
    request. Health checks and reflection are logged at DEBUG only.
    """

    def __init__(self, metrics: Metrics | None = None) -> None:
        self._metrics = metrics

    def around_for(self, details: grpc.HandlerCallDetails) -> Around:
        """Count, time and log the call."""
        method = details.method
        _, service, name = method.split("/", 2) if method.count("/") == 2 else ("", "", method)
        metrics = self._metrics
        probe = method.startswith(OPEN_METHODS)
        write = log.debug if probe else log.info

        def around(inner: Behaviour, kind: str) -> Behaviour:
            async def behaviour(request: Any, context: Context) -> Any:
                if metrics is not None:
                    metrics.started_by(kind, service, name).inc()
                began, error = time.monotonic(), None
                try:
                    return await inner(request, context)
                except BaseException as exc:
                    error = exc
                    raise
                finally:
                    took = time.monotonic() - began
                    code = context.code()
                    if code is None:
                        code = (
                            grpc.StatusCode.CANCELLED
                            if isinstance(error, asyncio.CancelledError)
                            else (
                                grpc.StatusCode.UNKNOWN if error is not None else grpc.StatusCode.OK
                            )
                        )
                    client = current_client.get()
                    who = client.name if client is not None else "-"
                    if metrics is not None:
                        metrics.handled_by(kind, service, name, code.name).inc()
                        metrics.handling_by(kind, service, name).observe(took)
                        if not probe:
                            metrics.client_calls_by(who, name, code.name).inc()
                    write(
                        "rpc.call",
                        method=method,
                        code=code.name,
                        duration_ms=round(took * 1000, 3),
                        client=who,
                    )

            return behaviour

        return around
