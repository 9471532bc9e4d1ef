"""Kill tests around sending: ``intake send`` as a real subprocess, killed with SIGKILL around the SMTP
hand-over (``INTAKE_FAULT=before-send:N`` / ``after-send:N``) and at random moments, then restarted.

The SMTP server is the real aiosmtpd of the ``smtp_server`` fixture in this test process; what it
received per recipient is what the requesters would see. The promise (intake/outbox.py): never a
lost reply; a kill after the hand-over repeats at most that one reply.
"""

from __future__ import annotations

import email
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from intake.outbox import Outbox, file_transport
from intake.store import open_store
from tests.mailmaker import make_mail

pytestmark = pytest.mark.slow

SUBJECTS = ["MittVaccin – användarstöd", "Fel ämne", "MittVaccin – Behörighet", "MittVaccin – felsökning"]


def write_config(tmp_path: Path, smtp_server) -> Path:
    path = tmp_path / "intake.toml"
    path.write_text("\n".join([
        "[store]", 'path = "intake.db"', "",
        "[mailbox]", 'kind = "local"', 'path = "mailbox"', "",
        "[outbox]", 'kind = "smtp"', "",
        "[smtp]", f'host = "{smtp_server.host}"', f"port = {smtp_server.port}", 'tls = "none"', "timeout = 5", "",
        "[replies]", 'from_address = "mittvaccin@region.example.test"', "",
    ]) + "\n")
    return path


def intake(conf: Path, *args: str, fault: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INTAKE_")}
    if fault:
        env["INTAKE_FAULT"] = fault
    return subprocess.run([sys.executable, "-m", "intake.cli", "-c", str(conf), *args],
                          env=env, capture_output=True, text=True, timeout=120)


def queue_replies(tmp_path: Path, conf: Path, n: int) -> list[str]:
    """Put ``n`` mails from ``n`` senders in the folder and poll without sending: ``n`` replies queued."""
    inbox = tmp_path / "mailbox"
    inbox.mkdir()
    senders = []
    for i in range(n):
        sender = f"handlaggare{i}@hylte.example.test"
        raw = make_mail(subject=SUBJECTS[i % len(SUBJECTS)], sender=sender,
                        message_id=f"<send-kill-{i}@hylte.example.test>")
        (inbox / f"{i:04d}.eml").write_bytes(raw)
        senders.append(sender)
    done = intake(conf, "poll", "--once", "--no-send")
    assert done.returncode == 0, done.stderr
    rows = outbox(tmp_path)
    assert len(rows) == n and {r["status"] for r in rows} == {"pending"}
    return senders


def outbox(tmp_path: Path) -> list[dict]:
    return list(open_store(tmp_path / "intake.db").db.query("select * from outbox order by id"))


def per_recipient(smtp_server) -> Counter[str]:
    return Counter(r for m in smtp_server.messages for r in m.rcpt_tos)


def finish(tmp_path: Path, conf: Path) -> None:
    done = intake(conf, "send")
    assert done.returncode == 0, done.stderr
    assert {r["status"] for r in outbox(tmp_path)} == {"sent"}


@pytest.mark.parametrize("nth", [1, 3, 6])
def test_killed_before_send_repeats_nothing_and_loses_nothing(tmp_path, smtp_server, nth):
    conf = write_config(tmp_path, smtp_server)
    senders = queue_replies(tmp_path, conf, 6)

    killed = intake(conf, "send", fault=f"before-send:{nth}")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert len(smtp_server.messages) == nth - 1  # the ones before the kill went out
    finish(tmp_path, conf)
    assert per_recipient(smtp_server) == Counter(senders)


@pytest.mark.parametrize("nth", [1, 4, 6])
def test_killed_after_send_repeats_at_most_that_one_reply(tmp_path, smtp_server, nth):
    conf = write_config(tmp_path, smtp_server)
    senders = queue_replies(tmp_path, conf, 6)
    handed_over = senders_in_outbox_order(tmp_path)[nth - 1]

    killed = intake(conf, "send", fault=f"after-send:{nth}")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert len(smtp_server.messages) == nth  # the n-th was handed over, then the process died
    finish(tmp_path, conf)
    counts = per_recipient(smtp_server)
    assert set(counts) == set(senders)  # nobody lost
    assert {s: c for s, c in counts.items() if c != 1} in ({}, {handed_over: 2})  # at most that one, once more
    # The repeat is the same mail (same Message-ID), so the requester's client can tell it is a copy.
    ids = Counter(m.data.split(b"Message-ID:", 1)[1].split(b">", 1)[0].strip() for m in smtp_server.messages)
    assert max(ids.values()) <= 2 and sum(ids.values()) - len(ids) <= 1


def senders_in_outbox_order(tmp_path: Path) -> list[str]:
    return [r["to_addr"] for r in outbox(tmp_path)]


def test_killed_at_random_fault_points_many_times(tmp_path, smtp_server):
    conf = write_config(tmp_path, smtp_server)
    senders = queue_replies(tmp_path, conf, 12)
    rng = random.Random(20261124)
    expected = Counter(senders)  # one each, plus one more for each reply a kill caught after its hand-over
    for _ in range(20):
        pending = [r["to_addr"] for r in outbox(tmp_path) if r["status"] == "pending"]
        if not pending:
            break
        point = rng.choice(["before-send", "after-send"])
        nth = rng.randint(1, len(pending))
        run = intake(conf, "send", fault=f"{point}:{nth}")
        assert run.returncode == -signal.SIGKILL, run.stderr
        if point == "after-send":
            expected[pending[nth - 1]] += 1
    finish(tmp_path, conf)
    assert per_recipient(smtp_server) == expected


def test_killed_at_random_moments(tmp_path, smtp_server):
    conf = write_config(tmp_path, smtp_server)
    senders = queue_replies(tmp_path, conf, 40)
    env = {k: v for k, v in os.environ.items() if not k.startswith("INTAKE_")}
    rng = random.Random(3834)
    kills = 0
    cut_short: list[int] = []  # replies delivered so far, at each kill that left some unsent
    for _ in range(8):
        proc = subprocess.Popen([sys.executable, "-m", "intake.cli", "-c", str(conf), "send"],
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.2, 1.5))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
            if any(r["status"] == "pending" for r in outbox(tmp_path)):
                cut_short.append(len(smtp_server.messages))
        proc.wait()
    finish(tmp_path, conf)
    assert cut_short, "no kill landed while replies were still waiting"
    counts = per_recipient(smtp_server)
    assert set(counts) == set(senders)  # nobody lost
    assert sum(counts.values()) - len(senders) <= kills  # at most one repeat per kill


def test_a_file_outbox_killed_mid_round_writes_each_reply_again_under_its_own_name(tmp_path, smtp_server):
    # The file outbox marks a round's replies together, after writing them (one store lock a round): a kill
    # before the mark writes the same files again, each under its Message-ID, never a second file per reply.
    conf = write_config(tmp_path, smtp_server)
    conf.write_text(conf.read_text().replace('kind = "smtp"', 'kind = "file"\ndir = "outbox"'))
    senders = queue_replies(tmp_path, conf, 6)
    killed = intake(conf, "send", fault="after-send:4")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    written = sorted(p.name for p in (tmp_path / "outbox").glob("*.eml"))
    assert len(written) == 4 and {r["status"] for r in outbox(tmp_path)} == {"pending"}  # written, not marked
    finish(tmp_path, conf)
    files = sorted((tmp_path / "outbox").glob("*.eml"))
    assert len(files) == 6 and set(written) <= {p.name for p in files}
    assert not list((tmp_path / "outbox").glob(".*.tmp"))
    to = Counter(email.message_from_bytes(p.read_bytes())["To"] for p in files)
    assert to == Counter(senders)
    store = open_store(tmp_path / "intake.db")
    events = Counter(r["kind"] for r in store.db.query("select kind from events where kind = 'reply_sent'"))
    assert events["reply_sent"] == 6  # each marked once


def _queue_rows(store, n: int) -> None:
    for i in range(n):
        with store.transaction():
            store.insert_outbox({
                "message_id": None, "ticket_id": None, "kind": "ack", "to_addr": f"u{i}@example.test",
                "subject": "Hej", "body": "Tack", "rfc_message_id": f"<r{i}@example.test>", "in_reply_to": None,
                "references_": None, "attach_blank_form": int(i == 3), "attach_ticket_form": 0, "automatic": 1,
                "status": "pending", "attempts": 0, "next_attempt_at": "2000-01-01T00:00:00+00:00",
                "created_at": "2000-01-01T00:00:00+00:00"})


def test_replies_written_before_a_reply_that_raises_are_still_marked_sent(tmp_path):
    store = open_store(tmp_path / "s.db")
    _queue_rows(store, 5)

    def blank_forms(_outbox_id: int):
        raise FileNotFoundError("the pack's blank form is gone")

    outbox = Outbox(store, file_transport(tmp_path / "out"), from_address="intake@example.test",
                    blank_forms=blank_forms)
    try:
        outbox.send_due()
    except FileNotFoundError:
        pass
    assert len(list((tmp_path / "out").glob("*.eml"))) == 3  # written ...
    statuses = [r["status"] for r in store.rows("select status from outbox order by id")]
    assert statuses[:3] == ["sent"] * 3  # ... and marked, though the round ended in an error
