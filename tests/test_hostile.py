"""What a hostile or careless client sends: the server answers, stays responsive, loses nothing."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from moderation.domain import Category, Content, Decision
from moderation.lexicon import MAX_HITS_PER_ENTRY
from moderation.pipeline import Moderator
from moderation.v1 import moderation_pb2 as pb

if TYPE_CHECKING:
    from moderation.v1.moderation_pb2_grpc import ModerationServiceAsyncStub as Stub

LONG = 20_000
#: Texts whose matches once cost the square of their number (seconds each).
DENSE = {
    "group and negative words": "河南人骗子",
    "an insult": "傻逼",
    "a term inside its allow context": "草地",
    "pinyin initials": "nmsl ",
    "phone numbers": "13812345678 ",
    "a homophone that is an ordinary word": "学习",
}


def _dense(unit: str) -> str:
    return (unit * (LONG // len(unit) + 1))[:LONG]


@pytest.mark.parametrize("unit", list(DENSE.values()), ids=list(DENSE))
def test_dense_matches_keep_at_most_a_few_spans_per_rule(moderator: Moderator, unit: str) -> None:
    """A text made of one match repeated is judged as its parts are, with bounded evidence."""
    short, _ = moderator.heuristics(Content(text=unit * 3))
    long, _ = moderator.heuristics(Content(text=_dense(unit)))
    assert {f.rule for f in short.findings} <= {f.rule for f in long.findings}
    per_rule: dict[str, int] = {}
    for finding in long.findings:
        per_rule[finding.rule] = per_rule.get(finding.rule, 0) + 1
    assert max(per_rule.values(), default=0) <= MAX_HITS_PER_ENTRY


def test_a_term_after_many_of_its_allow_contexts_is_still_found(moderator: Moderator) -> None:
    """Thousands of 草地 do not hide a 草泥马 at the end."""
    screening, _ = moderator.heuristics(Content(text="草地" * 5000 + "草泥马"))
    assert Category.ABUSE in {f.category for f in screening.findings}
    assert any(f.evidence.text == "草泥马" for f in screening.findings)


def test_a_disguise_after_many_ordinary_look_alikes_is_still_escalated(
    moderator: Moderator,
) -> None:
    """Padding with an ordinary word that sounds like a term does not hide the term's homophone:
    past the checks' budget, candidates count as hits (towards review, never towards allow)."""
    screening, result = moderator.heuristics(Content(text="学习" * 3000 + "，雪洗他们"))
    assert screening.findings, "the homophone of 血洗 after the padding was not seen"
    assert result is None or result.decision is not Decision.ALLOW


async def test_health_answers_while_a_batch_of_worst_cases_is_screened(
    stub: Stub, channel: grpc.aio.Channel
) -> None:
    """Screening a heavy batch runs off the event loop: health checks answer meanwhile."""
    items = [pb.ModerateRequest(content_id=str(i), text=_dense("河南人骗子")) for i in range(60)]
    batch = asyncio.ensure_future(stub.ModerateBatch(pb.ModerateBatchRequest(items=items)))
    health = health_pb2_grpc.HealthStub(channel)
    await asyncio.sleep(0.05)
    slowest = 0.0
    while not batch.done():
        began = time.monotonic()
        reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=5)
        slowest = max(slowest, time.monotonic() - began)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        await asyncio.sleep(0.02)
    answers = (await batch).results
    assert [a.content_id for a in answers] == [str(i) for i in range(60)]
    assert all(a.decision != pb.DECISION_ALLOW for a in answers)
    assert slowest < 2.0, f"a health check waited {slowest:.2f} s behind the batch"


async def test_the_callers_deadline_bounds_screening_of_a_heavy_batch(stub: Stub) -> None:
    """A batch that cannot be screened within its deadline ends DEADLINE_EXCEEDED near it."""
    items = [pb.ModerateRequest(content_id=str(i), text=_dense("傻逼")) for i in range(500)]
    began = time.monotonic()
    with pytest.raises(grpc.aio.AioRpcError) as failure:
        await stub.ModerateBatch(pb.ModerateBatchRequest(items=items), timeout=0.3)
    assert failure.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert time.monotonic() - began < 3.0
