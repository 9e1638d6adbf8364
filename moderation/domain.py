"""Value types shared by every layer: enums for closed sets, immutable records for results.

The records made for every message (``Content``, ``Evidence``, ``Finding``, ``Label``,
``Triage``, ``Escalation``, ``ModerationResult``) are named tuples: as immutable and as
readable by field name as a frozen dataclass, and built four times faster (a frozen
dataclass sets each field through ``object.__setattr__``), which the prefilter's budget of
about 20 µs a message notices. Build them by keyword, except where one is built for every
message or every hit (building by position is twice as fast there); never unpack them by
position.

Enum member names equal the proto enum names without their prefix (``Category.ABUSE`` is
``CATEGORY_ABUSE`` on the wire), so conversion is by name and cannot drift silently.
This module imports nothing of ours but ``errors``; it knows nothing of gRPC.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import NamedTuple


class _Enum(enum.Enum):
    """An enum whose members hash by identity (they are singletons, and equal only to
    themselves): ``Enum``'s own hash is a Python function called on every dict lookup."""

    __hash__ = object.__hash__


class Category(_Enum):
    """Risk categories; what each covers is written beside it in the contract
    (``proto/moderation/v1/moderation.proto``, enum ``Category``)."""

    ABUSE = "ABUSE"
    HATE = "HATE"
    SEXUAL = "SEXUAL"
    MINOR_SAFETY = "MINOR_SAFETY"
    VIOLENCE = "VIOLENCE"
    SELF_HARM = "SELF_HARM"
    EXTREMISM = "EXTREMISM"
    ILLEGAL = "ILLEGAL"
    SPAM = "SPAM"
    POLITICAL = "POLITICAL"
    PII = "PII"


class Severity(enum.IntEnum):
    """How bad a finding is; ordered, so the worst of several is ``max``."""

    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4


class Decision(enum.IntEnum):
    """What to do with the content; ordered so that BLOCK dominates REVIEW dominates ALLOW."""

    ALLOW = 1
    REVIEW = 2
    BLOCK = 3


class Source(_Enum):
    """Which stage produced a label."""

    LEXICON = "LEXICON"
    PATTERN = "PATTERN"
    LLM = "LLM"
    SCORER = "SCORER"


class Variant(_Enum):
    """How a span disguised the canonical term."""

    EXACT = "EXACT"
    HOMOPHONE = "HOMOPHONE"
    PINYIN = "PINYIN"
    ABBREVIATION = "ABBREVIATION"
    SPLIT_CHARACTER = "SPLIT_CHARACTER"
    TRADITIONAL = "TRADITIONAL"
    SEPARATOR = "SEPARATOR"
    WIDTH = "WIDTH"
    DIGIT = "DIGIT"
    EMOJI = "EMOJI"
    CONFUSABLE = "CONFUSABLE"
    REPEAT = "REPEAT"
    LEETSPEAK = "LEETSPEAK"
    GLYPH = "GLYPH"


class EscalationMode(_Enum):
    """Whether the caller lets the model be asked."""

    AUTO = "AUTO"
    NEVER = "NEVER"
    ALWAYS = "ALWAYS"


class EscalationStatus(_Enum):
    """What happened with the model for one item."""

    NOT_NEEDED = "NOT_NEEDED"
    RESOLVED = "RESOLVED"
    CACHED = "CACHED"
    SKIPPED = "SKIPPED"
    UNAVAILABLE = "UNAVAILABLE"


#: How a jurisdiction code is written: two to eight capital letters (CN, GLOBAL).
JURISDICTION_CODE = r"[A-Z]{2,8}"


def canonical_jurisdiction(code: str) -> str:
    """A jurisdiction code as policies name it, whoever wrote it: `` cn `` is ``CN``. Empty
    (or blank) stays empty, which means the default policy."""
    return code.strip().upper()


class Content(NamedTuple):
    """One item to judge, as the caller sent it (before validation)."""

    text: str
    content_id: str = ""
    jurisdiction: str = ""
    escalation: EscalationMode = EscalationMode.AUTO
    surface: str = ""
    language: str = ""


class ModelUsage(NamedTuple):
    """A process's model figures so far, read at once: what metrics report and batch runs
    sum up. Counters only grow; ``breaker`` is the circuit's state (closed, half_open, open)."""

    requests: int = 0
    """HTTP requests sent, retries included."""
    retries: int = 0
    calls: int = 0
    """Calls that got an answer."""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    cache_hits: int = 0
    cache_misses: int = 0
    breaker: str = "closed"


class Evidence(NamedTuple):
    """A span of the caller's text: code-point offsets, end exclusive."""

    start: int
    end: int
    text: str
    term: str
    variant: Variant


class Finding(NamedTuple):
    """One detector hit, before policy: what matched, where, and how sure we are."""

    category: Category
    subcategory: str
    severity: Severity
    confidence: float
    source: Source
    evidence: Evidence
    rule: str
    """Stable id of the rule that fired (lexicon entry or pattern name); safe to log."""
    ambiguous: bool = False
    """True when the hit alone cannot decide (a term that is harmless in most uses)."""


class Label(NamedTuple):
    """A category found in the content, with all the evidence for it."""

    category: Category
    subcategory: str
    severity: Severity
    confidence: float
    source: Source
    evidence: tuple[Evidence, ...] = ()
    rationale: str = ""


class Route(_Enum):
    """Triage outcome: decide now, or ask the model."""

    CLEAR = "CLEAR"
    AMBIGUOUS = "AMBIGUOUS"


class Triage(NamedTuple):
    """Whether the heuristics can decide, and why."""

    route: Route
    reason: str
    by_score: bool = False
    """The scorer's probability reached the policy's ``escalate_at`` (AMBIGUOUS) or
    ``block_at`` (CLEAR): the answer carries the scorer's label unless the model judged."""


class Escalation(NamedTuple):
    """What happened with the model for one item."""

    status: EscalationStatus
    reason: str = ""
    model: str = ""
    latency_s: float = 0.0
    truncated: bool = False
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    """What the model call cost (zero when cached or not made); logged, not on the wire."""


class ModerationResult(NamedTuple):
    """The answer for one item."""

    content_id: str
    decision: Decision
    labels: tuple[Label, ...]
    escalation: Escalation
    jurisdiction: str
    policy_version: str
    lexicon_version: str
    findings: tuple[Finding, ...] = ()
    """Every enabled finding behind the labels (for logs and the model's hints)."""
    risk: float | None = None
    """The learned scorer's probability that the content is harmful (None: no scorer)."""
    scorer_version: str = ""
    scorer_training: str = ""
    """The digest of the data the scorer was trained on."""


@dataclass(frozen=True, slots=True)
class Judgement:
    """The model's verdict on one item, as labels (empty when it found the content safe)."""

    verdict: str
    """``safe``, ``controversial`` or ``unsafe``."""
    labels: tuple[Label, ...]
    model: str
    cached: bool = False
    latency_s: float = 0.0
    truncated: bool = False
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
