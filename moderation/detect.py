"""Detectors: a normalized text -> findings with category, severity, confidence and evidence.

A detector is built once at start (its automata and patterns compiled); ``detect`` is cheap,
pure and never raises. ``DETECTORS`` is the registry the composition root reads.

Confidence says how sure a hit is; below the policy's ``min_confidence`` a hit escalates
instead of deciding. It depends on how the hit matched (``CONFIDENCE``): a term written as
itself, or behind folding that only a disguise explains (full-width, traditional, zero-width),
is sure; a two-syllable homophone is a guess, since everyday words share those sounds.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from moderation import _scan
from moderation.domain import Category, Evidence, Finding, Severity, Source, Variant
from moderation.lexicon import Hit, Lexicon
from moderation.normalize import Normalized

#: Confidence of a lexicon hit by how it matched: (short term, term of three or more).
CONFIDENCE: Mapping[Variant, tuple[float, float]] = {
    # A homophone is a guess: everyday words share toneless sounds. It escalates, never decides.
    Variant.HOMOPHONE: (0.6, 0.75),
    Variant.PINYIN: (0.85, 0.9),
    Variant.SPLIT_CHARACTER: (0.85, 0.9),
    Variant.DIGIT: (0.85, 0.9),
    Variant.LEETSPEAK: (0.9, 0.9),
}
CONFIDENCE_SURE = 0.95
CONFIDENCE_AMBIGUOUS = 0.5
CONFIDENCE_INSIDE_WORD = 0.6
CONFIDENCE_GROUP = 0.6
#: How far apart (normalized characters) a group word and a negative word may stand.
GROUP_WINDOW = 12


class Detector(Protocol):
    """Finds risks in a normalized text."""

    name: str

    def detect(self, text: Normalized, jurisdiction: str) -> list[Finding]:
        """Every finding in ``text`` under ``jurisdiction``; pure, never raises on any text."""
        ...


def _evidence(text: Normalized, start: int, end: int, term: str, variant: Variant) -> Evidence:
    o_start, o_end = text.span(start, end)
    return Evidence(o_start, o_end, text.original[o_start:o_end], term, variant)


class LexiconDetector:
    """Lexicon terms in every view: characters, split characters, homophones, pinyin."""

    name = "lexicon"

    def __init__(self, lexicon: Lexicon) -> None:
        self._lexicon = lexicon

    @staticmethod
    def _confidence(hit: Hit, variant: Variant) -> float:
        if hit.entry.ambiguous:
            return CONFIDENCE_AMBIGUOUS
        if hit.inside_word:
            return CONFIDENCE_INSIDE_WORD
        pair = CONFIDENCE.get(variant)
        if pair is None:
            return CONFIDENCE_SURE
        return pair[1] if len(hit.entry.term) >= 3 else pair[0]

    def detect(self, text: Normalized, jurisdiction: str) -> list[Finding]:
        """Findings for every hit active under ``jurisdiction``; group words need company."""
        hits = self._lexicon.scan(text)
        if not hits:
            return []
        findings: list[Finding] = []
        groups: list[Hit] = []
        negatives: list[Hit] = []
        original = text.original
        for hit in hits:
            entry = hit.entry
            if entry.jurisdictions is not None and jurisdiction not in entry.jurisdictions:
                continue
            if entry.group:
                groups.append(hit)
                continue
            if entry.negative:
                negatives.append(hit)
                continue
            start, end = hit.start, hit.end
            variant = text.variant(start, end)
            if hit.variant is not None and (
                hit.variant is not Variant.ABBREVIATION or variant is Variant.EXACT
            ):
                variant = hit.variant  # the view's kind, unless an abbreviation was also disguised
            o_start, o_end = text.span(start, end)
            findings.append(
                Finding(
                    entry.category,
                    entry.subcategory,
                    entry.severity,
                    self._confidence(hit, variant),
                    Source.LEXICON,
                    Evidence(o_start, o_end, original[o_start:o_end], entry.term, variant),
                    entry.rule,
                    entry.ambiguous,
                )
            )
        if groups:
            findings.extend(self._group_findings(text, groups, negatives, findings))
        return _without_subsumed(findings)

    @staticmethod
    def _group_findings(
        text: Normalized, groups: list[Hit], negatives: list[Hit], findings: list[Finding]
    ) -> list[Finding]:
        """A group word near a negative word or an insult: possible hate, for the model."""
        # Everything in original offsets: negatives are mapped back, findings already are.
        hostile: list[tuple[int, int, Hit | None]] = [
            (*text.span(h.start, h.end), h) for h in negatives
        ]
        hostile += [
            (f.evidence.start, f.evidence.end, None)
            for f in findings
            if f.category in (Category.ABUSE, Category.VIOLENCE, Category.HATE)
        ]

        def finding(hit: Hit, category_of: Hit) -> Finding:
            variant = hit.variant or text.variant(hit.start, hit.end)
            return Finding(  # by position: Finding's fields in order
                category_of.entry.category,
                category_of.entry.subcategory,
                hit.entry.severity,
                CONFIDENCE_GROUP,
                Source.LEXICON,
                _evidence(text, hit.start, hit.end, hit.entry.term, variant),
                hit.entry.rule,
                True,  # ambiguous: a group word is for the model
            )

        out: list[Finding] = []
        for group in groups:
            start, end = text.span(group.start, group.end)
            near = [
                hit
                for s, e, hit in hostile
                if max(s - end, start - e) <= GROUP_WINDOW  # the gap between the two spans
            ]
            if not near:
                continue
            out.append(finding(group, group))
            out.extend(finding(hit, group) for hit in near if hit is not None)
        return out


def _without_subsumed(findings: list[Finding]) -> list[Finding]:
    """Drop a hit that another hit of its category covers and outranks (草 inside 草泥马).

    Hits on one span for one category (煞笔 matching 傻逼, 沙比 and 煞笔) keep the surest.
    """
    if len(findings) < 2:
        return findings
    ranked = sorted(
        findings,
        key=lambda f: (
            f.evidence.start - f.evidence.end,
            -f.confidence,
            -f.severity,
            f.evidence.variant is not Variant.EXACT,
        ),
    )
    kept: list[Finding] = []
    for finding in ranked:
        e = finding.evidence
        for k in kept:
            if (
                k.category is finding.category
                and k.evidence.start <= e.start
                and e.end <= k.evidence.end
                and (
                    k.severity >= finding.severity
                    or (k.evidence.start == e.start and k.evidence.end == e.end)
                )
            ):
                break
        else:
            kept.append(finding)
    return kept


def _id_checksum(number: str) -> bool:
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    total = sum(int(d) * w for d, w in zip(number[:17], weights, strict=True))
    return "10x98765432"[total % 11] == number[17].lower()


def _luhn(number: str) -> bool:
    digits = [int(d) for d in number]
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _digits(text: str) -> str:
    return re.sub(r"[^0-9x]", "", text.lower())


@dataclass(frozen=True, slots=True)
class Pattern:
    """A named regular expression with an optional validator: mostly data."""

    name: str
    category: Category
    subcategory: str
    severity: Severity
    confidence: float
    regex: re.Pattern[str]
    validate: Callable[[str], bool] | None = None
    normalized: bool = False
    """Match the fully normalized text (separators dropped) instead of the folded text."""
    hint: re.Pattern[str] | None = None
    """A cheap test that must match before ``regex`` is tried."""


_SEP = r"[\s\-]?"
#: Seven digits, separators allowed between them: the least any number pattern needs.
_DIGITS_HINT = re.compile(r"[0-9](?:[\s\-]?[0-9]){6}")
#: Contact handles that divert traffic off the platform.
_HANDLES = (
    r"(?:v|vx|wx|vx号|wx号|微信|威信|薇信|维信|徽信|卫星|v信|微x|wei信|weixin|扣扣|qq|q群|qq群|"
    r"企鹅|企鹅号|tg|telegram|电报|飞机|whatsapp|line)"
)

PATTERNS: tuple[Pattern, ...] = (
    Pattern(
        "cn_id_number",
        Category.PII,
        "id_number",
        Severity.HIGH,
        0.95,
        re.compile(
            r"(?<![0-9])[1-9][0-9]{5}(?:18|19|20)[0-9]{2}(?:0[1-9]|1[0-2])"
            r"(?:0[1-9]|[12][0-9]|3[01])[0-9]{3}[0-9x](?![0-9a-z])"
        ),
        lambda s: _id_checksum(_digits(s)),
        hint=_DIGITS_HINT,
    ),
    Pattern(
        "cn_mobile",
        Category.PII,
        "phone",
        Severity.MEDIUM,
        0.9,
        re.compile(
            rf"(?<![0-9])(?:\+?86{_SEP})?1[3-9][0-9]{_SEP}[0-9]{{4}}{_SEP}[0-9]{{4}}(?![0-9])"
        ),
        hint=_DIGITS_HINT,
    ),
    Pattern(
        "bank_card",
        Category.PII,
        "bank_card",
        Severity.HIGH,
        0.9,
        re.compile(
            r"(?<![0-9])(?:62|4[0-9]|5[1-5])[0-9]{2}(?:[\s\-]?[0-9]{4}){3}(?:[\s\-]?[0-9]{1,3})?(?![0-9])"
        ),
        lambda s: _luhn(_digits(s)),
        hint=_DIGITS_HINT,
    ),
    Pattern(
        "email",
        Category.PII,
        "email",
        Severity.LOW,
        0.9,
        re.compile(r"(?<![a-z0-9._%+\-])[a-z0-9._%+\-]+@[a-z0-9.\-]+\.[a-z]{2,}(?![a-z0-9])"),
        hint=re.compile("@"),
    ),
    Pattern(
        "contact_handle",
        Category.SPAM,
        "diversion",
        Severity.HIGH,
        0.9,
        re.compile(
            rf"(?:(?<![a-z])|(?<=[0-9]))(?:加|➕|\+|add|联系|私|找|扫|搜)?[我下]?{_HANDLES}"
            r"(?:号|群|id)?[\s:=]*[a-z0-9][a-z0-9_\-]{4,19}(?![a-z0-9])"
        ),
        lambda s: bool(re.search(r"[0-9].*[0-9].*[0-9]", s) or re.search(r"[a-z]{2,}[0-9]", s)),
        normalized=True,
    ),
    Pattern(
        "url",
        Category.SPAM,
        "link",
        Severity.LOW,
        0.9,
        re.compile(
            r"(?:https?://|www\.)[^\s，。]+"
            r"|(?<![\w@.])[a-z0-9\-]{2,}\.(?:com|cn|net|org|xyz|top|cc|vip|me|io|app|site|shop|info)"
            r"(?:/[^\s，。]*)?(?![\w])"
        ),
        hint=re.compile(r"://|www\.|\.[a-z]{2}"),
    ),
)


_DOT_WORD = re.compile(r"\.[a-z]{2}")
_HANDLE_WORD = re.compile(_HANDLES)


def patterns_might_match(text: str) -> bool:
    """False only when no pattern can match ``text`` (errs towards True).

    Every pattern needs one of: ``@``, a URL's ``://``, ``www.`` or ``.tld``, or an ASCII
    digit (numbers, and the digits a contact handle's validator asks for).
    """
    classes = _scan.char_classes(text)
    if classes & _scan.AT:
        return True
    if classes & (_scan.DOT | _scan.COLON) and (
        "://" in text or "www." in text or _DOT_WORD.search(text)
    ):
        return True
    if not classes & _scan.DIGIT:
        return False
    return bool(_DIGITS_HINT.search(text) or _HANDLE_WORD.search(text))


class PatternDetector:
    """Personal data and contact handles, by pattern (checksums where the format has one)."""

    name = "patterns"

    def __init__(
        self, _lexicon: Lexicon | None = None, patterns: Sequence[Pattern] = PATTERNS
    ) -> None:
        self._patterns = tuple(patterns)

    def detect(self, text: Normalized, jurisdiction: str) -> list[Finding]:
        """A finding for every pattern match that passes its validator."""
        if not patterns_might_match(text.folded) and (
            text.text == text.folded or not patterns_might_match(text.text)
        ):
            return []
        findings = []
        taken: list[tuple[int, int]] = []
        for pattern in self._patterns:
            view = text.text if pattern.normalized else text.folded
            if pattern.hint is not None and not pattern.hint.search(view):
                continue
            for match in pattern.regex.finditer(view):
                if pattern.validate is not None and not pattern.validate(match.group()):
                    continue
                if pattern.normalized:
                    start, end = text.span(*match.span())
                    variant = text.variant(*match.span())
                else:
                    start, end = text.folded_span(*match.span())
                    variant = text.original_variant(start, end)
                if any(s <= start and end <= e for s, e in taken):
                    continue  # a phone number inside an ID number is the ID number
                taken.append((start, end))
                findings.append(
                    Finding(
                        category=pattern.category,
                        subcategory=pattern.subcategory,
                        severity=pattern.severity,
                        confidence=pattern.confidence,
                        source=Source.PATTERN,
                        evidence=Evidence(
                            start, end, text.original[start:end], pattern.name, variant
                        ),
                        rule=f"pattern.{pattern.name}",
                    )
                )
        return findings


#: Registry of detector factories by name; each takes the compiled lexicon.
DETECTORS: Mapping[str, Callable[[Lexicon], Detector]] = {
    "lexicon": LexiconDetector,
    "patterns": PatternDetector,
}
