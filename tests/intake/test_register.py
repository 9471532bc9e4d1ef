"""The access register end to end: real mail on a local Maildir, the real poller and parsers, tickets closed
by a handler, the register fed, looked at (audited), exported, purged, and a database file without clear
identifiers."""

from __future__ import annotations

import json
import os
import stat
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from io import BytesIO

import openpyxl
import pytest

from intake.register import (
    RegisterError,
    RegisterFilters,
    add_manual,
    apply_done_ticket,
    correct_entry,
    end_entry,
    export_entries,
    find_person,
    followup,
    init_key,
    list_entries,
    open_keys,
    person_view,
    purge_register,
)
from intake.tickets import purge
from tests.intake.registerdesk import HSA, UNIT, RegisterDesk, person

TODAY = date.today()
START = TODAY + timedelta(days=1)
NEW = "MittVaccin – Behörighet"
END = "MittVaccin – Behörighet avslut"


@pytest.fixture
def desk(tmp_path):
    return RegisterDesk(tmp_path)


@pytest.fixture
def granted(desk):
    """Three persons granted MittVaccin by one done new-access ticket."""
    ref = desk.order(NEW, "new", [
        person("19121212-1212", "Tolvan", "Vaccinatör", start=START, n=1),
        person("19870521-2382", "Anna", "Administratör", start=START, n=2),
        person(HSA, "Skott", "Läsbehörighet", start=START, end=TODAY + timedelta(days=20), n=3),
    ])
    ids = desk.done(ref)
    return ref, ids


def entries(desk, today=None, **filters):
    return list_entries(desk.store, desk.keys, RegisterFilters(**filters), "test", today=today)


def events(desk, kind):
    return [dict(e, data=json.loads(e["data"])) for e in desk.store.db.query(
        "select * from events where kind = ? order by id", [kind])]


def test_a_done_new_access_ticket_grants_one_entry_per_person_from_the_start_date(desk, granted):
    ref, ids = granted
    assert len(ids) == 3
    rows = entries(desk, system="MittVaccin")
    assert sorted((r["person"], r["name"], r["role"], r["valid_from"], r["state"]) for r in rows) == sorted([
        ("19121212-1212", "Tolvan Testperson1", "Vaccinatör", START.isoformat(), "active"),
        ("19870521-2382", "Anna Testperson2", "Administratör", START.isoformat(), "active"),
        (HSA, "Skott Testperson3", "Läsbehörighet", START.isoformat(), "active"),
    ])
    r = rows[0]
    assert (r["unit"], r["municipality"], r["orderer_name"], r["orderer_email"]) == (
        UNIT, "Halmstad", "Beata Beställare", "beata.bestallare@halmstad.example.test")
    # Every entry links to the ticket that made it.
    history = desk.store.register_history_of(ids)
    assert {(h["op"], h["ticket_ref"]) for h in history} == {("granted", ref)}
    [applied] = events(desk, "register_applied")
    assert applied["data"]["granted"] == 3 and applied["ticket_id"] == desk.store.ticket(ref)["id"]


def test_feeding_the_register_twice_from_one_ticket_changes_nothing(desk, granted):
    ref, _ = granted
    with desk.store.transaction():
        assert apply_done_ticket(desk.store, ref, desk.by_id, datetime.now(UTC), "anna", keys=desk.keys) == []
    assert len(entries(desk, system="MittVaccin", state="all")) == 3


def test_the_register_write_rolls_back_with_the_callers_transaction(desk):
    ref = desk.order(NEW, "new", [person("19571230-2842", "Nils", start=START)])
    with pytest.raises(RuntimeError), desk.store.transaction():
        desk.tickets.mark_done(ref, "anna")  # the lifecycle's "done" writes the register, in this transaction
        raise RuntimeError("a later step of the same transaction failed")
    assert entries(desk, system="MittVaccin", state="all") == []
    assert desk.store.ticket(ref)["status"] == "new"
    desk.tickets.mark_done(ref, "anna")
    assert len(entries(desk, system="MittVaccin", state="all")) == 1


def test_a_done_termination_ends_the_persons_entries_on_the_end_date(desk, granted):
    last_day = TODAY + timedelta(days=10)
    ref = desk.order(END, "termination", [person("19121212-1212", "Tolvan", None, end=last_day)])
    ids = desk.done(ref)
    assert len(ids) == 1
    pid = find_person(desk.store, desk.keys, "191212121212", "anna")
    view = person_view(desk.store, desk.keys, pid, "anna")
    [entry] = view["current"]  # it ends in ten days: still current until then
    assert (entry["state"], entry["ended_on"]) == ("ended", last_day.isoformat())
    later = person_view(desk.store, desk.keys, pid, "anna", today=last_day + timedelta(days=1))
    assert later["current"] == [] and [e["role"] for e in later["past"]] == ["Vaccinatör"]
    assert [h["op"] for h in view["history"][entry["id"]]] == ["granted", "ended"]
    assert {h["ticket_ref"] for h in view["history"][entry["id"]]} == {ref, desk.store.tickets()[0]["ref"]}
    # The others keep their access.
    assert len(entries(desk, system="MittVaccin", state="current", today=last_day + timedelta(days=1))) == 2


def test_a_done_change_ends_the_old_role_and_grants_the_new_one(desk, granted):
    ref = desk.order(NEW, "change", [person("19870521-2382", "Anna", "Registrerare", start=START, n=2)])
    desk.done(ref)
    pid = find_person(desk.store, desk.keys, "19870521-2382", "anna")
    view = person_view(desk.store, desk.keys, pid, "anna", today=START + timedelta(days=1))
    assert [(e["role"], e["state"]) for e in view["current"]] == [("Registrerare", "active")]
    assert [(e["role"], e["state"], e["ended_on"]) for e in view["past"]] == [
        ("Administratör", "ended", START.isoformat())]
    assert {h["ticket_ref"] for e in view["past"] for h in view["history"][e["id"]]} >= {ref}


def test_a_pending_termination_and_ending_access_show_up_in_the_follow_up(desk, granted):
    ref = desk.order(END, "termination", [person("19870521-2382", "Anna", None, end=TODAY + timedelta(days=5), n=2)])
    lists = followup(desk.store, desk.keys, desk.by_id, "anna", days=30)
    assert [(r["person"], r["pending_ref"]) for r in lists["pending"]] == [("19870521-2382", ref)]
    assert [r["person"] for r in lists["ending"]] == [HSA]  # its ordered period ends in 20 days
    assert lists["expired"] == []
    # Twenty-one days on, the fixed period has passed with nobody renewing or ending it.
    later = followup(desk.store, desk.keys, desk.by_id, "anna", days=30, today=TODAY + timedelta(days=21))
    assert [r["person"] for r in later["expired"]] == [HSA]
    desk.done(ref)
    assert followup(desk.store, desk.keys, desk.by_id, "anna")["pending"] == []


def test_renewal_of_a_fixed_period_updates_the_entry_instead_of_adding_one(desk, granted):
    ref = desk.order(NEW, "new", [person(HSA, "Skott", "Läsbehörighet", start=START,
                                         end=TODAY + timedelta(days=200), n=3)])
    [entry_id] = desk.done(ref)
    rows = entries(desk, system="MittVaccin", role="Läsbehörighet", state="all")
    assert [(r["id"], r["valid_to"]) for r in rows] == [(entry_id, (TODAY + timedelta(days=200)).isoformat())]
    assert [h["op"] for h in desk.store.register_history_of([entry_id])] == ["granted", "renewed"]


def test_the_register_survives_the_ticket_retention_purge(desk, granted):
    ref, _ = granted
    result = purge(desk.store, 0, now=datetime.now(UTC) + timedelta(days=1))
    assert result.tickets == 1 and desk.store.ticket(ref)["form"] is None
    pid = find_person(desk.store, desk.keys, HSA.lower(), "anna")
    view = person_view(desk.store, desk.keys, pid, "anna")
    assert [(e["role"], e["unit"], e["orderer_name"]) for e in view["current"]] == [
        ("Läsbehörighet", UNIT, "Beata Beställare")]
    assert view["name"] == "Skott Testperson3"
    # A termination after the purge still finds the entries.
    end = desk.order(END, "termination", [person(HSA, "Skott", None, end=TODAY, n=3)])
    assert len(desk.done(end)) == 1


def test_searches_and_views_are_audited_without_the_identifier(desk, granted):
    assert find_person(desk.store, desk.keys, "19121212-1212", "anna") is not None
    assert find_person(desk.store, desk.keys, "19440813-9089", "anna") is None  # not in the register
    pid = find_person(desk.store, desk.keys, "191212121212", "bertil")
    person_view(desk.store, desk.keys, pid, "bertil")
    entries(desk, unit=UNIT)
    searched = events(desk, "register_searched")
    assert [(e["actor"], e["data"]["found"]) for e in searched] == [("anna", 1), ("anna", 0), ("bertil", 1)]
    [viewed] = events(desk, "register_viewed")
    assert (viewed["actor"], viewed["data"]["person"], viewed["data"]["entries"]) == ("bertil", pid, 1)
    [listed] = events(desk, "register_listed")
    assert listed["data"]["entries"] == 3 and "unit" in listed["data"]["filters"]
    every = " ".join(e["data"] for e in desk.store.db.query("select data from events"))
    for needle in ("19121212", "191212121212", "19440813", HSA, "Tolvan", UNIT):
        assert needle not in every


def test_export_holds_exactly_the_filtered_rows(desk, granted):
    other = desk.order(NEW, "new", [person("19440813-9089", "Greta", "Ordinatör", start=START, n=4)])
    desk.done(other)
    with desk.store.transaction():
        desk.store.db.execute("update register_entries set unit = 'Äldreboendet Solgården', municipality = 'Varberg' "
                              "where role = 'Ordinatör'")
    data, n = export_entries(desk.store, desk.keys, RegisterFilters(municipality="Halmstad", role="Vaccinatör"),
                             "anna")
    ws = openpyxl.load_workbook(BytesIO(data)).active
    rows = [r for r in ws.iter_rows(values_only=True)]
    assert n == 1 and len(rows) == 2
    header, row = rows
    got = dict(zip(header, row, strict=True))
    assert (got["person"], got["name"], got["role"], got["municipality"]) == (
        "19121212-1212", "Tolvan Testperson1", "Vaccinatör", "Halmstad")
    data, n = export_entries(desk.store, desk.keys, RegisterFilters(unit=UNIT), "anna")
    persons = sorted(r[0] for r in list(openpyxl.load_workbook(BytesIO(data)).active.iter_rows(values_only=True))[1:])
    assert n == 3 and persons == sorted(["19121212-1212", "19870521-2382", HSA])
    assert [e["data"]["entries"] for e in events(desk, "register_exported")] == [1, 3]


def test_the_database_file_holds_no_identifier_or_name_in_clear_text(desk, granted):
    # The tickets' forms and mail hold them until the ticket purge; the register never does.
    purge(desk.store, 0, now=datetime.now(UTC) + timedelta(days=1))
    # No VACUUM: the store overwrites what it deletes (secure_delete), so freed pages hold no old content.
    desk.store.db.execute("pragma wal_checkpoint(TRUNCATE)")
    pid = find_person(desk.store, desk.keys, HSA, "anna")
    assert pid is not None and len(entries(desk, system="MittVaccin")) == 3
    raw = b"".join(p.read_bytes() for p in desk.root.glob("intake.db*"))
    for needle in ("19121212-1212", "191212121212", "19870521-2382", "198705212382", HSA, HSA.lower(),
                   "Tolvan", "Testperson1", "Skott"):
        assert needle.encode() not in raw, needle
    assert UNIT.encode() in raw  # the test would notice a file it cannot read


def test_the_key_file_is_outside_the_database_and_readable_by_its_owner_only(desk, granted):
    path = desk.root / "keys" / "register.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with pytest.raises(RegisterError, match="never overwritten"):
        init_key(path)
    # A lost key is not silently replaced while the register holds entries ...
    path.rename(desk.root / "keys" / "moved.key")
    with pytest.raises(RegisterError, match="holds entries"):
        open_keys(desk.store, path)
    # ... and a different key is refused rather than writing entries nobody can find again.
    init_key(path)
    with pytest.raises(RegisterError, match="not the key"):
        open_keys(desk.store, path)


def test_purge_deletes_ended_entries_after_their_own_retention_and_keeps_active_ones(desk, granted):
    last_day = TODAY
    desk.done(desk.order(END, "termination", [person("19121212-1212", "Tolvan", None, end=last_day)]))
    now = datetime.now(UTC)
    assert purge_register(desk.store, 30, now=now).entries == 0  # ended today: kept for 30 days
    result = purge_register(desk.store, 30, now=now + timedelta(days=31))
    assert (result.entries, result.persons) == (1, 1)
    assert find_person(desk.store, desk.keys, "19121212-1212", "anna") is None
    assert len(entries(desk, system="MittVaccin", state="all")) == 2  # active access is never purged
    assert not list(desk.store.db.query("select 1 from register_history h left join register_entries e "
                                        "on e.id = h.entry_id where e.id is null"))
    [ev] = events(desk, "register_purged")[-1:]
    assert ev["data"]["entries"] == 1


def test_manual_corrections_need_a_reason_and_are_in_the_history(desk, granted):
    with pytest.raises(RegisterError, match="reason"):
        add_manual(desk.store, desk.keys, person="19571230-2842", name="Nils Testperson5", system="MittVaccin",
                   actor="admin", reason=" ")
    entry_id = add_manual(desk.store, desk.keys, person="19571230-2842", name="Nils Testperson5",
                          system="MittVaccin", role="Vaccinatör", unit=UNIT, municipality="Halmstad",
                          actor="admin", reason="Beviljad på papper före registret")
    with pytest.raises(RegisterError, match="already holds"):
        add_manual(desk.store, desk.keys, person="195712302842", name=None, system="mittvaccin", role="vaccinatör",
                   actor="admin", reason="dubblett")
    assert correct_entry(desk.store, entry_id, {"role": "Ordinatör"}, actor="admin",
                         reason="Fel roll angiven") == ["role"]
    end_entry(desk.store, entry_id, on=TODAY.isoformat(), actor="admin", reason="Slutat")
    with pytest.raises(RegisterError, match="ended already"):
        end_entry(desk.store, entry_id, on=None, actor="admin", reason="igen")
    history = desk.store.register_history_of([entry_id])
    assert [(h["op"], h["actor"], h["reason"]) for h in history] == [
        ("added_manually", "admin", "Beviljad på papper före registret"),
        ("corrected", "admin", "Fel roll angiven"), ("ended_manually", "admin", "Slutat")]
    assert [e["data"]["op"] for e in events(desk, "register_corrected")] == ["added_manually", "corrected", "ended"]


def test_key_file_is_created_on_first_use_with_owner_only_permissions(tmp_path):
    desk = RegisterDesk(tmp_path, register={"key_file": "fresh/register.key"})
    assert not (tmp_path / "fresh" / "register.key").exists()
    desk.keys  # noqa: B018 - first use creates it
    mode = os.stat(tmp_path / "fresh" / "register.key").st_mode
    assert stat.S_IMODE(mode) == 0o600


@pytest.mark.parametrize("filters", [
    RegisterFilters(unit=UNIT), RegisterFilters(municipality="Halmstad"), RegisterFilters(system="MittVaccin"),
    RegisterFilters(system="MittVaccin", role="Vaccinatör"), RegisterFilters(person_id=1, state="all"),
    RegisterFilters(orderer="beata.bestallare@halmstad.example.test", state="ended"),
])
def test_register_lookups_use_an_index_never_a_table_scan(fresh_store, filters):
    from intake.store.register import _SELECT

    where, params = filters.where(TODAY.isoformat())
    plan = [r[3] for r in fresh_store.db.execute("explain query plan " + _SELECT + where, params).fetchall()]
    assert all(step.startswith(("SEARCH", "MULTI-INDEX", "INDEX")) for step in plan), plan
    (step,) = [r[3] for r in fresh_store.db.execute(
        "explain query plan select * from register_persons where id_hash = ?", ["x"]).fetchall()]
    assert "USING INDEX" in step


def test_the_effect_for_the_engine_feeds_the_register_and_checks_mappings_up_front(desk, tmp_path):
    import shutil

    from intake.register import register_effect
    from rules.packs import PackError, load_pack
    from rules.register import RegisterMappingError

    effect = register_effect(desk.config, desk.routines)
    ref = desk.order(NEW, "new", [person("19571230-2842", "Nils", start=START)])
    desk.tickets.mark_done(ref, "anna")  # the lifecycle's "done" effect wrote the entry
    assert len(entries(desk, system="MittVaccin", state="all")) == 1
    with desk.store.transaction():
        assert effect(desk.store, ref, desk.by_id, datetime.now(UTC), "anna") == []  # once per ticket
    # A pack whose register.toml names a field its form does not have is refused before any ticket is done:
    # when the pack loads (start-up, `intake packs check`), and by the effect for packs loaded otherwise.
    bad = tmp_path / "packs" / "mittvaccin"
    shutil.copytree(desk.routines[0].path, bad)
    (bad / "register.toml").write_text((bad / "register.toml").read_text("utf-8").replace(
        'field = "kommun"', 'field = "kommunen"'), "utf-8")
    with pytest.raises(PackError, match=r"register\.toml: municipality\.field: 'kommunen'"):
        load_pack(bad)
    with pytest.raises(RegisterMappingError, match=r"register\.toml: municipality\.field: 'kommunen'"):
        register_effect(desk.config, [replace(desk.routines[0], path=bad)])
    off = RegisterDesk(tmp_path / "off", register={"enabled": False})
    assert register_effect(off.config, off.routines) is None
