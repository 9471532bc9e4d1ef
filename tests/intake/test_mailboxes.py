"""Several mailboxes without servers: the configuration, one poll over all, per-mailbox identity, desks in the
web UI (a handler limited to some desks sees only their tickets), and `intake status` / `intake user desks`."""

from __future__ import annotations

import email
import email.policy
import re

import pytest
from click.testing import CliRunner

from intake import config as config_mod
from intake.app import desks_of, make_poller, open_app
from intake.cli import main
from intake.config import ConfigError
from intake.web.accounts import add_user
from intake.web.app import create_app
from tests.mailmaker import make_mail

PASSWORD = "korrekt-hast-batteri"

TWO = """
[store]
path = "intake.db"

[outbox]
dir = "outbox"

[replies]
from_address = "default@region.example.test"

[web]
secret_key = "test-secret-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"

[[mailboxes]]
name = "halland"
kind = "local"
path = "halland"
from_address = "vaccin@halland.example.test"
from_name = "Läkemedelssupporten Halland"

[[mailboxes]]
name = "vgr"
kind = "local"
path = "vgr"
from_address = "support@vgr.example.test"
from_name = "IT-support VGR"
desk_name = "IT-supporten, Västra Götalandsregionen"
default_routine = "mittvaccin"
routines = ["mittvaccin"]
idle = false

[mailboxes.folders]
accepted = "Klart"
"""


@pytest.fixture
def two(tmp_path):
    conf = tmp_path / "intake.toml"
    conf.write_text(TWO)
    for name, sender in (("halland", "anna@halmstad.example.test"), ("vgr", "bo@boras.example.test")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "a.eml").write_bytes(make_mail(message_id=f"<{name}-1@example.test>",
                                                          sender=f"X <{sender}>"))
    return conf


def test_two_mailboxes_are_polled_into_one_store_each_answering_as_itself(two, tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, ["-c", str(two), "poll", "--once"])
    assert result.exit_code == 0, result.output
    assert "2 recorded" in result.output
    sent = {m["To"]: m for m in (email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
                                 for p in (tmp_path / "outbox").glob("*.eml"))}
    halland, vgr = sent["anna@halmstad.example.test"], sent["bo@boras.example.test"]
    assert str(halland["From"]) == "Läkemedelssupporten Halland <vaccin@halland.example.test>"
    assert str(vgr["From"]) == "IT-support VGR <support@vgr.example.test>"
    assert "IT-supporten, Västra Götalandsregionen" in vgr.get_content()
    assert "Läkemedelssupporten, Region Halland" in halland.get_content()  # the pack's desk name
    assert "Västra Götaland" not in halland.get_content()
    # Per-mailbox folders: the accepted mail of "vgr" went to its own folder name.
    moved = {p.relative_to(tmp_path).parent.as_posix() for p in tmp_path.rglob("a.eml")}
    assert moved == {"halland/Intake/Accepted", "vgr/Klart"}


def test_one_mailbox_config_keeps_working_and_both_spellings_are_not_mixed():
    single = config_mod.from_mapping({"mailbox": {"kind": "local", "path": "box"}})
    assert [m.name for m in single.mailboxes] == ["default"]
    with pytest.raises(ConfigError, match="either"):
        config_mod.from_mapping({"mailbox": {}, "mailboxes": [{"name": "a"}]})


@pytest.mark.parametrize(("entries", "message"), [
    ([{"kind": "local"}], r"mailboxes\[0\].name: missing"),
    ([{"name": "a", "path": "x"}, {"name": "a", "path": "y"}], "used by another mailbox"),
    ([{"name": "a", "path": "x"}, {"name": "b", "path": "x"}], "configured twice"),
    ([{"name": "a", "routines": ["nosuch"]}], "not in routines.enabled"),
    ([{"name": "a", "default_routine": "nosuch"}], "not a routine it serves"),
    ([{"name": "a", "kind": "imap", "host": "h"}], r"mailboxes\[0\].username: missing"),
    ([{"name": "a", "idle_refresh_seconds": 1800}], "idle_refresh_seconds: must be between"),
    ([{"name": "a", "nosuch": 1}], r"mailboxes\[0\].nosuch: unknown key"),
    ([{"name": "a", "folders": {"nosuch": "x"}}], "unknown key"),
    ([{"name": "a", "from_address": "nobody"}], "not an email address"),
])
def test_bad_mailbox_lists_are_refused_with_one_line(entries, message):
    with pytest.raises(ConfigError, match=message):
        config_mod.from_mapping({"mailboxes": entries})


def _login(client, name):
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").get_data(as_text=True)).group(1)
    assert client.post("/login", data={"username": name, "password": PASSWORD, "csrf_token": token}).status_code == 302


def test_a_handler_limited_to_a_desk_sees_only_its_tickets(two, tmp_path):
    config = config_mod.load(two)
    store, routines = open_app(config)
    make_poller(config, store, routines).poll_once()
    refs = {r["requester"]: r["ref"] for r in store.db.query("select ref, requester from tickets")}
    add_user(store, "anna", PASSWORD)
    add_user(store, "admin", PASSWORD, role="admin")
    runner = CliRunner()
    assert runner.invoke(main, ["-c", str(two), "user", "desks", "anna", "vgr"]).exit_code == 0
    refused = runner.invoke(main, ["-c", str(two), "user", "desks", "anna", "nosuch"])
    assert refused.exit_code == 1 and "no mailbox named 'nosuch'" in refused.output
    app = create_app(config)
    app.testing = True

    anna = app.test_client()
    _login(anna, "anna")
    listed = anna.get("/tickets").get_data(as_text=True)
    assert refs["bo@boras.example.test"] in listed and refs["anna@halmstad.example.test"] not in listed
    assert anna.get(f"/tickets/{refs['anna@halmstad.example.test']}").status_code == 404
    assert anna.get(f"/tickets/{refs['bo@boras.example.test']}").status_code == 200
    queues = anna.get("/").get_data(as_text=True)
    assert "IT-supporten, Västra Götalandsregionen" in queues and "Region Halland" not in queues

    admin = app.test_client()
    _login(admin, "admin")
    listed = admin.get("/tickets").get_data(as_text=True)
    assert all(ref in listed for ref in refs.values())
    queues = admin.get("/").get_data(as_text=True)
    assert "IT-supporten, Västra Götalandsregionen" in queues and "Läkemedelssupporten, Region Halland" in queues
    only_vgr = admin.get("/tickets?desk=vgr").get_data(as_text=True)
    assert refs["anna@halmstad.example.test"] not in only_vgr and refs["bo@boras.example.test"] in only_vgr


def test_status_lists_every_configured_mailbox(two):
    config = config_mod.load(two)
    assert [d.name for d in desks_of(config, open_app(config)[1])] == ["halland", "vgr"]
    shown = CliRunner().invoke(main, ["-c", str(two), "status"])
    assert shown.exit_code == 0, shown.output
    # One line per mailbox first; the health view (logins, outbox, parked mail, moves) follows.
    lines = shown.output.splitlines()
    assert [line.split()[:2] for line in lines[:2]] == [["halland", "unknown"], ["vgr", "unknown"]]
    assert lines[2].startswith("mailbox:") and any(line.startswith("outbox:") for line in lines)


def test_the_readme_example_of_two_mailboxes_is_a_valid_configuration():
    import tomllib
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text("utf-8")
    section = readme.split("### Several mailboxes and IDLE", 1)[1]
    example = section.split("```toml", 1)[1].split("```", 1)[0]
    env = {"INTAKE_IMAP_PASSWORD_HALLAND": "x", "INTAKE_IMAP_PASSWORD_VGR": "y"}
    config = config_mod.from_mapping(tomllib.loads(example), env=env)
    halland, vgr = config.mailboxes
    assert (halland.name, vgr.name) == ("halland", "vgr")
    assert vgr["idle"] is False and halland["idle"] is True
    assert vgr.folders["accepted"] == "Behandlat/Godkänt"
    assert halland.folders["accepted"] == "Intake/Accepted"


def test_a_handlers_completion_mail_is_sent_from_the_desk_of_its_ticket(two, tmp_path):
    runner = CliRunner()
    assert runner.invoke(main, ["-c", str(two), "poll", "--once"]).exit_code == 0
    config = config_mod.load(two)
    store, _ = open_app(config)
    [ref] = [r["ref"] for r in store.db.query("select ref from tickets where requester = 'bo@boras.example.test'")]
    done = runner.invoke(main, ["-c", str(two), "ticket", "done", ref, "--user", "anna"])
    assert done.exit_code == 0, done.output
    assert runner.invoke(main, ["-c", str(two), "send"]).exit_code == 0
    mails = [email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
             for p in (tmp_path / "outbox").glob("*.eml")]
    [completion] = [m for m in mails if "Auto-Submitted" not in m]
    assert str(completion["From"]) == "IT-support VGR <support@vgr.example.test>"


def test_held_mail_judged_on_the_desk_goes_to_the_folders_of_the_mailbox_it_came_in_through(two):
    from intake.app import folders_by_source
    from intake.desk import TicketDesk
    from intake.moves import request_held_move
    from intake.pipeline import Settings

    config = config_mod.load(two)
    store, routines = open_app(config)
    halland, vgr = desks_of(config, routines)
    held = TicketDesk(store, routines, Settings.from_config(config), folders=config["mailbox.folders"],
                      source_folders=folders_by_source(config))._held()
    for desk, target in ((vgr, "Klart"), (halland, "Intake/Accepted")):
        pk = store.db["messages"].insert({"source": desk.source, "uid": "7", "uidvalidity": 1,
                                          "message_key": f"mid:<held-{desk.name}@example.test>",
                                          "moved_to": "Intake/Held", "verdict": "held",
                                          "recorded_at": "2026-11-30T06:00:00+00:00"}).last_pk
        msg = store.message(pk)
        with store.transaction():
            move = request_held_move(store, msg, held._folders(msg), personal_data=False, user="anna")
        assert [m["to_folder"] for m in store.pending_moves(desk.source) if m["id"] == move] == [target]


def test_a_handler_limited_to_a_desk_sees_only_its_mail_in_the_mail_list(two, tmp_path):
    for name, sender in (("halland", "cia@halmstad.example.test"), ("vgr", "dan@boras.example.test")):
        (tmp_path / name / "b.eml").write_bytes(make_mail(message_id=f"<{name}-odd@example.test>",
                                                          sender=f"X <{sender}>", subject="Fråga om något annat"))
    config = config_mod.load(two)
    store, routines = open_app(config)
    make_poller(config, store, routines).poll_once()
    rows = store.db.query("select id, sender from messages where verdict = 'rejected'")
    rejected = {r["sender"]: r["id"] for r in rows}
    assert len(rejected) == 2, rejected
    halland_pk = next(pk for sender, pk in rejected.items() if "halmstad" in sender)
    add_user(store, "anna", PASSWORD)
    add_user(store, "admin", PASSWORD, role="admin")
    assert CliRunner().invoke(main, ["-c", str(two), "user", "desks", "anna", "vgr"]).exit_code == 0
    app = create_app(config)
    app.testing = True
    anna, admin = app.test_client(), app.test_client()
    _login(anna, "anna")
    _login(admin, "admin")
    listed = anna.get("/mail").get_data(as_text=True)
    assert "dan@boras.example.test" in listed and "cia@halmstad.example.test" not in listed
    assert anna.get(f"/mail/{halland_pk}").status_code == 404
    everything = admin.get("/mail").get_data(as_text=True)
    assert "dan@boras.example.test" in everything and "cia@halmstad.example.test" in everything
    assert admin.get(f"/mail/{halland_pk}").status_code == 200


def test_a_handler_limited_to_a_desk_cannot_tick_tasks_on_another_desks_ticket(two):
    config = config_mod.load(two)
    store, routines = open_app(config)
    make_poller(config, store, routines).poll_once()
    refs = {r["requester"]: r["ref"] for r in store.db.query("select ref, requester from tickets")}
    add_user(store, "anna", PASSWORD)
    assert CliRunner().invoke(main, ["-c", str(two), "user", "desks", "anna", "vgr"]).exit_code == 0
    app = create_app(config)
    app.testing = True
    anna = app.test_client()
    _login(anna, "anna")
    page = anna.get(f"/tickets/{refs['bo@boras.example.test']}").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    other = anna.post(f"/tickets/{refs['anna@halmstad.example.test']}/tasks/skat/done", data={"csrf_token": token})
    assert other.status_code == 404
    own = anna.post(f"/tickets/{refs['bo@boras.example.test']}/tasks/skat/done", data={"csrf_token": token})
    assert own.status_code == 302  # refused as a task the ticket does not have, on the ticket's page
