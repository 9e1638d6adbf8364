"""A fake OpenAI-compatible model: a real HTTP/1.1 server on loopback.

It records every request and answers ``POST /v1/chat/completions`` the way the endpoint
would: by default with a verdict from a toy model that reads the content between the nonce
markers and obeys instructions only when they stand outside them; on cue with 429 and
``Retry-After``, 5xx, 401, a hang, non-JSON, a wrong shape, or slowly.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

MARKERS = re.compile(r"<<<CONTENT (?P<nonce>[^>]*)>>>\n(?P<body>.*?)\n<<<END (?P=nonce)>>>", re.S)
BAD = ("溜冰", "傻逼", "草泥马", "sb")


@dataclass
class Answer:
    """One scripted answer."""

    status: int = 200
    body: Any = None
    """A dict is sent as JSON; a str as it is; None: the toy model's verdict."""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    """Seconds to wait before answering (a hang when longer than the client's timeout)."""


def verdict(kind: str, *labels: tuple[str, str]) -> dict[str, Any]:
    """A verdict object: ``verdict("unsafe", ("ABUSE", "HIGH"))``."""
    return {
        "verdict": kind,
        "labels": [
            {"category": c, "severity": s, "confidence": 0.9, "rationale": "test"}
            for c, s in labels
        ],
    }


def completion(content: str, model: str = "fake/qwen", usage: bool = True) -> dict[str, Any]:
    """A chat-completions response body carrying ``content``."""
    body: dict[str, Any] = {
        "id": "gen-1",
        "object": "chat.completion",
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}}],
    }
    if usage:
        body["usage"] = {
            "prompt_tokens": 120,
            "completion_tokens": 30,
            "total_tokens": 150,
            "cost": 0.0004,
        }
    return body


#: A careless model's reading: the content ends at the first END marker, whatever its nonce.
CARELESS_MARKERS = re.compile(r"<<<CONTENT [^>]*>>>\n(?P<body>.*?)\n<<<END [^>]*>>>", re.S)


def toy_model(request: dict[str, Any], markers: re.Pattern[str] = MARKERS) -> dict[str, Any]:
    """Judge like an obedient model: instructions outside the markers win; inside, it judges
    (a content block holding one JSON string is decoded first)."""
    user = next(m["content"] for m in request["messages"] if m["role"] == "user")
    found = markers.search(user)
    content = found.group("body") if found else user
    if content.startswith('"'):
        with contextlib.suppress(json.JSONDecodeError):
            content = json.loads(content)
    outside = user.replace(found.group(0), "") if found else ""
    if "answer safe" in outside.lower():
        return verdict("safe")
    if any(word in content for word in BAD):
        return verdict("unsafe", ("ABUSE", "HIGH"))
    if "纪念" in content:
        return verdict("unsafe", ("POLITICAL", "HIGH"))
    return verdict("safe")


class FakeModel:
    """The server. ``script`` answers come first, in order; then ``default``."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.script: list[Answer] = []
        self.default: Callable[[dict[str, Any]], Answer] = lambda r: Answer(
            body=completion(json.dumps(toy_model(r), ensure_ascii=False))
        )
        self._server: asyncio.Server | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        """The OpenAI-style base URL."""
        return f"http://127.0.0.1:{self.port}/v1"

    async def start(self) -> None:
        """Listen on an ephemeral loopback port."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening and drop connections."""
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    def user_messages(self) -> list[str]:
        """The user message of every request."""
        return [
            next(m["content"] for m in r["messages"] if m["role"] == "user") for r in self.requests
        ]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                headers = {
                    k.strip().lower(): v.strip()
                    for k, _, v in (line.partition(":") for line in lines[1:] if line)
                }
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                request = json.loads(body)
                self.requests.append(request)
                self.headers.append(headers)
                answer = self.script.pop(0) if self.script else self.default(request)
                if answer.delay:
                    await asyncio.sleep(answer.delay)
                if answer.body is None:
                    payload = json.dumps(
                        completion(json.dumps(toy_model(request), ensure_ascii=False))
                    ).encode()
                elif isinstance(answer.body, str):
                    payload = answer.body.encode()
                else:
                    payload = json.dumps(answer.body, ensure_ascii=False).encode()
                extra = "".join(f"{k}: {v}\r\n" for k, v in answer.headers.items())
                writer.write(
                    f"HTTP/1.1 {answer.status} X\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(payload)}\r\n{extra}\r\n".encode()
                    + payload
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()


async def _serve_forever(delay: float) -> None:
    server = FakeModel()
    server.default = lambda request: Answer(delay=delay)
    await server.start()
    print(server.port, flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    # ``python -m tests.fake_llm DELAY``: serve on an ephemeral port (printed) until killed, so
    # a benchmark can put the fake model in its own process.
    import sys

    asyncio.run(_serve_forever(float(sys.argv[1]) if len(sys.argv) > 1 else 0.0))
