"""Reporting, quoting and naming contexts: a blocking hit goes to the model instead."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from moderation.compose import build_moderator, load_prefilter
from moderation.context import load_contexts
from moderation.domain import Content, Decision, EscalationMode, EscalationStatus, Route
from moderation.errors import ConfigError
from moderation.pipeline import Moderator
from moderation.settings import Settings
from tests.fake_llm import Answer, FakeModel, completion, verdict


def _screen(moderator: Moderator, text: str) -> tuple[Route, str]:
    screening = moderator.screen(Content(text=text, escalation=EscalationMode.NEVER))
    return screening.triage.route, screening.triage.reason


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("警方破获一起特大贩毒案，缴获冰毒20公斤", "reporting"),
        ("有人在评论区骂我傻逼，我已经举报了", "quoting"),
        ("请问「约炮」为啥不能发", "quoting"),  # the term between quotation marks
        ("网友都叫它草泥马", "naming"),
        ("他唱了一首《草泥马》", "quoting"),  # a title
    ],
)
def test_a_context_sends_a_blocking_hit_to_the_model(
    moderator: Moderator, text: str, kind: str
) -> None:
    """Each kind turns a confident block into an escalation that says why."""
    route, reason = _screen(moderator, text)
    assert route is Route.AMBIGUOUS
    assert reason.startswith(f"{kind} context; ")


def test_without_a_context_the_hit_still_blocks(moderator: Moderator) -> None:
    """The same hits, used: blocked at once."""
    for text in ("卖冰毒20公斤", "你就是个傻逼", "约炮吗", "草泥马"):
        assert _screen(moderator, text)[0] is Route.CLEAR
        result = moderator.decide_now(moderator.screen(Content(text=text)))
        assert result.decision is Decision.BLOCK


def test_with_the_model_off_a_context_is_reviewed_never_allowed(moderator: Moderator) -> None:
    """A cue word cannot be used to get content through: it costs a review."""
    result = moderator.decide_now(moderator.screen(Content(text="看新闻不如来买冰毒")))
    assert result.decision is Decision.REVIEW


async def test_the_model_decides_a_reported_hit(fake: FakeModel) -> None:
    """The model says the report is safe: allowed, though the rule alone would have blocked;
    the same text with the model saying unsafe is blocked."""
    fake.default = lambda r: Answer(body=completion(json.dumps(verdict("safe"))))
    moderator = build_moderator(Settings(llm_base_url=fake.base_url, llm_api_key="test-key"))
    try:
        report = await moderator.moderate(Content(text="警方破获一起特大贩毒案，缴获冰毒20公斤"))
        assert report.escalation.status is EscalationStatus.RESOLVED
        assert report.decision is Decision.ALLOW
        fake.default = lambda r: Answer(
            body=completion(json.dumps(verdict("unsafe", ("ILLEGAL", "HIGH"))))
        )
        cover = await moderator.moderate(Content(text="看新闻不如来买冰毒，加微信"))
        assert cover.decision is Decision.BLOCK
        assert len(fake.requests) == 2
    finally:
        await moderator.aclose()


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ("reporting\t", "expected 'kind<TAB>cue'"),
        ("rumour\t传言", "kind one of reporting, quoting, naming"),
        ("reporting\t警方\nquoting\t警方", "duplicate cue '警方'"),
        ("reporting\t報道", "not in normalized form; write '报道'"),
    ],
)
def test_a_bad_cue_file_is_refused_naming_the_line(tmp_path: Path, line: str, says: str) -> None:
    """Malformed lines, unknown kinds, duplicates and unnormalized cues are errors."""
    path = tmp_path / "contexts.tsv"
    path.write_text("# kind\tcue\n" + line + "\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=says) as caught:
        load_contexts(load_prefilter()[0], path)
    assert f"{path}:" in str(caught.value)
