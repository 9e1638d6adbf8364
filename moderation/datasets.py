"""Labelled datasets on disk, as ``moderation eval`` and ``moderation train`` read them.

CSV, TSV, JSONL or a JSON array of objects; the text and label columns are found by common
names or named by the caller. A label is benign when it reads as "no" (0, false, safe, 不违规,
...); anything else is harmful, and labels that name a category (低俗色情, 博彩, ...) say which.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import NamedTuple

from moderation.errors import DatasetError

TEXT_COLUMNS = ("text", "TEXT", "content", "comment_text", "文本", "comment", "sentence")
LABEL_COLUMNS = ("label", "toxic", "标签", "labels", "is_toxic")
BENIGN = frozenset({"0", "false", "safe", "none", "benign", "non-toxic", "不违规", "正常", "ok"})
#: Dataset labels that name one of our categories.
CATEGORY_OF_LABEL: Mapping[str, str] = {
    "低俗色情": "SEXUAL",
    "博彩": "ILLEGAL",
    "欺诈": "ILLEGAL",
    "黑产广告": "SPAM",
    "谩骂引战": "ABUSE",
}


class LabelledRow(NamedTuple):
    """One row: the text, its label as written, and whether that label means harmful."""

    text: str
    label: str
    harmful: bool
    kind: str = ""
    """The value of the row's category column, when one was asked for and the file has it."""


def _rows(path: Path) -> Iterator[Mapping[str, object]]:
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv"):
        with path.open(encoding="utf-8-sig", newline="") as handle:
            yield from csv.DictReader(handle, delimiter="\t" if suffix == ".tsv" else ",")
    elif suffix == ".jsonl":
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if line.strip():
                    try:
                        row = json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise DatasetError(f"{path}:{number}: invalid JSON: {exc.msg}") from exc
                    if not isinstance(row, dict):
                        raise DatasetError(f"{path}:{number}: expected a JSON object")
                    yield row
    elif suffix == ".json":
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, list) or not all(isinstance(row, dict) for row in data):
            raise DatasetError(f"{path}: expected a JSON array of objects")
        yield from data
    else:
        raise DatasetError(f"{path}: unknown format {suffix!r}; use .csv, .tsv, .jsonl or .json")


def _pick(
    row: Mapping[str, object], given: str | None, candidates: Iterable[str], what: str
) -> str:
    if given:
        if given not in row:
            raise DatasetError(f"no {what} column {given!r}; columns are {sorted(row)}")
        return given
    for name in candidates:
        if name in row:
            return name
    raise DatasetError(
        f"cannot tell the {what} column among {sorted(row)}; name it with --{what}-col"
    )


def labelled_rows(
    path: Path,
    *,
    text_col: str | None = None,
    label_col: str | None = None,
    kind_col: str | None = None,
) -> Iterator[LabelledRow]:
    """Every row of ``path`` as text and label (and the ``kind_col`` value, where the file has
    that column); ``DatasetError`` when it cannot be read so."""
    if not path.is_file():
        raise DatasetError(f"{path}: no such file")
    columns: tuple[str, str] | None = None
    try:
        for row in _rows(path):
            if columns is None:
                columns = (
                    _pick(row, text_col, TEXT_COLUMNS, "text"),
                    _pick(row, label_col, LABEL_COLUMNS, "label"),
                )
            raw_text, raw_label = row.get(columns[0]), row.get(columns[1])
            label = "" if raw_label is None else str(raw_label).strip()
            kind = row.get(kind_col) if kind_col else None
            yield LabelledRow(
                "" if raw_text is None else str(raw_text),
                label,
                label.lower() not in BENIGN,
                "" if kind is None else str(kind).strip(),
            )
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path}: not UTF-8 ({exc.reason} at byte {exc.start})") from exc
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{path}: invalid JSON: {exc.msg}") from exc
    except csv.Error as exc:
        raise DatasetError(f"{path}: malformed CSV: {exc}") from exc
