"""Throughput and worst cases of rules.personal_data.scan.

Usage:  .venv/bin/python benchmarks/bench_pd_scan.py [--repeat N] [--baseline REV]

1. Throughput on realistic mail bodies (5 KB, 50 KB, 1 MB), built from the look-alike snippets of the
   corpus (phone numbers, dates, order numbers, signatures, quoted replies) with a few real findings
   mixed in, so every detector does real work: MB of text per second (best of N runs).
2. Worst cases: a 12 MB body packed with one line shape (personnummer, numbers that are only held,
   names in context, look-alikes), and the first of them as a whole mail through intake.pipeline.decide
   (parsing and the staff detail included). Each runs in a fresh process: CPU seconds, peak memory (max
   RSS of that process, interpreter included) and the findings returned.

With --baseline REV (a git revision, e.g. 92b8ed8, the commit before the scan budget) the same worst
cases run on that revision's code too (extracted with git archive), side by side. Asserts nothing.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CORPUS = ROOT / "fixtures" / "personal_data" / "corpus.jsonl"
TODAY = date(2026, 11, 24)
WORST_SIZE = 12_000_000
# Line shapes for the worst cases (only the published test personnummer).
WORST = {
    "personnummer": "19121212-1212\n",  # 857,142 clear findings: the case measured in issue 10
    "held numbers": "Hon har 0001042399\n",  # only uncertain findings: no early stop
    "names": "gäller Karin Lindqvist\n",
    "look-alikes": "Ring 035-13 10 00 om ordern VMU3000096.\n",  # nothing to find: the size budget
}
MAIL = "mail, decide()"  # the personnummer case as a whole mail through the pipeline


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
    from rules.personal_data import scan

    body = build_body(size)
    mb = len(body.encode("utf-8")) / 1e6
    best, found = float("inf"), 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        found = len(scan("MittVaccin – Behörighet", body, sender_name="Karin Lindqvist",
                         sender_address="karin.lindqvist@kungsbacka.se", today=TODAY))
        best = min(best, time.perf_counter() - t0)
    return mb / best, found


def worst_child(case: str, tree: str | None) -> None:
    """Run one worst case in this (fresh) process and print its figures as JSON."""
    if tree:  # another revision's code, extracted by baseline_tree()
        sys.path.insert(0, tree)
    if case == MAIL:
        from intake.pipeline import Settings, decide
        from rules.packs import load_packs
        from tests.conftest import NOW
        from tests.mailmaker import make_mail

        raw = make_mail(subject="MittVaccin – användarstöd", body="Hej!\n" + WORST["personnummer"] * (
            WORST_SIZE // len(WORST["personnummer"])))
        routines, settings = load_packs(["mittvaccin"]), Settings(from_address="mittvaccin@region.example.test")
        t0 = time.process_time()
        findings = decide(raw, routines, settings=settings, now=NOW).findings
    else:
        from rules.personal_data import scan

        unit = WORST[case]
        body = unit * (WORST_SIZE // len(unit.encode("utf-8")))
        t0 = time.process_time()
        findings = scan("MittVaccin – Behörighet", body, today=TODAY)
    cpu = time.process_time() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"cpu": cpu, "rss_mb": rss, "findings": len(findings)}))


def run_worst(case: str, tree: str | None) -> dict:
    cmd = [sys.executable, __file__, "--worst-child", case] + (["--tree", tree] if tree else [])
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=tree or ROOT).stdout
    return json.loads(out.strip().splitlines()[-1])


def baseline_tree(rev: str, tmp: str) -> str:
    """The repository as it was at ``rev``, extracted into ``tmp``."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev], check=True, capture_output=True).stdout
    subprocess.run(["tar", "x", "-C", tmp], input=archive, check=True)
    return tmp


def throughput_child(size: int, repeat: int, tree: str | None) -> None:
    if tree:
        sys.path.insert(0, tree)
    rate, found = bench(size, repeat)
    print(json.dumps({"rate": rate, "findings": found}))


def run_throughput(size: int, repeat: int, tree: str | None) -> dict:
    cmd = [sys.executable, __file__, "--throughput-child", str(size), str(repeat)] + (["--tree", tree] if tree else [])
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=tree or ROOT).stdout
    return json.loads(out.strip().splitlines()[-1])


def main(argv: list[str]) -> int:
    tree = argv[argv.index("--tree") + 1] if "--tree" in argv else None
    if "--worst-child" in argv:
        worst_child(argv[argv.index("--worst-child") + 1], tree)
        return 0
    if "--throughput-child" in argv:
        i = argv.index("--throughput-child")
        throughput_child(int(argv[i + 1]), int(argv[i + 2]), tree)
        return 0
    repeat = int(argv[argv.index("--repeat") + 1]) if "--repeat" in argv else 5
    baseline = argv[argv.index("--baseline") + 1] if "--baseline" in argv else None
    with tempfile.TemporaryDirectory() as tmp:
        old_dir = baseline_tree(baseline, tmp) if baseline else None
        print("Throughput on realistic bodies (best of N runs, one fresh process each)")
        head = f"{'body':>8}{'MB/s':>10}{'ms/body':>10}{'findings':>10}"
        if old_dir:  # ratio: how many times faster than the baseline
            head += f"   | {baseline[:10]:>10}: {'MB/s':>6}{'ms/body':>9}{'findings':>10}{'ratio':>7}"
        print(head)
        for label, size in (("5 KB", 5_000), ("50 KB", 50_000), ("1 MB", 1_000_000)):
            new = run_throughput(size, repeat, None)
            line = f"{label:>8}{new['rate']:>10.1f}{size / 1e6 / new['rate'] * 1000:>10.2f}{new['findings']:>10}"
            if old_dir:
                old = run_throughput(size, repeat, old_dir)
                line += (f"   | {'':>10}  {old['rate']:>6.1f}{size / 1e6 / old['rate'] * 1000:>9.2f}"
                         f"{old['findings']:>10}{new['rate'] / old['rate']:>6.2f}x")
            print(line)
        print(f"\nWorst cases: a {WORST_SIZE / 1e6:.0f} MB body of one line shape (one fresh process each)")
        head = f"{'body':<14}{'CPU s':>8}{'peak MB':>9}{'findings':>10}"
        if old_dir:
            head += f"   | {baseline[:10]:>10}: {'CPU s':>7}{'peak MB':>9}{'findings':>10}{'CPU ratio':>11}"
        print(head)
        for case in [*WORST, MAIL]:
            new = run_worst(case, None)
            line = f"{case:<14}{new['cpu']:>8.2f}{new['rss_mb']:>9.0f}{new['findings']:>10}"
            if old_dir:
                old = run_worst(case, old_dir)
                line += (f"   | {'':>10}  {old['cpu']:>7.2f}{old['rss_mb']:>9.0f}{old['findings']:>10}"
                         f"{old['cpu'] / max(new['cpu'], 1e-9):>10.0f}x")
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
