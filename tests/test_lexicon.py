"""The lexicon files: a lint over the shipped data, and the loader's refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from moderation.domain import Category, Variant
from moderation.errors import LexiconError
from moderation.lexicon import check_jurisdictions, load_lexicon
from moderation.normalize import Normalizer
from moderation.phonetic import Phonetics
from moderation.policy import load_policies

NORMALIZER = Normalizer()
PHONETICS = Phonetics()
LEXICON = load_lexicon(NORMALIZER, PHONETICS)


def find(text: str) -> list[tuple[int, int, str]]:
    """Hits in ``text`` as (start, end, term), on the normalized text."""
    return [(h.start, h.end, h.entry.term) for h in LEXICON.scan(NORMALIZER(text))]


HEADER = "# term\tcategory\tsubcategory\tseverity\tflags\tjurisdictions\tallow\n"


def test_shipped_lexicon_loads_and_is_versioned() -> None:
    """The shipped lexicon loads; its version has the declared part and a content digest."""
    declared, digest = LEXICON.version.split("+")
    assert declared
    assert len(digest) == 10
    assert set(Category) <= {e.category for e in LEXICON.entries} | {Category.PII}
    assert len(LEXICON) >= 500


@pytest.mark.parametrize(
    ("rows", "says"),
    [
        (
            "傻逼\tABUSE\tinsult\tHIGH\t-\t*\t-\n傻逼\tABUSE\tinsult\tHIGH\t-\t*\t-\n",
            "duplicate entry",
        ),
        ("傻逼\tABUSES\tinsult\tHIGH\t-\t*\t-\n", "t.tsv:2: unknown category 'ABUSES'"),
        ("哈哈哈\tABUSE\tinsult\tLOW\t-\t*\t-\n", "write it as '哈'"),
        ("發財\tSPAM\tads\tLOW\t-\t*\t-\n", "write it as '发财'"),
        ("傻逼\tABUSE\tinsult\tHUGE\t-\t*\t-\n", "unknown severity 'HUGE'"),
        ("傻逼\tABUSE\tinsult\tHIGH\tweird\t*\t-\n", "unknown flags ['weird']"),
        ("傻逼\tABUSE\tinsult\tHIGH\t-\t*\n", "expected 7 tab-separated columns"),
        ("ＳＢ\tABUSE\tinsult\tHIGH\t-\t*\t-\n", "write it as 'sb'"),
        (
            "草\tABUSE\tprofanity\tLOW\tambiguous\t*\t草地|花园\n",
            "'花园' does not contain the term",
        ),
        ("傻逼\tABUSE\tinsult\tHIGH\t-\tcn\t-\n", "t.tsv:2: jurisdiction 'cn' is not a code"),
        ("傻逼\tABUSE\tinsult\tHIGH\t-\tCN;US\t-\n", "jurisdiction 'CN;US' is not a code"),
    ],
)
def test_lint_rejects_bad_entries(tmp_path: Path, rows: str, says: str) -> None:
    """Duplicates, unknown names and entries the normalizer cannot reach are refused."""
    (tmp_path / "t.tsv").write_text(HEADER + rows, encoding="utf-8")
    with pytest.raises(LexiconError) as caught:
        load_lexicon(NORMALIZER, PHONETICS, tmp_path)
    assert says in str(caught.value)


def test_an_entry_scoped_to_a_jurisdiction_without_a_policy_is_refused(tmp_path: Path) -> None:
    """A jurisdiction code no policy has (CNN for CN) would keep the entry silent everywhere:
    refused, naming the file, the line and the policies there are."""
    (tmp_path / "t.tsv").write_text(
        HEADER
        + "冰毒\tILLEGAL\tdrugs\tHIGH\t-\tCN\t-\n菠菜平台\tILLEGAL\tgambling\tHIGH\t-\tCN,CNN\t-\n",
        encoding="utf-8",
    )
    lexicon = load_lexicon(NORMALIZER, PHONETICS, tmp_path)
    known = [policy.jurisdiction for policy in load_policies()]
    with pytest.raises(LexiconError) as caught:
        check_jurisdictions(lexicon, known)
    assert str(caught.value).startswith("t.tsv:3: no policy for jurisdiction CNN")
    assert "CN, EU, GLOBAL, SG, US" in str(caught.value)
    check_jurisdictions(load_lexicon(NORMALIZER, PHONETICS), known)  # the shipped lexicon


def test_allow_context_suppresses_a_hit(tmp_path: Path) -> None:
    """A term inside one of its allow contexts is not a hit; elsewhere it is."""
    (tmp_path / "t.tsv").write_text(
        HEADER + "草\tABUSE\tprofanity\tLOW\tambiguous\t*\t草地|草莓\n", encoding="utf-8"
    )
    lexicon = load_lexicon(NORMALIZER, PHONETICS, tmp_path)
    assert lexicon.scan(NORMALIZER("草地上吃草莓")) == []
    assert [(h.start, h.end) for h in lexicon.scan(NORMALIZER("我草"))] == [(1, 2)]


@pytest.mark.parametrize("text", ["usb", "/usr/sbin", "sbin", "7nm", "asb", "sb_x", "readme.sb"])
def test_latin_terms_match_whole_words_only(text: str) -> None:
    """A Latin term inside a longer word, a path or a name is not a hit."""
    assert [hit for hit in find(text) if hit[2] == "sb"] == []


def test_latin_term_alone_matches() -> None:
    """A Latin term standing alone is a hit."""
    assert (2, 4, "sb") in find("你个sb啊")


@pytest.mark.parametrize(
    ("text", "term", "variant"),
    [
        ("沙币", "傻逼", Variant.HOMOPHONE),
        ("shabi", "傻逼", Variant.PINYIN),
        ("sha bi", "傻逼", Variant.PINYIN),
        ("傻bi", "傻逼", Variant.PINYIN),
        ("女表子", "婊子", Variant.SPLIT_CHARACTER),
        ("f*ck", "fuck", Variant.LEETSPEAK),
        ("nishabi", "傻逼", Variant.PINYIN),  # pinyin inside a longer pinyin word
        ("k份", "k粉", Variant.HOMOPHONE),  # a mixed term: its characters by sound
        ("ㄒㄧㄥˋ ㄐㄧㄠ", "性交", Variant.PINYIN),  # ㄧㄥ spelled ieng
        ("ㄑㄩˋ ㄙˇ ㄅㄚ˙", "去死吧", Variant.PINYIN),  # ㄙ alone is si in bopomofo
        ("彤性恋", "同性恋", Variant.HOMOPHONE),  # a group word by sound
    ],
)
def test_views(text: str, term: str, variant: Variant) -> None:
    """Homophones, Latin pinyin, split characters and masked letters reach the term."""
    hits = LEXICON.scan(NORMALIZER(text))
    assert (term, variant) in {(h.entry.term, h.variant) for h in hits}


@pytest.mark.parametrize(
    "text",
    [
        "我们要学习",
        "他出生在北京",
        "我有女朋友了",
        "还要求更多",
        "女权是什么",
        "大麻烦来了",
        "banana",
    ],
)
def test_ordinary_words_are_not_disguises(text: str) -> None:
    """A homophone that is, holds or cuts through an ordinary word is not a hit."""
    assert [h for h in LEXICON.scan(NORMALIZER(text)) if h.variant is not None] == []
    assert "大麻" not in {h.entry.term for h in LEXICON.scan(NORMALIZER(text))}


@pytest.mark.parametrize(
    "text",
    [
        "ok份量很足",  # the letters of k粉 inside a word
        "i love u",  # i and u are yi and wu only in text written in bopomofo
        "u r so cool",
        "van",
    ],
)
def test_letters_are_not_read_as_sounds_out_of_place(text: str) -> None:
    """Letters read as syllables only where they can be: a mixed term's letters not inside a
    longer word, bopomofo's short spellings only in text written in bopomofo."""
    assert [h.entry.term for h in LEXICON.scan(NORMALIZER(text)) if h.variant is not None] == []
    assert not PHONETICS.view(NORMALIZER(text).text).latin


def test_bopomofo_spellings_read_as_the_syllables_they_write() -> None:
    """Each spelling derived from the bopomofo table is the symbol-by-symbol writing of the
    syllable it stands for, so the table and the readings cannot drift apart."""
    from pypinyin import Style
    from pypinyin.style import convert

    from moderation.phonetic import bopomofo_spellings

    syllables = {"xing", "ju", "you", "zhong", "si", "yi", "wo", "yue", "liu", "gui", "lun"}
    spellings = bopomofo_spellings(syllables, short=True)
    assert spellings == {
        "xieng": "xing", "jv": "ju", "iou": "you", "zhueng": "zhong", "s": "si", "i": "yi",
        "uo": "wo", "ve": "yue", "liou": "liu", "guei": "gui", "luen": "lun",
    }  # fmt: skip
    for written, syllable in spellings.items():
        symbols = convert(syllable, Style.BOPOMOFO, strict=True, default="")
        assert NORMALIZER(symbols).text == written
    assert bopomofo_spellings(syllables) == {
        "xieng": "xing", "jv": "ju", "iou": "you", "zhueng": "zhong", "liou": "liu",
        "guei": "gui", "luen": "lun",
    }  # fmt: skip


def test_polyphonic_term_keys() -> None:
    """A term is keyed by its reading in context and by its characters' common readings."""
    keys = {" ".join(PHONETICS.decode(k)) for k in PHONETICS.term_keys("行长")}
    assert keys == {"hang zhang", "xing zhang"}
