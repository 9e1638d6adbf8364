"""Broad word lists: built from a tagged list, filtered, and only ever escalating."""

from __future__ import annotations

import json
from pathlib import Path

from moderation.broad import HEADER
from tests.test_cli import run

TAGS = """\
学习 4
傻逼 4
ab 4
卖 4
生日快乐 4
东突厥斯坦伊斯兰运动 0
出售仿真手狗 4
飞叶子群 1,4
网上百家乐代理 3,4
"""


def _houbb(folder: Path) -> Path:
    folder.mkdir()
    (folder / "sensitive_word_tags.txt").write_text(TAGS, encoding="utf-8")
    (folder / "sensitive_word_allow.txt").write_text("生日快乐\n", encoding="utf-8")
    return folder


def test_the_build_keeps_slang_and_phrases_and_drops_vocabulary(tmp_path: Path) -> None:
    """Ordinary words, curated terms, ASCII, single characters and allowed words are left out;
    tags become categories (a specific tag before 4, illegal)."""
    output = tmp_path / "broad.tsv"
    done = run("broad-lexicon", "--houbb", str(_houbb(tmp_path / "houbb")), "--output", str(output))
    assert done.returncode == 0, done.stderr
    assert "4 terms written" in done.stdout
    assert "1 short, 1 ascii, 1 allowed, 1 curated, 1 ordinary" in done.stdout
    lines = output.read_text(encoding="utf-8").splitlines()
    assert lines[0] == HEADER
    assert sorted(lines[1:]) == sorted(
        [
            "东突厥斯坦伊斯兰运动\tPOLITICAL\tbroad",
            "出售仿真手狗\tILLEGAL\tbroad",
            "飞叶子群\tILLEGAL\tdrugs",
            "网上百家乐代理\tILLEGAL\tgambling",
        ]
    )


def test_a_broad_hit_escalates_and_never_blocks(tmp_path: Path) -> None:
    """With the list configured a hit goes to review (the model, when there is one) and the
    answers carry another rules version; without it the same text passes; the curated lexicon
    still blocks on its own."""
    output = tmp_path / "broad.tsv"
    run("broad-lexicon", "--houbb", str(_houbb(tmp_path / "houbb")), "--output", str(output))
    env = {"MODERATION_BROAD_LEXICON_PATH": str(output)}
    text = "这里出售仿真手狗"
    with_list = json.loads(run("check", "--no-llm", text, **env).stdout)
    assert with_list["decision"] == "DECISION_REVIEW"
    assert [label["category"] for label in with_list["labels"]] == ["CATEGORY_ILLEGAL"]
    without = json.loads(run("check", "--no-llm", text).stdout)
    assert without["decision"] == "DECISION_ALLOW"
    # The rules changed, so the version every answer carries changed with them.
    assert with_list["policy"]["lexicon_version"] != without["policy"]["lexicon_version"]
    insult = json.loads(run("check", "--no-llm", "你就是个傻逼", **env).stdout)
    assert insult["decision"] == "DECISION_BLOCK"


def test_a_file_that_is_not_a_broad_lexicon_refuses_the_start(tmp_path: Path) -> None:
    """A missing file or another file is a configuration error naming the variable."""
    other = tmp_path / "other.txt"
    other.write_text("傻逼\n", encoding="utf-8")
    for path in (tmp_path / "missing.tsv", other):
        done = run("check", "x", MODERATION_BROAD_LEXICON_PATH=str(path))
        assert done.returncode == 2
        assert "MODERATION_BROAD_LEXICON_PATH" in done.stderr
