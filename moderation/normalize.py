"""Offset-preserving text normalization: the caller's text -> the text the detectors read.

Normalization is an ordered table of named steps (``STEPS``). Context-free steps map one
character to zero or more characters; at start they are fused into one table, so the hot loop
does one lookup per character. Context steps (dropping separators inside a disguised word)
run in the same loop. Each normalized character remembers the span of the original text it
came from, so every evidence span points into the caller's own text, and the set of steps
that changed anything is reported (``Normalized.steps``).

Pure and synchronous; imports nothing of ours but ``domain``.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from moderation.domain import Variant

#: Code points that are never content: zero-width and format characters, variation selectors.
INVISIBLE = frozenset(
    "\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b\u180c\u180d\u180e\u200b\u200c\u200d\u200e"
    "\u200f\u202a\u202b\u202c\u202d\u202e\u2060\u2061\u2062\u2063\u2064\u2066\u2067\u2068\u2069"
    "\u206a\u206b\u206c\u206d\u206e\u206f\u3164\ufe00\ufe01\ufe02\ufe03\ufe04\ufe05\ufe06\ufe07"
    "\ufe08\ufe09\ufe0a\ufe0b\ufe0c\ufe0d\ufe0e\ufe0f\ufeff\uffa0"
)


def _is_han(ch: str) -> bool:
    cp = ord(ch)
    return (
        0x4E00 <= cp <= 0x9FFF
        or 0x3400 <= cp <= 0x4DBF
        or 0x20000 <= cp <= 0x3134F
        or 0xF900 <= cp <= 0xFAFF
        or cp == 0x3007
    )


def _is_separator(ch: str) -> bool:
    """White space, punctuation and symbols: things a user slips between characters."""
    category = unicodedata.category(ch)
    return category[0] in "ZPS" or category == "Cc"


@dataclass(frozen=True, slots=True)
class Step:
    """One named, context-free character mapping; ``variant`` is what it undoes."""

    name: str
    variant: Variant
    mapping: Callable[[str], str]
    """Maps one character to its replacement (possibly empty, possibly several characters)."""


def _nfkc(ch: str) -> str:
    return unicodedata.normalize("NFKC", ch)


def _casefold(ch: str) -> str:
    return ch.casefold()


def _drop_invisible(ch: str) -> str:
    return "" if ch in INVISIBLE else ch


#: Context-free steps in order. A character passes through each in turn.
STEPS: tuple[Step, ...] = (
    Step("invisible", Variant.SEPARATOR, _drop_invisible),
    Step("nfkc", Variant.WIDTH, _nfkc),
    Step("casefold", Variant.EXACT, _casefold),
)


@dataclass(frozen=True, slots=True)
class Normalized:
    """A normalized view with its map back to the original text.

    ``starts[i]``/``ends[i]`` are the original code-point span of normalized character ``i``;
    ``variants[i]`` is the strongest variant kind that produced it (None when unchanged).
    """

    original: str
    text: str
    starts: tuple[int, ...]
    ends: tuple[int, ...]
    variants: tuple[Variant | None, ...]
    steps: frozenset[str]

    def span(self, i: int, j: int) -> tuple[int, int]:
        """The original span of normalized characters ``[i, j)``."""
        return self.starts[i], self.ends[j - 1]

    def variant(self, i: int, j: int) -> Variant:
        """How normalized ``[i, j)`` was disguised in the original (EXACT when it was not)."""
        for k in range(i, j):
            if self.variants[k] is not None:
                return self.variants[k]  # type: ignore[return-value]
        for k in range(i, j - 1):
            if self.ends[k] != self.starts[k + 1]:
                return Variant.SEPARATOR
        return Variant.EXACT


class Normalizer:
    """Compiles ``steps`` once; ``__call__`` normalizes a text with one lookup per character."""

    __slots__ = ("_cache", "_steps")

    def __init__(self, steps: Iterable[Step] = STEPS) -> None:
        self._steps = tuple(steps)
        self._cache: dict[str, tuple[str, Variant | None, frozenset[str]]] = {}

    def _map(self, ch: str) -> tuple[str, Variant | None, frozenset[str]]:
        hit = self._cache.get(ch)
        if hit is not None:
            return hit
        out, variant, changed = ch, None, set()
        for step in self._steps:
            mapped = "".join(step.mapping(c) for c in out)
            if mapped != out:
                changed.add(step.name)
                if variant is None and step.variant is not Variant.EXACT:
                    variant = step.variant
                out = mapped
        result = (out, variant, frozenset(changed))
        if len(self._cache) < 200_000:
            self._cache[ch] = result
        return result

    def __call__(self, text: str) -> Normalized:
        """Normalize ``text``; never raises, whatever the input."""
        chars: list[str] = []
        starts: list[int] = []
        ends: list[int] = []
        variants: list[Variant | None] = []
        steps: set[str] = set()
        pending_gap = False  # separators seen since the last kept character
        for index, ch in enumerate(text):
            out, variant, changed = self._map(ch)
            if changed:
                steps |= changed
            if not out:
                continue
            for piece in out:
                if _is_separator(piece):
                    # Kept for now: dropped below only between two Han characters.
                    pending_gap = True
                    chars.append(piece)
                    starts.append(index)
                    ends.append(index + 1)
                    variants.append(variant)
                    continue
                if pending_gap and chars and _is_han(piece):
                    # Drop the run of separators if it sits between two Han characters.
                    k = len(chars)
                    while k > 0 and _is_separator(chars[k - 1]):
                        k -= 1
                    if k > 0 and k < len(chars) and _is_han(chars[k - 1]):
                        del chars[k:], starts[k:], ends[k:], variants[k:]
                        steps.add("separators")
                pending_gap = False
                chars.append(piece)
                starts.append(index)
                ends.append(index + 1)
                variants.append(variant)
        return Normalized(
            original=text,
            text="".join(chars),
            starts=tuple(starts),
            ends=tuple(ends),
            variants=tuple(variants),
            steps=frozenset(steps),
        )
