"""The prefilter corpus (tests/corpus/cases.tsv) as data: load it, judge a case, score a run."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from moderation.domain import Content, Decision, EscalationMode, ModerationResult, Route
from moderation.pipeline import Moderator

CORPUS = Path(__file__).parent / "corpus" / "cases.tsv"
HARMFUL = ("block", "flag")


@dataclass(frozen=True, slots=True)
class Case:
    """One corpus line."""

    line: int
    expect: str
    category: str
    jurisdiction: str
    variant: str
    text: str
    note: str
    known: str
    """Why this case is a known miss (empty when it must pass)."""

    @property
    def harmful(self) -> bool:
        """True for cases that must be caught."""
        return self.expect in HARMFUL


def load(path: Path = CORPUS) -> list[Case]:
    """Every case in the corpus; ``\\uXXXX`` escapes stand for invisible characters."""
    cases = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not raw.strip() or raw.startswith("#"):
            continue
        cells = raw.split("\t")
        expect, category, jurisdiction, variant, text, note = cells[:6]
        text = re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), text)
        known = cells[6] if len(cells) > 6 else ""
        cases.append(Case(number, expect, category, jurisdiction, variant, text, note, known))
    return cases


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the heuristics did with a case."""

    case: Case
    result: ModerationResult
    route: Route

    @property
    def blocked(self) -> bool:
        """Decided BLOCK."""
        return self.result.decision is Decision.BLOCK

    @property
    def escalated(self) -> bool:
        """Would have asked the model."""
        return self.route is Route.AMBIGUOUS

    @property
    def caught(self) -> bool:
        """Not let through on its own: blocked, held for review, or escalated to the model."""
        return self.result.decision is not Decision.ALLOW or self.escalated

    @property
    def categories(self) -> set[str]:
        """Categories of the labels."""
        return {label.category.name for label in self.result.labels}

    @property
    def variants(self) -> set[str]:
        """Variant kinds of all evidence."""
        return {e.variant.name for label in self.result.labels for e in label.evidence}

    def problems(self) -> list[str]:
        """Why this outcome does not meet the case's expectation (empty when it does)."""
        case, wrong = self.case, []
        if case.expect == "block" and not self.blocked:
            wrong.append(f"expected BLOCK, got {self.result.decision.name}")
        if case.expect == "flag" and not self.caught:
            wrong.append(f"expected BLOCK, REVIEW or escalation, got {self.result.decision.name}")
        if case.harmful and case.category not in self.categories:
            wrong.append(f"expected category {case.category}, got {sorted(self.categories)}")
        if (
            case.harmful
            and case.variant not in ("EXACT", "-")
            and case.variant not in self.variants
        ):
            wrong.append(f"expected variant {case.variant}, got {sorted(self.variants)}")
        if case.expect == "allow" and (
            self.result.decision is not Decision.ALLOW or self.escalated
        ):
            wrong.append(
                f"expected ALLOW without the model, got {self.result.decision.name}"
                f"{' (escalated)' if self.escalated else ''}"
            )
        if case.expect == "pass" and self.blocked:
            wrong.append("expected not BLOCK, got BLOCK")
        return wrong


def judge(moderator: Moderator, case: Case) -> Outcome:
    """Run one case through the heuristics (the model forbidden)."""
    screening = moderator.screen(
        Content(text=case.text, jurisdiction=case.jurisdiction, escalation=EscalationMode.NEVER)
    )
    return Outcome(case, moderator.decide_now(screening), screening.triage.route)


@dataclass(frozen=True, slots=True)
class Score:
    """The corpus targets of the prefilter."""

    caught: float
    """Harmful cases blocked, held for review, or escalated."""
    benign_blocked: float
    benign_escalated: float
    right_category: float
    """Blocked harmful cases whose labels include the expected category."""

    @classmethod
    def of(cls, outcomes: list[Outcome]) -> Score:
        """Score a run over the corpus."""
        harmful = [o for o in outcomes if o.case.harmful]
        benign = [o for o in outcomes if not o.case.harmful]
        blocked = [o for o in harmful if o.blocked]
        return cls(
            caught=sum(o.caught for o in harmful) / len(harmful),
            benign_blocked=sum(o.blocked for o in benign) / len(benign),
            benign_escalated=sum(o.escalated for o in benign) / len(benign),
            right_category=sum(o.case.category in o.categories for o in blocked) / len(blocked),
        )
