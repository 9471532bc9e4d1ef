"""The outbox job sending over SMTP to a real server (aiosmtpd on loopback, tests/smtpserver.py).

Replies are queued by the real poller from a local folder, then sent by :class:`intake.outbox.Outbox`
with :func:`intake.outbox.smtp_transport`. Backoff is stepped with an injected clock, never slept.
"""

from __future__ import annotations

import email
import email.policy
import io
import json
import zipfile
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from intake.app import blank_form_attachments, make_poller
from intake.outbox import Outbox, smtp_transport
from tests.intake.test_poller import Desk
from tests.mailmaker import make_mail

FROM = "mittvaccin@region.example.test"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


class StepClock:
    """A clock the test moves by hand: starts at the real now, so the poller's mail is not 'old'."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)

    def __call__(self) -> datetime:
        return self.now

    def step(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class SmtpBot:
    """A bot on a local folder whose outbox sends over SMTP to ``smtp_server``, on a stepped clock."""

    def __init__(self, root: Path, smtp_server, *, max_attempts: int = 10, **sections):
        base = {
            "outbox": {"kind": "smtp", "max_attempts": max_attempts},
            "smtp": {"host": smtp_server.host, "port": smtp_server.port, "tls": "none", "timeout": 5},
            "replies": {"from_address": FROM},
        }
        for name, values in sections.items():
            base.setdefault(name, {}).update(values)
        self.desk = Desk(root, **base)
        self.config, self.store, self.routines = self.desk.config, self.desk.store, self.desk.routines
        assert self.config["outbox"]["kind"] == "smtp"
        self.server = smtp_server
        self.clock = StepClock()
        self.poller = make_poller(self.config, self.store, self.routines)
        self.poller.clock = self.clock
        self.outbox = Outbox(
            self.store, smtp_transport(self.config), from_address=FROM,
            max_attempts=self.config["outbox"]["max_attempts"],
            blank_forms=blank_form_attachments(self.routines, self.store), clock=self.clock,
        )

    def drop(self, raw: bytes) -> None:
        self.desk.drop(raw)

    def poll(self):
        return self.poller.poll_once()

    def send(self):
        return self.outbox.send_due()

    def outbox_rows(self) -> list[dict]:
        return list(self.store.db.query("select * from outbox order by id"))

    def received(self) -> list[email.message.EmailMessage]:
        return [email.message_from_bytes(m.data, policy=email.policy.default) for m in self.server.messages]

    def per_recipient(self) -> Counter[str]:
        return Counter(r for m in self.server.messages for r in m.rcpt_tos)


@pytest.fixture
def bot(tmp_path, smtp_server):
    return SmtpBot(tmp_path, smtp_server)


def test_queued_reply_arrives_once_threaded_with_null_sender(bot):
    incoming_id = "<fraga-1@halmstad.example.test>"
    bot.drop(make_mail(subject="MittVaccin – användarstöd", message_id=incoming_id))
    bot.poll()
    [row] = bot.outbox_rows()

    assert bot.send().sent == 1
    [received] = bot.server.messages
    assert received.envelope_from == ""  # MAIL FROM:<>, so a bounce of the reply never comes back (RFC 3834)
    assert received.rcpt_tos == ["eva.berg@halmstad.example.test"]
    [reply] = bot.received()
    assert reply["Auto-Submitted"] == "auto-replied"
    assert reply["X-Auto-Response-Suppress"] == "All"
    assert reply["In-Reply-To"] == incoming_id
    assert incoming_id in reply["References"].split()
    # Remembered, so answers to it join the ticket. (The header may be folded: compare the id itself.)
    assert reply["Message-ID"].strip() == row["rfc_message_id"]
    assert reply["From"] == FROM
    [ticket] = bot.store.tickets()
    assert ticket["ref"] in reply["Subject"] and ticket["ref"] in reply.get_content()

    # Sending again, now or much later, sends nothing more.
    bot.clock.step(86400)
    assert bot.send().sent == 0
    assert len(bot.server.messages) == 1
    [row] = bot.outbox_rows()
    assert row["status"] == "sent"
    assert "reply_sent" in [e["kind"] for e in bot.store.events(ticket["id"])]


@pytest.mark.parametrize("at", ["RCPT", "DATA"])
def test_451_is_retried_with_growing_backoff_then_delivered_once(bot, at):
    bot.drop(make_mail(subject="MittVaccin – felsökning"))
    bot.poll()
    bot.server.refuse_next(451, at=at, count=3)

    waits = []
    for _ in range(3):
        before = bot.clock()
        result = bot.send()
        assert (result.sent, result.retried, result.failed) == (0, 1, 0)
        [row] = bot.outbox_rows()
        due = datetime.fromisoformat(row["next_attempt_at"])
        waits.append((due - before).total_seconds())
        # Not tried again before it is due: the server sees no attempt (its refusal stays unused).
        bot.clock.step((due - before).total_seconds() - 1)
        left = len(bot.server.handler.refusals)
        assert bot.send().retried == 0
        assert len(bot.server.handler.refusals) == left
        bot.clock.step(1)
    assert waits[0] > 0 and waits == sorted(waits) and len(set(waits)) == 3, waits
    assert bot.server.messages == []

    assert bot.send().sent == 1
    assert len(bot.server.messages) == 1
    for _ in range(5):
        bot.clock.step(3600)
        bot.send()
    assert len(bot.server.messages) == 1
    [row] = bot.outbox_rows()
    assert (row["status"], row["attempts"]) == ("sent", 4)


@pytest.mark.parametrize(("code", "at"), [(550, "RCPT"), (554, "DATA")])
def test_5xx_marks_the_reply_failed_on_the_ticket_and_never_retries(bot, code, at):
    bot.drop(make_mail(subject="MittVaccin – användarstöd"))
    bot.poll()
    bot.server.refuse_next(code, at=at)

    result = bot.send()
    assert (result.sent, result.retried, result.failed) == (0, 0, 1)
    [row] = bot.outbox_rows()
    assert row["status"] == "failed" and str(code) in row["last_error"]
    [ticket] = bot.store.tickets()
    failed = [e for e in bot.store.events(ticket["id"]) if e["kind"] == "reply_failed"]
    assert len(failed) == 1
    assert str(code) in json.loads(failed[0]["data"])["error"]

    for _ in range(5):  # days later, with the server willing: still never sent
        bot.clock.step(86400)
        assert bot.send().sent == 0
    assert bot.server.messages == []
    assert bot.outbox_rows()[0]["status"] == "failed"


def test_smtp_down_for_an_hour_loses_nothing(bot):
    senders = [f"enhet{i}@kungsbacka.example.test" for i in range(4)]
    for i, sender in enumerate(senders):
        subject = "MittVaccin – användarstöd" if i % 2 else "Fel ämne"
        bot.drop(make_mail(subject=subject, sender=sender))
    bot.poll()
    assert len(bot.outbox_rows()) == 4

    bot.server.stop()
    start = bot.clock()
    while bot.clock() - start <= timedelta(hours=1, minutes=5):
        result = bot.send()
        assert (result.sent, result.failed) == (0, 0)
        bot.clock.step(7 * 60)
    rows = bot.outbox_rows()
    assert {r["status"] for r in rows} == {"pending"}
    assert all(r["attempts"] >= 4 for r in rows)

    bot.server.start()
    for _ in range(6):  # over the longest backoff, a few sends
        bot.send()
        bot.clock.step(30 * 60)
    assert bot.per_recipient() == Counter(senders)
    assert {r["status"] for r in bot.outbox_rows()} == {"sent"}
    # Each delivered reply is the one that was queued.
    assert sorted(m["Message-ID"].strip() for m in bot.received()) == sorted(r["rfc_message_id"] for r in rows)


def test_max_attempts_gives_up_with_status_failed(tmp_path, smtp_server):
    bot = SmtpBot(tmp_path, smtp_server, max_attempts=3)
    bot.drop(make_mail(subject="MittVaccin – användarstöd"))
    bot.poll()
    smtp_server.refuse_next(451, count=10)

    outcomes = []
    for _ in range(6):
        r = bot.send()
        outcomes.append((r.sent, r.retried, r.failed))
        bot.clock.step(3600)
    assert outcomes.count((0, 1, 0)) == 2 and outcomes.count((0, 0, 1)) == 1
    [row] = bot.outbox_rows()
    assert (row["status"], row["attempts"]) == ("failed", 3)
    [ticket] = bot.store.tickets()
    assert [e["kind"] for e in bot.store.events(ticket["id"])].count("reply_failed") == 1
    assert smtp_server.messages == []
    smtp_server.handler.refusals.clear()
    bot.clock.step(86400)
    assert bot.send().sent == 0 and smtp_server.messages == []


def _attachments(msg: email.message.EmailMessage) -> dict[str, tuple[str, bytes]]:
    return {p.get_filename(): (p.get_content_type(), p.get_content()) for p in msg.iter_attachments()}


def test_form_rejection_carries_the_blank_form_as_xlsx_and_docx(bot):
    bot.drop(make_mail(subject="MittVaccin – Behörighet", sender="anna@varberg.example.test"))
    bot.drop(make_mail(subject="Hej, en fråga", sender="bo@laholm.example.test"))  # not about the form
    bot.poll()
    assert bot.send().sent == 2
    by_to = {m["To"]: m for m in bot.received()}

    form_reply = by_to["anna@varberg.example.test"]
    files = _attachments(form_reply)
    assert sorted(Path(name).suffix for name in files) == [".docx", ".xlsx"]
    for name, (ctype, data) in files.items():
        assert ctype == (XLSX if name.endswith(".xlsx") else DOCX)
        with zipfile.ZipFile(io.BytesIO(data)) as z:  # a real Office file, not an empty part
            assert z.testzip() is None
    import docx
    import openpyxl

    [xlsx] = [d for n, (_, d) in files.items() if n.endswith(".xlsx")]
    [docx_bytes] = [d for n, (_, d) in files.items() if n.endswith(".docx")]
    cells = " ".join(str(c.value) for ws in openpyxl.load_workbook(io.BytesIO(xlsx)) for row in ws.iter_rows()
                     for c in row if c.value)
    assert "Personnummer eller HSA-id" in cells
    text = "\n".join(p.text for p in docx.Document(io.BytesIO(docx_bytes)).paragraphs)
    text += "\n".join(c.text for t in docx.Document(io.BytesIO(docx_bytes)).tables for r in t.rows for c in r.cells)
    assert "Personnummer eller HSA-id" in text
    assert "bifogad" in form_reply.get_body(("plain",)).get_content()

    assert _attachments(by_to["bo@laholm.example.test"]) == {}


def test_blank_forms_are_built_once_and_reused_for_every_rejection(bot):
    """The blank .xlsx and .docx are generated for the first rejection that attaches them; later rejections in
    the same process carry the very same bytes without building them again."""
    from intake import blankforms

    blankforms.clear_blank_form_cache()
    builds = blankforms.builds
    for i in range(3):
        bot.drop(make_mail(subject="MittVaccin – Behörighet", sender=f"P {i} <p{i}@varberg.example.test>"))
    bot.poll()
    assert bot.send().sent == 3
    sent = [_attachments(m) for m in bot.received()]
    assert len(sent) == 3 and sorted(Path(n).suffix for n in sent[0]) == [".docx", ".xlsx"]
    assert sent[0] == sent[1] == sent[2]
    assert blankforms.builds == builds + 1


def test_misconfigured_sending_waits_for_the_fix_without_giving_up_or_hammering(tmp_path, smtp_server):
    """STARTTLS configured against a server that offers none: an operator's mistake, not the replies'. No reply
    uses up its attempts, each run tries only one (a wrong password tried once per reply can lock the account),
    and once the setup is fixed every reply goes out exactly once."""
    broken = SmtpBot(tmp_path, smtp_server, max_attempts=2, smtp={"tls": "starttls"})
    for i in range(3):
        broken.drop(make_mail(subject="MittVaccin – användarstöd", sender=f"P {i} <p{i}@halmstad.example.test>"))
    broken.poll()
    for _ in range(5):
        result = broken.send()
        assert (result.sent, result.failed, result.retried) == (0, 0, 1)
        broken.clock.step(3600)
    rows = broken.outbox_rows()
    assert {r["status"] for r in rows} == {"pending"}
    assert sum(r["attempts"] for r in rows) == 5
    assert "STARTTLS" in rows[0]["last_error"]
    assert smtp_server.messages == []

    fixed = SmtpBot(tmp_path / "fixed", smtp_server)  # same server, tls = "none" on loopback
    fixed.outbox.store = broken.store
    fixed.outbox.clock = broken.clock
    assert fixed.send().sent == 3
    assert sorted(broken.per_recipient().values()) == [1, 1, 1]
