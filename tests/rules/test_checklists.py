"""Checklists as pack data (rules/checklists.py): what the loader refuses, conditions, dependencies."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from rules.checklists import (
    ChecklistError,
    applies,
    blocked_by,
    checklists_from_dict,
    instantiate,
    open_required,
    progress,
)
from rules.packs import PackError, load_pack
from tests.conftest import ROOT

PACK = ROOT / "rules" / "packs" / "audionom"
TYPES = ["ny_anvandare", "avsluta", "byte_mottagning", "tjanstledighet"]


@pytest.fixture(scope="module")
def routine():
    return load_pack(PACK)


def load(data: dict, routine) -> object:
    return checklists_from_dict(data, "checklists.toml", request_types=TYPES, form_schema=routine.form_schema,
                                scheduler_events={"leave_ending"})


@pytest.mark.parametrize("data, message", [
    ({"checklists": {"avsluta": [{"id": "a", "title": "A", "after": ["b"]},
                                 {"id": "b", "title": "B", "after": ["a"]}]}},
     "checklists.toml: checklists.avsluta[0].after: dependency cycle a -> b -> a"),
    ({"checklists": {"avsluta": [{"id": "a", "title": "A", "after": ["a"]}]}},
     "checklists.toml: checklists.avsluta[0].after: dependency cycle a -> a"),
    ({"checklists": {"avsluta": [{"id": "a", "title": "A", "when": {"field": "yrkesroll", "equals": "Audionom"}}]}},
     "checklists.toml: checklists.avsluta[0].when.field: 'yrkesroll' is not a field of the form"),
    ({"checklists": {"avsluta": [{"id": "a", "title": "A", "when": {"field": "yrke", "equals": "Tandläkare"}}]}},
     "checklists.toml: checklists.avsluta[0].when.equals: 'Tandläkare' is not a value of 'yrke'"),
    ({"checklists": {"avsluta": [{"id": "a", "title": "A", "unless": {"field": "auditbase", "equals": "Kanske"}}]}},
     "checklists.toml: checklists.avsluta[0].unless.equals: 'Kanske' is not Ja or Nej"),
    ({"checklists": {"avsluta": [{"id": "a", "title": "A", "after": ["skat"]}]}},
     "checklists.toml: checklists.avsluta[0].after: unknown task 'skat' in checklists.avsluta"),
    ({"checklists": {"avsluta": [{"id": "a", "same_as": "ny_anvandare.x"}]}},
     "checklists.toml: checklists.avsluta[0].same_as: no task 'ny_anvandare.x' (write <request type>.<task id>)"),
    ({"checklists": {"avsluta": [{"id": "a", "title": "A", "owner": "x"}]}},
     "checklists.toml: checklists.avsluta[0].owner: unknown key"),
    ({"checklists": {"flytt": [{"id": "a", "title": "A"}]}},
     "checklists.toml: checklists.flytt: not a request type of the pack (one of ny_anvandare, avsluta, "
     "byte_mottagning, tjanstledighet)"),
    ({"checklists": {"avsluta": [{"id": "a", "title": "A"}, {"id": "a", "title": "B"}]}},
     "checklists.toml: checklists.avsluta[1].id: 'a' is used twice in the checklist"),
    ({"checklists": {"avsluta": [{"id": "a"}]}}, "checklists.toml: checklists.avsluta[0].title: missing"),
    ({"checklists": {"avsluta": [{"id": "a", "title": "A", "shows": ["a"]}]}},
     "checklists.toml: checklists.avsluta[0].shows: 'a' is not a task of checklists.avsluta that records a value"),
    ({"checklists": {"avsluta": [{"id": "a", "title": "A"}]},
      "timers": [{"request_type": "avsluta", "name": "t", "event": "leave_ending", "at_field": "yrke"}]},
     "checklists.toml: timers[0].at_field: 'yrke' is not a date field of the form"),
    ({"checklists": {"avsluta": [{"id": "a", "title": "A"}]},
      "timers": [{"request_type": "avsluta", "name": "t", "event": "wake", "at_field": "slutdatum"}]},
     "checklists.toml: timers[0].event: no transition fires on 'wake' by the scheduler"),
    ({"checklist": {}}, "checklists.toml: checklist: unknown key"),
])
def test_the_loader_refuses_naming_file_and_key(data, message, routine):
    with pytest.raises(ChecklistError) as err:
        load(data, routine)
    assert str(err.value) == message


def test_same_as_reuses_a_task_and_own_keys_win(routine):
    lists = load({"checklists": {
        "avsluta": [{"id": "rsvpn", "title": "RSVPN: avbeställ", "actor": "IT-kontaktperson", "record": "Order",
                     "when": {"field": "yrke", "one_of": ["Audionom", "Förskrivare"]}}],
        "tjanstledighet": [{"id": "skat", "title": "SKAT"},
                           {"id": "vpn", "same_as": "avsluta.rsvpn", "after": ["skat"], "actor": "Mottagningen"}],
    }}, routine)
    vpn = lists.for_type("tjanstledighet")[1]
    assert (vpn.title, vpn.actor, vpn.record, vpn.after) == ("RSVPN: avbeställ", "Mottagningen", "Order", ("skat",))
    assert vpn.when.values == ("Audionom", "Förskrivare")


def test_the_audionom_checklists_as_the_routine_orders_them(routine):
    lists = routine.checklists
    assert set(lists.by_type) == set(TYPES)
    avsluta = {t.id: t for t in lists.for_type("avsluta")}
    assert set(avsluta["skat"].after) == {"rsvpn", "websesam", "auditbase", "priva", "webpriva"}
    leave = {t.id: t for t in lists.for_type("tjanstledighet")}
    assert leave["rsvpn"].title == avsluta["rsvpn"].title and leave["auditbase"].when == avsluta["auditbase"].when
    ny = {t.id: t for t in lists.for_type("ny_anvandare")}
    assert all("skat" in t.after for k, t in ny.items() if k not in ("skat", "forskrivarutbildning"))
    assert ny["skat"].record == "RSID" and ny["skat"].actor == "Extern katalogadministratör"
    assert "RSVPN – Externa vårdgivare – Audionom" in ny["rsvpn"].title


def test_conditions_and_blocking(routine):
    form = {"fields": {"yrke": "Förskrivare", "auditbase": False, "webpriva": True}, "users": [{"fornamn": "A"}]}
    rows = instantiate(routine.checklists.for_type("avsluta"), form, routine.form_schema)
    state = {r["task"]: r["state"] for r in rows}
    assert state == {"rsvpn": "open", "websesam": "open", "auditbase": "not_applicable", "priva": "not_applicable",
                     "webpriva": "open", "skat": "open", "etjanstekort": "open"}
    skat = next(r for r in rows if r["task"] == "skat")
    assert blocked_by(skat, rows) == ["rsvpn", "websesam", "webpriva"]
    for r in rows:
        if r["task"] in ("rsvpn", "websesam", "webpriva"):
            r["state"] = "done"
    assert blocked_by(skat, rows) == []
    assert [r["task"] for r in open_required(rows)] == ["skat", "etjanstekort"]
    assert str(progress(rows)) == "3/5"
    task = routine.checklists.for_type("ny_anvandare")[3]  # the training: audionom or förskrivare, unless done
    assert applies(task, {"fields": {"yrke": "förskrivare"}}, routine.form_schema)  # case and å/ä/ö folded
    assert not applies(task, {"fields": {"yrke": "Audionom", "forskrivarutbildning": True}}, routine.form_schema)
    assert not applies(task, {"fields": {"yrke": "Annan"}}, routine.form_schema)


def _broken_pack(tmp_path: Path, old: str, new: str, file: str = "checklists.toml") -> Path:
    folder = tmp_path / "audionom"
    shutil.copytree(PACK, folder)
    path = folder / file
    text = path.read_text("utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), "utf-8")
    return folder


def test_a_pack_with_a_cycle_or_an_unknown_field_is_refused_at_load(tmp_path):
    from intake.cli import main

    cyclic = _broken_pack(tmp_path / "a", 'after = ["rsvpn", "websesam", "auditbase", "priva", "webpriva"]',
                          'after = ["rsvpn", "websesam", "auditbase", "priva", "webpriva", "etjanstekort"]\n'
                          '[[checklists.avsluta]]\nid = "x"\ntitle = "X"\nafter = ["skat"]')
    text = (cyclic / "checklists.toml").read_text("utf-8")
    (cyclic / "checklists.toml").write_text(text.replace(
        'title = "E-tjänstekort: lämnas tillbaka', 'after = ["x"]\ntitle = "E-tjänstekort: lämnas tillbaka'), "utf-8")
    with pytest.raises(PackError, match=r"checklists.toml: checklists.avsluta\[5\].after: dependency cycle "
                                        r"skat -> etjanstekort -> x -> skat"):
        load_pack(cyclic)
    unknown = _broken_pack(tmp_path / "b", 'when = { field = "auditbase", equals = "Ja" }',
                           'when = { field = "audit_base", equals = "Ja" }')
    result = CliRunner().invoke(main, ["packs", "check", str(unknown)])
    assert result.exit_code == 1
    assert result.output.strip().endswith("checklists.toml: checklists.ny_anvandare[5].when.field: "
                                          "'audit_base' is not a field of the form")
    assert len(result.output.strip().splitlines()) == 1


def test_a_pack_with_checklists_must_start_them(tmp_path):
    folder = _broken_pack(tmp_path, 'on_enter = [{ effect = "start_checklist" }]', "", file="pack.toml")
    with pytest.raises(PackError, match="never runs the effect start_checklist"):
        load_pack(folder)


def test_the_committed_blank_forms_are_current(tmp_path, routine):
    from intake.blankforms import write_blank_forms
    from parsers.xlsx_form import xlsx_grids

    committed = ROOT / "fixtures" / "forms" / "audionom" / "blank"
    for fresh in write_blank_forms(routine.form_schema, routine.form_name, tmp_path):
        assert (committed / fresh.name).exists()
        if fresh.suffix == ".xlsx":
            def texts(p: Path) -> list[str]:
                return [c.text for g in xlsx_grids(p.read_bytes()) for row in g.rows for c in row if c.text]

            assert texts(committed / fresh.name) == texts(fresh), "regenerate: intake forms audionom --out " \
                                                                  "fixtures/forms/audionom/blank"
