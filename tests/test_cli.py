"""The ``moderation`` command as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest


def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m moderation ARGS`` with extra environment variables."""
    return subprocess.run(
        [sys.executable, "-m", "moderation", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **env},
        check=False,
    )


def test_check_prints_one_json_line_per_text() -> None:
    """``check`` prints the JSON form: snake_case fields, enum names, one line per text."""
    done = run("check", "你就是个傻逼", "今天天气真好")
    assert done.returncode == 0, done.stderr
    first, second = (json.loads(line) for line in done.stdout.splitlines())
    assert first["decision"] == "DECISION_BLOCK"
    (label,) = first["labels"]
    assert label["category"] == "CATEGORY_ABUSE"
    assert label["evidence"] == [
        {"start": 4, "end": 6, "text": "傻逼", "term": "傻逼", "variant": "VARIANT_EXACT"}
    ]
    assert first["policy"]["lexicon_version"]
    assert second["decision"] == "DECISION_ALLOW"
    assert second["labels"] == []
    assert second["escalation"]["status"] == "ESCALATION_STATUS_NOT_NEEDED"


def test_check_no_llm_marks_escalations_skipped() -> None:
    """``--no-llm`` answers an ambiguous text REVIEW with escalation SKIPPED."""
    done = run("check", "--no-llm", "一起溜冰吗")
    answer = json.loads(done.stdout)
    assert answer["decision"] == "DECISION_REVIEW"
    assert answer["escalation"]["status"] == "ESCALATION_STATUS_SKIPPED"


def test_check_jurisdiction() -> None:
    """``--jurisdiction`` picks the policy."""
    cn = json.loads(run("check", "-j", "cn", "纪念六四").stdout)
    us = json.loads(run("check", "--jurisdiction", "US", "纪念六四").stdout)
    assert cn["policy"]["jurisdiction"] == "CN"
    assert cn["decision"] != "DECISION_ALLOW"
    assert us["policy"]["jurisdiction"] == "US"
    assert us["decision"] == "DECISION_ALLOW"


def test_check_bad_input_says_what_is_wrong() -> None:
    """An unknown jurisdiction exits 2 and names the field."""
    done = run("check", "--jurisdiction", "XX", "你好")
    assert done.returncode == 2
    assert "jurisdiction" in done.stderr
    assert "XX" in done.stderr


def test_policies_lists_jurisdictions() -> None:
    """``policies`` lists every jurisdiction with its version and categories."""
    done = run("policies")
    assert done.returncode == 0
    for name in ("CN", "US", "EU", "SG", "GLOBAL"):
        assert f"\n{name}  " in done.stdout
    listing = json.loads(run("policies", "--json").stdout)
    assert listing["default_jurisdiction"] == "GLOBAL"
    assert {p["jurisdiction"] for p in listing["policies"]} >= {"CN", "US", "EU", "SG", "GLOBAL"}
    by_name = {p["jurisdiction"]: p for p in listing["policies"]}
    assert by_name["CN"]["model_endpoints"] == ["dashscope-cn", "self-hosted"]


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"MODERATION_PORT": "abc"}, "MODERATION_PORT"),
        ({"MODERATION_MAX_TEXT_CHARS": "0"}, "MODERATION_MAX_TEXT_CHARS"),
        ({"MODERATION_DEFAULT_JURISDICTION": "XX"}, "MODERATION_DEFAULT_JURISDICTION"),
        ({"MODERATION_POLICY_DIR": "/nonexistent"}, "MODERATION_POLICY_DIR"),
    ],
)
def test_bad_settings_refuse_to_start_saying_what_to_fix(env: dict[str, str], says: str) -> None:
    """A bad environment variable stops the command with exit 2 and names the variable."""
    done = run("policies", **env)
    assert done.returncode == 2
    assert says in done.stderr
    assert "Traceback" not in done.stderr
