"""Batch reruns past one machine, on Ray Data (the ``moderation[ray]`` extra).

The same pipeline runs inside an actor pool: each actor builds its ``Moderator`` once (tables,
automata, the model client) and judges whole batches with ``Moderator.moderate_many``, so its
model calls overlap. Model-bound actors ask for a fraction of a CPU, so reading is never
starved of cores on a small cluster. The driver streams the answers back into one JSONL file
and one errors file, in the same forms as the single-machine runner.

Per worker, for now: each actor has its own verdict cache, rate of model calls and breaker.
Across workers they can be shared by pointing ``MODERATION_CACHE_PATH`` at a shared volume
(SQLite over a network file system is not safe: use it per node) or, at scale, by a shared
Redis for verdicts and a token bucket for the provider's rate limit (see the README).

Imported only by the command line when ``--engine ray`` is asked for; nothing else imports Ray.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from pathlib import Path
from typing import Any

from moderation.batch import Summary
from moderation.settings import Settings


class _Judge:
    """A Ray Data actor: one ``Moderator`` per actor, a batch of JSONL lines per call."""

    def __init__(self, settings: dict[str, Any], jurisdiction: str, use_model: bool) -> None:
        from moderation.compose import build_moderator
        from moderation.domain import EscalationMode
        from moderation.jsonform import result_json
        from moderation.log import configure

        configure("WARNING")
        self._moderator = build_moderator(Settings(**settings), use_model=use_model)
        self._jurisdiction = jurisdiction
        self._mode = EscalationMode.AUTO if use_model else EscalationMode.NEVER
        self._to_json = result_json

    async def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        from moderation.domain import Content, canonical_jurisdiction
        from moderation.errors import InvalidRequest

        errors: list[str] = []
        contents: list[Content] = []
        for raw in batch["text"]:
            line = str(raw)
            if not line.strip():
                continue
            data: Any = None
            try:
                data = json.loads(line)
                if not isinstance(data, dict) or not isinstance(data.get("text"), str):
                    raise ValueError("missing 'text'")
                content = Content(
                    text=data["text"],
                    content_id=str(data.get("content_id", "")),
                    jurisdiction=canonical_jurisdiction(
                        str(data.get("jurisdiction") or self._jurisdiction)
                    ),
                    escalation=self._mode,
                )
                self._moderator.validate(content)
            except (ValueError, InvalidRequest) as error:
                content_id = data.get("content_id") if isinstance(data, dict) else None
                reason = {"content_id": content_id, "reason": str(error)}
                errors.append(json.dumps(reason, ensure_ascii=False))
                continue
            contents.append(content)
        results = await self._moderator.moderate_many(contents)
        out_lines = [
            json.dumps(
                self._to_json(r),
                ensure_ascii=False,
                separators=(",", ":"),
            )
            for r in results
        ]
        kinds = ["answer"] * len(out_lines) + ["error"] * len(errors)
        return {"kind": kinds, "line": out_lines + errors}


def run_on_ray(
    settings: Settings,
    input_path: Path,
    output: Path,
    *,
    jurisdiction: str,
    use_model: bool,
    address: str | None,
    actors: int = 2,
    batch_size: int = 256,
) -> Summary:
    """Judge a JSONL file on Ray Data into ``output`` (and ``<output>.errors.jsonl``)."""
    import ray

    began = time.monotonic()
    if not ray.is_initialized():
        ray.init(
            address=address,
            include_dashboard=False,
            logging_level=logging.WARNING,
            log_to_driver=False,
            num_cpus=None if address else max(2, actors + 1),
        )
    dataset = ray.data.read_text(str(input_path))
    judged = dataset.map_batches(
        _Judge,
        fn_constructor_kwargs={
            "settings": settings.model_dump(mode="json", exclude_none=True) | _secrets(settings),
            "jurisdiction": jurisdiction,
            "use_model": use_model,
        },
        batch_size=batch_size,
        compute=ray.data.ActorPoolStrategy(size=actors),
        num_cpus=0.5 if use_model else 1,
        batch_format="numpy",
    )
    summary = Summary()
    decisions: Counter[str] = Counter()
    with (
        output.open("w", encoding="utf-8") as out,
        output.with_name(output.name + ".errors.jsonl").open("w", encoding="utf-8") as err,
    ):
        for batch in judged.iter_batches(batch_format="numpy", batch_size=batch_size):
            for kind, line in zip(batch["kind"], batch["line"], strict=True):
                if kind == "error":
                    summary.errors += 1
                    err.write(str(line) + "\n")
                    continue
                summary.items += 1
                data = json.loads(str(line))
                decisions[data["decision"].removeprefix("DECISION_")] += 1
                for label in data["labels"]:
                    summary.categories[label["category"].removeprefix("CATEGORY_")] += 1
                status = data["escalation"]["status"].removeprefix("ESCALATION_STATUS_")
                summary.escalations[status] += 1
                out.write(str(line) + "\n")
    summary.decisions = decisions
    summary.seconds = time.monotonic() - began
    return summary


def _secrets(settings: Settings) -> dict[str, str]:
    """Secret fields in plain form for the actors (model_dump masks them)."""
    return {
        "llm_api_key": settings.llm_api_key.get_secret_value(),
        "log_hash_key": settings.log_hash_key.get_secret_value(),
    }
