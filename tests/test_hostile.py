"""What a hostile or careless client sends: the server answers, stays responsive, loses nothing."""

from __future__ import annotations

import asyncio
import io
import time
from typing import TYPE_CHECKING, Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client import generate_latest

from moderation.domain import Category, Content, Decision
from moderation.lexicon import MAX_HITS_PER_ENTRY
from moderation.metrics import Metrics
from moderation.pipeline import ForModel, Moderator
from moderation.rpc.server import ServerOptions, start
from moderation.v1 import moderation_pb2 as pb
from moderation.v1 import moderation_pb2_grpc as pb_grpc
from tests.bench import WORST_CASES, repeated

if TYPE_CHECKING:
    from moderation.v1.moderation_pb2_grpc import ModerationServiceAsyncStub as Stub


@pytest.mark.parametrize("unit", list(WORST_CASES.values()), ids=list(WORST_CASES))
def test_dense_matches_keep_at_most_a_few_spans_per_rule(moderator: Moderator, unit: str) -> None:
    """A text made of one match repeated is judged as its parts are, with bounded evidence."""
    short = moderator.heuristics(Content(text=unit * 3)).screening
    long = moderator.heuristics(Content(text=repeated(unit))).screening
    assert {f.rule for f in short.findings} <= {f.rule for f in long.findings}
    per_rule: dict[str, int] = {}
    for finding in long.findings:
        per_rule[finding.rule] = per_rule.get(finding.rule, 0) + 1
    assert max(per_rule.values(), default=0) <= MAX_HITS_PER_ENTRY


def test_a_term_after_many_of_its_allow_contexts_is_still_found(moderator: Moderator) -> None:
    """Thousands of 草地 do not hide a 草泥马 at the end."""
    screening = moderator.heuristics(Content(text="草地" * 5000 + "草泥马")).screening
    assert Category.ABUSE in {f.category for f in screening.findings}
    assert any(f.evidence.text == "草泥马" for f in screening.findings)


def test_a_disguise_after_many_ordinary_look_alikes_is_still_escalated(
    moderator: Moderator,
) -> None:
    """Padding with an ordinary word that sounds like a term does not hide the term's homophone:
    past the checks' budget, candidates count as hits (towards review, never towards allow)."""
    screened = moderator.heuristics(Content(text="学习" * 3000 + "，雪洗他们"))
    assert screened.screening.findings, "the homophone of 血洗 after the padding was not seen"
    assert isinstance(screened, ForModel) or screened.result.decision is not Decision.ALLOW


async def test_health_answers_while_a_batch_of_worst_cases_is_screened(
    stub: Stub, channel: grpc.aio.Channel
) -> None:
    """Screening a heavy batch runs off the event loop: health checks answer meanwhile."""
    items = [pb.ModerateRequest(content_id=str(i), text=repeated("河南人骗子")) for i in range(60)]
    batch = asyncio.ensure_future(stub.ModerateBatch(pb.ModerateBatchRequest(items=items)))
    health = health_pb2_grpc.HealthStub(channel)
    await asyncio.sleep(0.05)
    slowest = 0.0
    while not batch.done():
        began = time.monotonic()
        reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=5)
        slowest = max(slowest, time.monotonic() - began)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        await asyncio.sleep(0.02)
    answers = (await batch).results
    assert [a.content_id for a in answers] == [str(i) for i in range(60)]
    assert all(a.decision != pb.DECISION_ALLOW for a in answers)
    assert slowest < 2.0, f"a health check waited {slowest:.2f} s behind the batch"


async def test_the_callers_deadline_bounds_screening_of_a_heavy_batch(stub: Stub) -> None:
    """A batch that cannot be screened within its deadline ends DEADLINE_EXCEEDED near it."""
    items = [pb.ModerateRequest(content_id=str(i), text=repeated("傻逼")) for i in range(500)]
    began = time.monotonic()
    with pytest.raises(grpc.aio.AioRpcError) as failure:
        await stub.ModerateBatch(pb.ModerateBatchRequest(items=items), timeout=0.3)
    assert failure.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert time.monotonic() - began < 3.0


def _raw(channel: grpc.aio.Channel, method: str, stream: bool = False) -> Any:
    """A call that sends bytes as they are (the client's own serializer is bypassed)."""
    path = f"/moderation.v1.ModerationService/{method}"
    make = channel.stream_stream if stream else channel.unary_unary
    return make(
        path,
        request_serializer=lambda raw: raw,
        response_deserializer=pb.ModerateResponse.FromString,
    )


BAD_UTF8 = b"\x12\x02\xff\xfe"  # field 2 (text), two bytes that are not UTF-8
CORRUPT = b"\xff\xff\xff"


@pytest.mark.parametrize("payload", [BAD_UTF8, CORRUPT], ids=["bad UTF-8", "corrupt"])
async def test_malformed_messages_are_invalid_argument_and_logged_as_nothing_worse(
    channel: grpc.aio.Channel, payload: bytes, log_buffer: io.StringIO
) -> None:
    """A message that cannot be parsed is INVALID_ARGUMENT naming the request, with no class
    names of ours or the parser's, and no ERROR line."""
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _raw(channel, "Moderate")(payload, timeout=5)
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    details = refused.value.details() or ""
    assert details.startswith("request: is not a valid message")
    assert "Error" not in details
    assert '"level": "error"' not in log_buffer.getvalue()


async def test_a_malformed_item_on_a_stream_is_answered_and_the_stream_goes_on(
    channel: grpc.aio.Channel, log_buffer: io.StringIO
) -> None:
    """On ModerateStream a message that cannot be parsed gets an item error; the rest are judged."""
    call = _raw(channel, "ModerateStream", stream=True)()
    await call.write(pb.ModerateRequest(content_id="a", text="你好").SerializeToString())
    await call.write(BAD_UTF8)
    await call.write(pb.ModerateRequest(content_id="c", text="傻逼").SerializeToString())
    await call.done_writing()
    answers = [reply async for reply in call]
    assert await call.code() is grpc.StatusCode.OK
    errors = [a for a in answers if a.HasField("error")]
    assert [a.content_id for a in answers if not a.HasField("error")] == ["a", "c"]
    assert [e.error.code for e in errors] == [grpc.StatusCode.INVALID_ARGUMENT.value[0]]
    assert '"level": "error"' not in log_buffer.getvalue()


async def test_a_huge_jurisdiction_is_refused_briefly(stub: Stub) -> None:
    """A 100,000-character jurisdiction is INVALID_ARGUMENT with a short message, not echoed."""
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.Moderate(pb.ModerateRequest(text="你好", jurisdiction="Q" * 100_000))
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert len(refused.value.details() or "") < 200


async def test_a_client_cancelling_an_unread_stream_is_no_server_error(
    moderator: Moderator, log_buffer: io.StringIO
) -> None:
    """A client that writes, never reads and cancels: counted CANCELLED, no ERROR logged."""
    metrics = Metrics()
    service = await start(moderator, ServerOptions(port=0, stream_window=4), metrics=metrics)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{service.port}") as channel:
            call = pb_grpc.ModerationServiceStub(channel).ModerateStream()

            async def write() -> None:  # until the server stops reading: it cannot write
                for i in range(20_000):
                    await call.write(pb.ModerateRequest(content_id=str(i), text="傻逼 " * 300))

            writer = asyncio.ensure_future(write())
            await asyncio.sleep(1.0)
            call.cancel()
            writer.cancel()
            await asyncio.sleep(0.5)
    finally:
        await service.server.stop(0)
    exposition = generate_latest(metrics.registry).decode()
    handled = [
        line
        for line in exposition.splitlines()
        if line.startswith("grpc_server_handled_total") and "ModerateStream" in line
    ]
    assert handled
    assert all('grpc_code="CANCELLED"' in line for line in handled), handled
    assert '"level": "error"' not in log_buffer.getvalue()
