"""decide() follows each routine's chain; the default routine answers mail that fits none (real mail bytes)."""

from __future__ import annotations

from pathlib import Path

import pytest

from intake.pipeline import Settings, decide
from intake.recorder import Recorder
from intake.sources.base import FetchedMail
from rules.packs import load_packs
from tests.conftest import NOW
from tests.mailmaker import make_mail

PACKS = Path(__file__).resolve().parent.parent / "packs"
PNR_BODY = "Hej!\nAnvändaren 19121212-1212 kommer inte in.\nEva"  # scores 0.95: clear by default
UNSURE_BODY = "Hej!\nOrder 20000229-2381 gäller inloggningen.\nEva"  # scores 0.6: uncertain


@pytest.fixture(scope="module")
def both():
    return load_packs(["mittvaccin", "chaintest"], [PACKS])


def judge(raw, routines, default="mittvaccin", **settings):
    return decide(raw, routines, default=default, now=NOW, received=NOW,
                  settings=Settings(from_address="support@region.example.test", **settings))


# -- a pack's own chain ------------------------------------------------------------------------------


def test_chaintest_drops_the_global_sender_domain_rule(both):
    outside = {"allowed_domains": frozenset({"halmstad.example.test"})}
    mv = judge(make_mail(sender="Eva Berg <eva@annan.example.test>"), both, **outside)
    assert (mv.verdict, mv.codes) == ("rejected", ["sender.not_allowed"])
    kt = judge(make_mail("Kedjetest – fråga", sender="Eva Berg <eva@vard.example.test>"), both, **outside)
    assert (kt.verdict, kt.routine, kt.request_type, kt.queue) == ("accepted", "chaintest", "fraga", "fragor")
    assert kt.reply.kind == "ack" and "Kedjetestsupporten" in kt.reply.body


def test_chaintest_holds_mail_from_outside_its_own_domains(both):
    d = judge(make_mail("Kedjetest – felanmälan", sender="Eva Berg <eva@annan.example.test>"), both)
    assert (d.verdict, d.codes, d.reply) == ("held", ["sender.not_allowed"], None)
    assert d.trail[-1] == ("sender_domain", "hold")


def test_chaintest_holds_a_likely_personnummer_that_mittvaccin_rejects(both):
    mv = judge(make_mail("MittVaccin – felsökning", PNR_BODY), both)
    assert (mv.verdict, mv.codes, mv.personal_data) == ("rejected", ["body.personal_data"], True)
    kt = judge(make_mail("Kedjetest – fråga", PNR_BODY, sender="Eva <eva@vard.example.test>"), both)
    assert (kt.verdict, kt.codes, kt.personal_data) == ("held", ["body.possible_personal_data"], False)


def test_chaintest_rewords_the_subject_reason(both):
    d = judge(make_mail("Hej"), both, default="chaintest")
    assert d.codes == ["subject.unknown"]
    assert d.reasons[0].message == "Ämnesraden passar inte Kedjetest. Använd en av ämnesraderna nedan."


# -- no hidden default routine -----------------------------------------------------------------------


@pytest.mark.parametrize(("default", "desk"), [("mittvaccin", "Läkemedelssupporten"),
                                               ("chaintest", "Kedjetestsupporten")])
def test_unknown_subject_is_answered_by_the_default_listing_every_routine(both, default, desk):
    d = judge(make_mail("Fråga om inloggning"), both, default=default)
    assert (d.verdict, d.routine, d.reply_routine) == ("rejected", None, default)
    body = d.reply.body
    assert desk in body and desk in d.reply.subject
    for routine in both:
        assert routine.name in body
        for rt in routine.request_types:
            assert rt.subject in body


def test_several_routines_need_a_named_default(both):
    with pytest.raises(ValueError, match="mailbox.default_routine"):
        decide(make_mail(), both, settings=Settings())
    d = decide(make_mail("Hej"), both, settings=Settings(default_routine="chaintest"), now=NOW)
    assert d.reply_routine == "chaintest"


def test_one_routine_is_its_own_default():
    [mv] = load_packs(["mittvaccin"])
    d = decide(make_mail("Hej"), [mv], settings=Settings(), now=NOW)
    assert d.reply_routine == "mittvaccin" and "Kedjetest" not in d.reply.body


def test_unreadable_mail_is_answered_by_the_default(both):
    d = decide(b"From: eva@vard.example.test\r\n", both, default="chaintest",
               settings=Settings(max_message_bytes=10), size=50, now=NOW)
    assert d.codes == ["mail.too_large"] and d.reply_routine == "chaintest"
    assert "Kedjetestsupporten" in d.reply.body and "MittVaccin – Behörighet" in d.reply.body


# -- issue 10 item 5: an uncertain finding beside another rejection --------------------------------------


@pytest.mark.parametrize(("subject", "code"), [("Fråga om inloggning", "subject.unknown"),
                                               ("MittVaccin – Behörighet", "attachment.missing")])
def test_uncertain_finding_beside_a_rejection_keeps_no_raw_text(tmp_path, fresh_store, subject, code):
    routines = load_packs(["mittvaccin"])
    raw = make_mail(subject, UNSURE_BODY, message_id=f"<unsure.{code}@halmstad.example.test>")
    d = decide(raw, routines, settings=Settings(), now=NOW)
    assert (d.verdict, d.codes, d.reply.kind) == ("rejected", [code], "rejection")
    assert [r.code for r in d.unsure_personal_data] == ["body.possible_personal_data"]
    assert d.metadata_only and not d.personal_data
    assert "20000229" not in d.reply.body
    Recorder(fresh_store, routines, Settings()).record(
        d, FetchedMail(uid=1, raw=raw, size=len(raw)), "test", 1, NOW)
    [row] = fresh_store.db.query("select raw, subject, verdict from messages")
    assert row["raw"] is None and row["verdict"] == "rejected" and row["subject"] == subject


def test_uncertain_subject_beside_a_rejection_keeps_no_subject(fresh_store):
    routines = load_packs(["mittvaccin"])
    subject = "Order 20000229-2381"
    raw = make_mail(subject, "Hej!\nVad gäller?\nEva")
    d = decide(raw, routines, settings=Settings(), now=NOW)
    assert d.codes == ["subject.unknown"] and d.subject_withheld
    Recorder(fresh_store, routines, Settings()).record(d, FetchedMail(uid=1, raw=raw, size=len(raw)), "t", 1, NOW)
    [row] = fresh_store.db.query("select raw, subject from messages")
    assert row["raw"] is None and row["subject"] == ""


def test_uncertain_finding_alone_is_still_held_with_its_text():
    d = decide(make_mail("MittVaccin – felsökning", UNSURE_BODY), load_packs(["mittvaccin"]), now=NOW)
    assert (d.verdict, d.codes, d.metadata_only) == ("held", ["body.possible_personal_data"], False)


def test_a_chain_without_sender_missing_still_never_accepts_mail_without_a_sender(both):
    from dataclasses import replace

    from rules.checks import parse_chain

    lax = replace(both[1], chain=parse_chain([{"check": "subject", "action": "reject"}]))
    d = judge(make_mail("Kedjetest – fråga", sender=None), [both[0], lax])
    assert (d.verdict, d.codes, d.reply, d.routine) == ("rejected", ["sender.missing"], None, None)
