"""The gRPC surface, through a real client against a real server on loopback."""

from __future__ import annotations

import asyncio
import random
import sys
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_status import rpc_status

from moderation.rpc.server import Service
from moderation.v1 import moderation_pb2 as pb
from moderation.v1 import moderation_pb2_grpc as pb_grpc

if TYPE_CHECKING:
    from moderation.v1.moderation_pb2_grpc import ModerationServiceAsyncStub as Stub


async def test_moderate_blocks_abuse_with_evidence(stub: Stub) -> None:
    """An insult is blocked as ABUSE, with the span and the original substring."""
    reply = await stub.Moderate(pb.ModerateRequest(content_id="c1", text="你就是个傻逼"))
    assert reply.content_id == "c1"
    assert reply.decision == pb.DECISION_BLOCK
    assert [label.category for label in reply.labels] == [pb.CATEGORY_ABUSE]
    (evidence,) = reply.labels[0].evidence
    assert (evidence.start, evidence.end, evidence.text, evidence.term) == (4, 6, "傻逼", "傻逼")
    assert reply.escalation.status == pb.ESCALATION_STATUS_NOT_NEEDED
    assert reply.policy.jurisdiction == "GLOBAL"
    assert reply.policy.version
    assert reply.policy.lexicon_version


async def test_moderate_allows_clean_text(stub: Stub) -> None:
    """Plainly fine text is allowed with no labels and no model."""
    reply = await stub.Moderate(pb.ModerateRequest(content_id="c2", text="今天天气真好"))
    assert reply.decision == pb.DECISION_ALLOW
    assert list(reply.labels) == []
    assert reply.escalation.status == pb.ESCALATION_STATUS_NOT_NEEDED


async def test_ambiguous_item_without_model_is_degraded_review(stub: Stub) -> None:
    """With no model configured, an ambiguous item is REVIEW and says the model was unavailable."""
    reply = await stub.Moderate(pb.ModerateRequest(text="一起溜冰吗"))
    assert reply.decision == pb.DECISION_REVIEW
    assert reply.escalation.status == pb.ESCALATION_STATUS_UNAVAILABLE
    assert "no model configured" in reply.escalation.reason


async def test_escalation_never_is_skipped(stub: Stub) -> None:
    """A caller that forbids the model gets SKIPPED, not UNAVAILABLE."""
    reply = await stub.Moderate(
        pb.ModerateRequest(text="一起溜冰吗", escalation=pb.ESCALATION_MODE_NEVER)
    )
    assert reply.decision == pb.DECISION_REVIEW
    assert reply.escalation.status == pb.ESCALATION_STATUS_SKIPPED


async def test_jurisdiction_changes_the_answer(stub: Stub) -> None:
    """The same text is POLITICAL under CN and allowed under US and EU."""
    text = "纪念六四"
    answers = {
        j: await stub.Moderate(pb.ModerateRequest(text=text, jurisdiction=j))
        for j in ("CN", "US", "EU")
    }
    assert pb.CATEGORY_POLITICAL in [label.category for label in answers["CN"].labels]
    assert answers["CN"].decision != pb.DECISION_ALLOW
    assert answers["US"].decision == pb.DECISION_ALLOW
    assert not answers["US"].labels
    assert answers["EU"].decision == pb.DECISION_ALLOW
    assert not answers["EU"].labels
    assert answers["US"].policy.version != answers["CN"].policy.version


async def test_a_jurisdiction_is_read_whatever_its_case_and_spaces(stub: Stub) -> None:
    """`` cn `` is CN, on the wire as in the CLI, batch files and the keys file."""
    reply = await stub.Moderate(pb.ModerateRequest(text="纪念六四", jurisdiction=" cn "))
    assert reply.policy.jurisdiction == "CN"
    assert pb.CATEGORY_POLITICAL in [label.category for label in reply.labels]


async def test_batch_of_500_answers_in_order(stub: Stub) -> None:
    """ModerateBatch answers 500 items in request order."""
    texts = ["你就是个傻逼", "今天天气真好", "fuck you", "草地上有花"]
    items = [pb.ModerateRequest(content_id=f"b{i}", text=texts[i % 4]) for i in range(500)]
    reply = await stub.ModerateBatch(pb.ModerateBatchRequest(items=items))
    assert [r.content_id for r in reply.results] == [f"b{i}" for i in range(500)]
    expected = [pb.DECISION_BLOCK, pb.DECISION_ALLOW, pb.DECISION_BLOCK, pb.DECISION_ALLOW]
    assert [r.decision for r in reply.results] == [expected[i % 4] for i in range(500)]


async def test_stream_of_1000_answers_each_once(stub: Stub) -> None:
    """ModerateStream answers each of 1,000 items exactly once, with its content_id."""
    texts = ["你就是个傻逼", "今天天气真好", "一起溜冰吗", "hello"]

    async def requests() -> AsyncIterator[pb.ModerateRequest]:
        for i in range(1000):
            yield pb.ModerateRequest(content_id=f"s{i}", text=texts[i % 4])

    seen: dict[str, int] = {}
    async for reply in stub.ModerateStream(requests()):
        seen[reply.content_id] = reply.decision
    assert sorted(seen) == sorted(f"s{i}" for i in range(1000))
    assert all(seen[f"s{i}"] == pb.DECISION_BLOCK for i in range(0, 1000, 4))
    assert all(seen[f"s{i}"] == pb.DECISION_ALLOW for i in range(1, 1000, 4))


async def test_stream_answers_bad_item_with_error_and_goes_on(stub: Stub) -> None:
    """An invalid item on the stream gets an error answer; the rest are judged."""

    async def requests() -> AsyncIterator[pb.ModerateRequest]:
        yield pb.ModerateRequest(content_id="ok1", text="你好")
        yield pb.ModerateRequest(content_id="bad", text="")
        yield pb.ModerateRequest(content_id="ok2", text="傻逼")

    replies = {r.content_id: r async for r in stub.ModerateStream(requests())}
    assert set(replies) == {"ok1", "bad", "ok2"}
    assert replies["bad"].HasField("error")
    assert replies["bad"].error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert "text" in replies["bad"].error.message
    assert not replies["ok1"].HasField("error")
    assert replies["ok2"].decision == pb.DECISION_BLOCK


async def test_stream_backpressure_stops_reading_when_answers_are_not_read(
    service: Service,
) -> None:
    """A client that stops reading answers stalls the server's reading of requests.

    What stays buffered is bounded by the stream window plus HTTP/2 flow control (the client
    turns off BDP probing so its receive window does not keep growing).
    """
    sent = 0

    async def requests() -> AsyncIterator[pb.ModerateRequest]:
        nonlocal sent
        for i in range(200_000):
            sent += 1
            yield pb.ModerateRequest(content_id=str(i), text="今天天气真好" * 20)

    async with grpc.aio.insecure_channel(
        f"127.0.0.1:{service.port}", options=[("grpc.http2.bdp_probe", 0)]
    ) as channel:
        call = pb_grpc.ModerationServiceStub(channel).ModerateStream(requests())
        first = await call.read()
        assert isinstance(first, pb.ModerateResponse)
        assert first.content_id == "0"
        previous, stalled = -1, False
        for _ in range(40):  # at most 20 s
            await asyncio.sleep(0.5)
            if sent == previous:
                stalled = True
                break
            previous = sent
        call.cancel()
    assert stalled, f"the server kept reading requests ({sent}) while no answer was read"
    assert sent < 200_000


def _violation(error: grpc.aio.AioRpcError) -> error_details_pb2.BadRequest.FieldViolation:
    status = rpc_status.from_call(error)
    assert status is not None
    detail = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(detail)
    return detail.field_violations[0]


@pytest.mark.parametrize(
    ("request_", "field", "says"),
    [
        (pb.ModerateRequest(text=""), "text", "must not be empty"),
        (pb.ModerateRequest(text="   \n"), "text", "must not be empty"),
        (pb.ModerateRequest(text="a" * 20_001), "text", "the limit is 20000"),
        (
            pb.ModerateRequest(text="你好", jurisdiction="XX"),
            "jurisdiction",
            "unknown jurisdiction 'XX'",
        ),
        (pb.ModerateRequest(text="你好", escalation=7), "escalation", "unknown value 7"),  # type: ignore[arg-type]
        (pb.ModerateRequest(text="你好", content_id="x" * 300), "content_id", "the limit is 256"),
        (
            pb.ModerateRequest(text="好", context=pb.Context(surface="s" * 65)),
            "context.surface",
            "limit is 64",
        ),
        (pb.ModerateRequest(text="傻" * 700_000), "text", "the limit is 20000"),  # a 2 MB request
    ],
)
async def test_bad_input_is_invalid_argument_naming_the_field(
    stub: Stub, request_: pb.ModerateRequest, field: str, says: str
) -> None:
    """Bad input gets INVALID_ARGUMENT whose message and BadRequest detail name the field."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Moderate(request_)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert field in (caught.value.details() or "")
    assert says in (caught.value.details() or "")
    violation = _violation(caught.value)
    assert violation.field == field


@pytest.mark.parametrize(
    ("items", "field", "says"),
    [
        ([], "items", "at least one"),
        ([pb.ModerateRequest(text="好")] * 501, "items", "the limit is 500"),
        (
            [pb.ModerateRequest(text="好"), pb.ModerateRequest(text="")],
            "items[1].text",
            "must not be empty",
        ),
        (
            [pb.ModerateRequest(text="好"), pb.ModerateRequest(text="好", jurisdiction="ZZ")],
            "items[1].jurisdiction",
            "unknown jurisdiction",
        ),
    ],
)
async def test_bad_batch_is_invalid_argument_naming_the_item(
    stub: Stub, items: list[pb.ModerateRequest], field: str, says: str
) -> None:
    """A bad batch names the offending item and field."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.ModerateBatch(pb.ModerateBatchRequest(items=items))
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert says in (caught.value.details() or "")
    assert _violation(caught.value).field == field


async def test_message_over_the_transport_limit_is_resource_exhausted(
    moderator: object, server_options: object
) -> None:
    """A message larger than the server accepts is refused cleanly, not INTERNAL."""
    import dataclasses

    from moderation.rpc.server import start

    options = dataclasses.replace(server_options, max_message_bytes=1024 * 1024)  # type: ignore[type-var]
    running = await start(moderator, options)  # type: ignore[arg-type]
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            stub = pb_grpc.ModerationServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.Moderate(pb.ModerateRequest(text="傻" * 700_000))
            assert caught.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    finally:
        await running.server.stop(0)


async def test_list_policies(stub: Stub) -> None:
    """ListPolicies shows every jurisdiction with its version and categories."""
    reply = await stub.ListPolicies(pb.ListPoliciesRequest())
    by_name = {p.jurisdiction: p for p in reply.policies}
    assert {"CN", "US", "EU", "SG", "GLOBAL"} <= set(by_name)
    assert reply.default_jurisdiction == "GLOBAL"
    assert pb.CATEGORY_POLITICAL in by_name["CN"].enabled_categories
    assert pb.CATEGORY_POLITICAL not in by_name["US"].enabled_categories
    assert all(p.version and p.fail_mode == pb.DECISION_REVIEW for p in reply.policies)
    assert list(by_name["CN"].model_endpoints) == ["dashscope-cn", "self-hosted"]
    assert "openrouter" in by_name["US"].model_endpoints


async def test_health_is_serving(channel: grpc.aio.Channel) -> None:
    """The standard health service reports SERVING overall and for our service."""
    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", "moderation.v1.ModerationService"):
        reply = await health.Check(health_pb2.HealthCheckRequest(service=service))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_reflection_lists_the_service(channel: grpc.aio.Channel) -> None:
    """Server reflection lists our service, health and reflection."""
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)

    async def ask() -> AsyncIterator[reflection_pb2.ServerReflectionRequest]:
        yield reflection_pb2.ServerReflectionRequest(list_services="")

    async for reply in stub.ServerReflectionInfo(ask()):
        names = {s.name for s in reply.list_services_response.service}
        assert {"moderation.v1.ModerationService", "grpc.health.v1.Health"} <= names
        break


async def test_concurrent_unary_calls(stub: Stub) -> None:
    """Many calls at once all get their own answer."""
    texts = [random.choice(["傻逼", "你好", "cnm", "天气"]) for _ in range(200)]
    replies = await asyncio.gather(
        *(stub.Moderate(pb.ModerateRequest(content_id=str(i), text=t)) for i, t in enumerate(texts))
    )
    assert [r.content_id for r in replies] == [str(i) for i in range(200)]


async def test_health_probe_command_speaks_grpc_health(service: Service) -> None:
    """``moderation health`` (the container HEALTHCHECK) exits 0 against a serving server."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "moderation",
        "health",
        "--address",
        f"127.0.0.1:{service.port}",
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await process.communicate()
    assert process.returncode == 0
    assert out.strip() == b"SERVING"


async def test_health_probe_command_fails_without_server() -> None:
    """``moderation health`` exits 1 when nothing answers."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "moderation",
        "health",
        "--address",
        "127.0.0.1:1",
        "--timeout",
        "0.5",
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await process.communicate()
    assert process.returncode == 1
    assert out.strip() == b"NOT_SERVING"
