"""Approval end to end over real servers: the order and the answers arrive in a real Dovecot mailbox, the bot runs
as the real ``intake`` command, mail goes out through a real SMTP server (aiosmtpd); a SIGKILL between recording the
decision and mailing the orderer leaves exactly one mail."""

from __future__ import annotations

import email
import email.policy
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from intake import config as config_mod
from intake.app import open_app
from intake.engine import Engine
from intake.pipeline import Settings
from tests.intake.approvaldesk import ATTESTANT, ORDERER, PERSON, VMU_FIELDS, assert_no_person, filled_form
from tests.intake.imapdesk import run_intake
from tests.mailmaker import XLSX, make_mail

FROM = "bestallning@region.example.test"


def _config(tmp_path: Path, account, smtp_server) -> Path:
    path = tmp_path / "intake.toml"
    path.write_text("\n".join([
        "[store]", 'path = "intake.db"', "",
        "[mailbox]", 'kind = "imap"', f'host = "{account.server.host}"', f"port = {account.server.port}",
        f'username = "{account.username}"', 'tls = "none"', "timeout = 5", 'default_routine = "mittvaccin"', "",
        "[routines]", 'enabled = ["mittvaccin", "vmu"]', "",
        "[outbox]", 'kind = "smtp"', "",
        "[smtp]", f'host = "{smtp_server.host}"', f"port = {smtp_server.port}", 'tls = "none"', "timeout = 5", "",
        "[replies]", f'from_address = "{FROM}"', "max_age_days = 0", "",
        "[approvals]", 'link_base_url = "https://intake.example.test"', "",
    ]) + "\n")
    return path


def _received(smtp_server, to: str) -> list[email.message.EmailMessage]:
    return [email.message_from_bytes(m.data, policy=email.policy.default) for m in smtp_server.messages
            if to in m.rcpt_tos]


def _poll(conf: Path, account, fault: str | None = None):
    done = run_intake(conf, account, "poll", "--once", fault=fault)
    if fault is None:
        assert done.returncode == 0, done.stderr
    return done


def _reply(msg: email.message.EmailMessage, first_line: str, sender: str) -> bytes:
    body = msg.get_body(preferencelist=("plain",)).get_content()
    quoted = "\n".join("> " + line for line in body.splitlines())
    return make_mail(subject="SV: " + str(msg["Subject"]), sender=sender, to=FROM, body=f"{first_line}\n\n{quoted}\n",
                     headers={"In-Reply-To": msg["Message-ID"], "References": msg["Message-ID"]})


def test_vmu_order_approved_by_reply_over_dovecot_and_smtp_survives_a_kill(imap_account, smtp_server, tmp_path):
    start = date.today() + timedelta(days=7)
    conf = _config(tmp_path, imap_account, smtp_server)
    form = filled_form("vmu", "new", {**VMU_FIELDS, "startdatum": start}, PERSON, ("VoB SJF", "Statistik VE"))
    imap_account.append(make_mail(subject="Vårdmedarbetaruppdrag – Nyupplägg", sender=ORDERER, to=FROM,
                                  body="Hej!\nHär kommer en beställning.\n",
                                  attachments=[("bestallning.xlsx", form, XLSX)]))
    _poll(conf, imap_account)

    [ack] = _received(smtp_server, ORDERER)
    assert "[VMU3000001]" in ack["Subject"]
    [ask] = _received(smtp_server, ATTESTANT)
    body = ask.get_body(preferencelist=("plain",)).get_content()
    assert "VMU3000001" in body and "VoB SJF, Statistik VE" in body and start.isoformat() in body
    assert_no_person(str(ask["Subject"]) + body)
    assert [p.get_filename() for p in ask.iter_attachments()] == ["blankett.xlsx"]
    assert ask["Auto-Submitted"] == "auto-replied"

    # The answer arrives; the bot is killed after writing the decision, before the orderer's mail is queued.
    imap_account.append(_reply(ask, "Godkänn", ATTESTANT))
    killed = _poll(conf, imap_account, fault="approval-decided")
    assert killed.returncode == -9, killed.stderr
    _poll(conf, imap_account)
    _poll(conf, imap_account)  # nothing left to do: no second decision, no second mail
    told = [m for m in _received(smtp_server, ORDERER) if str(m["Subject"]).startswith("Attesterad")]
    assert len(told) == 1 and "[VMU3000001]" in told[0]["Subject"]
    assert imap_account.uids("INBOX") == []

    config = config_mod.load(conf)
    store, routines = open_app(config)
    t = store.ticket("VMU3000001")
    assert t["status"] == "waiting_for_start"
    decided = [json.loads(e["data"]) for e in store.events(t["id"]) if e["kind"] == "approval_decided"]
    assert decided == [{"approval": 1, "decision": "approve", "channel": "reply"}]

    # On the start date (a test clock) the scheduler releases it to the queue; a handler finishes it.
    on_the_day = datetime.combine(start, datetime.min.time(), tzinfo=UTC) + timedelta(hours=1)
    assert Engine(store, routines, Settings.from_config(config), clock=lambda: on_the_day).run_due_timers() >= 1
    assert store.ticket("VMU3000001")["status"] == "new"
    store.db.conn.close()
    for status in ("in_progress", "done"):
        done = run_intake(conf, imap_account, "ticket", "status", "VMU3000001", status, "--user", "anna")
        assert done.returncode == 0, done.stderr
    run_intake(conf, imap_account, "send")
    completion = [m for m in _received(smtp_server, ORDERER) if str(m["Subject"]).startswith("Utfört")]
    assert len(completion) == 1 and "[VMU3000001]" in completion[0]["Subject"]


def test_rejection_over_dovecot_reaches_the_orderer_with_the_reason(imap_account, smtp_server, tmp_path):
    start = date.today() + timedelta(days=3)
    conf = _config(tmp_path, imap_account, smtp_server)
    form = filled_form("vmu", "new", {**VMU_FIELDS, "startdatum": start}, PERSON, ("VoB SJF",))
    imap_account.append(make_mail(subject="Vårdmedarbetaruppdrag – Nyupplägg", sender=ORDERER, to=FROM,
                                  attachments=[("bestallning.xlsx", form, XLSX)]))
    _poll(conf, imap_account)
    [ask] = _received(smtp_server, ATTESTANT)
    imap_account.append(_reply(ask, "Avslå", ATTESTANT))  # no reason: told so, nothing changes
    _poll(conf, imap_account)
    [no_reason] = [m for m in _received(smtp_server, ATTESTANT) if "skäl" in str(m["Subject"])]
    assert no_reason["Auto-Submitted"] == "auto-replied"
    imap_account.append(_reply(ask, "Avslå: fel vårdenhet", ATTESTANT))
    _poll(conf, imap_account)
    [rejected] = [m for m in _received(smtp_server, ORDERER) if str(m["Subject"]).startswith("Avslagen")]
    assert "fel vårdenhet" in rejected.get_body(preferencelist=("plain",)).get_content()
