"""The lexicon: reviewed data files -> one compiled automaton, with a version.

Files are tab-separated, one entry a line, shipped in ``moderation/data/lexicon``::

    # term  category  subcategory  severity  flags  jurisdictions  allow
    傻逼    ABUSE     insult       HIGH      -      *              -
    草      ABUSE     profanity    LOW       ambiguous  *          草地|草莓|草原

``flags`` is ``-`` or a comma list of ``ambiguous`` (harmless in most uses: escalate, never
decide alone) and ``group`` (a group word, neutral alone). ``jurisdictions`` is ``*`` or a
comma list. ``allow`` lists contexts, each containing the term, in which a hit is ignored.

Terms are written in normalized form; an entry its own normalizer would change can never
match as written and is refused at load. Everything is compiled once; nothing is read from
disk per request. Imports only ``domain``, ``errors`` and ``normalize``.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

import daachorse

from moderation.domain import Category, Severity
from moderation.errors import LexiconError
from moderation.normalize import Normalizer

FLAGS = frozenset({"ambiguous", "group"})
COLUMNS = ("term", "category", "subcategory", "severity", "flags", "jurisdictions", "allow")


@dataclass(frozen=True, slots=True)
class Entry:
    """One lexicon entry."""

    term: str
    category: Category
    subcategory: str
    severity: Severity
    ambiguous: bool
    group: bool
    jurisdictions: frozenset[str] | None
    """None means every jurisdiction."""
    allow: tuple[str, ...]
    rule: str
    """Stable id for logs: category, subcategory and a checksum of the term (never the term)."""

    def applies_to(self, jurisdiction: str) -> bool:
        """True when the entry is active under ``jurisdiction``."""
        return self.jurisdictions is None or jurisdiction in self.jurisdictions


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
    contexts = () if allow == "-" else tuple(a.strip() for a in allow.split("|") if a.strip())
    for context in contexts:
        if term not in context:
            raise LexiconError(f"{where}: allow context {context!r} does not contain the term")
    checksum = zlib.crc32(term.encode("utf-8"))
    return Entry(
        term=term,
        category=cat,
        subcategory=subcategory or "-",
        severity=sev,
        ambiguous="ambiguous" in flag_set,
        group="group" in flag_set,
        jurisdictions=scope,
        allow=contexts,
        rule=f"{cat.name.lower()}.{subcategory or 'general'}.{checksum:08x}",
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


@dataclass(frozen=True, slots=True)
class Match:
    """One occurrence of a lexicon term in a normalized text: ``[start, end)`` and its entries."""

    start: int
    end: int
    entries: tuple[Entry, ...]


class Lexicon:
    """Entries compiled into automata over the normalized text."""

    def __init__(self, entries: Sequence[Entry], version: str, normalizer: Normalizer) -> None:
        self.version = version
        self.entries = tuple(entries)
        self._check(normalizer)
        by_term: dict[str, list[Entry]] = {}
        for entry in self.entries:
            by_term.setdefault(entry.term, []).append(entry)
        self._terms = list(by_term)
        self._entries = [tuple(by_term[t]) for t in self._terms]
        # Latin terms match whole words only: sb is not in usb, 7nm or /usr/sbin.
        self._latin = [t.isascii() and t.isalnum() for t in self._terms]
        self._automaton = daachorse.CharwiseDoubleArrayAhoCorasick(self._terms)
        contexts = sorted({c for e in self.entries for c in e.allow})
        self._contexts = contexts
        self._context_automaton = (
            daachorse.CharwiseDoubleArrayAhoCorasick(contexts) if contexts else None
        )

    def _check(self, normalizer: Normalizer) -> None:
        seen: dict[tuple[str, Category], Entry] = {}
        for entry in self.entries:
            key = (entry.term, entry.category)
            if key in seen:
                raise LexiconError(f"duplicate entry: rule {entry.rule} appears twice")
            seen[key] = entry
            folded = normalizer(entry.term).text
            if folded != entry.term:
                raise LexiconError(
                    f"rule {entry.rule}: the term is not in normalized form and would never "
                    f"match as written; write it as {folded!r}"
                )

    def __len__(self) -> int:
        return len(self.entries)

    def find(self, text: str) -> list[Match]:
        """Every occurrence of every term in ``text``, minus those inside an allow context."""
        hits = self._automaton.find_overlapping(text)
        if not hits:
            return []
        allowed: list[tuple[int, int, str]] = []
        if self._context_automaton is not None:
            allowed = [
                (s, e, self._contexts[i])
                for s, e, i in self._context_automaton.find_overlapping(text)
            ]
        matches = []
        for start, end, index in hits:
            if self._latin[index] and (_word_char(text, start - 1) or _word_char(text, end)):
                continue
            entries = self._entries[index]
            if allowed:
                entries = tuple(
                    entry
                    for entry in entries
                    if not any(
                        s <= start and end <= e and context in entry.allow
                        for s, e, context in allowed
                    )
                )
                if not entries:
                    continue
            matches.append(Match(start, end, entries))
        return matches


def _word_char(text: str, index: int) -> bool:
    if index < 0 or index >= len(text):
        return False
    ch = text[index]
    return ch.isascii() and (ch.isalnum() or ch in "_/.-")


def embedded_lexicon_dir() -> Traversable:
    """The lexicon files shipped in the package."""
    return resources.files("moderation") / "data" / "lexicon"


def _files(folder: Traversable | Path) -> Iterable[Traversable | Path]:
    return sorted((f for f in folder.iterdir() if f.name.endswith(".tsv")), key=lambda f: f.name)


def load_lexicon(normalizer: Normalizer, folder: Traversable | Path | None = None) -> Lexicon:
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
    return Lexicon(entries, f"{declared}+{digest.hexdigest()[:10]}", normalizer)
