"""The lexicon: reviewed data files -> automata over the normalized and phonetic views.

Files are tab-separated, one entry a line, shipped in ``moderation/data/lexicon``::

    # term  category  subcategory  severity  flags      jurisdictions  allow
    傻逼    ABUSE     insult       HIGH      -          *              -
    草      ABUSE     profanity    LOW       ambiguous  *              草地|草莓|草原

``flags`` is ``-`` or a comma list of:

- ``ambiguous``: harmless in most uses (草, 溜冰, sb): never decides alone, it escalates;
- ``group``: a group of people (河南人, 黑人, 女权), neutral alone: only next to a
  ``negative`` word or an insult does it count, as possible hate, and then it escalates;
- ``negative``: a disparaging word (骗子, 垃圾) that counts only next to a group word;
- ``literal``: match the characters only, no homophones or split characters (for terms whose
  homophones are everyday words);
- ``abbr``: a Latin abbreviation of pinyin initials (nmsl, cnm); evidence says ABBREVIATION.

``jurisdictions`` is ``*`` or a comma list. ``allow`` lists contexts, each containing the
term, in which a hit is ignored (草地, 菠菜汤, 六四分成).

Terms are written in normalized form; an entry its own normalizer would change can never
match as written and is refused at load, as are duplicates and unknown names. Each Han term
of two or more characters is also compiled as its pinyin keys (homophones, Latin pinyin) and
its split-character forms (女表子 for 婊子, from the chaizi table); a term that mixes
characters with letters or digits (k粉, 傻13) by the sound of its characters (k份); each Latin
term of four or more letters also as its forms with one vowel masked (f*ck). Group words are
keyed by sound too (彤性恋); negative words only as written. Everything is compiled once;
nothing is read from disk per request. Imports ``domain``, ``errors``, ``normalize`` and
``phonetic``.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import zlib
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import NamedTuple

import daachorse
import rjieba

from moderation.domain import JURISDICTION_CODE, Category, Severity, Variant
from moderation.errors import LexiconError
from moderation.normalize import HAN, Normalized, Normalizer
from moderation.phonetic import Phonetics, PhoneticView

FLAGS = frozenset({"ambiguous", "group", "negative", "literal", "abbr"})
COLUMNS = ("term", "category", "subcategory", "severity", "flags", "jurisdictions", "allow")
_ALL_HAN = re.compile(f"[{HAN}]+")
#: A term that mixes Chinese characters with Latin letters or digits (k粉, cp资源, 傻13).
_MIXED = re.compile(f"(?=.*[{HAN}])(?=.*[a-z0-9])[{HAN}a-z0-9]+")
_LETTER_OR_DIGIT = re.compile("[a-z0-9]")
_JURISDICTION = re.compile(JURISDICTION_CODE)
#: Bopomofo (and its extension block): a text holding any is read with bopomofo's spellings.
_BOPOMOFO = re.compile("[\u3105-\u312f\u31a0-\u31bf]")
_VOWELS = "aeiou"
#: Most split-character forms compiled per term.
MAX_SPLITS = 16
#: Characters of context on each side when checking word boundaries.
WORD_WINDOW = 6
#: Hits of one entry kept per text: more would repeat the evidence, not add signal.
MAX_HITS_PER_ENTRY = 8
#: Dictionary-word checks per text (word boundaries of ambiguous and homophone hits).
MAX_WORD_CHECKS = 512


def _words(text: str, start: int, end: int) -> list[tuple[int, str]]:
    """Dictionary words (jieba, no guessing of unknown words) around ``[start, end)``."""
    lo = max(0, start - WORD_WINDOW)
    position, words = lo, []
    for word in rjieba.cut(text[lo : min(len(text), end + WORD_WINDOW)], False):
        words.append((position, word))
        position += len(word)
    return words


#: Words that open a phrase (personal pronouns) or close one (modal and structural
#: particles): a homophone that starts or ends with one as a word of its own reads across a
#: word boundary of ordinary speech (你个 for 尼哥).
OPENING_WORDS = frozenset("你我他她它您咱俺")
CLOSING_WORDS = frozenset("的了吗呢吧啊呀嘛")


def cuts_through_word(text: str, start: int, end: int) -> bool:
    """True when a dictionary word straddles an edge of ``[start, end)`` without holding it.

    大麻 in 大麻烦 is cut through by 麻烦: it is that other word. 台独 in 台独分子 is held by
    the longer word: it is still the term (compounds that are harmless go in allow contexts).
    """
    term = text[start:end]
    return any(
        (p < start < p + len(w) or p < end < p + len(w)) and term not in w
        for p, w in _words(text, start, end)
    )


def is_ordinary(text: str, start: int, end: int, term: str, terms: frozenset[str]) -> bool:
    """True when ``text[start:end]`` is, holds, or cuts through an ordinary word.

    A homophone of a bad word that is really an ordinary word (学习 sounds like 血洗), holds
    one (女权是 sounds like 女拳师) or is part of one (有女朋友 holds the sounds of 幼女) is no
    disguise. Ordinary means in jieba's dictionary and not itself a lexicon term (尼玛 is both
    a name and a disguise, so 曹尼玛 still counts); a word the term itself holds at the same
    place (资源 in 萝力资源 for 萝莉资源) is not evidence either. A span that opens with a pronoun
    or closes with a particle (你个 for 尼哥, 你哥 too) reads across a word boundary of ordinary
    speech, so its sound alone is no evidence.
    """
    span = text[start:end]
    if len(span) > 1 and span not in terms and rjieba.has_word(span):
        return True
    for position, word in _words(text, start, end):
        inside = start <= position and position + len(word) <= end
        offset = position - start
        same_as_term = term[offset : offset + len(word)] == word
        if inside and len(word) > 1 and word not in terms and not same_as_term:
            return True
        if position < start < position + len(word) or position < end < position + len(word):
            return True
        if (
            inside
            and not same_as_term
            and (
                (position == start and word in OPENING_WORDS)
                or (position + len(word) == end and word in CLOSING_WORDS)
            )
        ):
            return True  # 你个 (you + a measure word) sounds like 尼哥: a sentence, not a word
    return False


@dataclass(frozen=True, slots=True)
class Entry:
    """One lexicon entry."""

    term: str
    category: Category
    subcategory: str
    severity: Severity
    flags: frozenset[str]
    jurisdictions: frozenset[str] | None
    """None means every jurisdiction."""
    allow: tuple[str, ...]
    rule: str
    """Stable id for logs: category, subcategory and a checksum of the term (never the term)."""
    source: str = ""
    """``file:line`` where the entry is written, for error messages."""
    ambiguous: bool = field(init=False)
    """Harmless in most uses: escalates, never decides alone."""
    group: bool = field(init=False)
    """A group of people, neutral alone."""
    negative: bool = field(init=False)
    """A disparaging word that counts only next to a group word."""

    def __post_init__(self) -> None:
        # Read for every hit: worked out once from the flags.
        object.__setattr__(self, "ambiguous", "ambiguous" in self.flags)
        object.__setattr__(self, "group", "group" in self.flags)
        object.__setattr__(self, "negative", "negative" in self.flags)


def _parse_line(source: str, number: int, line: str) -> Entry:
    where = f"{source}:{number}"
    cells = line.split("\t")
    if len(cells) != len(COLUMNS):
        raise LexiconError(
            f"{where}: expected {len(COLUMNS)} tab-separated columns "
            f"({', '.join(COLUMNS)}), got {len(cells)}"
        )
    term, category, subcategory, severity, flags, jurisdictions, allow = (c.strip() for c in cells)
    if not term:
        raise LexiconError(f"{where}: empty term")
    try:
        cat = Category[category]
    except KeyError:
        raise LexiconError(
            f"{where}: unknown category {category!r}; use one of {[c.name for c in Category]}"
        ) from None
    try:
        sev = Severity[severity]
    except KeyError:
        raise LexiconError(
            f"{where}: unknown severity {severity!r}; use one of {[s.name for s in Severity]}"
        ) from None
    flag_set = frozenset() if flags == "-" else frozenset(f.strip() for f in flags.split(","))
    if unknown := flag_set - FLAGS:
        raise LexiconError(f"{where}: unknown flags {sorted(unknown)}; use {sorted(FLAGS)} or -")
    scope = None if jurisdictions == "*" else frozenset(j.strip() for j in jurisdictions.split(","))
    for code in scope or ():
        if not _JURISDICTION.fullmatch(code):
            raise LexiconError(
                f"{where}: jurisdiction {code!r} is not a code (two to eight capital letters, "
                "such as CN); write * for every jurisdiction or a comma list of codes"
            )
    contexts = () if allow == "-" else tuple(a.strip() for a in allow.split("|") if a.strip())
    for context in contexts:
        if term not in context:
            raise LexiconError(f"{where}: allow context {context!r} does not contain the term")
    checksum = zlib.crc32(term.encode("utf-8"))
    return Entry(
        term=term,
        category=cat,
        subcategory=subcategory or "general",
        severity=sev,
        flags=flag_set,
        jurisdictions=scope,
        allow=contexts,
        rule=f"{cat.name.lower()}.{subcategory or 'general'}.{checksum:08x}",
        source=where,
    )


def parse(source: str, text: str) -> list[Entry]:
    """Parse one lexicon file's text; ``source`` names it in errors."""
    entries = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip("\r\n")
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        entries.append(_parse_line(source, number, line))
    return entries


class Hit(NamedTuple):
    """One occurrence of an entry: ``[start, end)`` in the normalized text, and how it matched.

    ``variant`` is set by the view (split characters, homophones, pinyin, masked letters) or
    None when the characters matched and the normalized text's own variant applies.
    """

    start: int
    end: int
    entry: Entry
    variant: Variant | None
    inside_word: bool = False
    """A Latin pinyin hit that starts or ends inside a word (weaker evidence)."""


def load_decompositions() -> Mapping[str, list[tuple[str, ...]]]:
    """Two-part decompositions of characters from the shipped chaizi table (CC BY 3.0)."""
    text = (resources.files("moderation") / "data" / "chaizi" / "chaizi-jt.txt").read_text("utf-8")
    table: dict[str, list[tuple[str, ...]]] = {}
    for line in text.splitlines():
        head, *forms = line.split("\t")
        for form in forms:
            parts = tuple(form.split())
            if len(parts) == 2 and all(len(p) == 1 and _ALL_HAN.fullmatch(p) for p in parts):
                table.setdefault(head, [])
                if parts not in table[head]:
                    table[head].append(parts)
    return table


def _distinct(
    payload: list[tuple[Entry, Variant | None]],
) -> list[tuple[Entry, Variant | None]]:
    """One entry per kind of finding: entries that sound alike (傻逼, 煞笔, 沙比) and differ only
    in the term would each give the same finding on the same span, and the first is kept."""
    kept: dict[tuple[object, ...], tuple[Entry, Variant | None]] = {}
    for entry, variant in payload:
        kind = (
            entry.category,
            entry.subcategory,
            entry.severity,
            entry.flags,
            entry.jurisdictions,
            len(entry.term),
            variant,
        )
        kept.setdefault(kind, (entry, variant))
    return list(kept.values())


class _Automaton:
    """Patterns -> payloads, over one string; daachorse wants unique patterns."""

    def __init__(self, patterns: Mapping[str, list[tuple[Entry, Variant | None]]]) -> None:
        self._patterns = list(patterns)
        self._payloads = [patterns[p] for p in self._patterns]
        self._automaton = (
            daachorse.CharwiseDoubleArrayAhoCorasick(self._patterns) if self._patterns else None
        )

    def __len__(self) -> int:
        return len(self._patterns)

    def find(self, text: str) -> list[tuple[int, int, int]]:
        """Matches as (start, end, pattern index); ``payloads[index]`` is what it carries."""
        if self._automaton is None:
            return []
        return self._automaton.find_overlapping(text)

    @property
    def patterns(self) -> list[str]:
        """The patterns, by index."""
        return self._patterns

    @property
    def payloads(self) -> list[list[tuple[Entry, Variant | None]]]:
        """What each pattern carries, by index."""
        return self._payloads


#: English single-word terms whose plural counts too.
_ENGLISH_WORD = re.compile(r"[a-z]{3,}")


def _plural(word: str) -> str:
    """The English plural of ``word`` (niggers, bitches, trannies): a slur is no less one in
    the plural."""
    if word.endswith(("s", "x", "z", "ch", "sh")):
        return word + "es"
    if word.endswith("y") and word[-2] not in _VOWELS:
        return word[:-1] + "ies"
    return word + "s"


def _latin_word(text: str, index: int) -> bool:
    if index < 0 or index >= len(text):
        return False
    ch = text[index]
    return ch.isascii() and (ch.isalnum() or ch in "_/.-")


class Lexicon:
    """Entries compiled into automata over the normalized text and its phonetic view."""

    def __init__(
        self,
        entries: Sequence[Entry],
        version: str,
        normalizer: Normalizer,
        phonetics: Phonetics,
        decompositions: Mapping[str, list[tuple[str, ...]]] | None = None,
    ) -> None:
        self.version = version
        self.entries = tuple(entries)
        self._phonetics = phonetics
        #: The syllable tables the lexicon's sound keys use (shared with the scorer).
        self.phonetics = phonetics
        self._check(normalizer)
        characters: dict[str, list[tuple[Entry, Variant | None]]] = {}
        sounds: dict[str, list[tuple[Entry, Variant | None]]] = {}
        for entry in self.entries:
            variant = Variant.ABBREVIATION if "abbr" in entry.flags else None
            characters.setdefault(entry.term, []).append((entry, variant))
        for entry in self.entries:
            if "literal" in entry.flags or entry.negative:
                continue
            if _ALL_HAN.fullmatch(entry.term) and len(entry.term) >= 2:
                for key in phonetics.term_keys(entry.term):
                    sounds.setdefault(key, []).append((entry, Variant.HOMOPHONE))
                for form in self._splits(entry.term, decompositions or {}, normalizer):
                    if form not in characters:
                        characters.setdefault(form, []).append((entry, Variant.SPLIT_CHARACTER))
            elif _MIXED.fullmatch(entry.term):
                # Its characters by sound, its letters and digits as written (k份 for k粉).
                # (biao子 reads as 婊子 throughout, so it needs no key of its own.)
                key = phonetics.view(entry.term).codes
                if _LETTER_OR_DIGIT.search(key):
                    sounds.setdefault(key, []).append((entry, Variant.HOMOPHONE))
            elif entry.term.isascii() and entry.term.isalpha() and len(entry.term) >= 4:
                for masked in self._masks(entry.term):
                    if masked not in characters:
                        characters.setdefault(masked, []).append((entry, Variant.LEETSPEAK))
        for entry in self.entries:
            if "literal" in entry.flags or not _ENGLISH_WORD.fullmatch(entry.term):
                continue
            plural = _plural(entry.term)
            if plural not in characters:
                characters.setdefault(plural, []).append((entry, None))
        # Terms that are signals of their own (not group or negative words, which are ordinary).
        self._terms = frozenset(e.term for e in self.entries if not (e.group or e.negative))
        self._characters = _Automaton(characters)
        self._sounds = _Automaton({key: _distinct(payload) for key, payload in sounds.items()})
        self._latin_pattern = [
            p.isascii() and p.replace("*", "").isalnum() for p in self._characters.patterns
        ]
        contexts = sorted({c for e in self.entries for c in e.allow})
        self._contexts = _Automaton({c: [] for c in contexts})
        # For each context (by automaton index): where each entry it allows stands inside it.
        self._allows: list[tuple[tuple[int, int, int], ...]] = [
            tuple(
                (offset, offset + len(entry.term), id(entry))
                for entry in self.entries
                if context in entry.allow
                for offset in _offsets(context, entry.term)
            )
            for context in self._contexts.patterns
        ]

    @staticmethod
    def _masks(term: str) -> Iterable[str]:
        for i, ch in enumerate(term):
            if ch in _VOWELS and 0 < i < len(term) - 1:
                yield term[:i] + "*" + term[i + 1 :]

    @staticmethod
    def _splits(
        term: str, decompositions: Mapping[str, list[tuple[str, ...]]], normalizer: Normalizer
    ) -> Iterable[str]:
        options = [
            [ch, *("".join(parts) for parts in decompositions.get(ch, [])[:2])] for ch in term
        ]
        forms = itertools.islice(
            ("".join(choice) for choice in itertools.product(*options)), 1, MAX_SPLITS + 1
        )
        for form in forms:
            folded = normalizer(form).text
            if folded != term and len(folded) > len(term):
                yield folded

    def _check(self, normalizer: Normalizer) -> None:
        seen: set[tuple[str, Category]] = set()
        for entry in self.entries:
            key = (entry.term, entry.category)
            if key in seen:
                raise LexiconError(
                    f"{entry.source}: duplicate entry {entry.term!r} ({entry.category.name}); "
                    "remove one"
                )
            seen.add(key)
            folded = normalizer(entry.term).text
            if folded != entry.term:
                raise LexiconError(
                    f"{entry.source}: {entry.term!r} is not in normalized form and would never "
                    f"match as written; write it as {folded!r}"
                )

    def __len__(self) -> int:
        return len(self.entries)

    def scan(self, text: Normalized) -> list[Hit]:
        """Every hit in a normalized text, minus those inside one of their allow contexts.

        The work is bounded for any text: at most ``MAX_HITS_PER_ENTRY`` hits of one entry are
        kept (more would add evidence, not signal), and at most ``MAX_WORD_CHECKS`` dictionary
        look-ups are made (see ``_TextChecks``). Allow contexts are looked up by position.
        """
        norm = text.text
        found = self._characters.find(norm)
        view = self._phonetics.view(norm, bopomofo=_BOPOMOFO.search(text.original) is not None)
        matches = self._sounds.find(view.codes)
        if not found and not matches:
            return []
        kept: dict[int, int] = {}  # id(entry) -> hits kept
        checks = _TextChecks(norm, self._allowed_in)
        hits = self._character_hits(norm, found, kept, checks) if found else []
        if matches:
            hits.extend(self._sound_hits(norm, view, matches, hits, kept, checks))
        return hits

    def _character_hits(
        self,
        norm: str,
        found: list[tuple[int, int, int]],
        kept: dict[int, int],
        checks: _TextChecks,
    ) -> list[Hit]:
        hits: list[Hit] = []
        payloads, latin = self._characters.payloads, self._latin_pattern
        full: set[int] = set()  # patterns whose every entry has its hits
        for start, end, index in found:
            if index in full:
                continue
            if latin[index] and (_latin_word(norm, start - 1) or _latin_word(norm, end)):
                continue
            cut: bool | None = None
            live = False
            for entry, variant in payloads[index]:
                key = id(entry)
                if kept.get(key, 0) >= MAX_HITS_PER_ENTRY:
                    continue
                live = True
                if entry.allow and checks.allowed(start, end, key):
                    continue
                # An ambiguous term inside a longer ordinary word (大麻 in 大麻烦) is that word.
                if entry.ambiguous and variant is None:
                    if cut is None:
                        cut = checks.cuts_through(start, end)
                    if cut:
                        continue
                kept[key] = kept.get(key, 0) + 1
                hits.append(Hit(start, end, entry, variant))
            if not live:
                full.add(index)
        return hits

    def _allowed_in(self, norm: str) -> set[tuple[int, int, int]]:
        """Where entries stand inside their allow contexts in ``norm``: (start, end, id)."""
        found = self._contexts.find(norm)
        if not found:
            return set()
        allows = self._allows
        return {(s + offset, s + stop, key) for s, _, i in found for offset, stop, key in allows[i]}

    def _sound_hits(
        self,
        norm: str,
        view: PhoneticView,
        matches: list[tuple[int, int, int]],
        found: list[Hit],
        kept: dict[int, int],
        checks: _TextChecks,
    ) -> list[Hit]:
        seen: set[tuple[int, int, str]] | None = None  # built when first needed
        out = []
        payloads = self._sounds.payloads
        full: set[int] = set()  # keys whose every entry has its hits
        for start, end, index in matches:
            if index in full:
                continue
            n_start, n_end = view.span(start, end)
            span = norm[n_start:n_end]
            if span in self._terms:
                continue  # 菠菜 sounds like 博彩 but is an entry of its own, with its contexts
            if seen is None:
                seen = {(h.start, h.end, h.entry.rule) for h in found}
            latin = bool(view.latin) and any(k in view.latin for k in range(start, end))
            if not latin and (
                (_latin_word(norm, n_start) and _latin_word(norm, n_start - 1))
                or (_latin_word(norm, n_end - 1) and _latin_word(norm, n_end))
            ):
                continue  # the letters of a mixed term inside a longer word (ok份 is not k粉)
            inside = False
            if latin:
                variant = Variant.PINYIN
                inside = (start in view.latin and _latin_word(norm, n_start - 1)) or (
                    end - 1 in view.latin and _latin_word(norm, n_end)
                )
            else:
                variant = Variant.HOMOPHONE
            live = False
            for entry, _ in payloads[index]:
                if kept.get(id(entry), 0) >= MAX_HITS_PER_ENTRY:
                    continue
                live = True
                if (n_start, n_end, entry.rule) in seen:
                    continue
                if entry.allow and checks.allowed(n_start, n_end, id(entry)):
                    continue
                if variant is Variant.HOMOPHONE and checks.is_ordinary(
                    n_start, n_end, entry.term, self._terms
                ):
                    continue
                kept[id(entry)] = kept.get(id(entry), 0) + 1
                out.append(Hit(n_start, n_end, entry, variant, inside))
            if not live:
                full.add(index)
        return out


def _offsets(text: str, term: str) -> list[int]:
    """Every offset of ``term`` in ``text``, overlapping ones included."""
    found, at = [], text.find(term)
    while at >= 0:
        found.append(at)
        at = text.find(term, at + 1)
    return found


class _TextChecks:
    """The checks of one text's hits: allow contexts, found once the first hit asks, and
    dictionary words, remembered by their window and bounded in number.

    A text that repeats a candidate (草稿 ten thousand times) asks the dictionary once per
    distinct window, and past ``MAX_WORD_CHECKS`` checks every further candidate is taken as
    no ordinary word: the work stays bounded for any text, and the error goes towards
    escalation, never towards letting a disguise through unseen. (Such a candidate becomes a
    hit, its entry soon has its ``MAX_HITS_PER_ENTRY``, and later matches cost a set look-up.)
    """

    __slots__ = ("_allowed", "_find_allowed", "_left", "_memo", "_text")

    def __init__(self, text: str, find_allowed: Callable[[str], set[tuple[int, int, int]]]) -> None:
        self._text = text
        self._find_allowed = find_allowed
        self._allowed: set[tuple[int, int, int]] | None = None
        self._memo: dict[object, bool] = {}
        self._left = MAX_WORD_CHECKS

    def allowed(self, start: int, end: int, entry_id: int) -> bool:
        """True when an allow context of the entry holds ``[start, end)``."""
        if self._allowed is None:
            self._allowed = self._find_allowed(self._text)
        return (start, end, entry_id) in self._allowed

    def _window(self, start: int, end: int) -> tuple[str, int]:
        lo = max(0, start - WORD_WINDOW)
        return self._text[lo : end + WORD_WINDOW], lo

    def cuts_through(self, start: int, end: int) -> bool:
        """``cuts_through_word`` over this text; False once the budget is spent."""
        if self._left <= 0:
            return False
        self._left -= 1
        window, lo = self._window(start, end)
        key = (window, start - lo, end - lo)
        known = self._memo.get(key)
        if known is None:
            known = self._memo[key] = cuts_through_word(self._text, start, end)
        return known

    def is_ordinary(self, start: int, end: int, term: str, terms: frozenset[str]) -> bool:
        """``is_ordinary`` over this text; False once the budget is spent."""
        if self._left <= 0:
            return False
        self._left -= 1
        window, lo = self._window(start, end)
        key = (window, start - lo, end - lo, term)
        known = self._memo.get(key)
        if known is None:
            known = self._memo[key] = is_ordinary(self._text, start, end, term, terms)
        return known


def embedded_lexicon_dir() -> Traversable:
    """The lexicon files shipped in the package."""
    return resources.files("moderation") / "data" / "lexicon"


def _files(folder: Traversable | Path) -> list[Traversable | Path]:
    return sorted((f for f in folder.iterdir() if f.name.endswith(".tsv")), key=lambda f: f.name)


def check_jurisdictions(lexicon: Lexicon, known: Collection[str]) -> None:
    """``LexiconError`` for an entry scoped to a jurisdiction no policy is loaded for (a typo
    there would otherwise keep the entry silent everywhere)."""
    for entry in lexicon.entries:
        if unknown := sorted((entry.jurisdictions or frozenset()) - set(known)):
            raise LexiconError(
                f"{entry.source}: no policy for jurisdiction {', '.join(unknown)} "
                f"(policies: {', '.join(sorted(known))}); fix the code or add the policy"
            )


def load_lexicon(
    normalizer: Normalizer, phonetics: Phonetics, folder: Traversable | Path | None = None
) -> Lexicon:
    """Load every ``*.tsv`` in ``folder`` (default: the embedded lexicon) and compile it.

    The version is the declared one in ``VERSION`` plus a digest of the files, so any edit
    shows in every answer even when the declared version was not bumped.
    """
    folder = folder or embedded_lexicon_dir()
    digest = hashlib.sha256()
    entries: list[Entry] = []
    for file in _files(folder):
        raw = file.read_bytes()
        digest.update(file.name.encode() + b"\0" + raw)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise LexiconError(f"{file.name}: not UTF-8: {exc}") from exc
        entries.extend(parse(file.name, text))
    if not entries:
        raise LexiconError(f"{folder}: no lexicon entries (*.tsv)")
    version_file = folder / "VERSION"
    declared = version_file.read_text(encoding="utf-8").strip() if version_file.is_file() else "0"
    return Lexicon(
        entries,
        f"{declared}+{digest.hexdigest()[:10]}",
        normalizer,
        phonetics,
        load_decompositions(),
    )
