"""The composition root: settings -> the objects the doors share (no door of its own).

``build_moderator`` is what ``serve``, ``check``, ``batch`` and the Ray actors all call.
"""

from __future__ import annotations

import functools
import gc
import hashlib
from collections.abc import Callable
from pathlib import Path

import httpx

from moderation import datafile
from moderation.broad import load as load_broad
from moderation.context import Contexts, load_contexts
from moderation.detect import PatternDetector, detectors
from moderation.domain import ModerationResult
from moderation.escalation import ModelEscalator, VerdictCache
from moderation.lexicon import Lexicon, check_jurisdictions, load_lexicon
from moderation.llm import ChatClient, ClientOptions
from moderation.log import Fingerprinter
from moderation.normalize import Normalizer
from moderation.phonetic import Phonetics
from moderation.pipeline import Moderator
from moderation.policy import load_policies
from moderation.scorer import Scorer, ScorerModel, embedded_model
from moderation.settings import Settings


@functools.cache
def load_prefilter() -> tuple[Normalizer, Lexicon]:
    """The normalizer and the compiled embedded lexicon: built once per process, immutable.

    Their quarter of a million objects live as long as the process, so they are moved out of
    the cyclic collector's sight (``gc.freeze``): otherwise every full collection walks them
    all, a pause of about 100 ms that lands on whichever calls are in flight.
    """
    normalizer = Normalizer()
    prefilter = normalizer, load_lexicon(normalizer, Phonetics())
    gc.collect()
    gc.freeze()
    return prefilter


def rules_version(lexicon: Lexicon, broad: Path | None) -> str:
    """The version every answer carries for the rules: the lexicon's, with a digest of the
    other rule files that decide (intents, contexts, and an operator's broad list), so an edit
    to any of them shows in every answer."""
    digest = hashlib.sha256()
    for name in ("intents.tsv", "contexts.tsv"):
        digest.update(datafile.read(name)[0].encode())
    if broad is not None:
        digest.update(broad.read_bytes())
    return f"{lexicon.version}.{digest.hexdigest()[:8]}"


@functools.cache
def contexts() -> Contexts:
    """The shipped reporting, quoting and naming cues, checked against the normalizer."""
    return load_contexts(load_prefilter()[0])


@functools.cache
def load_scorer(path: str = "") -> Scorer | None:
    """The scorer from a model file (empty: the embedded one; ``off``: none), loaded once per
    process. Raises ``ScorerError`` for a missing, corrupt or foreign file."""
    if path == "off":
        return None
    model = ScorerModel.load(Path(path) if path else embedded_model())
    return Scorer(model, load_prefilter()[1].phonetics)


def build_escalator(settings: Settings, http: httpx.AsyncClient | None = None) -> ModelEscalator:
    """The model escalator from settings (``http`` lets tests bring their own transport)."""
    options = ClientOptions(
        base_url=settings.llm_base_url,
        api_key=settings.llm_api_key.get_secret_value(),
        model=settings.llm_model,
        fallback_models=settings.fallback_models,
        attempt_timeout_s=settings.llm_timeout_seconds,
        budget_s=settings.llm_budget_seconds,
        max_attempts=settings.llm_max_attempts,
        backoff_base_s=settings.llm_backoff_seconds,
        max_in_flight=settings.llm_max_in_flight,
        breaker_failures=settings.llm_breaker_failures,
        breaker_cooldown_s=settings.llm_breaker_cooldown_seconds,
        max_tokens=settings.llm_max_tokens,
        app_url=settings.llm_app_url,
        app_title=settings.llm_app_title,
    )
    client = http or httpx.AsyncClient(
        limits=httpx.Limits(
            max_connections=settings.llm_max_in_flight,
            max_keepalive_connections=settings.llm_max_in_flight,
        ),
    )
    cache = VerdictCache(settings.cache_size, settings.cache_path)
    scorer = load_scorer(settings.scorer_path)
    return ModelEscalator(
        ChatClient(options, client),
        PatternDetector(),
        cache,
        max_content_tokens=settings.llm_max_content_tokens,
        featurizer=None if scorer is None else scorer.featurizer,
    )


def build_moderator(
    settings: Settings,
    *,
    use_model: bool = True,
    http: httpx.AsyncClient | None = None,
    on_result: Callable[[ModerationResult], None] | None = None,
    log_decisions: bool = True,
) -> Moderator:
    """Load policies and the lexicon, compile the detectors, and wire the ``Moderator``.

    The model is wired when ``use_model`` and a key is configured; otherwise escalated items
    are answered by the heuristics and say the model was unavailable. Without
    ``log_decisions`` no ``moderation.decided`` line is written per item (batch reruns log a
    summary instead).
    """
    normalizer, lexicon = load_prefilter()
    policies = load_policies(settings.policy_dir, default=settings.default_jurisdiction)
    check_jurisdictions(lexicon, [policy.jurisdiction for policy in policies])
    escalator = build_escalator(settings, http) if use_model and settings.llm_enabled else None
    return Moderator(
        normalizer=normalizer,
        detectors=[
            *detectors(lexicon),
            *([load_broad(settings.broad_lexicon_path)] if settings.broad_lexicon_path else []),
        ],
        policies=policies,
        lexicon_version=rules_version(lexicon, settings.broad_lexicon_path),
        fingerprint=Fingerprinter(settings.log_hash_key.get_secret_value().encode()),
        escalator=escalator,
        scorer=load_scorer(settings.scorer_path),
        max_text_chars=settings.max_text_chars,
        on_result=on_result,
        log_decisions=log_decisions,
        contexts=contexts(),
    )
