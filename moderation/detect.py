"""Detectors: a normalized text -> findings with category, severity, confidence and evidence.

A detector is built once at start (its automata and patterns compiled); ``detect`` is cheap,
pure and never raises. ``detectors`` lists them for the composition root.

Confidence says how sure a hit is; below the policy's ``min_confidence`` a hit escalates
instead of deciding. It depends on how the hit matched (``CONFIDENCE``): a term written as
itself, or behind folding that only a disguise explains (full-width, traditional, zero-width),
is sure; a two-syllable homophone is a guess, since everyday words share those sounds.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from moderation import _scan
from moderation.domain import Category, Evidence, Finding, Severity, Source, Variant
from moderation.intents import IntentDetector, load_intents
from moderation.lexicon import Hit, Lexicon
from moderation.normalize import CHINESE_DIGITS, NUMERAL_RUN, Normalized

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
        """A group word near what its category needs (``GROUP_PARTNERS``): possible hate, or
        a minor next to sexual content, for the model."""

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

        partners: dict[tuple[bool, frozenset[Category]], _Spans] = {}
        out: list[Finding] = []
        for group in groups:
            kind = GROUP_PARTNERS.get(group.entry.category, _HOSTILE)
            spans = partners.get(kind)
            if spans is None:
                spans = partners[kind] = _Spans(
                    text, negatives if kind[0] else [], findings, kind[1]
                )
            near = spans.near(*text.span(group.start, group.end))
            if not near:
                continue
            out.append(finding(group, group))
            out.extend(finding(hit, group) for hit in near if hit is not None)
        return out


#: What a group word must stand near to count, by the group's category: whether negative words
#: count, and the categories of findings that do. A minor needs sexual content; any other group
#: (hate) needs a negative word or an insult, threat or slur (``_HOSTILE``).
GROUP_PARTNERS: Mapping[Category, tuple[bool, frozenset[Category]]] = {
    Category.MINOR_SAFETY: (False, frozenset({Category.SEXUAL})),
}
_HOSTILE = (True, frozenset({Category.ABUSE, Category.VIOLENCE, Category.HATE}))


class _Spans:
    """The spans a group word may stand near, in original offsets: negative words (with their
    hit, which becomes a finding too) and findings of some categories (no hit)."""

    __slots__ = ("_reach", "_spans", "_starts")

    def __init__(
        self,
        text: Normalized,
        negatives: list[Hit],
        findings: list[Finding],
        categories: frozenset[Category],
    ) -> None:
        spans: list[tuple[int, int, Hit | None]] = [
            (*text.span(h.start, h.end), h) for h in negatives
        ]
        spans += [
            (f.evidence.start, f.evidence.end, None) for f in findings if f.category in categories
        ]
        self._spans = spans
        # Past a few spans, only those starting within reach of a group word can be near it:
        # found by bisection over their starts.
        self._starts: list[int] | None = None
        self._reach = 0
        if len(spans) > 16:
            spans.sort(key=lambda h: h[0])
            self._starts = [s for s, _, _ in spans]
            self._reach = GROUP_WINDOW + max(e - s for s, e, _ in spans)

    def near(self, start: int, end: int) -> list[Hit | None]:
        """The spans within ``GROUP_WINDOW`` of ``[start, end)`` (their hits, or None)."""
        candidates = self._spans
        if self._starts is not None:
            lo = bisect.bisect_left(self._starts, start - self._reach)
            hi = bisect.bisect_right(self._starts, end + GROUP_WINDOW)
            candidates = candidates[lo:hi]
        return [
            hit
            for s, e, hit in candidates
            if max(s - end, start - e) <= GROUP_WINDOW  # the gap between the two spans
        ]


def _rank(f: Finding) -> tuple[int, float, int, bool]:
    """Longest first, then surest, then worst, then written as itself."""
    e = f.evidence
    return (e.start - e.end, -f.confidence, -f.severity, e.variant is not Variant.EXACT)


def _without_subsumed(findings: list[Finding]) -> list[Finding]:
    """Drop a hit that another hit of its category covers and outranks (草 inside 草泥马).

    Hits on one span for one category (煞笔 matching 傻逼, 沙比 and 煞笔) keep the surest.
    Findings are taken in rank order (``_rank``); one is kept unless a kept one of its category
    covers it and is at least as severe, or stands on the same span.
    """
    if len(findings) < 2:
        return findings
    ranked = sorted(findings, key=_rank)
    return kept_pairwise(ranked) if len(ranked) <= _FEW else kept_by_trees(ranked)


#: Up to this many findings the pairwise check is the faster (measured: 2 findings 1.5 µs
#: against 5.9, 24 findings 35 against 61, 40 findings 92 against 97).
_FEW = 40


def kept_pairwise(ranked: list[Finding]) -> list[Finding]:
    """``_without_subsumed`` of findings in rank order, each asked of every kept one."""
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


def kept_by_trees(ranked: list[Finding]) -> list[Finding]:
    """``kept_pairwise`` in n log n, for texts with thousands of hits: the covering kept
    finding is asked of a prefix-maximum tree per (category, severity) that holds, by start,
    the furthest end of the kept findings at least that severe."""
    starts = sorted({f.evidence.start for f in ranked})
    position = {start: i + 1 for i, start in enumerate(starts)}  # 1-based tree positions
    trees: dict[tuple[object, int], list[int]] = {}
    spans: set[tuple[object, int, int]] = set()
    kept: list[Finding] = []
    for finding in ranked:
        e, category = finding.evidence, finding.category
        if (category, e.start, e.end) in spans:
            continue
        tree = trees.get((category, finding.severity))
        if tree is not None and _prefix_max(tree, position[e.start]) >= e.end:
            continue
        kept.append(finding)
        spans.add((category, e.start, e.end))
        for severity in range(1, finding.severity + 1):  # it covers for these and milder
            tree = trees.get((category, severity))
            if tree is None:
                tree = trees[category, severity] = [-1] * (len(starts) + 1)
            _raise_to(tree, position[e.start], e.end)
    return kept


def _prefix_max(tree: list[int], i: int) -> int:
    """The greatest value stored at positions 1..i of a Fenwick tree of maxima."""
    best = -1
    while i > 0:
        if tree[i] > best:
            best = tree[i]
        i -= i & -i
    return best


def _raise_to(tree: list[int], i: int, value: int) -> None:
    """Store ``value`` at position ``i`` of a Fenwick tree of maxima."""
    while i < len(tree):
        if tree[i] < value:
            tree[i] = value
        i += i & -i


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
    """A named regular expression with an optional validator: mostly data.

    A pattern with a ``placeholder`` finds personal data: before content goes to a model,
    every match of its ``regex`` is replaced by the placeholder, whether or not ``validate``
    accepts it (a phone number with a typo, an ID number with a wrong check digit are still
    someone's). A pattern with ``report`` False only masks; it never makes a finding.
    """

    name: str
    category: Category
    subcategory: str
    severity: Severity
    confidence: float
    regex: re.Pattern[str]
    validate: Callable[[str], bool] | None = None
    normalized: bool = False
    """Match the fully normalized text (separators dropped) instead of the folded text."""
    needs: int = 0
    """The kinds of character (``_scan.char_classes`` bits) of which the text must hold at
    least one for ``regex`` to match; 0: no such kind (the pattern is tried on every text)."""
    hint: re.Pattern[str] | None = None
    """A cheap test that must match before ``regex`` is tried."""
    placeholder: str | None = None
    """What replaces a match in content sent to a model (None: the match is kept)."""
    report: bool = True
    """False for a pattern that only masks."""


#: One optional separator between two digits of a number.
_SEP = r"[\s\-.·/]?"
#: Seven digits, separators allowed between them: the least any number pattern needs.
_DIGITS_HINT = re.compile(r"[0-9](?:[\s\-.·/]?[0-9]){6}")
#: A digit written as itself or as a Chinese numeral.
_ANY_DIGIT = f"[0-9{CHINESE_DIGITS}]"
#: A mobile number's first two digits, the first a numeral, then five more: the least a phone
#: number spelled in Chinese numerals needs. One character class first, so the search skips
#: ahead fast.
_CN_PHONE_HINT = re.compile(
    rf"[一幺壹][0-9三四五六七八九叁肆伍陆柒捌玖](?:{_SEP}{_ANY_DIGIT}){{5}}"
)
#: Five Chinese numerals in a row: the least a handle's number spelled in numerals needs.
_NUMERALS_HINT = re.compile(f"[{CHINESE_DIGITS}]{{{NUMERAL_RUN}}}")
#: What counts things after a number (三次, 五个): a number so followed is not a handle.
_COUNTED = "个次年月日天块元位条只件岁号"
#: Contact handles that divert traffic off the platform.
_HANDLES = (
    r"(?:v|vx|wx|vx号|wx号|微信|威信|薇信|维信|徽信|卫星|v信|微x|wei信|weixin|扣扣|qq|q群|qq群|"
    r"企鹅|企鹅号|tg|telegram|电报|飞机|whatsapp|line)"
)
_HANDLE_WORD = re.compile(_HANDLES)
#: "at" and "dot" spelled out, as in name (at) example (dot) com.
_AT = r"(?:\s*(?:@|＠|\(at\)|\[at\]|\{at\}|<at>|艾特)\s*|\s+at\s+)"
_DOT = r"(?:\s*(?:\.|\(dot\)|\[dot\]|\{dot\}|<dot>|点)\s*|\s+dot\s+)"

PATTERNS: tuple[Pattern, ...] = (
    Pattern(
        "cn_id_number",
        Category.PII,
        "id_number",
        Severity.HIGH,
        0.95,
        re.compile(
            r"(?<![0-9])[1-9][0-9]{5}[\s\-]?(?:18|19|20)[0-9]{2}[\s\-]?(?:0[1-9]|1[0-2])[\s\-]?"
            r"(?:0[1-9]|[12][0-9]|3[01])[\s\-]?[0-9]{3}[\s\-]?[0-9x](?![0-9a-z])"
        ),
        lambda s: _id_checksum(_digits(s)),
        needs=_scan.DIGIT,
        hint=_DIGITS_HINT,
        placeholder="[ID_NUMBER]",
    ),
    Pattern(
        "cn_mobile",
        Category.PII,
        "phone",
        Severity.MEDIUM,
        0.9,
        re.compile(rf"(?<![0-9])(?:\+?86{_SEP})?1[3-9][0-9](?:{_SEP}[0-9]){{8}}(?![0-9])"),
        needs=_scan.DIGIT,
        hint=_DIGITS_HINT,
        placeholder="[PHONE]",
    ),
    Pattern(
        "cn_mobile_numerals",
        Category.PII,
        "phone",
        Severity.MEDIUM,
        0.85,
        re.compile(
            rf"(?<!{_ANY_DIGIT})[一幺壹][3-9三四五六七八九叁肆伍陆柒捌玖]"
            rf"(?:{_SEP}{_ANY_DIGIT}){{9}}(?!{_ANY_DIGIT})"
        ),
        needs=_scan.NUMERAL,
        hint=_CN_PHONE_HINT,
        placeholder="[PHONE]",
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
        needs=_scan.DIGIT,
        hint=_DIGITS_HINT,
        placeholder="[BANK_CARD]",
    ),
    Pattern(
        "email",
        Category.PII,
        "email",
        Severity.LOW,
        0.9,
        re.compile(r"(?<![a-z0-9._%+\-])[a-z0-9._%+\-]+@[a-z0-9.\-]+\.[a-z]{2,}(?![a-z0-9])"),
        needs=_scan.AT,
        hint=re.compile("@"),
        placeholder="[EMAIL]",
    ),
    Pattern(
        "email_spelled",
        Category.PII,
        "email",
        Severity.LOW,
        0.6,
        re.compile(
            rf"(?<![a-z0-9._%+\-])[a-z0-9._%+\-]+{_AT}[a-z0-9\-]+(?:{_DOT}[a-z0-9\-]+)*"
            rf"{_DOT}[a-z]{{2,}}(?![a-z0-9])"
        ),
        placeholder="[EMAIL]",
        report=False,
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
        needs=_scan.DIGIT,  # the validator asks for one
        hint=_HANDLE_WORD,
        placeholder="[CONTACT]",
    ),
    Pattern(
        "contact_handle_numerals",
        Category.SPAM,
        "diversion",
        Severity.HIGH,
        0.85,
        re.compile(
            rf"(?:(?<![a-z])|(?<=[0-9]))(?:加|➕|\+|add|联系|私|找|扫|搜)?[我下]?{_HANDLES}"
            rf"(?:号|群|id)?[\s:=是]*[{CHINESE_DIGITS}]{{{NUMERAL_RUN},11}}"
            rf"(?![{CHINESE_DIGITS}]|[{_COUNTED}])"
        ),
        normalized=True,
        needs=_scan.NUMERALS,
        hint=_NUMERALS_HINT,
        placeholder="[CONTACT]",
    ),
    Pattern(
        "telegram_link",
        Category.SPAM,
        "diversion",
        Severity.HIGH,
        0.9,
        re.compile(r"(?<![a-z0-9.])(?:https?://)?t\.me/[a-z0-9_+\-]{3,}"),
        needs=_scan.DOT,
        hint=re.compile(r"t\.me/"),
        placeholder="[CONTACT]",
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
        needs=_scan.DOT | _scan.COLON,
        hint=re.compile(r"://|www\.|\.[a-z]{2}"),
    ),
)

#: The placeholder of each personal-data pattern, by name (the evidence's ``term``).
PLACEHOLDERS: Mapping[str, str] = {p.name: p.placeholder for p in PATTERNS if p.placeholder}
#: Findings of one pattern kept per text, as for a lexicon entry.
MAX_HITS_PER_PATTERN = 8


class _Taken:
    """Spans already claimed by earlier patterns; asks whether one of them holds a span.

    Spans are added a pattern at a time (``settle``), then held sorted by start with the
    running maximum of their ends, so each question is one bisection.
    """

    def __init__(self) -> None:
        self._spans: list[tuple[int, int]] = []
        self._starts: list[int] = []
        self._reach: list[int] = []
        self._pending: list[tuple[int, int]] = []

    def holds(self, start: int, end: int) -> bool:
        """True when a settled span holds ``[start, end)``."""
        i = bisect.bisect_right(self._starts, start)
        return i > 0 and self._reach[i - 1] >= end

    def add(self, start: int, end: int) -> None:
        """Claim a span (counts once ``settle`` is called)."""
        self._pending.append((start, end))

    def settle(self) -> None:
        """Make the spans added since the last call count."""
        if not self._pending:
            return
        self._spans = sorted(self._spans + self._pending)
        self._pending = []
        self._starts = [s for s, _ in self._spans]
        reach, self._reach = -1, []
        for _, e in self._spans:
            reach = max(reach, e)
            self._reach.append(reach)


class PatternDetector:
    """Personal data and contact handles, by pattern (checksums where the format has one)."""

    name = "patterns"

    def __init__(self, patterns: Sequence[Pattern] = PATTERNS) -> None:
        self._patterns = tuple(patterns)
        self._reported = tuple(p for p in self._patterns if p.report)
        self._masking = tuple(p for p in self._patterns if p.placeholder)
        #: Every kind of character some reported pattern needs (all: one needs none).
        self._any_needs = -1 if any(p.needs == 0 for p in self._reported) else 0
        for pattern in self._reported:
            self._any_needs |= pattern.needs
        #: Each distinct (needs, hint) of the reported patterns, asked once (three patterns
        #: share the seven-digit hint).
        self._gates = tuple(dict.fromkeys((p.needs or -1, p.hint) for p in self._reported))

    def might_match(self, text: str) -> bool:
        """False only when no reported pattern can match ``text``: each pattern's own ``needs``
        and ``hint`` asked, after one pass in C over the text's kinds of character."""
        classes = _scan.char_classes(text)
        if not classes & self._any_needs:
            return False
        for needs, hint in self._gates:
            if classes & needs and (hint is None or hint.search(text)):
                return True
        return False

    def detect(self, text: Normalized, jurisdiction: str) -> list[Finding]:
        """A finding for every pattern match that passes its validator (at most
        ``MAX_HITS_PER_PATTERN`` a pattern); a match inside an earlier pattern's is dropped."""
        if not self.might_match(text.folded) and (
            text.text == text.folded or not self.might_match(text.text)
        ):
            return []
        findings = []
        for pattern, start, end, variant in self._matches(
            text, self._reported, validate=True, limit=MAX_HITS_PER_PATTERN
        ):
            findings.append(
                Finding(
                    category=pattern.category,
                    subcategory=pattern.subcategory,
                    severity=pattern.severity,
                    confidence=pattern.confidence,
                    source=Source.PATTERN,
                    evidence=Evidence(start, end, text.original[start:end], pattern.name, variant),
                    rule=f"pattern.{pattern.name}",
                )
            )
        return findings

    def personal_data(self, text: Normalized) -> list[tuple[int, int, str]]:
        """Every span of personal data in the original text, with its placeholder: sorted,
        not overlapping, validators not asked (see ``Pattern``). For masking, not for labels."""
        spans = sorted(
            (start, -end, pattern.placeholder or "")
            for pattern, start, end, _ in self._matches(
                text, self._masking, validate=False, limit=None
            )
        )
        out: list[tuple[int, int, str]] = []
        for start, negative_end, placeholder in spans:
            if out and start < out[-1][1]:
                continue  # overlaps a longer or earlier span, which is masked already
            out.append((start, -negative_end, placeholder))
        return out

    @staticmethod
    def _matches(
        text: Normalized, patterns: Sequence[Pattern], *, validate: bool, limit: int | None
    ) -> list[tuple[Pattern, int, int, Variant]]:
        """(pattern, original start, original end, variant) for each match, in pattern order."""
        found: list[tuple[Pattern, int, int, Variant]] = []
        taken = _Taken()
        for pattern in patterns:
            view = text.text if pattern.normalized else text.folded
            if pattern.hint is not None and not pattern.hint.search(view):
                continue
            count = 0
            for match in pattern.regex.finditer(view):
                if validate and pattern.validate is not None and not pattern.validate(match[0]):
                    continue
                if pattern.normalized:
                    start, end = text.span(*match.span())
                    variant = text.variant(*match.span())
                else:
                    start, end = text.folded_span(*match.span())
                    variant = text.original_variant(start, end)
                if taken.holds(start, end):
                    continue  # a phone number inside an ID number is the ID number
                taken.add(start, end)
                found.append((pattern, start, end, variant))
                count += 1
                if limit is not None and count >= limit:
                    break
            taken.settle()
        return found


def detectors(lexicon: Lexicon) -> list[Detector]:
    """Every shipped detector, in the order their findings are listed: the lexicon's, the
    patterns, and the intents (which read by sound with the lexicon's syllable tables). A new
    detector is one line here."""
    return [
        LexiconDetector(lexicon),
        PatternDetector(),
        IntentDetector(load_intents(), lexicon.phonetics),
    ]
