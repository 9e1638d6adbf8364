"""Cloaked forms of the corpus's harmful cases are caught about as well as the cases."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

from moderation.compose import load_prefilter
from moderation.pipeline import Moderator
from tests.corpus_cases import Case, judge, load


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


def _homophones() -> dict[str, str]:
    """For each common character (GB2312 level 1), another common one read the same
    (toneless), the first by code point."""
    from pypinyin import lazy_pinyin

    by_reading: dict[str, list[str]] = {}
    for cp in range(0x4E00, 0xA000):
        ch = chr(cp)
        try:
            encoded = ch.encode("gb2312")
        except UnicodeEncodeError:
            continue
        if len(encoded) == 2 and 0xB0 <= encoded[0] <= 0xD7:
            by_reading.setdefault(lazy_pinyin(ch)[0], []).append(ch)
    return {
        ch: next(other for other in chars if other != ch)
        for chars in by_reading.values()
        if len(chars) > 1
        for ch in chars
    }


def _caught_with_evidence(moderator: Moderator) -> Iterator[tuple[Case, tuple[int, int]]]:
    """Each harmful corpus case the heuristics catch, with the span of its first evidence."""
    for case in load():
        if not case.harmful or case.known:
            continue
        outcome = judge(moderator, case)
        spans = [e for label in outcome.result.labels for e in label.evidence]
        if outcome.caught and spans:
            yield case, (spans[0].start, spans[0].end)


def test_homophone_cloaked_cases_are_caught_as_often_as_the_plain_ones(
    moderator: Moderator,
) -> None:
    """The first Chinese character of each caught harmful case's evidence is written as a
    homophone (支那猪 as 之那猪): at least 95% still caught."""
    homophones = _homophones()
    caught = cloaked = 0
    for case, (start, end) in _caught_with_evidence(moderator):
        at = next((i for i in range(start, end) if case.text[i] in homophones), None)
        if at is None:
            continue
        cloaked += 1
        text = case.text[:at] + homophones[case.text[at]] + case.text[at + 1 :]
        caught += judge(moderator, replace(case, text=text)).caught
    assert cloaked >= 200
    assert caught / cloaked >= 0.95


def test_bopomofo_written_evidence_is_mostly_caught(moderator: Moderator) -> None:
    """Each caught harmful case's Chinese evidence written in bopomofo with tones (傻逼 as
    ㄕㄚˇ ㄅㄧ): read as pinyin, with the spellings only bopomofo makes (ㄒㄧㄥ as xieng, ㄙ
    alone as s), at least 85% still caught (8.9% before bopomofo was read at all, 41.6% when
    read symbol by symbol only). The misses are intents and negative words, matched only as
    written."""
    from pypinyin import Style, pinyin

    caught = written = 0
    for case, (start, end) in _caught_with_evidence(moderator):
        evidence = case.text[start:end]
        if len(evidence) < 2 or not all("\u4e00" <= ch <= "\u9fff" for ch in evidence):
            continue
        bopomofo = " ".join(reading[0] for reading in pinyin(evidence, style=Style.BOPOMOFO))
        written += 1
        text = case.text[:start] + bopomofo + case.text[end:]
        caught += judge(moderator, replace(case, text=text)).caught
    assert written >= 150
    assert caught / written >= 0.85
