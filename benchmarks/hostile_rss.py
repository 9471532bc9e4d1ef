"""Peak memory and time for each hostile attachment through find_form (sandboxed, as in production).

    .venv/bin/python benchmarks/hostile_rss.py

Each file runs in a fresh child of this script so the numbers do not mix. "rss before/after" is that
child's peak RSS in MB before and after extract_form (after making the file; the difference is
what the checks cost), "sandbox MB" the peak RSS of the parsing worker, if one ran (its whole life: each
file gets a fresh worker here). The large legitimate sheet is run twice in a 100 MB sandbox: as the lean
reader reads it, and with a hyperlink, which leaves it to openpyxl.
"""

from __future__ import annotations

import multiprocessing as mp
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _one(name: str, queue) -> None:
    from parsers.mail import Attachment
    from rules.forms import find_form, load_form_schema
    from tests.parsers.test_attachments import HOSTILE, large_legit_xlsx

    schema = load_form_schema(ROOT / "rules" / "packs" / "mittvaccin" / "form.toml")
    if name.startswith("large_legit"):
        from parsers.attachments import AttachmentLimits

        att = Attachment("stor.xlsx", "", large_legit_xlsx(linked="openpyxl" in name))
        limits = AttachmentLimits(sandbox_memory_bytes=100 * 1024 * 1024)
    else:
        filename, make, _ = HOSTILE[name]
        att, limits = Attachment(filename, "", make()), None
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    from parsers import sandbox

    sandbox.last_child_peak_kb = 0
    start = time.perf_counter()
    outcome = find_form([att], schema, limits)
    elapsed = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # The worker reports its own peak (VmHWM) with each answer; one that died of its limit cannot (0: shown as
    # "-"; RUSAGE_CHILDREN would count this process's size before the worker's exec).
    child = sandbox.last_child_peak_kb
    codes = ",".join(r.code for r in outcome.reasons) or "accepted"
    queue.put((name, len(att.data), base, peak, child, elapsed, codes))


def main() -> None:
    from tests.parsers.test_attachments import HOSTILE

    ctx = mp.get_context("spawn")
    print(f"{'file':32} {'bytes':>10} {'rss before':>10} {'rss after':>9} {'sandbox MB':>10} {'seconds':>8}  outcome")
    for name in [*sorted(HOSTILE), "large_legit (100 MB, lean)", "large_legit (100 MB, openpyxl)"]:
        queue = ctx.Queue()
        proc = ctx.Process(target=_one, args=(name, queue))
        proc.start()
        proc.join(120)
        if proc.is_alive():
            proc.kill()
            print(f"{name:32} did not finish in 120 s")
            continue
        name, size, base, peak, child, elapsed, codes = queue.get()
        sandbox_mb = f"{child / 1024:.0f}" if child else "-"
        print(f"{name:32} {size:>10} {base / 1024:>10.0f} {peak / 1024:>9.0f} {sandbox_mb:>10} {elapsed:>8.2f}"
              f"  {codes}")


if __name__ == "__main__":
    main()
