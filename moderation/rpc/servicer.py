"""The ModerationService servicer: converts proto to domain and back, nothing more.

The deadline of each call bounds the model call. ModerateStream's scheduling (up to
``stream_window`` items at a time, reading no further until answers drain; the items streams
bring in one turn of the event loop screened together) is ``streams.StreamJudge``'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc
import structlog

from moderation.domain import Content, ModerationResult
from moderation.errors import BatchTooLarge, InvalidRequest, PermissionDenied
from moderation.pipeline import Moderator
from moderation.rpc import convert
from moderation.rpc.access import charge, current_client
from moderation.rpc.interceptors import MalformedRequest, status_for
from moderation.streams import Screener, StreamJudge
from moderation.v1 import moderation_pb2 as pb
from moderation.v1 import moderation_pb2_grpc as pb_grpc

log = structlog.get_logger("moderation.rpc")

Context = grpc.aio.ServicerContext[Any, Any]


def _deadline(context: Context) -> float | None:
    """When the model must give up: the caller's deadline, less a margin for the answer.

    The margin is a fifth of the time left, between 50 and 500 ms, so a degraded answer
    still reaches a caller whose process is busy.
    """
    remaining = context.time_remaining()
    if remaining is None:
        return None
    margin = min(0.5, max(0.05, remaining * 0.2))
    return time.monotonic() + max(0.0, remaining - margin)


#: A stream's request, or what could not be read of one.
Request = pb.ModerateRequest | MalformedRequest


def _reply(request: Request, answer: ModerationResult | Exception) -> pb.ModerateResponse:
    """The stream's answer to ``request``."""
    if isinstance(answer, Exception):
        return _failed(request, answer)
    try:
        return convert.to_response(answer)
    except Exception as error:
        return _failed(request, error)


def _failed(request: Request, error: Exception) -> pb.ModerateResponse:
    """The answer for a stream item that could not be judged: its status code and message
    (as ``rich_status`` would give them for the whole call)."""
    code = status_for(error)
    if code is grpc.StatusCode.INTERNAL:
        log.error("rpc.stream_item_failed", error_type=type(error).__name__)
        message = "internal error"
    else:
        message = str(error)
    return pb.ModerateResponse(
        content_id=request.content_id, error=pb.ItemError(code=code.value[0], message=message)
    )


class ModerationServicer(pb_grpc.ModerationServiceServicer):
    """gRPC front door to a ``Moderator``."""

    def __init__(
        self,
        moderator: Moderator,
        *,
        max_batch_items: int,
        stream_window: int,
        stream_idle_s: float = 300.0,
    ) -> None:
        self._moderator = moderator
        self._max_batch_items = max_batch_items
        self._stream_window = stream_window
        self._stream_idle_s = stream_idle_s
        self._screener = Screener(moderator)

    def _content(self, request: pb.ModerateRequest) -> Content:
        """The domain item, refused when the calling client may not use its jurisdiction."""
        content = convert.to_content(request)
        client = current_client.get()
        if client is not None:
            jurisdiction = content.jurisdiction or self._moderator.policies.default
            if not client.may_use(jurisdiction):
                raise PermissionDenied(
                    f"client {client.name!r} may not use jurisdiction {jurisdiction!r}"
                )
        return content

    async def Moderate(self, request: pb.ModerateRequest, context: Context) -> pb.ModerateResponse:
        """Judge one item."""
        charge(current_client.get(), 1)
        content = self._content(request)
        result = await self._moderator.moderate(content, deadline=_deadline(context))
        return convert.to_response(result)

    async def ModerateBatch(
        self, request: pb.ModerateBatchRequest, context: Context
    ) -> pb.ModerateBatchResponse:
        """Judge every item, answering in request order; one bad item refuses the call."""
        count = len(request.items)
        if count == 0:
            raise InvalidRequest("items", "must hold at least one item")
        if count > self._max_batch_items:
            raise BatchTooLarge("items", f"has {count} items; the limit is {self._max_batch_items}")
        charge(current_client.get(), count)
        contents = []
        for index, item in enumerate(request.items):
            try:
                content = self._content(item)
                self._moderator.validate(content)
            except InvalidRequest as error:
                raise error.at(f"items[{index}]") from None
            contents.append(content)
        results = await self._moderator.moderate_many(
            contents, deadline=_deadline(context), concurrency=self._stream_window
        )
        return convert.to_batch_response(results)

    async def ModerateStream(  # type: ignore[override]  # grpc.aio's reader-writer form
        self, request_iterator: AsyncIterator[pb.ModerateRequest], context: Context
    ) -> None:
        """Answer every request once, with its content_id; bad items get ``error``.

        ``streams.StreamJudge`` does the scheduling (screening together, model calls as tasks,
        the window, the idle timeout); this reads requests as items and writes answers.
        """
        judge: StreamJudge[Request] = StreamJudge(
            self._moderator,
            self._screener,
            window=self._stream_window,
            idle_s=self._stream_idle_s,
            deadline=_deadline(context),
        )
        async with contextlib.aclosing(judge.judge(self._items(context))) as answers:
            async for request, answer in answers:
                await context.write(_reply(request, answer))

    async def _items(self, context: Context) -> AsyncIterator[tuple[Request, Content | Exception]]:
        """The stream's requests as items (or the error that refuses one), paced by the
        calling client's rate."""
        client = current_client.get()
        bucket = client.bucket if client is not None else None
        while (request := await context.read()) is not grpc.aio.EOF:
            if bucket is not None and (wait := bucket.reserve()) > 0:
                await asyncio.sleep(wait)  # the client's rate paces its stream
            if isinstance(request, MalformedRequest):
                yield request, request.error
                continue
            try:
                item: Content | Exception = self._content(request)
            except Exception as error:
                item = error
            yield request, item

    async def ListPolicies(
        self, request: pb.ListPoliciesRequest, context: Context
    ) -> pb.ListPoliciesResponse:
        """The jurisdictions, their versions and enabled categories."""
        charge(current_client.get(), 1)
        moderator = self._moderator
        return convert.to_policy_list(
            moderator.policies, moderator.lexicon_version, moderator.scorer
        )
