"""The whole path on the embedded default: a folder of .eml files in, the SQLite queue and a file outbox out."""

from __future__ import annotations

import email
import email.policy
import json
import os
import re
import time
from pathlib import Path

import pytest

from intake import config as config_mod
from intake import poller as poller_mod
from intake.app import make_outbox, make_poller, open_app
from intake.sources import local
from intake.sources.base import SourceUnavailable
from tests.mailmaker import make_mail

SENDER = "Eva Berg <eva.berg@halmstad.example.test>"


class Desk:
    """A configured bot on a temporary folder, with helpers to drop mail in and look at the results."""

    def __init__(self, root: Path, **sections):
        self.root = root
        self.inbox = root / "mailbox"
        self.inbox.mkdir(parents=True, exist_ok=True)
        data = {
            "store": {"path": "intake.db"},
            "mailbox": {"kind": "local", "path": "mailbox"},
            "outbox": {"kind": "file", "dir": "outbox"},
            "replies": {"from_address": "mittvaccin@region.example.test"},
        }
        for name, values in sections.items():
            data.setdefault(name, {}).update(values)
        self.config = config_mod.from_mapping(data, base_dir=root)
        self.store, self.routines = open_app(self.config)
        self._n = 0

    def drop(self, raw: bytes, age_days: float = 0) -> Path:
        self._n += 1
        path = self.inbox / f"{self._n:04d}.eml"
        path.write_bytes(raw)
        if age_days:
            then = time.time() - age_days * 86400
            os.utime(path, (then, then))
        return path

    def poll(self):
        return make_poller(self.config, self.store, self.routines).poll_once()

    def send(self):
        return make_outbox(self.config, self.store, self.routines).send_due()

    def sent_mail(self) -> list[email.message.EmailMessage]:
        folder = self.root / "outbox"
        files = sorted(folder.glob("*.eml")) if folder.exists() else []
        return [email.message_from_bytes(p.read_bytes(), policy=email.policy.default) for p in files]

    def messages(self) -> list[dict]:
        return list(self.store.db.query("select * from messages order by id"))

    def folder(self, name: str) -> list[str]:
        path = self.inbox.joinpath(*name.split("/"))
        return sorted(p.name for p in path.glob("*.eml")) if path.exists() else []

    def inbox_left(self) -> list[str]:
        return sorted(p.name for p in self.inbox.glob("*.eml"))


@pytest.fixture
def desk(tmp_path):
    return Desk(tmp_path)


def test_support_mail_becomes_a_ticket_and_gets_one_receipt(desk):
    desk.drop(make_mail(subject="MittVaccin – användarstöd", sender=SENDER))
    result = desk.poll()
    assert (result.seen, result.recorded, result.moved) == (1, 1, 1)
    tickets = desk.store.tickets()
    assert [(t["request_type"], t["queue"], t["status"]) for t in tickets] == [("anvandarstod", "support", "new")]
    assert re.fullmatch(r"MV-\d{4}-0001", tickets[0]["ref"])
    assert desk.inbox_left() == []
    assert desk.folder("Intake/Accepted") == ["0001.eml"]

    assert desk.send().sent == 1
    [reply] = desk.sent_mail()
    assert reply["To"] == "eva.berg@halmstad.example.test"
    assert tickets[0]["ref"] in reply["Subject"]
    assert reply["Auto-Submitted"] == "auto-replied"
    assert reply["X-Auto-Response-Suppress"] == "All"
    original = desk.messages()[0]["message_id"]
    assert reply["In-Reply-To"] == original
    assert original in reply["References"]
    assert tickets[0]["ref"] in reply.get_content()

    # Nothing is answered twice: polling and sending again does nothing.
    assert desk.poll().seen == 0
    assert desk.send().sent == 0
    assert len(desk.sent_mail()) == 1


def test_the_same_message_twice_is_recorded_once(desk):
    raw = make_mail(message_id="<same@halmstad.example.test>")
    desk.drop(raw)
    desk.poll()
    desk.drop(raw)  # e.g. the sender's client sent it again, or a server redelivered it
    result = desk.poll()
    assert result.already_recorded == 1 and result.recorded == 0
    assert len(desk.messages()) == 1
    assert len(desk.store.tickets()) == 1
    assert desk.inbox_left() == []


def test_mail_without_message_id_is_keyed_by_its_bytes(desk):
    raw = make_mail(message_id=None)
    desk.drop(raw)
    desk.drop(raw)
    desk.poll()
    assert len(desk.messages()) == 1
    assert desk.messages()[0]["message_key"].startswith("sha256:")


def test_auto_reply_is_ignored_moved_and_never_answered(desk):
    desk.drop(make_mail(subject="Frånvaro: MittVaccin – användarstöd", headers={"Auto-Submitted": "auto-replied"}))
    desk.poll()
    desk.send()
    [m] = desk.messages()
    assert m["verdict"] == "ignored"
    assert json.loads(m["reasons"])[0]["code"] == "mail.auto_submitted"
    assert desk.folder("Intake/Ignored") == ["0001.eml"]
    assert desk.sent_mail() == []


def test_unknown_subject_is_rejected_with_the_valid_subjects(desk):
    desk.drop(make_mail(subject="Behörighet till vaccinationssystemet"))
    desk.poll()
    desk.send()
    [m] = desk.messages()
    assert m["verdict"] == "rejected"
    assert desk.folder("Intake/Rejected") == ["0001.eml"]
    [reply] = desk.sent_mail()
    body = reply.get_body(("plain",)).get_content()
    for subject in ("MittVaccin – Behörighet", "MittVaccin – Behörighet avslut", "MittVaccin – användarstöd",
                    "MittVaccin – felsökning"):
        assert subject in body
    # The subject names a form request ("Behörighet"): the blank form comes along (issue 14).
    assert sorted(a.get_filename().rsplit(".", 1)[1] for a in reply.iter_attachments()) == ["docx", "xlsx"]
    assert desk.store.tickets() == []


def test_personal_data_mail_is_kept_as_metadata_only(desk):
    desk.drop(make_mail(subject="MittVaccin – användarstöd",
                        body="Hej!\nKan ni hjälpa 19121212-1212 att logga in?\n\nEva Berg"))
    desk.poll()
    desk.send()
    [m] = desk.messages()
    assert m["verdict"] == "rejected"
    assert "body.personal_data" in m["reasons"]
    assert m["raw"] is None
    assert desk.folder("Intake/PersonalData") == ["0001.eml"]
    dump = "\n".join(str(v) for row in desk.store.db.query("select * from events") for v in row.values())
    assert "19121212" not in dump and "1212-1212" not in dump
    [reply] = desk.sent_mail()
    assert "personnummer" in reply.get_content()
    assert "1212" not in reply.get_content()


def test_personal_data_mail_can_be_deleted_from_the_mailbox(tmp_path):
    desk = Desk(tmp_path, **{"mailbox": {"folders": {"personal_data_action": "delete"}}})
    desk.drop(make_mail(body="Gäller 19870521-2382, se bilaga."))
    desk.poll()
    assert desk.inbox_left() == [] and desk.folder("Intake/PersonalData") == []
    assert desk.messages()[0]["moved_to"] == "(deleted)"


def test_replies_per_sender_are_rate_limited(tmp_path):
    desk = Desk(tmp_path, replies={"rate_limit_per_hour": 3})
    for i in range(5):
        desk.drop(make_mail(subject=f"fel ämne {i}"))
    desk.poll()
    desk.send()
    assert len(desk.messages()) == 5  # every mail recorded
    assert len(desk.sent_mail()) == 3  # but only three answered
    suppressed = [m["reply_suppressed"] for m in desk.messages()]
    assert suppressed.count("mail.rate_limited") == 2


def test_first_import_guard_old_mail_gets_no_reply(desk):
    desk.drop(make_mail(subject="MittVaccin – användarstöd"), age_days=30)
    desk.drop(make_mail(subject="MittVaccin – felsökning"))
    desk.poll()
    desk.send()
    assert len(desk.store.tickets()) == 2  # both become tickets
    assert len(desk.sent_mail()) == 1  # only the fresh one is answered
    assert [m["reply_suppressed"] for m in desk.messages()] == ["mail.old", None]


def test_answer_to_a_receipt_joins_the_ticket(desk):
    desk.drop(make_mail(subject="MittVaccin – användarstöd"))
    desk.poll()
    desk.send()
    [receipt] = desk.sent_mail()
    [ticket] = desk.store.tickets()
    followup = make_mail(subject="SV: " + receipt["Subject"], body="Tack! Det gäller även inloggning med SITHS.",
                         headers={"In-Reply-To": receipt["Message-ID"], "References": receipt["Message-ID"]})
    desk.drop(followup)
    desk.poll()
    desk.send()
    assert len(desk.store.tickets()) == 1
    assert desk.messages()[1]["ticket_id"] == ticket["id"]
    kinds = [e["kind"] for e in desk.store.events(ticket["id"])]
    assert "followup" in kinds
    assert len(desk.sent_mail()) == 1  # a follow-up is not answered with a new receipt


def test_followup_from_a_stranger_is_new_mail(desk):
    desk.drop(make_mail(subject="MittVaccin – användarstöd"))
    desk.poll()
    [ticket] = desk.store.tickets()
    desk.drop(make_mail(subject=f"SV: MittVaccin – användarstöd [{ticket['ref']}]",
                        sender="Okänd <someone@elsewhere.example.test>"))
    desk.poll()
    assert len(desk.store.tickets()) == 2


def test_a_mail_that_breaks_the_parser_is_recorded_and_the_poll_goes_on(desk):
    parts = "".join(f"--b\r\nContent-Type: text/plain\r\n\r\npart {i}\r\n" for i in range(5000))
    bomb = (
        "From: Eva Berg <eva.berg@halmstad.example.test>\r\nTo: x@example.test\r\nSubject: MittVaccin – felsökning\r\n"
        "Message-ID: <many@parts>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
        + parts + "--b--\r\n"
    ).encode()
    desk.drop(bomb)
    desk.drop(make_mail(subject="MittVaccin – felsökning"))
    result = desk.poll()
    assert result.recorded == 2
    verdicts = [(m["verdict"], json.loads(m["reasons"])[0]["code"] if m["reasons"] != "[]" else None)
                for m in desk.messages()]
    assert verdicts == [("rejected", "mail.unparseable"), ("accepted", None)]
    assert desk.inbox_left() == []


def _bounce_for(message_id: str) -> bytes:
    """A delivery status notification as Postfix writes it, returning the headers of our failed reply."""
    return (
        "From: MAILER-DAEMON@mx.halmstad.example.test (Mail Delivery System)\r\n"
        "To: mittvaccin@region.example.test\r\nSubject: Undelivered Mail Returned to Sender\r\n"
        "Message-ID: <dsn-1@mx.halmstad.example.test>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        "--B\r\nContent-Type: text/plain\r\n\r\nThe mail system: <eva.berg@halmstad.example.test>: user unknown\r\n"
        "--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.halmstad.example.test\r\n\r\n"
        "Final-Recipient: rfc822; eva.berg@halmstad.example.test\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        "--B\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"From: mittvaccin@region.example.test\r\nMessage-ID: {message_id}\r\nSubject: SV: x\r\n"
        "--B--\r\n"
    ).encode()


def test_bounce_of_our_receipt_is_shown_on_the_ticket_and_never_answered(desk):
    desk.drop(make_mail(subject="MittVaccin – användarstöd"))
    desk.poll()
    desk.send()
    [receipt] = desk.sent_mail()
    [ticket] = desk.store.tickets()
    desk.drop(_bounce_for(receipt["Message-ID"]))
    desk.poll()
    desk.send()
    bounce = desk.messages()[1]
    assert (bounce["verdict"], json.loads(bounce["reasons"])[0]["code"]) == ("ignored", "mail.bounce")
    assert bounce["ticket_id"] == ticket["id"]
    assert "reply_bounced" in [e["kind"] for e in desk.store.events(ticket["id"])]
    assert [r["status"] for r in desk.store.db.query("select status from outbox")] == ["bounced"]
    assert len(desk.sent_mail()) == 1  # the bounce itself is never answered


def test_followup_from_a_trusted_domain_joins_the_ticket(tmp_path):
    desk = Desk(tmp_path, senders={"trusted_domains": ["halmstad.example.test"]})
    desk.drop(make_mail(subject="MittVaccin – användarstöd"))
    desk.poll()
    [ticket] = desk.store.tickets()
    desk.drop(make_mail(subject=f"SV: MittVaccin – användarstöd [{ticket['ref']}]",
                        sender="Kollega <kollega@halmstad.example.test>"))
    desk.poll()
    assert len(desk.store.tickets()) == 1
    assert desk.messages()[1]["ticket_id"] == ticket["id"]


def test_personal_data_in_a_followup_is_rejected_not_attached(desk):
    desk.drop(make_mail(subject="MittVaccin – användarstöd"))
    desk.poll()
    [ticket] = desk.store.tickets()
    desk.drop(make_mail(subject=f"SV: MittVaccin – användarstöd [{ticket['ref']}]",
                        body="Det gäller 19870521-2382.\n\nEva Berg"))
    desk.poll()
    followup = desk.messages()[1]
    assert followup["verdict"] == "rejected" and "body.personal_data" in followup["reasons"]
    assert followup["raw"] is None
    assert "followup" not in [e["kind"] for e in desk.store.events(ticket["id"])]


def test_closed_ticket_is_reopened_by_a_followup(desk):
    desk.drop(make_mail(subject="MittVaccin – användarstöd"))
    desk.poll()
    [ticket] = desk.store.tickets()
    with desk.store.transaction() as db:
        db["tickets"].update(ticket["id"], {"status": "done", "closed_at": "2026-11-24T10:00:00+00:00"})
    desk.drop(make_mail(subject=f"SV: MittVaccin – användarstöd [{ticket['ref']}]", body="Det fungerar inte igen."))
    desk.poll()
    reopened = desk.store.ticket(ticket["ref"])
    assert (reopened["status"], reopened["closed_at"]) == ("new", None)


def test_the_same_message_twice_in_one_poll_is_recorded_once_and_both_copies_leave_the_inbox(desk):
    raw = make_mail(message_id="<twice@halmstad.example.test>")
    desk.drop(raw)
    desk.drop(raw)  # both in the same batch: decided before either is recorded
    result = desk.poll()
    assert (result.recorded, result.already_recorded, result.moved) == (1, 1, 2)
    assert len(desk.messages()) == 1 and len(desk.store.tickets()) == 1
    assert desk.inbox_left() == []
    assert desk.send().sent == 1  # one receipt, not two


def test_more_mail_than_one_batch_is_recorded_moved_and_answered_once_each(desk):
    n = poller_mod.BATCH_MAILS * 2 + 7
    for i in range(n):
        desk.drop(make_mail(subject="MittVaccin – användarstöd" if i % 3 else "Fel ämne",
                            message_id=f"<many-{i}@halmstad.example.test>",
                            sender=f"Person {i} <p{i}@halmstad.example.test>"))
    result = desk.poll()
    assert (result.seen, result.recorded, result.moved) == (n, n, n)
    assert desk.inbox_left() == []
    assert len(desk.folder("Intake/Accepted")) + len(desk.folder("Intake/Rejected")) == n
    assert desk.send().sent == n
    assert len({m["message_key"] for m in desk.messages()}) == n


def test_a_different_mail_reusing_a_message_id_is_not_lost(desk):
    """Some scan-to-mail devices reuse Message-IDs: a different body is a different mail."""
    desk.drop(make_mail(subject="MittVaccin – användarstöd", body="Första frågan.", message_id="<reused@printer>"))
    desk.drop(make_mail(subject="MittVaccin – felsökning", body="En helt annan fråga.", message_id="<reused@printer>"))
    desk.poll()
    assert len(desk.messages()) == 2
    assert [t["request_type"] for t in desk.store.tickets()] == ["anvandarstod", "felsokning"]


def test_a_redelivery_with_other_transport_headers_is_still_the_same_mail(desk):
    raw = make_mail(subject="MittVaccin – användarstöd", message_id="<once@halmstad.example.test>")
    desk.drop(raw)
    desk.poll()
    desk.drop(b"Received: from mx2.example.test by mx.example.test; Tue, 24 Nov 2026 09:00:00 +0100\r\n"
              + raw.replace(b"\r\n", b"\n"))  # another route, other line endings
    result = desk.poll()
    assert (result.recorded, result.already_recorded) == (0, 1)
    assert len(desk.store.tickets()) == 1


@pytest.mark.parametrize("total", [0, 1, 7, 8, 9, 55, 56, 57, 105, 106, 107, 500, 2000, 2049])
def test_a_poll_takes_every_mail_in_batches_that_start_and_end_small(total):
    sizes = poller_mod.batch_sizes(total, 50)
    assert sum(sizes) == total and all(0 < s <= 50 for s in sizes)
    if total >= 200:
        # The workers start on a few mails, and after the last decisions few are left to record and move.
        assert sizes[:3] == [8, 16, 32] and sizes[-2:] == [16, 8] and sizes.count(50) >= (total - 80) // 50 - 1
    big = poller_mod.batch_sizes(total, 100)
    assert sum(big) == total and all(0 < s <= 100 for s in big)
    if total >= 300:
        assert big[:4] == [8, 16, 32, 64] and big[-2:] == [16, 8]


def test_moves_done_before_the_mailbox_goes_away_are_marked(tmp_path, monkeypatch):
    desk = Desk(tmp_path)
    desk.drop(make_mail(message_id="<a1@example.test>"))
    desk.drop(make_mail(subject="Hej", body="x", message_id="<a2@example.test>"))
    orig, folders = local.LocalSource.move, []

    def move(self, uid, folder):
        folders.append(folder)
        if len(set(folders)) > 1:
            raise SourceUnavailable("the mailbox went away")
        return orig(self, uid, folder)

    monkeypatch.setattr(local.LocalSource, "move", move)
    try:
        desk.poll()
    except SourceUnavailable:
        pass
    rows = desk.store.rows("select moved_to from messages order by id")
    assert rows[0]["moved_to"] == "Intake/Accepted"  # moved: marked, not left to repair
