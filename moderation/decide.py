"""Triage and decision: pure functions of the findings and a jurisdiction's policy.

``triage`` says whether the heuristics can decide (CLEAR) or the model is needed
(AMBIGUOUS), and why. ``decide`` maps findings to a decision through the policy's action
table (BLOCK dominates REVIEW dominates ALLOW) and ``labels`` groups them, one per category.
The final answer of an item is made here too, on each of its three roads: ``by_heuristics``
(the heuristics decide), ``without_model`` (the model was needed but not asked or not had)
and ``with_model`` (the model's judgement joined to the confident hits).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import NamedTuple

from moderation.domain import (
    Decision,
    EscalationMode,
    Evidence,
    Finding,
    Judgement,
    Label,
    Route,
    Severity,
    Triage,
)
from moderation.policy import Policy

_ASKED = Triage(Route.AMBIGUOUS, "caller asked for the model")
_NO_SIGNAL = Triage(Route.CLEAR, "no signal")
#: The triage of a confident blocking rule hit: the one a reporting, quoting or naming context
#: can turn into a question for the model (``mentioned``).
BLOCKING = Triage(Route.CLEAR, "confident blocking hit")
_CONFIDENT = Triage(Route.CLEAR, "confident hits")
_WEAK = Triage(Route.CLEAR, "only weak hits")


def enabled(findings: Iterable[Finding], policy: Policy) -> list[Finding]:
    """The findings whose category the policy acts on."""
    return [f for f in findings if policy.action(f.category, f.severity) is not None]


def is_confident(finding: Finding, policy: Policy) -> bool:
    """True when this finding alone may decide without the model under ``policy``."""
    rules = policy.ambiguity
    if finding.ambiguous and rules.ambiguous_terms:
        return False
    if finding.confidence < rules.min_confidence:
        return False
    return finding.severity not in policy.escalated_severities


def triage(
    findings: Sequence[Finding],
    policy: Policy,
    mode: EscalationMode,
    risk: float | None = None,
) -> Triage:
    """CLEAR when the heuristics can decide, AMBIGUOUS when the model should judge.

    ``risk`` is the scorer's probability (None: no scorer). A confident blocking rule hit
    decides whatever the score; a score at or over the policy's ``block_at`` blocks; doubtful
    rule hits, a score at or over ``escalate_at``, or both send the item to the model, and
    the reason says which.
    """
    if mode is EscalationMode.ALWAYS:
        return _ASKED
    high = risk is not None and risk >= policy.escalate_at
    if not findings and not high:
        return _NO_SIGNAL
    confident = [f for f in findings if is_confident(f, policy)]
    if confident and decide(confident, policy) is Decision.BLOCK:
        return BLOCKING
    if high and risk is not None and risk >= policy.block_at:
        return Triage(
            Route.CLEAR, f"risk score {risk:.2f} >= block_at {policy.block_at:g}", by_score=True
        )
    doubtful = [f for f in findings if not is_confident(f, policy) and _worth_asking(f, policy)]
    if doubtful or high:
        reasons = []
        if doubtful:
            first = doubtful[0]
            why = "ambiguous term" if first.ambiguous else "low-confidence hit"
            reasons.append(f"{why} ({first.category.name})")
        if high:
            reasons.append(f"risk score {risk:.2f} >= escalate_at {policy.escalate_at:g}")
        return Triage(Route.AMBIGUOUS, "; ".join(reasons), by_score=high)
    return _CONFIDENT if confident else _WEAK


#: Most confidence a hit keeps when the text only talks about it (below every policy's
#: ``min_confidence`` as shipped).
MENTIONED_CONFIDENCE = 0.5


def mentioned(
    findings: Iterable[Finding],
    policy: Policy,
    mode: EscalationMode,
    risk: float | None,
    context: str,
) -> tuple[list[Finding], Triage]:
    """The findings of a text that reports, quotes or names them (``context`` says which) and
    their triage: none decides alone any more, so the model judges (or, with the model off,
    the policy's fail mode), and the reason says why."""
    demoted = [
        f._replace(ambiguous=True, confidence=min(f.confidence, MENTIONED_CONFIDENCE))
        for f in findings
    ]
    asked = triage(demoted, policy, mode, risk)
    return demoted, asked._replace(reason=f"{context} context; {asked.reason}")


def _worth_asking(finding: Finding, policy: Policy) -> bool:
    """A doubtful LOW hit the policy would allow anyway is not worth a model call (我草)."""
    return not (
        finding.severity is Severity.LOW
        and policy.action(finding.category, finding.severity) is Decision.ALLOW
    )


def decide(findings: Iterable[Finding], policy: Policy) -> Decision:
    """The strictest action the policy assigns to any finding; ALLOW when there is none."""
    decision = Decision.ALLOW
    for finding in findings:
        action = policy.action(finding.category, finding.severity)
        if action is not None and action > decision:
            decision = action
    return decision


def labels(findings: Sequence[Finding]) -> tuple[Label, ...]:
    """One label per category: the worst severity, the highest confidence, all the evidence."""
    if not findings:
        return ()
    if len(findings) == 1:
        (f,) = findings
        return (
            Label(f.category, f.subcategory, f.severity, f.confidence, f.source, (f.evidence,)),
        )
    grouped: dict[object, list[Finding]] = {}
    for finding in findings:
        group = grouped.get(finding.category)
        if group is None:
            grouped[finding.category] = [finding]
        else:
            group.append(finding)
    result = []
    for group in grouped.values():
        worst = group[0]
        confidence = worst.confidence
        for f in group[1:]:
            if (f.severity, f.confidence) > (worst.severity, worst.confidence):
                worst = f
            if f.confidence > confidence:
                confidence = f.confidence
        evidence = sorted({f.evidence for f in group}, key=_evidence_order)
        result.append(
            Label(
                worst.category,
                worst.subcategory,
                worst.severity,
                confidence,
                worst.source,
                tuple(evidence),
            )
        )
    if len(result) > 1:
        result.sort(key=_label_order)
    return tuple(result)


def with_label(labels: tuple[Label, ...], label: Label) -> tuple[Label, ...]:
    """``labels`` with ``label`` added in order, unless a label of its category is there."""
    if any(existing.category is label.category for existing in labels):
        return labels
    return tuple(sorted((*labels, label), key=_label_order))


def _evidence_order(e: Evidence) -> tuple[int, int, str]:
    return e.start, e.end, e.term


def _label_order(label: Label) -> tuple[int, str]:
    return -label.severity, label.category.value


class Answer(NamedTuple):
    """What an item is given: the decision and its labels, most severe first."""

    decision: Decision
    labels: tuple[Label, ...]


#: The scorer's label for a text at a severity (None: no scorer): for a decision the score made.
ScorerLabel = Callable[[Severity], Label | None]


def _with_scorer(
    labels: tuple[Label, ...], policy: Policy, scorer_label: ScorerLabel, severity: Severity
) -> tuple[Label, ...]:
    """``labels`` with the scorer's, when the policy acts on its category at ``severity`` and
    no rule found that category already."""
    label = scorer_label(severity)
    if label is None or policy.action(label.category, severity) is None:
        return labels
    return with_label(labels, label)


def by_heuristics(
    findings: Sequence[Finding], triage: Triage, policy: Policy, scorer_label: ScorerLabel
) -> Answer:
    """The answer of an item the heuristics decide (the CLEAR road): every finding counts, and
    a score at ``block_at`` blocks with the scorer's label (HIGH)."""
    found = labels(findings)
    if triage.by_score:
        return Answer(Decision.BLOCK, _with_scorer(found, policy, scorer_label, Severity.HIGH))
    return Answer(decide(findings, policy), found)


def without_model(
    findings: Sequence[Finding], triage: Triage, policy: Policy, scorer_label: ScorerLabel
) -> Answer:
    """The answer of an item the model was needed for but not asked or not had: the confident
    hits decide, with the policy's fail mode as the floor. Doubtful hits still show as labels
    for a reviewer, and a high score adds the scorer's label (MEDIUM)."""
    confident = [f for f in findings if is_confident(f, policy)]
    decision = max(policy.fail_mode, decide(confident, policy))
    found = labels(findings)
    if triage.by_score:
        found = _with_scorer(found, policy, scorer_label, Severity.MEDIUM)
    return Answer(decision, found)


def with_model(findings: Sequence[Finding], policy: Policy, judgement: Judgement) -> Answer:
    """The answer of an item the model judged: the confident hits and the model's labels that
    the policy acts on, the strictest action deciding. A model label keeps the heuristics'
    evidence for its category. Not safe, yet nothing blocked or held, in a category the policy
    acts on (or without saying why): REVIEW, a human decides."""
    confident = [f for f in findings if is_confident(f, policy)]
    heuristic = {label.category: label for label in labels(findings)}
    decision = decide(confident, policy) if confident else Decision.ALLOW
    kept: dict[object, Label] = {label.category: label for label in labels(confident)}
    acted_on = False
    for label in judgement.labels:
        action = policy.action(label.category, label.severity)
        if action is None:
            continue
        acted_on = True
        decision = max(decision, action)
        seen = heuristic.get(label.category)
        kept[label.category] = Label(
            category=label.category,
            subcategory=label.subcategory or (seen.subcategory if seen else ""),
            severity=label.severity,
            confidence=label.confidence,
            source=label.source,
            evidence=seen.evidence if seen else (),
            rationale=label.rationale,
        )
    if (
        judgement.verdict != "safe"
        and decision is Decision.ALLOW
        and (acted_on or not judgement.labels)
    ):
        # Labels only in categories this policy ignores stay allowed.
        decision = Decision.REVIEW
    return Answer(decision, tuple(sorted(kept.values(), key=_label_order)))
