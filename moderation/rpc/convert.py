"""Proto <-> domain conversion. Enums convert by name, so the two cannot drift silently."""

from __future__ import annotations

from collections.abc import Iterable

from google.protobuf import json_format

from moderation.domain import (
    Category,
    Content,
    Decision,
    EscalationMode,
    EscalationStatus,
    ModerationResult,
    Severity,
    Source,
    Variant,
    canonical_jurisdiction,
)
from moderation.errors import InvalidRequest
from moderation.policy import Policy, PolicySet
from moderation.scorer import Scorer
from moderation.v1 import moderation_pb2 as pb

_CATEGORY = {c: pb.Category.Value(f"CATEGORY_{c.name}") for c in Category}
_SEVERITY = {s: pb.Severity.Value(f"SEVERITY_{s.name}") for s in Severity}
_DECISION = {d: pb.Decision.Value(f"DECISION_{d.name}") for d in Decision}
_SOURCE = {s: pb.Source.Value(f"SOURCE_{s.name}") for s in Source}
_VARIANT = {v: pb.Variant.Value(f"VARIANT_{v.name}") for v in Variant}
_STATUS = {s: pb.EscalationStatus.Value(f"ESCALATION_STATUS_{s.name}") for s in EscalationStatus}
_MODE = {
    pb.ESCALATION_MODE_UNSPECIFIED: EscalationMode.AUTO,
    **{pb.EscalationMode.Value(f"ESCALATION_MODE_{m.name}"): m for m in EscalationMode},
}


def to_content(request: pb.ModerateRequest) -> Content:
    """The domain item for a request; ``InvalidRequest`` for an unknown enum value."""
    mode = _MODE.get(request.escalation)
    if mode is None:
        names = ", ".join(pb.EscalationMode.keys())
        raise InvalidRequest(
            "escalation", f"unknown value {request.escalation}; use one of {names}"
        )
    context = request.context
    return Content(
        request.text,
        request.content_id,
        canonical_jurisdiction(request.jurisdiction),
        mode,
        context.surface,
        context.language,
    )


def to_response(result: ModerationResult) -> pb.ModerateResponse:
    """The wire answer for a result."""
    response = pb.ModerateResponse()
    _fill_response(response, result)
    return response


def to_batch_response(results: Iterable[ModerationResult]) -> pb.ModerateBatchResponse:
    """The wire answer for a batch, each result written in place (a message passed to a
    constructor is copied)."""
    response = pb.ModerateBatchResponse()
    add = response.results.add
    for result in results:
        _fill_response(add(), result)
    return response


#: Most answers have no labels and no model call: all but their content_id is one of a few
#: messages, built once and copied (a copy costs a quarter of filling the fields).
_PLAIN: dict[tuple[object, ...], pb.ModerateResponse] = {}
_MAX_PLAIN = 1024


def _fill_response(response: pb.ModerateResponse, result: ModerationResult) -> None:
    """Write the wire form of ``result`` into an empty ``response``."""
    escalation = result.escalation
    if not result.labels and not escalation.model:
        key = (
            result.decision,
            escalation,
            result.jurisdiction,
            result.policy_version,
            result.lexicon_version,
            result.scorer_version,
            result.scorer_training,
        )
        plain = _PLAIN.get(key)
        if plain is None:
            plain = pb.ModerateResponse()
            _fill(plain, result._replace(content_id="", risk=None))
            if len(_PLAIN) >= _MAX_PLAIN:
                _PLAIN.clear()
            _PLAIN[key] = plain
        response.CopyFrom(plain)
        response.content_id = result.content_id
        if result.risk is not None:
            response.risk_score = result.risk
        return
    _fill(response, result)


def _fill(response: pb.ModerateResponse, result: ModerationResult) -> None:
    """Every field, in place (``add`` and attribute writes on the submessages: passing
    submessages to a constructor copies each one)."""
    response.content_id = result.content_id
    response.decision = _DECISION[result.decision]
    for label in result.labels:
        added = response.labels.add(
            category=_CATEGORY[label.category],
            subcategory=label.subcategory,
            severity=_SEVERITY[label.severity],
            confidence=label.confidence,
            source=_SOURCE[label.source],
            rationale=label.rationale,
        )
        for e in label.evidence:
            added.evidence.add(
                start=e.start, end=e.end, text=e.text, term=e.term, variant=_VARIANT[e.variant]
            )
    escalation = result.escalation
    wire = response.escalation
    wire.status = _STATUS[escalation.status]
    wire.model = escalation.model
    wire.reason = escalation.reason
    wire.truncated = escalation.truncated
    nanos = round(escalation.latency_s * 1e9)
    if nanos:
        wire.latency.FromNanoseconds(nanos)
    else:
        wire.latency.SetInParent()  # zero, and present, as when no model call was made
    policy = response.policy
    policy.jurisdiction = result.jurisdiction
    policy.version = result.policy_version
    policy.lexicon_version = result.lexicon_version
    policy.scorer_version = result.scorer_version
    policy.scorer_training = result.scorer_training
    if result.risk is not None:
        response.risk_score = result.risk


def to_policy_info(policy: Policy) -> pb.PolicyInfo:
    """The wire description of a policy."""
    return pb.PolicyInfo(
        jurisdiction=policy.jurisdiction,
        version=policy.version,
        description=policy.description,
        enabled_categories=[_CATEGORY[c] for c in policy.enabled_categories],
        fail_mode=_DECISION[policy.fail_mode],
        escalate_at=None if policy.scorer.escalate_at == "never" else policy.scorer.escalate_at,
        block_at=None if policy.scorer.block_at == "never" else policy.scorer.block_at,
        model_endpoints=sorted(policy.model_endpoints),
    )


def to_policy_list(
    policies: PolicySet, lexicon_version: str, scorer: Scorer | None
) -> pb.ListPoliciesResponse:
    """The wire listing of the loaded policies, the lexicon and the scorer."""
    return pb.ListPoliciesResponse(
        policies=[to_policy_info(p) for p in policies],
        default_jurisdiction=policies.default,
        lexicon_version=lexicon_version,
        scorer_version=scorer.version if scorer else "",
        scorer_training=scorer.training_digest if scorer else "",
    )


def to_json(message: pb.ModerateResponse | pb.ListPoliciesResponse) -> dict[str, object]:
    """A message in the JSON form (README, "The JSON form"): proto3 JSON, snake_case names,
    enum names, all fields. For answers, ``jsonform.result_json`` builds the same directly."""
    return json_format.MessageToDict(
        message,
        preserving_proto_field_name=True,
        always_print_fields_with_no_presence=True,
    )
