"""The Ray Data engine: the same answers as the local runner, on a local Ray instance."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

TEXTS = ["你就是个傻逼", "今天天气真好", "纪念六四", "一起溜冰吗", "加我vx: abc12345"]


def test_ray_engine_gives_the_local_answers(tmp_path: Path) -> None:
    """``--engine ray`` answers every row like the local engine; bad rows are set aside."""
    source = tmp_path / "in.jsonl"
    with source.open("w", encoding="utf-8") as handle:
        for i in range(200):
            row = {"content_id": f"r{i}", "text": f"{TEXTS[i % len(TEXTS)]} {i}"}
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        handle.write("{broken\n")
    outputs = {}
    for engine in ("local", "ray"):
        out = tmp_path / f"{engine}.jsonl"
        done = subprocess.run(
            [sys.executable, "-m", "moderation", "batch", "--engine", engine,
             "--input", str(source), "--output", str(out), "--no-llm", "-j", "CN", "--actors", "1"],
            capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
        assert "200 items answered, 1 bad rows" in done.stdout
        answers = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
        outputs[engine] = {a["content_id"]: a for a in answers}
    assert outputs["ray"] == outputs["local"]
    assert len(outputs["ray"]) == 200
