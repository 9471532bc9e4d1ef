"""A routine with its own lifecycle and no code of its own (tests/packs/lifecycletest), end to end.

Mail comes in through the real poller on a local folder, handlers act through the desk (and the CLI),
timers run through the engine as the scheduler runs them, and mail goes out through the file outbox
or a real SMTP server (aiosmtpd). MittVaccin is served by the same bot at the same time.
"""

from __future__ import annotations

import email
import email.policy
import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from intake.app import make_outbox, make_poller
from intake.desk import Refused, TicketDesk
from intake.engine import Engine, add_working_days
from intake.outbox import Outbox, smtp_transport
from intake.pipeline import Settings
from intake.store import open_store
from tests.conftest import FIXTURES, ROOT
from tests.intake.test_poller import Desk
from tests.mailmaker import make_mail

PACKS = ROOT / "tests" / "packs"
FORM = FIXTURES / "forms" / "filled" / "blank_new_1user.xlsx"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
REQUESTER = "eva.berg@halmstad.example.test"
THIRD = "beata.bestallare@halmstad.example"  # "Beställarens e-post" in the form
FROM = "testdesk@region.example.test"
MONDAY = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
FORM_VALUES = ["Beata", "Beställare", "19121212", "1212", "Hemsjukvården", "035-13"]


class Clock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class Bot:
    """MittVaccin and the test pack on one local folder, every part on one settable clock."""

    def __init__(self, root: Path, now: datetime = MONDAY, **sections):
        base = {
            "routines": {"enabled": ["mittvaccin", "lifecycletest"], "extra_dirs": [str(PACKS)]},
            "mailbox": {"default_routine": "mittvaccin"},
            "replies": {"from_address": FROM, "max_age_days": 0},
        }
        for name, values in sections.items():
            base.setdefault(name, {}).update(values)
        self.desk = Desk(root, **base)
        self.root = root
        self.config, self.store, self.routines = self.desk.config, self.desk.store, self.desk.routines
        self.settings = Settings.from_config(self.config)
        self.clock = Clock(now)

    def order(self, message_id: str = "<order-1@halmstad.example.test>") -> str:
        self.desk.drop(make_mail(subject="Testrutin – Beställning", message_id=message_id,
                                 attachments=[(FORM.name, FORM.read_bytes(), XLSX)]))
        poller = make_poller(self.config, self.store, self.routines)
        poller.clock = self.clock
        poller.poll_once()
        return self.store.tickets(routine="lifecycletest")[-1]["ref"]

    def handler(self) -> TicketDesk:
        return TicketDesk(self.store, self.routines, self.settings, clock=self.clock)

    def run_timers(self, store=None) -> int:
        return Engine(store or self.store, self.routines, self.settings, clock=self.clock).run_due_timers()

    def outbox(self, kind: str | None = None) -> list[dict]:
        rows = list(self.store.db.query("select * from outbox order by id"))
        return [r for r in rows if kind is None or r["kind"] == kind]

    def events(self, ref: str) -> list[dict]:
        t = self.store.ticket(ref)
        return [dict(e, data=json.loads(e["data"])) for e in self.store.events(t["id"])]


@pytest.fixture
def bot(tmp_path):
    return Bot(tmp_path)


def assert_no_personal_data(text: str) -> None:
    for value in FORM_VALUES:
        assert value not in text, value


def test_an_order_waits_for_the_third_party_who_is_mailed_and_reminded_once(bot):
    ref = bot.order()
    assert ref.startswith("LT-2026-")
    t = bot.store.ticket(ref)
    assert (t["status"], t["queue"]) == ("new", "bestallning")
    [ack] = bot.outbox("ack")
    assert ack["to_addr"] == REQUESTER and ref in ack["subject"] and ref in ack["body"]

    desk = bot.handler()
    assert desk.targets(t) == ["waiting_for_third_party", "in_progress", "cancelled"]
    t = desk.set_status(ref, "anna", "waiting_for_third_party")
    assert t["status"] == "waiting_for_third_party" and t["closed_at"] is None

    # The third party named in the form is mailed (never the requester), with the reference.
    [ask] = bot.outbox("third_party")
    assert ask["to_addr"] == THIRD and ask["in_reply_to"] is None
    assert ask["subject"] == f"Bekräfta beställning [{ref}]" and ref in ask["body"]
    assert_no_personal_data(ask["subject"] + ask["body"])
    queued = [e["data"] for e in bot.events(ref) if e["kind"] == "reply_queued"]
    assert queued[-1] == {"kind": "third_party", "outbox": ask["id"], "to": "field:bestallare_epost"}
    assert THIRD not in json.dumps(bot.events(ref))  # the audit trail names the role, not the address

    # A state handlers may not work: nobody can take it meanwhile.
    with pytest.raises(Refused) as refused:
        desk.take(ref, "anna")
    assert refused.value.code == "lifecycle.not_workable"

    # The reminder: two working days later (Monday -> Wednesday), once.
    timers = {r["name"]: r for r in bot.store.timers(t["id"])}
    assert timers["remind"]["due_at"] == add_working_days(MONDAY, 2).isoformat() == "2026-11-25T09:00:00+00:00"
    assert timers["expire"]["due_at"] == (MONDAY + timedelta(days=10)).isoformat()
    bot.clock.now = MONDAY + timedelta(days=1, hours=23)
    assert bot.run_timers() == 0
    bot.clock.now = MONDAY + timedelta(days=2)
    assert bot.run_timers() == 1
    assert bot.run_timers() == 0
    [reminder] = bot.outbox("third_party_reminder")
    assert reminder["to_addr"] == THIRD and ref in reminder["subject"]
    assert bot.store.ticket(ref)["status"] == "waiting_for_third_party"

    # The file outbox sends both to the third party, marked automatic.
    make_outbox(bot.config, bot.store, bot.routines).send_due()
    mails = {m["Subject"]: m for m in bot.desk.sent_mail() if m["To"] == THIRD}
    assert sorted(mails) == sorted([ask["subject"], reminder["subject"]])
    assert all(m["Auto-Submitted"] == "auto-replied" for m in mails.values())
    # The ask carries the accepted form (named by its type only); the reminder does not.
    [form] = list(mails[ask["subject"]].iter_attachments())
    assert (form.get_filename(), form.get_content()) == ("blankett.xlsx", FORM.read_bytes())
    assert list(mails[reminder["subject"]].iter_attachments()) == []

    # Confirmed: work starts; leaving the state cancels its expiry.
    desk.set_status(ref, "anna", "in_progress")
    assert {r["name"]: r["status"] for r in bot.store.timers(t["id"])} == {"remind": "fired", "expire": "cancelled"}
    bot.clock.now = MONDAY + timedelta(days=30)
    assert bot.run_timers() == 0
    assert bot.store.ticket(ref)["status"] == "in_progress"


def test_the_gate_holds_on_every_path_and_an_admin_may_close_anyway(bot, tmp_path):
    ref = bot.order()
    desk = bot.handler()
    desk.set_status(ref, "anna", "in_progress")

    with pytest.raises(Refused) as refused:
        desk.set_status(ref, "anna", "done")
    assert refused.value.code == "gate.assigned"
    assert refused.value.sv == "Ärendet måste ha en handläggare först."
    assert bot.store.ticket(ref)["status"] == "in_progress" and bot.outbox("completion") == []

    # The CLI goes through the same engine: the same refusal, as a one-line error.
    conf = tmp_path / "intake.toml"
    conf.write_text("\n".join([
        "[store]", f'path = "{bot.config.db_path}"', "",
        "[routines]", 'enabled = ["mittvaccin", "lifecycletest"]', f'extra_dirs = ["{PACKS}"]', "",
        "[mailbox]", 'default_routine = "mittvaccin"', "",
        "[replies]", f'from_address = "{FROM}"', "",
    ]) + "\n")
    from intake.cli import main

    result = CliRunner().invoke(main, ["-c", str(conf), "ticket", "status", ref, "done", "--user", "anna"])
    assert result.exit_code == 1
    assert result.output.strip() == f"Error: {ref}: the ticket needs an assignee first"
    result = CliRunner().invoke(main, ["-c", str(conf), "ticket", "status", ref, "waiting", "--user", "anna"])
    assert result.exit_code == 1 and "unknown status 'waiting'" in result.output  # MittVaccin's, not this pack's

    # An admin may override the gate, giving a reason that is kept as a note, not in the event.
    t = desk.set_status(ref, "root", "done", role="admin", override="Beställaren har bekräftat per telefon.")
    assert t["status"] == "done" and t["closed_at"] is not None
    [overridden] = [e for e in bot.events(ref) if e["kind"] == "gate_overridden"]
    assert overridden["actor"] == "root" and overridden["data"]["gates"] == ["assigned"]
    assert "telefon" not in json.dumps(overridden["data"])
    [note] = bot.store.notes(t["id"])
    assert note["text"] == "Beställaren har bekräftat per telefon."
    [done] = bot.outbox("completion")
    assert done["to_addr"] == REQUESTER and done["in_reply_to"] == "<order-1@halmstad.example.test>"

    # The audit trail of the whole ticket, in order.
    kinds = [(e["kind"], e["data"].get("to") if e["kind"] == "status_changed" else None) for e in bot.events(ref)]
    assert kinds == [
        ("ticket_created", None), ("reply_queued", None),
        ("status_changed", "in_progress"), ("status_changed", "done"), ("gate_overridden", None),
        ("reply_queued", None),
    ]


def test_an_assigned_ticket_closes_and_a_followup_reopens_it_by_the_packs_rules(bot):
    ref = bot.order()
    desk = bot.handler()
    assert desk.take(ref, "anna")["status"] == "in_progress"  # the pack's assign transition
    assert desk.mark_done(ref, "anna", note="Klart.")["status"] == "done"
    [done] = bot.outbox("completion")
    assert "Klart." in done["body"]
    # A follow-up by the requester reopens it to in_progress (this pack's rule; MittVaccin's is new).
    bot.desk.drop(make_mail(subject=f"SV: Utfört: Testrutin – Beställning [{ref}]", body="Tack!\n",
                            message_id="<thanks@halmstad.example.test>"))
    poller = make_poller(bot.config, bot.store, bot.routines)
    poller.clock = bot.clock
    poller.poll_once()
    t = bot.store.ticket(ref)
    assert (t["status"], t["closed_at"]) == ("in_progress", None)
    [reopened] = [e for e in bot.events(ref) if e["kind"] == "status_changed" and e["actor"] == "bot"]
    assert reopened["data"] == {"from": "done", "to": "in_progress", "why": "follow-up"}


def test_a_timer_due_while_stopped_fires_after_restart_and_never_twice(bot):
    refs = [bot.order(f"<order-{i}@halmstad.example.test>") for i in range(2)]
    for ref in refs:
        bot.handler().set_status(ref, "anna", "waiting_for_third_party")
    path = bot.config.db_path
    bot.store.db.conn.close()  # the bot stops; eleven days pass

    bot.clock.now = MONDAY + timedelta(days=11)
    store = open_store(path)
    # Both timers of both tickets are due: the reminder, then the expiry that cancels the order.
    assert bot.run_timers(store) == 4
    store.db.conn.close()
    store = open_store(path)
    assert bot.run_timers(store) == 0
    bot.store = store
    for ref in refs:
        t = store.ticket(ref)
        assert t["status"] == "cancelled" and t["closed_at"] == bot.clock.now.isoformat()
        assert [r["status"] for r in store.timers(t["id"])] == ["fired", "fired"]
    kinds = [r["kind"] for r in bot.outbox() if r["kind"] != "ack"]
    assert sorted(kinds) == sorted(["third_party"] * 2 + ["third_party_reminder"] * 2 + ["cancelled"] * 2)
    [cancelled, _] = bot.outbox("cancelled")
    assert cancelled["to_addr"] == REQUESTER and "makulerats" in cancelled["body"]
    fired = [e["data"] for e in bot.events(refs[0]) if e["kind"] == "timer_fired"]
    assert fired == [{"timer": "remind", "event": "remind"}, {"timer": "expire", "event": "expire"}]


def test_each_mail_kind_has_its_own_cap_and_the_bot_never_mails_itself(bot):
    refs = [bot.order(f"<order-{i}@halmstad.example.test>") for i in range(4)]
    for ref in refs:
        bot.handler().set_status(ref, "anna", "waiting_for_third_party")
    # rate_limit_per_hour = 3 for this kind: the fourth ask within the hour is recorded, not sent.
    assert len(bot.outbox("third_party")) == 3
    [suppressed] = [e for e in bot.events(refs[3]) if e["kind"] == "reply_suppressed"]
    assert suppressed["data"] == {"reason": "mail.rate_limited", "kind": "third_party",
                                  "to": "field:bestallare_epost"}
    # The receipts' own cap (replies.rate_limit_per_hour, 5) is separate: all four were acknowledged.
    assert len(bot.outbox("ack")) == 4

    # A form naming the bot's own address as the third party: never mailed.
    ref = bot.order("<order-own@halmstad.example.test>")
    t = bot.store.ticket(ref)
    form = json.loads(t["form"])
    form["fields"]["bestallare_epost"] = FROM.upper()
    with bot.store.transaction():
        bot.store.update_ticket(t["id"], {"form": json.dumps(form)})
    bot.clock.now += timedelta(hours=2)
    bot.handler().set_status(ref, "anna", "waiting_for_third_party")
    [own] = [e for e in bot.events(ref) if e["kind"] == "reply_suppressed"]
    assert own["data"]["reason"] == "mail.own_address"
    assert [r["to_addr"] for r in bot.outbox("third_party")] == [THIRD] * 3


def test_third_party_mail_goes_out_over_smtp(tmp_path, smtp_server):
    bot = Bot(tmp_path, outbox={"kind": "smtp"},
              smtp={"host": smtp_server.host, "port": smtp_server.port, "tls": "none", "timeout": 5})
    ref = bot.order()
    bot.handler().set_status(ref, "anna", "waiting_for_third_party")
    outbox = Outbox(bot.store, smtp_transport(bot.config), from_address=FROM, clock=bot.clock)
    assert outbox.send_due().sent == 2  # the receipt and the ask
    by_rcpt = {m.rcpt_tos[0]: m for m in smtp_server.messages}
    assert set(by_rcpt) == {REQUESTER, THIRD}
    ask = email.message_from_bytes(by_rcpt[THIRD].data, policy=email.policy.default)
    assert ask["Subject"] == f"Bekräfta beställning [{ref}]" and by_rcpt[THIRD].envelope_from == ""
    assert_no_personal_data(ask.get_body(("plain",)).get_content())
    sent = [e["data"]["kind"] for e in bot.events(ref) if e["kind"] == "reply_sent"]
    assert sorted(sent) == ["ack", "third_party"]


# -- a kill never fires a timer twice and loses none (a real `intake timers run`, SIGKILLed) ---------------


def _cli(conf: Path, *args: str, fault: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INTAKE_")}
    if fault:
        env["INTAKE_FAULT"] = fault
    return subprocess.run([sys.executable, "-m", "intake.cli", "-c", str(conf), *args],
                          env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("fault", ["timer-before-commit:2", "timer-after-commit:2"])
def test_a_killed_timer_run_fires_each_timer_exactly_once(tmp_path, fault):
    # Orders set waiting a week ago (real time: the subprocess has the real clock), so reminders are due.
    bot = Bot(tmp_path, now=datetime.now(UTC).replace(microsecond=0) - timedelta(days=7))
    refs = [bot.order(f"<order-{i}@halmstad.example.test>") for i in range(3)]
    for ref in refs:
        bot.handler().set_status(ref, "anna", "waiting_for_third_party")
    conf = tmp_path / "intake.toml"
    conf.write_text("\n".join([
        "[store]", 'path = "intake.db"', "",
        "[routines]", 'enabled = ["mittvaccin", "lifecycletest"]', f'extra_dirs = ["{PACKS}"]', "",
        "[mailbox]", 'default_routine = "mittvaccin"', "",
        "[replies]", f'from_address = "{FROM}"', "",
    ]) + "\n")
    killed = _cli(conf, "timers", "run", fault=fault)
    assert killed.returncode == -9, killed.stderr
    store = open_store(tmp_path / "intake.db")
    done_before = len([r for r in store.timer_rows(pending_only=False) if r["status"] == "fired"])
    assert done_before == (1 if fault.startswith("timer-before") else 2)
    again = _cli(conf, "timers", "run")
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == f"{3 - done_before} timers fired"
    assert _cli(conf, "timers", "run").stdout.strip() == "0 timers fired"
    reminders = list(store.db.query("select ticket_id from outbox where kind = 'third_party_reminder'"))
    assert sorted(r["ticket_id"] for r in reminders) == sorted(store.ticket(ref)["id"] for ref in refs)
    listed = json.loads(_cli(conf, "timers", "list", "--json").stdout)
    assert [r["name"] for r in listed] == ["expire"] * 3  # only the expiries are still pending


def test_the_web_ui_shows_the_packs_states_and_its_refusals_in_swedish(tmp_path):
    from intake.web.accounts import add_user
    from intake.web.app import create_app
    from tests.intake.test_web import PASSWORD, csrf_of, login

    bot = Bot(tmp_path, web={"secret_key": "test-secret-" + "x" * 32})
    ref = bot.order()
    add_user(bot.store, "anna", PASSWORD)
    app = create_app(bot.config)
    app.testing = True
    client = app.test_client()
    assert login(client).status_code == 302
    page = client.get(f"/tickets/{ref}").get_data(as_text=True)
    options = re.findall(r'<option value="([a-z_]+)">([^<]+)</option>', page)
    assert options == [("waiting_for_third_party", "Väntar på beställaren"), ("in_progress", "Pågår"),
                       ("cancelled", "Makulerad")]
    assert "Ta ärendet" in page
    token = csrf_of(page)
    client.post(f"/tickets/{ref}/status", data={"csrf_token": token, "status": "waiting_for_third_party"})
    page = client.get(f"/tickets/{ref}").get_data(as_text=True)
    assert "Ta ärendet" not in page and "Väntar på beställaren" in page  # not workable: nobody takes it
    client.post(f"/tickets/{ref}/status", data={"csrf_token": token, "status": "in_progress"})
    page = client.post(f"/tickets/{ref}/status", data={"csrf_token": token, "status": "done"},
                       follow_redirects=True).get_data(as_text=True)
    assert "Ärendet måste ha en handläggare först." in page
    assert bot.store.ticket(ref)["status"] == "in_progress"
    queues = client.get("/").get_data(as_text=True)
    assert "Väntar på beställaren" in queues and "Makulerad" in queues and "Beställningar" in queues


def test_intake_run_fires_due_timers_on_its_schedule(tmp_path):
    import signal
    import time

    bot = Bot(tmp_path, now=datetime.now(UTC).replace(microsecond=0) - timedelta(days=7))
    ref = bot.order()
    bot.handler().set_status(ref, "anna", "waiting_for_third_party")
    bot.store.db.conn.close()
    conf = tmp_path / "intake.toml"
    conf.write_text("\n".join([
        "[store]", 'path = "intake.db"', "",
        "[mailbox]", 'kind = "local"', 'path = "mailbox"', 'default_routine = "mittvaccin"', "",
        "[outbox]", 'dir = "outbox"', "interval_seconds = 1", "",  # a timer's mail goes with the next send
        "[routines]", 'enabled = ["mittvaccin", "lifecycletest"]', f'extra_dirs = ["{PACKS}"]', "",
        "[replies]", f'from_address = "{FROM}"', "",
    ]) + "\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("INTAKE_")}
    run = subprocess.Popen([sys.executable, "-m", "intake.cli", "-c", str(conf), "run"], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def reminded() -> bool:
        return any(m["Subject"] == f"Påminnelse: bekräfta beställning [{ref}]" for m in bot.desk.sent_mail())

    try:
        deadline = time.monotonic() + 30
        while not reminded() and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        run.send_signal(signal.SIGTERM)
        _, err = run.communicate(timeout=30)
    assert reminded(), err
    assert run.returncode == 0 and "Traceback" not in err
    store = open_store(tmp_path / "intake.db")
    assert [r["name"] for r in store.timer_rows()] == ["expire"]


def test_the_pack_s_own_chain_holds_a_wrong_form_that_mittvaccin_rejects(tmp_path):
    """One pack, no code of its own: its chain (a wrongly filled form is held for a handler), its states and its
    third-party mail all come from pack.toml; MittVaccin, served by the same mailbox, still rejects the same form."""
    bot = Bot(tmp_path)
    wrong = FIXTURES / "forms" / "filled" / "blank_missing_fields.xlsx"
    for subject, mid in (("Testrutin – Beställning", "<wrong-lt@halmstad.example.test>"),
                         ("MittVaccin – Behörighet", "<wrong-mv@halmstad.example.test>")):
        bot.desk.drop(make_mail(subject=subject, message_id=mid, attachments=[(wrong.name, wrong.read_bytes(), XLSX)]))
    poller = make_poller(bot.config, bot.store, bot.routines)
    poller.clock = bot.clock
    poller.poll_once()
    verdicts = {m["message_id"]: (m["verdict"], m["routine"], json.loads(m["reasons"]))
                for m in bot.store.db.query("select message_id, verdict, routine, reasons from messages")}
    held, routine, reasons = verdicts["<wrong-lt@halmstad.example.test>"]
    assert (held, routine) == ("held", "lifecycletest") and {r["code"] for r in reasons} == {"form.missing_field"}
    rejected, routine, reasons = verdicts["<wrong-mv@halmstad.example.test>"]
    assert (rejected, routine) == ("rejected", "mittvaccin") and "form.missing_field" in {r["code"] for r in reasons}
    # Held mail gets no automatic answer; the rejected one is told what to fix.
    assert [r["kind"] for r in bot.outbox()] == ["rejection"]
