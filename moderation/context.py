"""Contexts in which a blocking hit is talked about rather than used.

News and warnings report crimes (警方破获一起贩毒案，缴获冰毒), people quote what was said to
them to complain or ask (有人骂我傻逼，我已经举报了; 请问“约炮”这个词为什么会被屏蔽), and
names hold words that look bad (网友都叫它草泥马, 《草泥马之歌》). The heuristics cannot
tell use from mention, so with such a context their blocking hits go to the model instead of
deciding (REVIEW when the model is off): never an allow, only a second look.

Two signals, each cheap and only looked for when a hit would block:

- cue words from ``data/contexts.tsv`` anywhere in the normalized text (reporting, quoting,
  naming);
- the hit's own span between quotation marks or title marks in the caller's text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from moderation import datafile
from moderation.domain import Finding
from moderation.errors import ConfigError
from moderation.normalize import Normalized

#: Kinds of context a cue can mark.
KINDS = ("reporting", "quoting", "naming")
#: Opening marks and the closing mark each pairs with.
QUOTES: Mapping[str, str] = {
    "'": "'", '"': '"', "“": "”", "‘": "’", "「": "」", "『": "』", "《": "》", "〈": "〉",
    "【": "】", "＂": "＂", "＇": "＇",
}  # fmt: skip


class Contexts:
    """Finds the context that makes a text's blocking hits a matter for the model."""

    def __init__(self, cues: Mapping[str, str]) -> None:
        self._kind = dict(cues)
        ordered = sorted(cues, key=len, reverse=True)
        self._cues = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    def find(self, text: str, normalized: str, findings: Iterable[Finding]) -> str | None:
        """The kind of context (``reporting``, ``quoting``, ``naming``) or None.

        ``text`` is the caller's text (the findings' offsets point into it), ``normalized``
        its normalized form.
        """
        if self._cues is not None:
            cue = self._cues.search(normalized)
            if cue is not None:
                return self._kind[cue.group()]
        for finding in findings:
            start, end = finding.evidence.start, finding.evidence.end
            if start > 0 and end < len(text) and QUOTES.get(text[start - 1]) == text[end]:
                return "quoting"
        return None


def load_contexts(normalize: Callable[[str], Normalized], path: Path | None = None) -> Contexts:
    """The cues of ``path`` (default: the shipped ``data/contexts.tsv``); ``ConfigError`` for
    a malformed line or a cue not in normalized form (it would never match), naming it."""
    raw, where = datafile.read("contexts.tsv", path)
    cues: dict[str, str] = {}
    for number, cells in datafile.rows(raw):
        if len(cells) != 2 or cells[0] not in KINDS or not cells[1].strip():
            raise ConfigError(
                f"{where}:{number}: expected 'kind<TAB>cue' with kind one of {', '.join(KINDS)}"
            )
        cue = cells[1].strip()
        folded = normalize(cue).text
        if folded != cue:
            raise ConfigError(
                f"{where}:{number}: cue {cue!r} is not in normalized form; write {folded!r}"
            )
        if cue in cues:
            raise ConfigError(f"{where}:{number}: duplicate cue {cue!r}")
        cues[cue] = cells[0]
    return Contexts(cues)
