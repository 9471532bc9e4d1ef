"""Approval by an attestant, end to end on the VMU pack: mail in through the real poller, answers by reply and by
the one-time link, timers on a test clock, mail out through the file outbox (tests/intake/test_approval_imap.py
does the same over real Dovecot and aiosmtpd)."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime, timedelta

import pytest

from intake import approvals
from intake.desk import Refused
from tests.intake.approvaldesk import (
    ATTESTANT,
    MONDAY,
    ORDERER,
    OTHER,
    START,
    ApprovalBot,
    assert_no_person,
    token_of,
)


@pytest.fixture
def bot(tmp_path):
    return ApprovalBot(tmp_path)


def test_order_waits_for_attest_then_is_approved_by_reply_released_on_the_start_date_and_done(bot):
    ref = bot.order_vmu()
    assert ref == "VMU3000001"  # the pack's own reference format
    t = bot.store.ticket(ref)
    assert t["status"] == "awaiting_approval" and t["approver"] == ATTESTANT
    # The orderer's receipt says it waits for attest; the attestant gets the request with the form attached.
    [ack] = bot.outbox("ack")
    assert ack["to_addr"] == ORDERER and "väntar nu på attest" in ack["body"]
    [ask] = bot.outbox("attest_request")
    assert ask["to_addr"] == ATTESTANT and ask["attach_ticket_form"] == 1
    for text in ("Vårdcentralen Testby", "VoB SJF", START.isoformat(), "Olle Ordrar", ref, "Godkänn", "Avslå",
                 "https://intake.example.test/attest/"):
        assert text in ask["body"], text
    assert_no_person(ask["subject"] + ask["body"])
    # Handlers cannot work it meanwhile.
    with pytest.raises(Refused) as refused:
        bot.handler().take(ref, "anna")
    assert refused.value.code == "lifecycle.not_workable"
    # The token is stored only hashed.
    token = token_of(ask)
    assert token not in str(list(bot.store.db.query("select * from approval_tokens")))

    bot.send()
    sent = {m["To"]: m for m in bot.sent_mail()}
    attachments = [p.get_filename() for p in sent[ATTESTANT].iter_attachments()]
    assert attachments == ["blankett.xlsx"]
    assert token in str(sent[ATTESTANT]["Subject"])

    bot.clock.now = MONDAY + timedelta(hours=2)
    bot.answer(ask, "Godkänn")
    assert bot.status(ref) == "waiting_for_start"
    [approved] = bot.outbox("attest_approved_later")
    assert approved["to_addr"] == ORDERER
    [row] = bot.store.approvals(bot.store.ticket(ref)["id"])
    assert (row["status"], row["decision"], row["channel"]) == ("approved", "approve", "reply")
    assert not bot.outbox("attest_unclear")
    # Once decided, no usable token is left in the store: the sent request no longer holds it.
    assert token not in str(list(bot.store.db.query("select * from outbox")))

    # Released to the handlers' queue at 00:00 Swedish time on the start date (23:00 UTC the day before), not before.
    bot.clock.now = datetime(2026, 11, 30, 22, 59, tzinfo=UTC)
    bot.run_timers()
    assert bot.status(ref) == "waiting_for_start"
    bot.clock.now = datetime(2026, 11, 30, 23, 0, tzinfo=UTC)
    bot.run_timers()
    assert bot.status(ref) == "new"
    desk = bot.handler()
    desk.take(ref, "anna")
    desk.set_status(ref, "anna", "done")
    [done] = bot.outbox("completion")
    assert done["to_addr"] == ORDERER and ref in done["subject"]


def test_approved_with_the_start_date_reached_goes_to_the_queue_at_once(bot):
    bot.order_vmu()
    ref = bot.order_vmu(fields={"startdatum": MONDAY.date()})
    assert ref == "VMU3000002"
    bot.store.db.execute("delete from outbox where kind = 'attest_request' and ticket_id != ?",
                         [bot.store.ticket(ref)["id"]])
    [ask] = bot.outbox("attest_request")
    bot.answer(ask, "godkänt.")
    assert bot.status(ref) == "new"
    assert [r["to_addr"] for r in bot.outbox("attest_approved")] == [ORDERER]


def test_rejection_with_a_reason_closes_and_tells_the_orderer(bot):
    ref = bot.order_vmu()
    [ask] = bot.outbox("attest_request")
    bot.answer(ask, "Avslå – hen har inte den tjänsten längre")
    t = bot.store.ticket(ref)
    assert t["status"] == "rejected_by_approver" and t["closed_at"]
    [told] = bot.outbox("attest_rejected")
    assert told["to_addr"] == ORDERER and "hen har inte den tjänsten längre" in told["body"]


def test_rejection_without_a_reason_and_an_unclear_answer_change_nothing_and_are_answered(bot):
    ref = bot.order_vmu()
    [ask] = bot.outbox("attest_request")
    bot.answer(ask, "Avslå")
    bot.answer(ask, "Vad gäller detta?")
    assert bot.status(ref) == "awaiting_approval"
    [no_reason] = bot.outbox("attest_no_reason")
    [unclear] = bot.outbox("attest_unclear")
    assert no_reason["to_addr"] == unclear["to_addr"] == ATTESTANT
    assert "Ingenting har ändrats" in no_reason["body"] and "Ingenting har ändrats" in unclear["body"]
    # The token still works afterwards.
    bot.answer(ask, "Godkänn")
    assert bot.status(ref) == "waiting_for_start"
    # An answer to an order already decided is told so, and changes nothing.
    bot.answer(ask, "Avslå: ångrar mig")
    assert bot.status(ref) == "waiting_for_start"
    assert len(bot.outbox("attest_closed")) == 1


def test_answers_without_the_token_or_from_the_wrong_address_change_nothing(bot):
    ref = bot.order_vmu()
    [ask] = bot.outbox("attest_request")
    # A forged From: the attestant's address, but no token in the subject.
    bot.answer(ask, "Godkänn", subject=f"SV: Attest [{ref}]")
    # The right token from another address.
    bot.answer(ask, "Godkänn", sender=OTHER)
    # The orderer answering with the token (a forwarded request).
    bot.answer(ask, "Godkänn", sender=ORDERER)
    assert bot.status(ref) == "awaiting_approval"
    codes = [e["data"]["code"] for e in bot.events(ref, "approval_refused")]
    assert codes == ["approval.no_token", "approval.wrong_sender", "approval.wrong_sender"]
    assert not [r for r in bot.outbox() if r["kind"].startswith("attest_") and r["kind"] != "attest_request"]


def test_the_orderer_cannot_be_their_own_attestant(bot):
    ref = bot.order_vmu(fields={"attestant_epost": ORDERER})
    assert bot.status(ref) == "awaiting_approval"
    assert not bot.outbox("attest_request")  # nobody is asked to approve their own order
    assert [e["data"]["code"] for e in bot.events(ref, "approval_refused")] == ["approval.self"]
    assert approvals.decide_by_link(bot.engine(), "0" * 32, "approve", "") == "unknown"


def test_a_reply_after_expiry_is_told_the_order_is_closed(bot):
    ref = bot.order_vmu()
    [ask] = bot.outbox("attest_request")
    bot.clock.now = MONDAY + timedelta(days=3)
    bot.run_timers()
    [reminder] = bot.outbox("attest_reminder")
    assert reminder["to_addr"] == ATTESTANT and token_of(reminder) != token_of(ask)
    bot.clock.now = MONDAY + timedelta(days=14)
    bot.run_timers()
    assert bot.status(ref) == "expired"
    assert [r["to_addr"] for r in bot.outbox("attest_expired")] == [ORDERER]
    bot.answer(ask, "Godkänn")
    assert bot.status(ref) == "expired"
    assert len(bot.outbox("attest_closed")) == 1


def test_an_out_of_office_is_never_answered_but_linked_to_the_ticket(bot):
    ref = bot.order_vmu()
    [ask] = bot.outbox("attest_request")
    before = len(bot.outbox())
    bot.answer(ask, "Jag är på semester till måndag.", subject="Automatiskt svar: " + ask["subject"],
               headers={"Auto-Submitted": "auto-replied"})
    assert len(bot.outbox()) == before
    assert len(bot.events(ref, "approval_out_of_office")) == 1
    assert bot.store.pending_approval(bot.store.ticket(ref)["id"])["out_of_office_at"]
    bot.clock.now = MONDAY + timedelta(days=3)
    bot.run_timers()
    [reminder] = bot.outbox("attest_reminder")
    assert "frånvaro" in reminder["body"]
    [pending] = bot.outbox("attest_pending")  # the orderer sees it too, and how to ask someone else
    assert pending["to_addr"] == ORDERER
    assert "frånvaromeddelande" in pending["body"] and "Byt attestant" in pending["body"]


def test_approval_by_link_get_decides_nothing_post_decides_once(bot):
    from intake.web.app import create_app

    ref = bot.order_vmu()
    [ask] = bot.outbox("attest_request")
    token = token_of(ask)
    app = create_app(bot.config, routines=bot.routines, settings=bot.settings)
    client = app.test_client()
    page = client.get(f"/attest/{token}")
    assert page.status_code == 200 and ref in page.get_data(as_text=True)
    assert "Godkänn" in page.get_data(as_text=True)
    assert_no_person(page.get_data(as_text=True))
    assert bot.status(ref) == "awaiting_approval"
    csrf = client.get(f"/attest/{token}").get_data(as_text=True).split('name="csrf_token" value="')[1].split('"')[0]
    done = client.post(f"/attest/{token}", data={"csrf_token": csrf, "decision": "approve"})
    assert done.status_code == 200 and "är godkänd" in done.get_data(as_text=True)
    row = bot.store.approvals(bot.store.ticket(ref)["id"])[0]
    assert (row["status"], row["channel"]) == ("approved", "link")
    assert bot.status(ref) == "waiting_for_start"
    again = client.post(f"/attest/{token}", data={"csrf_token": csrf, "decision": "reject", "reason": "nej"})
    assert again.status_code == 410
    assert bot.status(ref) == "waiting_for_start"
    assert len(bot.outbox("attest_approved_later")) == 1


def test_require_authenticated_holds_an_answer_without_a_trusted_pass(tmp_path):
    bot = ApprovalBot(tmp_path, approvals={"require_authenticated": True, "authserv_id": "mx.region.example.test"})
    ref = bot.order_vmu()
    [ask] = bot.outbox("attest_request")
    # A pass from a server we do not trust counts for nothing.
    forged = "mx.evil.example; dmarc=pass header.from=vard.example.test"
    bot.answer(ask, "Godkänn", headers={"Authentication-Results": forged})
    assert bot.status(ref) == "awaiting_approval"
    assert len(bot.events(ref, "approval_held")) == 1
    assert approvals.confirm_held(bot.engine(), ref, "anna") == "approve"
    assert bot.status(ref) == "waiting_for_start"


def test_require_authenticated_takes_an_aligned_pass_from_our_mta(tmp_path):
    bot = ApprovalBot(tmp_path, approvals={"require_authenticated": True, "authserv_id": "mx.region.example.test"})
    ref = bot.order_vmu()
    [ask] = bot.outbox("attest_request")
    bot.answer(ask, "Godkänn", headers={
        "Authentication-Results": "mx.region.example.test; dkim=pass header.d=vard.example.test; spf=pass"})
    assert bot.status(ref) == "waiting_for_start"


def test_sent_request_mail_has_no_personal_data_in_headers_or_body(bot):
    bot.order_vmu()
    bot.send()
    for msg in bot.sent_mail():
        body = msg.get_body(preferencelist=("plain",)).get_content()
        assert_no_person(str(msg["Subject"]) + body)
        assert email.message_from_bytes(msg.as_bytes(), policy=email.policy.default)["Auto-Submitted"]


def test_a_handler_changes_the_attestant_by_the_cli_and_the_old_token_stops_working(bot, tmp_path):
    from click.testing import CliRunner

    from intake.cli import main

    ref = bot.order_vmu()
    [ask] = bot.outbox("attest_request")
    conf = tmp_path / "intake.toml"
    conf.write_text("\n".join([
        "[store]", f'path = "{bot.config.db_path}"', "", "[mailbox]", 'default_routine = "mittvaccin"', "",
        "[routines]", 'enabled = ["mittvaccin", "vmu"]', "",
        "[replies]", 'from_address = "bestallning@region.example.test"', "",
        "[approvals]", 'link_base_url = "https://intake.example.test"', "",
    ]) + "\n")
    result = CliRunner().invoke(main, ["-c", str(conf), "ticket", "attestant", ref, OTHER, "--user", "anna"])
    assert result.exit_code == 0, result.output
    t = bot.store.ticket(ref)
    assert (t["status"], t["approver"], t["previous_approver"]) == ("awaiting_approval", OTHER, ATTESTANT)
    [_, new_ask] = bot.outbox("attest_request")
    assert new_ask["to_addr"] == OTHER and token_of(new_ask) != token_of(ask)
    assert [r["to_addr"] for r in bot.outbox("attest_replaced")] == [ATTESTANT]
    assert [r["to_addr"] for r in bot.outbox("attest_changed")] == [ORDERER]
    # The old attestant's answer no longer counts; the new one's does.
    bot.answer(ask, "Godkänn")
    assert bot.status(ref) == "awaiting_approval"
    bot.answer(new_ask, "Godkänn", sender=OTHER)
    assert bot.status(ref) == "waiting_for_start"


def test_the_orderer_changes_the_attestant_by_replying_to_the_receipt(bot):
    ref = bot.order_vmu()
    [ack] = bot.outbox("ack")
    bot.answer(ack, f"Byt attestant: {OTHER}", sender=ORDERER)
    t = bot.store.ticket(ref)
    assert t["approver"] == OTHER and t["status"] == "awaiting_approval"
    assert [r["to_addr"] for r in bot.outbox("attest_request")] == [ATTESTANT, OTHER]
    assert [r["to_addr"] for r in bot.outbox("attest_replaced")] == [ATTESTANT]


def test_a_change_by_a_stranger_is_not_taken(bot):
    ref = bot.order_vmu()
    [ack] = bot.outbox("ack")
    bot.answer(ack, f"Byt attestant: {OTHER}", sender="mallory@vard.example.test")
    assert bot.store.ticket(ref)["approver"] == ATTESTANT


def _rejected_codes(bot) -> list[str]:
    import json

    return [r["code"] for r in json.loads(bot.messages()[-1]["reasons"])]


def test_vmu_form_rules(bot):
    from tests.intake.approvaldesk import PERSON, VMU_FIELDS, filled_form
    from tests.mailmaker import XLSX, make_mail

    def send(fields: dict, ticks: tuple[str, ...]) -> list[str]:
        form = filled_form("vmu", "new", {**VMU_FIELDS, **fields}, PERSON, ticks)
        bot.drop(make_mail(subject="Vårdmedarbetaruppdrag – Nyupplägg", sender=ORDERER, to="x@region.example.test",
                           attachments=[("b.xlsx", form, XLSX)]))
        bot.poll()
        assert bot.messages()[-1]["verdict"] == "rejected"
        return _rejected_codes(bot)

    # Spärr & Logg only for a private care provider.
    assert send({}, ("Administration Spärr & Logg",)) == ["form.rule"]
    # At least one uppdrag.
    assert send({}, ()) != []
    # A start date in the past.
    assert send({"startdatum": MONDAY.date() - timedelta(days=1)}, ("VoB SJF",)) == ["form.invalid_field"]
    # A private provider may order it.
    ref = bot.order_vmu(fields={"vardgivartyp": "Privat"}, ticks=("Administration Spärr & Logg",))
    assert bot.status(ref) == "awaiting_approval"


def test_the_queue_can_be_filtered_by_waiting_for_attest(bot):
    from intake.web.accounts import add_user
    from intake.web.app import create_app

    ref = bot.order_vmu()
    add_user(bot.store, "anna", "ett-langt-losenord-1", "handler", actor="test")
    app = create_app(bot.config, routines=bot.routines, settings=bot.settings)
    client = app.test_client()
    login = client.get("/login").get_data(as_text=True)
    csrf = login.split('name="csrf_token" value="')[1].split('"')[0]
    client.post("/login", data={"username": "anna", "password": "ett-langt-losenord-1", "csrf_token": csrf})
    page = client.get("/tickets?status=awaiting_approval").get_data(as_text=True)
    assert ref in page and "Väntar på attest" in page
    assert ref not in client.get("/tickets?status=new").get_data(as_text=True)
    # The ticket page shows the approval: who, when, status; and a handler may change the attestant there.
    ticket = client.get(f"/tickets/{ref}").get_data(as_text=True)
    assert ATTESTANT in ticket and "Väntar på svar" in ticket and "Byt attestant" in ticket
    csrf = ticket.split('name="csrf_token" value="')[1].split('"')[0]  # the session's token, after signing in
    client.post(f"/tickets/{ref}/attestant", data={"address": OTHER, "csrf_token": csrf})
    assert bot.store.ticket(ref)["approver"] == OTHER
    ticket = client.get(f"/tickets/{ref}").get_data(as_text=True)
    assert "Ersatt" in ticket and OTHER in ticket


def test_a_done_vmu_order_feeds_the_register_with_each_uppdrag_and_the_attestant(tmp_path):
    from intake.register import apply_done_ticket, keys_for

    bot = ApprovalBot(tmp_path, register={"key_file": "keys/register.key"})
    ref = bot.order_vmu(fields={"startdatum": MONDAY.date()}, ticks=("VoB SJF", "Statistik VE"))
    [ask] = bot.outbox("attest_request")
    bot.answer(ask, "Godkänn")
    desk = bot.handler()
    desk.take(ref, "anna")
    desk.set_status(ref, "anna", "done")
    keys = keys_for(bot.config, bot.store)
    with bot.store.transaction():
        made = apply_done_ticket(bot.store, ref, {r.id: r for r in bot.routines}, MONDAY, "anna", keys=keys)
    assert len(made) == 2
    rows = list(bot.store.db.query("select * from register_entries"))
    assert sorted(r["role"] for r in rows) == ["Statistik VE", "VoB SJF"]
    assert {r["attestant_email"] for r in rows} == {ATTESTANT}


def test_rejection_by_link_needs_a_reason(bot):
    from intake.web.app import create_app

    ref = bot.order_vmu()
    token = token_of(bot.outbox("attest_request")[0])
    client = create_app(bot.config, routines=bot.routines, settings=bot.settings).test_client()
    csrf = client.get(f"/attest/{token}").get_data(as_text=True).split('name="csrf_token" value="')[1].split('"')[0]
    # A POST without the page's CSRF token decides nothing.
    assert client.post(f"/attest/{token}", data={"decision": "approve"}).status_code == 400
    missing = client.post(f"/attest/{token}", data={"csrf_token": csrf, "decision": "reject", "reason": " "})
    assert missing.status_code == 422 and "behöver ett skäl" in missing.get_data(as_text=True)
    assert bot.status(ref) == "awaiting_approval"
    done = client.post(f"/attest/{token}", data={"csrf_token": csrf, "decision": "reject", "reason": "Fel enhet"})
    assert done.status_code == 200 and "avslagen" in done.get_data(as_text=True)
    assert bot.status(ref) == "rejected_by_approver"
    [told] = bot.outbox("attest_rejected")
    assert told["to_addr"] == ORDERER and "Fel enhet" in told["body"]
    row = bot.store.approvals(bot.store.ticket(ref)["id"])[0]
    assert (row["decision"], row["reason"], row["channel"]) == ("reject", "Fel enhet", "link")


def test_a_held_answer_is_shown_on_the_ticket_page_and_confirmed_there(tmp_path):
    from intake.web.accounts import add_user
    from intake.web.app import create_app

    bot = ApprovalBot(tmp_path, approvals={"require_authenticated": True, "authserv_id": "mx.region.example.test"})
    ref = bot.order_vmu()
    [ask] = bot.outbox("attest_request")
    bot.answer(ask, "Avslå: fel enhet")  # no Authentication-Results at all: held
    assert bot.status(ref) == "awaiting_approval"
    add_user(bot.store, "anna", "ett-langt-losenord-1", "handler", actor="test")
    client = create_app(bot.config, routines=bot.routines, settings=bot.settings).test_client()
    login = client.get("/login").get_data(as_text=True)
    client.post("/login", data={"username": "anna", "password": "ett-langt-losenord-1",
                                "csrf_token": login.split('name="csrf_token" value="')[1].split('"')[0]})
    page = client.get(f"/tickets/{ref}").get_data(as_text=True)
    assert "väntar på bekräftelse" in page and "fel enhet" in page and "Bekräfta svaret" in page
    csrf = page.split('name="csrf_token" value="')[1].split('"')[0]
    client.post(f"/tickets/{ref}/confirm-attest", data={"csrf_token": csrf})
    assert bot.status(ref) == "rejected_by_approver"
    row = bot.store.approvals(bot.store.ticket(ref)["id"])[0]
    assert (row["decision"], row["decided_by"], row["reason"]) == ("reject", "anna", "fel enhet")
    assert [r["to_addr"] for r in bot.outbox("attest_rejected")] == [ORDERER]
