"""Cloaked forms of the corpus's harmful cases are caught about as well as the cases."""

from __future__ import annotations

from dataclasses import replace

from moderation.compose import load_prefilter
from moderation.pipeline import Moderator
from tests.corpus_cases import judge, load


def _emoji_for() -> dict[str, str]:
    """For each character an emoji stands for, one such emoji (the lowest code point)."""
    normalizer, _ = load_prefilter()
    chosen: dict[str, str] = {}
    for emoji, character in sorted(normalizer.emoji_stand_ins.items()):
        if len(character) == 1 and not character.isascii():
            chosen.setdefault(character, emoji)
    return chosen


def test_emoji_cloaked_cases_are_caught_as_often_as_the_plain_ones(moderator: Moderator) -> None:
    """Every character of a caught harmful case that an emoji can stand for is written as that
    emoji (草泥马 as 草泥🐎, 女拳 as 👩👊): at least 95% of those cases are still caught, and
    the corpus holds enough of them to say so."""
    emoji_for = _emoji_for()
    caught = cloaked = 0
    missed = []
    for case in load():
        if not case.harmful or case.known or not judge(moderator, case).caught:
            continue
        text = "".join(emoji_for.get(ch, ch) for ch in case.text)
        if text == case.text:
            continue
        cloaked += 1
        if judge(moderator, replace(case, text=text)).caught:
            caught += 1
        else:
            missed.append(text)
    assert cloaked >= 40
    assert caught / cloaked >= 0.95, missed
