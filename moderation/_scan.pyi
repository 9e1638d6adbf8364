"""Types of the C extension ``moderation._scan`` (source: ``_scan.c``)."""

from collections.abc import Buffer, Container

def translate(text: str, table: Buffer, /) -> str | None:
    """``text.translate`` over a table of 4-byte code points indexed by code point; None when a
    character lies past the table or maps to U+FFFF (it folds to zero or several)."""

def context_steps(folded: str, digit_words: Container[str], units: str, /) -> int:
    """A bit per context step that would change ``folded``: 1 separators, 2 repeats,
    4 leetspeak, 8 digits."""
