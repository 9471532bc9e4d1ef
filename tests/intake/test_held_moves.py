"""Judging held mail on the desk moves the mail on the server (real Dovecot): the web process records the
move, the next poll carries it out, so Intake/Held holds exactly the mail still waiting."""

from __future__ import annotations

import json

import pytest

from intake import config as config_mod
from intake.app import make_poller, open_app
from intake.desk import TicketDesk
from intake.pipeline import Settings
from tests.intake.imapdesk import env_for, write_config
from tests.mailmaker import make_mail

pytestmark = pytest.mark.imap

HELD_BODY = "Hej!\nGäller Test Testsson 19121212-1212 som inte kan logga in.\n"


def held_setup(tmp_path, account, *, action: str = "move"):
    conf = write_config(tmp_path, account)
    with conf.open("a") as fh:
        fh.write(f'[personal_data]\nreject_threshold = 0.99\n\n[mailbox.folders]\npersonal_data_action = "{action}"\n')
    config = config_mod.load(conf, env=env_for(account))
    store, routines = open_app(config)
    poller = make_poller(config, store, routines)
    desk = TicketDesk(store, routines, Settings.from_config(config), folders=config["mailbox.folders"])
    return config, store, poller, desk


def test_release_and_reject_move_the_held_mail_on_the_next_poll(imap_account, tmp_path):
    config, store, poller, desk = held_setup(tmp_path, imap_account)
    imap_account.append(make_mail(subject="MittVaccin – felsökning", body=HELD_BODY, message_id="<a@x.test>"))
    imap_account.append(make_mail(subject="MittVaccin – felsökning", body=HELD_BODY, message_id="<b@x.test>"))
    imap_account.append(make_mail(subject="MittVaccin – felsökning", body=HELD_BODY, message_id="<c@x.test>"))
    poller.poll_once()
    held = [m for m in store.messages(verdicts=("held",))]
    assert len(held) == 3 and len(imap_account.uids("Intake/Held")) == 3
    by_mid = {m["message_id"]: m["id"] for m in held}

    desk.release_held(by_mid["<a@x.test>"], "anna")
    desk.reject_held(by_mid["<b@x.test>"], "anna")
    # The web process has no mailbox session: nothing moved yet, two moves wait for the poller.
    assert len(imap_account.uids("Intake/Held")) == 3
    assert [(m["action"], m["to_folder"]) for m in store.pending_moves()] == [
        ("move", "Intake/Accepted"), ("move", "Intake/PersonalData")]

    poller.poll_once()
    assert len(imap_account.uids("Intake/Held")) == 1  # exactly the mail still waiting
    assert len(imap_account.uids("Intake/Accepted")) == 1
    assert len(imap_account.uids("Intake/PersonalData")) == 1
    assert store.pending_moves() == []
    moved = {r["message_id"]: r["moved_to"] for r in store.db.query("select message_id, moved_to from messages")}
    assert moved == {"<a@x.test>": "Intake/Accepted", "<b@x.test>": "Intake/PersonalData", "<c@x.test>": "Intake/Held"}
    [run, *_] = store.poll_runs()
    assert run["ok"] == 1


def test_a_rejected_held_mail_is_deleted_when_the_configuration_says_so(imap_account, tmp_path):
    config, store, poller, desk = held_setup(tmp_path, imap_account, action="delete")
    imap_account.append(make_mail(subject="MittVaccin – felsökning", body=HELD_BODY, message_id="<d@x.test>"))
    poller.poll_once()
    [msg] = store.messages(verdicts=("held",))
    desk.reject_held(msg["id"], "anna")
    poller.poll_once()
    assert imap_account.uids("Intake/Held") == []
    assert "Intake/PersonalData" not in imap_account.folders() or imap_account.uids("Intake/PersonalData") == []
    assert store.message(msg["id"])["moved_to"] == "(deleted)"


def test_the_held_page_shows_masked_findings_and_the_text_only_when_asked(imap_account, tmp_path):
    from intake.web.accounts import add_user
    from intake.web.app import create_app
    from tests.intake.test_web import PASSWORD, login

    config, store, poller, desk = held_setup(tmp_path, imap_account)
    imap_account.append(make_mail(subject="MittVaccin – felsökning", body=HELD_BODY, message_id="<e@x.test>"))
    poller.poll_once()
    [msg] = store.messages(verdicts=("held",))
    add_user(store, "anna", PASSWORD)
    app = create_app(config)
    client = app.test_client()
    login(client)
    listing = client.get("/mail?verdict=held").get_data(as_text=True)
    assert "…" not in listing and "ett personnummer på rad 2" in listing
    page = client.get(f"/mail/{msg['id']}").get_data(as_text=True)
    assert "19121212-****" in page and "Rad 2" in page and "Personnummer" in page
    assert "19121212-1212" not in page and "Testsson" not in page
    assert not list(store.db.query("select 1 from events where kind = 'viewed' and message_id = ?", [msg["id"]]))
    full = client.get(f"/mail/{msg['id']}?text=1").get_data(as_text=True)
    assert "19121212-1212" in full
    [seen] = store.db.query("select actor, data from events where kind = 'viewed' and message_id = ?", [msg["id"]])
    assert seen["actor"] == "anna" and json.loads(seen["data"])["what"] == "held_text"
