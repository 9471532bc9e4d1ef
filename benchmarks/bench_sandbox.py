"""Per-form cost of the bounded form parse: a fresh interpreter per mail (cold) against a child forked from
the warm zygote (warm), on every filled form fixture, side by side.

    .venv/bin/python benchmarks/bench_sandbox.py --repeat 5

Each figure is the median wall time of ``parse_bounded`` for one file (one mail with one form), the
answers of both paths compared with the in-process parse. The zygote's own start (once per process)
is printed apart.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from parsers import sandbox  # noqa: E402
from parsers.schema import load_form_schema  # noqa: E402

FILLED = ROOT / "fixtures" / "forms" / "filled"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    schema = load_form_schema(ROOT / "rules" / "packs" / "mittvaccin" / "form.toml")
    files = sorted(FILLED.glob("*.[xd][lo][sc]x"))
    start = time.perf_counter()
    sandbox._zygote()
    print(f"zygote start (once per process): {(time.perf_counter() - start) * 1000:.0f} ms")
    print(f"{'file':34} {'cold ms':>8} {'warm ms':>8} {'ratio':>6}  same answer")
    totals = {True: [], False: []}
    for path in files:
        fmt, data = path.suffix[1:], path.read_bytes()
        expected = sandbox.parse_in_process(fmt, data, schema)
        times: dict[bool, list[float]] = {True: [], False: []}
        same = True
        for _ in range(args.repeat):
            for warm in (False, True):  # interleaved
                sandbox.WARM = warm
                t = time.perf_counter()
                got = sandbox.parse_bounded(fmt, data, schema)
                times[warm].append(time.perf_counter() - t)
                same = same and got == expected
        cold, warm_ = statistics.median(times[False]) * 1000, statistics.median(times[True]) * 1000
        totals[False].append(cold)
        totals[True].append(warm_)
        print(f"{path.name:34} {cold:>8.0f} {warm_:>8.0f} {cold / warm_:>5.1f}×  {same}")
    cold, warm_ = statistics.mean(totals[False]), statistics.mean(totals[True])
    print(f"{'mean per form':34} {cold:>8.0f} {warm_:>8.0f} {cold / warm_:>5.1f}×")
    sandbox.WARM = True


if __name__ == "__main__":
    main()
