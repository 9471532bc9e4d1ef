"""No input stops a poll, no busy store turns into a decision, no mail is rewritten, no failing mail loops forever."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from intake.poller import StoreFailure
from tests.intake.test_poller import Desk
from tests.mailmaker import make_mail

MAIL = Path(__file__).resolve().parents[2] / "fixtures" / "mail"


class MaildirDesk(Desk):
    """The same bot on a Maildir: mail is delivered into new/ under Maildir unique names."""

    def __init__(self, root: Path, **sections):
        super().__init__(root, **sections)
        for sub in ("cur", "new", "tmp"):
            (self.inbox / sub).mkdir(exist_ok=True)

    def drop(self, raw: bytes, age_days: float = 0) -> Path:
        self._n += 1
        path = self.inbox / "new" / f"{1_700_000_000 + self._n}.M{self._n}P1.host"
        path.write_bytes(raw)
        return path

    def folder(self, name: str) -> list[Path]:
        sub = self.inbox / ("." + name.replace("/", "."))
        return sorted(p for leaf in ("new", "cur") if (sub / leaf).exists() for p in (sub / leaf).iterdir())

    def inbox_left(self) -> list[str]:
        return sorted(p.name for leaf in ("new", "cur") for p in (self.inbox / leaf).iterdir())


def test_a_deeply_nested_mail_in_a_maildir_is_recorded_and_the_poll_goes_on(tmp_path):
    desk = MaildirDesk(tmp_path)
    desk.drop((MAIL / "hostile-deep-nesting.eml").read_bytes())
    desk.drop(make_mail(subject="MittVaccin – felsökning", message_id="<after-nesting@x.test>"))
    result = desk.poll()
    assert (result.seen, result.recorded, result.errors) == (2, 2, [])
    assert desk.store.find_message("mid:<after-nesting@x.test>")["verdict"] == "accepted"
    codes = [json.loads(m["reasons"])[0]["code"] for m in desk.messages() if m["verdict"] == "rejected"]
    assert codes == ["mail.unparseable"]
    assert desk.inbox_left() == []
    assert desk.poll().seen == 0


ODD_BYTES = {
    "no-trailing-newline": b"From: eva.berg@halmstad.example.test\nTo: support@example.test\n"
                           b"Subject: MittVaccin - felsokning\nMessage-ID: <nt@x.test>\n\nHej!",
    "crlf": b"From: eva.berg@halmstad.example.test\r\nTo: support@example.test\r\n"
            b"Subject: MittVaccin - felsokning\r\nMessage-ID: <crlf@x.test>\r\n\r\nHej!\r\n",
    "8bit-header": b"From: =?utf-8?q?Eva?= <eva.berg@halmstad.example.test>\nTo: support@example.test\n"
                   b"Subject: MittVaccin \xe2\x80\x93 fels\xc3\xb6kning\nX-Note: \xe5\xe4\xf6\n"
                   b"Message-ID: <8bit@x.test>\n\nHej!\n",
    "from-line-in-body": b"From: eva.berg@halmstad.example.test\nSubject: Fel\nMessage-ID: <fl@x.test>\n\n"
                         b"From here on\n>From there\n",
}


@pytest.mark.parametrize("kind", ["maildir", "eml"])
def test_moved_mail_is_byte_identical(tmp_path, kind):
    desk = MaildirDesk(tmp_path) if kind == "maildir" else Desk(tmp_path)
    for raw in ODD_BYTES.values():
        desk.drop(raw)
    result = desk.poll()
    assert (result.recorded, result.moved, result.errors) == (4, 4, [])
    assert desk.inbox_left() == []
    kept = []
    for folder in ("Intake/Accepted", "Intake/Rejected"):
        if kind == "maildir":
            kept += [p.read_bytes() for p in desk.folder(folder)]
        else:
            kept += [(desk.inbox / folder / name).read_bytes() for name in desk.folder(folder)]
    assert sorted(kept) == sorted(ODD_BYTES.values())


def test_maildir_mail_keeps_its_place_and_flags_when_moved(tmp_path):
    desk = MaildirDesk(tmp_path)
    seen = desk.inbox / "cur" / "1700000099.M9P1.host:2,S"
    seen.write_bytes(make_mail(subject="MittVaccin – felsökning"))
    desk.poll()
    assert [p.relative_to(desk.inbox).as_posix() for p in desk.folder("Intake/Accepted")] == [
        ".Intake.Accepted/cur/1700000099.M9P1.host:2,S"]


def block_folder(desk: Desk, folder: str = "Intake") -> None:
    """Make the target folder impossible to create: a file stands where it would be."""
    (desk.inbox / folder).write_bytes(b"")


def parked_events(desk: Desk) -> list[dict]:
    return [json.loads(e["data"]) for e in desk.store.db.query("select data from events where kind = 'mail_parked'")]


def test_a_mail_that_cannot_be_moved_is_parked_once_and_then_left_alone(tmp_path, caplog):
    desk = Desk(tmp_path)
    block_folder(desk)
    desk.drop(make_mail(subject="MittVaccin – felsökning", message_id="<stuck@x.test>"))
    results = [desk.poll() for _ in range(3)]
    assert [r.parked for r in results] == [0, 0, 1]
    assert all(r.errors for r in results)
    assert [r.decided for r in results] == [1, 0, 0]  # recorded once; later polls only try to move it
    caplog.clear()
    later = desk.poll()
    assert (later.seen, later.left_parked, later.errors, later.decided) == (1, 1, [], 0)
    assert "stuck" not in caplog.text and "uid=" not in caplog.text  # parked: no longer logged on every poll
    [event] = parked_events(desk)
    assert (event["reason"], event["attempts"]) == ("mail.move_failed", 3)
    [row] = desk.store.parked()
    assert (row["message_id"], row["reason"], row["uid"]) == ("<stuck@x.test>", "mail.move_failed", "0001.eml")
    assert desk.inbox_left() == ["0001.eml"]  # left where it is
    assert len(desk.messages()) == 1 and desk.store.db["tickets"].count == 1


def test_parked_list_command_shows_parked_mail(tmp_path):
    desk = Desk(tmp_path, poll={"max_attempts": 1})
    block_folder(desk)
    desk.drop(make_mail(subject="MittVaccin – felsökning", message_id="<stuck@x.test>"))
    assert desk.poll().parked == 1
    conf = tmp_path / "intake.toml"
    conf.write_text('[store]\npath = "intake.db"\n[mailbox]\nkind = "local"\npath = "mailbox"\n')
    out = subprocess.run([sys.executable, "-m", "intake.cli", "-c", str(conf), "parked", "list", "--json"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    [row] = json.loads(out.stdout)
    assert (row["reason"], row["attempts"], row["message_id"]) == ("mail.move_failed", 1, "<stuck@x.test>")
    text = subprocess.run([sys.executable, "-m", "intake.cli", "-c", str(conf), "parked", "list"],
                          capture_output=True, text=True, timeout=60)
    assert "mail.move_failed" in text.stdout and "0001.eml" in text.stdout


def test_a_re_seen_mail_is_not_decided_again(desk_with_mail):
    desk, path = desk_with_mail
    first = desk.poll()
    assert (first.decided, first.recorded) == (1, 1)
    # The same mail delivered again (moved back by a person, or a second copy).
    moved = desk.inbox / "Intake" / "Accepted" / path.name
    (desk.inbox / "again.eml").write_bytes(moved.read_bytes())
    again = desk.poll()
    assert (again.seen, again.decided, again.already_recorded, again.recorded) == (1, 0, 1, 0)


@pytest.fixture
def desk_with_mail(tmp_path):
    desk = Desk(tmp_path)
    return desk, desk.drop(make_mail(subject="MittVaccin – felsökning", message_id="<once@x.test>"))


def test_a_mail_that_keeps_failing_is_parked_after_max_attempts(tmp_path, monkeypatch):
    desk = Desk(tmp_path, poll={"max_attempts": 2})
    desk.drop(make_mail(subject="MittVaccin – felsökning", message_id="<bug@x.test>"))
    desk.drop(make_mail(subject="MittVaccin – felsökning", message_id="<fine@x.test>"))
    from intake.poller import Poller

    real = Poller.decide

    def broken_for_one(self, fetched, **kw):  # stands in for a bug in deciding that only this mail triggers
        if b"<bug@x.test>" in (fetched.raw or b""):
            raise RuntimeError("a bug")
        return real(self, fetched, **kw)

    monkeypatch.setattr(Poller, "decide", broken_for_one)
    first, second, third = desk.poll(), desk.poll(), desk.poll()
    assert (first.recorded, first.parked, len(first.errors)) == (1, 0, 1)
    assert (second.parked, len(second.errors)) == (1, 1)
    assert (third.left_parked, third.errors, third.decided) == (1, [], 0)
    [event] = parked_events(desk)
    assert event["reason"] == "mail.handling_failed"
    [row] = desk.store.parked()
    assert row["message_pk"] is None and row["detail"].startswith("RuntimeError at ")
    assert desk.store.find_message("mid:<bug@x.test>") is None


def test_a_mail_that_fails_once_then_goes_through_leaves_no_count(tmp_path, monkeypatch):
    desk = Desk(tmp_path)
    desk.drop(make_mail(subject="MittVaccin – felsökning", message_id="<flaky@x.test>"))
    from intake.poller import Poller

    real, calls = Poller.decide, {"n": 0}

    def flaky(self, fetched, **kw):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("once")
        return real(self, fetched, **kw)

    monkeypatch.setattr(Poller, "decide", flaky)
    assert desk.poll().errors and desk.poll().recorded == 1
    assert desk.store.db["parked"].count == 0


# -- a busy store is a failed poll, never a decision --------------------------------------------------


def hold_write_lock(db_path: Path) -> sqlite3.Connection:
    other = sqlite3.connect(str(db_path), isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    return other


def test_a_locked_store_fails_the_poll_and_the_next_poll_records_the_mail(tmp_path):
    desk = Desk(tmp_path, store={"busy_timeout_seconds": 0.2})
    desk.drop(make_mail(subject="MittVaccin – användarstöd", message_id="<busy@x.test>"))
    other = hold_write_lock(tmp_path / "intake.db")
    try:
        with pytest.raises(StoreFailure, match="locked"):
            desk.poll()
    finally:
        other.rollback()
        other.close()
    assert desk.inbox_left() == ["0001.eml"]
    assert desk.messages() == []
    result = desk.poll()
    assert (result.recorded, result.errors) == (1, [])
    [m] = desk.messages()
    assert m["verdict"] == "accepted" and m["ticket_id"] is not None
    assert desk.store.db["outbox"].count == 1


def test_poll_once_exits_non_zero_while_the_store_is_locked(tmp_path):
    conf = tmp_path / "intake.toml"
    conf.write_text('[store]\npath = "intake.db"\nbusy_timeout_seconds = 0.2\n'
                    '[mailbox]\nkind = "local"\npath = "mailbox"\n[outbox]\nkind = "file"\ndir = "outbox"\n')
    (tmp_path / "mailbox").mkdir()
    (tmp_path / "mailbox" / "a.eml").write_bytes(make_mail(subject="MittVaccin – användarstöd"))
    cmd = [sys.executable, "-m", "intake.cli", "-c", str(conf), "poll", "--once"]
    subprocess.run([sys.executable, "-m", "intake.cli", "-c", str(conf), "queue", "list"], check=True,
                   capture_output=True, timeout=60)  # creates the database
    other = hold_write_lock(tmp_path / "intake.db")
    try:
        busy = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    finally:
        other.rollback()
        other.close()
    assert busy.returncode != 0
    assert "store unavailable" in busy.stderr and "Traceback" not in busy.stderr
    assert (tmp_path / "mailbox" / "a.eml").exists()
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "1 recorded" in done.stdout and "1 accepted" in done.stdout


# -- no personal value in any log --------------------------------------------------------------------

BROKEN_SUBJECT = (b"From: eva.berg@halmstad.example.test\r\nTo: support@example.test\r\n"
                  b"Subject: =?utf-8?b?RXZh=IEJlcmc?= Signe Tolvansson 19121212-1212\r\n"
                  b"Message-ID: <broken-subject@x.test>\r\n\r\nHej!\r\n")
SECRETS = ("Tolvansson", "19121212-1212", "191212121212")


def test_a_broken_encoded_word_puts_no_personal_value_in_the_log(tmp_path, caplog, capfd):
    import logging

    caplog.set_level(logging.DEBUG)
    desk = Desk(tmp_path)
    desk.drop(BROKEN_SUBJECT)
    assert desk.poll().recorded == 1
    out, err = capfd.readouterr()
    for secret in SECRETS:
        assert secret not in caplog.text and secret not in err and secret not in out
    assert "<broken-subject@x.test>" in caplog.text  # the log still names the mail


def test_poll_once_stderr_holds_no_personal_value(tmp_path):
    conf = tmp_path / "intake.toml"
    conf.write_text('[store]\npath = "intake.db"\n[mailbox]\nkind = "local"\npath = "mailbox"\n'
                    '[outbox]\nkind = "file"\ndir = "outbox"\n[logging]\nlevel = "DEBUG"\n')
    (tmp_path / "mailbox").mkdir()
    (tmp_path / "mailbox" / "a.eml").write_bytes(BROKEN_SUBJECT)
    done = subprocess.run([sys.executable, "-m", "intake.cli", "-c", str(conf), "poll", "--once"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "broken-subject" in done.stderr  # logging is on, and names the mail
    for secret in SECRETS:
        assert secret not in done.stderr and secret not in done.stdout


def test_an_unknown_library_logs_without_its_text(capfd):
    import logging

    from intake.logs import setup_logging

    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        setup_logging("DEBUG")
        logging.getLogger("somelib").warning("subject was %s", "Signe Tolvansson")
        logging.getLogger("intake.test").info("message-id=%s", "<x@y>")
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
    err = capfd.readouterr().err
    assert "Tolvansson" not in err and "somelib" in err and "message-id=<x@y>" in err


def test_no_transaction_is_open_while_a_mail_is_decided(tmp_path, monkeypatch):
    """Deciding (form sandbox included) may take long: another writer must never wait for it."""
    from intake.poller import Poller

    desk = Desk(tmp_path, store={"busy_timeout_seconds": 0.2})
    desk.drop(make_mail(subject="MittVaccin – användarstöd", message_id="<one@x.test>"))
    desk.drop(make_mail(subject="MittVaccin – felsökning", message_id="<two@x.test>"))
    real, seen = Poller.decide, []

    def decide_and_try_to_write(self, fetched, **kw):
        seen.append(self.store.db.conn.in_transaction)
        other = hold_write_lock(tmp_path / "intake.db")  # fails ("locked") if the poller held the write lock
        other.rollback()
        other.close()
        return real(self, fetched, **kw)

    monkeypatch.setattr(Poller, "decide", decide_and_try_to_write)
    assert desk.poll().recorded == 2
    assert seen == [False, False]


# -- after the review of the batched poll --------------------------------------------------------------


def test_no_transaction_is_left_open_by_a_poll_that_saw_a_copy_of_a_moved_mail(tmp_path):
    """A copy of a mail recorded and moved before writes a ``duplicate_seen`` event on its own; that write
    must be committed at once, or every later record of the poll would sit in an uncommitted transaction."""
    desk = Desk(tmp_path)
    first = make_mail(subject="MittVaccin – användarstöd", message_id="<first@halmstad.example.test>")
    desk.drop(first)
    desk.poll()
    desk.drop(first)  # the same mail again (a re-delivery) ...
    desk.drop(make_mail(subject="MittVaccin – felsökning", message_id="<second@halmstad.example.test>"))
    result = desk.poll()  # ... beside a new one
    assert (result.recorded, result.already_recorded) == (1, 1)
    assert not desk.store.db.conn.in_transaction
    other = sqlite3.connect(tmp_path / "intake.db", timeout=0.2, isolation_level=None)
    other.execute("begin immediate")  # "database is locked" if the poller still held a write transaction
    keys = {r[0] for r in other.execute("select message_key from messages")}
    assert keys == {"mid:<first@halmstad.example.test>", "mid:<second@halmstad.example.test>"}
    assert other.execute("select count(*) from events where kind = 'duplicate_seen'").fetchone()[0] == 1
    other.execute("rollback")


def test_a_move_that_breaks_unexpectedly_counts_against_that_mail_only(tmp_path, monkeypatch):
    from intake.sources.local import LocalSource

    desk = Desk(tmp_path, poll={"max_attempts": 2})
    for i in range(3):
        desk.drop(make_mail(subject="MittVaccin – användarstöd", message_id=f"<mv-{i}@halmstad.example.test>",
                            sender=f"Person {i} <p{i}@halmstad.example.test>"))
    real = LocalSource.move

    def broken_for_one(self, uid, folder):
        if str(uid) == "0002.eml":
            raise RuntimeError("a bug in moving")  # not a SourceError: nothing the source foresaw
        return real(self, uid, folder)

    monkeypatch.setattr(LocalSource, "move", broken_for_one)
    first = desk.poll()
    assert (first.recorded, first.moved, len(first.errors)) == (3, 2, 1)
    assert desk.inbox_left() == ["0002.eml"]
    second = desk.poll()  # recorded already: only moved again, and parked at the second failure
    assert (second.already_recorded, second.parked) == (1, 1)
    assert desk.store.parked()[0]["reason"] == "mail.move_failed"


def test_poll_once_records_and_moves_mail_even_when_sending_is_not_configured(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from intake.cli import main

    monkeypatch.delenv("INTAKE_SMTP_PASSWORD", raising=False)
    conf = tmp_path / "intake.toml"
    conf.write_text('[store]\npath = "intake.db"\n[mailbox]\nkind = "local"\npath = "mailbox"\n'
                    '[outbox]\nkind = "smtp"\n[smtp]\nhost = "127.0.0.1"\nport = 2525\ntls = "none"\n'
                    'username = "bot"\nallow_plaintext = true\n'
                    '[replies]\nfrom_address = "mittvaccin@region.example.test"\n')
    (tmp_path / "mailbox").mkdir()
    for i in range(5):  # a batch big enough for the deciding workers
        (tmp_path / "mailbox" / f"{i}.eml").write_bytes(make_mail(
            subject="MittVaccin – användarstöd", message_id=f"<nosmtp-{i}@halmstad.example.test>"))
    done = CliRunner().invoke(main, ["-c", str(conf), "poll", "--once"])
    assert done.exit_code != 0 and "smtp.password" in done.output  # the operator is told what to fix ...
    assert list((tmp_path / "mailbox").glob("*.eml")) == []  # ... and the mail was still recorded and moved
    from intake.store import open_store

    assert open_store(tmp_path / "intake.db").db["messages"].count == 5
