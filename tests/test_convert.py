"""The JSON form written directly equals the protobuf JSON printer's, field for field."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from moderation.domain import (
    Category,
    Decision,
    Escalation,
    EscalationStatus,
    Evidence,
    Label,
    ModerationResult,
    Severity,
    Source,
    Variant,
)
from moderation.jsonform import result_json
from moderation.pipeline import Moderator
from moderation.rpc import convert
from moderation.v1 import moderation_pb2 as pb
from tests.corpus_cases import judge, load

evidence = st.builds(
    Evidence,
    start=st.integers(0, 10_000),
    end=st.integers(0, 10_000),
    text=st.text(max_size=5),
    term=st.text(max_size=5),
    variant=st.sampled_from(Variant),
)
labels = st.builds(
    Label,
    category=st.sampled_from(Category),
    subcategory=st.text(max_size=8),
    severity=st.sampled_from(Severity),
    confidence=st.floats(0, 1),
    source=st.sampled_from(Source),
    evidence=st.lists(evidence, max_size=3).map(tuple),
    rationale=st.text(max_size=20),
)
results = st.builds(
    ModerationResult,
    content_id=st.text(max_size=10),
    decision=st.sampled_from(Decision),
    labels=st.lists(labels, max_size=3).map(tuple),
    escalation=st.builds(
        Escalation,
        status=st.sampled_from(EscalationStatus),
        reason=st.text(max_size=10),
        model=st.text(max_size=10),
        latency_s=st.floats(0, 100),
        truncated=st.booleans(),
    ),
    jurisdiction=st.sampled_from(["CN", "US", "GLOBAL"]),
    policy_version=st.text(max_size=10),
    lexicon_version=st.text(max_size=10),
    risk=st.none() | st.floats(0, 1),
    scorer_version=st.text(max_size=10),
    scorer_training=st.text(max_size=10),
)


@settings(max_examples=300, deadline=None)
@given(results)
def test_direct_json_equals_the_printer(result: ModerationResult) -> None:
    """Any result: the direct mapping and MessageToDict agree."""
    assert result_json(result) == convert.to_json(convert.to_response(result))


@pytest.mark.parametrize("seconds", [0, 0.12, 1.5, 0.000123, 2.000000001, 12.345678])
def test_durations(seconds: float) -> None:
    """Durations print with 0, 3, 6 or 9 fractional digits, as proto3 JSON wants."""
    result = ModerationResult(
        "x",
        Decision.ALLOW,
        (),
        Escalation(EscalationStatus.RESOLVED, latency_s=seconds),
        "GLOBAL",
        "v",
        "l",
    )
    assert result_json(result) == convert.to_json(convert.to_response(result))


def test_corpus_results(moderator: Moderator) -> None:
    """Real results of the corpus convert the same both ways."""
    for case in itertools.islice(load(), 0, None, 3):
        result = judge(moderator, case).result
        assert result_json(result) == convert.to_json(convert.to_response(result))


@settings(max_examples=200, deadline=None)
@given(st.lists(results, max_size=6), st.lists(st.text(max_size=6), min_size=6, max_size=6))
def test_answers_copied_from_a_prebuilt_message_equal_answers_filled(
    batch: list[ModerationResult], ids: list[str]
) -> None:
    """Label-free answers are copies of a prebuilt message: each still carries its own
    content_id, equals the answer filled field by field, and a batch holds the same answers."""
    batch = batch + [r._replace(content_id=i) for r, i in zip(batch, ids, strict=False)]
    for result in batch:
        filled = pb.ModerateResponse()
        convert._fill(filled, result)
        assert convert.to_response(result) == filled
    wire = convert.to_batch_response(batch)
    assert list(wire.results) == [convert.to_response(r) for r in batch]
    assert [r.content_id for r in wire.results] == [r.content_id for r in batch]


@pytest.mark.parametrize(
    ("wire", "domain", "prefix"),
    [
        (pb.Category, Category, "CATEGORY_"),
        (pb.Severity, Severity, "SEVERITY_"),
        (pb.Decision, Decision, "DECISION_"),
        (pb.Source, Source, "SOURCE_"),
        (pb.Variant, Variant, "VARIANT_"),
        (pb.EscalationStatus, EscalationStatus, "ESCALATION_STATUS_"),
    ],
)
def test_every_wire_enum_value_is_a_domain_one_and_back(
    wire: Any, domain: Any, prefix: str
) -> None:
    """Adding a category (or any enum value) in one of the proto and the domain without the
    other fails here, whichever side was forgotten."""
    names = [value.name for value in wire.DESCRIPTOR.values]
    named = {name.removeprefix(prefix) for name in names if not name.endswith("UNSPECIFIED")}
    assert named == set(domain.__members__)
