"""The ModerationService servicer: converts proto to domain and back, nothing more.

The deadline of each call bounds the model call; ModerateStream answers every request once,
judging up to ``stream_window`` items at a time and reading no further until answers drain;
the items streams bring in one turn of the event loop are screened together.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import structlog

from moderation.domain import Content, ModerationResult
from moderation.errors import (
    BatchTooLarge,
    InvalidRequest,
    PermissionDenied,
    StreamIdle,
)
from moderation.pipeline import OFF_LOOP_CHARS, ForModel, Moderator, Screened
from moderation.rpc import convert
from moderation.rpc.access import charge, current_client
from moderation.rpc.interceptors import MalformedRequest, status_for
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


def _failed(
    request: pb.ModerateRequest | MalformedRequest, error: Exception
) -> pb.ModerateResponse:
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


#: What screening one item gave, or the error that stopped it.
Outcome = Screened | Exception


class _Screener:
    """Screens the stream items that arrive in one turn of the event loop together.

    Items of every stream queue here and are screened one after another once the turn ends,
    so the prefilter's tables stay in cache from one item to the next rather than being
    pushed out by gRPC's own work between them (``make load``: about a tenth less server
    CPU per streamed item). Each item's callback gets what its screening gave.
    """

    def __init__(self, moderator: Moderator) -> None:
        self._moderator = moderator
        self._queued: list[tuple[Content, Callable[[Outcome], None]]] = []

    def submit(self, content: Content, done: Callable[[Outcome], None]) -> None:
        """Screen ``content`` at the end of this turn; then call ``done`` with the outcome."""
        if not self._queued:  # the first of this turn: screen them all once it ends
            asyncio.get_running_loop().call_soon(self._screen, context=contextvars.Context())
        self._queued.append((content, done))

    def _screen(self) -> None:
        queued, self._queued = self._queued, []
        for content, done in queued:
            try:
                outcome: Outcome = self._moderator.heuristics(content)
            except Exception as error:
                outcome = error
            try:
                done(outcome)
            except Exception as error:  # a bug in one stream must not strand the others
                log.error("rpc.stream_answer_failed", error_type=type(error).__name__)


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
        self._screener = _Screener(moderator)

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

        A reader task reads each request and hands it to the screener (shared by every
        stream) while this coroutine writes answers, so a read and a write are in flight
        together. What the heuristics decide is answered at once; only items for the model
        become tasks. At most ``stream_window`` answers wait unwritten: a client that stops
        reading answers stops the reading of its requests.
        """
        deadline = _deadline(context)
        loop = asyncio.get_running_loop()
        slots = asyncio.Semaphore(self._stream_window)
        answers: asyncio.Queue[pb.ModerateResponse | _End] = asyncio.Queue()
        tasks: set[asyncio.Task[None]] = set()
        unscreened = 0  # items with the screener, not yet back
        last_read = loop.time()  # of the last request read
        unanswered = 0  # items read and not yet answered
        all_back: asyncio.Future[None] | None = None
        closed = False

        def track(task: asyncio.Task[None]) -> None:
            tasks.add(task)
            task.add_done_callback(tasks.discard)

        async def respond(
            request: pb.ModerateRequest, judge: Callable[[], Awaitable[ModerationResult]]
        ) -> None:
            """Queue the answer ``judge`` gives for ``request`` (a failure answers too)."""
            try:
                reply = convert.to_response(await judge())
            except Exception as error:
                reply = _failed(request, error)
            answers.put_nowait(reply)

        def screened(request: pb.ModerateRequest, outcome: Outcome) -> None:
            nonlocal unscreened
            unscreened -= 1
            if closed:
                return  # the call ended (cancelled): nobody reads, nothing to escalate
            if isinstance(outcome, Exception):
                answers.put_nowait(_failed(request, outcome))
            elif isinstance(outcome, ForModel):
                escalate = functools.partial(self._moderator.escalate, outcome.screening, deadline)
                track(loop.create_task(respond(request, escalate)))
            else:
                try:
                    answers.put_nowait(convert.to_response(outcome.result))
                except Exception as error:
                    answers.put_nowait(_failed(request, error))
            if unscreened == 0 and all_back is not None and not all_back.done():
                all_back.set_result(None)

        async def read() -> None:
            nonlocal unscreened, all_back, last_read, unanswered
            error: BaseException | None = None
            client = current_client.get()
            bucket = client.bucket if client is not None else None
            try:
                while (request := await context.read()) is not grpc.aio.EOF:
                    if bucket is not None and (wait := bucket.reserve()) > 0:
                        await asyncio.sleep(wait)  # the client's rate paces its stream
                    await slots.acquire()  # backpressure: no more than the window unwritten
                    last_read = loop.time()
                    unanswered += 1
                    if isinstance(request, MalformedRequest):
                        answers.put_nowait(_failed(request, request.error))
                        continue
                    try:
                        content = self._content(request)
                    except Exception as item_error:
                        answers.put_nowait(_failed(request, item_error))
                        continue
                    if len(content.text) > OFF_LOOP_CHARS:  # screened in a worker thread
                        judge = functools.partial(
                            self._moderator.moderate, content, deadline=deadline
                        )
                        track(loop.create_task(respond(request, judge)))
                        continue
                    unscreened += 1
                    self._screener.submit(content, functools.partial(screened, request))
                if unscreened:
                    all_back = loop.create_future()
                    await all_back
                while tasks:
                    await asyncio.gather(*tasks)
            except Exception as exc:
                error = exc
            finally:
                answers.put_nowait(_End(error))

        async def watch_idle() -> None:
            """End the stream once it sent nothing for the idle time and nothing is pending."""
            idle = self._stream_idle_s
            while True:
                await asyncio.sleep(max(0.0, last_read + idle - loop.time()) or idle / 4)
                if unanswered == 0 and loop.time() - last_read >= idle:
                    answers.put_nowait(
                        _End(
                            StreamIdle(
                                f"the stream sent nothing for {idle:g} s and was closed; "
                                "open a new one when there is more to send"
                            )
                        )
                    )
                    reader.cancel()
                    return

        reader = asyncio.create_task(read())
        watchdog = asyncio.create_task(watch_idle())
        try:
            while not isinstance(answer := await answers.get(), _End):
                await context.write(answer)
                unanswered -= 1
                slots.release()
            if answer.error is not None:
                raise answer.error
        finally:
            closed = True
            watchdog.cancel()
            reader.cancel()
            for task in list(tasks):
                task.cancel()

    async def ListPolicies(
        self, request: pb.ListPoliciesRequest, context: Context
    ) -> pb.ListPoliciesResponse:
        """The jurisdictions, their versions and enabled categories."""
        charge(current_client.get(), 1)
        moderator = self._moderator
        return convert.to_policy_list(
            moderator.policies, moderator.lexicon_version, moderator.scorer
        )
