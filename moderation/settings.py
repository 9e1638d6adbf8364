"""Settings from the environment: the only module that reads it.

Every variable is ``MODERATION_<FIELD>`` (upper case); the model key also falls back to
``OPENROUTER_API_KEY``. ``Settings.from_env()`` validates everything at start and raises
``ConfigError`` with one line per problem that names the variable and says what to fix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import pydantic
from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from moderation.errors import ConfigError

ENV_PREFIX = "MODERATION_"


class Settings(BaseSettings):
    """Runtime configuration. Defaults serve on loopback with heuristics only."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, extra="ignore", frozen=True, populate_by_name=True
    )

    host: str = "127.0.0.1"
    """Address to listen on; ``0.0.0.0`` or ``[::]`` for every interface."""
    port: int = Field(default=50051, ge=0, le=65535)
    """gRPC port; 0 picks a free one."""
    default_jurisdiction: str = "GLOBAL"
    """Jurisdiction used when a request leaves it empty; must have a policy."""
    max_text_chars: int = Field(default=20_000, ge=1, le=1_000_000)
    """Longest accepted text, in Unicode code points."""
    max_batch_items: int = Field(default=500, ge=1, le=100_000)
    """Most items in one ModerateBatch call."""
    max_message_bytes: int = Field(default=32 * 1024 * 1024, ge=1024, le=1024 * 1024 * 1024)
    """Largest gRPC message in either direction; larger ones get RESOURCE_EXHAUSTED."""
    max_concurrent_rpcs: int = Field(default=256, ge=1, le=100_000)
    """Calls served at once; more get RESOURCE_EXHAUSTED instead of queueing without bound.
    Health checks and reflection are not counted, so probes answer on a full server."""
    stream_window: int = Field(default=32, ge=1, le=10_000)
    """Items of one ModerateStream judged at once; the stream stops reading beyond that."""
    stream_idle_seconds: float = Field(default=300.0, gt=0.0, le=86_400.0)
    """A stream that sends nothing this long, with no answer pending, is closed UNAVAILABLE."""
    drain_seconds: float = Field(default=0.0, ge=0.0, le=600.0)
    """On SIGTERM/SIGINT: time to keep serving while health says NOT_SERVING (for balancers)."""
    grace_seconds: float = Field(default=10.0, ge=0.0, le=600.0)
    """On SIGTERM/SIGINT: time given to calls in flight before they are cancelled."""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_hash_key: SecretStr = SecretStr("")
    """Key for the text fingerprints in logs; empty: a random key per process."""

    llm_base_url: str = "https://openrouter.ai/api/v1"
    """OpenAI-compatible endpoint for the model."""
    llm_api_key: SecretStr = Field(
        default=SecretStr(""),
        validation_alias=AliasChoices("MODERATION_LLM_API_KEY", "OPENROUTER_API_KEY"),
    )
    """Bearer key for the endpoint; empty runs heuristics only."""
    llm_model: str = "qwen/qwen3.7-max"
    """Model id at the endpoint."""
    llm_fallback_models: str = ""
    """OpenRouter only: comma-separated model ids tried in order when the first fails."""
    llm_timeout_seconds: float = Field(default=20.0, gt=0, le=600)
    """Timeout of one attempt."""
    llm_budget_seconds: float = Field(default=30.0, gt=0, le=3600)
    """Most time one escalation may take, retries included; the caller's deadline caps it."""
    llm_max_attempts: int = Field(default=3, ge=1, le=10)
    llm_backoff_seconds: float = Field(default=0.5, ge=0, le=60)
    """Base of the exponential backoff between attempts (full jitter, capped at 8 s)."""
    llm_max_in_flight: int = Field(default=16, ge=1, le=1024)
    """Model calls in flight at once; more wait (within their budget)."""
    llm_breaker_failures: int = Field(default=5, ge=1, le=1000)
    """Consecutive failed calls that open the circuit breaker."""
    llm_breaker_cooldown_seconds: float = Field(default=30.0, gt=0, le=3600)
    """How long the breaker stays open before one probe."""
    llm_max_tokens: int = Field(default=1024, ge=64, le=65536)
    """Completion tokens allowed (reasoning models spend some before the JSON)."""
    llm_max_content_tokens: int = Field(default=1500, ge=50, le=100_000)
    """Content sent to the model is cut around the evidence beyond this estimate."""
    llm_app_url: str = ""
    """OpenRouter attribution: the HTTP-Referer header."""
    llm_app_title: str = "moderation"
    """OpenRouter attribution: the X-OpenRouter-Title header."""
    cache_size: int = Field(default=10_000, ge=0, le=10_000_000)
    """Model verdicts kept in memory."""
    cache_path: Path | None = None
    """A SQLite file that keeps model verdicts across restarts and batch reruns."""

    api_keys: SecretStr = SecretStr("")
    """``name=key`` pairs, comma-separated; with keys (or a keys file) every call needs one."""
    api_keys_file: Path | None = None
    """A TOML file of clients: name, key_sha256, jurisdictions, rate_per_second, burst."""
    tls_cert_file: Path | None = None
    """PEM certificate chain; with the key, the server speaks TLS only."""
    tls_key_file: Path | None = None
    tls_client_ca_file: Path | None = None
    """PEM CA bundle; when set, clients must present a certificate it signed (mTLS)."""
    health_tls_cert_file: Path | None = None
    """Client certificate ``moderation health`` presents to an mTLS server (default: the
    server's own)."""
    health_tls_key_file: Path | None = None
    metrics_port: int = Field(default=0, ge=0, le=65535)
    """Port of the Prometheus /metrics endpoint; 0 turns it off."""
    metrics_host: str = "127.0.0.1"
    """Address of the /metrics endpoint: loopback unless opened on purpose."""
    metrics_token: SecretStr = SecretStr("")
    """When set, a scrape must send ``Authorization: Bearer <token>``."""

    policy_dir: Path | None = None
    """Directory of policy files replacing the embedded ones (for operators)."""
    scorer_path: str = ""
    """A scorer model file (``moderation train``) replacing the embedded one; ``off``: no
    scorer (the rules alone route)."""
    broad_lexicon_path: Path | None = None
    """A broad word list (``moderation broad-lexicon``) whose hits only escalate."""

    @classmethod
    def from_env(cls) -> Settings:
        """Read and validate the environment, or raise ``ConfigError`` saying what to fix."""
        try:
            return cls()
        except pydantic.ValidationError as exc:
            lines = []
            for error in exc.errors():
                name = ENV_PREFIX + "_".join(str(part) for part in error["loc"]).upper()
                lines.append(f"{name}: {error['msg']} (got {error.get('input')!r})")
            raise ConfigError("invalid settings:\n  " + "\n  ".join(lines)) from exc

    @property
    def fallback_models(self) -> tuple[str, ...]:
        """``llm_fallback_models`` as a tuple."""
        return tuple(m.strip() for m in self.llm_fallback_models.split(",") if m.strip())

    @property
    def llm_enabled(self) -> bool:
        """True when a model key is configured."""
        return bool(self.llm_api_key.get_secret_value())
