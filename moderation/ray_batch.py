"""Batch reruns past one process, on Ray (the ``moderation[ray]`` extra).

The same run as on one machine, with the judging spread over a pool of Ray actors. The driver
reads the input through the same sources (JSONL, CSV, Parquet, SQLite) and sends it in chunks;
each actor builds its ``Moderator`` once (tables, automata, the model client) and judges a
chunk with ``batch.judge_rows``, the local engine's own function, so its model calls overlap
and its answers are the local ones. The driver writes the answers in input order, into the
same files in the same forms (Parquet too). A few chunks per actor are in flight at a time,
so memory stays bounded on any input. Model-bound actors ask for a fraction of a CPU, so the
driver is never starved of a core on a small cluster.

Per worker, for now: each actor has its own verdict cache, rate of model calls and breaker.
Across workers they can be shared by pointing ``MODERATION_CACHE_PATH`` at a shared volume
(SQLite over a network file system is not safe: use it per node) or, at scale, by a shared
Redis for verdicts and a token bucket for the provider's rate limit (see the README). A Ray
run does not resume: it writes its files afresh.

Imported only by the command line when ``--engine ray`` is asked for; nothing else imports Ray.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from moderation.batch import BatchOptions, Outputs, Row, Source, Summary, judge_rows
from moderation.domain import EscalationMode, ModerationResult
from moderation.settings import Settings

#: Chunks in flight per actor: one being judged, one waiting, so no actor idles.
IN_FLIGHT_PER_ACTOR = 2


class _Judge:
    """A Ray actor: one ``Moderator``, judging one chunk of rows per call."""

    def __init__(self, settings: dict[str, Any], options: BatchOptions) -> None:
        from moderation.compose import build_moderator
        from moderation.log import configure

        configure("WARNING")
        self._moderator = build_moderator(
            Settings(**settings), use_model=options.use_model, log_decisions=False
        )
        self._options = options
        self._mode = EscalationMode.AUTO if options.use_model else EscalationMode.NEVER
        self._memo: OrderedDict[tuple[str, str], ModerationResult] = OrderedDict()
        self._usage = self._moderator.model_usage()

    async def judge(self, rows: list[Row]) -> tuple[bytes, bytes, str]:
        """The chunk's answer lines, error lines and counts (``Summary`` as JSON)."""
        summary = Summary()
        answers, errors = await judge_rows(
            self._moderator, rows, self._options, self._mode, self._memo, summary
        )
        before, self._usage = self._usage, self._moderator.model_usage()
        summary.add_usage(before, self._usage)
        return answers, errors, summary.to_json()


def _chunks(rows: Iterator[Row], size: int) -> Iterator[list[Row]]:
    chunk: list[Row] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def run_on_ray(
    settings: Settings,
    source: Source,
    output: Path,
    options: BatchOptions,
    *,
    address: str | None,
    actors: int = 2,
) -> Summary:
    """Judge every row of ``source`` on a pool of Ray actors into ``output`` (and its errors
    file), in input order."""
    import ray
    from ray.util.actor_pool import ActorPool

    began = time.monotonic()
    outputs = Outputs(output)
    for path in (outputs.target, outputs.answers, outputs.errors, outputs.checkpoint):
        path.unlink(missing_ok=True)
    if not ray.is_initialized():
        ray.init(
            address=address,
            include_dashboard=False,
            logging_level=logging.WARNING,
            log_to_driver=False,
            num_cpus=None if address else max(2, actors + 1),
        )
    judge = ray.remote(_Judge).options(num_cpus=0.5 if options.use_model else 1)
    plain = settings.model_dump(mode="json", exclude_none=True) | _secrets(settings)
    pool = ActorPool([judge.remote(plain, options) for _ in range(actors)])
    summary = Summary()
    with outputs.answers.open("wb") as out, outputs.errors.open("wb") as err:

        def write_next() -> None:
            answers, errors, counts = pool.get_next()
            out.write(answers)
            err.write(errors)
            summary.merge(Summary.from_json(counts))

        in_flight = 0
        for chunk in _chunks(source.rows(-1), options.chunk):
            pool.submit(lambda actor, rows: actor.judge.remote(rows), chunk)
            in_flight += 1
            if in_flight >= IN_FLIGHT_PER_ACTOR * actors:
                write_next()
                in_flight -= 1
        while pool.has_next():  # type: ignore[no-untyped-call]
            write_next()
    outputs.finish()
    summary.seconds = time.monotonic() - began
    return summary


def _secrets(settings: Settings) -> dict[str, str]:
    """Secret fields in plain form for the actors (model_dump masks them)."""
    return {
        "llm_api_key": settings.llm_api_key.get_secret_value(),
        "log_hash_key": settings.log_hash_key.get_secret_value(),
    }
