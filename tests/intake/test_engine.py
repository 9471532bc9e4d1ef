"""The lifecycle engine on MittVaccin and on a pack that registers a gate and an effect of its own."""

from __future__ import annotations

import json
import shutil
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from intake import engine as engine_mod
from intake.desk import Refused, TicketDesk
from intake.pipeline import Settings
from rules import lifecycle
from rules.packs import load_pack
from tests.intake.test_poller import Desk
from tests.mailmaker import make_mail

ROOT = Path(__file__).resolve().parent.parent.parent


FRIDAY = datetime(2026, 11, 27, 15, 0, tzinfo=UTC)


@pytest.mark.parametrize(("params", "form", "due"), [
    ({"after_days": 3}, {}, datetime(2026, 11, 30, 15, 0, tzinfo=UTC)),
    ({"after_hours": 1.5}, {}, datetime(2026, 11, 27, 16, 30, tzinfo=UTC)),
    ({"after_working_days": 1}, {}, datetime(2026, 11, 30, 15, 0, tzinfo=UTC)),  # Friday -> Monday
    ({"after_working_days": 3}, {}, datetime(2026, 12, 2, 15, 0, tzinfo=UTC)),
    # A start date means that day from midnight in Sweden (23:00 UTC the day before, in winter).
    ({"at_field": "datum"}, {"datum": "2026-12-07"}, datetime(2026, 12, 6, 23, 0, tzinfo=UTC)),
    ({"at_field": "datum", "offset_days": -3}, {"datum": "2026-12-07"}, datetime(2026, 12, 3, 23, 0, tzinfo=UTC)),
    ({"at_field": "datum"}, {"datum": "snart"}, FRIDAY),  # no date: at once
    ({"at_field": "datum"}, {}, FRIDAY),
])
def test_when_a_timer_is_due(params, form, due):
    ticket = {"form": json.dumps({"fields": form})}
    assert engine_mod.timer_due(params, ticket, FRIDAY) == due


def test_a_followup_reopens_a_closed_mittvaccin_ticket_to_new(tmp_path):
    desk = Desk(tmp_path)
    desk.drop(make_mail(subject="MittVaccin – användarstöd", message_id="<q1@halmstad.example.test>"))
    desk.poll()
    [ticket] = desk.store.tickets()
    handler = TicketDesk(desk.store, desk.routines, Settings.from_config(desk.config))
    handler.mark_done(ticket["ref"], "anna")
    assert desk.store.ticket(ticket["ref"])["closed_at"] is not None
    desk.drop(make_mail(subject=f"SV: MittVaccin – användarstöd [{ticket['ref']}]", body="Det hjälpte inte.\n",
                        message_id="<q2@halmstad.example.test>", headers={"In-Reply-To": "<q1@halmstad.example.test>"}))
    desk.poll()
    t = desk.store.ticket(ticket["ref"])
    assert (t["status"], t["closed_at"]) == ("new", None)
    changes = [json.loads(e["data"]) for e in desk.store.events(t["id"]) if e["kind"] == "status_changed"]
    assert changes == [{"from": "new", "to": "done"}, {"from": "done", "to": "new", "why": "follow-up"}]


def test_the_receipt_is_rendered_once_with_the_real_reference(tmp_path):
    desk = Desk(tmp_path)
    desk.drop(make_mail(subject="MittVaccin – felsökning"))
    desk.poll()
    [row] = list(desk.store.db.query("select * from outbox"))
    [ticket] = desk.store.tickets()
    assert ticket["ref"] in row["subject"] and ticket["ref"] in row["body"]
    assert "ÅÅÅÅ" not in row["subject"] + row["body"]  # never the preview's placeholder


def test_releasing_held_mail_judges_it_before_taking_the_write_lock(tmp_path, monkeypatch):
    desk = Desk(tmp_path, personal_data={"reject_threshold": 0.99})
    desk.drop(make_mail(subject="MittVaccin – felsökning", body="Hej!\nGäller 19121212-1212 som inte kan logga in.\n"))
    desk.poll()
    [msg] = desk.messages()
    assert msg["verdict"] == "held"

    import intake.pipeline

    real_decide = intake.pipeline.decide
    writes_while_deciding = []

    def decide_and_try_to_write(*args, **kwargs):
        # Another writer (the poller) must be able to write while the mail is judged.
        other = sqlite3.connect(desk.config.db_path, timeout=0)
        try:
            other.execute("BEGIN IMMEDIATE")
            other.execute("ROLLBACK")
            writes_while_deciding.append(True)
        except sqlite3.OperationalError:
            writes_while_deciding.append(False)
        finally:
            other.close()
        return real_decide(*args, **kwargs)

    monkeypatch.setattr(intake.pipeline, "decide", decide_and_try_to_write)
    ref = TicketDesk(desk.store, desk.routines, Settings.from_config(desk.config)).release_held(msg["id"], "anna")
    assert writes_while_deciding == [True]
    assert desk.store.ticket(ref)["status"] == "new"


# -- extending the engine: a gate and an effect registered by name, used by pack data ----------------------


@pytest.fixture
def extension():
    """A gate reading a fact the engine loads, and an effect that writes an event: registered, then removed."""
    lifecycle.register_gate(lifecycle.GateSpec(
        "no_open_notes_test", "no note says OPEN", lambda facts, _p: facts.extra["open_notes"] == 0,
        sv="Det finns öppna punkter.", en="open items remain"))
    lifecycle.register_effect(lifecycle.EffectSpec("stamp_test", "write a stamp event", required={"word": str}))

    @engine_mod.fact("open_notes")
    def open_notes(store, ticket):
        return sum(1 for n in store.notes(ticket["id"]) if (n["text"] or "").startswith("OPEN"))

    @engine_mod.executor("stamp_test")
    def stamp(ctx, params):
        ctx.engine.store.add_event("stamped", actor=ctx.actor, ticket_id=ctx.ticket["id"],
                                   data={"word": params["word"], "mails_before": ctx.shared.get("mails", [])})
        ctx.shared["mail_context"] = {"note": f"Stämpel: {params['word']}"}  # seen by the mails after it

    yield
    lifecycle.GATES.pop("no_open_notes_test")
    lifecycle.EFFECTS.pop("stamp_test")
    engine_mod.FACTS.pop("open_notes")
    engine_mod.EXECUTORS.pop("stamp_test")


def test_a_registered_gate_and_effect_are_pack_data_and_hold_on_the_desk(tmp_path, extension):
    folder = tmp_path / "packs" / "lifecycletest"
    shutil.copytree(ROOT / "tests" / "packs" / "lifecycletest", folder)
    text = (folder / "pack.toml").read_text("utf-8")
    text = text.replace('gates = [{ gate = "assigned", override_by = ["admin"] }]',
                        'gates = ["no_open_notes_test"]\neffects = [{ effect = "stamp_test", word = "klar" }]')
    (folder / "pack.toml").write_text(text, "utf-8")
    assert load_pack(folder).lifecycle.transitions[3].gates[0].name == "no_open_notes_test"

    desk = Desk(tmp_path / "bot", routines={"enabled": ["lifecycletest"], "extra_dirs": [str(tmp_path / "packs")]})
    desk.drop(make_mail(subject="Testrutin – Fråga"))
    desk.poll()
    [ticket] = desk.store.tickets()
    ref = ticket["ref"]
    handler = TicketDesk(desk.store, desk.routines, Settings.from_config(desk.config))
    handler.set_status(ref, "anna", "in_progress")
    handler.add_note(ref, "anna", "OPEN: kontrollera enheten")
    with pytest.raises(Refused) as refused:
        handler.set_status(ref, "anna", "done")
    assert (refused.value.code, refused.value.sv) == ("gate.no_open_notes_test", "Det finns öppna punkter.")
    assert desk.store.ticket(ref)["status"] == "in_progress"
    with desk.store.transaction():
        desk.store.db.execute("update notes set text = 'klart' where ticket_id = ?", [ticket["id"]])
    assert handler.set_status(ref, "anna", "done")["status"] == "done"
    stamped = [json.loads(e["data"]) for e in desk.store.events(ticket["id"]) if e["kind"] == "stamped"]
    assert stamped == [{"word": "klar", "mails_before": []}]
    # The transition's effects run before the state's: the completion mail saw what the stamp shared.
    [completion] = [r["body"] for r in desk.store.db.query("select body from outbox where kind = 'completion'")]
    assert "Stämpel: klar" in completion


def test_a_refused_reopen_still_attaches_the_followup(tmp_path):
    folder = tmp_path / "packs" / "lifecycletest"
    shutil.copytree(ROOT / "tests" / "packs" / "lifecycletest", folder)
    text = (folder / "pack.toml").read_text("utf-8")
    text = text.replace('event = "followup"\nby = "bot"', 'event = "followup"\nby = "handler"')
    (folder / "pack.toml").write_text(text, "utf-8")
    desk = Desk(tmp_path / "bot", routines={"enabled": ["lifecycletest"], "extra_dirs": [str(tmp_path / "packs")]})
    desk.drop(make_mail(subject="Testrutin – Fråga", message_id="<f1@halmstad.example.test>"))
    desk.poll()
    [ticket] = desk.store.tickets()
    TicketDesk(desk.store, desk.routines, Settings.from_config(desk.config)).set_status(ticket["ref"], "anna",
                                                                                         "cancelled")
    desk.drop(make_mail(subject=f"SV: Testrutin – Fråga [{ticket['ref']}]", body="En sak till.\n",
                        message_id="<f2@halmstad.example.test>"))
    desk.poll()
    t = desk.store.ticket(ticket["ref"])
    assert t["status"] == "cancelled"
    [followup] = [m for m in desk.messages() if m["message_id"] == "<f2@halmstad.example.test>"]
    assert (followup["verdict"], followup["ticket_id"]) == ("accepted", t["id"])
    kinds = [(e["kind"], json.loads(e["data"]).get("code")) for e in desk.store.events(t["id"])][-2:]
    assert kinds == [("transition_refused", "lifecycle.forbidden"), ("followup", None)]
