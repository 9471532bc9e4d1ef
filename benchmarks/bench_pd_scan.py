"""Throughput of rules.personal_data.scan on realistic mail bodies (5 KB, 50 KB, 1 MB).

Usage:  .venv/bin/python benchmarks/bench_pd_scan.py [--repeat N]

Bodies are built from the look-alike snippets of the corpus (phone numbers, dates, order numbers,
signatures, quoted replies) with a few real findings mixed in, so every detector does real work.
Prints MB of text per second (best of N runs); asserts nothing.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rules.personal_data import scan  # noqa: E402

CORPUS = ROOT / "fixtures" / "personal_data" / "corpus.jsonl"
TODAY = date(2026, 11, 24)


def build_body(size: int) -> str:
    records = [json.loads(line) for line in CORPUS.read_text("utf-8").splitlines() if line.strip()]
    bodies = [r["text"] for r in records if not r["in_subject"]]
    looks = [b for r, b in zip(records, bodies, strict=False) if not r["category"]]
    with_pd = [r["text"] for r in records if r["category"] and not r["in_subject"]]
    parts, total, i = [], 0, 0
    while total < size:
        # One mail in twenty carries personal data; the rest only look like it.
        text = with_pd[i % len(with_pd)] if i % 20 == 19 else looks[i % len(looks)]
        parts.append("> " + text.replace("\n", "\n> ") if i % 3 == 2 else text)
        total += len(text.encode("utf-8")) + 2
        i += 1
    return "\n\n".join(parts)[:size]


def bench(size: int, repeat: int) -> tuple[float, int]:
    body = build_body(size)
    mb = len(body.encode("utf-8")) / 1e6
    best, found = float("inf"), 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        found = len(scan("MittVaccin – Behörighet", body, sender_name="Karin Lindqvist",
                         sender_address="karin.lindqvist@kungsbacka.se", today=TODAY))
        best = min(best, time.perf_counter() - t0)
    return mb / best, found


def main(argv: list[str]) -> int:
    repeat = int(argv[argv.index("--repeat") + 1]) if "--repeat" in argv else 5
    print(f"{'body':>8}{'MB/s':>10}{'ms/body':>10}{'findings':>10}")
    for label, size in (("5 KB", 5_000), ("50 KB", 50_000), ("1 MB", 1_000_000)):
        rate, found = bench(size, repeat)
        print(f"{label:>8}{rate:>10.1f}{size / 1e6 / rate * 1000:>10.2f}{found:>10}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
