"""``intake demo``: the whole path on bundled example mail, with no servers.

Copies the example mails in ``intake/demo_mail/`` into a local mailbox folder, polls it once with
the embedded defaults (local folder in, file outbox out), sends the replies to the file outbox
and prints the queue, the mail that was not accepted, and the replies written.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from importlib import resources
from pathlib import Path

from intake import config as config_mod
from intake.app import make_outbox, make_poller, open_app


def demo_mail() -> list[Path]:
    folder = Path(str(resources.files("intake").joinpath("demo_mail")))
    return sorted(folder.glob("*.eml"))


def run_demo(workdir: Path | None, echo: Callable[[str], None] = print) -> Path:
    workdir = Path(workdir or tempfile.mkdtemp(prefix="intake-demo-"))
    mailbox = workdir / "mailbox"
    mailbox.mkdir(parents=True, exist_ok=True)
    for path in demo_mail():
        shutil.copy(path, mailbox / path.name)
    config = config_mod.from_mapping(
        {
            "store": {"path": "intake.db"},
            "mailbox": {"kind": "local", "path": "mailbox"},
            "outbox": {"kind": "file", "dir": "outbox"},
            "replies": {"from_address": "mittvaccin-support@region.example.test"},
        },
        base_dir=workdir,
    )
    store, routines = open_app(config)
    result = make_poller(config, store, routines).poll_once()
    sent = make_outbox(config, store, routines).send_due()

    echo(f"Demo folder: {workdir}")
    echo(f"Poll: {result.summary()}")
    echo(f"Outbox: {sent.summary()} (written to {workdir / 'outbox'})\n")
    echo("Tickets in the queue:")
    for t in store.tickets():
        echo(f"  {t['ref']:14} {t['request_type']:13} {t['queue']:11} {t['status']:6} "
             f"{t['user_count']} user(s)  from {t['requester']}")
    echo("\nMail not accepted:")
    for m in store.messages(verdicts=("rejected", "held", "ignored")):
        codes = ", ".join(r["code"] for r in json.loads(m["reasons"] or "[]"))
        echo(f"  {m['verdict']:8} {m['sender'] or '(no sender)':40} {codes}")
    echo(f"\nSee one ticket:  intake -c {workdir / 'intake.toml'} ticket show <REF>")
    (workdir / "intake.toml").write_text(
        '[store]\npath = "intake.db"\n\n[mailbox]\nkind = "local"\npath = "mailbox"\n\n'
        '[outbox]\nkind = "file"\ndir = "outbox"\n\n'
        '[replies]\nfrom_address = "mittvaccin-support@region.example.test"\n',
        "utf-8",
    )
    return workdir
