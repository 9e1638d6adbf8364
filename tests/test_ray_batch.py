"""The Ray engine: the local runner's answers, in input order, on a local Ray instance."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

TEXTS = ["你就是个傻逼", "今天天气真好", "纪念六四", "一起溜冰吗", "加我vx: abc12345"]


def _batch(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "moderation", "batch", "--no-llm", "-j", "CN", *args],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip


def test_ray_engine_gives_the_local_answers_through_the_same_sources(tmp_path: Path) -> None:
    """``--engine ray`` reads the input through the local engine's sources (here Parquet, with
    a bad row) and writes the same answers in the same order, Parquet included, and the same
    errors file."""
    rows: list[dict[str, Any]] = [
        {"content_id": f"r{i}", "text": f"{TEXTS[i % len(TEXTS)]} {i}"} for i in range(200)
    ]
    rows.append({"content_id": "bad", "text": None})
    source = tmp_path / "in.parquet"
    pq.write_table(pa.Table.from_pylist(rows), source, row_group_size=64)
    local = _batch("--input", str(source), "--output", str(tmp_path / "local.jsonl"))
    assert local.returncode == 0, local.stderr[-2000:]
    on_ray = _batch(
        "--engine", "ray", "--actors", "2", "--input", str(source),
        "--output", str(tmp_path / "ray.parquet"),
    )  # fmt: skip
    assert on_ray.returncode == 0, on_ray.stderr[-2000:]
    for done in (local, on_ray):
        assert "200 items answered, 1 bad rows" in done.stdout
    expected = [json.loads(line) for line in (tmp_path / "local.jsonl").read_text().splitlines()]
    assert pq.read_table(tmp_path / "ray.parquet").to_pylist() == expected
    assert (tmp_path / "ray.parquet.errors.jsonl").read_text() == (
        tmp_path / "local.jsonl.errors.jsonl"
    ).read_text()
