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
  that nobody wrote (大傻，逼他 must not become 傻逼). A line break between two Chinese
  characters is dropped when one of them stands on a line of its own (傻 and 逼 written
  down the page, one a line).
- ``repeats``: a character written three or more times in a row counts once (傻傻傻逼逼逼).
  Two in a row stay: 妈妈, 谢谢 and 哈哈 are words.
- ``leetspeak``: digits and ``@``/``$`` between Latin letters become letters (b1tch).
- ``digits``: a whole digit run touching a Chinese character becomes what it stands for
  (你妈4了, 装13), unless a unit or measure word follows (4个, 64位, 250元).

Most texts need none of the context steps: one pass in C (``moderation._scan``) folds the text
and another tests the exact condition under which each step acts, and when none would, the
folded text is the normalized text with the identity map. ``Normalizer.full`` always runs every
step in Python; property tests hold the C passes equal to their Python references and the two
paths equal.

The phonetic view (each Han character as its toneless pinyin syllable) is built by the
detectors from ``Normalized.text``. Pure and synchronous; imports only ``domain`` and the C
passes ``_scan``.
"""

from __future__ import annotations

import json
import re
import unicodedata
from array import array
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from types import MappingProxyType
from typing import NamedTuple, TypeVar

import opencc

from moderation import _scan, datafile
from moderation.domain import Variant

HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f\u3007"
#: Punctuation that really ends a word or sentence; never dropped as a separator.
BOUNDARY = "，。！？；：、,!?;:…\n\r"
#: What may be dropped between the letters of a disguised word: anything that is not a word
#: character or a boundary (white space, symbols, emoji, other punctuation, underscore). Code
#: points in the Chinese ranges count as Chinese even where this Python's Unicode tables do
#: not know them yet.
SEPARATOR = rf"(?:[^\w{BOUNDARY}{HAN}]|_)"
UNITS = (
    "个位年月日号点分秒岁元块米克斤楼层次天周期页章集条人名只张台件辆度级倍成折万千百亿届"
    "路线栋室床斗毛角钱寸尺里周回遍场轮"
)


#: Emoji whose Chinese CLDR name is a character with a class word after it stand for the
#: character: 女人 (👩) for 女, 猪头 (🐷) for 猪, 狗脸 (🐶) for 狗.
_CLASS_WORDS = "人头脸"
#: The combining keycap (1️⃣): dropped, so the digit it holds is read.
KEYCAP = "\u20e3"


def cldr_stand_ins() -> dict[str, str]:
    """The character each single-code-point emoji stands for, from Unicode CLDR's Chinese
    annotations (shipped by the ``emoji`` package): a one-character name is that character
    (🐍 蛇, 🍑 桃, ➕ 加), a character and a class word is the character (👨 男人: 男), a keycap
    is its number (🔟 十). ``data/normalize/emoji.tsv`` reviews and overrides these."""
    names = json.loads(
        (resources.files("emoji") / "unicode_codes" / "emoji_zh.json").read_text("utf-8")
    )
    out: dict[str, str] = {KEYCAP: ""}
    for sequence, name in names.items():
        emoji = sequence.replace("\ufe0f", "")
        word = name.strip(":")
        if len(emoji) != 1 or not word or not all(_is_han(ch) for ch in word):
            if len(emoji) == 1 and word == "按键_10":
                out[emoji] = "十"
            continue
        if len(word) == 1:
            out[emoji] = word
        elif len(word) == 2 and word[1] in _CLASS_WORDS:
            out[emoji] = word[0]
    return out


def _data(name: str) -> list[list[str]]:
    return [cells for _, cells in datafile.rows(datafile.read(f"normalize/{name}")[0])]


@dataclass(frozen=True, slots=True)
class Step:
    """One named step; ``variant`` is the disguise it undoes (None: not a disguise)."""

    name: str
    variant: Variant | None
    doc: str


#: Every step in order, context-free first. ``Normalized.steps`` names the ones that fired.
STEPS: tuple[Step, ...] = (
    Step("invisible", Variant.SEPARATOR, "drop zero-width, format and variation characters"),
    # Bopomofo before NFKC, which would make the neutral-tone mark (˙) a space and a dot.
    Step("bopomofo", Variant.ABBREVIATION, "Bopomofo -> pinyin letters, tone marks dropped"),
    Step("nfkc", Variant.WIDTH, "NFKC: full-width, styled, circled and compatibility forms"),
    Step("casefold", None, "Latin, Greek and Cyrillic case folding"),
    Step("confusables", Variant.CONFUSABLE, "look-alike letters of other scripts -> Latin"),
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
#: Bopomofo (zhuyin) as pinyin letters, symbol by symbol (``bopomofo.tsv``): ㄘㄠˋ ㄋㄧˇ ㄇㄚ reads
#: as cao ni ma and initials alone as pinyin initials (ㄋㄇㄙㄌ as nmsl); tone marks are dropped.
#: The phonetic view reads the spellings this makes (xieng for ㄒㄧㄥ); what it cannot spell
#: (ㄙ alone is si, ㄧ alone is yi) stays unread.
BOPOMOFO = datafile.pairs("normalize/bopomofo.tsv", nothing="-")
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
        self._confusables = datafile.pairs("normalize/confusables.tsv")
        self._glyphs = datafile.pairs("normalize/glyphs.tsv")
        self.emoji = cldr_stand_ins()
        for emoji, character, *_ in _data("emoji.tsv"):  # reviewed: '-' stands for nothing
            if character == "-":
                self.emoji.pop(emoji, None)
            else:
                self.emoji[emoji] = character
        self._step_table = in_step_order("context-free", self._steps())

    def _steps(self) -> dict[str, Callable[[str], str]]:
        return {
            "invisible": lambda c: "" if _is_invisible(c) else c,
            "bopomofo": lambda c: BOPOMOFO.get(c, c),
            "nfkc": lambda c: unicodedata.normalize("NFKC", c),
            "casefold": str.casefold,
            "confusables": lambda c: self._confusables.get(c, c),
            "t2s": lambda c: self._t2s.get(c, c),
            "glyphs": lambda c: self._glyphs.get(c, c),
            "emoji": lambda c: self.emoji.get(c, c),
        }

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

_T = TypeVar("_T")


def in_step_order(kind: str, runs: Mapping[str, _T]) -> tuple[tuple[str, _T], ...]:
    """What runs each step, in the order ``STEPS`` gives, which is the order they run in:
    ``STEPS`` is the one table of names and order, and a step there without code (or code
    for a step not there) stops the start, naming it."""
    named = [step.name for step in STEPS if step.name in runs]
    if unknown := sorted(runs.keys() - set(named)):
        raise RuntimeError(f"{kind} steps {unknown} are not in STEPS")
    return tuple((name, runs[name]) for name in named)


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
_HAS_DIGIT = re.compile("[0-9]")
#: What a run of repeats may be made of: not digits (13888889999) nor punctuation (!!!).
_REPEATABLE = re.compile(f"[{HAN}a-z]")
_LATIN_OR_DIGIT = _LATIN | _DIGITS
_NOT_AFTER_DIGITS = _LATIN_OR_DIGIT | frozenset(UNITS) | {"%", "."}
_NOT_BEFORE_DIGITS = _LATIN_OR_DIGIT | {"."}


#: Chinese numerals as digits: what a number spelled in characters is written with.
CHINESE_DIGITS = "零〇一二三四五六七八九幺两壹贰叁肆伍陆柒捌玖"
#: How many Chinese numerals in a row set ``_scan.NUMERALS``.
NUMERAL_RUN = 5
_NUMERAL_RUN = re.compile(f"[{CHINESE_DIGITS}]{{{NUMERAL_RUN}}}")

#: The characters ``_scan.char_classes`` looks for, by the bit it sets for each.
_CLASSES = (
    (_scan.LATIN, _LATIN),
    (_scan.DIGIT, _DIGITS),
    (_scan.AT, frozenset("@")),
    (_scan.DOT, frozenset(".")),
    (_scan.COLON, frozenset(":")),
    (_scan.NUMERAL, frozenset("一幺壹")),
)


def reference_char_classes(text: str) -> int:
    """``_scan.char_classes`` in Python (the reference the tests hold it to): a bit per kind
    of character in ``text`` that the phonetic view and the patterns look for."""
    present = set(text)
    classes = sum(bit for bit, chars in _CLASSES if present & chars)
    return classes | (_scan.NUMERALS if _NUMERAL_RUN.search(text) else 0)


_NO_MARKS: Mapping[int, Variant] = MappingProxyType({})
_NO_VARIANTS: Mapping[str, Variant] = MappingProxyType({})
_NO_STEPS: Mapping[str, tuple[str, ...]] = MappingProxyType({})
_NOTHING_FIRED: frozenset[str] = frozenset()


class Normalized(NamedTuple):
    """A normalized text with its map back to the original (immutable, cheap to build).

    ``starts[i]``/``ends[i]`` are the original code-point span of normalized character ``i``
    (None: the identity, the common case). ``marks`` holds the variant each context step left
    on normalized positions; ``steps`` names every step that changed something.
    """

    original: str
    text: str
    starts: Sequence[int] | None = None
    ends: Sequence[int] | None = None
    marks: Mapping[int, Variant] = _NO_MARKS
    fired: frozenset[str] = frozenset()
    """Steps known to have changed something when the text was normalized."""
    fold_steps: Mapping[str, tuple[str, ...]] = _NO_STEPS
    """Context-free steps by original character, for the ones not yet in ``fired``."""
    folded_variants: Mapping[str, Variant] = _NO_VARIANTS
    folded: str = ""
    """The text after the context-free steps only (for patterns: ``www`` stays ``www``)."""
    folded_starts: Sequence[int] | None = None
    folded_ends: Sequence[int] | None = None

    def __repr__(self) -> str:
        return f"Normalized(text={self.text!r}, steps={sorted(self.steps)})"

    @property
    def steps(self) -> frozenset[str]:
        """Every step that changed something (worked out when asked: only tests and
        explanations ask)."""
        if not self.fold_steps:
            return self.fired
        fired = set(self.fired)
        for ch in set(self.original):
            fired.update(self.fold_steps.get(ch, ()))
        return frozenset(fired)

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

    def _folded_variants_in(self, start: int, end: int) -> list[Variant]:
        """The variants of the characters of ``original[start:end]`` the folding changed."""
        chars = self.original[start:end]
        variants = self.folded_variants
        if variants.keys().isdisjoint(chars):  # the common case, asked in C
            return []
        return [variants[c] for c in chars if c in variants]

    def original_variant(self, start: int, end: int) -> Variant:
        """The disguise the context-free steps undo in ``original[start:end]`` (or EXACT)."""
        found = self._folded_variants_in(start, end)
        return min(found, key=_PRIORITY.__getitem__) if found else Variant.EXACT

    def variant(self, i: int, j: int) -> Variant:
        """How normalized ``[i, j)`` was disguised in the original (EXACT when it was not)."""
        marks = self.marks
        if not marks and self.starts is None and not self.folded_variants:
            return Variant.EXACT  # nothing was folded, moved or marked
        start, end = self.span(i, j)
        found = self._folded_variants_in(start, end)
        if marks:
            found.extend(marks[k] for k in range(i, j) if k in marks)
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


#: The bit by which the C passes know each context step (``_scan.apply_context_steps`` runs
#: them in the order it is given, which is STEPS's).
_C_STEP = {
    "separators": _scan.STEP_SEPARATORS,
    "repeats": _scan.STEP_REPEATS,
    "leetspeak": _scan.STEP_LEETSPEAK,
    "digits": _scan.STEP_DIGITS,
}

#: The variants the context steps mark, in the order ``_scan.apply_context_steps`` takes.
_CONTEXT_MARKS = (Variant.REPEAT, Variant.LEETSPEAK, Variant.DIGIT)

#: One edit of a context step: ``[start, end)`` becomes the text, marked with the variant.
_Change = tuple[int, int, str, Variant | None]


class _Edit:
    """A text under context steps, with each character's original span (built lazily)."""

    __slots__ = ("chars", "ends", "marks", "starts")

    def __init__(self, text: str, starts: list[int] | None, ends: list[int] | None) -> None:
        self.chars = text
        self.starts = starts
        self.ends = ends
        self.marks: dict[int, Variant] = {}

    def _spans(self) -> tuple[Sequence[int], Sequence[int]]:
        if self.starts is None or self.ends is None:
            return range(len(self.chars)), range(1, len(self.chars) + 1)  # the identity
        return self.starts, self.ends

    def apply(self, edits: Sequence[_Change]) -> None:
        """Replace each ``[start, end)`` with its text; each output char spans the whole input."""
        starts, ends = self._spans()
        old_marks = self.marks
        out: list[str] = []
        new_starts: list[int] = []
        new_ends: list[int] = []
        marks: dict[int, Variant] = {}
        cursor = 0
        for start, end, replacement, variant in edits:
            if old_marks:
                self._carry(old_marks, marks, cursor, start, len(new_starts) - cursor)
            out.append(self.chars[cursor:start])
            new_starts.extend(starts[cursor:start])
            new_ends.extend(ends[cursor:start])
            for piece in replacement:
                if variant is not None:
                    marks[len(new_starts)] = variant
                out.append(piece)
                new_starts.append(starts[start])
                new_ends.append(ends[end - 1])
            cursor = end
        if old_marks:
            self._carry(old_marks, marks, cursor, len(self.chars), len(new_starts) - cursor)
        out.append(self.chars[cursor:])
        new_starts.extend(starts[cursor:])
        new_ends.extend(ends[cursor:])
        self.chars = "".join(out)
        self.starts, self.ends, self.marks = new_starts, new_ends, marks

    def change(self, find: Callable[[str], list[_Change]]) -> bool:
        """Apply the edits ``find`` finds in the text; False when it finds none."""
        found = find(self.chars)
        if found:
            self.apply(found)
        return bool(found)

    @staticmethod
    def _carry(
        old: dict[int, Variant], new: dict[int, Variant], start: int, end: int, shift: int
    ) -> None:
        """Marks on kept positions ``[start, end)`` move by ``shift``."""
        for k, variant in old.items():
            if start <= k < end:
                new[k + shift] = variant


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
        #: Each emoji that stands for a character, and the character (CLDR and reviewed).
        self.emoji_stand_ins: Mapping[str, str] = dict(folder.emoji)
        self._table = table
        self._codes = array("I", map(ord, table))  # the same table for ``_scan.translate``
        self._slow_cache: dict[str, tuple[str, tuple[str, ...]]] = {}
        # A run of separators that is dropped: after a Chinese character and before a Chinese
        # character, a letter or a digit; after a letter or digit and before a Chinese
        # character; between two single letters. (Each match is a whole run.)
        # And a line break between two Chinese characters when one of them stands on a line of
        # its own: a word written down the page (傻\n逼), not two sentences (大傻\n逼他).
        self._separator_drop = re.compile(
            rf"(?={SEPARATOR})(?:"
            rf"(?<=[{HAN}]){SEPARATOR}+(?=[{HAN}a-z0-9])"
            rf"|(?<=[a-z0-9]){SEPARATOR}+(?=[{HAN}])"
            rf"|(?<=[a-z])(?<![a-z0-9][a-z]){SEPARATOR}+(?=[a-z](?![a-z0-9])))"
            rf"|\n(?<=[{HAN}]\n)(?=[{HAN}])"
            rf"(?:(?<=^[{HAN}]\n)|(?<=\n[{HAN}]\n)|(?=[{HAN}](?:\n|\Z)))"
        )
        self._any_triple = re.compile(r"(.)\1{2,}")
        self._leet = re.compile(r"[013457@$](?<=[a-z][013457@$])(?=[a-z])")
        self._digit_runs = re.compile(r"[0-9]+")
        self._digit_map = datafile.pairs("normalize/digits.tsv")
        self._context_steps = in_step_order(
            "context",
            {
                "separators": self._separators,
                "repeats": self._repeats,
                "leetspeak": self._leetspeak,
                "digits": self._digit_words,
            },
        )
        folded_names = {name for name, _ in self._folder._step_table}
        context_names = [name for name, _ in self._context_steps]
        if missing := [s.name for s in STEPS if s.name not in {*folded_names, *context_names}]:
            raise RuntimeError(f"steps {missing} of STEPS have no code")
        #: The C passes' bit for each context step, in the order they run (STEPS's).
        self._c_order = tuple(_C_STEP[name] for name in context_names)
        #: The names of the context steps each combination of their bits stands for.
        self._steps_of_bits = [
            tuple(name for name in context_names if bits & _C_STEP[name])
            for bits in range(2 * max(_C_STEP.values()))
        ]

    def context_steps(self, folded: str) -> int:
        """A bit per context step that would change ``folded``, in the order of
        C passes (``_C_STEP``), from one pass in C over the conditions of the steps' own
        finders (``reference_context_steps``)."""
        return _scan.context_steps(folded, self._digit_map, UNITS)

    def reference_context_steps(self, folded: str) -> int:
        """The same bits, asked of each step's finder (the reference for ``context_steps``)."""
        return sum(_C_STEP[name] for name, find in self._context_steps if find(folded))

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

    def _translate(self, text: str) -> str | None:
        """``text`` folded by the table in one pass, or None when some character maps to none
        or several or lies above the table (in C; ``reference_translate`` is the same)."""
        return _scan.translate(text, self._codes)

    def reference_translate(self, text: str) -> str | None:
        """``_translate`` by ``str.translate`` (the reference for the C pass)."""
        folded = text.translate(self._table)
        return None if _IRREGULAR in folded or _ASTRAL.search(text) else folded

    def _fold(self, text: str, folded: str | None, steps: set[str]) -> _Edit:
        # One pass folds every character that maps to exactly one; a text with a character
        # that maps to none or several (or lies above the table) takes the per-character path.
        if folded is not None:
            return _Edit(folded, None, None)  # its steps are worked out when asked
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

    # Each context step finds its edits in a text: (start, end, replacement, variant).

    def _separators(self, chars: str) -> list[_Change]:
        return [(m.start(), m.end(), "", None) for m in self._separator_drop.finditer(chars)]

    def _repeats(self, chars: str) -> list[_Change]:
        return [
            (m.start(), m.end(), ch, Variant.REPEAT)
            for m in self._any_triple.finditer(chars)
            if _REPEATABLE.fullmatch(ch := m.group(1))
        ]

    def _leetspeak(self, chars: str) -> list[_Change]:
        return [
            (m.start(), m.end(), LEET[m.group()], Variant.LEETSPEAK)
            for m in self._leet.finditer(chars)
        ]

    def _digit_words(self, chars: str) -> list[_Change]:
        if not _HAS_DIGIT.search(chars):
            return []
        found: list[_Change] = []
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
        return found

    def __call__(self, text: str) -> Normalized:
        """Normalize ``text``; pure, never raises, time linear in its length.

        Most texts need only the folding: when it maps every character to one and no context
        step would act, the folded text is the normalized text, with the identity map.
        """
        folded = self._translate(text)
        if folded is None or self.context_steps(folded):
            return self._full(text, folded)
        changed = folded != text  # if not, no character is one the folding changes or marks
        return Normalized(  # by position (for every text; twice as fast as by keyword)
            text,
            folded,
            None,
            None,
            _NO_MARKS,
            _NOTHING_FIRED,
            self._fold_steps if changed else _NO_STEPS,
            self._fold_variants if changed else _NO_VARIANTS,
            folded,
        )

    def full(self, text: str) -> Normalized:
        """Normalize ``text`` through every step in Python, without the shortcut or the C
        passes (the reference: equal results)."""
        return self._full(text, self.reference_translate(text), in_c=False)

    def _context_in_python(self, edit: _Edit, steps: set[str]) -> None:
        """Every context step in order, by the steps' own finders."""
        for name, find in self._context_steps:
            if edit.change(find):
                steps.add(name)
        # Digits that became letters or characters can stand next to separators or make a
        # run (a5ß -> asss): a second round reaches the fixed point.
        if steps & {"digits", "leetspeak"}:
            if edit.change(self._separators):
                steps.add("separators")
            if edit.change(self._repeats):
                steps.add("repeats")

    def _context_in_c(self, edit: _Edit, steps: set[str]) -> None:
        """The same in one C call (``_scan.apply_context_steps``)."""
        done = _scan.apply_context_steps(
            edit.chars, edit.starts, edit.ends, self._digit_map, UNITS, _CONTEXT_MARKS,
            self._c_order,
        )  # fmt: skip
        if done is None:
            return
        edit.chars, edit.starts, edit.ends, edit.marks, bits = done
        steps.update(self._steps_of_bits[bits])

    def _full(self, text: str, translated: str | None, *, in_c: bool = True) -> Normalized:
        steps: set[str] = set()
        edit = self._fold(text, translated, steps)
        folded, folded_starts, folded_ends = edit.chars, edit.starts, edit.ends
        if in_c:
            self._context_in_c(edit, steps)
        else:
            self._context_in_python(edit, steps)
        return Normalized(  # by position, as in ``__call__``
            text,
            edit.chars,
            edit.starts,
            edit.ends,
            edit.marks,
            frozenset(steps),
            self._fold_steps,
            self._fold_variants,
            folded,
            folded_starts,
            folded_ends,
        )
