"""Measure the cheap stage on a labelled dataset: what it catches, escalates, wrongly blocks.

Reads what ``moderation.datasets`` reads; labels that name a category (低俗色情, 博彩, ...) are
scored per category too. Runs the pipeline with the model forbidden, so "escalated" means
"would have asked the model", and "caught" means blocked, held for review or escalated.

Besides the answer under the policy as configured, it gives the operating curve: at several
thresholds on the scorer's probability, the harmful items caught and the benign items
escalated, for the rules alone, the scorer alone and the two together (the cascade), so an
operator can pick a policy's ``escalate_at`` from data like their own.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from moderation import decide
from moderation.datasets import CATEGORY_OF_LABEL, labelled_rows
from moderation.domain import (
    Content,
    Decision,
    EscalationMode,
    EscalationStatus,
    ModerationResult,
)
from moderation.errors import InvalidRequest
from moderation.pipeline import Moderator
from moderation.policy import Policy

#: Thresholds on the scorer's probability the operating curve is drawn at.
THRESHOLDS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


class Point(NamedTuple):
    """One item as the curve needs it: its label, what the rules alone did, its score."""

    harmful: bool
    rules_blocked: bool
    rules_escalated: bool
    rules_caught: bool
    risk: float | None


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
    points: list[Point] = field(default_factory=list)
    policy: Policy | None = None
    """The policy the items were judged under."""
    policies: list[Policy] = field(default_factory=list)
    """Every loaded policy (for the thresholds each uses)."""


def evaluate(
    moderator: Moderator,
    path: Path,
    *,
    text_col: str | None = None,
    label_col: str | None = None,
    jurisdiction: str = "",
    limit: int | None = None,
) -> Report:
    """Run the cheap stage over every row of ``path`` and tally the outcome."""
    report = Report(policies=list(moderator.policies))
    for index, row in enumerate(labelled_rows(path, text_col=text_col, label_col=label_col)):
        if limit is not None and index >= limit:
            break
        report.labels[row.label] += 1
        try:
            screening = moderator.screen(
                Content(text=row.text, jurisdiction=jurisdiction, escalation=EscalationMode.NEVER)
            )
        except InvalidRequest:
            report.skipped += 1
            continue
        report.policy = screening.policy
        result = moderator.decide_now(screening)
        rules_only = screening._replace(
            triage=decide.triage(screening.findings, screening.policy, EscalationMode.NEVER),
            risk=None,
        )
        by_rules = moderator.decide_now(rules_only)
        report.points.append(
            Point(
                row.harmful,
                by_rules.decision is Decision.BLOCK,
                _escalated(by_rules),
                _caught(by_rules),
                screening.risk,
            )
        )
        _tally(report, row.label, row.harmful, result)
    return report


def _escalated(result: ModerationResult) -> bool:
    return result.escalation.status is EscalationStatus.SKIPPED


def _caught(result: ModerationResult) -> bool:
    return _escalated(result) or result.decision is not Decision.ALLOW


def _tally(report: Report, label: str, harmful: bool, result: ModerationResult) -> None:
    escalated = _escalated(result)
    blocked = result.decision is Decision.BLOCK
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
            tally.caught += _caught(result)
            tally.blocked += blocked
            if blocked and category:
                tally.blocked_with_category += 1
                tally.blocked_right_category += category in found
        else:
            tally.benign += 1
            tally.benign_blocked += blocked


class CurvePoint(NamedTuple):
    """Shares at one threshold: harmful caught and benign escalated, by each stage."""

    threshold: float
    scorer_caught: float
    scorer_escalated: float
    cascade_caught: float
    cascade_escalated: float


def curve(points: Sequence[Point], thresholds: Sequence[float] = THRESHOLDS) -> list[CurvePoint]:
    """The operating curve of the scorer alone and of the cascade (rules, then the score)."""
    harmful = [p for p in points if p.harmful]
    benign = [p for p in points if not p.harmful]
    out = []
    for t in thresholds:

        def high(p: Point, t: float = t) -> bool:
            return p.risk is not None and p.risk >= t

        out.append(
            CurvePoint(
                t,
                _share(sum(high(p) for p in harmful), len(harmful)),
                _share(sum(high(p) for p in benign), len(benign)),
                _share(sum(p.rules_caught or high(p) for p in harmful), len(harmful)),
                _share(
                    sum(p.rules_escalated or (high(p) and not p.rules_blocked) for p in benign),
                    len(benign),
                ),
            )
        )
    return out


def auc(points: Sequence[Point]) -> float | None:
    """The scorer's ROC AUC on these items (ties count half), or None without both kinds."""
    scored = sorted((p.risk, p.harmful) for p in points if p.risk is not None)
    positives = sum(harmful for _, harmful in scored)
    negatives = len(scored) - positives
    if not positives or not negatives:
        return None
    rank_sum, i = 0.0, 0
    while i < len(scored):
        j = i
        while j < len(scored) and scored[j][0] == scored[i][0]:
            j += 1
        mean_rank = (i + j + 1) / 2  # ranks i+1..j share their mean
        rank_sum += mean_rank * sum(harmful for _, harmful in scored[i:j])
        i = j
    return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)


def _share(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:5.1f}%" if whole else "    -"


def render(report: Report, name: str) -> str:
    """Markdown tables of the report: the answers as configured, then the operating curve."""
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
    points = report.points
    if not points or all(p.risk is None for p in points):
        lines += ["", "No scorer: the rules alone route (MODERATION_SCORER_PATH=off)."]
        return "\n".join(lines)
    harmful = [p for p in points if p.harmful]
    benign = [p for p in points if not p.harmful]
    rules_caught = _pct(sum(p.rules_caught for p in harmful), len(harmful))
    rules_escalated = _pct(sum(p.rules_escalated for p in benign), len(benign))
    rules_blocked = _pct(sum(p.rules_blocked for p in benign), len(benign))
    area = auc(points)
    lines += [
        "",
        f"Operating curve (harmful caught / benign escalated). Scorer AUC: "
        f"{'-' if area is None else f'{area:.4f}'}. Rules alone: {rules_caught.strip()} caught, "
        f"{rules_escalated.strip()} of benign escalated, {rules_blocked.strip()} of benign "
        "blocked.",
        "",
        "| score >= | scorer alone: caught | scorer alone: escalated "
        "| cascade: caught | cascade: escalated |",
        "|---|---|---|---|---|",
    ]
    for c in curve(points):
        lines.append(
            f"| {c.threshold:.1f} | {100 * c.scorer_caught:5.1f}% "
            f"| {100 * c.scorer_escalated:5.1f}% | {100 * c.cascade_caught:5.1f}% "
            f"| {100 * c.cascade_escalated:5.1f}% |"
        )
    policy = report.policy
    if policy is not None:
        lines += [
            "",
            f"Policy {policy.jurisdiction} ({policy.version}) uses escalate_at = "
            f"{policy.scorer.escalate_at}, block_at = {policy.scorer.block_at}.",
        ]
    if report.policies:
        lines += ["", "| policy | escalate_at | block_at |", "|---|---|---|"]
        lines += [
            f"| {p.jurisdiction}{' (this run)' if p is policy else ''} "
            f"| {p.scorer.escalate_at} | {p.scorer.block_at} |"
            for p in report.policies
        ]
    return "\n".join(lines)
