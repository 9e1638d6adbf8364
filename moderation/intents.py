"""Harm intents: phrases a word list cannot hold, as regular expressions over normalized text.

"Who does what, to whom or with what": 遗书已经写好了, 在他车上装个炸弹, 学生妹14岁可约. Each
intent is one line of ``data/intents.tsv`` with its category, severity, whether it only
escalates, and the words it needs: one automaton pass finds which intents a text could hold,
and only their regexes are tried (most texts hold none).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import daachorse

from moderation.domain import Category, Evidence, Finding, Severity, Source
from moderation.errors import ConfigError
from moderation.normalize import Normalized

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


class IntentDetector:
    """Finds the intents of ``data/intents.tsv`` in the normalized text."""

    name = "intents"

    def __init__(self, intents: tuple[Intent, ...]) -> None:
        self.intents = intents
        self._regexes = [re.compile(intent.regex) for intent in intents]
        by_need: dict[str, list[int]] = {}
        for index, intent in enumerate(intents):
            for need in intent.needs:
                by_need.setdefault(need, []).append(index)
        self._needs = list(by_need)
        self._wanted_by = [tuple(by_need[need]) for need in self._needs]
        self._automaton = daachorse.CharwiseDoubleArrayAhoCorasick(self._needs)

    def detect(self, text: Normalized, jurisdiction: str) -> list[Finding]:
        """A finding per intent match (at most ``MAX_INTENT_HITS``), trying only the intents
        whose needed words the text holds."""
        norm = text.text
        found = self._automaton.find_overlapping(norm)
        if not found:
            return []
        wanted = sorted({index for _, _, need in found for index in self._wanted_by[need]})
        findings: list[Finding] = []
        matches = (
            (match, self.intents[index])
            for index in wanted
            for match in self._regexes[index].finditer(norm)
        )
        for match, intent in matches:
            start, end = text.span(match.start(), match.end())
            findings.append(
                Finding(
                    intent.category,
                    intent.subcategory,
                    intent.severity,
                    CONFIDENCE_INTENT_AMBIGUOUS if intent.ambiguous else CONFIDENCE_INTENT,
                    Source.PATTERN,
                    Evidence(
                        start,
                        end,
                        text.original[start:end],
                        intent.name,
                        text.variant(match.start(), match.end()),
                    ),
                    f"intent.{intent.name}",
                    intent.ambiguous,
                )
            )
            if len(findings) >= MAX_INTENT_HITS:
                break
        return findings


def load_intents(path: Path | None = None) -> tuple[Intent, ...]:
    """The intents of ``path`` (default: the shipped file); ``ConfigError`` naming the line
    of a malformed one (wrong columns, unknown category or severity, a regex that does not
    compile, a duplicate name)."""
    if path is None:
        raw = resources.files("moderation").joinpath("data/intents.tsv").read_text("utf-8")
        where = "moderation/data/intents.tsv"
    else:
        raw, where = path.read_text(encoding="utf-8"), str(path)
    intents: list[Intent] = []
    names: set[str] = set()
    for number, line in enumerate(raw.splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        cells = line.split("\t")
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
