"""Judging a stream of items, as a long-lived call needs: the scheduling, apart from any wire.

``judge_stream`` takes items as they arrive and gives one answer per item, as soon as it is
ready (so not in arrival order): an answer the heuristics give at once, a model's answer when
it comes, or the error that stopped the item. It pulls the next item only while fewer than
``window`` answers wait to be taken, so a consumer that stops taking answers stops the reading
of items. What a stream sends nothing for ``idle_s`` while nothing is pending ends with
``StreamIdle``.

Items of every stream that arrive in one turn of the event loop are screened together once
the turn ends (``Screener``), so the prefilter's tables stay in cache from one item to the
next rather than being pushed out by the transport's own work between them (``make load``:
about a tenth less server CPU per streamed item). A text over ``OFF_LOOP_CHARS`` is screened
in a worker thread instead, so the loop stays free. Imports the pipeline; knows no transport.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import Generic, TypeVar

import structlog

from moderation.domain import Content, ModerationResult
from moderation.errors import StreamIdle
from moderation.pipeline import OFF_LOOP_CHARS, ForModel, Moderator, Screened

log = structlog.get_logger("moderation.streams")

#: What the caller tags an item with, and gets back with its answer (the request, say).
Tag = TypeVar("Tag")
#: What screening one item gave, or the error that stopped it.
Outcome = Screened | Exception


class Screener:
    """Screens the items that arrive in one turn of the event loop together, for every stream
    of the process. Each item's callback gets what its screening gave."""

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
                log.error("streams.answer_failed", error_type=type(error).__name__)


class _End:
    """Marks the end of a stream's answers; carries the reader's error, if any."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error


class StreamJudge(Generic[Tag]):
    """Judges the items of one stream (``judge``); the ``Screener`` is shared by all."""

    def __init__(
        self,
        moderator: Moderator,
        screener: Screener,
        *,
        window: int,
        idle_s: float,
        deadline: float | None,
    ) -> None:
        self._moderator = moderator
        self._screener = screener
        self._window = window
        self._idle_s = idle_s
        self._deadline = deadline

    async def judge(
        self, items: AsyncIterator[tuple[Tag, Content | Exception]]
    ) -> AsyncGenerator[tuple[Tag, ModerationResult | Exception], None]:
        """One answer per item of ``items`` (each an item or the error that stopped it), with
        its tag, as each is ready. An error ``items`` raises ends the answers with it, once the
        answers already made are taken; tasks still running are then cancelled."""
        moderator, deadline = self._moderator, self._deadline
        loop = asyncio.get_running_loop()
        slots = asyncio.Semaphore(self._window)
        answers: asyncio.Queue[tuple[Tag, ModerationResult | Exception] | _End] = asyncio.Queue()
        tasks: set[asyncio.Task[None]] = set()
        unscreened = 0  # items with the screener, not yet back
        last_read = loop.time()  # of the last item taken
        unanswered = 0  # items taken and not yet answered
        all_back: asyncio.Future[None] | None = None
        closed = False

        def track(task: asyncio.Task[None]) -> None:
            tasks.add(task)
            task.add_done_callback(tasks.discard)

        async def respond(tag: Tag, judge: Callable[[], Awaitable[ModerationResult]]) -> None:
            """Queue the answer ``judge`` gives (a failure answers too)."""
            try:
                answer: ModerationResult | Exception = await judge()
            except Exception as error:
                answer = error
            answers.put_nowait((tag, answer))

        def screened(tag: Tag, outcome: Outcome) -> None:
            nonlocal unscreened
            unscreened -= 1
            if closed:
                return  # the stream ended (cancelled): nobody reads, nothing to escalate
            if isinstance(outcome, Exception):
                answers.put_nowait((tag, outcome))
            elif isinstance(outcome, ForModel):
                escalate = functools.partial(moderator.escalate, outcome.screening, deadline)
                track(loop.create_task(respond(tag, escalate)))
            else:
                answers.put_nowait((tag, outcome.result))
            if unscreened == 0 and all_back is not None and not all_back.done():
                all_back.set_result(None)

        async def read() -> None:
            nonlocal unscreened, all_back, last_read, unanswered
            error: BaseException | None = None
            try:
                while True:
                    await slots.acquire()  # backpressure: no more than the window untaken
                    try:
                        tag, item = await anext(items)
                    except StopAsyncIteration:
                        slots.release()
                        break
                    last_read = loop.time()
                    unanswered += 1
                    if isinstance(item, Exception):
                        answers.put_nowait((tag, item))
                    elif len(item.text) > OFF_LOOP_CHARS:  # screened in a worker thread
                        judge = functools.partial(moderator.moderate, item, deadline=deadline)
                        track(loop.create_task(respond(tag, judge)))
                    else:
                        unscreened += 1
                        self._screener.submit(item, functools.partial(screened, tag))
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
            idle = self._idle_s
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
                yield answer
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
