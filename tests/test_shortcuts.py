"""The hot path's shortcuts change no answer: each equals the long way it skips."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from moderation import _scan
from moderation.compose import load_prefilter
from moderation.normalize import (
    CHINESE_DIGITS,
    NUMERAL_RUN,
    UNITS,
    Normalized,
    reference_char_classes,
)
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
_PINYIN_WORDS = [
    "sha", "bi", "shabi", "cao", "ni", "ma", "you", "see", "china", "die", "this",
    "s", "i", "uo", "xieng", "jv", "van",  # bopomofo's spellings
]  # fmt: skip
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
    view = PHONETICS.reference_view(text, every_word=every_word)
    return sorted((view.span(s, e), key) for s, e, key in LEXICON._sounds.find(view.codes))


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
    assert bool(PHONETICS.reference_view(text).latin) is rewritten


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_PINYIN_PIECES, max_size=10))
def test_phonetic_view_in_c_equals_its_reference(pieces: list[str]) -> None:
    """The view in one C pass is the Python view: codes, spans and Latin positions."""
    text = "".join(pieces)
    for view in (text, NORMALIZER(text).text):
        assert PHONETICS.view(view) == PHONETICS.reference_view(view)
        assert PHONETICS.view(view, bopomofo=True) == PHONETICS.reference_view(view, bopomofo=True)


def _c_passes_equal_references(text: str) -> None:
    """Each pass in C (``moderation._scan``) gives what its Python reference gives."""
    folded = NORMALIZER.reference_translate(text)
    assert NORMALIZER._translate(text) == folded
    assert PHONETICS.syllables(text) == PHONETICS.reference_syllables(text)
    for view in (text, folded, NORMALIZER(text).text):
        if view is not None:
            assert NORMALIZER.context_steps(view) == NORMALIZER.reference_context_steps(view)
            assert PHONETICS.view(view) == PHONETICS.reference_view(view)
            assert PHONETICS.view(view, bopomofo=True) == PHONETICS.reference_view(
                view, bopomofo=True
            )
            assert _scan.char_classes(view) == reference_char_classes(view)
    every_step_in_c = NORMALIZER._full(text, NORMALIZER._translate(text))
    assert _picture(every_step_in_c) == _picture(NORMALIZER.full(text))


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=_ALPHABET + "aAbsz_~·\n\r\t…、：" + "".join(UNITS), max_size=16))
def test_c_passes_equal_their_references(text: str) -> None:
    """Separators, repeats, leetspeak, digit words and folding, in every combination."""
    _c_passes_equal_references(text)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=40))
def test_c_passes_equal_their_references_on_any_text(text: str) -> None:
    """The same on any Unicode text (surrogates, astral planes, U+FFFF, private use)."""
    _c_passes_equal_references(text)


@pytest.mark.parametrize(
    "text",
    [
        *(
            "\uffff",
            "a\U0010ffff",
            "\ud800x",
            "傻\u200b逼",
            "A5ß",
            "x" * 100_000,
            "傻" * 3,
            "",
            "13",
        ),
        *("sha" * 10, "sha" * 11, "shabi" * 20_000, "you " * 1000, "a.b:c@d9", "zhuang-\U00020000"),
    ],
)
def test_c_passes_on_edge_texts(text: str) -> None:
    """Texts at the edges of the tables and of the steps' conditions."""
    _c_passes_equal_references(text)


def test_c_passes_on_bench_and_corpus_texts() -> None:
    """The same on mixed messages and on every corpus case."""
    for text in messages(3000, 0.3, seed=29) + [case.text for case in load()]:
        _c_passes_equal_references(text)


@pytest.mark.parametrize("numeral", list(CHINESE_DIGITS))
def test_numeral_runs_are_classed_alike_in_c(numeral: str) -> None:
    """``_scan.char_classes`` knows every Chinese numeral ``CHINESE_DIGITS`` holds: five in a
    row set NUMERALS, four or a broken run do not, in C as in the reference."""
    for text, expected in (
        (f"加我{numeral * NUMERAL_RUN}", True),
        (f"加我{numeral * (NUMERAL_RUN - 1)}", False),
        (f"{numeral * 3}a{numeral * 3}", False),
    ):
        assert bool(_scan.char_classes(text) & _scan.NUMERALS) is expected, text
        assert bool(reference_char_classes(text) & _scan.NUMERALS) is expected, text
