"""Shared fixtures: the real Moderator, a real grpc.aio server on an ephemeral loopback port."""

from __future__ import annotations

import asyncio
import io
import json
import os
import sys
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import grpc
import pytest

from moderation.compose import build_moderator
from moderation.log import configure
from moderation.pipeline import Moderator
from moderation.rpc.server import ServerOptions, Service, start
from moderation.settings import Settings
from moderation.v1 import moderation_pb2_grpc as pb_grpc
from tests.fake_llm import FakeModel

if TYPE_CHECKING:
    from moderation.v1.moderation_pb2_grpc import ModerationServiceAsyncStub


@pytest.fixture(autouse=True)
def log_buffer() -> io.StringIO:
    """Every test logs JSON lines into a buffer it can read."""
    buffer = io.StringIO()
    configure("DEBUG", stream=buffer)
    return buffer


@pytest.fixture
async def fake() -> AsyncIterator[FakeModel]:
    """A fake OpenAI-compatible model on a loopback port (see tests/fake_llm.py)."""
    server = FakeModel()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture(scope="session")
def settings() -> Settings:
    """Embedded defaults, as ``make run`` uses them."""
    return Settings()


@pytest.fixture(scope="session")
def moderator(settings: Settings) -> Moderator:
    """The real moderator with the embedded lexicon and policies, and no model."""
    return build_moderator(settings, use_model=False)


@pytest.fixture
def server_options() -> ServerOptions:
    """Loopback, port 0; tests override fields with ``dataclasses.replace``."""
    return ServerOptions(host="127.0.0.1", port=0, max_batch_items=500, grace_seconds=1.0)


@pytest.fixture
async def service(moderator: Moderator, server_options: ServerOptions) -> AsyncIterator[Service]:
    """A started server; stopped after the test."""
    running = await start(moderator, server_options)
    yield running
    await running.server.stop(0)


@pytest.fixture
async def channel(service: Service) -> AsyncIterator[grpc.aio.Channel]:
    """A real client channel to the server."""
    async with grpc.aio.insecure_channel(
        f"127.0.0.1:{service.port}",
        options=[("grpc.max_send_message_length", 64 * 1024 * 1024)],
    ) as chan:
        yield chan


@pytest.fixture
def stub(channel: grpc.aio.Channel) -> ModerationServiceAsyncStub:
    """The generated client stub."""
    return pb_grpc.ModerationServiceStub(channel)


@pytest.fixture
async def processes() -> AsyncIterator[list[asyncio.subprocess.Process]]:
    """Server processes a test started; killed if the test left them running."""
    started: list[asyncio.subprocess.Process] = []
    yield started
    for process in started:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def spawn_server(
    started: list[asyncio.subprocess.Process], **env: str
) -> tuple[asyncio.subprocess.Process, str, list[str]]:
    """Start ``moderation serve`` on an ephemeral port; its process, address and log so far."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "moderation",
        "serve",
        "--port",
        "0",
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    started.append(process)
    assert process.stderr is not None
    lines: list[str] = []
    while True:
        raw = await asyncio.wait_for(process.stderr.readline(), timeout=30)
        assert raw, f"server exited early: {lines}"
        lines.append(raw.decode())
        event = json.loads(raw)
        if event.get("event") == "server.started":
            return process, event["address"], lines
