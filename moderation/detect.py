"""Detectors: normalized text -> findings, each with category, severity, confidence, evidence.

A detector is a small object built once at start (its automata and patterns compiled) whose
``detect`` is cheap and pure. ``DETECTORS`` is the registry the composition root reads.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Protocol

from moderation.domain import Evidence, Finding, Source
from moderation.lexicon import Lexicon
from moderation.normalize import Normalized

#: Confidence of a lexicon hit by whether the entry is ambiguous alone.
CONFIDENCE_CLEAR = 0.95
CONFIDENCE_AMBIGUOUS = 0.5


class Detector(Protocol):
    """Finds risks in a normalized text."""

    name: str

    def detect(self, text: Normalized, jurisdiction: str) -> list[Finding]:
        """Every finding in ``text`` under ``jurisdiction``; pure, never raises on any text."""
        ...


class LexiconDetector:
    """Lexicon terms over the normalized characters."""

    name = "lexicon"

    def __init__(self, lexicon: Lexicon) -> None:
        self._lexicon = lexicon

    def detect(self, text: Normalized, jurisdiction: str) -> list[Finding]:
        """Findings for every lexicon match active under ``jurisdiction``."""
        findings = []
        for match in self._lexicon.find(text.text):
            start, end = text.span(match.start, match.end)
            variant = text.variant(match.start, match.end)
            for entry in match.entries:
                if not entry.applies_to(jurisdiction):
                    continue
                findings.append(
                    Finding(
                        category=entry.category,
                        subcategory=entry.subcategory,
                        severity=entry.severity,
                        confidence=CONFIDENCE_AMBIGUOUS if entry.ambiguous else CONFIDENCE_CLEAR,
                        source=Source.LEXICON,
                        evidence=Evidence(
                            start, end, text.original[start:end], entry.term, variant
                        ),
                        rule=entry.rule,
                        ambiguous=entry.ambiguous or entry.group,
                    )
                )
        return findings


#: Registry of detector factories by name; each takes the compiled lexicon.
DETECTORS: Mapping[str, Callable[[Lexicon], Detector]] = {
    "lexicon": LexiconDetector,
}
