"""Measure the heuristics on a labeled dataset: what they catch, what they wrongly block.

Reads CSV, TSV, JSONL or a JSON array; finds the text and label columns by common names or as
given. A label is benign when it reads as "no" (0, false, safe, 不违规, ...); anything else is
harmful, and labels that name a category (低俗色情, 博彩, ...) are scored per category too.
Runs the pipeline with the model forbidden, so "escalated" means "would have asked the model".
"""

from __future__ import annotations

import csv
import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from moderation.domain import Content, Decision, EscalationMode, EscalationStatus
from moderation.errors import InvalidRequest
from moderation.pipeline import Moderator

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


class DatasetError(ValueError):
    """The dataset cannot be read as asked; the message says why."""


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
                        yield json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise DatasetError(f"{path}:{number}: invalid JSON: {exc.msg}") from exc
    elif suffix == ".json":
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, list):
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


@dataclass
class Tally:
    """Counts for one slice of the data."""

    harmful: int = 0
    caught: int = 0
    """Harmful items blocked, held for review, or escalated."""
    blocked: int = 0
    """Harmful items blocked."""
    blocked_right_category: int = 0
    blocked_with_category: int = 0
    benign: int = 0
    benign_blocked: int = 0
    decided: int = 0
    escalated: int = 0
    total: int = 0


@dataclass
class Report:
    """The result of an evaluation."""

    overall: Tally = field(default_factory=Tally)
    by_category: dict[str, Tally] = field(default_factory=lambda: defaultdict(Tally))
    skipped: int = 0
    labels: Counter[str] = field(default_factory=Counter)


def evaluate(
    moderator: Moderator,
    path: Path,
    *,
    text_col: str | None = None,
    label_col: str | None = None,
    jurisdiction: str = "",
    limit: int | None = None,
) -> Report:
    """Run the heuristics over every row of ``path`` and tally the outcome."""
    report = Report()
    columns: tuple[str, str] | None = None
    for index, row in enumerate(_rows(path)):
        if limit is not None and index >= limit:
            break
        if columns is None:
            columns = (
                _pick(row, text_col, TEXT_COLUMNS, "text"),
                _pick(row, label_col, LABEL_COLUMNS, "label"),
            )
        raw_text, raw_label = row.get(columns[0]), row.get(columns[1])
        text = "" if raw_text is None else str(raw_text)
        label = "" if raw_label is None else str(raw_label).strip()
        report.labels[label] += 1
        try:
            screening = moderator.screen(
                Content(text=text, jurisdiction=jurisdiction, escalation=EscalationMode.NEVER)
            )
        except InvalidRequest:
            report.skipped += 1
            continue
        result = moderator.decide_now(screening)
        escalated = result.escalation.status is EscalationStatus.SKIPPED
        blocked = result.decision is Decision.BLOCK
        harmful = label.lower() not in BENIGN
        category = CATEGORY_OF_LABEL.get(label)
        slices = [report.overall]
        if category:
            slices.append(report.by_category[category])
        elif not harmful:
            slices.append(report.by_category["(benign)"])
        found = {lab.category.name for lab in result.labels}
        for tally in slices:
            tally.total += 1
            tally.escalated += escalated
            tally.decided += not escalated
            if harmful:
                tally.harmful += 1
                tally.caught += escalated or result.decision is not Decision.ALLOW
                tally.blocked += blocked
                if blocked and category:
                    tally.blocked_with_category += 1
                    tally.blocked_right_category += category in found
            else:
                tally.benign += 1
                tally.benign_blocked += blocked
    return report


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:5.1f}%" if whole else "    -"


def render(report: Report, name: str) -> str:
    """A Markdown table of the report."""
    lines = [
        f"{name}: {report.overall.total} items ({report.skipped} skipped as invalid)",
        "",
        "| slice | items | recall (blocked, review or escalated) | recall (blocked) "
        "| false-block rate | decided without model | escalated | blocked with right category |",
        "|---|---|---|---|---|---|---|---|",
    ]
    rows = [("all", report.overall), *sorted(report.by_category.items())]
    for label, t in rows:
        lines.append(
            f"| {label} | {t.total} | {_pct(t.caught, t.harmful)} | {_pct(t.blocked, t.harmful)} "
            f"| {_pct(t.benign_blocked, t.benign)} "
            f"| {_pct(t.decided, t.total)} | {_pct(t.escalated, t.total)} "
            f"| {_pct(t.blocked_right_category, t.blocked_with_category)} |"
        )
    return "\n".join(lines)
