"""``make load``: load against a running server on loopback, next to a bare echo ceiling.

Starts, each in its own process on 127.0.0.1: a bare grpc.aio echo server, the moderation
server (heuristics only), a fake model with fixed latency, and a moderation server that asks
it. A closed-loop grpc.aio client in this process keeps N calls in flight for a few seconds per
scenario (sending bytes serialized in advance, as it does to the echo server) and prints a
Markdown table: unary at several concurrency levels and the ratio to the echo ceiling;
ModerateStream at 16 and 64 streams against Moderate unary with as many calls in flight and
against a bare echo bidi stream of the same shape; ModerateBatch with 100 items per call; and
unary calls that all go to the model; with each, the CPU time the server process spent per
item. Loads are bounded in count and time; only loopback. The servers log at WARNING;
``LOAD_LOG_LEVEL=INFO`` measures them writing their decision and access lines.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc

from moderation.v1 import moderation_pb2 as pb
from moderation.v1 import moderation_pb2_grpc as pb_grpc
from tests.bench import messages

#: Items each stream carries in the stream scenarios.
STREAM_ITEMS = 500

ECHO = """
import asyncio, grpc, sys
async def main():
    server = grpc.aio.server()
    async def echo(request, context):
        return request
    async def echo_stream(requests, context):
        # Read and write at once, as ModerateStream does: its ceiling, not the slower
        # one-at-a-time shape of a bare async generator.
        replies = asyncio.Queue()
        async def read():
            async for request in requests:
                replies.put_nowait(request)
            replies.put_nowait(None)
        reader = asyncio.create_task(read())
        while (reply := await replies.get()) is not None:
            await context.write(reply)
        await reader
    handler = grpc.method_handlers_generic_handler(
        "echo.Echo", {"Echo": grpc.unary_unary_rpc_method_handler(echo),
                      "EchoStream": grpc.stream_stream_rpc_method_handler(echo_stream)})
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(port, flush=True)
    await server.wait_for_termination()
asyncio.run(main())
"""


@dataclass
class Result:
    """One scenario's outcome."""

    name: str
    calls: int
    items: int
    errors: int
    seconds: float
    latencies: list[float]
    server_cpu_s: float | None
    """CPU time the server process spent during the scenario (None: not readable here)."""

    @property
    def rate(self) -> float:
        """Items per second."""
        return self.items / self.seconds

    def row(self, note: str = "") -> str:
        """A table row."""
        lat = sorted(self.latencies) or [0.0]
        p50 = lat[len(lat) // 2] * 1000
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000
        cpu = (
            f"{self.server_cpu_s / self.items * 1e6:.0f}"
            if self.server_cpu_s is not None and self.items
            else "-"
        )
        return (
            f"| {self.name} | {self.rate:,.0f} | {p50:.1f} / {p99:.1f} | {cpu} | {self.errors} "
            f"| {note} |"
        )


def cpu_seconds(pid: int) -> float | None:
    """User and system CPU time of process ``pid`` so far (Linux /proc), or None."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def closed_loop(
    name: str,
    in_flight: int,
    seconds: float,
    call: Callable[[int], Awaitable[int]],
    server_pid: int,
) -> Result:
    """Keep ``in_flight`` calls going for ``seconds``; ``call`` returns the items it carried.
    The server's CPU time is read before and after."""
    cpu_before = cpu_seconds(server_pid)
    stop = time.monotonic() + seconds
    latencies: list[float] = []
    counts = {"calls": 0, "items": 0, "errors": 0}

    async def worker(index: int) -> None:
        n = 0
        while time.monotonic() < stop:
            began = time.monotonic()
            try:
                carried = await call(index * 1_000_000 + n)  # await first: then add
                counts["items"] += carried
                latencies.append(time.monotonic() - began)
            except grpc.aio.AioRpcError:
                counts["errors"] += 1
            counts["calls"] += 1
            n += 1

    began = time.monotonic()
    await asyncio.gather(*(worker(i) for i in range(in_flight)))
    elapsed = time.monotonic() - began
    cpu_after = cpu_seconds(server_pid)
    return Result(
        name,
        counts["calls"],
        counts["items"],
        counts["errors"],
        elapsed,
        latencies,
        None if cpu_before is None or cpu_after is None else cpu_after - cpu_before,
    )


def spawn(args: list[str]) -> tuple[subprocess.Popen[str], str]:
    """Start a helper process that prints its port first; return it and the port."""
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        raise RuntimeError(f"{args} exited before printing its port")
    return process, line.strip()


def free_port() -> int:
    """A port nobody listens on right now."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def moderation_server(env: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], str]:
    """A ``moderation serve`` process on a free port, once its health says SERVING."""
    from moderation.rpc.server import probe

    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moderation", "serve", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True,
        env={**os.environ, "MODERATION_LOG_LEVEL": os.environ.get("LOAD_LOG_LEVEL", "WARNING"),
             "MODERATION_MAX_CONCURRENT_RPCS": "1024", **(env or {})},
    )  # fmt: skip
    address = f"127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while not asyncio.run(probe(address, wait_s=0.5)):
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("the moderation server did not start")
        time.sleep(0.2)
    return process, address


def run(seconds: float) -> list[str]:
    """Start the processes, run every scenario, stop them; the table rows."""
    echo, port = spawn([sys.executable, "-c", ECHO])
    server, address = moderation_server()
    fake, fake_port = spawn([sys.executable, "-m", "tests.fake_llm", "0.1"])
    judged, judged_address = moderation_server(
        {"MODERATION_LLM_BASE_URL": f"http://127.0.0.1:{fake_port}/v1",
         "MODERATION_LLM_API_KEY": "load", "MODERATION_LLM_MAX_IN_FLIGHT": "64"}
    )  # fmt: skip
    try:
        pids = Pids(echo=echo.pid, moderation=server.pid, judged=judged.pid)
        return asyncio.run(scenarios(seconds, port, address, judged_address, pids))
    finally:
        for process in (echo, server, fake, judged):
            process.send_signal(signal.SIGTERM)
        for process in (echo, server, fake, judged):
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


@dataclass
class Pids:
    """The server processes, whose CPU time each scenario reads."""

    echo: int
    moderation: int
    judged: int


async def scenarios(
    seconds: float, echo_port: str, address: str, judged_address: str, pids: Pids
) -> list[str]:
    """Every scenario against the running processes; the table rows."""
    texts = messages(2000, 0.2)
    rows: list[str] = []
    echo_channel = grpc.aio.insecure_channel(f"127.0.0.1:{echo_port}")
    channel = grpc.aio.insecure_channel(address)
    judged_channel = grpc.aio.insecure_channel(judged_address)
    echo_call: Any = echo_channel.unary_unary("/echo.Echo/Echo")
    echo_stream_call: Any = echo_channel.stream_stream("/echo.Echo/EchoStream")
    judged_stub = pb_grpc.ModerationServiceStub(judged_channel)
    payloads = [pb.ModerateRequest(text=t).SerializeToString() for t in texts]
    # Every client below sends bytes serialized in advance and leaves the answers as bytes,
    # like the echo client: the ratio then compares servers, not client-side protobuf work.
    # Each scenario's first answer is parsed and checked.
    method = "/moderation.v1.ModerationService/"
    moderate_call: Any = channel.unary_unary(method + "Moderate")
    batch_call: Any = channel.unary_unary(method + "ModerateBatch")
    stream_call: Any = channel.stream_stream(method + "ModerateStream")
    requests_raw = [
        pb.ModerateRequest(content_id=str(i), text=t).SerializeToString()
        for i, t in enumerate(texts)
    ]
    batches_raw = [
        pb.ModerateBatchRequest(
            items=[
                pb.ModerateRequest(content_id=str(k), text=texts[(i + k) % len(texts)])
                for k in range(100)
            ]
        ).SerializeToString()
        for i in range(20)
    ]
    checked: set[str] = set()

    def check(kind: str, raw: bytes, parse: Callable[[bytes], int], expected: int) -> None:
        if kind not in checked:
            checked.add(kind)
            if parse(raw) != expected:
                raise RuntimeError(f"{kind}: expected {expected} answers")

    def answers(raw: bytes) -> int:
        return 1 if pb.ModerateResponse.FromString(raw).decision else 0

    async def echo_once(i: int) -> int:
        await echo_call(payloads[i % len(payloads)])
        return 1

    async def moderate_once(i: int) -> int:
        check("unary", await moderate_call(requests_raw[i % len(requests_raw)]), answers, 1)
        return 1

    async def batch_once(i: int) -> int:
        reply = await batch_call(batches_raw[i % len(batches_raw)])
        check("batch", reply, lambda r: len(pb.ModerateBatchResponse.FromString(r).results), 100)
        return 100

    def streamed(
        kind: str, call: Any, payloads: list[bytes], parse: Callable[[bytes], int]
    ) -> Callable[[int], Awaitable[int]]:
        async def once(i: int) -> int:
            async def requests() -> AsyncIterator[bytes]:
                for k in range(STREAM_ITEMS):
                    yield payloads[(i + k) % len(payloads)]

            replies = [r async for r in call(requests())]
            check(kind, replies[0], parse, 1)
            return len(replies)

        return once

    sent = set(payloads)

    def echoed(raw: bytes) -> int:
        return 1 if raw in sent else 0

    async def escalate_once(i: int) -> int:
        reply = await judged_stub.Moderate(
            pb.ModerateRequest(content_id=str(i), text=f"一起溜冰吗{i}"), timeout=5
        )
        if reply.escalation.status != pb.ESCALATION_STATUS_RESOLVED:
            raise RuntimeError("not resolved")
        return 1

    try:
        unary_at: dict[int, Result] = {}
        for level in (16, 32, 64):
            ceiling = await closed_loop(
                f"echo, unary, {level} in flight", level, seconds, echo_once, pids.echo
            )
            unary = await closed_loop(
                f"Moderate, unary, {level} in flight", level, seconds, moderate_once,
                pids.moderation,
            )  # fmt: skip
            rows.append(ceiling.row("ceiling"))
            rows.append(unary.row(f"{unary.rate / ceiling.rate:.2f} of echo"))
            unary_at[level] = unary
        for streams in (16, 64):
            shape = f"{streams} streams of {STREAM_ITEMS}"
            ceiling = await closed_loop(
                f"echo, bidi stream, {shape}", streams, seconds,
                streamed("echo stream", echo_stream_call, payloads, echoed), pids.echo,
            )  # fmt: skip
            stream = await closed_loop(
                f"ModerateStream, {shape}", streams, seconds,
                streamed("stream", stream_call, requests_raw, answers), pids.moderation,
            )  # fmt: skip
            unary = unary_at[streams]  # as many calls in flight
            rows.append(
                ceiling.row(
                    f"ceiling; {ceiling.rate / unary.rate:.1f}x Moderate unary at {streams}"
                )
            )
            rows.append(
                stream.row(
                    f"{stream.rate / unary.rate:.1f}x Moderate unary at {streams}; "
                    f"{stream.rate / ceiling.rate:.2f} of echo"
                )
            )
        batch = await closed_loop(
            "ModerateBatch, 100 items a call, 8 in flight", 8, seconds, batch_once,
            pids.moderation,
        )  # fmt: skip
        rows.append(batch.row("items/s"))
        model = await closed_loop(
            "Moderate, every call to a 100 ms model, 32 in flight", 32, seconds, escalate_once,
            pids.judged,
        )  # fmt: skip
        rows.append(model.row("N/L = 320"))
    finally:
        for made in (echo_channel, channel, judged_channel):
            await made.close()
    return rows


def main() -> None:
    """Print the load table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=4.0, help="per scenario")
    args = parser.parse_args()
    rows = run(args.seconds)
    print(
        f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}; "
        "the client and the servers share them"
    )
    print()
    print("| scenario | items/s | p50 / p99 ms per call | server CPU µs per item | errors | note |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print(row)


if __name__ == "__main__":
    main()
