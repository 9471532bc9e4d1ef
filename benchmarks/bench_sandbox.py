"""Per-form cost of the bounded form parse, side by side on every filled form fixture:

- cold: a fresh interpreter per mail, openpyxl/python-docx (the fallback when no worker can start);
- warm: the persistent worker, openpyxl/python-docx (``sandbox.LEAN = False``);
- lean: the persistent worker, the lean reader (production);
- in-process: the lean reader without any sandbox (the floor of what isolation costs).

    .venv/bin/python benchmarks/bench_sandbox.py --repeat 5

Each figure is the median wall time of ``parse_bounded`` for one file (one mail with one form), the paths
interleaved; every answer is compared with the in-process openpyxl parse. The worker's own start (once per
process) is printed apart.
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
PATHS = {"cold": (False, False), "warm": (True, False), "lean": (True, True)}  # name -> (WARM, LEAN)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    schema = load_form_schema(ROOT / "rules" / "packs" / "mittvaccin" / "form.toml")
    files = sorted(FILLED.glob("*.[xd][lo][sc]x"))
    sandbox.stop_workers()
    start = time.perf_counter()
    sandbox._give_back(sandbox._take_worker())
    print(f"worker start (once per process): {(time.perf_counter() - start) * 1000:.0f} ms")
    print(f"{'file':34} {'cold ms':>8} {'warm ms':>8} {'lean ms':>8} {'in-proc':>8} {'cold/lean':>9} "
          f"{'warm/lean':>9}  same answer")
    means: dict[str, list[float]] = {name: [] for name in [*PATHS, "in-process"]}
    for path in files:
        fmt, data = path.suffix[1:], path.read_bytes()
        expected = sandbox.parse_in_process(fmt, data, schema, lean=False)
        times: dict[str, list[float]] = {name: [] for name in means}
        same = True
        for _ in range(args.repeat):
            for name, (warm, lean) in PATHS.items():  # interleaved
                sandbox.WARM, sandbox.LEAN = warm, lean
                t = time.perf_counter()
                got = sandbox.parse_bounded(fmt, data, schema)
                times[name].append(time.perf_counter() - t)
                same = same and got == expected
            t = time.perf_counter()
            got = sandbox.parse_in_process(fmt, data, schema, lean=True)
            times["in-process"].append(time.perf_counter() - t)
            same = same and got == expected
        med = {name: statistics.median(ts) * 1000 for name, ts in times.items()}
        for name, ms in med.items():
            means[name].append(ms)
        print(f"{path.name:34} {med['cold']:>8.1f} {med['warm']:>8.1f} {med['lean']:>8.1f} {med['in-process']:>8.1f} "
              f"{med['cold'] / med['lean']:>8.0f}× {med['warm'] / med['lean']:>8.1f}×  {same}")
    mean = {name: statistics.mean(ms) for name, ms in means.items()}
    print(f"{'mean per form':34} {mean['cold']:>8.1f} {mean['warm']:>8.1f} {mean['lean']:>8.1f} "
          f"{mean['in-process']:>8.1f} {mean['cold'] / mean['lean']:>8.0f}× {mean['warm'] / mean['lean']:>8.1f}×")
    sandbox.WARM, sandbox.LEAN = True, True


if __name__ == "__main__":
    main()
