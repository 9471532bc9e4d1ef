"""Bad input gets a clear answer and nothing is lost: each hostile or broken mail becomes a recorded decision."""

from __future__ import annotations

import json

import pytest

from intake.pipeline import decide
from tests.conftest import FIXTURES, NOW
from tests.intake.test_poller import Desk
from tests.mailmaker import make_mail

MAIL = FIXTURES / "mail"


@pytest.mark.parametrize(
    "fixture, verdict, code, answered",
    [
        ("no-message-id.eml", "rejected", "attachment.missing", True),
        ("no-subject.eml", "rejected", "subject.missing", True),
        ("no-from.eml", "rejected", "sender.missing", False),  # nobody to answer
        ("unknown-charset.eml", "rejected", "attachment.missing", True),
        ("html-only.eml", "accepted", None, True),
        ("attachment-empty.eml", "rejected", "attachment.unsupported", True),
        ("hostile-many-parts.eml", "rejected", "mail.unparseable", True),
        ("hostile-long-header.eml", "rejected", "mail.unparseable", True),
        ("hostile-deep-nesting.eml", "rejected", "mail.unparseable", True),
    ],
)
def test_each_bad_mail_gets_a_decision(routines, settings, fixture, verdict, code, answered):
    decision = decide((MAIL / fixture).read_bytes(), routines, settings=settings, now=NOW)
    assert decision.verdict == verdict
    assert (decision.codes[0] if decision.codes else None) == code
    assert (decision.reply is not None) == answered


def test_every_bad_mail_is_recorded_and_the_poll_goes_on(tmp_path):
    desk = Desk(tmp_path)
    names = sorted(p.name for p in MAIL.glob("*.eml"))
    for name in names:
        desk.drop((MAIL / name).read_bytes())
    desk.drop(make_mail(subject="MittVaccin – felsökning", message_id="<last-good@x.test>"))
    result = desk.poll()
    # Some fixtures share a Message-ID on purpose (they are variants of one mail): those are recorded once.
    assert result.seen == len(names) + 1
    assert result.recorded + result.already_recorded == result.seen
    assert result.errors == []
    assert desk.inbox_left() == []
    assert desk.store.find_message("mid:<last-good@x.test>")["verdict"] == "accepted"


def test_a_subject_with_crlf_cannot_inject_headers_into_the_reply(routines, settings):
    decision = decide((MAIL / "crlf-subject.eml").read_bytes(), routines, settings=settings, now=NOW)
    assert decision.reply is not None
    assert "\r" not in decision.reply.subject and "\n" not in decision.reply.subject
    assert "\n" not in decision.subject


def test_the_real_sender_is_answered_not_the_one_in_the_display_name(routines, settings):
    decision = decide((MAIL / "cve-2023-27043-from.eml").read_bytes(), routines, settings=settings, now=NOW)
    assert decision.reply.to == "attacker@evil.test"


def test_garbage_bytes_never_raise(routines, settings):
    for raw in (b"", b"\x00" * 100, b"\xff\xfe" * 5000, b"From: \r\n\r\n", "Subject: å\n\n".encode("latin-1")):
        decision = decide(raw, routines, settings=settings, now=NOW)
        assert decision.verdict in ("rejected", "ignored", "accepted", "held")
        json.dumps(decision.to_json())


def test_mail_over_the_size_cap_is_rejected_from_its_headers(routines):
    from intake.pipeline import Settings

    small = Settings(from_address="bot@region.example.test", max_message_bytes=10_000)
    raw = make_mail(subject="MittVaccin – felsökning", body="x" * 20_000)
    decision = decide(raw, routines, settings=small, now=NOW)
    assert decision.codes == ["mail.too_large"]
    assert decision.reply is not None and decision.reply.to == "eva.berg@halmstad.example.test"


POISON = {
    # An internationalised address sent as raw UTF-8, and an 8-bit Latin-1 one.
    "utf8-from": b"From: Eva <\xc3\xa5sa@halmstad.example.test>\r\nTo: support@example.test\r\n"
                 b"Subject: MittVaccin - anv\xc3\xa4ndarst\xc3\xb6d\r\nMessage-ID: <p1@x.test>\r\n\r\nHej!\r\n",
    "latin1-from": b"From: Eva <ev\xe4@halmstad.example.test>\r\nTo: support@example.test\r\n"
                   b"Subject: MittVaccin - anv\xc3\xa4ndarst\xc3\xb6d\r\nMessage-ID: <p2@x.test>\r\n\r\nHej!\r\n",
    # A charset that decodes to a lone surrogate, which SQLite cannot store.
    "surrogate-subject": b"From: eva@halmstad.example.test\r\nTo: support@example.test\r\n"
                         b"Subject: =?unicode-escape?Q?MittVaccin_=5Cud800?=\r\n"
                         b"Message-ID: <p3@x.test>\r\n\r\nHej!\r\n",
}


def test_mail_with_text_the_database_cannot_store_never_stops_the_poll(tmp_path):
    desk = Desk(tmp_path)
    for raw in POISON.values():
        desk.drop(raw)
    desk.drop(make_mail(subject="MittVaccin – felsökning", message_id="<after-poison@x.test>"))
    result = desk.poll()
    assert result.errors == []
    assert result.recorded == len(POISON) + 1
    assert desk.inbox_left() == []
    assert desk.store.find_message("mid:<after-poison@x.test>")["verdict"] == "accepted"
    assert desk.poll().seen == 0  # nothing left behind to trip over again


def test_unparseable_mail_keeps_no_bytes(tmp_path):
    """Its content was never scanned for personal data, so none of it is stored (the mail stays in its folder)."""
    desk = Desk(tmp_path)
    desk.drop((MAIL / "hostile-many-parts.eml").read_bytes())
    desk.poll()
    [m] = desk.messages()
    assert m["verdict"] == "rejected" and m["raw"] is None
    assert desk.folder("Intake/Rejected") == ["0001.eml"]


@pytest.mark.parametrize("references", [8_000, 40_000])  # a header block of ~110 kB (read whole), ~560 kB (not)
def test_unparseable_auto_reply_with_a_huge_header_is_never_answered(routines, settings, references):
    raw = (b"From: Autosvar <eva.berg@halmstad.example.test>\r\nTo: support@example.test\r\n"
           b"Subject: Frnvaro\r\nMessage-ID: <big@x.test>\r\nReferences: " + b" ".join(
               f"<r{i}@x.test>".encode() for i in range(references)) +
           b"\r\nAuto-Submitted: auto-replied\r\n\r\nJag \xc3\xa4r borta.\r\n")
    decision = decide(raw, routines, settings=settings, now=NOW)
    assert decision.codes[0] == "mail.unparseable"
    assert decision.reply is None


def test_personal_data_only_in_the_html_part_is_found(routines, settings):
    raw = make_mail(subject="MittVaccin – användarstöd", body="Hej!\nSe nedan.\n\nEva Berg",
                    html="<p>Hej!</p><p>Det gäller 19121212-1212.</p><p>Eva Berg</p>")
    decision = decide(raw, routines, settings=settings, now=NOW)
    assert decision.codes == ["body.personal_data"]


def test_hidden_files_in_a_local_mailbox_are_not_mail(tmp_path):
    desk = Desk(tmp_path)
    (desk.inbox / ".~lock.0001.eml").write_bytes(b"lock")
    desk.drop(make_mail(subject="MittVaccin – felsökning"))
    result = desk.poll()
    assert (result.seen, result.errors) == (1, [])
