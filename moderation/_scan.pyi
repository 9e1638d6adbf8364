"""Types of the C extension ``moderation._scan`` (source: ``_scan.c``)."""

from array import array
from collections.abc import Container

from moderation.domain import Variant

def translate(text: str, table: array[int], /) -> str | None:
    """``text.translate`` over a table of 4-byte code points indexed by code point; None when a
    character lies past the table or maps to U+FFFF (it folds to zero or several)."""

def context_steps(folded: str, digit_words: Container[str], units: str, /) -> int:
    """A bit per context step that would change ``folded``: STEP_SEPARATORS, STEP_REPEATS,
    STEP_LEETSPEAK, STEP_DIGITS."""

def apply_context_steps(
    text: str,
    starts: list[int] | None,
    ends: list[int] | None,
    digit_words: dict[str, str],
    units: str,
    variants: tuple[Variant, Variant, Variant],
    order: tuple[int, ...],
    /,
) -> tuple[str, list[int], list[int], dict[int, Variant], int] | None:
    """Every context step in ``order`` (their STEP_ bits, as ``normalize.STEPS`` orders them),
    then separators and repeats again after leetspeak or digits, each character's original
    span carried from
    ``starts``/``ends`` (None: the identity); ``variants`` are the marks of repeats, leetspeak
    and digits. None when no step changes anything; else the text, spans, marks and a bit per
    step that changed something."""

LATIN: int
DIGIT: int
AT: int
DOT: int
COLON: int
STEP_SEPARATORS: int
STEP_REPEATS: int
STEP_LEETSPEAK: int
STEP_DIGITS: int
NUMERAL: int
NUMERALS: int

def char_classes(text: str, /) -> int:
    """A bit per kind of character ``text`` holds: LATIN (a-z), DIGIT (0-9), AT (@), DOT (.),
    COLON (:), NUMERAL (一幺壹, how a phone number spelled in numerals starts), NUMERALS (five
    Chinese numerals in a row: a number spelled in numerals)."""

def phonetic_view(
    text: str,
    table: array[int],
    trie: array[int],
    max_token: int,
    gap: str,
    first_code: int,
    last_code: int,
    /,
) -> str | tuple[str, list[int], list[int], list[int]] | None:
    """The phonetic view of ``text``: the syllable codes (``table``) with the Latin words that
    spell pinyin (``trie``: rows of 27, a child per letter and the code ending there) and can
    take part in a key rewritten as codes, the ``gap`` characters between two such words
    dropped. A str when no word was rewritten; else the codes, each code's span of the text
    and the positions of codes from Latin letters. None when a character lies off the table."""

def hashed_ngrams(
    text: str,
    syllables: str,
    syllable_hashes: array[int],
    first_code: int,
    bits: int,
    weights: array[float] | None,
    top: int,
    /,
) -> list[int] | tuple[float, int] | list[tuple[float, int, int]]:
    """The scorer's features: the hashed character 1-3 grams of ``text`` and syllable 1-2 grams
    of ``syllables`` (one code per character; codes from ``first_code`` index
    ``syllable_hashes``, 8-byte hashes of the syllables), each distinct bucket of ``bits`` bits
    once. With ``weights`` None, the buckets in first-seen order; else (the sum of their
    ``weights``, 2**bits 4-byte floats, and how many), or with ``top`` (at most 64) > 0 the
    ``top`` buckets of largest positive weight as (weight, start, end) of their first n-gram,
    strongest first (ties: the earlier)."""
