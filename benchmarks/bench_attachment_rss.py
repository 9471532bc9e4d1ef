"""Peak memory of one decision against the size of the mail's largest attachment.

    .venv/bin/python benchmarks/bench_attachment_rss.py [--sizes 1,5,20]

For each size (MB) two mails go through ``decide()`` (with ``max_message_bytes`` raised to 64 MB so the
large mail is read, not refused unread), each in a fresh process run under GNU ``/usr/bin/time``:

- ``xlsx+image``: the filled MittVaccin form (fixtures/forms/filled/blank_new_1user.xlsx) with an
  incompressible image of that size added to the workbook (``xl/media``), the way a pasted screenshot
  or logo makes a form large;
- ``form+bin``: the same small form plus a separate ``.bin`` attachment of that size.

Printed: the decision process's RSS after imports (baseline), after one small decision (warm: the first
decision imports and compiles what every later one reuses, about 5 MB) and its peak; the peak of the whole
process tree by GNU time (the form-parsing sandbox child included; Linux carries a parent's high-water mark
into a forked child, so a child's own figure cannot be told apart from its parent's); peak / attachment size,
(peak - baseline) / attachment size (target: at most 5x the largest attachment) and (peak - warm) /
attachment size, which counts the copies of the mail held at once. Figures only.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FORM = ROOT / "fixtures" / "forms" / "filled" / "blank_new_1user.xlsx"
TIME = "/usr/bin/time"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _noise(size: int) -> bytes:
    return random.Random(size).randbytes(size)


def padded_form(size: int) -> bytes:
    """The form with an incompressible PNG-looking member of ``size`` bytes, stored as Excel stores media."""
    out = io.BytesIO()
    with zipfile.ZipFile(FORM) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info, src.read(info))
        dst.writestr(zipfile.ZipInfo("xl/media/image1.png", (2026, 1, 12, 8, 30, 0)),
                     b"\x89PNG\r\n\x1a\n" + _noise(size - 8), zipfile.ZIP_STORED)
    return out.getvalue()


def make_mail(kind: str, size: int) -> bytes:
    from tests.mailmaker import make_mail as build

    form = FORM.read_bytes()
    if kind == "xlsx+image":
        attachments = [("Blankett.xlsx", padded_form(size), XLSX)]
    else:
        attachments = [("Blankett.xlsx", form, XLSX), ("skarmbild.bin", _noise(size), "application/octet-stream")]
    return build("MittVaccin – Behörighet", "Hej!\nHär kommer blanketten.\n\nMed vänliga hälsningar\nEva",
                 attachments=attachments)


def worker(path: str) -> None:
    """In a fresh process: import, note the baseline, decide once, report the peaks."""
    from intake.pipeline import Settings, decide
    from rules.packs import load_packs

    routines = load_packs(["mittvaccin"])
    settings = Settings(from_address="mittvaccin-support@example.test", max_age=None,
                        max_message_bytes=64 * 1024 * 1024)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # One small mail first (the form alone), as a poller has decided mail before: what the first decision
    # imports and compiles once (templates, the form reader) is not a copy of the attachment.
    decide(make_mail("form+bin", 1024), routines, settings=settings)
    warm = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    raw = Path(path).read_bytes()
    start = time.perf_counter()
    decision = decide(raw, routines, settings=settings)
    elapsed = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"base_kb": base, "warm_kb": warm, "peak_kb": peak, "seconds": elapsed,
                      "verdict": decision.verdict,
                      "codes": list(decision.codes)}))


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "worker":
        return worker(sys.argv[2])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,5,20", help="attachment sizes in MB, comma separated")
    args = parser.parse_args()
    if not os.access(TIME, os.X_OK):
        sys.exit(f"needs GNU time at {TIME}: run scripts/install-test-deps")
    print(f"{'attachment':12}{'MB':>5}{'mail MB':>9}{'base MB':>9}{'warm MB':>9}{'peak MB':>9}{'tree MB':>9}"
          f"{'peak/att':>9}{'(peak-base)/att':>16}{'(peak-warm)/att':>16}{'s':>6}  outcome")
    with tempfile.TemporaryDirectory() as tmp:
        for size_mb in (float(s) for s in args.sizes.split(",")):
            for kind in ("xlsx+image", "form+bin"):
                size = int(size_mb * 2**20)
                mail = Path(tmp) / f"{kind}-{size_mb}.eml"
                mail.write_bytes(make_mail(kind, size))
                stats = Path(tmp) / "time.out"
                proc = subprocess.run([TIME, "-f", "%M", "-o", str(stats), sys.executable, __file__, "worker",
                                       str(mail)], capture_output=True, text=True)
                if proc.returncode != 0:
                    print(f"{kind:12}{size_mb:>5g}  failed: {proc.stderr.strip()[-300:]}")
                    continue
                r = json.loads(proc.stdout.strip().splitlines()[-1])
                tree = int(stats.read_text().split()[-1]) / 1024
                base, warm, peak = r["base_kb"] / 1024, r["warm_kb"] / 1024, r["peak_kb"] / 1024
                att = size / 2**20
                outcome = r["verdict"] + (f" ({', '.join(r['codes'])})" if r["codes"] else "")
                print(f"{kind:12}{size_mb:>5g}{mail.stat().st_size / 2**20:>9.1f}{base:>9.1f}{warm:>9.1f}"
                      f"{peak:>9.1f}{tree:>9.1f}{peak / att:>9.1f}{(peak - base) / att:>16.1f}"
                      f"{(peak - warm) / att:>16.1f}{r['seconds']:>6.1f}  {outcome}", flush=True)


if __name__ == "__main__":
    main()
