"""The phonetic view: text as a sequence of toneless pinyin syllables, with a map back.

Each Han character becomes its syllable (so homophones share a key: 煞笔 and 傻逼 are both
``sha bi``) and each Latin word that spells pinyin becomes its syllables (``shabi``,
``sha bi``), so one automaton over syllable codes finds both. Every syllable is one code point
in a private-use plane, which keeps the view a plain string for the automaton.

Polyphonic characters, on purpose: a character in the text takes its most common reading
(pypinyin's first), which is the reading people rely on when they pick a character to sound
like another. A lexicon term takes its reading in context (pypinyin's phrase table: 行长 is
``hang zhang``) and, when that differs, its most-common-readings key too, so the term written
as itself still matches. A disguise that relies on a rare reading of a character is missed.

Built once at start (no pypinyin call per message); pure afterwards. Imports only the C passes
``_scan``.
"""

from __future__ import annotations

import re
import unicodedata
from array import array
from collections.abc import Collection, Mapping, Sequence
from typing import NamedTuple

from pypinyin import Style, lazy_pinyin, pinyin_dict
from pypinyin.style import convert

from moderation import _scan, datafile

#: First code point of the syllable codes (the BMP's private use area, so that a view of a
#: text without astral characters stays a two-byte string).
CODE_BASE = 0xE000
#: Stands between syllables that must not join (anything that is not a syllable).
BARRIER = "\x00"
#: Pinyin syllables too short or too odd to find inside Latin words.
NOT_IN_LATIN = frozenset({"a", "e", "o", "m", "n", "ng", "hm", "hng", "r", "ê", "io"})
MAX_TOKEN = 32
#: Bopomofo spellings that are English words (van, Ian, mien): read as English.
ENGLISH_WORDS = frozenset({"ian", "van", "mien"})
#: What may stand between two pinyin words of one key (``sha bi``, ``sha-bi``).
GAP = " -'."
#: Latin tokens whose segmentation is remembered (the most common words come first).
MAX_CACHED_TOKENS = 50_000
#: Code points looked up in a list rather than a dict: the BMP and the emoji plane.
LIST_SIZE = 0x20000
_NONE: frozenset[int] = frozenset()


def bopomofo_spellings(syllables: Collection[str], *, short: bool = False) -> dict[str, str]:
    """Syllables as the normalizer writes their bopomofo, symbol by symbol (``bopomofo.tsv``),
    where that differs from their pinyin: ``xieng`` (ㄒㄧㄥ) for xing, ``jv`` (ㄐㄩ) for ju,
    ``iou`` (ㄧㄡ) for you; each neither a syllable nor shared by two syllables.

    Unless ``short``, only those ``fit_in_any_latin``. ``short`` adds the rest (``s`` for si,
    ``i`` for yi, ``uo`` for wo), for text written in bopomofo."""
    letters = datafile.pairs("normalize/bopomofo.tsv", nothing="-")
    spelled: dict[str, set[str]] = {}
    for syllable in syllables:
        symbols = convert(syllable, Style.BOPOMOFO, strict=True, default="")
        written = "".join(letters.get(symbol, "?") for symbol in symbols)
        spelled.setdefault(written, set()).add(syllable)
    return {
        written: next(iter(readings))
        for written, readings in spelled.items()
        if len(readings) == 1
        and written not in syllables
        and written.isascii()
        and written.isalpha()
        and (short or fit_in_any_latin(written))
    }


def fit_in_any_latin(written: str) -> bool:
    """True for a bopomofo spelling safe to read in any Latin text: at least three letters, or
    a consonant and v, and not an English word (shorter ones are too common)."""
    return (len(written) >= 3 or (len(written) == 2 and written[1] == "v")) and (
        written not in ENGLISH_WORDS
    )


def _toneless(reading: str) -> str:
    reading = reading.replace("ü", "v")
    return "".join(
        c for c in unicodedata.normalize("NFD", reading) if unicodedata.category(c) != "Mn"
    )


class PhoneticView(NamedTuple):
    """Syllable codes and, per code, the span of the normalized text it came from."""

    codes: str
    starts: Sequence[int] | None
    """None: code ``i`` is normalized character ``i`` (no Latin pinyin in the text)."""
    ends: Sequence[int] | None
    latin: frozenset[int]
    """Positions of codes that came from Latin letters."""

    def span(self, i: int, j: int) -> tuple[int, int]:
        """The normalized span of codes ``[i, j)``."""
        if self.starts is None or self.ends is None:
            return i, j
        return self.starts[i], self.ends[j - 1]


class Phonetics:
    """Syllable tables compiled once; ``view`` builds a text's phonetic view."""

    def __init__(self) -> None:
        readings = {
            chr(cp): _toneless(value.split(",")[0]) for cp, value in pinyin_dict.pinyin_dict.items()
        }
        syllables = sorted(set(readings.values()))
        self._code = {s: chr(CODE_BASE + i) for i, s in enumerate(syllables)}
        self._first_code, self._last_code = chr(CODE_BASE), chr(CODE_BASE + len(syllables) - 1)
        self._syllable = {code: s for s, code in self._code.items()}
        table: dict[int, str] = {ord(ch): self._code[s] for ch, s in readings.items()}
        # Code points that collide with our codes must not pass through as syllables.
        for code in self._code.values():
            table.setdefault(ord(code), BARRIER)
        self._table = table
        # The same as a list over the first two planes (a list indexes faster than a dict
        # looks up); a text with anything above them (rare Han, private use) takes the dict.
        self._list: list[str | int] = [table.get(cp, cp) for cp in range(LIST_SIZE)]
        self._codes = array("I", (c if isinstance(c, int) else ord(c) for c in self._list))
        self._above_list = re.compile(f"[{chr(LIST_SIZE)}-\U0010ffff]")
        self._segments: dict[str, tuple[str, ...] | None] = {}
        latin_syllables = {s for s in syllables if s not in NOT_IN_LATIN and s.isascii()}
        #: Each way a Latin word may write a syllable: its pinyin, and its bopomofo read symbol
        #: by symbol; in a text written in bopomofo, also the short ones (``s`` for si).
        bopomofo = bopomofo_spellings(latin_syllables, short=True)
        self._bopomofo_spellings = {s: s for s in latin_syllables} | bopomofo
        self._spellings = {
            written: syllable
            for written, syllable in self._bopomofo_spellings.items()
            if written == syllable or fit_in_any_latin(written)
        }
        self._longest = max(len(s) for s in self._bopomofo_spellings)
        #: What ``_scan.phonetic_view`` takes besides the text.
        self._view_tables = (
            self._codes, self._syllable_trie(self._spellings), MAX_TOKEN, GAP,
            ord(self._first_code), ord(self._last_code),
        )  # fmt: skip
        self._bopomofo_view_tables = (
            self._view_tables[0], self._syllable_trie(self._bopomofo_spellings),
            *self._view_tables[2:],
        )  # fmt: skip
        self._latin = re.compile(r"[a-z]+")
        self._han_reading = readings

    @property
    def syllable_codes(self) -> tuple[int, tuple[str, ...]]:
        """The first syllable code and every syllable in code order (code ``first + i`` is
        syllable ``i``)."""
        ordered = sorted(self._code, key=self._code.__getitem__)
        return ord(self._first_code), tuple(ordered)

    def _syllable_trie(self, spellings: Mapping[str, str]) -> array[int]:
        """The Latin spellings of syllables as a trie for ``_scan.phonetic_view``: rows of 27,
        a child row per letter a-z (0: none; row 0 is the root) and the code of the syllable
        ending there (0: none)."""
        rows = [[0] * 27]
        for written, syllable in sorted(spellings.items()):
            node = 0
            for letter in written:
                k = ord(letter) - ord("a")
                if not 0 <= k < 26:
                    raise ValueError(f"syllable {written!r} is not written in a-z")
                if not rows[node][k]:
                    rows.append([0] * 27)
                    rows[node][k] = len(rows) - 1
                node = rows[node][k]
            rows[node][26] = ord(self._code[syllable])
        return array("i", (cell for row in rows for cell in row))

    def syllables(self, text: str) -> str:
        """Codes for ``text`` character by character (most common readings).

        One pass in C over the list table; a text with a character above it (rare Han,
        private use) or U+FFFF takes ``str.translate`` over the dict (``reference_syllables``).
        """
        codes = _scan.translate(text, self._codes)
        return self.reference_syllables(text) if codes is None else codes

    def reference_syllables(self, text: str) -> str:
        """``syllables`` by ``str.translate`` (the reference for the C pass)."""
        if self._above_list.search(text):
            return text.translate(self._table)
        return text.translate(self._list)

    def term_keys(self, term: str) -> set[str]:
        """Keys of a Han lexicon term: its reading in context and its default readings."""
        in_context = lazy_pinyin(
            term, style=Style.NORMAL, v_to_u=False, neutral_tone_with_five=False
        )
        keys = set()
        context_codes = [self._code.get(_toneless(s).replace("u:", "v")) for s in in_context]
        if len(in_context) == len(term) and all(context_codes):
            keys.add("".join(context_codes))  # type: ignore[arg-type]
        default = self.syllables(term)
        if all(self.is_code(c) for c in default):
            keys.add(default)
        return keys

    def segment(self, token: str, *, bopomofo: bool = False) -> tuple[str, ...] | None:
        """``token`` cut into spellings of pinyin syllables (the fewest), or None when it is not
        pinyin; with ``bopomofo``, the short spellings of bopomofo count too."""
        if bopomofo:
            return self._segment(token, self._bopomofo_spellings)
        try:
            return self._segments[token]
        except KeyError:
            parts = self._segment(token, self._spellings)
        if len(self._segments) >= MAX_CACHED_TOKENS:
            self._segments.clear()
        self._segments[token] = parts
        return parts

    def _segment(self, token: str, spellings: Mapping[str, str]) -> tuple[str, ...] | None:
        if len(token) > MAX_TOKEN:
            return None
        best: list[tuple[str, ...] | None] = [None] * (len(token) + 1)
        best[0] = ()
        for end in range(1, len(token) + 1):
            for size in range(1, min(self._longest, end) + 1):
                before = best[end - size]
                piece = token[end - size : end]
                if before is not None and piece in spellings:
                    candidate = (*before, piece)
                    if best[end] is None or len(candidate) < len(best[end]):  # type: ignore[arg-type]
                        best[end] = candidate
        return best[len(token)]

    def view(self, text: str, *, bopomofo: bool = False) -> PhoneticView:
        """The phonetic view of a normalized text, in one pass in C (``reference_view`` is the
        same in Python, and the way for a text with a character above the list table).

        ``bopomofo``: the text was written in bopomofo, so Latin words may also spell syllables
        the way only bopomofo does (``s`` for ㄙ, si; ``uo`` for ㄨㄛ, wo)."""
        tables = self._bopomofo_view_tables if bopomofo else self._view_tables
        made = _scan.phonetic_view(text, *tables)
        if made is None:
            return self.reference_view(text, bopomofo=bopomofo)
        if isinstance(made, str):
            return PhoneticView(made, None, None, _NONE)
        codes, starts, ends, latin = made
        return PhoneticView(codes, starts, ends, frozenset(latin))

    def reference_view(
        self, text: str, *, every_word: bool = False, bopomofo: bool = False
    ) -> PhoneticView:
        """The phonetic view of a normalized text, in Python (the reference for ``view``).

        Han characters become syllable codes in place. Latin letters are not codes, so they
        already stand between syllables; only Latin words that spell pinyin are rewritten, and
        the spaces between two such words dropped (``sha bi``), which needs the span map. A
        word that cannot take part in a key is left as letters, unless ``every_word`` (the
        tests hold the two to finding the same keys).
        """
        codes = self.syllables(text)
        spellings = self._bopomofo_spellings if bopomofo else self._spellings
        tokens = [
            (m.start(), m.end(), parts)
            for m in self._latin.finditer(text)
            if (parts := self.segment(m.group(), bopomofo=bopomofo)) is not None
        ]
        if not every_word:
            tokens = self._joinable(text, codes, tokens)
        if not tokens:
            return PhoneticView(codes, None, None, _NONE)
        out: list[str] = []
        starts: list[int] = []
        ends: list[int] = []
        latin: set[int] = set()
        cursor = 0
        previous_end = -1
        for start, end, parts in tokens:
            gap = text[previous_end:start] if previous_end >= 0 else None
            keep_until = previous_end if gap is not None and gap.strip(GAP) == "" else start
            out.append(codes[cursor:keep_until])
            starts.extend(range(cursor, keep_until))
            ends.extend(range(cursor + 1, keep_until + 1))
            offset = start
            for written in parts:
                latin.add(len(starts))
                out.append(self._code[spellings[written]])
                starts.append(offset)
                ends.append(offset + len(written))
                offset += len(written)
            cursor = previous_end = end
        out.append(codes[cursor:])
        starts.extend(range(cursor, len(text)))
        ends.extend(range(cursor + 1, len(text) + 1))
        return PhoneticView("".join(out), starts, ends, frozenset(latin))

    def is_code(self, ch: str) -> bool:
        """True when ``ch`` is a syllable code."""
        return self._first_code <= ch <= self._last_code

    def _joinable(
        self, text: str, codes: str, tokens: list[tuple[int, int, tuple[str, ...]]]
    ) -> list[tuple[int, int, tuple[str, ...]]]:
        """The pinyin tokens that can take part in a key: a key has two syllables or more, so
        a one-syllable word (``you`` in ``see you tomorrow``) counts only next to another
        syllable, a Chinese character or a pinyin word with nothing but a space between."""
        kept = []
        for i, (start, end, parts) in enumerate(tokens):
            if (
                len(parts) > 1
                or (start > 0 and self.is_code(codes[start - 1]))
                or (end < len(codes) and self.is_code(codes[end]))
                or (i > 0 and text[tokens[i - 1][1] : start].strip(GAP) == "")
                or (i + 1 < len(tokens) and text[end : tokens[i + 1][0]].strip(GAP) == "")
            ):
                kept.append((start, end, parts))
        return kept

    def reading(self, ch: str) -> str | None:
        """The most common toneless reading of a Han character."""
        return self._han_reading.get(ch)

    def decode(self, codes: str) -> list[str]:
        """Syllables of a code string (for tests and explanations)."""
        return [self._syllable.get(c, "?") for c in codes]
