"""One OpenAI-compatible chat-completions client: OpenRouter, DashScope, vLLM, Ollama.

It knows HTTP, retries and failure, not prompts or policy. httpx errors are translated into
our ``ModelError`` tree here and nowhere else:

- transport errors and 408/429/5xx are retried with exponential backoff and full jitter,
  honouring ``Retry-After``, within the call's budget; so is an answer the caller's
  ``parse`` refuses (malformed JSON, wrong shape): a failed attempt, never a crash;
- 400/401/402/403/404/413/422 are not retried (``ModelRejected``): the same request would get
  the same answer;
- a circuit breaker fails fast while the endpoint keeps failing and lets one probe through
  after a cooldown; a semaphore caps the calls in flight.

Imports only ``errors`` (and httpx, structlog). The caller gives the budget: the whole call,
retries and waits included, never outlives it.
"""

from __future__ import annotations

import asyncio
import email.utils
import enum
import json
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import urlsplit

import httpx
import structlog

from moderation.errors import (
    ModelError,
    ModelRejected,
    ModelResponseError,
    ModelTimeout,
    ModelUnavailable,
)

log = structlog.get_logger("moderation.llm")

T = TypeVar("T")

RETRYABLE_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 520, 522, 524, 529})


@dataclass(frozen=True, slots=True)
class ClientOptions:
    """How the client talks to the endpoint (from settings)."""

    base_url: str
    api_key: str
    model: str
    fallback_models: tuple[str, ...] = ()
    """OpenRouter only: tried in order when the first model fails."""
    attempt_timeout_s: float = 20.0
    budget_s: float = 30.0
    """Default budget of one call, retries included, when the caller sets none."""
    max_attempts: int = 3
    backoff_base_s: float = 0.5
    backoff_cap_s: float = 8.0
    max_in_flight: int = 16
    breaker_failures: int = 5
    """Consecutive failed calls that open the breaker."""
    breaker_cooldown_s: float = 30.0
    max_tokens: int = 1024
    temperature: float = 0.0
    app_url: str = ""
    """OpenRouter attribution (HTTP-Referer)."""
    app_title: str = "moderation"
    data_collection: str = "deny"
    """OpenRouter provider preference: only providers that do not collect data."""

    @property
    def host(self) -> str:
        """The endpoint's host name."""
        return urlsplit(self.base_url).hostname or ""

    @property
    def is_openrouter(self) -> bool:
        """True when the endpoint is OpenRouter (its routing fields are sent)."""
        return self.host == "openrouter.ai" or self.host.endswith(".openrouter.ai")


@dataclass(frozen=True, slots=True)
class Usage:
    """Token usage and cost of one call, as the endpoint reported them."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0

    @classmethod
    def of(cls, body: Mapping[str, Any]) -> Usage:
        """Read ``usage`` from a response body; missing fields count as zero."""
        usage = body.get("usage") or {}
        if not isinstance(usage, Mapping):
            return cls()

        def number(key: str) -> float:
            value = usage.get(key)
            return float(value) if isinstance(value, int | float) else 0.0

        return cls(int(number("prompt_tokens")), int(number("completion_tokens")), number("cost"))


@dataclass(frozen=True, slots=True)
class Completion(Generic[T]):
    """A parsed answer, the model that gave it, and what it cost."""

    value: T
    model: str
    usage: Usage
    attempts: int
    latency_s: float


class BreakerState(enum.Enum):
    """Circuit breaker states."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass
class Breaker:
    """Opens after ``failures`` consecutive failed calls; one probe after ``cooldown_s``."""

    failures: int
    cooldown_s: float
    clock: Callable[[], float] = time.monotonic
    _consecutive: int = 0
    _opened_at: float | None = None
    _probing: bool = False
    transitions: list[BreakerState] = field(default_factory=list)

    @property
    def state(self) -> BreakerState:
        """The current state."""
        if self._opened_at is None:
            return BreakerState.CLOSED
        if self.clock() - self._opened_at >= self.cooldown_s:
            return BreakerState.HALF_OPEN
        return BreakerState.OPEN

    def admit(self) -> None:
        """Let a call through, or raise ``ModelUnavailable`` while open (half-open: one probe)."""
        state = self.state
        if state is BreakerState.OPEN or (state is BreakerState.HALF_OPEN and self._probing):
            raise ModelUnavailable("circuit breaker open: the model endpoint keeps failing")
        if state is BreakerState.HALF_OPEN:
            self._probing = True

    def success(self) -> None:
        """A call succeeded: close."""
        if self._opened_at is not None:
            self.transitions.append(BreakerState.CLOSED)
        self._consecutive, self._opened_at, self._probing = 0, None, False

    def abandon(self) -> None:
        """A call ended with no outcome (cancelled): a probe it held goes to the next call."""
        self._probing = False

    def failure(self) -> None:
        """A call failed: count it, and open (or reopen after a failed probe)."""
        self._consecutive += 1
        probing, self._probing = self._probing, False
        if probing or self._consecutive >= self.failures:
            if self._opened_at is None or probing:
                self.transitions.append(BreakerState.OPEN)
            self._opened_at = self.clock()


def retry_after(response: httpx.Response) -> float | None:
    """Seconds the server asks us to wait (``Retry-After``: seconds or an HTTP date)."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - time.time())


class ChatClient:
    """Calls ``POST {base_url}/chat/completions`` with retries, a breaker and a cap."""

    def __init__(
        self,
        options: ClientOptions,
        http: httpx.AsyncClient,
        *,
        sleep: Callable[[float], Any] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.options = options
        self._http = http
        self._sleep = sleep
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not a secret
        self._slots = asyncio.Semaphore(options.max_in_flight)
        self.breaker = Breaker(options.breaker_failures, options.breaker_cooldown_s)
        self.calls = 0
        """HTTP requests sent (every attempt), for metrics and tests."""
        self.retries = 0

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    def _headers(self) -> dict[str, str]:
        headers = {
            "Authorization": f"Bearer {self.options.api_key}",
            "Content-Type": "application/json",
        }
        if self.options.is_openrouter:
            if self.options.app_url:
                headers["HTTP-Referer"] = self.options.app_url
            headers["X-OpenRouter-Title"] = self.options.app_title
            headers["X-Title"] = self.options.app_title
        return headers

    def body(
        self, messages: Sequence[Mapping[str, str]], schema: Mapping[str, Any], name: str
    ) -> dict[str, Any]:
        """The request body: messages, the JSON schema to answer with, routing for OpenRouter."""
        body: dict[str, Any] = {
            "model": self.options.model,
            "messages": list(messages),
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": name, "strict": True, "schema": dict(schema)},
            },
            "temperature": self.options.temperature,
            "max_tokens": self.options.max_tokens,
        }
        if self.options.is_openrouter:
            body["models"] = [self.options.model, *self.options.fallback_models]
            body["provider"] = {
                "require_parameters": True,
                "data_collection": self.options.data_collection,
            }
        return body

    def _backoff(self, attempt: int) -> float:
        ceiling = min(self.options.backoff_cap_s, self.options.backoff_base_s * 2**attempt)
        return self._rng.uniform(0, ceiling)

    async def complete(
        self,
        messages: Sequence[Mapping[str, str]],
        schema: Mapping[str, Any],
        parse: Callable[[str], T],
        *,
        budget_s: float | None = None,
        name: str = "verdict",
    ) -> Completion[T]:
        """Ask for a JSON answer and ``parse`` it; retry what is worth retrying.

        ``parse`` gets the message content and raises ``ModelResponseError`` when it is not an
        answer of the required shape. Raises a ``ModelError`` when no answer can be had within
        ``budget_s`` (default: the options' budget).
        """
        began = time.monotonic()
        budget = self.options.budget_s if budget_s is None else min(budget_s, self.options.budget_s)
        deadline = began + budget
        self.breaker.admit()
        try:
            async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                async with self._slots:
                    completion = await self._attempts(
                        messages, schema, parse, name, deadline, began
                    )
        except TimeoutError as exc:
            self.breaker.failure()
            raise ModelTimeout(f"no answer within the budget of {budget:.2f} s") from exc
        except ModelError:
            self.breaker.failure()
            raise
        except BaseException:
            self.breaker.abandon()  # cancelled: no verdict on the endpoint either way
            raise
        self.breaker.success()
        return completion

    async def _attempts(
        self,
        messages: Sequence[Mapping[str, str]],
        schema: Mapping[str, Any],
        parse: Callable[[str], T],
        name: str,
        deadline: float,
        began: float,
    ) -> Completion[T]:
        body = self.body(messages, schema, name)
        url = self.options.base_url.rstrip("/") + "/chat/completions"
        last: ModelError = ModelUnavailable("no attempt made")
        for attempt in range(self.options.max_attempts):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            wait: float | None = None
            try:
                return await self._attempt(url, body, parse, remaining, attempt + 1, began)
            except _Retryable as retryable:
                last, wait = retryable.error, retryable.retry_after
            if attempt + 1 >= self.options.max_attempts:
                break
            pause = self._backoff(attempt) if wait is None else wait
            if time.monotonic() + pause >= deadline:
                log.info("llm.giving_up", reason="retry would outlive the budget", wait_s=pause)
                break
            self.retries += 1
            await self._sleep(pause)
        raise last

    async def _attempt(
        self,
        url: str,
        body: Mapping[str, Any],
        parse: Callable[[str], T],
        remaining: float,
        attempt: int,
        began: float,
    ) -> Completion[T]:
        timeout = min(self.options.attempt_timeout_s, remaining)
        self.calls += 1
        try:
            response = await self._http.post(
                url, json=body, headers=self._headers(), timeout=httpx.Timeout(timeout)
            )
        except httpx.TimeoutException as exc:
            raise _Retryable(
                ModelTimeout(f"attempt {attempt} timed out after {timeout:.2f} s")
            ) from exc
        except httpx.TransportError as exc:
            raise _Retryable(ModelUnavailable(f"transport error: {type(exc).__name__}")) from exc
        status = response.status_code
        if status in RETRYABLE_STATUS:
            log.info("llm.retryable_status", status=status, attempt=attempt)
            raise _Retryable(ModelUnavailable(f"endpoint answered {status}"), retry_after(response))
        if status >= 400:
            raise ModelRejected(f"endpoint refused the request with {status}", status)
        try:
            payload = response.json()
        except json.JSONDecodeError as exc:
            raise _Retryable(ModelResponseError("the answer is not JSON")) from exc
        if not isinstance(payload, dict):
            raise _Retryable(ModelResponseError("the answer is not a JSON object"))
        if payload.get("error"):
            # OpenRouter reports failures during generation as 200 with an error body.
            raise _Retryable(ModelUnavailable("the endpoint reported an error in the body"))
        try:
            content = payload["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError) as exc:
            raise _Retryable(ModelResponseError("the answer has no message content")) from exc
        if not isinstance(content, str) or not content.strip():
            raise _Retryable(ModelResponseError("empty message content"))
        try:
            value = parse(content)
        except ModelResponseError as exc:
            raise _Retryable(exc) from exc
        model = payload.get("model") if isinstance(payload.get("model"), str) else None
        return Completion(
            value=value,
            model=model or self.options.model,
            usage=Usage.of(payload),
            attempts=attempt,
            latency_s=time.monotonic() - began,
        )


class _Retryable(Exception):
    """An attempt failed in a way another attempt may not."""

    def __init__(self, error: ModelError, retry_after: float | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after
