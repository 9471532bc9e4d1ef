"""Exactly-once effect: the poller is killed with SIGKILL at several points of a run against a real Dovecot,
restarted, and every mail ends up exactly once in the store and out of the inbox."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time

import pytest

from intake.store import open_store
from tests.dovecot import CAPABILITY_WITHOUT_MOVE
from tests.intake.imapdesk import env_for, run_intake, write_config
from tests.mailmaker import make_mail

pytestmark = [pytest.mark.imap, pytest.mark.slow]

SUBJECTS = ["MittVaccin – användarstöd", "MittVaccin – felsökning", "Fel ämne", "MittVaccin – användarstöd"]


def fill(account, n: int) -> list[str]:
    ids = []
    for i in range(n):
        mid = f"<kill-{i}@halmstad.example.test>"
        headers = {"Auto-Submitted": "auto-replied"} if i % 7 == 6 else None
        # One sender per mail, so the per-sender reply limit does not enter into the counts.
        sender = f"Handläggare {i} <person{i}@halmstad.example.test>"
        account.append(make_mail(subject=SUBJECTS[i % len(SUBJECTS)], message_id=mid, headers=headers, sender=sender))
        ids.append(mid)
    return ids


def assert_exactly_once(tmp_path, account, ids: list[str]) -> None:
    store = open_store(tmp_path / "intake.db")
    rows = list(store.db.query("select message_key, verdict, ticket_id from messages"))
    assert sorted(r["message_key"] for r in rows) == sorted(f"mid:{i}" for i in ids)
    accepted = [r for r in rows if r["verdict"] == "accepted"]
    assert store.db["tickets"].count == len(accepted)
    assert len({r["ticket_id"] for r in accepted}) == len(accepted)
    # One queued reply per answered mail, never two.
    per_message = list(store.db.query("select message_id, count(*) n from outbox group by message_id having n > 1"))
    assert per_message == []
    answered = [r for r in rows if r["verdict"] in ("accepted", "rejected")]
    assert store.db["outbox"].count == len(answered)
    # Out of the inbox, and each mail in exactly one folder.
    assert account.uids("INBOX") == []
    moved = sum(len(account.uids(f)) for f in account.folders() if f.startswith("Intake/"))
    assert moved == len(ids)
    # Every record knows where its mail went (a kill between the move and marking it is repaired).
    unmarked = list(store.db.query("select uid from messages where moved_at is null or moved_to = '(gone)'"))
    assert unmarked == []


@pytest.mark.parametrize("fault", ["before-commit:3", "after-commit:1", "after-commit:4", "mid-batch:6",
                                   "after-move:1", "after-move:5"])
def test_killed_at_a_point_then_restarted(imap_account, tmp_path, fault):
    ids = fill(imap_account, 10)
    conf = write_config(tmp_path, imap_account)
    killed = run_intake(conf, imap_account, "poll", "--once", "--no-send", fault=fault)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert imap_account.uids("INBOX"), "the kill came before the end of the run"
    done = run_intake(conf, imap_account, "poll", "--once", "--no-send")
    assert done.returncode == 0, done.stderr
    assert_exactly_once(tmp_path, imap_account, ids)


@pytest.mark.parametrize("fault", ["after-copy:1", "after-copy:4"])
def test_killed_between_copy_and_expunge_on_a_server_without_move(dovecot_factory, tmp_path, fault):
    account = dovecot_factory(capability=CAPABILITY_WITHOUT_MOVE).new_account()
    ids = fill(account, 6)
    conf = write_config(tmp_path, account)
    killed = run_intake(conf, account, "poll", "--once", "--no-send", fault=fault)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    done = run_intake(conf, account, "poll", "--once", "--no-send")
    assert done.returncode == 0, done.stderr
    assert_exactly_once(tmp_path, account, ids)  # no second copy in any target folder


def test_a_move_killed_before_it_was_marked_is_repaired_by_the_next_poll(imap_account, tmp_path):
    ids = fill(imap_account, 3)
    conf = write_config(tmp_path, imap_account)
    killed = run_intake(conf, imap_account, "poll", "--once", "--no-send", fault="after-move:2")
    assert killed.returncode == -signal.SIGKILL
    store = open_store(tmp_path / "intake.db")
    # The batch's mail bound for one folder is moved by one command, then marked in one transaction: the kill
    # between them leaves that folder's mails moved but unmarked (the rest of the batch still in the inbox).
    unmarked = store.db.execute("select count(*) from messages where moved_at is null").fetchone()[0]
    moved_unmarked = unmarked - len(imap_account.uids("INBOX"))
    assert moved_unmarked >= 1
    done = run_intake(conf, imap_account, "poll", "--once", "--no-send")
    assert done.returncode == 0, done.stderr
    assert f"{moved_unmarked} repaired" in done.stdout
    events = [r["data"] for r in store.db.query("select data from events where kind = 'move_repaired'")]
    assert len(events) == moved_unmarked and all('"found": true' in e for e in events)
    assert_exactly_once(tmp_path, imap_account, ids)


def test_killed_at_random_moments_many_times(imap_account, tmp_path):
    ids = fill(imap_account, 30)
    conf = write_config(tmp_path, imap_account)
    rng = random.Random(20261124)
    kills = 0
    for _ in range(8):
        proc = subprocess.Popen(
            [sys.executable, "-m", "intake.cli", "-c", str(conf), "poll", "--once", "--no-send"],
            env=env_for(imap_account), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(0.3, 1.5))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
    done = run_intake(conf, imap_account, "poll", "--once", "--no-send")
    assert done.returncode == 0, done.stderr
    assert kills >= 1
    assert_exactly_once(tmp_path, imap_account, ids)


def test_a_delete_killed_between_flag_and_expunge_is_finished_by_the_next_poll(imap_account, tmp_path):
    # Mail rejected for personal data is deleted when so configured: UID STORE \Deleted, then UID EXPUNGE. A kill
    # between the two left it flagged in the inbox, where the next poll's listing (NOT DELETED) never saw it.
    ids = fill(imap_account, 3)
    imap_account.append(make_mail(subject="MittVaccin – användarstöd", message_id="<pnr@halmstad.example.test>",
                                  body="Gäller 19121212-1212, som behöver behörighet."))
    conf = write_config(tmp_path, imap_account)
    conf.write_text(conf.read_text() + '\n[mailbox.folders]\npersonal_data_action = "delete"\n')
    killed = run_intake(conf, imap_account, "poll", "--once", "--no-send", fault="after-flag-deleted:1")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert len(imap_account.uids("INBOX")) >= 1  # the flagged mail is still there
    done = run_intake(conf, imap_account, "poll", "--once", "--no-send")
    assert done.returncode == 0, done.stderr
    assert imap_account.uids("INBOX") == []
    store = open_store(tmp_path / "intake.db")
    rows = {r["message_key"]: r for r in store.db.query("select message_key, verdict, moved_to from messages")}
    assert rows["mid:<pnr@halmstad.example.test>"]["moved_to"] == "(deleted)"
    assert {f"mid:{i}" for i in ids} <= set(rows) and all(r["moved_to"] for r in rows.values())
