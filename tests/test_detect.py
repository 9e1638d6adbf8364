"""Detectors: patterns for personal data and contact handles, and group words in company."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from moderation.detect import LexiconDetector, PatternDetector, kept_by_trees, kept_pairwise
from moderation.domain import Category, Evidence, Finding, Severity, Source, Variant
from moderation.lexicon import load_lexicon
from moderation.normalize import Normalizer
from moderation.phonetic import Phonetics

NORMALIZER = Normalizer()
PATTERNS = PatternDetector()
LEXICON = LexiconDetector(load_lexicon(NORMALIZER, Phonetics()))


def patterns(text: str) -> list[tuple[str, str]]:
    """(pattern name, original substring) for each pattern finding."""
    return [(f.evidence.term, f.evidence.text) for f in PATTERNS.detect(NORMALIZER(text), "CN")]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("身份证11010519491231002X", [("cn_id_number", "11010519491231002X")]),
        ("身份证11010519491231002x", [("cn_id_number", "11010519491231002x")]),
        ("电话13812345678", [("cn_mobile", "13812345678")]),
        ("手机 138 1234 5678 找我", [("cn_mobile", "138 1234 5678")]),
        ("+86 139-0000-1111", [("cn_mobile", "+86 139-0000-1111")]),
        ("电话１３８１２３４５６７８", [("cn_mobile", "１３８１２３４５６７８")]),
        ("卡号6222020000000000000", [("bank_card", "6222020000000000000")]),
        ("写信到 someone@example.com 吧", [("email", "someone@example.com")]),
        ("加我vx: abc12345", [("contact_handle", "加我vx: abc12345")]),
        ("q群 987654321 欢迎", [("contact_handle", "q群 987654321")]),
        (
            "加我扣扣 九八七六五四三二一",
            [("contact_handle_numerals", "加我扣扣 九八七六五四三二一")],
        ),
        ("q群：五六七八九零一二", [("contact_handle_numerals", "q群：五六七八九零一二")]),
        ("看 https://example.org/a 这里", [("url", "https://example.org/a")]),
        ("www.example.com", [("url", "www.example.com")]),
    ],
)
def test_patterns_find(text: str, expected: list[tuple[str, str]]) -> None:
    """Each pattern finds its kind of data, with the original substring as evidence."""
    assert patterns(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "身份证110105194912310021",  # checksum wrong
        "订单号2023112212345",  # not a phone number
        "卡号6222020000000000001",  # fails Luhn
        "微信支付很方便",  # a handle word without an id
        "QQ音乐会员",  # QQ then not an id
        "今年是2024年",
        "价格12345元",
        "一二三四五六七",  # numerals without a handle
        "飞机 一二三四五六次",  # a handle word, then a count
    ],
)
def test_patterns_refuse_lookalikes(text: str) -> None:
    """Numbers that fail a checksum or a format are not personal data."""
    assert patterns(text) == []


def test_pattern_evidence_reports_width_disguise() -> None:
    """A handle written in full-width letters says WIDTH."""
    (finding,) = PATTERNS.detect(NORMALIZER("加ＶＸ：ａｂｃ12345"), "CN")
    assert finding.evidence.variant is Variant.WIDTH


def test_group_word_alone_is_nothing() -> None:
    """A group word without company yields no finding."""
    assert LEXICON.detect(NORMALIZER("河南人很热情好客"), "GLOBAL") == []


def test_group_word_with_negative_word_is_ambiguous_hate() -> None:
    """A group word next to a negative word is possible hate, for the model to judge."""
    findings = LEXICON.detect(NORMALIZER("河南人都是骗子"), "GLOBAL")
    assert {f.category for f in findings} == {Category.HATE}
    assert all(f.ambiguous for f in findings)
    assert {f.evidence.term for f in findings} == {"河南人", "骗子"}


def test_group_word_far_from_negative_word_is_nothing() -> None:
    """Company must be near: a negative word far away does not count."""
    text = "河南人" + "，今天天气真好我们一起去公园散步吧" * 2 + "骗子电话"
    assert LEXICON.detect(NORMALIZER(text), "GLOBAL") == []


def test_jurisdiction_scoped_entry(tmp_path: Path) -> None:
    """An entry scoped to CN fires under CN only; an unscoped one fires everywhere."""
    (tmp_path / "t.tsv").write_text(
        "# term\tcategory\tsubcategory\tseverity\tflags\tjurisdictions\tallow\n"
        "菠菜平台\tILLEGAL\tgambling\tHIGH\t-\tCN,HK\t-\n"
        "冰毒\tILLEGAL\tdrugs\tHIGH\t-\t*\t-\n",
        encoding="utf-8",
    )
    detector = LexiconDetector(load_lexicon(NORMALIZER, Phonetics(), tmp_path))

    def terms(jurisdiction: str) -> set[str]:
        found = detector.detect(NORMALIZER("菠菜平台有冰毒"), jurisdiction)
        return {f.evidence.term for f in found}

    assert terms("CN") == {"菠菜平台", "冰毒"}
    assert terms("US") == {"冰毒"}


_FINDING = st.builds(
    lambda category, severity, confidence, start, length, variant: Finding(
        category,
        "x",
        severity,
        confidence,
        Source.LEXICON,
        Evidence(start, start + length, "", "t", variant),
        "r",
    ),
    st.sampled_from([Category.ABUSE, Category.HATE]),
    st.sampled_from(list(Severity)),
    st.sampled_from([0.5, 0.6, 0.95]),
    st.integers(0, 30),
    st.integers(1, 6),
    st.sampled_from([Variant.EXACT, Variant.HOMOPHONE]),
)


@given(st.lists(_FINDING, max_size=80))
def test_subsumption_by_trees_keeps_what_the_pairwise_check_keeps(
    findings: list[Finding],
) -> None:
    """The n log n subsumption used for many hits keeps exactly the pairwise check's findings."""
    ranked = sorted(
        findings,
        key=lambda f: (
            f.evidence.start - f.evidence.end,
            -f.confidence,
            -f.severity,
            f.evidence.variant is not Variant.EXACT,
        ),
    )
    assert kept_by_trees(ranked) == kept_pairwise(ranked)


_PATTERN_PIECES = st.one_of(
    st.sampled_from(["加", "我", "vx", "qq", "扣扣", "t.me/", "www.", "https://", ".com", "@"]),
    st.sampled_from(list("0123456789一二三四五六七八九零幺壹 .:-_abcxyz")),
)


def _gate_hides_nothing(text: str) -> None:
    normalized = NORMALIZER(text)
    views = {normalized.folded, normalized.text}
    if not any(PATTERNS.might_match(view) for view in views):
        assert PATTERNS._matches(normalized, PATTERNS._reported, validate=True, limit=None) == []


@given(st.lists(_PATTERN_PIECES, max_size=24).map("".join))
def test_the_pattern_gate_never_hides_a_match(text: str) -> None:
    """What each pattern needs (its kinds of character and hint) is all the gate asks: when
    it says no pattern can match, none does."""
    _gate_hides_nothing(text)


@pytest.mark.parametrize(
    "text",
    [
        "加我扣扣 九八七六五四三二一",
        "t.me/someone",
        "电话13812345678",
        "mail a@b.cn",
        "加vx abc12345",
    ],
)
def test_the_pattern_gate_lets_each_kind_through(text: str) -> None:
    """Every kind of pattern passes the gate when its text is there."""
    assert PATTERNS.might_match(NORMALIZER(text).folded)
    assert patterns(text)
