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
    """Calls served at once; more get RESOURCE_EXHAUSTED instead of queueing without bound."""
    stream_window: int = Field(default=32, ge=1, le=10_000)
    """Items of one ModerateStream judged at once; the stream stops reading beyond that."""
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

    policy_dir: Path | None = None
    """Directory of policy files replacing the embedded ones (for operators)."""

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
    def llm_enabled(self) -> bool:
        """True when a model key is configured."""
        return bool(self.llm_api_key.get_secret_value())
