"""The ``Moderator``: one transport-free core behind the gRPC servicer, the CLI and batch.

normalize -> detect -> triage -> [escalate] -> decide, then one canonical log line per
decision (ids, fingerprint, versions, decision, categories, rules, timings; never the text).
A failing model never fails a request: the answer is degraded and says so.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import NamedTuple, Protocol

import structlog

from moderation import decide
from moderation.context import Contexts
from moderation.detect import Detector
from moderation.domain import (
    Content,
    Escalation,
    EscalationMode,
    EscalationStatus,
    Finding,
    Judgement,
    Label,
    ModelUsage,
    ModerationResult,
    Route,
    Severity,
    Source,
    Triage,
)
from moderation.errors import (
    DeadlineExceeded,
    EmptyText,
    InvalidRequest,
    ModelError,
    TextTooLong,
    UnknownJurisdiction,
)
from moderation.log import enabled as logging_enabled
from moderation.normalize import Normalized, Normalizer
from moderation.policy import Policy, PolicySet
from moderation.scorer import Scorer

log = structlog.get_logger("moderation")

MAX_CONTENT_ID_CHARS = 256
MAX_HINT_CHARS = 64
MAX_JURISDICTION_CHARS = 32
#: Past this many characters in one call, screening runs in a worker thread, so the event
#: loop (health checks, other calls, signals) is never held for long by one caller.
OFF_LOOP_CHARS = 4096


@functools.lru_cache(maxsize=64)
def _not_needed(reason: str) -> Escalation:
    """The escalation of an item the heuristics decided (one shared value per reason)."""
    return Escalation(EscalationStatus.NOT_NEEDED, reason)


def _check_hint(name: str, value: str) -> None:
    """``InvalidRequest`` when a context hint is longer than ``MAX_HINT_CHARS``."""
    if len(value) > MAX_HINT_CHARS:
        raise InvalidRequest(name, f"is {len(value)} characters; the limit is {MAX_HINT_CHARS}")


class Escalator(Protocol):
    """Asks a model to judge an ambiguous item under a policy."""

    @property
    def host(self) -> str:
        """Host of the model endpoint (checked against the policy's data residency)."""
        ...

    @property
    def model(self) -> str:
        """The model id."""
        ...

    async def judge(
        self, screening: Screening, policy: Policy, budget_s: float | None
    ) -> Judgement:
        """The model's judgement within ``budget_s`` seconds (None: the escalator's own budget).

        Raises ``ModelError`` when a judgement cannot be had in time.
        """
        ...

    def usage(self) -> ModelUsage:
        """Model requests, tokens, cost, cache and breaker figures so far."""
        ...

    async def aclose(self) -> None:
        """Release connections and files."""
        ...


class Screening(NamedTuple):
    """What the heuristics saw: the normalized view, enabled findings and the triage."""

    content: Content
    policy: Policy
    normalized: Normalized
    findings: tuple[Finding, ...]
    triage: Triage
    began: float
    """``time.monotonic()`` when screening began (the logged latency counts from it)."""
    risk: float | None = None
    """The scorer's probability that the content is harmful (None: no scorer)."""


class Decided(NamedTuple):
    """An item the heuristics answered."""

    screening: Screening
    result: ModerationResult


class ForModel(NamedTuple):
    """An item the heuristics could not decide: ``Moderator.escalate`` answers it."""

    screening: Screening


#: What screening an item gave.
Screened = Decided | ForModel


class Moderator:
    """Judges content. Build once at start; ``moderate`` is safe to call concurrently."""

    def __init__(
        self,
        *,
        normalizer: Normalizer,
        detectors: Sequence[Detector],
        policies: PolicySet,
        lexicon_version: str,
        fingerprint: Callable[[str], str],
        escalator: Escalator | None = None,
        scorer: Scorer | None = None,
        max_text_chars: int = 20_000,
        on_result: Callable[[ModerationResult], None] | None = None,
        log_decisions: bool = True,
        contexts: Contexts | None = None,
    ) -> None:
        self._contexts = contexts
        self._normalize = normalizer
        self._log_decisions = log_decisions
        self.scorer = scorer
        self._score = None if scorer is None else scorer.score
        self._scorer_stamp = (
            ("", "") if scorer is None else (scorer.version, scorer.training_digest)
        )
        self._on_result = on_result
        self._detectors = tuple(detectors)
        self.policies = policies
        self.lexicon_version = lexicon_version
        self._fingerprint = fingerprint
        self.escalator = escalator
        self.max_text_chars = max_text_chars

    def model_usage(self) -> ModelUsage:
        """The model's figures so far (all zero without a model)."""
        return ModelUsage() if self.escalator is None else self.escalator.usage()

    async def aclose(self) -> None:
        """Release what the escalator holds (connections, the cache file)."""
        if self.escalator is not None:
            await self.escalator.aclose()

    def validate(self, content: Content) -> Policy:
        """The policy for ``content``, or ``InvalidRequest`` naming the field and the limit."""
        text = content.text
        if len(content.content_id) > MAX_CONTENT_ID_CHARS:
            raise InvalidRequest(
                "content_id",
                f"is {len(content.content_id)} characters; the limit is {MAX_CONTENT_ID_CHARS}",
            )
        if not text or text.isspace():
            raise EmptyText("text", "must not be empty")
        if len(text) > self.max_text_chars:
            raise TextTooLong(
                "text", f"is {len(text)} characters; the limit is {self.max_text_chars}"
            )
        _check_hint("context.surface", content.surface)
        _check_hint("context.language", content.language)
        policy = self.policies.get(content.jurisdiction)
        if policy is None:
            known = ", ".join(p.jurisdiction for p in self.policies)
            if len(content.jurisdiction) > MAX_JURISDICTION_CHARS:  # never echo it back whole
                raise UnknownJurisdiction(
                    "jurisdiction",
                    f"is {len(content.jurisdiction)} characters; a jurisdiction is a short code "
                    f"(at most {MAX_JURISDICTION_CHARS}), one of: {known}",
                )
            raise UnknownJurisdiction(
                "jurisdiction", f"unknown jurisdiction {content.jurisdiction!r}; known: {known}"
            )
        return policy

    def screen(self, content: Content) -> Screening:
        """Validate, normalize, detect and triage: the pure, synchronous part."""
        began = time.monotonic()
        policy = self.validate(content)
        normalized = self._normalize(content.text)
        findings: list[Finding] = []
        for detector in self._detectors:
            findings.extend(detector.detect(normalized, policy.jurisdiction))
        if findings:
            findings = decide.enabled(findings, policy)
        risk = None if self._score is None else self._score(normalized.text)
        triage = decide.triage(findings, policy, content.escalation, risk)
        if triage == decide.BLOCKING and self._contexts is not None:
            kind = self._contexts.find(content.text, normalized.text, findings)
            if kind is not None:
                findings, triage = decide.mentioned(
                    findings, policy, content.escalation, risk, kind
                )
        return Screening(content, policy, normalized, tuple(findings), triage, began, risk)

    def heuristics(self, content: Content) -> Screened:
        """Screen ``content`` and, when the heuristics can decide it, answer and log at once
        (``Decided``); otherwise the item is ``ForModel``: pass it to ``escalate``.

        Raises ``InvalidRequest`` for bad input.
        """
        screening = self.screen(content)
        if screening.triage.route is not Route.CLEAR:
            return ForModel(screening)
        result = self._heuristic(screening, _not_needed(screening.triage.reason))
        self._log(screening, result)
        return Decided(screening, result)

    async def escalate(self, screening: Screening, deadline: float | None) -> ModerationResult:
        """Answer and log an item the heuristics could not decide; never raises for a failing
        model. ``deadline`` is a ``time.monotonic()`` instant bounding the model call."""
        result = await self._escalate(screening, deadline)
        self._log(screening, result)
        return result

    async def moderate(
        self, content: Content, *, deadline: float | None = None
    ) -> ModerationResult:
        """Judge one item. ``deadline`` is a ``time.monotonic()`` instant bounding the model call.

        Raises ``InvalidRequest`` for bad input; never raises for a failing model. A long text
        is screened in a worker thread (``OFF_LOOP_CHARS``).
        """
        if len(content.text) <= OFF_LOOP_CHARS:
            screened = self.heuristics(content)
        else:
            (screened,) = await self.heuristics_off_loop([content], deadline)
        if isinstance(screened, Decided):
            return screened.result
        return await self.escalate(screened.screening, deadline)

    async def moderate_many(
        self,
        contents: Sequence[Content],
        *,
        deadline: float | None = None,
        concurrency: int = 32,
        off_loop: bool = True,
    ) -> list[ModerationResult]:
        """Judge several items, in order; at most ``concurrency`` model calls at once.

        Items the heuristics can decide are answered inline; only escalations become tasks.
        When the items hold more than ``OFF_LOOP_CHARS`` characters in all, they are screened
        in a worker thread, which gives up with ``DeadlineExceeded`` once ``deadline`` passes;
        unless not ``off_loop``: a batch run, with nothing else for the event loop to serve,
        screens on the calling thread (the hand-over to a thread costs it a third of its speed).
        """
        if not off_loop or sum(len(c.text) for c in contents) <= OFF_LOOP_CHARS:
            screened = [self.heuristics(content) for content in contents]
        else:
            screened = await self.heuristics_off_loop(contents, deadline)
        results: dict[int, ModerationResult] = {
            i: item.result for i, item in enumerate(screened) if isinstance(item, Decided)
        }
        if len(results) < len(screened):
            slots = asyncio.Semaphore(concurrency)

            async def one(index: int, screening: Screening) -> None:
                async with slots:
                    results[index] = await self.escalate(screening, deadline)

            await asyncio.gather(
                *(one(i, item.screening) for i, item in enumerate(screened) if i not in results)
            )
        return [results[i] for i in range(len(screened))]

    async def heuristics_off_loop(
        self, contents: Sequence[Content], deadline: float | None
    ) -> list[Screened]:
        """``heuristics`` for each item, in a worker thread, so the event loop stays free.

        Between items the thread checks ``deadline`` (``DeadlineExceeded`` once it passed) and
        whether the caller went away (a cancelled call stops the thread at the next item).
        """
        stop = threading.Event()

        def work() -> list[Screened]:
            out: list[Screened] = []
            for content in contents:
                if stop.is_set():
                    break
                if deadline is not None and time.monotonic() > deadline:
                    raise DeadlineExceeded(
                        f"the deadline passed after {len(out)} of {len(contents)} items"
                    )
                out.append(self.heuristics(content))
            return out

        try:
            return await asyncio.to_thread(work)
        finally:
            stop.set()  # cancelled: the thread stops at its next item

    def decide_now(self, screening: Screening) -> ModerationResult:
        """Answer from the heuristics alone (no model, no log line): CLEAR items are decided,
        AMBIGUOUS ones degrade with status SKIPPED. For evaluation."""
        if screening.triage.route is Route.CLEAR:
            return self._heuristic(screening, _not_needed(screening.triage.reason))
        return self._degraded(
            screening, Escalation(EscalationStatus.SKIPPED, screening.triage.reason)
        )

    def _result(
        self, screening: Screening, answer: decide.Answer, escalation: Escalation
    ) -> ModerationResult:
        policy = screening.policy
        return ModerationResult(  # by position: built for every item, twice as fast
            screening.content.content_id,
            answer.decision,
            answer.labels,
            escalation,
            policy.jurisdiction,
            policy.version,
            self.lexicon_version,
            screening.findings,
            screening.risk,
            *self._scorer_stamp,
        )

    def _heuristic(self, screening: Screening, escalation: Escalation) -> ModerationResult:
        """Decided by the heuristics alone (the CLEAR route)."""
        answer = decide.by_heuristics(
            screening.findings, screening.triage, screening.policy, self._scorer_label(screening)
        )
        return self._result(screening, answer, escalation)

    def _degraded(self, screening: Screening, escalation: Escalation) -> ModerationResult:
        """The model was needed but not asked or not had."""
        answer = decide.without_model(
            screening.findings, screening.triage, screening.policy, self._scorer_label(screening)
        )
        return self._result(screening, answer, escalation)

    def _scorer_label(self, screening: Screening) -> decide.ScorerLabel:
        """The scorer's label for the screened text at a severity: its category, and as
        evidence the spans that raised the score most."""

        def label(severity: Severity) -> Label | None:
            scorer, risk = self.scorer, screening.risk
            if scorer is None or risk is None:
                return None
            category, subcategory = scorer.kind(screening.normalized.text)
            return Label(
                category=category,
                subcategory=subcategory,
                severity=severity,
                confidence=round(risk, 4),
                source=Source.SCORER,
                evidence=scorer.evidence(screening.normalized),
            )

        return label

    async def _escalate(self, screening: Screening, deadline: float | None) -> ModerationResult:
        policy = screening.policy
        reason = screening.triage.reason
        if screening.content.escalation is EscalationMode.NEVER:
            return self._degraded(
                screening,
                Escalation(EscalationStatus.SKIPPED, f"{reason}; caller asked for no model"),
            )
        escalator = self.escalator
        if escalator is None:
            return self._degraded(
                screening,
                Escalation(EscalationStatus.UNAVAILABLE, f"{reason}; no model configured"),
            )
        if not policy.allows_endpoint(escalator.host):
            return self._degraded(
                screening,
                Escalation(
                    EscalationStatus.UNAVAILABLE,
                    f"{reason}; policy {policy.jurisdiction} does not allow sending "
                    f"content to {escalator.host}",
                ),
            )
        budget = None if deadline is None else max(0.0, deadline - time.monotonic())
        try:
            judgement = await escalator.judge(screening, policy, budget)
        except ModelError as exc:
            return self._degraded(
                screening,
                Escalation(
                    EscalationStatus.UNAVAILABLE,
                    f"{reason}; model failed: {type(exc).__name__}",
                    model=escalator.model,
                ),
            )
        answer = decide.with_model(screening.findings, policy, judgement)
        status = EscalationStatus.CACHED if judgement.cached else EscalationStatus.RESOLVED
        escalation = Escalation(
            status,
            reason,
            judgement.model,
            judgement.latency_s,
            judgement.truncated,
            judgement.prompt_tokens,
            judgement.completion_tokens,
            judgement.cost,
        )
        return self._result(screening, answer, escalation)

    def _log(self, screening: Screening, result: ModerationResult) -> None:
        if self._on_result is not None:
            self._on_result(result)
        if not (self._log_decisions and logging_enabled(logging.INFO)):
            return
        escalation = result.escalation
        model: dict[str, object] = {}
        if escalation.model:  # the model was asked: what it cost
            model = {
                "model": escalation.model,
                "model_latency_ms": round(escalation.latency_s * 1000, 2),
                "prompt_tokens": escalation.prompt_tokens,
                "completion_tokens": escalation.completion_tokens,
                "cost": escalation.cost,
            }
        log.info(
            "moderation.decided",
            content_id=result.content_id,
            jurisdiction=result.jurisdiction,
            decision=result.decision.name,
            categories=[label.category.name for label in result.labels],
            rules=sorted({f.rule for f in screening.findings}),
            route=screening.triage.route.name,
            risk=None if result.risk is None else round(result.risk, 4),
            escalation=escalation.status.name,
            escalation_reason=escalation.reason,
            policy_version=result.policy_version,
            lexicon_version=result.lexicon_version,
            scorer_version=result.scorer_version,
            latency_ms=round((time.monotonic() - screening.began) * 1000, 3),
            chars=len(screening.content.text),
            text_fp=self._fingerprint(screening.content.text),
            **model,
        )
