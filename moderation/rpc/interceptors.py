"""One interceptor maps our exceptions to gRPC status codes, from one table.

Handlers raise domain errors; nothing else in the package picks status codes. The most
specific class in ``STATUS_BY_ERROR`` wins. Anything unknown becomes INTERNAL with a generic
message (the details go to the log, by type only: messages may quote user input).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import grpc
import structlog
from google.protobuf import duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from moderation.errors import InvalidRequest, ModerationError, Overloaded

log = structlog.get_logger("moderation.rpc")

#: Our exceptions and the status code each maps to; the most specific match wins.
STATUS_BY_ERROR: Mapping[type[BaseException], grpc.StatusCode] = {
    InvalidRequest: grpc.StatusCode.INVALID_ARGUMENT,
    Overloaded: grpc.StatusCode.RESOURCE_EXHAUSTED,
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
        retry = error_details_pb2.RetryInfo(
            retry_delay=duration_pb2.Duration(seconds=int(error.retry_after), nanos=0)
        )
        status.details.add().Pack(retry)
    else:
        status.code = code_pb2.INTERNAL
        status.message = "internal error"
    return status


async def _abort(
    context: grpc.aio.ServicerContext[Any, Any], error: BaseException, method: str
) -> None:
    code = status_for(error)
    if code is grpc.StatusCode.INTERNAL:
        log.error(
            "rpc.internal_error", method=method, error_type=type(error).__name__, exc_info=False
        )
    await context.abort_with_status(rpc_status.to_status(rich_status(error)))


class ErrorMapping(grpc.aio.ServerInterceptor):
    """Turns exceptions raised by handlers into statuses (see ``STATUS_BY_ERROR``)."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Any]],
        details: grpc.HandlerCallDetails,
    ) -> Any:
        handler: Any = await continuation(details)
        if handler is None:
            return handler
        method = details.method
        if handler.unary_unary is not None:
            inner_uu = handler.unary_unary

            async def unary_unary(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
                try:
                    return await inner_uu(request, context)
                except (asyncio.CancelledError, grpc.aio.AbortError):
                    raise
                except Exception as error:
                    await _abort(context, error, method)
                    raise  # unreachable: abort raises

            return grpc.unary_unary_rpc_method_handler(
                unary_unary,
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.stream_stream is not None:
            inner_ss = handler.stream_stream

            async def stream_stream(
                requests: AsyncIterator[Any], context: grpc.aio.ServicerContext[Any, Any]
            ) -> AsyncIterator[Any]:
                try:
                    async for response in inner_ss(requests, context):
                        yield response
                except (asyncio.CancelledError, grpc.aio.AbortError):
                    raise
                except Exception as error:
                    await _abort(context, error, method)

            return grpc.stream_stream_rpc_method_handler(
                stream_stream,
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler
