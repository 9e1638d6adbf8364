"""Proto <-> domain conversion. Enums convert by name, so the two cannot drift silently."""

from __future__ import annotations

from google.protobuf import json_format
from google.protobuf.duration_pb2 import Duration

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
)
from moderation.errors import InvalidRequest
from moderation.policy import Policy
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
    return Content(
        text=request.text,
        content_id=request.content_id,
        jurisdiction=request.jurisdiction.strip().upper(),
        escalation=mode,
        surface=request.context.surface,
        language=request.context.language,
    )


def _duration(seconds: float) -> Duration:
    duration = Duration()
    duration.FromNanoseconds(round(seconds * 1e9))
    return duration


def to_response(result: ModerationResult) -> pb.ModerateResponse:
    """The wire answer for a result."""
    escalation = result.escalation
    return pb.ModerateResponse(
        content_id=result.content_id,
        decision=_DECISION[result.decision],
        labels=[
            pb.Label(
                category=_CATEGORY[label.category],
                subcategory=label.subcategory,
                severity=_SEVERITY[label.severity],
                confidence=label.confidence,
                source=_SOURCE[label.source],
                evidence=[
                    pb.Evidence(
                        start=e.start,
                        end=e.end,
                        text=e.text,
                        term=e.term,
                        variant=_VARIANT[e.variant],
                    )
                    for e in label.evidence
                ],
                rationale=label.rationale,
            )
            for label in result.labels
        ],
        escalation=pb.Escalation(
            status=_STATUS[escalation.status],
            model=escalation.model,
            reason=escalation.reason,
            latency=_duration(escalation.latency_s),
            truncated=escalation.truncated,
        ),
        policy=pb.PolicyRef(
            jurisdiction=result.jurisdiction,
            version=result.policy_version,
            lexicon_version=result.lexicon_version,
        ),
    )


def to_policy_info(policy: Policy) -> pb.PolicyInfo:
    """The wire description of a policy."""
    return pb.PolicyInfo(
        jurisdiction=policy.jurisdiction,
        version=policy.version,
        description=policy.description,
        enabled_categories=[_CATEGORY[c] for c in policy.enabled_categories],
        fail_mode=_DECISION[policy.fail_mode],
    )


def to_json(message: pb.ModerateResponse | pb.ListPoliciesResponse) -> dict[str, object]:
    """The JSON form of DESIGN.md: proto3 JSON, snake_case names, enum names, all fields."""
    return json_format.MessageToDict(
        message,
        preserving_proto_field_name=True,
        always_print_fields_with_no_presence=True,
    )
