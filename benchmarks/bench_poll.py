"""Prints where a poll spends its time: parse, personal-data scan, form parse, whole decision, and a whole
local poll (record + move) in mails per second. Figures only; nothing here is a pass/fail test.

Run: .venv/bin/python benchmarks/bench_poll.py
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from intake import config as config_mod  # noqa: E402
from intake.app import make_poller, open_app  # noqa: E402
from intake.pipeline import Settings, decide  # noqa: E402
from parsers.forms import extract_form  # noqa: E402
from parsers.mail import parse_mail  # noqa: E402
from rules.packs import load_packs  # noqa: E402
from rules.personal_data import scan  # noqa: E402

DEMO = ROOT / "intake" / "demo_mail"


def timed(fn, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n


def main() -> None:
    routines = load_packs(["mittvaccin"])
    settings = Settings(from_address="bot@region.example.test")
    raw = (DEMO / "01-behorighet-ok.eml").read_bytes()
    mail = parse_mail(raw)
    schema = routines[0].form_schema
    n = 20
    rows = [
        ("parse_mail (mail with a .xlsx form)", timed(lambda: parse_mail(raw), n)),
        ("personal-data scan of subject + body", timed(lambda: scan(mail.subject, mail.body_text), n)),
        ("form: safety checks + parse in sandbox", timed(lambda: extract_form(mail.attachments, schema), 5)),
        ("form: safety checks + parse in process",
         timed(lambda: extract_form(mail.attachments, schema, sandbox=False), n)),
        ("decide() on a form mail (whole decision)", timed(lambda: decide(raw, routines, settings=settings), 5)),
    ]
    support = (DEMO / "03-anvandarstod.eml").read_bytes()
    rows.append(("decide() on a support mail (no form)",
                 timed(lambda: decide(support, routines, settings=settings), n)))
    print(f"{'step':45} {'ms per mail':>12}")
    for name, seconds in rows:
        print(f"{name:45} {seconds * 1000:12.2f}")

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        box = root / "box"
        box.mkdir()
        count = 0
        for i in range(20):
            for path in sorted(DEMO.glob("*.eml")):
                data = path.read_bytes().replace(b"Message-ID: <demo-", f"Message-ID: <r{i}-demo-".encode())
                (box / f"{i:03d}-{path.name}").write_bytes(data)
                count += 1
        config = config_mod.from_mapping(
            {"store": {"path": "q.db"}, "mailbox": {"path": "box"}, "replies": {"rate_limit_per_hour": 1000}},
            base_dir=root,
        )
        store, routines = open_app(config)
        start = time.perf_counter()
        result = make_poller(config, store, routines).poll_once()
        elapsed = time.perf_counter() - start
        shutil.rmtree(box)
    print(f"\nwhole local poll: {result.recorded} mails recorded and moved in {elapsed:.1f} s "
          f"= {count / elapsed:.1f} mails/s (mixed demo mail, {result.verdicts['accepted']} accepted)")


if __name__ == "__main__":
    main()
