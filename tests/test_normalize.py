"""Normalization: named steps, offsets back into the caller's text, and properties on any text."""

from __future__ import annotations

import itertools
import time

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from moderation import _scan
from moderation.domain import Variant
from moderation.normalize import _C_STEP, STEPS, Normalizer, in_step_order


@pytest.fixture(scope="module")
def normalize() -> Normalizer:
    """One normalizer for the module (its tables take a moment to build)."""
    return Normalizer()


@pytest.mark.parametrize(
    ("text", "expected", "steps", "variant"),
    [
        ("傻 逼", "傻逼", {"separators"}, Variant.SEPARATOR),
        ("傻*逼", "傻逼", {"separators"}, Variant.SEPARATOR),
        ("傻\u200b逼", "傻逼", {"invisible"}, Variant.SEPARATOR),
        ("傻🌸逼", "傻逼", {"separators"}, Variant.SEPARATOR),
        ("ＳＢ", "sb", {"nfkc", "casefold"}, Variant.WIDTH),
        ("𝐬𝐛", "sb", {"nfkc"}, Variant.WIDTH),
        ("ⓢⓑ", "sb", {"nfkc"}, Variant.WIDTH),
        ("сука", "cyka", {"confusables"}, Variant.CONFUSABLE),
        ("ㄋㄇㄙㄌ", "nmsl", {"bopomofo"}, Variant.ABBREVIATION),
        ("發財", "发财", {"t2s"}, Variant.TRADITIONAL),
        ("儍逼", "傻逼", {"glyphs"}, Variant.GLYPH),
        ("草泥🐴", "草泥马", {"emoji"}, Variant.EMOJI),
        ("傻傻傻逼逼逼", "傻逼", {"repeats"}, Variant.REPEAT),
        ("b1tch", "bitch", {"leetspeak"}, Variant.LEETSPEAK),
        ("你妈4了", "你妈死了", {"digits"}, Variant.DIGIT),
        ("装13", "装b", {"digits"}, Variant.DIGIT),
        ("f u c k", "fuck", {"separators"}, Variant.SEPARATOR),
        ("今天天气真好", "今天天气真好", set(), Variant.EXACT),
    ],
)
def test_steps(
    normalize: Normalizer, text: str, expected: str, steps: set[str], variant: Variant
) -> None:
    """Each disguise is undone by its named step, which reports itself, and the span is whole."""
    result = normalize(text)
    assert result.text == expected
    assert set(result.steps) >= steps
    assert result.variant(0, len(result.text)) is variant
    assert result.span(0, len(result.text)) == (0, len(text))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("大傻，逼他走", "大傻,逼他走"),  # sentence punctuation is a real boundary
        ("hello world", "hello world"),  # two Latin words stay two words
        ("他妈妈的包", "他妈妈的包"),  # two in a row is a word, not a disguise
        ("我今年4岁", "我今年4岁"),  # digits before a measure word stay digits
        ("去4s店", "去4s店"),  # digits next to Latin letters stay digits
        ("13888889999", "13888889999"),  # repeated digits are not collapsed
        ("www.example.com", "w.example.com"),  # the matching view; patterns read the folded one
    ],
)
def test_real_boundaries_are_kept(normalize: Normalizer, text: str, expected: str) -> None:
    """Normalization does not invent words across real boundaries."""
    assert normalize(text).text == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("傻\n逼", "傻逼"),  # a word down the page, a character a line
        ("你就是个傻\n逼", "你就是个傻逼"),  # the last character on a line of its own
        ("傻\n逼你", "傻逼你"),  # the first character on a line of its own
        ("傻\n逼\n你", "傻逼你"),
        ("大傻\n逼他", "大傻\n逼他"),  # two lines that only meet across the break
        ("今天\n天气", "今天\n天气"),
        ("好\n", "好\n"),
        ("a\n逼", "a\n逼"),  # only between Chinese characters
    ],
)
def test_a_line_break_inside_a_word(normalize: Normalizer, text: str, expected: str) -> None:
    """A line break is dropped only between two Chinese characters one of which stands on a
    line of its own; the C pass and the Python reference agree; offsets keep the break."""
    assert normalize(text).text == expected
    assert normalize.full(text).text == expected
    if "傻逼" in expected:
        result = normalize(text)
        at = result.text.index("傻逼")
        start, end = result.span(at, at + 2)
        assert text[start:end] == "傻\n逼"


def test_offsets_point_into_the_original(normalize: Normalizer) -> None:
    """Every normalized character maps to the original span it came from."""
    original = "你 就 是 个 傻\u200b逼！"
    result = normalize(original)
    index = result.text.index("傻逼")
    start, end = result.span(index, index + 2)
    assert original[start:end] == "傻\u200b逼"


def test_steps_table_is_ordered_and_named() -> None:
    """The step table names every step once, context-free steps first."""
    names = [step.name for step in STEPS]
    assert len(names) == len(set(names))
    assert names.index("t2s") < names.index("separators") < names.index("digits")


def test_steps_is_the_table_that_runs() -> None:
    """The folding and the C passes run the steps in STEPS's order, and code for a step STEPS
    does not name stops the start; the C passes refuse an order that is not each step once."""
    normalizer = Normalizer()
    ran = [name for name, _ in normalizer._folder._step_table] + [
        name for name, _ in normalizer._context_steps
    ]
    assert ran == [step.name for step in STEPS]
    steps_in_c = (
        _scan.STEP_SEPARATORS,
        _scan.STEP_REPEATS,
        _scan.STEP_LEETSPEAK,
        _scan.STEP_DIGITS,
    )
    assert normalizer._c_order == steps_in_c
    assert set(_C_STEP) == {name for name, _ in normalizer._context_steps}
    with pytest.raises(RuntimeError, match=r"context steps \['spaces'\] are not in STEPS"):
        in_step_order("context", {"separators": 1, "spaces": 2})
    for order in ((1, 2, 4), (1, 1, 4, 8), (1, 2, 4, 16)):
        with pytest.raises((TypeError, ValueError)):
            _scan.apply_context_steps(
                "a", None, None, {}, "", (Variant.REPEAT, Variant.LEETSPEAK, Variant.DIGIT), order
            )


TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=300)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(TEXT)
def test_never_raises_and_offsets_are_monotone_and_in_range(text: str) -> None:
    """Any text normalizes; starts never decrease; spans stay inside the original."""
    result = NORMALIZE(text)
    n = len(result.text)
    spans = [result.span(i, i + 1) for i in range(n)]
    for (start, end), (next_start, _) in itertools.pairwise(spans):
        assert start <= next_start
        assert 0 <= start < end <= len(text)
    if spans:
        assert 0 <= spans[-1][0] < spans[-1][1] <= len(text)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(TEXT)
@example("A5ß")  # leetspeak and a folding to two letters make a run: ``asss`` -> ``as``
def test_idempotent(text: str) -> None:
    """Normalizing the normalized text changes nothing more."""
    once = NORMALIZE(text).text
    assert NORMALIZE(once).text == once


@pytest.mark.parametrize(
    "text",
    [
        "傻" * 100_000,
        "a" * 100_000,
        "4" * 100_000,
        "\u200b" * 100_000,
        "傻 " * 50_000,
        "f " * 50_000,
        ("傻\u0000逼\x07𝐬ⓑ🐶發4" * 10_000),
        "".join(chr(c) for c in range(0x20, 0x30000, 3) if not 0xD800 <= c <= 0xDFFF),
    ],
    ids=["han", "latin", "digit", "zero-width", "spaced-han", "spaced-letters", "mixed", "planes"],
)
def test_pathological_input_is_linear(normalize: Normalizer, text: str) -> None:
    """Huge repetitions and mixed scripts finish quickly (linear time, generous bound)."""
    began = time.perf_counter()
    result = normalize(text)
    assert time.perf_counter() - began < 5.0
    assert len(result.text) <= len(text) * 3


NORMALIZE = Normalizer()
