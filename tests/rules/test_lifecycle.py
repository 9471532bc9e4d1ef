"""The lifecycle as data: the loader refuses what it does not know (naming file and key), and the one
pure step, ``advance``, decides transitions, roles, gates, overrides and effects."""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path

import pytest

from rules.lifecycle import Advance, Refusal, TicketFacts, advance
from rules.packs import PackError, load_pack, load_packs

ROOT = Path(__file__).resolve().parent.parent.parent
MITTVACCIN = ROOT / "rules" / "packs" / "mittvaccin"
TESTPACK = ROOT / "tests" / "packs" / "lifecycletest"

#: Today's transitions, as they were written in code before they became pack data.
OLD_TRANSITIONS = {
    "new": ("in_progress", "waiting", "done", "rejected"),
    "in_progress": ("new", "waiting", "done", "rejected"),
    "waiting": ("in_progress", "done", "rejected"),
    "done": ("in_progress",),
    "rejected": ("in_progress",),
}


@pytest.fixture(scope="module")
def mv():
    return load_pack(MITTVACCIN).lifecycle


@pytest.fixture(scope="module")
def lt():
    return load_pack(TESTPACK).lifecycle


def test_mittvaccin_declares_todays_lifecycle(mv):
    assert list(mv.states) == ["new", "in_progress", "waiting", "done", "rejected"]
    assert [s for s in mv.states if not mv.is_open(s)] == ["done", "rejected"]
    assert mv.initial == "new"
    for state, allowed in OLD_TRANSITIONS.items():
        assert sorted(mv.targets(state, "set_status", "handler")) == sorted(allowed), state
        for target in mv.states:
            step = advance(TicketFacts(state), "set_status", "handler", mv, target=target)
            assert isinstance(step, Advance) == (target in allowed), (state, target)


def test_done_queues_the_completion_mail_and_assign_starts_work(mv):
    step = advance(TicketFacts("waiting"), "set_status", "handler", mv, target="done")
    assert [(e.name, e.params.get("to"), e.params.get("template")) for e in step.effects] == [
        ("mail", "requester", "completion"), ("register", None, None)]
    for state, expected in (("new", "in_progress"), ("waiting", "in_progress")):
        assert advance(TicketFacts(state), "assign", "handler", mv).new_state == expected
    assert advance(TicketFacts("in_progress"), "assign", "handler", mv).code == "lifecycle.not_allowed"


def test_a_followup_reopens_only_a_closed_ticket_and_only_the_bot_fires_it(mv):
    assert advance(TicketFacts("done"), "followup", "bot", mv).new_state == "new"
    assert advance(TicketFacts("rejected"), "followup", "bot", mv).new_state == "new"
    assert advance(TicketFacts("in_progress"), "followup", "bot", mv).code == "lifecycle.not_allowed"
    refused = advance(TicketFacts("done"), "followup", "handler", mv)
    assert isinstance(refused, Refusal) and refused.code == "lifecycle.forbidden"


def test_refusals_have_stable_codes_and_both_languages(mv):
    unknown = advance(TicketFacts("new"), "set_status", "handler", mv, target="closed")
    assert unknown.code == "lifecycle.unknown_state" and "unknown status" in unknown.en
    assert "closed" in unknown.sv
    not_allowed = advance(TicketFacts("done"), "set_status", "handler", mv, target="waiting")
    assert not_allowed.code == "lifecycle.not_allowed"
    assert not_allowed.en == "cannot go from done to waiting (set_status)"
    assert "inte tillåten" in not_allowed.sv


def test_an_admin_may_do_what_a_handler_may(mv):
    assert advance(TicketFacts("new"), "set_status", "admin", mv, target="done").new_state == "done"
    assert advance(TicketFacts("new"), "set_status", "requester", mv, target="done").code == "lifecycle.forbidden"


def test_gate_refuses_and_an_admin_may_override_with_a_reason(lt):
    open_ticket = TicketFacts("in_progress", assignee=None)
    refused = advance(open_ticket, "set_status", "handler", lt, target="done")
    assert (refused.code, refused.data) == ("gate.assigned", {"gate": "assigned"})
    assert refused.sv == "Ärendet måste ha en handläggare först."
    # A handler cannot override, even with a reason; an admin cannot without one.
    assert advance(open_ticket, "set_status", "handler", lt, target="done", override="brådskar").code == "gate.assigned"
    assert advance(open_ticket, "set_status", "admin", lt, target="done").code == "gate.assigned"
    step = advance(open_ticket, "set_status", "admin", lt, target="done", override="brådskar")
    assert step.new_state == "done" and step.overridden == ("assigned",)
    assert advance(TicketFacts("in_progress", assignee="anna"), "set_status", "handler", lt,
                   target="done").overridden == ()


def test_entering_a_state_runs_its_effects_and_a_self_loop_only_the_transitions(lt):
    step = advance(TicketFacts("new"), "set_status", "handler", lt, target="waiting_for_third_party")
    assert [(e.name, e.params.get("to") or e.params.get("name")) for e in step.effects] == [
        ("mail", "field:bestallare_epost"), ("timer", "remind"), ("timer", "expire")]
    remind = advance(TicketFacts("waiting_for_third_party"), "remind", "scheduler", lt)
    assert not remind.changed
    assert [(e.name, e.params["template"]) for e in remind.effects] == [("mail", "third_party_reminder")]
    assert not lt.is_workable("waiting_for_third_party") and lt.is_workable("in_progress")


# -- the loader ---------------------------------------------------------------------------------------


def _pack_with(tmp_path: Path, edit) -> Path:
    folder = tmp_path / "lifecycletest"
    shutil.copytree(TESTPACK, folder)
    text = (folder / "pack.toml").read_text("utf-8")
    (folder / "pack.toml").write_text(edit(text), "utf-8")
    return folder


@pytest.mark.parametrize(("edit", "message"), [
    (lambda t: t.replace('initial = "new"', 'initial = "nowhere"'),
     "lifecycle.initial: unknown state 'nowhere'"),
    (lambda t: t.replace('from = "in_progress"\nto = "done"', 'from = "in_progress"\nto = "finished"'),
     "lifecycle.transitions[3].to: unknown state 'finished'"),
    (lambda t: t.replace('{ effect = "mail", to = "requester", template = "cancelled" }',
                         '{ effect = "fax", to = "requester" }'),
     "lifecycle.states.cancelled.on_enter[0].effect: unknown effect 'fax'"),
    (lambda t: t.replace('gate = "assigned"', 'gate = "signed"'),
     "lifecycle.transitions[3].gates[0].gate: unknown gate 'signed'"),
    (lambda t: t.replace('event = "expire"\nby = "scheduler"', 'event = "expire"\nby = "robot"'),
     "lifecycle.transitions[6].by: 'robot' is not a role"),
    (lambda t: t.replace('template = "cancelled"', 'template = "goodbye"'),
     "lifecycle.states.cancelled.on_enter[0].template: 'goodbye' is not in [templates]"),
    (lambda t: t.replace('to = "requester", template = "cancelled"', 'to = "field:nope", template = "cancelled"'),
     "lifecycle.states.cancelled.on_enter[0].to: 'field:nope': no form field 'nope'"),
    (lambda t: t.replace('to = "requester", template = "cancelled"', 'to = "party:attestant", template = "cancelled"'),
     "lifecycle.states.cancelled.on_enter[0].to: 'party:attestant': the form declares no parties"),
    (lambda t: t.replace('to = "requester", template = "cancelled"', 'to = "boss", template = "cancelled"'),
     "lifecycle.states.cancelled.on_enter[0].to: 'boss': not a recipient"),
    (lambda t: t.replace("after_working_days = 2", "after_working_days = 2, after_days = 1"),
     "on_enter[1].needs exactly one of"),
    (lambda t: t.replace('name = "remind", event = "remind"', 'name = "remind", event = "ring"'),
     "on_enter[1].event: no transition fires on 'ring' by the scheduler"),
    (lambda t: t.replace("after_days = 10 }", "after_days = 10, colour = 1 }"),
     "on_enter[2].colour: unknown key"),
    (lambda t: t.replace('label = "Makulerad"', 'label = "Makulerad"\ncolour = "red"'),
     "lifecycle.states.cancelled.colour: unknown key"),
    (lambda t: t.replace('[lifecycle]\ninitial = "new"', '[lifecycle]\ninitial = "new"\nfinal = "done"'),
     "lifecycle.final: unknown key"),
    (lambda t: t.replace('label = "Utförd"\nopen = false', 'label = "Utförd"\nopen = "nej"'),
     "lifecycle.states.done.open: expected true or false"),
])
def test_a_bad_lifecycle_is_refused_at_load_naming_file_and_key(tmp_path, edit, message):
    folder = _pack_with(tmp_path, edit)
    with pytest.raises(PackError) as exc:
        load_pack(folder)
    text = str(exc.value)
    assert text.startswith(str(folder / "pack.toml")), text
    assert message in text, text
    assert "\n" not in text


def test_a_pack_without_a_lifecycle_gets_the_common_default(tmp_path, mv):
    folder = _pack_with(tmp_path, lambda t: t[:t.index("[lifecycle]")])
    default = load_pack(folder).lifecycle
    assert default == mv  # the default is today's lifecycle, as MittVaccin declares it
    common = tomllib.loads((ROOT / "rules" / "packs" / "_common" / "lifecycle.toml").read_text("utf-8"))
    assert set(common) == {"lifecycle"}


def test_common_templates_are_shared_and_a_pack_may_override_one(tmp_path):
    folder = _pack_with(tmp_path, lambda t: t)
    routine = load_pack(folder)
    env = routine.template_env()
    assert "{{ ref }}" in env.loader.get_source(env, "completion.txt.j2")[0]  # from _common
    (folder / "templates" / "completion.txt.j2").write_text("Eget klarmeddelande {{ ref }}\n", "utf-8")
    env = load_pack(folder).template_env()
    assert env.get_template("completion.txt.j2").render(ref="LT-1") == "Eget klarmeddelande LT-1\n"


def test_common_is_not_a_pack():
    with pytest.raises(PackError, match="no such pack"):
        load_packs(["_common"])


def _release_lifecycle():
    """An approval-shaped lifecycle as data: approved orders start at once, or wait for their start date."""
    from rules.lifecycle import load_lifecycle

    table = {
        "initial": "waiting_for_approval",
        "states": {
            "waiting_for_approval": {"label": "Väntar på attest", "workable": False},
            "waiting_for_start": {"label": "Väntar på startdatum", "workable": False, "on_enter": [
                {"effect": "timer", "name": "release", "event": "release", "at_field": "datum"}]},
            "new": {"label": "Ny"},
        },
        "transitions": [
            {"from": "waiting_for_approval", "to": "new", "event": "approve", "by": "approver",
             "gates": [{"gate": "date_reached", "field": "datum"}]},
            {"from": "waiting_for_approval", "to": "waiting_for_start", "event": "approve", "by": "approver"},
            {"from": "waiting_for_start", "to": "new", "event": "release", "by": "scheduler"},
        ],
    }
    return load_lifecycle(table, "pack.toml", templates=set(), form_fields={"datum"})


@pytest.mark.parametrize(("datum", "expected"), [
    ("2026-11-24", "new"),  # today in Sweden (already 00:30 on the 24th there)
    ("2026-11-01", "new"),
    ("", "new"),  # no date: nothing to wait for
    ("2026-11-25", "waiting_for_start"),
])
def test_date_reached_sends_an_approved_order_to_work_or_to_wait_for_its_start_date(datum, expected):
    from datetime import UTC, datetime

    lc = _release_lifecycle()
    now = datetime(2026, 11, 23, 23, 30, tzinfo=UTC)
    step = advance(TicketFacts("waiting_for_approval", fields={"datum": datum}), "approve", "approver", lc, now)
    assert step.new_state == expected
    assert [e.name for e in step.effects] == (["timer"] if expected == "waiting_for_start" else [])
    assert advance(TicketFacts("waiting_for_approval"), "approve", "handler", lc, now).code == "lifecycle.forbidden"


def test_offset_days_belongs_to_at_field():
    from rules.lifecycle import LifecycleError, load_lifecycle

    table = {"initial": "a", "states": {"a": {"label": "A", "on_enter": [
        {"effect": "timer", "name": "t", "event": "e", "after_days": 1, "offset_days": -2}]}},
        "transitions": [{"from": "a", "to": "a", "event": "e", "by": "scheduler"}]}
    with pytest.raises(LifecycleError, match=r"on_enter\[0\]\.offset_days: only with at_field"):
        load_lifecycle(table, "pack.toml", templates=set(), form_fields={"datum"})
