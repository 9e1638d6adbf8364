"""The JSON form of an answer: what ``moderation check`` prints and batch reruns write, one
object a line.

It is the proto3 JSON of ``ModerateResponse`` (snake_case field names, enum value names, every
field present), built straight from the domain result: the generic protobuf printer costs about
50 µs a message and batch output writes millions. The tests hold the two equal. Imports only
``domain``: the batch engines need no gRPC to write answers.
"""

from __future__ import annotations

import functools
import struct

from moderation.domain import ModerationResult

_FLOAT32 = struct.Struct("<f")


@functools.lru_cache(maxsize=4096)
def float32(value: float) -> float:
    """A ``float`` field as proto3 JSON prints it: stored in 32 bits, then the shortest decimal
    (six to nine significant digits) that reads back as the same 32 bits."""
    stored: float = _FLOAT32.unpack(_FLOAT32.pack(value))[0]
    for precision in range(6, 10):
        shortest = float(f"{stored:.{precision}g}")
        if _FLOAT32.unpack(_FLOAT32.pack(shortest))[0] == stored:
            return shortest
    return stored


def duration(seconds: float) -> str:
    """proto3 JSON for a Duration: 0, 3, 6 or 9 fractional digits, as protobuf writes it."""
    nanos_total = round(seconds * 1e9)
    whole, nanos = divmod(nanos_total, 1_000_000_000)
    if nanos == 0:
        return f"{whole}s"
    if nanos % 1_000_000 == 0:
        return f"{whole}.{nanos // 1_000_000:03d}s"
    if nanos % 1_000 == 0:
        return f"{whole}.{nanos // 1_000:06d}s"
    return f"{whole}.{nanos:09d}s"


def result_json(result: ModerationResult) -> dict[str, object]:
    """The JSON form of a result."""
    escalation = result.escalation
    answer: dict[str, object] = {
        "content_id": result.content_id,
        "decision": f"DECISION_{result.decision.name}",
        "labels": [
            {
                "category": f"CATEGORY_{label.category.name}",
                "subcategory": label.subcategory,
                "severity": f"SEVERITY_{label.severity.name}",
                "confidence": float32(label.confidence),
                "source": f"SOURCE_{label.source.name}",
                "evidence": [
                    {
                        "start": e.start,
                        "end": e.end,
                        "text": e.text,
                        "term": e.term,
                        "variant": f"VARIANT_{e.variant.name}",
                    }
                    for e in label.evidence
                ],
                "rationale": label.rationale,
            }
            for label in result.labels
        ],
        "escalation": {
            "status": f"ESCALATION_STATUS_{escalation.status.name}",
            "model": escalation.model,
            "reason": escalation.reason,
            "latency": duration(escalation.latency_s),
            "truncated": escalation.truncated,
        },
        "policy": {
            "jurisdiction": result.jurisdiction,
            "version": result.policy_version,
            "lexicon_version": result.lexicon_version,
            "scorer_version": result.scorer_version,
            "scorer_training": result.scorer_training,
        },
    }
    if result.risk is not None:
        answer["risk_score"] = float32(result.risk)
    return answer
