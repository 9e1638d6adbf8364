"""The server process: start, graceful stop on SIGTERM, exit code, and what it logs."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections.abc import AsyncIterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from moderation.v1 import moderation_pb2 as pb
from moderation.v1 import moderation_pb2_grpc as pb_grpc
from tests.conftest import spawn_server

SECRET_TEXTS = [
    "你就是个傻逼私密句子",
    "今天天气真好我住在某某小区",
    "我草这是什么",
    "纪念六四的文章",
]


async def _drain(process: asyncio.subprocess.Process, lines: list[str]) -> int:
    assert process.stderr is not None
    rest = await asyncio.wait_for(process.stderr.read(), timeout=30)
    lines.extend(rest.decode().splitlines(keepends=True))
    return await asyncio.wait_for(process.wait(), timeout=30)


async def test_sigterm_drains_finishes_calls_in_flight_and_exits_0(
    processes: list[asyncio.subprocess.Process],
) -> None:
    """On SIGTERM health turns NOT_SERVING, a stream in flight still completes, exit code is 0."""
    process, address, lines = await spawn_server(
        processes, MODERATION_DRAIN_SECONDS="0.5", MODERATION_GRACE_SECONDS="10"
    )
    async with grpc.aio.insecure_channel(address) as channel:
        stub = pb_grpc.ModerationServiceStub(channel)
        health = health_pb2_grpc.HealthStub(channel)
        call = stub.ModerateStream()
        for i in range(10):
            await call.write(pb.ModerateRequest(content_id=f"a{i}", text="傻逼"))
        first = [await call.read() for _ in range(10)]

        watch = health.Watch(health_pb2.HealthCheckRequest(service=""))
        assert (await watch.read()).status == health_pb2.HealthCheckResponse.SERVING

        process.send_signal(signal.SIGTERM)
        assert (await asyncio.wait_for(watch.read(), 5)).status == (
            health_pb2.HealthCheckResponse.NOT_SERVING
        )
        check = await health.Check(health_pb2.HealthCheckRequest(service=""))
        assert check.status == health_pb2.HealthCheckResponse.NOT_SERVING

        await asyncio.sleep(1.0)  # past the drain delay: the server has stopped accepting calls
        for i in range(10):
            await call.write(pb.ModerateRequest(content_id=f"b{i}", text="你好"))
        await call.done_writing()
        rest = []
        while (reply := await call.read()) is not grpc.aio.EOF:
            rest.append(reply)
        assert await call.code() is grpc.StatusCode.OK

        with pytest.raises(grpc.aio.AioRpcError):
            await stub.Moderate(pb.ModerateRequest(text="new call after stop"), timeout=2)

    ids = sorted(r.content_id for r in first + rest if isinstance(r, pb.ModerateResponse))
    assert ids == sorted([f"a{i}" for i in range(10)] + [f"b{i}" for i in range(10)])
    assert await _drain(process, lines) == 0
    events = [json.loads(line)["event"] for line in lines]
    assert "server.draining" in events
    assert "server.stopped" in events


async def test_log_lines_never_hold_user_text(processes: list[asyncio.subprocess.Process]) -> None:
    """Every log line of a serving process is JSON with ids and hashes, never the user's text."""
    process, address, lines = await spawn_server(processes)
    async with grpc.aio.insecure_channel(address) as channel:
        stub = pb_grpc.ModerationServiceStub(channel)
        for i, text in enumerate(SECRET_TEXTS):
            await stub.Moderate(
                pb.ModerateRequest(content_id=f"id{i}", text=text, jurisdiction="CN")
            )
        with pytest.raises(grpc.aio.AioRpcError):
            await stub.Moderate(pb.ModerateRequest(text="私密" * 20_000))

        async def requests() -> AsyncIterator[pb.ModerateRequest]:
            for text in SECRET_TEXTS:
                yield pb.ModerateRequest(text=text)

        _ = [reply async for reply in stub.ModerateStream(requests())]
    process.send_signal(signal.SIGTERM)
    assert await _drain(process, lines) == 0
    decided = [json.loads(line) for line in lines if '"moderation.decided"' in line]
    assert len(decided) == 2 * len(SECRET_TEXTS)
    assert {d["content_id"] for d in decided} >= {f"id{i}" for i in range(len(SECRET_TEXTS))}
    assert all(len(d["text_fp"]) == 16 and d["policy_version"] for d in decided)
    blob = "".join(lines)
    for text in SECRET_TEXTS:
        for fragment in (text, text[:4], "傻逼", "草", "六四", "私密"):
            assert fragment not in blob


async def test_taken_port_refuses_to_start_saying_so(
    processes: list[asyncio.subprocess.Process],
) -> None:
    """A second server on a port in use exits 2 with what to change, not a traceback."""
    _, address, _ = await spawn_server(processes)
    port = address.rsplit(":", 1)[1]
    second = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "moderation",
        "serve",
        "--port",
        port,
        stderr=asyncio.subprocess.PIPE,
    )
    processes.append(second)
    _, err = await asyncio.wait_for(second.communicate(), timeout=30)
    assert second.returncode == 2
    assert b"MODERATION_PORT" in err
    assert b"Traceback" not in err


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_metrics_endpoint_and_no_user_text_in_any_log_line(
    processes: list[asyncio.subprocess.Process],
) -> None:
    """With the model on and DEBUG logs: /metrics serves the figures; no log line at any level
    holds user text, a matched term or any part of the prompt."""
    import httpx

    from tests.fake_llm import FakeModel

    fake = FakeModel()
    await fake.start()
    port = _free_port()
    try:
        process, address, lines = await spawn_server(
            processes,
            MODERATION_LOG_LEVEL="DEBUG",
            MODERATION_METRICS_PORT=str(port),
            MODERATION_LLM_BASE_URL=fake.base_url,
            MODERATION_LLM_API_KEY="secret-test-key-123",
        )
        texts = [*SECRET_TEXTS, "一起溜冰吗私密", "有人溜冰吗 电话13812345678"]
        async with grpc.aio.insecure_channel(address) as channel:
            stub = pb_grpc.ModerationServiceStub(channel)
            for i, text in enumerate(texts):
                reply = await stub.Moderate(pb.ModerateRequest(content_id=f"m{i}", text=text))
                assert reply.decision
        async with httpx.AsyncClient() as client:
            scraped = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
        process.send_signal(signal.SIGTERM)
        assert await _drain(process, lines) == 0
    finally:
        await fake.stop()
    assert len(fake.requests) >= 2  # the model was really asked
    for name in (
        "grpc_server_handled_total",
        "grpc_server_handling_seconds_bucket",
        "moderation_decisions_total",
        "moderation_escalations_total",
        "moderation_model_requests_total",
        "moderation_model_tokens_total",
        "moderation_model_breaker_state",
        "moderation_verdict_cache_total",
        "moderation_model_latency_seconds",
    ):
        assert name in scraped
    blob = "".join(lines)
    assert '"level": "debug"' in blob or "moderation.decided" in blob
    prompt = fake.requests[0]["messages"][0]["content"]
    forbidden = [*texts, "傻逼", "溜冰", "草", "六四", "私密", "13812345678", "secret-test-key-123",
                 prompt[:40], "<<<CONTENT", "Prefilter hints"]  # fmt: skip
    for fragment in forbidden:
        assert fragment not in blob, fragment
