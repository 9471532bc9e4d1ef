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
