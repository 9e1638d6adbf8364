"""The hot path's shortcuts change no answer: each equals the long way it skips."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from moderation.compose import load_prefilter
from moderation.normalize import Normalized
from tests.bench import messages
from tests.corpus_cases import load

NORMALIZER, LEXICON = load_prefilter()
PHONETICS = LEXICON._phonetics

#: Lexicon characters, separators of every kind, digits, leetspeak, look-alikes, emoji, a
#: character above the table and one the Unicode tables of this Python do not know yet.
_ALPHABET = (
    "".join(sorted({c for e in LEXICON.entries for c in e.term}))
    + " *.-_,，。!?😀🐶🌸\u200b\u200d0123456789@$:/ＡＢｓｂ發媽儍éж𠀀\U0002ebe1哈"
)
_PINYIN_WORDS = ["sha", "bi", "shabi", "cao", "ni", "ma", "you", "see", "china", "die", "this"]
_PINYIN_PIECES = st.one_of(
    st.sampled_from(_PINYIN_WORDS),
    st.sampled_from(list("傻逼草泥马你妈死了他的")),
    st.sampled_from([" ", "-", ".", "'", "，", "1", "x"]),
)


def _picture(result: Normalized) -> tuple[object, ...]:
    """Everything a detector can read from a normalized text."""
    return (
        result.text,
        [result.span(i, i + 1) for i in range(len(result.text))],
        result.steps,
        dict(result.marks),
        result.folded,
        [result.folded_span(i, i + 1) for i in range(len(result.folded))],
    )


def _sound_matches(text: str, *, every_word: bool) -> list[tuple[tuple[int, int], int]]:
    view = PHONETICS.view(text, every_word=every_word)
    return sorted((view.span(s, e), id(p)) for s, e, p in LEXICON._sounds.find(view.codes))


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=_ALPHABET, max_size=14))
def test_normalize_shortcut_equals_every_step(text: str) -> None:
    """A text the context steps would not change is only folded, and nothing differs."""
    assert _picture(NORMALIZER(text)) == _picture(NORMALIZER.full(text))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=40))
def test_normalize_shortcut_equals_every_step_on_any_text(text: str) -> None:
    """The same on any Unicode text."""
    assert _picture(NORMALIZER(text)) == _picture(NORMALIZER.full(text))


def test_normalize_shortcut_on_bench_and_corpus_texts() -> None:
    """The same on mixed messages and on every corpus case."""
    texts = messages(3000, 0.3, seed=23) + [case.text for case in load()]
    for text in texts:
        assert _picture(NORMALIZER(text)) == _picture(NORMALIZER.full(text)), text


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_PINYIN_PIECES, max_size=8))
def test_lone_pinyin_words_change_no_sound_match(pieces: list[str]) -> None:
    """Leaving a one-syllable word that stands alone as letters finds the same keys."""
    text = NORMALIZER("".join(pieces)).text
    assert _sound_matches(text, every_word=False) == _sound_matches(text, every_word=True)


@pytest.mark.parametrize(
    ("text", "rewritten"),
    [
        ("see you tomorrow", False),  # "you" stands alone among English words
        ("you sha", True),  # next to another pinyin word
        ("傻bi", True),  # next to a Chinese character
        ("shabi", True),  # two syllables in one word
    ],
)
def test_which_pinyin_words_are_rewritten(text: str, rewritten: bool) -> None:
    """Only words that can take part in a key become syllables."""
    assert bool(PHONETICS.view(text).latin) is rewritten
