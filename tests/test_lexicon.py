"""The lexicon files: a lint over the shipped data, and the loader's refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from moderation.domain import Category
from moderation.errors import LexiconError
from moderation.lexicon import load_lexicon
from moderation.normalize import Normalizer

HEADER = "# term\tcategory\tsubcategory\tseverity\tflags\tjurisdictions\tallow\n"


def test_shipped_lexicon_loads_and_is_versioned() -> None:
    """The shipped lexicon loads; its version has the declared part and a content digest."""
    lexicon = load_lexicon(Normalizer())
    declared, digest = lexicon.version.split("+")
    assert declared
    assert len(digest) == 10
    assert {e.category for e in lexicon.entries} >= {Category.ABUSE, Category.POLITICAL}


@pytest.mark.parametrize(
    ("rows", "says"),
    [
        (
            "傻逼\tABUSE\tinsult\tHIGH\t-\t*\t-\n傻逼\tABUSE\tinsult\tHIGH\t-\t*\t-\n",
            "duplicate entry",
        ),
        ("傻逼\tABUSES\tinsult\tHIGH\t-\t*\t-\n", "t.tsv:2: unknown category 'ABUSES'"),
        ("傻逼\tABUSE\tinsult\tHUGE\t-\t*\t-\n", "unknown severity 'HUGE'"),
        ("傻逼\tABUSE\tinsult\tHIGH\tweird\t*\t-\n", "unknown flags ['weird']"),
        ("傻逼\tABUSE\tinsult\tHIGH\t-\t*\n", "expected 7 tab-separated columns"),
        ("ＳＢ\tABUSE\tinsult\tHIGH\t-\t*\t-\n", "write it as 'sb'"),
        (
            "草\tABUSE\tprofanity\tLOW\tambiguous\t*\t草地|花园\n",
            "'花园' does not contain the term",
        ),
    ],
)
def test_lint_rejects_bad_entries(tmp_path: Path, rows: str, says: str) -> None:
    """Duplicates, unknown names and entries the normalizer cannot reach are refused."""
    (tmp_path / "t.tsv").write_text(HEADER + rows, encoding="utf-8")
    with pytest.raises(LexiconError) as caught:
        load_lexicon(Normalizer(), tmp_path)
    assert says in str(caught.value)


def test_allow_context_suppresses_a_hit(tmp_path: Path) -> None:
    """A term inside one of its allow contexts is not a hit; elsewhere it is."""
    (tmp_path / "t.tsv").write_text(
        HEADER + "草\tABUSE\tprofanity\tLOW\tambiguous\t*\t草地|草莓\n", encoding="utf-8"
    )
    lexicon = load_lexicon(Normalizer(), tmp_path)
    assert lexicon.find("草地上吃草莓") == []
    assert [(m.start, m.end) for m in lexicon.find("我草")] == [(1, 2)]


@pytest.mark.parametrize("text", ["usb", "/usr/sbin", "sbin", "7nm", "asb", "sb_x", "readme.sb"])
def test_latin_terms_match_whole_words_only(text: str) -> None:
    """A Latin term inside a longer word, a path or a name is not a hit."""
    assert load_lexicon(Normalizer()).find(text) == []


def test_latin_term_alone_matches() -> None:
    """A Latin term standing alone is a hit."""
    assert [(m.start, m.end) for m in load_lexicon(Normalizer()).find("你个sb啊")] == [(2, 4)]
