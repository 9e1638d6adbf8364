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

Built once at start (no pypinyin call per message); pure afterwards. Imports nothing of ours.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from pypinyin import Style, lazy_pinyin, pinyin_dict

#: First code point of the syllable codes (supplementary private use area A).
CODE_BASE = 0xF0000
#: Stands between syllables that must not join (anything that is not a syllable).
BARRIER = "\x00"
#: Pinyin syllables too short or too odd to find inside Latin words.
NOT_IN_LATIN = frozenset({"a", "e", "o", "m", "n", "ng", "hm", "hng", "r", "ê", "io"})
MAX_TOKEN = 32


def _toneless(reading: str) -> str:
    reading = reading.replace("ü", "v")
    return "".join(
        c for c in unicodedata.normalize("NFD", reading) if unicodedata.category(c) != "Mn"
    )


@dataclass(frozen=True, slots=True)
class PhoneticView:
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
        self._syllable = {code: s for s, code in self._code.items()}
        table: dict[int, str] = {ord(ch): self._code[s] for ch, s in readings.items()}
        # Code points that collide with our codes must not pass through as syllables.
        for code in self._code.values():
            table.setdefault(ord(code), BARRIER)
        self._table = table
        self._latin_syllables = {s for s in syllables if s not in NOT_IN_LATIN and s.isascii()}
        self._longest = max(len(s) for s in self._latin_syllables)
        self._latin = re.compile(r"[a-z]+")
        self._han_reading = readings

    def syllables(self, text: str) -> str:
        """Codes for ``text`` character by character (most common readings)."""
        return text.translate(self._table)

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
        if all(ord(c) >= CODE_BASE for c in default):
            keys.add(default)
        return keys

    @functools.lru_cache(maxsize=4096)  # noqa: B019 - the instance lives as long as the process
    def segment(self, token: str) -> tuple[str, ...] | None:
        """``token`` as pinyin syllables (the fewest), or None when it is not pinyin."""
        if len(token) > MAX_TOKEN:
            return None
        best: list[tuple[str, ...] | None] = [None] * (len(token) + 1)
        best[0] = ()
        for end in range(1, len(token) + 1):
            for size in range(1, min(self._longest, end) + 1):
                before = best[end - size]
                piece = token[end - size : end]
                if before is not None and piece in self._latin_syllables:
                    candidate = (*before, piece)
                    if best[end] is None or len(candidate) < len(best[end]):  # type: ignore[arg-type]
                        best[end] = candidate
        return best[len(token)]

    def view(self, text: str) -> PhoneticView:
        """The phonetic view of a normalized text.

        Han characters become syllable codes in place. Latin letters are not codes, so they
        already stand between syllables; only Latin words that spell pinyin are rewritten, and
        the spaces between two such words dropped (``sha bi``), which needs the span map.
        """
        codes = self.syllables(text)
        tokens = [
            (m.start(), m.end(), parts)
            for m in self._latin.finditer(text)
            if (parts := self.segment(m.group())) is not None
        ]
        if not tokens:
            return PhoneticView(codes, None, None, frozenset())
        out: list[str] = []
        starts: list[int] = []
        ends: list[int] = []
        latin: set[int] = set()
        cursor = 0
        previous_end = -1
        for start, end, parts in tokens:
            gap = text[previous_end:start] if previous_end >= 0 else None
            keep_until = previous_end if gap is not None and gap.strip(" -'.") == "" else start
            out.append(codes[cursor:keep_until])
            starts.extend(range(cursor, keep_until))
            ends.extend(range(cursor + 1, keep_until + 1))
            offset = start
            for syllable in parts:
                latin.add(len(starts))
                out.append(self._code[syllable])
                starts.append(offset)
                ends.append(offset + len(syllable))
                offset += len(syllable)
            cursor = previous_end = end
        out.append(codes[cursor:])
        starts.extend(range(cursor, len(text)))
        ends.extend(range(cursor + 1, len(text) + 1))
        return PhoneticView("".join(out), starts, ends, frozenset(latin))

    def reading(self, ch: str) -> str | None:
        """The most common toneless reading of a Han character."""
        return self._han_reading.get(ch)

    def decode(self, codes: str) -> list[str]:
        """Syllables of a code string (for tests and explanations)."""
        return [self._syllable.get(c, "?") for c in codes]
