"""Harm intents: phrases a word list cannot hold, as regular expressions over normalized text.

"Who does what, to whom or with what": 遗书已经写好了, 在他车上装个炸弹, 学生妹14岁可约. Each
intent is one line of ``data/intents.tsv`` with its category, severity, whether it only
escalates, and the words it needs: one automaton pass finds which intents a text could hold,
and only their regexes are tried (most texts hold none). The same runs again over the text
read as syllables, so a homophone does not hide an intent.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import daachorse

from moderation import datafile
from moderation.domain import Category, Evidence, Finding, Severity, Source, Variant
from moderation.errors import ConfigError
from moderation.normalize import Normalized
from moderation.phonetic import Phonetics

#: Confidence of an intent that decides; an ambiguous one is below every policy's threshold.
CONFIDENCE_INTENT = 0.9
CONFIDENCE_INTENT_AMBIGUOUS = 0.5
#: Matches of one text kept at most (the evidence, not the signal, grows past a few).
MAX_INTENT_HITS = 8


@dataclass(frozen=True, slots=True)
class Intent:
    """One intent: a named pattern with what it means."""

    name: str
    category: Category
    subcategory: str
    severity: Severity
    ambiguous: bool
    needs: tuple[str, ...]
    """Words of which a text must hold one for ``regex`` to be tried."""
    regex: str


class _Pass:
    """The intents' regexes and needed words over one view of the text."""

    __slots__ = ("automaton", "regexes", "wanted_by")

    def __init__(self, intents: tuple[Intent, ...], view: Callable[[str], str]) -> None:
        self.regexes = [re.compile(view(intent.regex)) for intent in intents]
        by_need: dict[str, list[int]] = {}
        for index, intent in enumerate(intents):
            for need in intent.needs:
                by_need.setdefault(view(need), []).append(index)
        self.wanted_by = [tuple(indices) for indices in by_need.values()]
        self.automaton = daachorse.CharwiseDoubleArrayAhoCorasick(list(by_need))

    def matches(self, text: str) -> Iterator[tuple[int, re.Match[str]]]:
        """(intent index, match) for each intent whose needed words ``text`` holds."""
        found = self.automaton.find_overlapping(text)
        if not found:
            return
        wanted = sorted({index for _, _, need in found for index in self.wanted_by[need]})
        for index in wanted:
            for match in self.regexes[index].finditer(text):
                yield index, match


class IntentDetector:
    """Finds the intents of ``data/intents.tsv`` in the normalized text, as written and, with
    ``phonetics``, by sound: every Chinese character of the text and of the patterns read as
    its syllable, so 卧要从天台跳下去 (卧 for 我) still matches. A match by sound alone only
    escalates."""

    name = "intents"

    def __init__(self, intents: tuple[Intent, ...], phonetics: Phonetics | None = None) -> None:
        self.intents = intents
        self._written = _Pass(intents, lambda text: text)
        self._phonetics = phonetics
        self._sounded = None if phonetics is None else _Pass(intents, phonetics.syllables)

    def detect(self, text: Normalized, jurisdiction: str) -> list[Finding]:
        """A finding per intent match (at most ``MAX_INTENT_HITS``)."""
        norm = text.text
        findings: list[Finding] = []
        seen: set[tuple[int, int, int]] = set()
        for index, match in self._written.matches(norm):
            seen.add((index, match.start(), match.end()))
            findings.append(self._finding(text, self.intents[index], match, sounded=False))
            if len(findings) >= MAX_INTENT_HITS:
                return findings
        if self._sounded is None or self._phonetics is None:
            return findings
        for index, match in self._sounded.matches(self._phonetics.syllables(norm)):
            if (index, match.start(), match.end()) in seen:
                continue
            findings.append(self._finding(text, self.intents[index], match, sounded=True))
            if len(findings) >= MAX_INTENT_HITS:
                break
        return findings

    @staticmethod
    def _finding(text: Normalized, intent: Intent, match: re.Match[str], sounded: bool) -> Finding:
        ambiguous = intent.ambiguous or sounded
        start, end = text.span(match.start(), match.end())
        variant = Variant.HOMOPHONE if sounded else text.variant(match.start(), match.end())
        return Finding(
            intent.category,
            intent.subcategory,
            intent.severity,
            CONFIDENCE_INTENT_AMBIGUOUS if ambiguous else CONFIDENCE_INTENT,
            Source.PATTERN,
            Evidence(start, end, text.original[start:end], intent.name, variant),
            f"intent.{intent.name}",
            ambiguous,
        )


def load_intents(path: Path | None = None) -> tuple[Intent, ...]:
    """The intents of ``path`` (default: the shipped file); ``ConfigError`` naming the line
    of a malformed one (wrong columns, unknown category or severity, a regex that does not
    compile, a duplicate name)."""
    raw, where = datafile.read("intents.tsv", path)
    intents: list[Intent] = []
    names: set[str] = set()
    for number, cells in datafile.rows(raw):
        at = f"{where}:{number}"
        if len(cells) != 7:
            raise ConfigError(f"{at}: expected 7 tab-separated columns, got {len(cells)}")
        name, category, subcategory, severity, flags, needs, regex = cells
        words = tuple(word for word in needs.split(",") if word)
        if not words:
            raise ConfigError(f"{at}: name at least one word the regex needs")
        if category not in Category.__members__:
            raise ConfigError(f"{at}: unknown category {category!r}")
        if severity not in Severity.__members__:
            raise ConfigError(f"{at}: unknown severity {severity!r}")
        if flags not in ("-", "ambiguous"):
            raise ConfigError(f"{at}: flags must be 'ambiguous' or '-', got {flags!r}")
        if name in names:
            raise ConfigError(f"{at}: duplicate intent {name!r}")
        try:
            compiled = re.compile(regex)
        except re.error as exc:
            raise ConfigError(f"{at}: the regex does not compile: {exc}") from exc
        if compiled.groups:
            raise ConfigError(f"{at}: use (?:...) groups only; the regex has capturing groups")
        names.add(name)
        intents.append(
            Intent(
                name,
                Category[category],
                subcategory,
                Severity[severity],
                flags == "ambiguous",
                words,
                regex,
            )
        )
    return tuple(intents)
