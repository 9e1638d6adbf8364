"""Who may call: API keys per client, per-key jurisdictions and rate limits.

Keys arrive as ``authorization: Bearer <key>`` metadata. They are kept only as SHA-256
digests (API keys are long random strings, so a plain digest is the right hash) and compared
with ``hmac.compare_digest`` against every known client, so neither a wrong key nor a right
one can be told apart by timing. Clients come from a TOML file::

    [[clients]]
    name = "feed-service"
    key_sha256 = "9f86d081884c7d65..."   # sha256 of the key, hex
    jurisdictions = ["CN", "GLOBAL"]     # optional; empty or absent: all
    rate_per_second = 200                # optional; absent: unlimited
    burst = 400                          # optional; default twice the rate

or from ``MODERATION_API_KEYS=name=key,other=key2`` (hashed at load; the environment's copy
is the operator's to protect). Health checks and reflection need no key.
"""

from __future__ import annotations

import contextvars
import hashlib
import hmac
import time
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pydantic
from pydantic import BaseModel, ConfigDict, Field

from moderation.domain import canonical_jurisdiction
from moderation.errors import (
    BatchTooLarge,
    ConfigError,
    Overloaded,
    Unauthenticated,
)

OPEN_METHODS = ("/grpc.health.v1.Health/", "/grpc.reflection.")


@dataclass
class Bucket:
    """A token bucket: ``rate`` tokens a second, at most ``burst`` saved up."""

    rate: float
    burst: float
    tokens: float = field(init=False)
    stamp: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.tokens = self.burst

    def _refill(self, now: float | None) -> None:
        now = time.monotonic() if now is None else now
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now

    def take(self, count: int = 1, now: float | None = None) -> float:
        """Take ``count`` tokens at once; 0 when granted, else the seconds until they are due
        (nothing is taken then)."""
        self._refill(now)
        if self.tokens >= count:
            self.tokens -= count
            return 0.0
        return (count - self.tokens) / self.rate

    def reserve(self, now: float | None = None) -> float:
        """Take a token now, going into debt if need be; the seconds to wait before using it
        (a paced stream waits them, so the client's rate holds over any number of items)."""
        self._refill(now)
        self.tokens -= 1
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate


@dataclass(frozen=True)
class Client:
    """A calling client."""

    name: str
    digest: bytes
    jurisdictions: frozenset[str] = frozenset()
    bucket: Bucket | None = field(default=None, compare=False)

    def may_use(self, jurisdiction: str) -> bool:
        """True when the client may ask for ``jurisdiction``."""
        return not self.jurisdictions or jurisdiction in self.jurisdictions


#: The client of the call being served (set by the access interceptor).
current_client: contextvars.ContextVar[Client | None] = contextvars.ContextVar(
    "current_client", default=None
)


class _ClientSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=64)
    key_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    jurisdictions: list[str] = []
    rate_per_second: float | None = Field(default=None, gt=0)
    burst: float | None = Field(default=None, ge=1)


class _KeysFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    clients: list[_ClientSpec]


def digest(key: str) -> bytes:
    """The SHA-256 digest a key is stored and compared as."""
    return hashlib.sha256(key.encode("utf-8")).digest()


def _client(spec: _ClientSpec) -> Client:
    bucket = None
    if spec.rate_per_second is not None:
        bucket = Bucket(spec.rate_per_second, spec.burst or 2 * spec.rate_per_second)
    return Client(
        spec.name,
        bytes.fromhex(spec.key_sha256),
        frozenset(canonical_jurisdiction(j) for j in spec.jurisdictions),
        bucket,
    )


def load_clients(path: Path | None, env_keys: str) -> list[Client]:
    """Clients from the keys file and the environment; ``ConfigError`` says what to fix."""
    clients: list[Client] = []
    if path is not None:
        try:
            spec = _KeysFile.model_validate(tomllib.loads(path.read_text(encoding="utf-8")))
        except FileNotFoundError as exc:
            raise ConfigError(f"MODERATION_API_KEYS_FILE: {path} not found") from exc
        except (tomllib.TOMLDecodeError, pydantic.ValidationError) as exc:
            raise ConfigError(f"{path}: not a valid keys file: {exc}") from exc
        clients.extend(_client(c) for c in spec.clients)
    for pair in filter(None, (p.strip() for p in env_keys.split(","))):
        name, sep, key = pair.partition("=")
        if not sep or not name or len(key) < 16:
            raise ConfigError(
                "MODERATION_API_KEYS: write name=key pairs separated by commas; keys of at "
                "least 16 characters"
            )
        clients.append(Client(name, digest(key)))
    names = [c.name for c in clients]
    if len(names) != len(set(names)):
        raise ConfigError("API keys: client names must be unique")
    return clients


class Gate:
    """Identifies the caller of a method and applies its rate limit."""

    def __init__(self, clients: Iterable[Client]) -> None:
        self._clients = tuple(clients)

    @property
    def enabled(self) -> bool:
        """True when keys are configured (otherwise every call is let in)."""
        return bool(self._clients)

    def identify(self, method: str, metadata: Mapping[str, str]) -> Client | None:
        """The client for a call, or ``Unauthenticated``; None when open. Its rate is charged
        by what it asks for (``charge``), not here."""
        if not self._clients or method.startswith(OPEN_METHODS):
            return None
        header = metadata.get("authorization", "")
        scheme, _, key = header.partition(" ")
        if scheme.lower() != "bearer" or not key:
            raise Unauthenticated("send the API key as 'authorization: Bearer <key>' metadata")
        presented = digest(key.strip())
        found: Client | None = None
        for client in self._clients:  # every client, so timing says nothing about which
            if hmac.compare_digest(presented, client.digest):
                found = client
        if found is None:
            raise Unauthenticated("unknown API key")
        return found


def charge(client: Client | None, items: int) -> None:
    """Take ``items`` from the client's rate at once, or refuse them all.

    ``Overloaded`` (with the wait) when the rate has not saved up enough yet; ``BatchTooLarge``
    when more items are asked for at once than the client's burst could ever hold.
    """
    if client is None or client.bucket is None or items <= 0:
        return
    bucket = client.bucket
    if items > bucket.burst:
        raise BatchTooLarge(
            "items",
            f"has {items} items; client {client.name!r} may send at most {bucket.burst:g} "
            "at once (its burst): split the call",
        )
    wait = bucket.take(items)
    if wait > 0:
        raise Overloaded(f"rate limit of client {client.name!r} exceeded", retry_after=wait)
