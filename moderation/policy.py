"""Per-jurisdiction policies: shipped as TOML files with a prompt beside each, validated at load.

A policy says which categories are enabled, the action for each (category, severity), what
makes a case ambiguous, what to do when the model is unavailable, the system prompt the model
judges under, and which model endpoints may receive the jurisdiction's content. A broken file
refuses the start with the file, the key and the fix. Loading is pure and happens once.
"""

from __future__ import annotations

import fnmatch
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field

from moderation.domain import (
    JURISDICTION_CODE,
    Category,
    Decision,
    Severity,
    canonical_jurisdiction,
)
from moderation.errors import PolicyError

#: Model endpoints a policy may name, by the host patterns of their base URLs.
ENDPOINTS: Mapping[str, tuple[str, ...]] = {
    "openrouter": ("openrouter.ai",),
    "dashscope-cn": ("dashscope.aliyuncs.com", "*.cn-beijing.maas.aliyuncs.com"),
    "dashscope-intl": ("dashscope-intl.aliyuncs.com", "*.ap-southeast-1.maas.aliyuncs.com"),
    "dashscope-us": ("dashscope-us.aliyuncs.com", "*.us-east-1.maas.aliyuncs.com"),
    "dashscope-hk": ("cn-hongkong.dashscope.aliyuncs.com", "*.cn-hongkong.maas.aliyuncs.com"),
    "self-hosted": ("localhost", "127.0.0.1", "::1", "*.internal", "*.svc.cluster.local"),
}

ActionName = Literal["ALLOW", "REVIEW", "BLOCK"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SeverityActions(_Strict):
    """The action for each severity of one category."""

    LOW: ActionName
    MEDIUM: ActionName
    HIGH: ActionName
    CRITICAL: ActionName


class Ambiguity(_Strict):
    """What sends a case to the model instead of deciding it on the spot."""

    min_confidence: float = Field(default=0.8, ge=0.0, le=1.0)
    """Hits less sure than this are escalated rather than decided."""
    ambiguous_terms: bool = True
    """Terms marked ambiguous in the lexicon (草, 溜冰, sb) escalate instead of deciding."""
    escalate_severities: list[Literal["LOW", "MEDIUM", "HIGH", "CRITICAL"]] = ["LOW"]
    """Severities whose hits are judged by the model even when confident."""


Threshold = float | Literal["never"]


class ScorerRouting(_Strict):
    """What the learned scorer's probability does under this policy.

    A score at or over ``escalate_at`` sends the item to the model (REVIEW, the fail mode,
    when the model is off or down), with or without a rule hit. A score at or over
    ``block_at`` blocks on its own; ``"never"`` (the default) means a score alone never
    blocks. A strong rule hit blocks whatever the score.
    """

    escalate_at: Threshold = 0.5
    block_at: Threshold = "never"

    @pydantic.field_validator("escalate_at", "block_at")
    @classmethod
    def _probability(cls, value: Threshold) -> Threshold:
        if value != "never" and not 0.0 <= value <= 1.0:
            raise ValueError('must be a probability from 0 to 1, or "never"')
        return value

    @pydantic.model_validator(mode="after")
    def _ordered(self) -> ScorerRouting:
        if (
            self.block_at != "never"
            and self.escalate_at != "never"
            and self.block_at < self.escalate_at
        ):
            raise ValueError("block_at must not be below escalate_at")
        return self

    @property
    def escalate(self) -> float:
        """``escalate_at`` as a number (past any probability when ``"never"``)."""
        return 2.0 if self.escalate_at == "never" else self.escalate_at

    @property
    def block(self) -> float:
        """``block_at`` as a number (past any probability when ``"never"``)."""
        return 2.0 if self.block_at == "never" else self.block_at


class PolicyFile(_Strict):
    """The schema of one ``<jurisdiction>.toml`` file."""

    jurisdiction: str = Field(pattern=f"^{JURISDICTION_CODE}$")
    version: str = Field(min_length=1, max_length=64)
    description: str
    prompt: str = Field(pattern=r"^[a-z0-9_.-]+\.md$")
    """File name of the system prompt, beside the policy file."""
    fail_mode: ActionName = "REVIEW"
    model_endpoints: list[str] = []
    """Names from ``ENDPOINTS`` (or ``custom``) allowed to receive this jurisdiction's content."""
    ambiguity: Ambiguity = Ambiguity()
    scorer: ScorerRouting = ScorerRouting()
    actions: dict[str, SeverityActions]
    """Enabled categories (by name) and the action for each severity; others are ignored."""


@dataclass(frozen=True, slots=True)
class Policy:
    """A loaded, validated policy."""

    jurisdiction: str
    version: str
    description: str
    prompt: str
    fail_mode: Decision
    model_endpoints: frozenset[str]
    ambiguity: Ambiguity
    actions: Mapping[tuple[Category, Severity], Decision]
    scorer: ScorerRouting = field(default_factory=ScorerRouting)
    escalated_severities: frozenset[Severity] = field(init=False)
    """``ambiguity.escalate_severities`` as members (read for every finding)."""
    escalate_at: float = field(init=False)
    """``scorer.escalate_at`` as a number (2.0, past any probability, for ``"never"``)."""
    block_at: float = field(init=False)
    """``scorer.block_at`` as a number (2.0 for ``"never"``)."""

    def __post_init__(self) -> None:
        escalated = frozenset(Severity[name] for name in self.ambiguity.escalate_severities)
        object.__setattr__(self, "escalated_severities", escalated)
        object.__setattr__(self, "escalate_at", self.scorer.escalate)
        object.__setattr__(self, "block_at", self.scorer.block)

    @property
    def enabled_categories(self) -> tuple[Category, ...]:
        """The categories this policy acts on, in enum order."""
        enabled = {category for category, _ in self.actions}
        return tuple(c for c in Category if c in enabled)

    def action(self, category: Category, severity: Severity) -> Decision | None:
        """The decision for a finding, or None when the category is not enabled here."""
        return self.actions.get((category, severity))

    def allows_endpoint(self, host: str) -> bool:
        """True when content under this policy may be sent to a model served at ``host``."""
        name = endpoint_name(host)
        return name in self.model_endpoints


def endpoint_name(host: str) -> str:
    """The ``ENDPOINTS`` name whose patterns match ``host``, or ``custom``."""
    host = host.lower().strip("[]")
    for name, patterns in ENDPOINTS.items():
        if any(fnmatch.fnmatchcase(host, pattern) for pattern in patterns):
            return name
    return "custom"


class PolicySet:
    """All loaded policies by jurisdiction, and the default one."""

    def __init__(self, policies: Mapping[str, Policy], default: str) -> None:
        if default not in policies:
            known = ", ".join(sorted(policies))
            raise PolicyError(
                f"default jurisdiction {default!r} has no policy (known: {known}); "
                "set MODERATION_DEFAULT_JURISDICTION to one of them"
            )
        self._policies = dict(policies)
        self.default = default

    def get(self, jurisdiction: str) -> Policy | None:
        """The policy for ``jurisdiction`` (empty: the default), or None when unknown."""
        return self._policies.get(canonical_jurisdiction(jurisdiction) or self.default)

    def __iter__(self) -> Iterator[Policy]:
        return iter(sorted(self._policies.values(), key=lambda p: p.jurisdiction))

    def __len__(self) -> int:
        return len(self._policies)

    def __contains__(self, jurisdiction: object) -> bool:
        return (
            isinstance(jurisdiction, str) and canonical_jurisdiction(jurisdiction) in self._policies
        )


def _describe(error: Mapping[str, object]) -> str:
    location = ".".join(str(part) for part in error["loc"]) or "(top level)"  # type: ignore[attr-defined]
    message = str(error["msg"])
    if error["type"] == "extra_forbidden":
        message = "unknown key; remove it or fix its spelling"
    elif error["type"] == "missing":
        message = "required key is missing; add it"
    return f"{location}: {message}"


def _parse(name: str, raw: bytes, folder: Traversable) -> Policy:
    try:
        data = tomllib.loads(raw.decode("utf-8"))
        spec = PolicyFile.model_validate(data)
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise PolicyError(f"{name}: not valid UTF-8 TOML: {exc}") from exc
    except pydantic.ValidationError as exc:
        problems = "; ".join(_describe(e) for e in exc.errors())
        raise PolicyError(f"{name}: {problems}") from exc
    if name.removesuffix(".toml") != spec.jurisdiction.lower():
        raise PolicyError(
            f"{name}: jurisdiction {spec.jurisdiction!r} does not match the file name; "
            f"rename the file to {spec.jurisdiction.lower()}.toml"
        )
    known_categories = {c.name for c in Category}
    for key in spec.actions:
        if key not in known_categories:
            raise PolicyError(
                f"{name}: actions.{key}: unknown category; use one of {sorted(known_categories)}"
            )
    known_endpoints = {*ENDPOINTS, "custom"}
    for endpoint in spec.model_endpoints:
        if endpoint not in known_endpoints:
            raise PolicyError(
                f"{name}: model_endpoints: unknown endpoint {endpoint!r}; "
                f"use names from {sorted(known_endpoints)}"
            )
    prompt_file = folder / spec.prompt
    if not prompt_file.is_file():
        raise PolicyError(
            f"{name}: prompt: file {spec.prompt!r} not found beside the policy; add it"
        )
    prompt = prompt_file.read_text(encoding="utf-8").strip()
    if not prompt:
        raise PolicyError(f"{name}: prompt: {spec.prompt!r} is empty; write the policy prompt")
    actions = {
        (Category[category], severity): Decision[getattr(by_severity, severity.name)]
        for category, by_severity in spec.actions.items()
        for severity in Severity
    }
    return Policy(
        jurisdiction=spec.jurisdiction,
        version=spec.version,
        description=spec.description,
        prompt=prompt,
        fail_mode=Decision[spec.fail_mode],
        model_endpoints=frozenset(spec.model_endpoints),
        ambiguity=spec.ambiguity,
        actions=actions,
        scorer=spec.scorer,
    )


def embedded_policy_dir() -> Traversable:
    """The policies shipped in the package."""
    return resources.files("moderation") / "data" / "policies"


def load_policies(folder: Traversable | Path | None = None, default: str = "GLOBAL") -> PolicySet:
    """Load and validate every ``*.toml`` policy in ``folder`` (default: the embedded ones)."""
    folder = folder or embedded_policy_dir()
    if not folder.is_dir():
        raise PolicyError(f"{folder}: policy directory not found; set MODERATION_POLICY_DIR")
    policies: dict[str, Policy] = {}
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".toml"):
            continue
        policy = _parse(entry.name, entry.read_bytes(), folder)
        policies[policy.jurisdiction] = policy
    if not policies:
        raise PolicyError(f"{folder}: no *.toml policy files; add at least {default.lower()}.toml")
    return PolicySet(policies, default)
