"""Reviewed data files (``moderation/data``): read the shipped one or an operator's, line by
line, with the line numbers that error messages name."""

from __future__ import annotations

from collections.abc import Iterator
from importlib import resources
from pathlib import Path


def read(name: str, path: Path | None = None) -> tuple[str, str]:
    """The text of ``path``, or of the shipped ``moderation/data/<name>``; and how an error
    message names the file."""
    if path is not None:
        return path.read_text(encoding="utf-8"), str(path)
    shipped = resources.files("moderation").joinpath("data", *name.split("/"))
    return shipped.read_text("utf-8"), f"moderation/data/{name}"


def pairs(name: str, *, nothing: str | None = None) -> dict[str, str]:
    """A shipped two-column table, the first cell of each row to its second (a second cell
    equal to ``nothing`` maps to the empty string). Later cells are notes."""
    return {cells[0]: "" if cells[1] == nothing else cells[1] for _, cells in rows(read(name)[0])}


def rows(text: str) -> Iterator[tuple[int, list[str]]]:
    """The line number and tab-separated cells of each line that is neither blank nor a
    comment (``#``)."""
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip() and not line.startswith("#"):
            yield number, line.split("\t")
