"""Offset-preserving normalization: the caller's text -> the views the detectors read.

Normalization is an ordered table of named steps (``STEPS``), each pure and each reported in
``Normalized.steps`` when it changed something. Every normalized character keeps the span of
the original text it came from, so evidence always points into the caller's own text.

Context-free steps map one character to zero or more characters: invisible characters are
dropped, NFKC folds full-width, styled and circled forms, case is folded, look-alike letters
from other scripts become Latin, traditional characters become simplified (OpenCC), variant
glyphs and emoji that stand for a character become that character. At start they are fused
into one table, so a text is folded by one ``str.translate``.

Context steps then work on the folded text with precompiled patterns:

- ``separators``: drops white space, symbols, emoji and punctuation *inside* a disguised word:
  between two Chinese characters, between a Chinese character and a Latin letter or digit,
  and between single Latin letters (``f u c k``, ``s.b``). Sentence punctuation
  (，。！？；：、 and their ASCII forms), line breaks and anything between two Latin words of
  two or more letters are real boundaries and stay: joining across them would make words
  that nobody wrote (大傻，逼他 must not become 傻逼).
- ``repeats``: a character written three or more times in a row counts once (傻傻傻逼逼逼).
  Two in a row stay: 妈妈, 谢谢 and 哈哈 are words.
- ``leetspeak``: digits and ``@``/``$`` between Latin letters become letters (b1tch).
- ``digits``: a whole digit run touching a Chinese character becomes what it stands for
  (你妈4了, 装13), unless a unit or measure word follows (4个, 64位, 250元).

The phonetic view (each Han character as its toneless pinyin syllable) is built by the
detectors from ``Normalized.text``. Pure and synchronous; imports only ``domain``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources

import opencc

from moderation.domain import Variant

HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f\u3007"
#: Punctuation that really ends a word or sentence; never dropped as a separator.
BOUNDARY = "，。！？；：、,!?;:…\n\r"
#: What may be dropped between the letters of a disguised word: anything that is not a word
#: character or a boundary (white space, symbols, emoji, other punctuation, underscore).
SEPARATOR = rf"(?:[^\w{BOUNDARY}]|_)"
UNITS = (
    "个位年月日号点分秒岁元块米克斤楼层次天周期页章集条人名只张台件辆度级倍成折万千百亿届"
    "路线栋室床斗毛角钱寸尺里周回遍场轮"
)


def _data(name: str) -> list[list[str]]:
    text = (resources.files("moderation") / "data" / "normalize" / name).read_text("utf-8")
    return [
        line.split("\t") for line in text.splitlines() if line.strip() and not line.startswith("#")
    ]


@dataclass(frozen=True, slots=True)
class Step:
    """One named step; ``variant`` is the disguise it undoes (None: not a disguise)."""

    name: str
    variant: Variant | None
    doc: str


#: Every step in order, context-free first. ``Normalized.steps`` names the ones that fired.
STEPS: tuple[Step, ...] = (
    Step("invisible", Variant.SEPARATOR, "drop zero-width, format and variation characters"),
    Step("nfkc", Variant.WIDTH, "NFKC: full-width, styled, circled and compatibility forms"),
    Step("casefold", None, "Latin, Greek and Cyrillic case folding"),
    Step("confusables", Variant.CONFUSABLE, "look-alike letters of other scripts -> Latin"),
    Step("bopomofo", Variant.ABBREVIATION, "Bopomofo initials -> Latin initials"),
    Step("t2s", Variant.TRADITIONAL, "traditional -> simplified characters (OpenCC)"),
    Step("glyphs", Variant.GLYPH, "variant character forms -> the standard form"),
    Step("emoji", Variant.EMOJI, "emoji standing for a character -> that character"),
    Step("separators", Variant.SEPARATOR, "drop separators inside disguised words"),
    Step("repeats", Variant.REPEAT, "runs of three or more of a character count once"),
    Step("leetspeak", Variant.LEETSPEAK, "digits and @ $ between Latin letters -> letters"),
    Step("digits", Variant.DIGIT, "digit runs touching Chinese characters -> characters"),
)

INVISIBLE = frozenset(
    "\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b\u180c\u180d\u180e\u200b\u200c\u200d"
    "\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2060\u2061\u2062\u2063\u2064\u2066\u2067"
    "\u2068\u2069\u206a\u206b\u206c\u206d\u206e\u206f\u3164\ufeff\uffa0\ufff9\ufffa\ufffb"
)
BOPOMOFO = dict(
    zip(
        "ㄅㄆㄇㄈㄉㄊㄋㄌㄍㄎㄏㄐㄑㄒㄓㄔㄕㄖㄗㄘㄙ",
        "bpmfdtnlgkhjqxzcsrzcs",
        strict=True,
    )
)
LEET = {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s"}


def _is_invisible(ch: str) -> bool:
    cp = ord(ch)
    return (
        ch in INVISIBLE
        or 0xFE00 <= cp <= 0xFE0F
        or 0xE0000 <= cp <= 0xE0FFF  # tags and variation selectors supplement
        or 0x1F3FB <= cp <= 0x1F3FF  # emoji skin tones
        or (unicodedata.category(ch) == "Cf" and ch != "\u200d")
        or ch == "\u200d"
    )


class _Folder:
    """The fused context-free steps: one character -> (replacement, variant, step names)."""

    def __init__(self) -> None:
        # One OpenCC call over every Han character in the BMP, not one call per character.
        converter = opencc.OpenCC("t2s")
        han = [chr(cp) for cp in (*range(0x3400, 0xA000), *range(0xF900, 0xFB00))]
        converted = converter.convert("\n".join(han)).split("\n")
        self._t2s = {a: b for a, b in zip(han, converted, strict=True) if a != b and len(b) == 1}
        self._confusables = {row[0]: row[1] for row in _data("confusables.tsv")}
        self._glyphs = {row[0]: row[1] for row in _data("glyphs.tsv")}
        self._emoji = {row[0]: row[1] for row in _data("emoji.tsv")}
        self._step_table = self._steps()

    def _steps(self) -> tuple[tuple[str, Callable[[str], str]], ...]:
        return (
            ("invisible", lambda c: "" if _is_invisible(c) else c),
            ("nfkc", lambda c: unicodedata.normalize("NFKC", c)),
            ("casefold", str.casefold),
            ("confusables", lambda c: self._confusables.get(c, c)),
            ("bopomofo", lambda c: BOPOMOFO.get(c, c)),
            ("t2s", lambda c: self._t2s.get(c, c)),
            ("glyphs", lambda c: self._glyphs.get(c, c)),
            ("emoji", lambda c: self._emoji.get(c, c)),
        )

    def fold(self, ch: str) -> tuple[str, tuple[str, ...]]:
        """``ch`` through every context-free step, to a fixed point; and the steps that fired."""
        out, fired = ch, []
        for _ in range(3):  # a fixed point: folding the result again changes nothing
            before = out
            for name, step in self._step_table:
                mapped = step(out) if len(out) == 1 else "".join(step(c) for c in out)
                if mapped != out:
                    fired.append(name)
                    out = mapped
            if out == before:
                break
        return out, tuple(dict.fromkeys(fired))


_VARIANT_OF_STEP = {step.name: step.variant for step in STEPS}


def _variant(fired: tuple[str, ...]) -> Variant | None:
    for name in fired:
        variant = _VARIANT_OF_STEP[name]
        if variant is not None:
            return variant
    return None


#: Code points folded eagerly into the translate table: the BMP and the plane of emoji and
#: styled letters. Anything above goes through the per-character path.
TABLE_SIZE = 0x20000
_ASTRAL = re.compile(f"[{chr(TABLE_SIZE)}-\U0010ffff]")
#: Stands in the translate table for characters that fold to zero or several characters.
_IRREGULAR = "\uffff"


def _is_han(ch: str) -> bool:
    """True for a Chinese character (the ranges of ``HAN``)."""
    return (
        "\u4e00" <= ch <= "\u9fff"
        or "\u3400" <= ch <= "\u4dbf"
        or "\uf900" <= ch <= "\ufaff"
        or "\U00020000" <= ch <= "\U0003134f"
        or ch == "\u3007"
    )


_LATIN = frozenset("abcdefghijklmnopqrstuvwxyz")
_DIGITS = frozenset("0123456789")
_LATIN_OR_DIGIT = _LATIN | _DIGITS
_LEET_CHARS = frozenset("013457@$")
_NOT_AFTER_DIGITS = _LATIN_OR_DIGIT | frozenset(UNITS) | {"%", "."}
_NOT_BEFORE_DIGITS = _LATIN_OR_DIGIT | {"."}


@dataclass(frozen=True, slots=True)
class Normalized:
    """A normalized text with its map back to the original.

    ``starts[i]``/``ends[i]`` are the original code-point span of normalized character ``i``
    (None: the identity, the common case). ``marks`` holds the variant each context step left
    on normalized positions; ``steps`` names every step that changed something.
    """

    original: str
    text: str
    starts: tuple[int, ...] | None = None
    ends: tuple[int, ...] | None = None
    marks: Mapping[int, Variant] = field(default_factory=dict)
    steps: frozenset[str] = frozenset()
    folded_variants: Mapping[str, Variant] = field(default_factory=dict, repr=False)
    folded: str = ""
    """The text after the context-free steps only (for patterns: ``www`` stays ``www``)."""
    folded_starts: tuple[int, ...] | None = None
    folded_ends: tuple[int, ...] | None = None

    def folded_span(self, i: int, j: int) -> tuple[int, int]:
        """The original span of folded characters ``[i, j)``."""
        if self.folded_starts is None or self.folded_ends is None:
            return i, j
        return self.folded_starts[i], self.folded_ends[j - 1]

    def span(self, i: int, j: int) -> tuple[int, int]:
        """The original span of normalized characters ``[i, j)``."""
        if self.starts is None or self.ends is None:
            return i, j
        return self.starts[i], self.ends[j - 1]

    def original_variant(self, start: int, end: int) -> Variant:
        """The disguise the context-free steps undo in ``original[start:end]`` (or EXACT)."""
        found = [
            self.folded_variants[c] for c in self.original[start:end] if c in self.folded_variants
        ]
        return min(found, key=_PRIORITY.__getitem__) if found else Variant.EXACT

    def variant(self, i: int, j: int) -> Variant:
        """How normalized ``[i, j)`` was disguised in the original (EXACT when it was not)."""
        found: list[Variant] = [self.marks[k] for k in range(i, j) if k in self.marks]
        start, end = self.span(i, j)
        found.extend(
            self.folded_variants[ch]
            for ch in self.original[start:end]
            if ch in self.folded_variants
        )
        if (
            not found
            and self.starts is not None
            and self.ends is not None
            and any(self.ends[k] != self.starts[k + 1] for k in range(i, j - 1))
        ):
            found.append(Variant.SEPARATOR)
        if not found:
            return Variant.EXACT
        return min(found, key=_PRIORITY.__getitem__)


#: When a span shows several disguises, the most telling one names it.
_PRIORITY = {
    v: rank
    for rank, v in enumerate(
        (
            Variant.SPLIT_CHARACTER,
            Variant.HOMOPHONE,
            Variant.PINYIN,
            Variant.ABBREVIATION,
            Variant.DIGIT,
            Variant.EMOJI,
            Variant.LEETSPEAK,
            Variant.CONFUSABLE,
            Variant.TRADITIONAL,
            Variant.GLYPH,
            Variant.WIDTH,
            Variant.REPEAT,
            Variant.SEPARATOR,
            Variant.EXACT,
        )
    )
}


class _Edit:
    """A text under context steps, with each character's original span (built lazily)."""

    __slots__ = ("chars", "ends", "marks", "starts")

    def __init__(self, text: str, starts: list[int] | None, ends: list[int] | None) -> None:
        self.chars = text
        self.starts = starts
        self.ends = ends
        self.marks: dict[int, Variant] = {}

    def _spans(self) -> tuple[list[int], list[int]]:
        if self.starts is None or self.ends is None:
            self.starts = list(range(len(self.chars)))
            self.ends = list(range(1, len(self.chars) + 1))
        return self.starts, self.ends

    def apply(self, edits: Sequence[tuple[int, int, str, Variant | None]]) -> None:
        """Replace each ``[start, end)`` with its text; each output char spans the whole input."""
        starts, ends = self._spans()
        out: list[str] = []
        new_starts: list[int] = []
        new_ends: list[int] = []
        marks: dict[int, Variant] = {}
        cursor = 0
        for start, end, replacement, variant in edits:
            out.append(self.chars[cursor:start])
            new_starts.extend(starts[cursor:start])
            new_ends.extend(ends[cursor:start])
            for k in range(cursor, start):
                if k in self.marks:
                    marks[len(new_starts) - (start - k)] = self.marks[k]
            if replacement:
                for piece in replacement:
                    if variant is not None:
                        marks[len(new_starts)] = variant
                    out.append(piece)
                    new_starts.append(starts[start])
                    new_ends.append(ends[end - 1])
            cursor = end
        for k in range(cursor, len(self.chars)):
            if k in self.marks:
                marks[len(new_starts) + (k - cursor)] = self.marks[k]
        out.append(self.chars[cursor:])
        new_starts.extend(starts[cursor:])
        new_ends.extend(ends[cursor:])
        self.chars = "".join(out)
        self.starts, self.ends, self.marks = new_starts, new_ends, marks


class Normalizer:
    """Compiles the steps once; ``__call__`` normalizes a text and never raises."""

    def __init__(self) -> None:
        folder = _Folder()
        table: list[str] = []
        self._irregular_out: dict[str, str] = {}
        self._fold_variants: dict[str, Variant] = {}
        self._fold_steps: dict[str, tuple[str, ...]] = {}
        for cp in range(TABLE_SIZE):
            ch = chr(cp)
            if 0xD800 <= cp <= 0xDFFF:
                table.append(ch)
                continue
            out, fired = folder.fold(ch)
            if len(out) != 1 or ch == _IRREGULAR:
                self._irregular_out[ch] = out
                out = _IRREGULAR  # the per-character path handles it
            table.append(out)
            if fired:
                self._fold_steps[ch] = fired
                variant = _variant(fired)
                if variant is not None:
                    self._fold_variants[ch] = variant
        self._folder = folder
        self._table = table
        self._slow_cache: dict[str, tuple[str, tuple[str, ...]]] = {}
        # Characters whose folding changes the length, and everything above the table.
        self._changed = frozenset(self._fold_steps)
        self._separator_runs = re.compile(f"{SEPARATOR}+")
        self._repeats = re.compile(f"([{HAN}a-z])\\1{{2,}}")  # not digits: 13888889999
        self._leet = re.compile(r"(?<=[a-z])[013457@$](?=[a-z])")
        self._digit_runs = re.compile(r"[0-9]+")
        self._digit_map = {row[0]: row[1] for row in _data("digits.tsv")}
        # What the context steps could act on (see quick_fold).
        self._quick_veto = re.compile(
            rf"([{HAN}a-z])\1\1"  # a repeat run
            r"|[a-z][013457@$][a-z]"  # leetspeak
            rf"|[{HAN}]{SEPARATOR}|{SEPARATOR}[{HAN}]"  # a separator touching Chinese
            rf"|(?<![a-z0-9])[a-z]{SEPARATOR}+[a-z](?![a-z0-9])"  # single letters spelled apart
        )

    def quick_fold(self, text: str) -> Normalized | None:
        """The context-free folding alone, when the context steps certainly change nothing.

        None when they might: a character that folds to zero or several, a run of three, a
        digit word, a digit among letters, single letters spelled apart, or a separator
        touching a Chinese character. Otherwise the folded text *is* the normalized text.
        """
        folded = text.translate(self._table)
        if _IRREGULAR in folded or _ASTRAL.search(text) or self._quick_veto.search(folded):
            return None
        if not _DIGITS.isdisjoint(folded) and any(
            run in self._digit_map for run in self._digit_runs.findall(folded)
        ):
            return None
        steps: set[str] = set()
        if folded != text:
            for ch in self._changed.intersection(text):
                steps.update(self._fold_steps[ch])
        return Normalized(
            original=text,
            text=folded,
            steps=frozenset(steps),
            folded_variants=self._fold_variants,
            folded=folded,
        )

    def fold_char(self, ch: str) -> tuple[str, tuple[str, ...]]:
        """The context-free folding of one character and the steps that fired."""
        cp = ord(ch)
        if cp < TABLE_SIZE:
            out = self._table[cp]
            if out == _IRREGULAR:
                out = self._irregular_out.get(ch, ch)
            return out, self._fold_steps.get(ch, ())
        hit = self._slow_cache.get(ch)
        if hit is None:
            hit = self._folder.fold(ch)
            if len(self._slow_cache) < 100_000:
                self._slow_cache[ch] = hit
        return hit

    def _fold(self, text: str, steps: set[str]) -> _Edit:
        folded = text.translate(self._table)
        # One pass folds every character that maps to exactly one; a character that maps to
        # none or several (and anything above the table) takes the per-character path.
        if _IRREGULAR not in folded and not _ASTRAL.search(text):
            if folded != text:
                for ch in self._changed.intersection(text):
                    steps.update(self._fold_steps[ch])
            return _Edit(folded, None, None)
        pieces: list[str] = []
        starts: list[int] = []
        ends: list[int] = []
        for index, ch in enumerate(text):
            out, fired = self.fold_char(ch)
            steps.update(fired)
            for piece in out:
                pieces.append(piece)
                starts.append(index)
                ends.append(index + 1)
        return _Edit("".join(pieces), starts, ends)

    def _drop_separators(self, edit: _Edit) -> bool:
        chars = edit.chars
        size = len(chars)
        found: list[tuple[int, int, str, Variant | None]] = []
        for run in self._separator_runs.finditer(chars):
            start, end = run.span()
            if start == 0 or end == size:
                continue
            left, right = chars[start - 1], chars[end]
            if _is_han(left):
                drop = _is_han(right) or right in _LATIN_OR_DIGIT
            elif left in _LATIN_OR_DIGIT and _is_han(right):
                drop = True
            else:
                # Single letters spelled apart (f u c k, s.b); two real words stay apart.
                drop = (
                    left in _LATIN
                    and right in _LATIN
                    and (start < 2 or chars[start - 2] not in _LATIN_OR_DIGIT)
                    and (end + 1 >= size or chars[end + 1] not in _LATIN_OR_DIGIT)
                )
            if drop:
                found.append((start, end, "", None))
        if not found:
            return False
        edit.apply(found)
        return True

    def _collapse_repeats(self, edit: _Edit) -> bool:
        found = [
            (m.start(), m.end(), m.group(1), Variant.REPEAT)
            for m in self._repeats.finditer(edit.chars)
        ]
        if found:
            edit.apply(found)
        return bool(found)

    def _leetspeak(self, edit: _Edit) -> bool:
        if _LEET_CHARS.isdisjoint(edit.chars):
            return False
        found = [
            (m.start(), m.end(), LEET[m.group()], Variant.LEETSPEAK)
            for m in self._leet.finditer(edit.chars)
        ]
        if found:
            edit.apply(found)
        return bool(found)

    def _digit_words(self, edit: _Edit) -> bool:
        chars = edit.chars
        if _DIGITS.isdisjoint(chars):
            return False
        found: list[tuple[int, int, str, Variant | None]] = []
        for run in self._digit_runs.finditer(chars):
            word = self._digit_map.get(run.group())
            if word is None:
                continue
            start, end = run.span()
            left = chars[start - 1] if start else ""
            right = chars[end] if end < len(chars) else ""
            after_han = bool(left) and _is_han(left) and right not in _NOT_AFTER_DIGITS
            before_han = (
                left not in _NOT_BEFORE_DIGITS
                and bool(right)
                and _is_han(right)
                and right not in UNITS
            )
            if after_han or before_han:
                found.append((start, end, word, Variant.DIGIT))
        if found:
            edit.apply(found)
        return bool(found)

    def __call__(self, text: str) -> Normalized:
        """Normalize ``text``; pure, never raises, time linear in its length."""
        steps: set[str] = set()
        edit = self._fold(text, steps)
        folded, folded_starts, folded_ends = edit.chars, edit.starts, edit.ends
        for name, run in (
            ("separators", self._drop_separators),
            ("repeats", self._collapse_repeats),
            ("leetspeak", self._leetspeak),
            ("digits", self._digit_words),
        ):
            if run(edit):
                steps.add(name)
        # Dropping separators can bring repeats together, and digits can become characters
        # next to separators: a second round reaches the fixed point.
        if steps & {"digits", "leetspeak"} and self._drop_separators(edit):
            self._collapse_repeats(edit)
        return Normalized(
            original=text,
            text=edit.chars,
            starts=None if edit.starts is None else tuple(edit.starts),
            ends=None if edit.ends is None else tuple(edit.ends),
            marks=edit.marks,
            steps=frozenset(steps),
            folded_variants=self._fold_variants,
            folded=folded,
            folded_starts=None if folded_starts is None else tuple(folded_starts),
            folded_ends=None if folded_ends is None else tuple(folded_ends),
        )
