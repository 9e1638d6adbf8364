"""Batch reruns: stored content -> the same pipeline -> JSONL answers, resumable after kill -9.

Sources are JSONL, CSV and SQLite tables (``sqlite:///posts.db?table=posts&id=id&text=body``).
Items are judged in chunks with bounded concurrency and written in input order. After each
chunk the output and the errors file are flushed to disk and a SQLite sidecar
(``<output>.checkpoint``) records how far the input was read, how many bytes of each file are
committed, and the running counts, in one transaction. A restart truncates both files to the
committed length (a torn last line cannot survive) and reads on after the committed position:
every item is answered exactly once, and the answers equal an uninterrupted run's (the model's
verdicts come from the verdict cache, which a batch keeps in a file by default).

Bad rows (invalid JSON, missing text, over the limit, unknown jurisdiction) go to
``<output>.errors.jsonl`` with their line and the reason, and never stop the run. Identical
texts are judged once per run. Imports the pipeline and the JSON form; knows nothing of gRPC.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import json
import os
import re
import sqlite3
import sys
import time
from collections import Counter, OrderedDict, defaultdict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Protocol, TextIO
from urllib.parse import parse_qs

import structlog

from moderation.domain import (
    Content,
    EscalationMode,
    ModelUsage,
    ModerationResult,
    canonical_jurisdiction,
)
from moderation.errors import ConfigError, InvalidRequest
from moderation.jsonform import result_json
from moderation.pipeline import Moderator

log = structlog.get_logger("moderation.batch")

#: Items judged between two checkpoints.
CHUNK = 512
#: Distinct (text, jurisdiction) pairs remembered for de-duplication.
MEMO_SIZE = 100_000


@dataclass(frozen=True, slots=True)
class Row:
    """One input row: where it is, and what it holds (or why it cannot be judged)."""

    position: int
    """Resumable position: byte offset of the line (JSONL), row number (CSV), rowid (SQLite)."""
    line: int
    """What a person looks up: line number of the file, or the rowid."""
    content_id: str
    text: str | None
    jurisdiction: str
    problem: str | None = None


class Source(Protocol):
    """Rows from stored content, resumable after a position."""

    name: str

    def rows(self, after: int) -> Iterator[Row]:
        """Rows whose position is greater than ``after`` (-1: from the start), in order."""
        ...

    def total(self) -> int | None:
        """How many rows there are, when cheap to know."""
        ...

    def fingerprint(self) -> str:
        """Identifies the input, so a resume never continues over different content."""
        ...


def _has_surrogate(value: str) -> bool:
    """True when ``value`` holds a lone surrogate (a JSON ``\\ud800`` escape, or bytes that
    were not UTF-8): no valid text, and not writable as UTF-8."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _printable_id(value: str) -> str:
    """``value`` safe to write into an errors line (lone surrogates escaped)."""
    return value.encode("utf-8", "backslashreplace").decode("utf-8")


def _row_from_mapping(
    position: int, line: int, data: Mapping[str, Any], id_key: str, text_key: str, jur_key: str
) -> Row:
    raw_id = data.get(id_key)
    content_id = str(line) if raw_id is None or raw_id == "" else str(raw_id)
    text = data.get(text_key)
    jurisdiction = data.get(jur_key) or ""
    if _has_surrogate(content_id):
        return Row(
            position, line, _printable_id(content_id), None, "", f"{id_key!r} is not valid UTF-8"
        )
    if not isinstance(text, str):
        problem = f"missing {text_key!r}" if text is None else f"{text_key!r} is not a string"
        return Row(position, line, content_id, None, "", problem)
    if not isinstance(jurisdiction, str):
        return Row(position, line, content_id, None, "", f"{jur_key!r} is not a string")
    for key, value in ((text_key, text), (jur_key, jurisdiction)):
        if _has_surrogate(value):
            return Row(position, line, content_id, None, "", f"{key!r} is not valid UTF-8")
    return Row(position, line, content_id, text, canonical_jurisdiction(jurisdiction))


class _FileSource:
    """A source read from one file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = str(path)

    def fingerprint(self) -> str:
        """The file's path, size, modification time and a digest of samples of its content
        (so an edit that keeps size and time still shows)."""
        stat = self.path.stat()
        return (
            f"{self.path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}:"
            f"{_sampled_digest(self.path, stat.st_size)}"
        )


#: The content digest of an input reads this many blocks of ``_SAMPLE_BYTES``, spread evenly.
_SAMPLES = 64
_SAMPLE_BYTES = 4096


def _sampled_digest(path: Path, size: int) -> str:
    """SHA-256 of the whole file when small, else of evenly spread blocks (first and last
    included): reads at most a quarter MiB of a file of any size."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        if size <= _SAMPLES * _SAMPLE_BYTES:
            digest.update(handle.read())
        else:
            step = (size - _SAMPLE_BYTES) / (_SAMPLES - 1)
            for i in range(_SAMPLES):
                handle.seek(round(i * step))
                digest.update(handle.read(_SAMPLE_BYTES))
    return digest.hexdigest()[:16]


class JsonlSource(_FileSource):
    """One JSON object a line (content_id, text, jurisdiction); resumes by byte offset."""

    def total(self) -> int | None:
        """Lines in the file (a fast byte count)."""
        with self.path.open("rb") as handle:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))

    def rows(self, after: int) -> Iterator[Row]:
        """Rows after byte offset ``after``."""
        with self.path.open("rb") as handle:
            line = 0
            if after >= 0:
                handle.seek(after)
                handle.readline()  # the row at ``after`` is done
                line = self._line_at(after)  # the next row's is one more
            while True:
                position = handle.tell()
                raw = handle.readline()
                if not raw:
                    return
                line += 1
                if not raw.strip():
                    continue
                yield self._parse(position, line, raw)

    def _line_at(self, offset: int) -> int:
        """The line number (from 1) of the line starting at byte ``offset``."""
        newlines, left = 0, offset
        with self.path.open("rb") as handle:
            while left > 0:
                block = handle.read(min(left, 1 << 20))
                if not block:
                    break
                newlines += block.count(b"\n")
                left -= len(block)
        return newlines + 1

    @staticmethod
    def _parse(position: int, line: int, raw: bytes) -> Row:
        try:
            data = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            return Row(position, line, str(line), None, "", f"invalid JSON: {exc}")
        if not isinstance(data, dict):
            return Row(position, line, str(line), None, "", "not a JSON object")
        return _row_from_mapping(position, line, data, "content_id", "text", "jurisdiction")


class CsvSource(_FileSource):
    """A CSV file with a header naming ``content_id``, ``text`` and optionally ``jurisdiction``.

    UTF-8 only (a byte-order mark is fine). A row that cannot be read (bytes that are not UTF-8,
    a quote that is never closed, text after a closing quote) goes to the errors file with its
    line, and reading goes on at the next line.
    """

    def total(self) -> int | None:
        """Unknown without parsing (quoted fields may hold line breaks)."""
        return None

    def _check_encoding(self) -> None:
        with self.path.open("rb") as handle:
            head = handle.read(4096)
        if head.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
            raise ConfigError(f"{self.path}: the CSV is UTF-32; convert it to UTF-8")
        if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or b"\0" in head:
            raise ConfigError(
                f"{self.path}: the CSV is UTF-16 (or holds NUL bytes); convert it to UTF-8, "
                f"e.g. iconv -f UTF-16 -t UTF-8"
            )

    def rows(self, after: int) -> Iterator[Row]:
        """Rows after row number ``after`` (rows that could not be read count as rows)."""
        self._check_encoding()
        # No field is too long to read: an over-long text is refused, with its line, later.
        csv.field_size_limit(max(csv.field_size_limit(), _CSV_FIELD_LIMIT))
        with (
            self.path.open("rb") as raw,
            io.TextIOWrapper(raw, encoding="utf-8-sig", errors="surrogateescape", newline="") as f,
        ):
            reader = csv.reader(f, strict=True)
            try:
                header = next(reader)
            except StopIteration:
                header = []
            except csv.Error as exc:
                raise ConfigError(f"{self.path}: the CSV header cannot be read: {exc}") from exc
            if "text" not in header:
                raise ConfigError(f"{self.path}: the CSV header must name a 'text' column")
            number = -1
            while True:
                first_line = reader.line_num + 1
                try:
                    values = next(reader)
                except StopIteration:
                    return
                except csv.Error as exc:
                    number += 1
                    if number > after:
                        yield self._unreadable(number, first_line, reader.line_num, exc)
                    continue
                if not values:
                    continue  # a blank line
                number += 1
                if number <= after:
                    continue
                data = dict(zip(header, values, strict=False))
                yield _row_from_mapping(
                    number, reader.line_num, data, "content_id", "text", "jurisdiction"
                )

    @staticmethod
    def _unreadable(number: int, first: int, last: int, error: csv.Error) -> Row:
        if "unexpected end of data" in str(error):
            problem = (
                f"a quoted field opened on line {first} is never closed: lines {first}-{last} "
                "(the end of the file) could not be read as rows"
            )
        else:
            problem = f"malformed CSV: {error}"
        return Row(number, first, str(first), None, "", problem)


def _pyarrow() -> Any:
    """``pyarrow`` with its Parquet module, or ``ConfigError`` naming the extra to install."""
    try:
        import pyarrow  # optional: only Parquet runs need it
        import pyarrow.parquet
    except ImportError:
        raise ConfigError("Parquet needs pyarrow: pip install 'moderation[parquet]'") from None
    return pyarrow


class ParquetSource(_FileSource):
    """A Parquet file with a ``text`` column and optionally ``content_id`` and ``jurisdiction``
    (the ``parquet`` extra); read a record batch at a time, resumes by row number."""

    #: Rows read at a time.
    BATCH_ROWS = 4096

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        pa = _pyarrow()
        try:
            self._file = pa.parquet.ParquetFile(path)
        except (OSError, pa.ArrowException) as exc:
            raise ConfigError(f"{path}: not a readable Parquet file: {exc}") from exc
        names = self._file.schema_arrow.names
        if "text" not in names:
            raise ConfigError(f"{path}: the Parquet file must have a 'text' column; has {names}")
        self._columns = [c for c in ("content_id", "text", "jurisdiction") if c in names]

    def total(self) -> int | None:
        """Rows in the file (from its footer)."""
        return int(self._file.metadata.num_rows)

    def rows(self, after: int) -> Iterator[Row]:
        """Rows after row number ``after`` (from 0); row groups wholly before it are skipped
        unread. A row's line is its number from 1."""
        start = 0
        for group in range(self._file.num_row_groups):
            size = self._file.metadata.row_group(group).num_rows
            if start + size - 1 <= after:
                start += size
                continue
            batches = self._file.iter_batches(
                batch_size=self.BATCH_ROWS, row_groups=[group], columns=self._columns
            )
            while True:
                try:
                    batch = next(batches, None)
                except (OSError, _pyarrow().ArrowException) as exc:
                    raise ConfigError(
                        f"{self.path}: row group {group} (rows {start + 1} on) cannot be read: "
                        f"{exc}; the rows before it are answered"
                    ) from exc
                if batch is None:
                    break
                for data in batch.to_pylist():
                    number, start = start, start + 1
                    if number > after:
                        yield _row_from_mapping(
                            number, number + 1, data, "content_id", "text", "jurisdiction"
                        )


#: The longest CSV field read (the csv module's default, 131,072, would stop the run).
_CSV_FIELD_LIMIT = 1 << 30


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class SqliteSource:
    """``sqlite:///path.db?table=posts&id=id&text=body[&jurisdiction=col]``; resumes by rowid."""

    def __init__(self, url: str) -> None:
        # As in SQLAlchemy: sqlite:///relative.db, sqlite:////absolute/path.db.
        location, _, raw_query = url.removeprefix("sqlite:").removeprefix("//").partition("?")
        query = {k: v[-1] for k, v in parse_qs(raw_query).items()}
        path = Path(location.removeprefix("/"))
        if not path.is_file():
            raise ConfigError(f"{url}: no SQLite file at {path}")
        for key in ("table", "text"):
            if not query.get(key):
                raise ConfigError(f"{url}: give ?{key}=... (e.g. ?table=posts&id=id&text=body)")
        for key in ("table", "id", "text", "jurisdiction"):
            if key in query and not _IDENTIFIER.fullmatch(query[key]):
                raise ConfigError(f"{url}: ?{key}= must be a plain SQL name, got {query[key]!r}")
        self.path = path
        self.name = url
        self._table = query["table"]
        self._id = query.get("id", "rowid")
        self._text = query["text"]
        self._jurisdiction = query.get("jurisdiction")
        with self._connect() as db:
            columns = {row[1] for row in db.execute(f'PRAGMA table_info("{self._table}")')}
            # Names are checked against _IDENTIFIER above, so quoting them is safe below.
            if not columns:
                raise ConfigError(f"{url}: no table {self._table!r}")
            try:
                db.execute(f'SELECT rowid FROM "{self._table}" LIMIT 0')  # noqa: S608
            except sqlite3.OperationalError:
                raise ConfigError(
                    f"{url}: table {self._table!r} has no rowid (it is a WITHOUT ROWID table), "
                    "and a run resumes by rowid; copy it into an ordinary table or a view-backed "
                    "table first"
                ) from None
        wanted = [self._text, *(c for c in (self._id, self._jurisdiction) if c and c != "rowid")]
        missing = [c for c in wanted if c not in columns]
        if missing:
            raise ConfigError(
                f"{url}: table {self._table!r} has no column {missing}; has {sorted(columns)}"
            )

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path.resolve().as_uri() + "?mode=ro", uri=True)
        # Text that is not UTF-8 arrives with lone surrogates and is refused row by row.
        db.text_factory = lambda raw: raw.decode("utf-8", "surrogateescape")
        return db

    def fingerprint(self) -> str:
        """The file, the table and the row count."""
        with self._connect() as db:
            (count,) = db.execute(f'SELECT count(*) FROM "{self._table}"').fetchone()  # noqa: S608
        return f"{self.path.resolve()}:{self._table}:{count}"

    def total(self) -> int | None:
        """Rows in the table."""
        with self._connect() as db:
            (count,) = db.execute(f'SELECT count(*) FROM "{self._table}"').fetchone()  # noqa: S608
        return int(count)

    def rows(self, after: int) -> Iterator[Row]:
        """Rows with rowid greater than ``after``, in rowid order."""
        jurisdiction = f'"{self._jurisdiction}"' if self._jurisdiction else "''"
        ident = "rowid" if self._id == "rowid" else f'"{self._id}"'
        # Names are checked against _IDENTIFIER, so quoting them is safe.
        columns = f'rowid, {ident}, "{self._text}", {jurisdiction}'
        query = f'SELECT {columns} FROM "{self._table}" WHERE rowid > ? ORDER BY rowid'  # noqa: S608
        with self._connect() as db:
            for rowid, ident_value, text, jur in db.execute(query, (after,)):
                data = {"id": ident_value, "text": text, "jurisdiction": jur or ""}
                yield _row_from_mapping(int(rowid), int(rowid), data, "id", "text", "jurisdiction")


def open_source(spec: str) -> Source:
    """The source for ``--input``: a ``sqlite:///`` URL, or a .jsonl, .csv or .parquet file."""
    if spec.startswith("sqlite:"):
        return SqliteSource(spec)
    path = Path(spec)
    if not path.is_file():
        raise ConfigError(f"--input: no such file {path}")
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return JsonlSource(path)
    if suffix == ".csv":
        return CsvSource(path)
    if suffix == ".parquet":
        return ParquetSource(path)
    raise ConfigError(
        f"--input: {path}: unknown format {suffix!r}; use .jsonl, .csv, .parquet or sqlite:///"
    )


@dataclass
class Summary:
    """Counts of a run (kept in the checkpoint, so a resumed run reports the whole)."""

    items: int = 0
    errors: int = 0
    duplicates: int = 0
    decisions: Counter[str] = field(default_factory=Counter)
    categories: Counter[str] = field(default_factory=Counter)
    escalations: Counter[str] = field(default_factory=Counter)
    model_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    seconds: float = 0.0

    def add_usage(self, before: ModelUsage, after: ModelUsage) -> None:
        """Count the model calls made between two readings of ``Moderator.model_usage``."""
        self.model_calls += after.calls - before.calls
        self.prompt_tokens += after.prompt_tokens - before.prompt_tokens
        self.completion_tokens += after.completion_tokens - before.completion_tokens
        self.cost += after.cost - before.cost

    def merge(self, other: Summary) -> None:
        """Add another part's counts (a Ray actor's chunk) to these: every field but the time,
        which is the whole run's."""
        for counted in fields(self):
            if counted.name != "seconds":
                name = counted.name
                setattr(self, name, getattr(self, name) + getattr(other, name))

    def to_json(self) -> str:
        """For the checkpoint."""
        return json.dumps(self.__dict__, sort_keys=True)

    @classmethod
    def from_json(cls, raw: str) -> Summary:
        """From the checkpoint."""
        data = json.loads(raw)
        for key in ("decisions", "categories", "escalations"):
            data[key] = Counter(data[key])
        return cls(**data)

    def render(self) -> str:
        """The report printed at the end."""
        rate = self.items / self.seconds if self.seconds else 0.0
        lines = [
            f"{self.items} items answered, {self.errors} bad rows, {self.duplicates} duplicates "
            f"judged once, in {self.seconds:.1f} s ({rate:,.0f} items/s)",
            "decisions: " + _counts(self.decisions),
            "categories: " + (_counts(self.categories) or "none"),
            "escalations: " + _counts(self.escalations),
            f"model: {self.model_calls} calls, {self.prompt_tokens} prompt and "
            f"{self.completion_tokens} completion tokens, cost {self.cost:.6f}",
        ]
        return "\n".join(lines)


def _counts(counter: Mapping[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0])))


class Checkpoint:
    """The SQLite sidecar: committed position, committed file lengths, counts."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS checkpoint (id INTEGER PRIMARY KEY CHECK (id = 1),"
            " input TEXT NOT NULL, position INTEGER NOT NULL, output_bytes INTEGER NOT NULL,"
            " error_bytes INTEGER NOT NULL, summary TEXT NOT NULL, done INTEGER NOT NULL) STRICT"
        )

    def load(self) -> tuple[str, int, int, int, Summary, bool] | None:
        """The last commit, or None for a fresh run."""
        row = self._db.execute(
            "SELECT input, position, output_bytes, error_bytes, summary, done FROM checkpoint"
        ).fetchone()
        if row is None:
            return None
        return row[0], row[1], row[2], row[3], Summary.from_json(row[4]), bool(row[5])

    def commit(
        self,
        fingerprint: str,
        position: int,
        output_bytes: int,
        error_bytes: int,
        summary: Summary,
        done: bool = False,
    ) -> None:
        """Record a chunk as done (after its lines are on disk)."""
        self._db.execute(
            "INSERT INTO checkpoint VALUES (1, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET"
            " input = excluded.input, position = excluded.position,"
            " output_bytes = excluded.output_bytes, error_bytes = excluded.error_bytes,"
            " summary = excluded.summary, done = excluded.done",
            (fingerprint, position, output_bytes, error_bytes, summary.to_json(), int(done)),
        )

    def close(self) -> None:
        """Close the sidecar."""
        self._db.close()


class Progress:
    """One line on a terminal: items/s, ETA, escalations, errors. Silent otherwise."""

    def __init__(self, total: int | None, stream: TextIO | None = None) -> None:
        self._stream = stream or sys.stderr
        self._enabled = self._stream.isatty()
        self._total = total
        self._began = time.monotonic()
        self._last = 0.0

    def update(self, done: int, summary: Summary, *, final: bool = False) -> None:
        """Redraw at most five times a second."""
        if not self._enabled:
            return
        now = time.monotonic()
        if not final and now - self._last < 0.2:
            return
        self._last = now
        elapsed = max(now - self._began, 1e-9)
        rate = done / elapsed
        eta = ""
        if self._total and rate > 0 and done < self._total:
            eta = f", ETA {(self._total - done) / rate:,.0f} s"
        total = f"/{self._total}" if self._total else ""
        escalated = sum(v for k, v in summary.escalations.items() if k != "NOT_NEEDED")
        self._stream.write(
            f"\r{done}{total} items, {rate:,.0f}/s{eta}, {escalated} escalated, "
            f"{summary.errors} errors   "
        )
        if final:
            self._stream.write("\n")
        self._stream.flush()


@dataclass(frozen=True, slots=True)
class BatchOptions:
    """How to run."""

    jurisdiction: str = ""
    use_model: bool = True
    concurrency: int = 32
    overwrite: bool = False
    chunk: int = CHUNK


def _truncate(path: Path, size: int) -> None:
    with path.open("ab") as handle:
        handle.truncate(size)


def _sync(handle: Any) -> None:
    handle.flush()
    os.fsync(handle.fileno())


@dataclass(frozen=True, slots=True)
class Outputs:
    """The files of a run, named from ``--output``: the answers, the errors and the checkpoint.

    A ``.parquet`` output is written as JSONL first (``<output>.partial.jsonl``, which can be
    cut back and resumed like any JSONL output) and turned into Parquet when the run is done.
    """

    target: Path

    @property
    def parquet(self) -> bool:
        """True when the answers end as Parquet."""
        return self.target.suffix.lower() == ".parquet"

    @property
    def answers(self) -> Path:
        """The JSONL the answers are appended to."""
        return (
            self.target.with_name(self.target.name + ".partial.jsonl")
            if self.parquet
            else self.target
        )

    @property
    def errors(self) -> Path:
        """One line per bad row."""
        return self.target.with_name(self.target.name + ".errors.jsonl")

    @property
    def checkpoint(self) -> Path:
        """The SQLite sidecar."""
        return self.target.with_name(self.target.name + ".checkpoint")

    def finish(self) -> None:
        """For a Parquet output: the answers as Parquet (written whole, then renamed into
        place), and the JSONL they were staged in removed."""
        if not self.parquet or not self.answers.exists():
            return
        write_parquet(self.answers, self.target)
        self.answers.unlink()


def _open_run(
    source: Source, outputs: Outputs, overwrite: bool
) -> tuple[Checkpoint, str, tuple[int, Summary, bool] | None]:
    """Open the checkpoint; on a resume, cut both files back to what was committed."""
    output, errors_path, checkpoint_path = outputs.answers, outputs.errors, outputs.checkpoint
    if outputs.parquet:
        _pyarrow()  # refused now, not after the run
    for path in (output, errors_path):
        try:
            path.open("ab").close()
        except OSError as exc:
            raise ConfigError(f"--output: cannot write {path}: {exc.strerror or exc}") from exc
    if overwrite:
        for path in (outputs.target, output, errors_path, checkpoint_path):
            path.unlink(missing_ok=True)
        for suffix in ("-wal", "-shm"):
            Path(str(checkpoint_path) + suffix).unlink(missing_ok=True)
    try:
        checkpoint = Checkpoint(checkpoint_path)
    except sqlite3.Error as exc:
        raise ConfigError(
            f"--output: cannot write the checkpoint {checkpoint_path}: {exc}"
        ) from exc
    fingerprint = source.fingerprint()
    state = checkpoint.load()
    if state is None:
        for path in {output, outputs.target}:
            if path.exists() and path.stat().st_size > 0:
                checkpoint.close()
                raise ConfigError(
                    f"{path} exists and is not a run of ours; use --overwrite or another --output"
                )
        return checkpoint, fingerprint, None
    saved_input, position, out_bytes, err_bytes, summary, done = state
    if saved_input != fingerprint:
        checkpoint.close()
        raise ConfigError(
            f"{output} belongs to a run over different input ({saved_input}); "
            "use --overwrite to start afresh or another --output"
        )
    if not done:
        output.touch()
        errors_path.touch()
        _truncate(output, out_bytes)
        _truncate(errors_path, err_bytes)
        log.info("batch.resuming", position=position, items=summary.items)
    return checkpoint, fingerprint, (position, summary, done)


async def run_batch(
    moderator: Moderator,
    source: Source,
    output: Path,
    options: BatchOptions,
    *,
    to_json: Callable[[ModerationResult], Mapping[str, Any]] = result_json,
    progress: Progress | None = None,
) -> Summary:
    """Judge every row of ``source`` into ``output`` (JSONL, or Parquet for a ``.parquet``
    name; each answer in the JSON form of ``to_json``), resuming a killed run."""
    outputs = Outputs(output)
    checkpoint, fingerprint, resumed = _open_run(source, outputs, options.overwrite)
    if resumed is None:
        position, summary = -1, Summary()
    else:
        position, summary, done = resumed
        if done:
            checkpoint.close()
            outputs.finish()  # a run killed after its last commit
            log.info("batch.already_done", items=summary.items)
            return summary
    output, errors_path = outputs.answers, outputs.errors
    began = time.monotonic() - summary.seconds
    usage = moderator.model_usage()
    memo: OrderedDict[tuple[str, str], ModerationResult] = OrderedDict()
    mode = EscalationMode.AUTO if options.use_model else EscalationMode.NEVER
    unreadable: ConfigError | None = None

    def rows() -> Iterator[Row]:
        """The source's rows; past a part that cannot be read, none (``unreadable`` says why),
        so what was read before it is still answered and committed."""
        nonlocal unreadable
        try:
            yield from source.rows(position)
        except ConfigError as exc:
            unreadable = exc

    try:
        with output.open("ab") as out, errors_path.open("ab") as err:

            async def judge(chunk: list[Row]) -> int:
                """Judge a chunk, write it in input order, flush to disk; its last position."""
                lines, error_lines = await judge_rows(
                    moderator, chunk, options, mode, memo, summary, to_json
                )
                out.write(lines)
                err.write(error_lines)
                _sync(out)
                _sync(err)
                return chunk[-1].position

            chunk: list[Row] = []
            for row in rows():
                chunk.append(row)
                if len(chunk) >= options.chunk:
                    position = await judge(chunk)
                    summary.seconds = time.monotonic() - began
                    usage = _count_usage(moderator, summary, usage)
                    checkpoint.commit(fingerprint, position, out.tell(), err.tell(), summary)
                    if progress:
                        progress.update(summary.items + summary.errors, summary)
                    chunk = []
            if chunk:
                position = await judge(chunk)
            summary.seconds = time.monotonic() - began
            usage = _count_usage(moderator, summary, usage)
            done = unreadable is None
            checkpoint.commit(fingerprint, position, out.tell(), err.tell(), summary, done=done)
            if progress:
                progress.update(summary.items + summary.errors, summary, final=True)
    finally:
        checkpoint.close()
    if unreadable is not None:
        raise unreadable
    outputs.finish()
    log.info(
        "batch.finished",
        items=summary.items,
        errors=summary.errors,
        duplicates=summary.duplicates,
        decisions=dict(summary.decisions),
        categories=dict(summary.categories),
        escalations=dict(summary.escalations),
        model_calls=summary.model_calls,
        cost=round(summary.cost, 6),
        seconds=round(summary.seconds, 3),
    )
    return summary


def _count_usage(moderator: Moderator, summary: Summary, before: ModelUsage) -> ModelUsage:
    """Count the model calls since ``before`` into ``summary``; the reading to count from next."""
    now = moderator.model_usage()
    summary.add_usage(before, now)
    return now


async def judge_rows(
    moderator: Moderator,
    rows: list[Row],
    options: BatchOptions,
    mode: EscalationMode,
    memo: OrderedDict[tuple[str, str], ModerationResult],
    summary: Summary,
    to_json: Callable[[ModerationResult], Mapping[str, Any]] = result_json,
) -> tuple[bytes, bytes]:
    """Judge rows: their answers (JSONL, in input order) and their error lines, counted into
    ``summary``. A text seen before (``memo``, or earlier in ``rows``) is judged once. The
    one way rows are judged, on one machine and on Ray."""
    answers: dict[int, ModerationResult] = {}
    problems: dict[int, str] = {}
    fresh: dict[tuple[str, str], list[int]] = defaultdict(list)
    contents: list[Content] = []
    for index, row in enumerate(rows):
        if row.problem is not None or row.text is None:
            problems[index] = row.problem or "missing text"
            continue
        jurisdiction = row.jurisdiction or options.jurisdiction
        content = Content(
            text=row.text, content_id=row.content_id, jurisdiction=jurisdiction, escalation=mode
        )
        try:
            moderator.validate(content)
        except InvalidRequest as error:
            problems[index] = str(error)
            continue
        key = (row.text, jurisdiction)
        seen = memo.get(key)
        if seen is not None:
            answers[index] = seen._replace(content_id=row.content_id)
            summary.duplicates += 1
            continue
        if key not in fresh:
            contents.append(content)
        else:
            summary.duplicates += 1
        fresh[key].append(index)
    results = await moderator.moderate_many(
        contents, concurrency=options.concurrency, off_loop=False
    )
    for content, result in zip(contents, results, strict=True):
        key = (content.text, content.jurisdiction)
        memo[key] = result
        if len(memo) > MEMO_SIZE:
            memo.popitem(last=False)
        for index in fresh[key]:
            answers[index] = result._replace(content_id=rows[index].content_id)
    lines: list[bytes] = []
    error_lines: list[bytes] = []
    for index, row in enumerate(rows):
        if index in problems:
            summary.errors += 1
            error_lines.append(
                json.dumps(
                    {"line": row.line, "content_id": row.content_id, "reason": problems[index]},
                    ensure_ascii=False,
                ).encode()
                + b"\n"
            )
            continue
        result = answers[index]
        summary.items += 1
        summary.decisions[result.decision.name] += 1
        summary.escalations[result.escalation.status.name] += 1
        for label in result.labels:
            summary.categories[label.category.name] += 1
        lines.append(
            json.dumps(to_json(result), ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
        )
    return b"".join(lines), b"".join(error_lines)


#: Answers converted to Parquet at a time.
_PARQUET_ROWS = 8192


def answer_schema() -> Any:
    """The Parquet schema of the JSON form: the same names, nesting and values (enum names as
    strings, the latency as proto3 JSON writes a duration)."""
    pa = _pyarrow()
    evidence = pa.struct(
        [("start", pa.int64()), ("end", pa.int64()), ("text", pa.string()),
         ("term", pa.string()), ("variant", pa.string())]
    )  # fmt: skip
    label = pa.struct(
        [("category", pa.string()), ("subcategory", pa.string()), ("severity", pa.string()),
         ("confidence", pa.float64()), ("source", pa.string()),
         ("evidence", pa.list_(evidence)), ("rationale", pa.string())]
    )  # fmt: skip
    escalation = pa.struct(
        [("status", pa.string()), ("model", pa.string()), ("reason", pa.string()),
         ("latency", pa.string()), ("truncated", pa.bool_())]
    )  # fmt: skip
    policy = pa.struct(
        [(name, pa.string()) for name in
         ("jurisdiction", "version", "lexicon_version", "scorer_version", "scorer_training")]
    )  # fmt: skip
    return pa.schema(
        [("content_id", pa.string()), ("decision", pa.string()), ("labels", pa.list_(label)),
         ("escalation", escalation), ("policy", policy), ("risk_score", pa.float64())]
    )  # fmt: skip


def write_parquet(answers: Path, target: Path) -> None:
    """A JSONL file of answers as Parquet at ``target``: written to a temporary name, synced,
    then renamed into place, so ``target`` is whole or absent. A field the schema lacks is an
    error, not dropped."""
    pa = _pyarrow()
    schema = answer_schema()
    temporary = target.with_name(target.name + ".tmp")
    with answers.open("rb") as handle, pa.parquet.ParquetWriter(temporary, schema) as writer:
        block: list[Any] = []
        for line in handle:
            data = json.loads(line)
            if unknown := data.keys() - set(schema.names):
                raise ValueError(f"the Parquet schema lacks {sorted(unknown)}")
            block.append(data)
            if len(block) >= _PARQUET_ROWS:
                writer.write_table(pa.Table.from_pylist(block, schema=schema))
                block = []
        if block:
            writer.write_table(pa.Table.from_pylist(block, schema=schema))
    with temporary.open("rb") as written:
        os.fsync(written.fileno())
    os.replace(temporary, target)


@dataclass
class Comparison:
    """What changed between a previous output and this one."""

    compared: int = 0
    unchanged: int = 0
    only_before: int = 0
    only_now: int = 0
    transitions: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    added: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    removed: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))

    def render(self, examples: int = 5) -> str:
        """The report a policy owner reads after a rerun."""
        lines = [
            f"compared {self.compared} items: {self.unchanged} unchanged, "
            f"{self.compared - self.unchanged} changed; {self.only_before} only before, "
            f"{self.only_now} only now",
        ]
        for title, table in (
            ("decision changes", self.transitions),
            ("categories added", self.added),
            ("categories removed", self.removed),
        ):
            if table:
                lines.append(f"{title}:")
                for key, ids in sorted(table.items(), key=lambda kv: (-len(kv[1]), kv[0])):
                    lines.append(f"  {key}: {len(ids)} (e.g. {', '.join(ids[:examples])})")
        return "\n".join(lines)


def _answers(path: Path) -> dict[str, tuple[str, frozenset[str]]]:
    found: dict[str, tuple[str, frozenset[str]]] = {}
    for data in _read_answers(path):
        categories = frozenset(label["category"] for label in data.get("labels") or [])
        found[str(data["content_id"])] = (data["decision"], categories)
    return found


def _read_answers(path: Path) -> Iterator[dict[str, Any]]:
    """The answers of an output, JSONL or Parquet."""
    if path.suffix.lower() == ".parquet":
        table = _pyarrow().parquet.read_table(path, columns=["content_id", "decision", "labels"])
        yield from table.to_pylist()
        return
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)


def compare(previous: Path, current: Path) -> Comparison:
    """Decision and category transitions, by content_id, with example ids."""
    before, now = _answers(previous), _answers(current)
    report = Comparison()
    report.only_before = len(before.keys() - now.keys())
    report.only_now = len(now.keys() - before.keys())
    for content_id in sorted(before.keys() & now.keys()):
        (old_decision, old_categories), (new_decision, new_categories) = (
            before[content_id],
            now[content_id],
        )
        report.compared += 1
        if old_decision == new_decision and old_categories == new_categories:
            report.unchanged += 1
            continue
        if old_decision != new_decision:
            report.transitions[f"{old_decision} -> {new_decision}"].append(content_id)
        for category in sorted(new_categories - old_categories):
            report.added[category].append(content_id)
        for category in sorted(old_categories - new_categories):
            report.removed[category].append(content_id)
    return report
