"""The learned scorer: features in C equal their Python reference, served scores equal the
training pipeline's, model files are checked, and policies route on the score."""

from __future__ import annotations

import csv
import json
import math
import random
import sqlite3
from array import array
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from moderation import train
from moderation.compose import build_moderator, load_prefilter, load_scorer
from moderation.domain import (
    Category,
    Content,
    Decision,
    EscalationMode,
    EscalationStatus,
    Source,
)
from moderation.errors import DatasetError, ScorerError
from moderation.escalation import VerdictCache
from moderation.pipeline import Moderator
from moderation.policy import embedded_policy_dir
from moderation.scorer import LAYOUT, MAGIC, Featurizer, Scorer, ScorerModel
from moderation.settings import Settings
from tests.fake_llm import FakeModel
from tests.test_cli import run

NORMALIZER, LEXICON = load_prefilter()
BITS = 14

GROUPS = ["外地人", "那群人", "隔壁村的", "楼上那位", "新来的", "这帮网友"]
#: Insults no lexicon entry holds: only the scorer can see them.
INSULTS = ["讨人嫌", "没出息", "烂泥巴", "不中用", "丢人现眼", "没良心"]
PRAISE = ["很热情", "人不错", "挺友好", "帮了我", "很勤快", "讲道理"]
FILLER = ["说实话", "我觉得", "昨天", "今天", "真的", "听说"]

HARMFUL = "说实话隔壁村的都是烂泥巴，没出息"
BENIGN = "我觉得新来的人不错，挺友好"


def synthetic_rows(count: int, seed: int) -> list[tuple[str, int]]:
    """Comments about groups: harmful ones insult them, benign ones praise them."""
    rng = random.Random(seed)
    rows = []
    for i in range(count):
        harmful = i % 2
        words = INSULTS if harmful else PRAISE
        text = f"{rng.choice(FILLER)}{rng.choice(GROUPS)}都是{rng.choice(words)}"
        if rng.random() < 0.3:
            text += f"，{rng.choice(FILLER)}{rng.choice(words)}"
        rows.append((text, harmful))
    return rows


def write_csv(path: Path, rows: list[tuple[str, int]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows(rows)
    return path


def featurizer(bits: int = BITS) -> Featurizer:
    return Featurizer(LEXICON.phonetics, bits)


def trained(dataset: Path) -> train.Trained:
    rows = train.read_rows(NORMALIZER, featurizer(), [dataset])
    return train.train(rows, bits=BITS, name="synthetic", version="t1")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_csv(tmp_path_factory.mktemp("data") / "groups.csv", synthetic_rows(400, 1))


@pytest.fixture(scope="module")
def model_file(dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("model") / "synthetic.scorer"
    trained(dataset).model.save(path)
    return path


# -- features ---------------------------------------------------------------------------------

texts = st.text(
    st.sampled_from("傻逼煞笔草泥马你好中文abc 1，。\u200b\ue000\U00020000😀") | st.characters(),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(texts)
def test_c_features_equal_the_python_reference(text: str) -> None:
    """Buckets, weighted sums and the strongest n-grams: C and Python agree on any text."""
    f = featurizer()
    assert f.buckets(text) == f.reference_buckets(text)
    rng = random.Random(len(text))
    weights = array("f", (rng.uniform(-1, 1) for _ in range(1 << BITS)))
    total, count = f.weighed(text, weights)
    buckets = f.reference_buckets(text)
    assert count == len(buckets)
    assert total == pytest.approx(sum(weights[b] for b in buckets), abs=1e-6)
    assert f.strongest(text, weights, 5) == f.reference_strongest(text, weights, 5)


def test_homophones_share_syllable_features() -> None:
    """煞笔 and 傻逼 differ in every character but share their syllable n-grams."""
    f = featurizer(20)
    shared = set(f.buckets("煞笔")) & set(f.buckets("傻逼"))
    assert len(shared) == 3  # sha, bi, sha+bi
    assert not set(f.buckets("你好")) & set(f.buckets("傻逼"))


def test_scores_are_stable_under_the_normalizers_variants() -> None:
    """Width, traditional forms, invisible characters, separators and case do not move the
    score: the scorer reads the normalized text."""
    scorer = load_scorer()
    assert scorer is not None
    plain = "河南人都是骗子"

    def score(text: str) -> float:
        return scorer.score(NORMALIZER(text).text)

    for variant in [
        "河南人都是騙子",
        "河\u200b南\u200b人都是骗子",
        "河-南-人都是骗子",
        "河 南 人 都 是 骗 子",
    ]:
        assert score(variant) == score(plain), variant
    assert score("ＳＢ河南人") == score("sb河南人")


# -- training and serving ---------------------------------------------------------------------


def test_served_scores_equal_the_training_pipeline(dataset: Path) -> None:
    """The server's margin is the fitted estimator's decision function on the same features,
    and its probability that margin through the stored calibration."""
    result = trained(dataset)
    scorer = Scorer(result.model, LEXICON.phonetics)
    texts = [text for text, _ in synthetic_rows(50, 7)] + ["完全无关的一句话", "a"]
    x = train.matrix([scorer.featurizer.buckets(NORMALIZER(t).text) for t in texts], BITS)
    expected = result.estimator.decision_function(x)
    a, b = result.model.calibration
    for text, margin in zip(texts, expected, strict=True):
        normalized = NORMALIZER(text).text
        assert scorer.margin(normalized) == pytest.approx(margin, abs=1e-4)
        assert scorer.score(normalized) == pytest.approx(1 / (1 + math.exp(-(a * margin + b))))
    assert scorer.score(NORMALIZER(HARMFUL).text) > 0.9
    assert scorer.score(NORMALIZER(BENIGN).text) < 0.1
    assert result.held_out_auc > 0.95


def test_training_is_reproducible(dataset: Path, tmp_path: Path) -> None:
    """The same rows and options give the same file, byte for byte; another seed or other
    rows give another training stamp."""
    first, second = trained(dataset).model, trained(dataset).model
    assert first.to_bytes() == second.to_bytes()
    path = tmp_path / "m.scorer"
    first.save(path)
    assert path.read_bytes() == first.to_bytes()
    loaded = ScorerModel.load(path)
    assert loaded.weights == first.weights
    assert loaded.training_digest == first.training_digest != ""
    other = write_csv(tmp_path / "other.csv", synthetic_rows(400, 2))
    assert trained(other).model.training_digest != first.training_digest


def test_training_refuses_one_sided_data(tmp_path: Path) -> None:
    """All rows of one label: a clear error, not a model that always says the same."""
    path = write_csv(tmp_path / "one.csv", [(t, 1) for t, _ in synthetic_rows(40, 3)])
    with pytest.raises(DatasetError, match="needs at least 5 harmful and 5 benign rows"):
        trained(path)


THREATS = ["早晚收拾你", "等着瞧吧", "让你好看", "给我小心点", "出门当心点", "走夜路小心"]


def kinded_rows(count: int, seed: int) -> list[tuple[str, int, str]]:
    """The synthetic comments with a kind: insults are ``insult``, threats ``threat``."""
    rng = random.Random(seed)
    rows = []
    for i, (text, harmful) in enumerate(synthetic_rows(count, seed)):
        if harmful and i % 4 == 1:
            rows.append(
                (f"{rng.choice(FILLER)}{rng.choice(GROUPS)}，{rng.choice(THREATS)}", 1, "threat")
            )
        else:
            rows.append((text, harmful, "insult" if harmful else ""))
    return rows


def test_category_heads_name_the_kind_of_harm(tmp_path: Path) -> None:
    """With a category column, the model learns heads; a score-only label then carries the
    kind its heads see, and the heads survive the file."""
    path = tmp_path / "kinds.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label", "kind"])
        writer.writerows(kinded_rows(400, 4))
    rows = train.read_rows(
        NORMALIZER,
        featurizer(),
        [path],
        kind_col="kind",
        kind_map={"insult": "ABUSE/insult", "threat": "VIOLENCE/threat"},
    )
    assert set(rows.kinds) == {"", "ABUSE/insult", "VIOLENCE/threat"}
    model = train.train(rows, bits=BITS).model
    assert [(h.category.name, h.subcategory) for h in model.heads] == [
        ("ABUSE", "insult"),
        ("VIOLENCE", "threat"),
    ]
    saved = tmp_path / "kinds.scorer"
    model.save(saved)
    scorer = Scorer(ScorerModel.load(saved), LEXICON.phonetics)
    assert scorer.kind(NORMALIZER("楼上那位，早晚收拾你").text) == (Category.VIOLENCE, "threat")
    assert scorer.kind(NORMALIZER("楼上那位都是没出息").text) == (Category.ABUSE, "insult")
    with pytest.raises(DatasetError, match="'RUDE' names no category"):
        train.read_rows(
            NORMALIZER, featurizer(), [path], kind_col="kind", kind_map={"insult": "RUDE"}
        )


def test_one_kind_only_names_the_models_category(tmp_path: Path) -> None:
    path = tmp_path / "one-kind.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label", "kind"])
        writer.writerows((t, y, "ABUSE" if y else "") for t, y in synthetic_rows(200, 6))
    model = train.train(train.read_rows(NORMALIZER, featurizer(), [path], kind_col="kind")).model
    assert model.heads == ()
    assert model.category is Category.ABUSE


# -- model files ------------------------------------------------------------------------------


def _corrupt(data: bytes, how: str) -> bytes:
    header_end = data.index(b"\n", len(MAGIC)) + 1
    if how == "magic":
        return b"not a model\n" + data
    if how == "header":
        return MAGIC + b"{not json\n" + data[header_end:]
    if how == "truncated":
        return data[: len(data) - 100]
    if how == "flipped":
        body = bytearray(data)
        body[-50] ^= 0xFF
        return bytes(body)
    raise AssertionError(how)


@pytest.mark.parametrize(
    ("how", "says"),
    [
        ("magic", "not a scorer model file"),
        ("header", "header line is not a JSON object"),
        ("truncated", "corrupt"),
        ("flipped", "corrupt"),
    ],
)
def test_a_corrupt_model_file_is_refused(
    model_file: Path, tmp_path: Path, how: str, says: str
) -> None:
    path = tmp_path / "bad.scorer"
    path.write_bytes(_corrupt(model_file.read_bytes(), how))
    with pytest.raises(ScorerError, match=says) as caught:
        ScorerModel.load(path)
    assert str(path) in str(caught.value)


def test_a_model_file_for_another_feature_layout_is_refused(
    model_file: Path, tmp_path: Path
) -> None:
    data = model_file.read_bytes().replace(LAYOUT.encode(), b"char1-4/other-hash")
    path = tmp_path / "foreign.scorer"
    path.write_bytes(data)
    with pytest.raises(ScorerError, match="made for feature layout 'char1-4/other-hash'"):
        ScorerModel.load(path)


def test_the_server_refuses_to_start_on_a_bad_model_file(tmp_path: Path) -> None:
    """MODERATION_SCORER_PATH naming a missing or corrupt file: exit 2 and what to fix."""
    broken = tmp_path / "broken.scorer"
    broken.write_bytes(b"garbage")
    for path in (broken, tmp_path / "missing.scorer"):
        done = run("check", "--no-llm", "你好", MODERATION_SCORER_PATH=str(path))
        assert done.returncode == 2
        assert str(path) in done.stderr
        assert "configuration error" in done.stderr


def test_the_embedded_model_is_stamped_in_every_answer(moderator: Moderator) -> None:
    """The shipped model: its version and training digest in the answer, beside the lexicon."""
    result = moderator.decide_now(moderator.screen(Content(text="今天天气真好")))
    assert result.scorer_version.startswith("cold-swsr-")
    assert result.scorer_training.startswith("sha256:")
    assert result.risk is not None
    assert result.risk < 0.3


# -- routing ----------------------------------------------------------------------------------


def _policies(tmp_path: Path) -> Path:
    """GLOBAL with its own thresholds, as three jurisdictions: ESC (escalate at 0.5), BLK
    (escalate at 0.5, block at 0.8) and OFF (the score never routes)."""
    folder = tmp_path / "policies"
    folder.mkdir()
    source = (embedded_policy_dir() / "global.toml").read_text(encoding="utf-8")
    (folder / "global.md").write_text("Judge by the platform's rules.", encoding="utf-8")
    (folder / "global.toml").write_text(source, encoding="utf-8")
    for name, escalate, block in [
        ("esc", "0.5", '"never"'),
        ("blk", "0.5", "0.8"),
        ("off", '"never"', '"never"'),
    ]:
        text = source.replace('jurisdiction = "GLOBAL"', f'jurisdiction = "{name.upper()}"')
        text = text.replace("escalate_at = 0.3", f"escalate_at = {escalate}")
        text = text.replace('block_at = "never"', f"block_at = {block}")
        (folder / f"{name}.toml").write_text(text, encoding="utf-8")
    return folder


@pytest.fixture
def routed(model_file: Path, tmp_path: Path) -> Moderator:
    load_scorer.cache_clear()
    settings = Settings(scorer_path=str(model_file), policy_dir=_policies(tmp_path))
    try:
        return build_moderator(settings, use_model=False)
    finally:
        load_scorer.cache_clear()


def _answer(moderator: Moderator, text: str, jurisdiction: str) -> object:
    screening = moderator.screen(Content(text=text, jurisdiction=jurisdiction))
    return moderator.decide_now(screening)


async def test_thresholds_route_per_jurisdiction(routed: Moderator) -> None:
    """The same harmful text without a rule hit: escalated (REVIEW with the model off) under
    ESC, blocked under BLK, allowed under OFF; a benign text is allowed under all three."""
    esc = await routed.moderate(Content(text=HARMFUL, jurisdiction="ESC"))
    assert esc.decision is Decision.REVIEW
    assert esc.escalation.status is EscalationStatus.UNAVAILABLE
    assert "risk score" in esc.escalation.reason
    assert "escalate_at 0.5" in esc.escalation.reason
    (label,) = esc.labels
    assert label.source is Source.SCORER
    assert label.category.name == "HATE"
    assert label.confidence > 0.9
    assert any("烂泥巴" in e.text or "没出息" in e.text for e in label.evidence)

    blk = await routed.moderate(Content(text=HARMFUL, jurisdiction="BLK"))
    assert blk.decision is Decision.BLOCK
    assert blk.escalation.status is EscalationStatus.NOT_NEEDED
    assert "block_at 0.8" in blk.escalation.reason
    assert blk.labels[0].source is Source.SCORER
    assert blk.labels[0].severity.name == "HIGH"

    off = await routed.moderate(Content(text=HARMFUL, jurisdiction="OFF"))
    assert off.decision is Decision.ALLOW
    assert off.labels == ()
    assert off.risk == esc.risk == blk.risk

    for jurisdiction in ("ESC", "BLK", "OFF"):
        benign = await routed.moderate(Content(text=BENIGN, jurisdiction=jurisdiction))
        assert benign.decision is Decision.ALLOW
        assert benign.escalation.status is EscalationStatus.NOT_NEEDED


async def test_rules_and_score_together(routed: Moderator) -> None:
    """A strong rule hit blocks whatever the score; an ambiguous hit with a high score says
    both reasons; the caller's NEVER still keeps the model out."""
    strong = await routed.moderate(Content(text=HARMFUL + "，傻逼", jurisdiction="ESC"))
    assert strong.decision is Decision.BLOCK
    assert strong.escalation.reason == "confident blocking hit"
    assert Source.SCORER not in {label.source for label in strong.labels}

    both = await routed.moderate(Content(text=HARMFUL + "，溜冰", jurisdiction="ESC"))
    reason = both.escalation.reason
    assert "ambiguous term" in reason
    assert "risk score" in reason

    never = await routed.moderate(
        Content(text=HARMFUL, jurisdiction="ESC", escalation=EscalationMode.NEVER)
    )
    assert never.escalation.status is EscalationStatus.SKIPPED
    assert never.decision is Decision.REVIEW


async def test_the_model_judges_what_the_score_sends(
    model_file: Path, tmp_path: Path, fake: FakeModel
) -> None:
    """With the model on, a score-only escalation is judged by it (the toy model finds no
    bad word: safe, so ALLOW), its verdict lands in the cache with the item's features and
    never its text, and ``train --from-verdicts`` learns from them."""
    load_scorer.cache_clear()
    cache = tmp_path / "verdicts.sqlite"
    settings = Settings(
        scorer_path=str(model_file),
        policy_dir=_policies(tmp_path),
        llm_base_url=fake.base_url,
        llm_api_key="k",
        cache_path=cache,
        llm_max_attempts=1,
    )
    moderator = build_moderator(settings)
    try:
        harmful = [t for t, label in synthetic_rows(40, 11) if label]
        answers = [await moderator.moderate(Content(text=t, jurisdiction="ESC")) for t in harmful]
        sent = "\n".join(fake.user_messages())
        bad = await moderator.moderate(Content(text="你这个傻逼" + HARMFUL, jurisdiction="ESC"))
    finally:
        await moderator.aclose()
        load_scorer.cache_clear()
    assert all(a.escalation.status is EscalationStatus.RESOLVED for a in answers)
    assert all(a.decision is Decision.ALLOW for a in answers)
    assert all(a.labels == () for a in answers)
    assert harmful[0] in sent
    assert bad.decision is Decision.BLOCK

    db = sqlite3.connect(cache)
    rows = db.execute("SELECT verdict, features, features_layout FROM verdicts").fetchall()
    db.close()
    assert len(rows) == len(set(harmful))
    assert all(layout == f"{LAYOUT}/{BITS}" for _, _, layout in rows)
    stored = b"".join(features for _, features, _ in rows)
    assert harmful[0].encode() not in stored
    assert all(len(features) % 4 == 0 for _, features, _ in rows)

    verdict_rows = train.read_rows(NORMALIZER, featurizer(), [], [cache])
    assert sorted(set(verdict_rows.labels)) == [0]  # the toy model found them all safe
    assert len(verdict_rows.labels) == len(rows)
    with pytest.raises(DatasetError, match="no usable verdicts"):
        train.read_rows(NORMALIZER, featurizer(BITS + 1), [], [cache])


def test_a_cache_file_from_before_the_scorer_gains_the_feature_columns(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TABLE verdicts (key TEXT PRIMARY KEY, model TEXT NOT NULL,"
        " verdict TEXT NOT NULL, created_at REAL NOT NULL) STRICT"
    )
    db.execute("INSERT INTO verdicts VALUES ('k', 'm', '{\"verdict\": \"safe\"}', 0)")
    db.commit()
    db.close()
    cache = VerdictCache(10, path)
    cache.close()
    db = sqlite3.connect(path)
    columns = {row[1] for row in db.execute("PRAGMA table_info(verdicts)")}
    assert {"features", "features_layout"} <= columns
    assert db.execute("SELECT count(*) FROM verdicts").fetchone() == (1,)
    db.close()


# -- the command line -------------------------------------------------------------------------


def test_train_then_eval_then_policies(dataset: Path, tmp_path: Path) -> None:
    """``train`` writes a model file; ``eval`` with it prints the operating curve of rules,
    scorer and cascade, and the thresholds the policy uses; ``policies --json`` names the
    scorer and each policy's thresholds."""
    output = tmp_path / "cli.scorer"
    done = run("train", "--dataset", str(dataset), "--output", str(output), "--bits", "14")
    assert done.returncode == 0, done.stderr
    assert "400 rows (200 harmful)" in done.stdout
    assert ScorerModel.load(output).bits == 14

    held_out = write_csv(tmp_path / "held.csv", synthetic_rows(100, 5))
    done = run("eval", "--dataset", str(held_out), MODERATION_SCORER_PATH=str(output))
    assert done.returncode == 0, done.stderr
    assert "Operating curve" in done.stdout
    assert "Scorer AUC: 1.0000" in done.stdout
    assert "| 0.5 | 100.0% |   0.0% | 100.0% |   0.0% |" in done.stdout
    assert "Policy GLOBAL (global-2026.12.1) uses escalate_at = 0.3, block_at = never." in (
        done.stdout
    )
    assert "| GLOBAL (this run) | 0.3 | never |" in done.stdout
    assert "| US | 0.35 | never |" in done.stdout

    done = run("policies", "--json", MODERATION_SCORER_PATH=str(output))
    assert done.returncode == 0, done.stderr
    listing = json.loads(done.stdout)
    assert listing["scorer_version"] == "scorer-1"
    assert listing["scorer_training"].startswith("sha256:")
    us = next(p for p in listing["policies"] if p["jurisdiction"] == "US")
    assert us["escalate_at"] == pytest.approx(0.35)
    assert "block_at" not in us


def test_train_says_what_is_missing(tmp_path: Path) -> None:
    done = run("train", "--output", str(tmp_path / "x.scorer"))
    assert done.returncode == 2
    assert "give --dataset or --from-verdicts" in done.stderr
    done = run(
        "train", "--dataset", str(tmp_path / "nope.csv"), "--output", str(tmp_path / "x.scorer")
    )
    assert done.returncode == 2
    assert "nope.csv: no such file" in done.stderr
