"""End to end on a real Dovecot: APPEND, one poll, then a ticket (or a recorded rejection) and an empty inbox."""

from __future__ import annotations

import json

import pytest

from intake.sources.base import SourceError
from tests.dovecot import CAPABILITY_WITHOUT_MOVE
from tests.intake.imapdesk import in_process_poller, run_intake, write_config
from tests.mailmaker import make_mail

pytestmark = pytest.mark.imap


def test_appended_mail_becomes_one_ticket_and_leaves_the_inbox(imap_account, tmp_path):
    imap_account.append(make_mail(subject="MittVaccin – användarstöd"))
    imap_account.append(make_mail(subject="Hej, en fråga"))
    imap_account.append(make_mail(subject="Autosvar", headers={"Auto-Submitted": "auto-replied"}))
    conf = write_config(tmp_path, imap_account)

    done = run_intake(conf, imap_account, "poll", "--once")
    assert done.returncode == 0, done.stderr
    assert "3 recorded" in done.stdout

    listed = run_intake(conf, imap_account, "queue", "list", "--json")
    tickets = json.loads(listed.stdout)
    assert [(t["request_type"], t["status"]) for t in tickets] == [("anvandarstod", "new")]
    assert imap_account.uids("INBOX") == []
    assert len(imap_account.uids("Intake/Accepted")) == 1
    assert len(imap_account.uids("Intake/Rejected")) == 1
    assert len(imap_account.uids("Intake/Ignored")) == 1
    # Two replies written (receipt and rejection); none to the auto-reply.
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 2

    again = run_intake(conf, imap_account, "poll", "--once")
    assert "0 seen" in again.stdout
    assert len(json.loads(run_intake(conf, imap_account, "queue", "list", "--json").stdout)) == 1


def test_moves_work_on_a_server_without_move(dovecot_factory, tmp_path):
    server = dovecot_factory(capability=CAPABILITY_WITHOUT_MOVE)
    account = server.new_account()
    account.append(make_mail(subject="MittVaccin – felsökning"))
    conf = write_config(tmp_path, account)
    store, poller = in_process_poller(conf, account)
    result = poller.poll_once()
    assert result.moved == 1
    assert account.uids("INBOX") == []
    assert len(account.uids("Intake/Accepted")) == 1


def test_uidvalidity_change_between_polls_loses_and_doubles_nothing(imap_account, tmp_path):
    # Dovecot cannot recreate INBOX, so this mailbox polls a folder of its own.
    conf = write_config(tmp_path, imap_account, folder="Support")
    imap_account.append(make_mail(subject="MittVaccin – felsökning", message_id="<one@x.test>"), folder="Support")
    store, poller = in_process_poller(conf, imap_account)
    poller.poll_once()
    before = imap_account.uidvalidity("Support")
    imap_account.recreate_folder("Support")
    assert imap_account.uidvalidity("Support") != before
    # A new mail gets UID 1 again, and the old mail is redelivered into the new folder.
    imap_account.append(make_mail(subject="MittVaccin – användarstöd", message_id="<two@x.test>"), folder="Support")
    imap_account.append(make_mail(subject="MittVaccin – felsökning", message_id="<one@x.test>"), folder="Support")
    result = poller.poll_once()
    assert result.recorded == 1 and result.already_recorded == 1
    assert len(store.tickets()) == 2
    assert store.uidvalidity(poller.source_factory().name) == imap_account.uidvalidity("Support")
    kinds = [r["kind"] for r in store.db.query("select kind from events where ticket_id is null")]
    assert "uidvalidity_changed" in kinds


def test_server_going_away_mid_poll_then_next_poll_recovers(dovecot_factory, tmp_path):
    server = dovecot_factory()
    account = server.new_account()
    for i in range(16):
        account.append(make_mail(subject="MittVaccin – felsökning", message_id=f"<m{i}@x.test>"))
    conf = write_config(tmp_path, account)
    store, poller = in_process_poller(conf, account)

    # Kill the server once two fetch batches (of 4) are done, from inside the poll. The third was fetched
    # while the second was being recorded; fetching the fourth fails, so the third is decided but never
    # recorded, and the next poll takes it and the fourth.
    original = poller._finish
    calls = {"n": 0}

    def handle_then_die(*args):
        original(*args)
        calls["n"] += 1
        if calls["n"] == 2:
            server.kill()

    poller._finish = handle_then_die
    with pytest.raises(SourceError):
        poller.poll_once()
    recorded_first = store.db["messages"].count
    assert recorded_first == 8

    server.start()
    poller._finish = original
    poller.poll_once()
    keys = [r["message_key"] for r in store.db.query("select message_key from messages")]
    assert sorted(keys) == sorted(f"mid:<m{i}@x.test>" for i in range(16))
    assert len(store.tickets()) == 16
    assert account.uids("INBOX") == []
