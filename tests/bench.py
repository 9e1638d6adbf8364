"""``make bench``: throughput, per-message latency and memory of the prefilter.

Single process, single core (the GIL), messages of about 50 characters mixing Chinese,
English, punctuation, emoji and a share of disguised bad words, built from fixed fragments
with a fixed seed so every run sees the same messages. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from collections.abc import Callable
from functools import partial
from pathlib import Path

from moderation.batch import BatchOptions, open_source, run_batch
from moderation.compose import build_moderator, load_prefilter
from moderation.detect import LexiconDetector, PatternDetector
from moderation.domain import Content, EscalationMode
from moderation.log import configure
from moderation.pipeline import Moderator
from moderation.settings import Settings

CLEAN = [
    "今天天气真好，我们一起去公园散步吧",
    "这家店的菜很好吃，下次还来",
    "明天的会议改到下午三点",
    "谢谢大家的支持！",
    "周末有空一起打球吗",
    "老师布置的作业太多了",
    "新买的手机用着还不错",
    "this movie is great",
    "see you tomorrow",
    "我在学习Python编程",
    "快递什么时候能到",
    "哈哈哈笑死我了😂",
    "北京烤鸭真的很出名",
    "iPhone 15 Pro 256GB",
    "孩子上幼儿园了，很开心",
    "这个价格有点贵",
]
DIRTY = [
    "你就是个傻逼",
    "傻 逼",
    "草泥🐴",
    "nmsl",
    "你妈4了",
    "加我vx: abc12345",
    "出冰毒",
    "約炮",
    "sha bi",
    "河南人都是骗子",
    "f*ck you",
    "一起溜冰吗",
]


#: One message of each kind, for the per-kind table (clean ones first).
KINDS = [
    ("clean Chinese", "今天天气真好，我们一起去公园散步吧，这家店的菜很好吃，下次还来"),
    ("clean Chinese and English", "this movie is great，see you tomorrow，新买的手机用着还不错"),
    (
        "clean, a context step acts (哈哈哈)",
        "今天天气真好，哈哈哈笑死我了😂，这家店的菜很好吃，下次还来",
    ),
    ("one confident finding (傻逼)", "今天天气真好，你就是个傻逼，这家店的菜很好吃，下次还来"),
    ("pinyin (sha bi)", "今天天气真好，sha bi，这家店的菜很好吃，下次还来"),
    ("digit word (你妈4了)", "今天天气真好，你妈4了，这家店的菜很好吃，下次还来"),
    ("group and negative word", "今天天气真好，河南人都是骗子，这家店的菜很好吃，下次还来"),
    ("ambiguous term (溜冰)", "今天天气真好，一起溜冰吗，这家店的菜很好吃，下次还来"),
]


def best_us(call: Callable[[], object], number: int = 5000, repeat: int = 5) -> float:
    """The best of ``repeat`` timings of ``number`` calls, in µs per call."""
    return min(timeit.repeat(call, number=number, repeat=repeat)) / number * 1e6


def per_kind(moderator: Moderator) -> list[str]:
    """Table rows: each kind of message alone, whole path and by stage; a decision line."""
    normalizer, lexicon = load_prefilter()
    lexicon_detector, pattern_detector = LexiconDetector(lexicon), PatternDetector()
    scorer = moderator.scorer
    rows = []

    def judge(content: Content) -> object:
        return moderator.decide_now(moderator.screen(content))

    for name, text in KINDS:
        normalized = normalizer(text)
        whole = best_us(partial(judge, Content(text=text, escalation=EscalationMode.NEVER)))
        stages = (
            best_us(partial(normalizer, text)),
            best_us(partial(lexicon_detector.detect, normalized, "GLOBAL")),
            best_us(partial(pattern_detector.detect, normalized, "GLOBAL")),
            best_us(partial(scorer.score, normalized.text)) if scorer else 0.0,
        )
        rows.append(f"| {name} | {whole:.1f} | " + " | ".join(f"{t:.1f}" for t in stages) + " |")
    content = Content(text=KINDS[0][1])
    configure("INFO", stream=open(os.devnull, "w"))  # noqa: SIM115 - lives for the run
    logged = best_us(lambda: moderator.heuristics(content))
    configure("WARNING", stream=open(os.devnull, "w"))  # noqa: SIM115 - lives for the run
    silent = best_us(lambda: moderator.heuristics(content))
    rows.append(f"| one decision log line (INFO less WARNING) | {logged - silent:.1f} | | | | |")
    return rows


def messages(count: int, dirty_share: float, seed: int = 7) -> list[str]:
    """``count`` messages of about 50 characters; ``dirty_share`` of them hold a bad word."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        parts: list[str] = []
        while sum(map(len, parts)) < 44:
            parts.append(rng.choice(CLEAN))
        if rng.random() < dirty_share:
            parts.insert(rng.randrange(len(parts) + 1), rng.choice(DIRTY))
        out.append("，".join(parts)[:50])
    return out


def cpu_reference_ms() -> float:
    """Milliseconds for ``sum(range(1_000_000))``, best of 3 × 20: the speed of this machine
    in this minute (the research notes' perf anchors saw 17-20 ms on theirs)."""
    return min(timeit.repeat("sum(range(1_000_000))", number=20, repeat=3)) / 20 * 1000


def rss_mb() -> float:
    """Peak resident memory of this process, in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def batch_heuristics(count: int, folder: Path) -> tuple[float, int]:
    """Items/s of ``run_batch`` end to end (read, judge, write, checkpoint), no model."""
    source = folder / "bench-in.jsonl"
    with source.open("w", encoding="utf-8") as handle:
        for i, text in enumerate(messages(count, 0.2, seed=5)):
            handle.write(
                json.dumps({"content_id": str(i), "text": f"{text}{i}"}, ensure_ascii=False) + "\n"
            )
    moderator = build_moderator(Settings(), use_model=False)
    output = folder / "bench-out.jsonl"
    summary = await run_batch(
        moderator,
        open_source(str(source)),
        output,
        BatchOptions(use_model=False, overwrite=True),
    )
    return summary.items / summary.seconds, summary.items


def start_fake_model(latency: float) -> tuple[subprocess.Popen[str], int]:
    """A fake model answering in ``latency`` s, in its own process as a real endpoint is."""
    server = subprocess.Popen(
        [sys.executable, "-m", "tests.fake_llm", str(latency)], stdout=subprocess.PIPE, text=True
    )
    assert server.stdout is not None
    return server, int(server.stdout.readline())


async def batch_with_model(count: int, in_flight: int, port: int, folder: Path) -> float:
    """Items/s of a batch whose every item goes to the fake model on ``port``."""
    source = folder / "bench-model-in.jsonl"
    with source.open("w", encoding="utf-8") as handle:
        for i in range(count):
            row = {"content_id": str(i), "text": f"一起溜冰吗{i}"}
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    settings = Settings(
        llm_base_url=f"http://127.0.0.1:{port}/v1", llm_api_key="bench", llm_max_in_flight=in_flight
    )
    moderator = build_moderator(settings)
    try:
        summary = await run_batch(
            moderator,
            open_source(str(source)),
            folder / "bench-model-out.jsonl",
            BatchOptions(concurrency=in_flight, overwrite=True),
        )
    finally:
        await moderator.aclose()
    if summary.model_calls != count:
        raise RuntimeError(f"expected {count} model calls, saw {summary.model_calls}")
    return summary.items / summary.seconds


#: 20,000-character texts built to be expensive to screen, one unit repeated (what a
#: hostile client may send), against ordinary text of the same length.
WORST_CASES = {
    "group and negative words (河南人骗子)": "河南人骗子",
    "an insult (傻逼)": "傻逼",
    "a term in its allow context (草地)": "草地",
    "pinyin initials (nmsl)": "nmsl ",
    "phone numbers": "13812345678 ",
    "a homophone that is an ordinary word (学习)": "学习",
}
WORST_CHARS = 20_000


def repeated(unit: str, chars: int = WORST_CHARS) -> str:
    """``unit`` over and over, cut to ``chars`` characters."""
    return (unit * (chars // len(unit) + 1))[:chars]


def worst_cases(moderator: Moderator) -> list[str]:
    """Rows: ms to screen each expensive text (best of 5), and its ratio to ordinary text."""

    def best_ms(text: str) -> float:
        content = Content(text=text, escalation=EscalationMode.NEVER)
        return min(timeit.repeat(lambda: moderator.screen(content), number=1, repeat=5)) * 1000

    ordinary = repeated("".join(CLEAN))
    every_term = "".join(f"{e.term}，" for e in load_prefilter()[1].entries)
    cases = {
        **{name: repeated(unit) for name, unit in WORST_CASES.items()},
        "every lexicon term, repeated": repeated(every_term),
    }
    base = best_ms(ordinary)
    rows = [f"| ordinary text (the clean messages, repeated) | {base:.2f} | 1.0 |"]
    for name, text in cases.items():
        ms = best_ms(text)
        rows.append(f"| {name} | {ms:.2f} | {ms / base:.1f} |")
    return rows


def main() -> None:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--dirty", type=float, default=0.2, help="share with a bad word")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-items", type=int, default=50_000)
    args = parser.parse_args()

    configure("WARNING", stream=open(os.devnull, "w"))  # noqa: SIM115 - lives for the run
    before = rss_mb()
    began = time.perf_counter()
    moderator = build_moderator(Settings(), use_model=False)
    start_s = time.perf_counter() - began
    loaded = rss_mb()
    without_scorer = build_moderator(Settings(scorer_path="off"), use_model=False)
    batch = messages(args.messages, args.dirty)
    contents = [Content(text=m, escalation=EscalationMode.NEVER) for m in batch]
    for content in contents[:2000]:  # warm caches
        moderator.decide_now(moderator.screen(content))
        without_scorer.decide_now(without_scorer.screen(content))

    reference_before = cpu_reference_ms()
    rates, p50s, p99s, rates_off = [], [], [], []
    for _ in range(args.repeats):
        gc.collect()
        latencies = []
        clock = time.perf_counter
        began = clock()
        for content in contents:
            t0 = clock()
            moderator.decide_now(moderator.screen(content))
            latencies.append(clock() - t0)
        elapsed = clock() - began
        rates.append(len(contents) / elapsed)
        latencies.sort()
        p50s.append(latencies[len(latencies) // 2] * 1e6)
        p99s.append(latencies[int(len(latencies) * 0.99)] * 1e6)
        began = clock()
        for content in contents:  # the same run without the scorer, interleaved
            without_scorer.decide_now(without_scorer.screen(content))
        rates_off.append(len(contents) / (clock() - began))

    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}"
    )
    scorer = moderator.scorer
    print(
        f"lexicon {moderator.lexicon_version}; scorer {scorer.version if scorer else 'off'}; "
        f"start-up {start_s:.2f} s"
    )
    print(
        f"CPU reference, sum(range(1_000_000)): {reference_before:.1f} ms before the runs, "
        f"{cpu_reference_ms():.1f} ms after (lower is faster)"
    )
    print()
    print("| measure | median of runs | runs |")
    print("|---|---|---|")
    print(
        f"| prefilter messages/s (50 chars, {args.dirty:.0%} dirty, one core) "
        f"| {statistics.median(rates):,.0f} | {', '.join(f'{r:,.0f}' for r in rates)} |"
    )
    print(
        f"| the same without the scorer (MODERATION_SCORER_PATH=off) "
        f"| {statistics.median(rates_off):,.0f} | {', '.join(f'{r:,.0f}' for r in rates_off)} |"
    )
    print(
        f"| p50 per message, µs | {statistics.median(p50s):.1f} | "
        f"{', '.join(f'{p:.1f}' for p in p50s)} |"
    )
    print(
        f"| p99 per message, µs | {statistics.median(p99s):.1f} | "
        f"{', '.join(f'{p:.1f}' for p in p99s)} |"
    )
    print(f"| RSS with the full lexicon, MB | {loaded:.0f} | before loading {before:.0f} |")
    print()
    print(
        "| one message alone, µs (best of 5 × 5,000) | whole | normalize | lexicon | patterns "
        "| scorer |"
    )
    print("|---|---|---|---|---|---|")
    for row in per_kind(moderator):
        print(row)
    print()
    print(f"| worst case, {WORST_CHARS:,} characters | ms (best of 5) | × ordinary |")
    print("|---|---|---|")
    for row in worst_cases(moderator):
        print(row)
    print()
    print("| batch | items/s | |")
    print("|---|---|---|")

    with tempfile.TemporaryDirectory() as folder:
        rate, items = asyncio.run(batch_heuristics(args.batch_items, Path(folder)))
        print(
            f"| batch, heuristics only, end to end (JSONL in and out, checkpoints), items/s "
            f"| {rate:,.0f} | {items} items |"
        )
        for in_flight, latency in ((8, 0.1), (32, 0.1), (32, 0.25)):
            count = in_flight * 16
            server, port = start_fake_model(latency)
            try:
                rate = asyncio.run(batch_with_model(count, in_flight, port, Path(folder)))
            finally:
                server.kill()
                server.wait()
            print(
                f"| batch, every item to a fake model of {latency * 1000:.0f} ms, {in_flight} in "
                f"flight, items/s | {rate:,.0f} | N/L = {in_flight / latency:,.0f} |"
            )


if __name__ == "__main__":
    main()
