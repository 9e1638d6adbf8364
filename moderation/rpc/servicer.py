"""The ModerationService servicer: converts proto to domain and back, nothing more.

The deadline of each call bounds the model call; ModerateStream answers every request once,
judging up to ``stream_window`` items at a time and reading no further until answers drain.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc
import structlog

from moderation.domain import Content
from moderation.errors import BatchTooLarge, InvalidRequest
from moderation.pipeline import Moderator, Screening
from moderation.rpc import convert
from moderation.rpc.access import PermissionDenied, current_client
from moderation.rpc.interceptors import status_for
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


class _End:
    """Marks the end of a stream's answers; carries the reader's error, if any."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error


def _failed(request: pb.ModerateRequest, error: Exception) -> pb.ModerateResponse:
    """The answer for a stream item that could not be judged: its status code and message."""
    if isinstance(error, InvalidRequest | PermissionDenied):
        code, message = status_for(error).value[0], str(error)
    else:
        log.error("rpc.stream_item_failed", error_type=type(error).__name__)
        code, message = grpc.StatusCode.INTERNAL.value[0], "internal error"
    return pb.ModerateResponse(
        content_id=request.content_id, error=pb.ItemError(code=code, message=message)
    )


class ModerationServicer(pb_grpc.ModerationServiceServicer):
    """gRPC front door to a ``Moderator``."""

    def __init__(self, moderator: Moderator, *, max_batch_items: int, stream_window: int) -> None:
        self._moderator = moderator
        self._max_batch_items = max_batch_items
        self._stream_window = stream_window

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

        A reader task reads and screens while this coroutine writes, so a read and a write
        are in flight together. What the heuristics decide is answered from the reader; only
        items for the model become tasks. At most ``stream_window`` answers wait unwritten:
        a client that stops reading answers stops the reading of its requests.
        """
        deadline = _deadline(context)
        slots = asyncio.Semaphore(self._stream_window)
        answers: asyncio.Queue[pb.ModerateResponse | _End] = asyncio.Queue()
        tasks: set[asyncio.Task[None]] = set()

        async def escalate(request: pb.ModerateRequest, screening: Screening) -> None:
            try:
                answer = convert.to_response(await self._moderator.escalate(screening, deadline))
            except Exception as error:
                answer = _failed(request, error)
            answers.put_nowait(answer)

        async def read() -> None:
            error: BaseException | None = None
            try:
                while (request := await context.read()) is not grpc.aio.EOF:
                    await slots.acquire()  # backpressure: no more than the window unwritten
                    try:
                        screening, result = self._moderator.heuristics(self._content(request))
                    except Exception as item_error:
                        answers.put_nowait(_failed(request, item_error))
                        continue
                    if result is not None:
                        answers.put_nowait(convert.to_response(result))
                        continue
                    task = asyncio.create_task(escalate(request, screening))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                while tasks:
                    await asyncio.gather(*tasks)
            except Exception as exc:
                error = exc
            finally:
                answers.put_nowait(_End(error))

        reader = asyncio.create_task(read())
        try:
            while not isinstance(answer := await answers.get(), _End):
                await context.write(answer)
                slots.release()
            if answer.error is not None:
                raise answer.error
        finally:
            reader.cancel()
            for task in list(tasks):
                task.cancel()

    async def ListPolicies(
        self, request: pb.ListPoliciesRequest, context: Context
    ) -> pb.ListPoliciesResponse:
        """The jurisdictions, their versions and enabled categories."""
        policies = self._moderator.policies
        return pb.ListPoliciesResponse(
            policies=[convert.to_policy_info(p) for p in policies],
            default_jurisdiction=policies.default,
            lexicon_version=self._moderator.lexicon_version,
        )
