"""Checklists on tickets: the audionom pack (rules/packs/audionom) end to end.

Mail comes in through the real poller (Dovecot for the four events, a local folder elsewhere), handlers tick
tasks through the checklist desk, the CLI and the web UI, and mail goes out through a real SMTP server
(aiosmtpd). Forms are the committed blank filled in with openpyxl (tests/packs/audionom/forms.py).
"""

from __future__ import annotations

import email
import email.policy
import json
import re
import shutil
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from intake import config as config_mod
from intake.app import make_outbox, make_poller, open_app
from intake.checklists import ChecklistDesk
from intake.desk import Refused, TicketDesk
from intake.engine import Engine
from intake.pipeline import Settings
from tests.conftest import ROOT
from tests.intake.test_poller import Desk
from tests.mailmaker import make_mail
from tests.packs.audionom.forms import PERSONAL_VALUES, XLSX, filled_form

FROM = "audionom-it@region.example.test"
REQUESTER = "eva.berg@halmstad.example.test"
MONDAY = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
SUBJECTS = {
    "ny_anvandare": "IT-beställning audionom – Ny användare",
    "avsluta": "IT-beställning audionom – Avsluta användare",
    "byte_mottagning": "IT-beställning audionom – Byte mottagning",
    "tjanstledighet": "IT-beställning audionom – Tjänstledighet",
}
KINDS = {"ny_anvandare": "new", "avsluta": "termination", "byte_mottagning": "move", "tjanstledighet": "leave"}
BASE = {
    "routines": {"enabled": ["mittvaccin", "audionom"]},
    "mailbox": {"default_routine": "mittvaccin"},
    "replies": {"from_address": FROM, "max_age_days": 0},
}


class Clock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def form_for(event: str, **values) -> bytes:
    dates = {"avsluta": {"start": None, "end": date(2026, 12, 31)},
             "tjanstledighet": {"start": None, "leave_until": date(2027, 3, 31)}}.get(event, {})
    return filled_form(KINDS[event], **{**dates, **values})


def order_mail(event: str, n: int = 1, **values) -> bytes:
    return make_mail(subject=SUBJECTS[event], body="Hej!\nBeställningen finns i bifogad blankett.\n",
                     message_id=f"<{event}-{n}@halmstad.example.test>",
                     attachments=[("blankett.xlsx", form_for(event, **values), XLSX)])


class Bot:
    """MittVaccin and audionom on one store; every part on one settable clock."""

    def __init__(self, config, clock: Clock):
        self.config = config
        self.store, self.routines = open_app(config)
        self.settings = Settings.from_config(config)
        self.clock = clock

    def poll(self):
        poller = make_poller(self.config, self.store, self.routines)
        poller.clock = self.clock
        return poller.poll_once()

    def desk(self) -> TicketDesk:
        return TicketDesk(self.store, self.routines, self.settings, clock=self.clock)

    def tasks(self) -> ChecklistDesk:
        return ChecklistDesk(self.store, self.routines, self.settings, clock=self.clock)

    def state(self, ref: str) -> dict[str, str]:
        return {t["task"]: t["state"] for t in self.tasks().tasks(ref)}

    def outbox(self, kind: str | None = None) -> list[dict]:
        rows = list(self.store.db.query("select * from outbox order by id"))
        return [r for r in rows if kind is None or r["kind"] == kind]

    def events(self, ref: str) -> list[dict]:
        t = self.store.ticket(ref)
        return [dict(e, data=json.loads(e["data"])) for e in self.store.events(t["id"])]

    def work_through(self, ref: str, user: str = "anna") -> list[str]:
        """Tick every open task in an order its dependencies allow; returns the order."""
        ticked: list[str] = []
        while True:
            ready = [t for t in self.tasks().tasks(ref) if t["state"] == "open" and not t["blocked_by"]]
            if not ready:
                return ticked
            self.tasks().act(ref, user, ready[0]["task"], "done")
            ticked.append(ready[0]["task"])


def local_bot(root: Path, **sections) -> Bot:
    desk = Desk(root, **{**BASE, **sections})
    return Bot(desk.config, Clock(MONDAY)), desk


@pytest.fixture
def bot(tmp_path):
    b, desk = local_bot(tmp_path)
    b.drop = desk.drop
    return b


def order(bot: Bot, event: str, n: int = 1, **values) -> str:
    bot.drop(order_mail(event, n, **values))
    bot.poll()
    return bot.store.tickets(routine="audionom")[-1]["ref"]


def assert_no_personal_data(text: str) -> None:
    for value in PERSONAL_VALUES:
        assert value not in text, value


# -- the four events, by mail on Dovecot, answered over SMTP -------------------------------------------------

EXPECTED = {
    "ny_anvandare": (["skat", "etjanstekort", "rsvpn", "forskrivarutbildning", "websesam", "auditbase", "priva"],
                     ["webpriva"]),
    "avsluta": (["rsvpn", "websesam", "auditbase", "priva", "skat", "etjanstekort"], ["webpriva"]),
    "byte_mottagning": (["skat", "websesam", "priva"], ["etjanstekort", "rsvpn", "auditbase"]),
    "tjanstledighet": (["skat", "rsvpn", "websesam", "auditbase"], ["etjanstekort", "priva"]),
}


@pytest.mark.imap
@pytest.mark.parametrize("event", list(SUBJECTS))
def test_each_event_end_to_end_by_mail(event, imap_account, smtp_server, tmp_path):
    config = config_mod.from_mapping({
        **BASE,
        "store": {"path": "intake.db"},
        "mailbox": {"kind": "imap", "host": imap_account.server.host, "port": imap_account.server.port,
                    "username": imap_account.username, "password": imap_account.password, "tls": "none",
                    "timeout": 5, "default_routine": "mittvaccin"},
        "outbox": {"kind": "smtp"},
        "smtp": {"host": smtp_server.host, "port": smtp_server.port, "tls": "none", "timeout": 5},
    }, base_dir=tmp_path)
    bot = Bot(config, Clock(MONDAY))
    imap_account.append(order_mail(event))
    assert bot.poll().recorded == 1
    assert imap_account.uids("INBOX") == [] and len(imap_account.uids("Intake/Accepted")) == 1
    [ticket] = bot.store.tickets(routine="audionom")
    ref = ticket["ref"]
    assert ref.startswith("AUD-2026-") and ticket["request_type"] == event

    applicable, not_applicable = EXPECTED[event]
    tasks = bot.tasks().tasks(ref)
    assert [t["task"] for t in tasks if t["state"] == "open"] == applicable
    assert [t["task"] for t in tasks if t["state"] == "not_applicable"] == not_applicable
    assert all(t["note"].startswith("Ingen åtgärd") for t in tasks if t["state"] == "not_applicable")

    # The receipt, over SMTP: the steps that will be done, titles only, and nothing personal.
    assert make_outbox(config, bot.store, bot.routines).send_due().sent == 1
    receipt = email.message_from_bytes(smtp_server.messages[0].data, policy=email.policy.default)
    body = receipt.get_body(("plain",)).get_content()
    assert receipt["Subject"] == f"SV: {SUBJECTS[event]} [{ref}]"
    titles = {t["task"]: t["title"] for t in tasks}
    for task in applicable:
        assert titles[task] in body
    for task in not_applicable:
        assert f". {titles[task]}\n" not in body
    assert_no_personal_data(body + receipt["Subject"])

    # Closing waits for the checklist; working through it in dependency order lets it close.
    with pytest.raises(Refused) as refused:
        bot.desk().mark_done(ref, "anna")
    assert refused.value.code == "gate.checklist_complete"
    if event == "ny_anvandare":
        bot.tasks().act(ref, "anna", "skat", "value", "RS123456")
    order_done = bot.work_through(ref)
    assert sorted(order_done) == sorted(applicable)
    if event == "avsluta":
        assert order_done.index("skat") > max(order_done.index(t) for t in ("rsvpn", "websesam", "auditbase",
                                                                             "priva"))
    t = bot.desk().mark_done(ref, "anna")
    assert t["status"] == "done" and t["closed_at"]

    # The completion mail lists what was done.
    assert make_outbox(config, bot.store, bot.routines).send_due().sent == 1
    done = email.message_from_bytes(smtp_server.messages[1].data, policy=email.policy.default)
    body = done.get_body(("plain",)).get_content()
    assert done["Subject"] == f"Utfört: {SUBJECTS[event]} [{ref}]"
    assert done["In-Reply-To"] == f"<{event}-1@halmstad.example.test>"
    assert "Det här har gjorts:" in body
    for task in applicable:
        assert f"- {titles[task]}" in body
    assert_no_personal_data(body)
    assert "RS123456" not in body  # a recorded value stays on the ticket

    if event == "tjanstledighet":  # the reminder before the leave ends is set (00:00 in Sweden, 5 days before)
        [timer] = bot.store.timers(t["id"])
        assert (timer["name"], timer["status"], timer["due_at"]) == ("leave_ends", "pending",
                                                                     "2027-03-25T23:00:00+00:00")


# -- conditions on the form --------------------------------------------------------------------------------------


def test_conditions_audionom_and_forskrivare_with_and_without_auditbase(bot):
    audionom = order(bot, "ny_anvandare", 1, yrke="Audionom", auditbase="Ja", utbildning="Ja")
    forskrivare = order(bot, "ny_anvandare", 2, yrke="Förskrivare", auditbase="Nej", webpriva="Ja")
    annan = order(bot, "ny_anvandare", 3, yrke="Annan", auditbase="Nej")

    a, f, o = bot.state(audionom), bot.state(forskrivare), bot.state(annan)
    assert (a["priva"], f["priva"], o["priva"]) == ("open", "not_applicable", "not_applicable")
    assert (a["auditbase"], f["auditbase"]) == ("open", "not_applicable")
    assert (a["webpriva"], f["webpriva"]) == ("not_applicable", "open")
    # Förskrivarutbildning: done according to the form (audionom), still to do (förskrivare), not asked (annan).
    assert (a["forskrivarutbildning"], f["forskrivarutbildning"], o["forskrivarutbildning"]) == (
        "not_applicable", "open", "not_applicable")
    notes = {t["task"]: t["note"] for t in bot.tasks().tasks(forskrivare)}
    assert notes["auditbase"] == "Ingen åtgärd: Auditbase behövs inte enligt blanketten."
    assert notes["priva"] == "Ingen åtgärd: gäller bara audionom."

    # WebSesam for a förskrivare waits for SKAT and the training; for the audionom only for SKAT.
    for ref in (audionom, forskrivare):
        bot.tasks().act(ref, "anna", "skat", "done")
    websesam = {t["task"]: t for t in bot.tasks().tasks(forskrivare)}["websesam"]
    assert websesam["blocked_by"] == ["Socialstyrelsens förskrivarutbildning genomförd (audionom och förskrivare)"]
    with pytest.raises(Refused) as refused:
        bot.tasks().act(forskrivare, "anna", "websesam", "done")
    assert refused.value.code == "checklist.blocked" and "förskrivarutbildning" in refused.value.sv
    assert bot.tasks().act(audionom, "anna", "websesam", "done")["state"] == "done"
    # The receipt of the förskrivare lists WebPriva and not Priva.
    acks = {r["subject"]: r["body"] for r in bot.outbox("ack")}
    body = next(b for s, b in acks.items() if forskrivare in s)
    assert "WebPriva läsbehörighet" in body and "Priva – vårdgivar-id" not in body


def test_skat_removal_waits_for_rsvpn_and_the_other_services(bot):
    ref = order(bot, "avsluta", 1, auditbase="Nej", webpriva="Nej")
    assert bot.state(ref)["auditbase"] == bot.state(ref)["webpriva"] == "not_applicable"
    desk = bot.tasks()
    for task in ("websesam", "priva"):
        desk.act(ref, "anna", task, "done")
    with pytest.raises(Refused) as refused:
        desk.act(ref, "anna", "skat", "done")
    assert refused.value.code == "checklist.blocked"
    assert refused.value.sv == "Uppgiften kan inte bockas av förrän det här är klart: RSVPN: avbeställ i Ritz."
    assert bot.state(ref)["skat"] == "open"
    desk.act(ref, "anna", "rsvpn", "value", "RITZ-778")
    desk.act(ref, "anna", "rsvpn", "done")
    # Auditbase and WebPriva do not apply: they hold nothing up.
    assert desk.act(ref, "anna", "skat", "done")["state"] == "done"
    # RSVPN cannot be unticked while SKAT, after it, is done; SKAT first, then RSVPN.
    with pytest.raises(Refused) as refused:
        desk.act(ref, "anna", "rsvpn", "undo")
    assert refused.value.code == "checklist.dependants_done"
    desk.act(ref, "anna", "skat", "undo")
    assert desk.act(ref, "anna", "rsvpn", "undo")["state"] == "open"
    # Each action is in the audit trail by task and action; the recorded value is not.
    trail = [e["data"] for e in bot.events(ref) if e["kind"] == "checklist_task"]
    assert trail == [{"task": "websesam", "action": "done"}, {"task": "priva", "action": "done"},
                     {"task": "rsvpn", "action": "value"}, {"task": "rsvpn", "action": "done"},
                     {"task": "skat", "action": "done"}, {"task": "skat", "action": "undo"},
                     {"task": "rsvpn", "action": "undo"}]
    assert "RITZ-778" not in json.dumps(bot.events(ref))
    with pytest.raises(Refused) as refused:
        desk.act(ref, "anna", "auditbase", "done")
    assert refused.value.code == "checklist.not_open"


def test_a_recorded_value_is_shown_by_later_tasks(bot):
    ref = order(bot, "ny_anvandare")
    bot.tasks().act(ref, "anna", "skat", "value", "RS 123 456")
    by_task = {t["task"]: t for t in bot.tasks().tasks(ref)}
    assert by_task["skat"]["value"] == "RS 123 456"
    assert by_task["rsvpn"]["shown"] == [("RSID", "RS 123 456")]
    with pytest.raises(Refused) as refused:
        bot.tasks().act(ref, "anna", "websesam", "value", "x")
    assert refused.value.code == "checklist.no_value"


# -- closing is refused with open tasks on every path ---------------------------------------------------------


def _conf(bot: Bot, tmp_path: Path) -> Path:
    conf = tmp_path / "cli.toml"
    conf.write_text("\n".join([
        "[store]", f'path = "{bot.config.db_path}"', "",
        "[routines]", 'enabled = ["mittvaccin", "audionom"]', "",
        "[mailbox]", 'default_routine = "mittvaccin"', "",
        "[replies]", f'from_address = "{FROM}"', "",
    ]) + "\n")
    return conf


def test_closing_is_refused_with_open_tasks_on_every_path(bot, tmp_path):
    from intake.cli import main
    from intake.web.accounts import add_user
    from intake.web.app import create_app
    from tests.intake.test_web import PASSWORD, csrf_of, login

    ref = order(bot, "byte_mottagning")
    desk = bot.desk()
    desk.take(ref, "anna")

    # The desk (status change and "mark done"), to both closed states.
    for status in ("done", "rejected"):
        with pytest.raises(Refused) as refused:
            desk.set_status(ref, "anna", status)
        assert refused.value.code == "gate.checklist_complete"
        assert refused.value.sv == "Checklistan har uppgifter kvar som inte är klara."

    # The CLI.
    conf = _conf(bot, tmp_path)
    for args in (["ticket", "status", ref, "done"], ["ticket", "done", ref]):
        result = CliRunner().invoke(main, ["-c", str(conf), *args, "--user", "anna"])
        assert result.exit_code == 1
        assert result.output.strip() == f"Error: {ref}: the checklist has open required tasks"

    # The web UI: the status form and the done form.
    web_config = config_mod.from_mapping({**BASE, "store": {"path": str(bot.config.db_path)},
                                          "web": {"secret_key": "test-secret-" + "x" * 32}}, base_dir=tmp_path)
    add_user(bot.store, "anna", PASSWORD)
    add_user(bot.store, "root", PASSWORD, role="admin")
    app = create_app(web_config)
    app.testing = True
    client = app.test_client()
    login(client)
    token = csrf_of(client.get(f"/tickets/{ref}").get_data(as_text=True))
    for action, data in (("status", {"status": "done"}), ("done", {"note": ""})):
        page = client.post(f"/tickets/{ref}/{action}", data={"csrf_token": token, **data},
                           follow_redirects=True).get_data(as_text=True)
        assert "Checklistan har uppgifter kvar som inte är klara." in page
    # A handler is offered no "close anyway" and may not post one.
    page = client.get(f"/tickets/{ref}").get_data(as_text=True)
    assert "Avsluta ändå" not in page
    assert client.post(f"/tickets/{ref}/close-anyway", data={"csrf_token": token, "status": "done",
                                                            "reason": "x"}).status_code == 403

    # A reply from the clinic while the ticket waits for it: back to work, not done.
    desk.set_status(ref, "anna", "waiting")
    bot.drop(make_mail(subject=f"SV: {SUBJECTS['byte_mottagning']} [{ref}]", body="Nu är allt klart hos oss.\n",
                       message_id="<reply-1@halmstad.example.test>"))
    bot.poll()
    assert bot.store.ticket(ref)["status"] == "in_progress"
    assert bot.outbox("completion") == []

    # Nothing closed it.
    assert bot.store.ticket(ref)["closed_at"] is None
    assert not [e for e in bot.events(ref) if e["kind"] == "status_changed" and e["data"]["to"] in ("done",
                                                                                                     "rejected")]

    # Once the checklist is complete, the clinic's reply closes it and the completion mail goes out.
    bot.work_through(ref)
    desk.set_status(ref, "anna", "waiting")
    bot.drop(make_mail(subject=f"SV: {SUBJECTS['byte_mottagning']} [{ref}]", body="Klart.\n",
                       message_id="<reply-2@halmstad.example.test>"))
    bot.poll()
    assert bot.store.ticket(ref)["status"] == "done"
    [completion] = bot.outbox("completion")
    assert "Det här har gjorts:" in completion["body"]


def test_an_admin_may_close_anyway_giving_why_on_the_web_and_the_cli(bot, tmp_path):
    from intake.cli import main
    from intake.web.accounts import add_user
    from intake.web.app import create_app
    from tests.intake.test_web import PASSWORD, csrf_of, login

    first, second = order(bot, "avsluta", 1), order(bot, "avsluta", 2)
    add_user(bot.store, "anna", PASSWORD)
    add_user(bot.store, "root", PASSWORD, role="admin")

    # CLI: --override needs an admin account.
    conf = _conf(bot, tmp_path)
    result = CliRunner().invoke(main, ["-c", str(conf), "ticket", "done", first, "--user", "anna",
                                       "--override", "Personen slutade innan allt beställts."])
    assert result.exit_code == 1 and "not an admin" in result.output
    result = CliRunner().invoke(main, ["-c", str(conf), "ticket", "done", first, "--user", "root",
                                       "--override", "Personen slutade innan allt beställts."])
    assert result.exit_code == 0, result.output
    t = bot.store.ticket(first)
    assert t["status"] == "done"
    [overridden] = [e for e in bot.events(first) if e["kind"] == "gate_overridden"]
    assert overridden["actor"] == "root" and overridden["data"]["gates"] == ["checklist_complete"]
    assert [n["text"] for n in bot.store.notes(t["id"])] == ["Personen slutade innan allt beställts."]

    # Web: the admin's button, with the reason.
    config = config_mod.from_mapping({**BASE, "store": {"path": str(bot.config.db_path)},
                                      "web": {"secret_key": "test-secret-" + "x" * 32}}, base_dir=tmp_path)
    app = create_app(config)
    app.testing = True
    client = app.test_client()
    login(client, name="root")
    page = client.get(f"/tickets/{second}").get_data(as_text=True)
    assert "Avsluta ändå" in page
    token = csrf_of(page)
    page = client.post(f"/tickets/{second}/close-anyway", data={"csrf_token": token, "status": "done", "reason": ""},
                       follow_redirects=True).get_data(as_text=True)
    assert "Skriv varför" in page and bot.store.ticket(second)["status"] == "new"
    client.post(f"/tickets/{second}/close-anyway",
                data={"csrf_token": token, "status": "done", "reason": "Dubbelbeställning."})
    t = bot.store.ticket(second)
    assert t["status"] == "done" and [n["text"] for n in bot.store.notes(t["id"])] == ["Dubbelbeställning."]


# -- the CLI and the web UI work the checklist -------------------------------------------------------------------


def test_cli_lists_ticks_and_records(bot, tmp_path):
    from intake.cli import main

    ref = order(bot, "avsluta")
    conf = _conf(bot, tmp_path)
    run = CliRunner()
    out = run.invoke(main, ["-c", str(conf), "ticket", "tasks", ref]).output
    assert "[ ] skat" in out and "väntar på: RSVPN: avbeställ i Ritz" in out and "[-] webpriva" in out
    result = run.invoke(main, ["-c", str(conf), "ticket", "task", ref, "skat", "done", "--user", "anna"])
    assert result.exit_code == 1 and "waits for RSVPN" in result.output
    result = run.invoke(main, ["-c", str(conf), "ticket", "task", ref, "rsvpn", "value", "RITZ-1", "--user", "anna"])
    assert result.exit_code == 0 and "value recorded" in result.output
    assert run.invoke(main, ["-c", str(conf), "ticket", "task", ref, "rsvpn", "done", "--user", "anna"]).exit_code == 0
    assert bot.state(ref)["rsvpn"] == "done"
    assert run.invoke(main, ["-c", str(conf), "ticket", "task", ref, "rsvpn", "undo"]).exit_code == 0
    assert bot.state(ref)["rsvpn"] == "open"
    listed = json.loads(run.invoke(main, ["-c", str(conf), "ticket", "tasks", ref, "--json"]).output)
    assert {t["task"]: t["value"] for t in listed}["rsvpn"] == "RITZ-1"


def test_web_ticks_and_shows_progress_in_the_list_and_open_tasks_per_role(bot, tmp_path):
    from intake.web.accounts import add_user
    from intake.web.app import create_app
    from tests.intake.test_web import PASSWORD, csrf_of, login

    ref = order(bot, "ny_anvandare")
    order(bot, "tjanstledighet", 2)
    config = config_mod.from_mapping({**BASE, "store": {"path": str(bot.config.db_path)},
                                      "web": {"secret_key": "test-secret-" + "x" * 32}}, base_dir=tmp_path)
    add_user(bot.store, "anna", PASSWORD)
    app = create_app(config)
    app.testing = True
    client = app.test_client()
    login(client)
    page = client.get(f"/tickets/{ref}").get_data(as_text=True)
    assert "Checklista (0/7)" in page and "Väntar på: Skånekatalogen (SKAT)" in page
    token = csrf_of(page)
    page = client.post(f"/tickets/{ref}/tasks/rsvpn/done", data={"csrf_token": token},
                       follow_redirects=True).get_data(as_text=True)
    assert "Uppgiften kan inte bockas av förrän det här är klart" in page
    client.post(f"/tickets/{ref}/tasks/skat/value", data={"csrf_token": token, "value": "RS999"})
    page = client.post(f"/tickets/{ref}/tasks/skat/done", data={"csrf_token": token},
                       follow_redirects=True).get_data(as_text=True)
    assert "Checklista (1/7)" in page and "RSID: <strong>RS999</strong>" in page
    assert bot.state(ref)["skat"] == "done"
    assert client.post(f"/tickets/{ref}/tasks/skat/done", data={"csrf_token": "forged"}).status_code in (400, 403)

    listing = client.get("/tickets").get_data(as_text=True)
    assert re.search(rf'{ref}</a>.*?<td class="num progress">1/7</td>', listing, re.S)
    overview = client.get("/overview").get_data(as_text=True)
    rows = dict(re.findall(r"<tr><td>([^<]+)</td><td class=\"num\">(\d+)</td>", overview))
    # Ny användare: 6 open (5 IT-kontaktperson, 1 Mottagningen); tjänstledighet: SKAT and 3 IT-kontaktperson.
    assert rows == {"IT-kontaktperson": "8", "Extern katalogadministratör": "1", "Mottagningen": "1"}


# -- a pack change leaves work in progress alone ---------------------------------------------------------------------


def test_a_pack_edit_after_creation_does_not_change_the_tickets_checklist(tmp_path):
    packs = tmp_path / "packs"
    shutil.copytree(ROOT / "rules" / "packs" / "audionom", packs / "audionom")
    b, desk = local_bot(tmp_path / "bot", routines={"enabled": ["mittvaccin", "audionom"],
                                                    "extra_dirs": [str(packs)]})
    b.drop = desk.drop
    ref = order(b, "byte_mottagning")
    before = b.tasks().tasks(ref)

    # The pack now has a new first step and another title for SKAT.
    path = packs / "audionom" / "checklists.toml"
    text = path.read_text("utf-8")
    text = text.replace('title = "Skånekatalogen (SKAT): flytta personposten', 'title = "SKAT (nytt): flytta')
    text = text.replace("# -- Byte mottagning", '[[checklists.byte_mottagning]]\nid = "ny"\ntitle = "Nytt steg"\n\n'
                        "# -- Byte mottagning")
    path.write_text(text, "utf-8")
    b2, desk2 = local_bot(tmp_path / "bot", routines={"enabled": ["mittvaccin", "audionom"],
                                                      "extra_dirs": [str(packs)]})
    b2.drop = desk2.drop
    assert b2.tasks().tasks(ref) == before
    new_ref = order(b2, "byte_mottagning", 2)
    fresh = b2.tasks().tasks(new_ref)
    assert [t["task"] for t in fresh][:2] == ["ny", "skat"] and fresh[1]["title"].startswith("SKAT (nytt)")
    assert [t["task"] for t in before][0] == "skat" and before[0]["title"].startswith("Skånekatalogen")
    # The old ticket closes on its own checklist.
    b2.work_through(ref)
    assert b2.desk().mark_done(ref, "anna")["status"] == "done"


# -- a long leave: the handler is reminded before it ends -------------------------------------------------------------


def test_before_a_long_leave_ends_the_ticket_returns_and_its_handler_is_mailed(bot, tmp_path):
    from intake.cli import main
    from intake.web.accounts import add_user
    from tests.intake.test_web import PASSWORD

    ref = order(bot, "tjanstledighet", leave_until=date(2027, 3, 31))
    add_user(bot.store, "anna", PASSWORD)
    result = CliRunner().invoke(main, ["-c", str(_conf(bot, tmp_path)), "user", "email", "anna",
                                       "anna.handlaggare@region.example.test"])
    assert result.exit_code == 0, result.output
    bot.desk().take(ref, "anna")
    bot.work_through(ref)
    bot.desk().mark_done(ref, "anna")

    engine = Engine(bot.store, bot.routines, bot.settings, clock=bot.clock)
    bot.clock.now = datetime(2027, 3, 25, 22, 0, tzinfo=UTC)  # 23:00 in Sweden, the day before the reminder
    assert engine.run_due_timers() == 0
    bot.clock.now = datetime(2027, 3, 26, 6, 0, tzinfo=UTC)
    assert engine.run_due_timers() == 1
    assert engine.run_due_timers() == 0
    t = bot.store.ticket(ref)
    assert (t["status"], t["closed_at"]) == ("leave_ending", None)  # back in the queue
    [reminder] = bot.outbox("leave_ending")
    assert reminder["to_addr"] == "anna.handlaggare@region.example.test"
    assert reminder["subject"] == f"Tjänstledigheten slutar snart: återställ behörigheter [{ref}]"
    assert_no_personal_data(reminder["body"])
    # The checklist was complete: the handler may close it again.
    assert bot.desk().set_status(ref, "anna", "done")["status"] == "done"


def test_a_leave_reminder_without_a_handler_address_is_recorded_not_sent(bot):
    ref = order(bot, "tjanstledighet")
    bot.clock.now = datetime(2027, 3, 27, 6, 0, tzinfo=UTC)
    assert Engine(bot.store, bot.routines, bot.settings, clock=bot.clock).run_due_timers() == 1
    assert bot.store.ticket(ref)["status"] == "new"  # not done yet: it stays, the reminder is an event
    [suppressed] = [e for e in bot.events(ref) if e["kind"] == "reply_suppressed"]
    assert suppressed["data"] == {"reason": "mail.no_recipient", "kind": "leave_ending", "to": "handler"}


def test_other_events_set_no_leave_timer(bot):
    for n, event in enumerate(("ny_anvandare", "avsluta", "byte_mottagning"), start=1):
        ref = order(bot, event, n)
        assert bot.store.timers(bot.store.ticket(ref)["id"]) == []


def test_the_purge_forgets_recorded_values(bot):
    from intake.retention import purge

    ref = order(bot, "avsluta")
    bot.tasks().act(ref, "anna", "rsvpn", "value", "RITZ-55")
    bot.desk().set_status(ref, "root", "done", role="admin", override="Test.")
    purge(bot.store, 0, now=datetime(2027, 1, 1, tzinfo=UTC))
    assert {t["task"]: t["value"] for t in bot.tasks().tasks(ref)}["rsvpn"] is None
    assert bot.state(ref)["rsvpn"] == "open"  # the checklist's shape and states stay, as the history does
