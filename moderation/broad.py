"""Broad word lists as weak signals: a hit escalates to the model, never decides.

The curated lexicon (about 700 reviewed entries) decides. Large community lists hold tens of
thousands of words, many of them mistakes or everyday words, so a hit of theirs only says "ask
the model" (REVIEW with the model off). No such list ships with the package: an operator builds
one from a list whose licence suits them with ``moderation broad-lexicon`` and points
``MODERATION_BROAD_LEXICON_PATH`` at the file.

``build`` reads houbb/sensitive-word's tagged list (Apache-2.0: ``sensitive_word_tags.txt``,
``word tags`` with tags 0 political, 1 drugs, 2 sexual, 3 gambling, 4 illegal) and keeps a
word only when, normalized, it has two characters or more, is not ASCII alone, is not on the
list's own allow list, is not already a curated term, and is not an ordinary word (jieba's
dictionary): what is left is slang and phrases, not vocabulary.

The file: ``# moderation broad lexicon 1`` then ``term<TAB>CATEGORY<TAB>subcategory`` lines.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import daachorse
import rjieba

from moderation.domain import Category, Evidence, Finding, Severity, Source
from moderation.errors import ConfigError
from moderation.normalize import Normalized

HEADER = "# moderation broad lexicon 1"
#: houbb's tag digits and the category each means (4, "illegal", is the fallback).
HOUBB_TAGS: Mapping[str, Category] = {
    "0": Category.POLITICAL,
    "1": Category.ILLEGAL,
    "2": Category.SEXUAL,
    "3": Category.ILLEGAL,
    "4": Category.ILLEGAL,
}
HOUBB_SUBCATEGORY = {"0": "broad", "1": "drugs", "2": "broad", "3": "gambling", "4": "broad"}
#: A broad hit is below every policy's ``min_confidence``: it asks, it never decides.
CONFIDENCE_BROAD = 0.4
#: Hits of one text kept at most.
MAX_BROAD_HITS = 8


class BroadDetector:
    """Finds the terms of a broad list in the normalized text: each an ambiguous finding."""

    name = "broad"

    def __init__(self, terms: Mapping[str, tuple[Category, str]]) -> None:
        self._terms = list(terms)
        self._kinds = [terms[t] for t in self._terms]
        self._rules = [
            f"broad.{kind[0].name.lower()}.{zlib.crc32(t.encode()):08x}"
            for t, kind in zip(self._terms, self._kinds, strict=True)
        ]
        self._automaton = daachorse.CharwiseDoubleArrayAhoCorasick(self._terms)

    def __len__(self) -> int:
        return len(self._terms)

    def detect(self, text: Normalized, jurisdiction: str) -> list[Finding]:
        """An ambiguous MEDIUM finding per hit (at most ``MAX_BROAD_HITS``)."""
        findings: list[Finding] = []
        for start, end, index in self._automaton.find(text.text):
            category, subcategory = self._kinds[index]
            o_start, o_end = text.span(start, end)
            findings.append(
                Finding(
                    category,
                    subcategory,
                    Severity.MEDIUM,
                    CONFIDENCE_BROAD,
                    Source.LEXICON,
                    Evidence(
                        o_start,
                        o_end,
                        text.original[o_start:o_end],
                        self._terms[index],
                        text.variant(start, end),
                    ),
                    self._rules[index],
                    True,
                )
            )
            if len(findings) >= MAX_BROAD_HITS:
                break
        return findings


def load(path: Path) -> BroadDetector:
    """The broad list in ``path``; ``ConfigError`` naming the file for anything else."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"MODERATION_BROAD_LEXICON_PATH: cannot read {path}: {exc}") from exc
    if not lines or lines[0] != HEADER:
        raise ConfigError(
            f"MODERATION_BROAD_LEXICON_PATH: {path} is not a broad lexicon (build one with "
            "moderation broad-lexicon)"
        )
    terms: dict[str, tuple[Category, str]] = {}
    for number, line in enumerate(lines[1:], start=2):
        cells = line.split("\t")
        if len(cells) != 3 or cells[1] not in Category.__members__ or not cells[0]:
            raise ConfigError(f"{path}:{number}: expected term<TAB>CATEGORY<TAB>subcategory")
        terms[cells[0]] = (Category[cells[1]], cells[2])
    if not terms:
        raise ConfigError(f"{path}: the broad lexicon holds no terms")
    return BroadDetector(terms)


def build(
    tags_file: Path,
    allow_file: Path | None,
    normalize: Callable[[str], Normalized],
    curated: Iterable[str],
) -> tuple[dict[str, tuple[Category, str]], dict[str, int]]:
    """houbb's tagged words, filtered (see the module's docstring); and what was dropped why."""
    allow = set()
    if allow_file is not None:
        allow = {normalize(w.strip()).text for w in allow_file.read_text("utf-8").splitlines()}
    known = set(curated)
    kept: dict[str, tuple[Category, str]] = {}
    dropped = {"short": 0, "ascii": 0, "allowed": 0, "curated": 0, "ordinary": 0}
    for line in tags_file.read_text(encoding="utf-8").splitlines():
        word, _, tags = line.strip().rpartition(" ")
        if not word:
            continue
        term = normalize(word).text
        reason = (
            "short"
            if len(term) < 2
            else "ascii"
            if term.isascii()
            else "allowed"
            if term in allow
            else "curated"
            if term in known
            else "ordinary"
            if rjieba.has_word(term)
            else None
        )
        if reason is not None:
            dropped[reason] += 1
            continue
        digits = [t for t in tags.split(",") if t in HOUBB_TAGS]
        tag = next((t for t in digits if t != "4"), digits[0] if digits else "4")
        kept.setdefault(term, (HOUBB_TAGS[tag], HOUBB_SUBCATEGORY[tag]))
    return kept, dropped


def write(path: Path, terms: Mapping[str, tuple[Category, str]]) -> None:
    """Write a broad lexicon file (sorted, so a rebuild gives the same bytes)."""
    body = "".join(f"{t}\t{c.name}\t{s}\n" for t, (c, s) in sorted(terms.items()))
    path.write_text(f"{HEADER}\n{body}", encoding="utf-8")
