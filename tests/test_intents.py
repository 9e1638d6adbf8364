"""Harm intents (moderation/data/intents.tsv): the file, and what a match becomes."""

from __future__ import annotations

from pathlib import Path

import pytest

from moderation.compose import load_prefilter
from moderation.domain import Category, Source
from moderation.errors import ConfigError
from moderation.intents import MAX_INTENT_HITS, IntentDetector, load_intents


def test_the_shipped_intents_load_and_each_has_an_example_in_the_corpus() -> None:
    """Every shipped intent compiles and is exercised by a corpus case (a dead pattern would
    go unnoticed otherwise)."""
    from tests.corpus_cases import load

    intents = load_intents()
    detector = IntentDetector(intents)
    normalizer, _ = load_prefilter()
    seen = {
        finding.evidence.term
        for case in load()
        for finding in detector.detect(normalizer(case.text), "GLOBAL")
    }
    assert {intent.name for intent in intents} <= seen


def test_a_match_is_a_finding_with_offsets_into_the_callers_text() -> None:
    """Evidence points into the original text, through the normalizer's folding."""
    normalizer, _ = load_prefilter()
    detector = IntentDetector(load_intents())
    text = "朋友们：🔪了你全家"
    findings = {f.rule: f for f in detector.detect(normalizer(text), "GLOBAL")}
    assert set(findings) == {"intent.kill_family", "intent.knife_you"}
    finding = findings["intent.kill_family"]
    assert finding.category is Category.VIOLENCE
    assert finding.source is Source.PATTERN
    assert finding.rule == "intent.kill_family"
    assert text[finding.evidence.start : finding.evidence.end] == "🔪了你全家"
    assert not finding.ambiguous


def test_matches_per_text_are_bounded() -> None:
    """A text that repeats an intent keeps at most MAX_INTENT_HITS findings."""
    normalizer, _ = load_prefilter()
    detector = IntentDetector(load_intents())
    findings = detector.detect(normalizer("杀你全家。" * 1000), "GLOBAL")
    assert len(findings) == MAX_INTENT_HITS


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ("a\tVIOLENCE\tthreat\tHIGH\t-\tx", "expected 7 tab-separated columns"),
        ("a\tVIOLENT\tthreat\tHIGH\t-\tx\tx", "unknown category 'VIOLENT'"),
        ("a\tVIOLENCE\tthreat\tHUGE\t-\tx\tx", "unknown severity 'HUGE'"),
        ("a\tVIOLENCE\tthreat\tHIGH\tmaybe\tx\tx", "flags must be 'ambiguous' or '-'"),
        ("a\tVIOLENCE\tthreat\tHIGH\t-\t\tx", "at least one word the regex needs"),
        ("a\tVIOLENCE\tthreat\tHIGH\t-\tx\t(x", "the regex does not compile"),
        ("a\tVIOLENCE\tthreat\tHIGH\t-\tx\t(x)", "capturing groups"),
        (
            "a\tVIOLENCE\tthreat\tHIGH\t-\tx\tx\na\tVIOLENCE\tthreat\tHIGH\t-\ty\ty",
            "duplicate intent",
        ),
    ],
)
def test_a_bad_intents_file_is_refused_naming_the_line(
    tmp_path: Path, line: str, says: str
) -> None:
    """Each kind of mistake is a ConfigError with the file and line."""
    path = tmp_path / "intents.tsv"
    path.write_text("# name\tcategory\tsubcategory\tseverity\tflags\tneeds\tregex\n" + line + "\n")
    with pytest.raises(ConfigError, match=says) as caught:
        load_intents(path)
    assert f"{path}:" in str(caught.value)


def test_an_intent_written_with_homophones_is_found_by_sound_and_only_escalates() -> None:
    """沙你全家 (沙 for 杀) is the same threat read aloud: found, marked a homophone, and
    ambiguous even where the intent written plainly decides."""
    normalizer, lexicon = load_prefilter()
    detector = IntentDetector(load_intents(), lexicon.phonetics)
    (plain,) = detector.detect(normalizer("杀你全家"), "GLOBAL")
    (sounded,) = detector.detect(normalizer("沙你全家"), "GLOBAL")
    assert plain.rule == sounded.rule == "intent.kill_family"
    assert not plain.ambiguous
    assert sounded.ambiguous
    assert sounded.evidence.variant.name == "HOMOPHONE"
    assert detector.detect(normalizer("我要从北京去上海"), "GLOBAL") == []
