"""Logging: structlog, JSON lines, configured once, never the user's text.

Events carry ids, fingerprints, labels and timings. As a last line of defence the
``redact`` processor blanks any key that could hold user content, a matched substring or a
prompt, whoever logged it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

#: Keys that must never reach a log line with their value.
FORBIDDEN_KEYS = frozenset(
    {"text", "content", "prompt", "messages", "term", "evidence", "matched", "substring", "body"}
)


def redact(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Blank every forbidden key (see ``FORBIDDEN_KEYS``)."""
    for key in FORBIDDEN_KEYS.intersection(event):
        event[key] = "[redacted]"
    return event


def configure(level: str = "INFO", stream: TextIO | None = None) -> None:
    """Configure structlog and the standard library to write JSON lines to ``stream``.

    Call once, from the composition root. Loggers are not cached, so tests can reconfigure.
    """
    out = stream or sys.stderr
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact,
    ]
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )
    # grpc, httpx and others log through the standard library: same JSON, warnings and up.
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.JSONRenderer(),
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)


class Fingerprinter:
    """Keyed, short hash of a text for logs: correlates repeats without revealing the text.

    A plain hash of a short text can be reversed by guessing; a keyed one cannot without the
    key. With no key, a random one is drawn per process.
    """

    __slots__ = ("_key",)

    def __init__(self, key: bytes = b"") -> None:
        self._key = key or os.urandom(32)

    def __call__(self, text: str) -> str:
        """Sixteen hex digits identifying ``text`` under this key."""
        digest = hashlib.blake2b(
            text.encode("utf-8", "surrogatepass"), key=self._key, digest_size=8
        )
        return digest.hexdigest()
