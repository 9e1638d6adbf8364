"""Logging: structlog, JSON lines, configured once, never the user's text.

Events carry ids, fingerprints, labels and timings. As a last line of defence the
``redact`` processor blanks any key that could hold user content, a matched substring or a
prompt, whoever logged it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import time
from collections.abc import MutableMapping, Sequence
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


class _UtcStamp:
    """ISO 8601 UTC timestamps to the microsecond; the part up to the second is formatted
    once a second, not once a line."""

    __slots__ = ("_prefix", "_second")

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def __call__(
        self, _logger: Any, _name: str, event: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        now = time.time()
        second = int(now)
        if second != self._second:
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = second
        event["timestamp"] = f"{self._prefix}.{int((now - second) * 1_000_000):06d}Z"
        return event


def _fallback(value: Any) -> Any:
    """What JSON cannot encode: its ``__structlog__`` form, or its repr."""
    render = getattr(value, "__structlog__", None)
    return render() if callable(render) else repr(value)


#: One encoder for every line (``json.dumps`` with options builds a new one per call).
_ENCODER = json.JSONEncoder(default=_fallback)


def _dumps(event: MutableMapping[str, Any], **_options: Any) -> str:
    return _ENCODER.encode(event)


class _Sink:
    """Where the lines go and from which level: ``configure`` sets both.

    Loggers are cached on first use (rebuilding one per call costs more than the line), so a
    new configuration reaches them through this one object rather than through new loggers.
    """

    __slots__ = ("level", "stream")

    def __init__(self) -> None:
        self.stream: TextIO = sys.stderr
        self.level = logging.INFO

    def write(self, text: str) -> int:
        return self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()


_SINK = _Sink()
_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "exception": logging.ERROR,
    "critical": logging.CRITICAL,
    "fatal": logging.CRITICAL,
}


def _at_level(_logger: Any, name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    if not enabled(_LEVELS.get(name, logging.INFO)):
        raise structlog.DropEvent
    return event


class _LineLogger:
    """Writes each rendered line to the sink and flushes it (no line waits in a buffer)."""

    def msg(self, message: str) -> None:
        stream = _SINK.stream
        stream.write(message + "\n")
        stream.flush()

    debug = info = warning = warn = error = exception = critical = fatal = log = msg


_LINE_LOGGER = _LineLogger()


def enabled(level: int) -> bool:
    """True when lines of ``level`` (``logging.INFO`` ...) are written: skip building others."""
    return level >= _SINK.level


def configure(level: str = "INFO", stream: TextIO | None = None, extra: Sequence[Any] = ()) -> None:
    """Configure structlog and the standard library to write JSON lines to ``stream``.

    ``extra`` processors add keys to every line (the trace ids, when tracing). Call from the
    composition root; calling again (tests do) moves every logger to the new stream and level.
    """
    _SINK.stream = stream or sys.stderr
    _SINK.level = logging.getLevelName(level.upper())
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        _UtcStamp(),
        *extra,
        redact,
    ]
    structlog.configure(
        processors=[
            _at_level,
            *shared,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(serializer=_dumps),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),  # see _at_level
        logger_factory=lambda *_args: _LINE_LOGGER,
        cache_logger_on_first_use=True,
    )
    # grpc, httpx and others log through the standard library: same JSON, warnings and up.
    handler = logging.StreamHandler(_SINK)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.JSONRenderer(serializer=_dumps),
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
