"""The prefilter against the project's corpus (tests/corpus/cases.tsv), heuristics only."""

from __future__ import annotations

import pytest

from moderation.pipeline import Moderator
from tests.corpus_cases import Case, Score, judge, load

CASES = load()


def _param(case: Case) -> object:
    marks = [pytest.mark.xfail(strict=True, reason=case.known)] if case.known else []
    return pytest.param(case, id=f"{case.line}-{case.expect}-{case.note}", marks=marks)


def test_corpus_is_large_and_covers_every_category() -> None:
    """The corpus holds at least 400 cases, harmful ones in every category, and negatives."""
    assert len(CASES) >= 400
    harmful = {c.category for c in CASES if c.harmful}
    assert harmful == {
        "ABUSE", "HATE", "SEXUAL", "MINOR_SAFETY", "VIOLENCE", "SELF_HARM",
        "EXTREMISM", "ILLEGAL", "SPAM", "POLITICAL", "PII",
    }  # fmt: skip
    assert sum(not c.harmful for c in CASES) >= 150


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_case(moderator: Moderator, case: Case) -> None:
    """Each case meets its expectation (block / flag / allow / pass, category, variant)."""
    outcome = judge(moderator, case)
    assert outcome.problems() == []


def test_corpus_targets(moderator: Moderator) -> None:
    """Harmful caught >= 95%, benign blocked <= 1%, benign escalated <= 25%, category >= 97%."""
    score = Score.of([judge(moderator, case) for case in CASES])
    assert score.caught >= 0.95, score
    assert score.benign_blocked <= 0.01, score
    assert score.benign_escalated <= 0.25, score
    assert score.right_category >= 0.97, score
