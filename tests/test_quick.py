"""The quick screen never hides a finding: whatever it passes, the full detectors pass too."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from moderation.compose import load_prefilter
from moderation.detect import DETECTORS, QuickScreen
from tests.corpus_cases import load

NORMALIZER, LEXICON = load_prefilter()
QUICK = QuickScreen(NORMALIZER, LEXICON)
FULL = [factory(LEXICON) for factory in DETECTORS.values()]


def full_findings(text: str, jurisdiction: str = "CN") -> list[object]:
    """What the full path finds in ``text``."""
    normalized = NORMALIZER(text)
    return [f for d in FULL for f in d.detect(normalized, jurisdiction)]


def _alphabet() -> str:
    chars = {c for e in LEXICON.entries for c in e.term}
    return "".join(sorted(chars)) + " *.-_,，。!?😀🐶🌸\u200b0123456789@:/ＡＢｓｂ發媽儍"


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=_alphabet(), max_size=12))
def test_quick_pass_means_no_finding(text: str) -> None:
    """Random mixes of lexicon characters, separators and disguises: a pass is always clean."""
    view, clean = QUICK(text)
    if view is not None:
        assert view.text == NORMALIZER(text).text  # the cheap view is the normalized view
        assert view.span(0, len(view.text)) == NORMALIZER(text).span(0, len(view.text))
    if clean:
        assert full_findings(text) == []


@pytest.mark.parametrize("case", load(), ids=lambda c: f"{c.line}")
def test_quick_never_passes_a_corpus_case_with_findings(case: object) -> None:
    """No corpus text with a finding gets through the quick screen."""
    text = case.text  # type: ignore[attr-defined]
    if full_findings(text, case.jurisdiction):  # type: ignore[attr-defined]
        assert QUICK(text)[1] is False


def test_quick_passes_most_plain_text() -> None:
    """The point of it: most everyday clean text is answered by the quick screen."""
    from tests.bench import CLEAN

    assert sum(QUICK(t)[1] for t in CLEAN) / len(CLEAN) > 0.8


def test_quick_never_passes_a_bench_message_with_findings() -> None:
    """Over 3,000 mixed messages, nothing the full path flags passes the quick screen."""
    from tests.bench import messages

    for text in messages(3000, 0.3, seed=19):
        if QUICK(text)[1]:
            assert full_findings(text) == [], text
