"""OpenTelemetry: a served process exports spans over OTLP to a collector on loopback."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as otlp
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc as otlp_grpc

from moderation.tracing import wanted
from moderation.v1 import moderation_pb2 as pb
from moderation.v1 import moderation_pb2_grpc as pb_grpc
from tests.conftest import spawn_server
from tests.fake_llm import FakeModel

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"


class Collector(otlp_grpc.TraceServiceServicer):
    """An OTLP/gRPC trace collector that keeps what it is sent."""

    def __init__(self) -> None:
        self.spans: list[Any] = []

    async def Export(
        self, request: otlp.ExportTraceServiceRequest, context: Any
    ) -> otlp.ExportTraceServiceResponse:
        for resource in request.resource_spans:
            for scope in resource.scope_spans:
                self.spans.extend(scope.spans)
        return otlp.ExportTraceServiceResponse()


@pytest.fixture
async def collector() -> AsyncIterator[tuple[Collector, int]]:
    """A collector on an ephemeral loopback port."""
    server = grpc.aio.server()
    kept = Collector()
    otlp_grpc.add_TraceServiceServicer_to_server(kept, server)  # type: ignore[no-untyped-call]
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield kept, port
    await server.stop(0)


def test_traces_are_off_unless_the_environment_asks() -> None:
    """The standard variables decide; OTEL_SDK_DISABLED wins."""
    assert not wanted({})
    assert wanted({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317"})
    assert wanted({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4317"})
    assert not wanted(
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317", "OTEL_SDK_DISABLED": "true"}
    )


async def test_a_call_and_its_model_call_are_one_trace_continued_from_the_caller(
    collector: tuple[Collector, int], processes: list[Any], fake: FakeModel
) -> None:
    """The caller's traceparent is continued by the server span; the model call is a child
    span in the same trace; the decision and access lines carry the trace id; no span holds
    the content."""
    kept, port = collector
    process, address, lines = await spawn_server(
        processes,
        OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{port}",
        OTEL_EXPORTER_OTLP_INSECURE="true",
        OTEL_BSP_SCHEDULE_DELAY="100",
        MODERATION_LLM_BASE_URL=fake.base_url,
        MODERATION_LLM_API_KEY="test-key",
    )
    text = "一起溜冰吗追踪测试"  # ambiguous: the model is asked
    async with grpc.aio.insecure_channel(address) as channel:
        stub = pb_grpc.ModerationServiceStub(channel)
        reply = await stub.Moderate(
            pb.ModerateRequest(text=text),
            metadata=(("traceparent", f"00-{TRACE_ID}-{CALLER_SPAN}-01"),),
            timeout=10,
        )
    assert reply.escalation.status == pb.ESCALATION_STATUS_RESOLVED
    process.send_signal(signal.SIGTERM)
    assert process.stderr is not None
    rest = await asyncio.wait_for(process.stderr.read(), timeout=30)
    assert await asyncio.wait_for(process.wait(), timeout=30) == 0
    lines.extend(rest.decode().splitlines())

    by_id = {span.span_id.hex(): span for span in kept.spans}
    (server,) = [s for s in kept.spans if s.name == "/moderation.v1.ModerationService/Moderate"]
    assert server.trace_id.hex() == TRACE_ID
    assert server.parent_span_id.hex() == CALLER_SPAN
    (model,) = [s for s in kept.spans if s.name.startswith("POST")]
    assert model.trace_id.hex() == TRACE_ID
    parent = by_id[model.parent_span_id.hex()]
    while parent.span_id != server.span_id:  # the model span descends from the server span
        parent = by_id[parent.parent_span_id.hex()]
    blob = str(kept.spans)
    assert text not in blob
    assert "溜冰" not in blob

    events = [json.loads(line) for line in lines if line.startswith("{")]
    for name in ("moderation.decided", "rpc.call"):
        (event,) = [e for e in events if e["event"] == name]
        assert event["trace_id"] == TRACE_ID, name


def test_asking_for_traces_without_the_extra_refuses_the_start() -> None:
    """A process where OpenTelemetry cannot be imported: serve exits 2 naming the extra."""
    code = (
        "import sys; sys.modules['opentelemetry'] = None\n"
        "from moderation.cli import main\n"
        "sys.exit(main(['serve', '--port', '0']))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1"},
    )
    assert done.returncode == 2, done.stderr
    assert "moderation[otel]" in done.stderr
