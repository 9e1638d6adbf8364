"""Batch reruns: sources, bad rows, de-duplication, resume after kill -9, and --compare."""

from __future__ import annotations

import asyncio
import csv
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from moderation.batch import BatchOptions, compare, open_source, run_batch
from moderation.compose import build_moderator
from moderation.errors import ConfigError
from moderation.jsonform import result_json
from moderation.settings import Settings
from tests.fake_llm import FakeModel

TEXTS = [
    "今天天气真好",
    "你就是个傻逼",
    "一起溜冰吗",
    "加我vx: abc12345",
    "草泥🐴",
    "纪念六四",
    "hello",
]


def to_json(result: Any) -> Any:
    """The JSON form, as the CLI writes it."""
    return result_json(result)


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    """Write rows (dicts, or raw strings for broken lines) as JSONL."""
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(
                (row if isinstance(row, str) else json.dumps(row, ensure_ascii=False)) + "\n"
            )
    return path


def run_cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``python -m moderation batch ...``."""
    return subprocess.run(
        [sys.executable, "-m", "moderation", "batch", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, **env},
    )


def lines(path: Path) -> list[dict[str, Any]]:
    """The JSON lines of a file."""
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]


def test_jsonl_rows_are_answered_in_order_with_bad_rows_set_aside(tmp_path: Path) -> None:
    """Every good row gets one answer, in input order; bad rows go to the errors file."""
    rows: list[Any] = [{"content_id": f"c{i}", "text": TEXTS[i % len(TEXTS)]} for i in range(40)]
    rows[3] = "{not json"
    rows[7] = {"content_id": "no-text"}
    rows[11] = {"content_id": "long", "text": "长" * 20_001}
    rows[13] = {"content_id": "where", "text": "你好", "jurisdiction": "XX"}
    rows[17] = {"content_id": "blank", "text": "   "}
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    done = run_cli("--input", str(source), "--output", str(tmp_path / "out.jsonl"), "--no-llm")
    assert done.returncode == 0, done.stderr
    answers = lines(tmp_path / "out.jsonl")
    bad = {3, 7, 11, 13, 17}
    assert [a["content_id"] for a in answers] == [f"c{i}" for i in range(40) if i not in bad]
    errors = lines(tmp_path / "out.jsonl.errors.jsonl")
    assert [e["line"] for e in errors] == [4, 8, 12, 14, 18]
    reasons = " | ".join(e["reason"] for e in errors)
    for expected in (
        "invalid JSON",
        "missing 'text'",
        "the limit is 20000",
        "unknown jurisdiction",
        "must not be empty",
    ):
        assert expected in reasons
    assert "35 items answered, 5 bad rows" in done.stdout
    assert "\r" not in done.stderr  # no progress bar when not on a terminal


def test_a_run_logs_a_summary_not_a_line_per_item_unless_asked(tmp_path: Path) -> None:
    """By default one batch.finished line with the counts; --log-items adds a line per item."""
    source = write_jsonl(
        tmp_path / "in.jsonl", [{"text": f"{TEXTS[i % len(TEXTS)]} {i}"} for i in range(30)]
    )

    def events(done: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
        assert done.returncode == 0, done.stderr
        return [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]

    quiet = events(
        run_cli("--input", str(source), "--output", str(tmp_path / "a.jsonl"), "--no-llm")
    )
    assert [e["event"] for e in quiet if e["event"] == "moderation.decided"] == []
    (finished,) = [e for e in quiet if e["event"] == "batch.finished"]
    assert finished["items"] == 30
    assert sum(finished["decisions"].values()) == 30
    loud = events(
        run_cli(
            "--input", str(source), "--output", str(tmp_path / "b.jsonl"), "--no-llm", "--log-items"
        )
    )
    assert len([e for e in loud if e["event"] == "moderation.decided"]) == 30


def test_answers_equal_the_check_command(tmp_path: Path) -> None:
    """A batch line is the same JSON form as ``moderation check`` gives for the text."""
    source = write_jsonl(tmp_path / "in.jsonl", [{"content_id": "0", "text": "你就是个傻逼"}])
    assert (
        run_cli(
            "--input", str(source), "--output", str(tmp_path / "o.jsonl"), "--no-llm"
        ).returncode
        == 0
    )
    check = subprocess.run(
        [sys.executable, "-m", "moderation", "check", "--no-llm", "你就是个傻逼"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert lines(tmp_path / "o.jsonl")[0] == json.loads(check.stdout)


def test_csv_and_sqlite_sources(tmp_path: Path) -> None:
    """CSV files and SQLite tables are read like JSONL, ids and jurisdictions included."""
    with (tmp_path / "in.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["content_id", "text", "jurisdiction"])
        writer.writerows(
            [["a", "纪念六四", "CN"], ["b", "纪念六四", "US"], ["c", "多行\n文本", ""]]
        )
    db = tmp_path / "posts.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE posts (id TEXT, body TEXT, region TEXT)")
        conn.executemany(
            "INSERT INTO posts VALUES (?, ?, ?)", [("p1", "纪念六四", "CN"), ("p2", "你好", None)]
        )
    assert (
        run_cli(
            "--input", str(tmp_path / "in.csv"), "--output", str(tmp_path / "csv.jsonl"), "--no-llm"
        ).returncode
        == 0
    )
    url = f"sqlite:///{db}?table=posts&id=id&text=body&jurisdiction=region"
    done = run_cli("--input", url, "--output", str(tmp_path / "db.jsonl"), "--no-llm")
    assert done.returncode == 0, done.stderr
    from_csv = lines(tmp_path / "csv.jsonl")
    assert [(a["content_id"], a["policy"]["jurisdiction"]) for a in from_csv] == [
        ("a", "CN"),
        ("b", "US"),
        ("c", "GLOBAL"),
    ]
    assert from_csv[0]["decision"] == "DECISION_BLOCK"
    assert from_csv[1]["decision"] == "DECISION_ALLOW"
    from_db = lines(tmp_path / "db.jsonl")
    assert [(a["content_id"], a["policy"]["jurisdiction"]) for a in from_db] == [
        ("p1", "CN"),
        ("p2", "GLOBAL"),
    ]


def write_parquet_rows(path: Path, rows: list[dict[str, Any]], group_rows: int = 1000) -> Path:
    """Write rows as a Parquet file with row groups of ``group_rows``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=group_rows)
    return path


def test_parquet_in_and_out_answer_as_jsonl_does(tmp_path: Path) -> None:
    """A Parquet input is read like JSONL (ids, jurisdictions, bad rows by line); a Parquet
    output holds exactly the JSON form's answers, and --compare reads it."""
    rows: list[dict[str, Any]] = [
        {
            "content_id": f"c{i}",
            "text": TEXTS[i % len(TEXTS)],
            "jurisdiction": "CN" if i % 3 else "",
        }
        for i in range(50)
    ]
    rows[7]["text"] = None
    source = write_parquet_rows(tmp_path / "in.parquet", rows, group_rows=16)
    jsonl = write_jsonl(tmp_path / "in.jsonl", rows)
    for spec, out in ((source, "from-parquet.jsonl"), (jsonl, "from-jsonl.jsonl")):
        done = run_cli("--input", str(spec), "--output", str(tmp_path / out), "--no-llm")
        assert done.returncode == 0, done.stderr
        assert "49 items answered, 1 bad rows" in done.stdout
    assert lines(tmp_path / "from-parquet.jsonl") == lines(tmp_path / "from-jsonl.jsonl")
    (error,) = lines(tmp_path / "from-parquet.jsonl.errors.jsonl")
    assert (error["line"], error["content_id"], error["reason"]) == (8, "c7", "missing 'text'")

    done = run_cli("--input", str(source), "--output", str(tmp_path / "out.parquet"), "--no-llm")
    assert done.returncode == 0, done.stderr
    import pyarrow.parquet as pq

    assert pq.read_table(tmp_path / "out.parquet").to_pylist() == lines(
        tmp_path / "from-jsonl.jsonl"
    )
    assert not (tmp_path / "out.parquet.partial.jsonl").exists()
    compared = run_cli(
        "--input", str(jsonl), "--output", str(tmp_path / "us.jsonl"), "--no-llm", "-j", "US",
        "--compare", str(tmp_path / "out.parquet"),
    )  # fmt: skip
    assert compared.returncode == 0, compared.stderr
    assert "compared 49 items" in compared.stdout


async def test_a_parquet_run_killed_mid_way_resumes_to_the_uninterrupted_file(
    tmp_path: Path,
) -> None:
    """A Parquet input resumes by row number (skipping row groups already done) and a Parquet
    output appears only whole: after a crash and a resume it equals the clean run's."""
    import pyarrow.parquet as pq

    rows = [{"content_id": str(i), "text": f"{TEXTS[i % len(TEXTS)]} {i}"} for i in range(300)]
    source = write_parquet_rows(tmp_path / "in.parquet", rows, group_rows=40)
    moderator = build_moderator(Settings(), use_model=False)
    options = BatchOptions(use_model=False, chunk=25)
    clean = tmp_path / "clean.parquet"
    await run_batch(moderator, open_source(str(source)), clean, options)
    out = tmp_path / "out.parquet"
    with pytest.raises(_Crash):
        await run_batch(
            moderator, open_source(str(source)), out, options, to_json=crashing_after(170)
        )
    assert not out.exists()
    assert (tmp_path / "out.parquet.partial.jsonl").exists()
    summary = await run_batch(moderator, open_source(str(source)), out, options)
    assert summary.items == 300
    assert pq.read_table(out).to_pylist() == pq.read_table(clean).to_pylist()
    assert [a["content_id"] for a in pq.read_table(out).to_pylist()] == [str(i) for i in range(300)]


def test_a_parquet_file_broken_mid_way_stops_the_run_with_where(tmp_path: Path) -> None:
    """Pages that cannot be read stop the run with exit 2, naming the file and the row group,
    and the rows before them stay answered and committed (a rerun resumes there)."""
    rows = [{"content_id": str(i), "text": f"你好{i}" * 40} for i in range(3000)]
    source = write_parquet_rows(tmp_path / "in.parquet", rows, group_rows=1000)
    data = bytearray(source.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 2000] = bytes(b ^ 0x5A for b in data[middle : middle + 2000])
    source.write_bytes(bytes(data))
    out = tmp_path / "out.jsonl"
    done = run_cli("--input", str(source), "--output", str(out), "--no-llm")
    assert done.returncode == 2, done.stderr
    assert "in.parquet: row group 1 (rows 1001 on) cannot be read" in done.stderr
    assert "Traceback" not in done.stderr
    assert [a["content_id"] for a in lines(out)] == [str(i) for i in range(1000)]


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("sqlite:///nowhere.db?table=t&text=x", "no SQLite file"),
        ("missing.jsonl", "no such file"),
        ("data.xlsx", "unknown format"),
        ("data.parquet", "data.parquet: not a readable Parquet file"),
        ("plain.parquet", "must have a 'text' column"),
    ],
)
def test_bad_input_specs_are_refused(tmp_path: Path, spec: str, says: str) -> None:
    """An input that cannot be read is refused with what is wrong, exit 2."""
    (tmp_path / "data.xlsx").write_bytes(b"PK")
    (tmp_path / "data.parquet").write_bytes(b"PAR1")
    write_parquet_rows(tmp_path / "plain.parquet", [{"body": "你好"}])
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "moderation",
            "batch",
            "--input",
            spec,
            "--output",
            "o.jsonl",
            "--no-llm",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 2
    assert says in done.stderr


def test_sqlite_names_are_checked(tmp_path: Path) -> None:
    """A table or column name that is not a plain SQL name is refused."""
    db = tmp_path / "x.db"
    sqlite3.connect(db).execute("CREATE TABLE t (x TEXT)").connection.close()
    with pytest.raises(ConfigError, match="plain SQL name"):
        open_source(f"sqlite:///{db}?table=t;drop&text=x")


def _corpus(path: Path, count: int) -> Path:
    rng = random.Random(3)
    rows: list[Any] = []
    for i in range(count):
        text = f"{rng.choice(TEXTS)} 第{i}条 " + "".join(
            rng.choice("今天明白好的人们说") for _ in range(30)
        )
        rows.append(
            {"content_id": f"id{i}", "text": text, **({"jurisdiction": "CN"} if i % 4 == 0 else {})}
        )
    rows[100] = "{broken"
    return write_jsonl(path, rows)


def test_kill_9_at_any_moment_then_resume_gives_the_uninterrupted_answers(tmp_path: Path) -> None:
    """Killed with SIGKILL several times, the rerun finishes with exactly the clean run's output."""
    source = _corpus(tmp_path / "in.jsonl", 30_000)
    clean = tmp_path / "clean.jsonl"
    assert run_cli("--input", str(source), "--output", str(clean), "--no-llm").returncode == 0
    out = tmp_path / "out.jsonl"
    rng = random.Random(11)
    kills = 0
    for _ in range(6):
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "moderation",
                "batch",
                "--input",
                str(source),
                "--output",
                str(out),
                "--no-llm",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            process.wait(timeout=rng.uniform(1.5, 3.5))
            break  # it finished before the kill
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGKILL)
            process.wait()
            kills += 1
    assert kills >= 1
    final = run_cli("--input", str(source), "--output", str(out), "--no-llm")
    assert final.returncode == 0, final.stderr
    assert out.read_bytes() == clean.read_bytes()
    assert (tmp_path / "out.jsonl.errors.jsonl").read_bytes() == (
        tmp_path / "clean.jsonl.errors.jsonl"
    ).read_bytes()
    assert "29999 items answered, 1 bad rows" in final.stdout


def test_a_finished_run_is_not_redone_and_overwrite_starts_afresh(tmp_path: Path) -> None:
    """A finished batch is not redone; --overwrite starts over; other input is refused."""
    source = write_jsonl(tmp_path / "in.jsonl", [{"content_id": "1", "text": "你好"}])
    out = tmp_path / "out.jsonl"
    assert run_cli("--input", str(source), "--output", str(out), "--no-llm").returncode == 0
    before = out.read_bytes()
    assert run_cli("--input", str(source), "--output", str(out), "--no-llm").returncode == 0
    assert out.read_bytes() == before
    other = write_jsonl(tmp_path / "other.jsonl", [{"content_id": "2", "text": "再见"}])
    refused = run_cli("--input", str(other), "--output", str(out), "--no-llm")
    assert refused.returncode == 2
    assert "--overwrite" in refused.stderr
    again = run_cli("--input", str(other), "--output", str(out), "--no-llm", "--overwrite")
    assert again.returncode == 0
    assert [a["content_id"] for a in lines(out)] == ["2"]


def test_compare_reports_transitions(tmp_path: Path) -> None:
    """--compare says which items changed decision or categories, with example ids."""
    rows = [{"content_id": "a", "text": "纪念六四"}, {"content_id": "b", "text": "你好"}]
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    before = tmp_path / "before.jsonl"
    after = tmp_path / "after.jsonl"
    assert (
        run_cli("--input", str(source), "--output", str(before), "--no-llm", "-j", "US").returncode
        == 0
    )
    done = run_cli(
        "--input",
        str(source),
        "--output",
        str(after),
        "--no-llm",
        "-j",
        "CN",
        "--compare",
        str(before),
    )
    assert done.returncode == 0
    assert "compared 2 items: 1 unchanged, 1 changed" in done.stdout
    assert "DECISION_ALLOW -> DECISION_BLOCK: 1 (e.g. a)" in done.stdout
    assert "CATEGORY_POLITICAL: 1 (e.g. a)" in done.stdout
    report = compare(before, after)
    assert report.transitions == {"DECISION_ALLOW -> DECISION_BLOCK": ["a"]}


async def test_identical_texts_cost_one_model_call(tmp_path: Path, fake: FakeModel) -> None:
    """A run judges each distinct text once: 200 rows of 2 ambiguous texts make 2 model calls."""
    rows = [
        {"content_id": str(i), "text": "一起溜冰吗" if i % 2 else "有人溜冰吗"} for i in range(200)
    ]
    source = open_source(str(write_jsonl(tmp_path / "in.jsonl", rows)))
    settings = Settings(llm_base_url=fake.base_url, llm_api_key="k", cache_path=tmp_path / "v.db")
    moderator = build_moderator(settings)
    try:
        summary = await run_batch(
            moderator, source, tmp_path / "out.jsonl", BatchOptions(concurrency=8), to_json=to_json
        )
    finally:
        await moderator.aclose()
    assert len(fake.requests) == 2
    assert summary.items == 200
    assert summary.duplicates == 198
    assert summary.model_calls == 2
    assert summary.prompt_tokens == 240
    answers = lines(tmp_path / "out.jsonl")
    assert [a["content_id"] for a in answers] == [str(i) for i in range(200)]
    assert all(a["escalation"]["status"] == "ESCALATION_STATUS_RESOLVED" for a in answers)


async def test_model_calls_run_concurrently(tmp_path: Path, fake: FakeModel) -> None:
    """With N calls in flight and a model that takes L seconds, 4N items take about 4L, not 4NL."""
    from tests.fake_llm import Answer

    fake.default = lambda r: Answer(delay=0.2)
    rows = [{"content_id": str(i), "text": f"一起溜冰吗{i}"} for i in range(64)]
    source = open_source(str(write_jsonl(tmp_path / "in.jsonl", rows)))
    moderator = build_moderator(
        Settings(llm_base_url=fake.base_url, llm_api_key="k", llm_max_in_flight=16)
    )
    began = asyncio.get_running_loop().time()
    try:
        summary = await run_batch(
            moderator, source, tmp_path / "out.jsonl", BatchOptions(concurrency=16), to_json=to_json
        )
    finally:
        await moderator.aclose()
    elapsed = asyncio.get_running_loop().time() - began
    assert summary.model_calls == 64
    assert elapsed < 64 * 0.2 / 4  # far from serial (12.8 s); about 0.8 s expected


class _Crash(Exception):
    """Stands for a kill: raised while a chunk is being written."""


def crashing_after(answers: int) -> Callable[[Any], Any]:
    """The JSON form, until ``answers`` answers are written: then a crash mid-chunk."""
    written = 0

    def crashing(result: Any) -> Any:
        nonlocal written
        written += 1
        if written > answers:
            raise _Crash
        return to_json(result)

    return crashing


async def test_rows_without_ids_keep_their_line_numbers_across_a_resume(tmp_path: Path) -> None:
    """Rows without content_id are named by their line, the same after a crash and a resume,
    and the errors file gives each bad row's own line."""
    rows: list[Any] = [{"text": TEXTS[i % len(TEXTS)] + f" {i}"} for i in range(60)]
    rows[25] = "{broken"
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    moderator = build_moderator(Settings(), use_model=False)
    options = BatchOptions(use_model=False, chunk=7)
    clean = tmp_path / "clean.jsonl"
    await run_batch(moderator, open_source(str(source)), clean, options, to_json=to_json)
    out = tmp_path / "out.jsonl"
    with pytest.raises(_Crash):
        await run_batch(
            moderator, open_source(str(source)), out, options, to_json=crashing_after(30)
        )
    await run_batch(moderator, open_source(str(source)), out, options, to_json=to_json)
    assert out.read_bytes() == clean.read_bytes()
    answers = lines(out)
    assert [a["content_id"] for a in answers] == [str(n) for n in range(1, 61) if n != 26]
    (error,) = lines(tmp_path / "out.jsonl.errors.jsonl")
    assert (error["line"], error["content_id"]) == (26, "26")


def test_poison_rows_go_to_the_errors_file_and_the_run_goes_on(tmp_path: Path) -> None:
    """Lone surrogate escapes, over-long CSV fields, bytes that are not UTF-8 and a quote that
    is never closed each become an errors line; every good row is still answered."""
    jsonl = tmp_path / "in.jsonl"
    jsonl.write_text(
        '{"content_id": "a", "text": "你好"}\n'
        '{"content_id": "b", "text": "bad \\ud800 escape"}\n'
        '{"content_id": "\\udc00", "text": "你好"}\n'
        '{"content_id": "d", "text": "再见"}\n',
        encoding="utf-8",
    )
    done = run_cli("--input", str(jsonl), "--output", str(tmp_path / "j.jsonl"), "--no-llm")
    assert done.returncode == 0, done.stderr
    assert [a["content_id"] for a in lines(tmp_path / "j.jsonl")] == ["a", "d"]
    errors = lines(tmp_path / "j.jsonl.errors.jsonl")
    assert [(e["line"], e["reason"]) for e in errors] == [
        (2, "'text' is not valid UTF-8"),
        (3, "'content_id' is not valid UTF-8"),
    ]

    csv_path = tmp_path / "in.csv"
    csv_path.write_bytes(
        b"content_id,text\n"
        b"a,\xe4\xbd\xa0\xe5\xa5\xbd\n"
        b"long," + b"x" * 200_000 + b"\n"
        b"bytes,caf\xe9\n"
        b'junk,"closed"then text\n'
        b"e,\xe5\x86\x8d\xe8\xa7\x81\n"
        b'open,"never closed\n'
        b"f,lost\n"
    )
    done = run_cli("--input", str(csv_path), "--output", str(tmp_path / "c.jsonl"), "--no-llm")
    assert done.returncode == 0, done.stderr
    assert [a["content_id"] for a in lines(tmp_path / "c.jsonl")] == ["a", "e"]
    reasons = {e["content_id"]: e["reason"] for e in lines(tmp_path / "c.jsonl.errors.jsonl")}
    assert reasons["long"].startswith("text: is 200000 characters")
    assert reasons["bytes"] == "'text' is not valid UTF-8"
    assert reasons["5"].startswith("malformed CSV")
    assert "opened on line 7 is never closed" in reasons["7"]


def test_unreadable_inputs_and_unwritable_outputs_are_clear_errors(tmp_path: Path) -> None:
    """UTF-16 CSV, a WITHOUT ROWID table and an output that cannot be written exit 2, saying so."""
    utf16 = tmp_path / "in16.csv"
    utf16.write_bytes("content_id,text\na,你好\n".encode("utf-16"))
    db = tmp_path / "w.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE posts (id TEXT PRIMARY KEY, body TEXT) WITHOUT ROWID")
    good = write_jsonl(tmp_path / "ok.jsonl", [{"content_id": "1", "text": "你好"}])
    (tmp_path / "a-directory").mkdir()
    for spec, output, says in (
        (str(utf16), tmp_path / "o1.jsonl", "UTF-16"),
        (f"sqlite:///{db}?table=posts&id=id&text=body", tmp_path / "o2.jsonl", "WITHOUT ROWID"),
        (str(good), tmp_path / "a-directory", "cannot write"),
    ):
        done = run_cli("--input", spec, "--output", str(output), "--no-llm")
        assert done.returncode == 2, done.stderr
        assert says in done.stderr
        assert "Traceback" not in done.stderr


def test_an_input_edited_in_place_is_not_resumed_over(tmp_path: Path) -> None:
    """An input changed without changing its size or modification time is told apart."""
    source = write_jsonl(tmp_path / "in.jsonl", [{"content_id": "1", "text": "你好呀"}])
    out = tmp_path / "out.jsonl"
    assert run_cli("--input", str(source), "--output", str(out), "--no-llm").returncode == 0
    stat = source.stat()
    source.write_text(source.read_text(encoding="utf-8").replace("你好呀", "傻逼啊"), "utf-8")
    os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert source.stat().st_size == stat.st_size
    refused = run_cli("--input", str(source), "--output", str(out), "--no-llm")
    assert refused.returncode == 2
    assert "different input" in refused.stderr
