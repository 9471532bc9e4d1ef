"""The register mapping (rules.register): loading register.toml, and done tickets into entry changes."""

from __future__ import annotations

import pytest

from rules.register import (
    RegisterMappingError,
    display_person,
    entries_from_ticket,
    load_register_mapping,
    normalise_person,
    parse_register_mapping,
)

HSA = "SE2321000131-P000000000042"


@pytest.fixture(scope="module")
def mapping(routine):
    m = load_register_mapping(routine)
    assert m is not None
    return m


def ticket(request_type="behorighet", closed_at="2026-11-30T10:00:00+00:00"):
    return {"ref": "MV-2026-0001", "routine": "mittvaccin", "request_type": request_type,
            "requester": "eva.berg@halmstad.example.test", "closed_at": closed_at}


def form(kind, *users):
    return {"kind": kind, "fields": {"kommun": "Halmstad", "enhet": "Hemsjukvården Väster",
                                     "enhet_hsa_id": "SE2321000131-E000000000123",
                                     "bestallare_namn": "Beata Beställare",
                                     "bestallare_epost": "Beata.Bestallare@halmstad.example.test"},
            "users": list(users)}


def user(identitet, roll="Vaccinatör", **more):
    return {"row": 1, "fornamn": "Tolvan", "efternamn": "Testperson", "identitet": identitet, "roll": roll,
            "giltig_fran": "2026-12-01", "giltig_till": None, **more}


def test_new_access_grants_one_entry_per_person_from_the_start_date(mapping):
    changes = entries_from_ticket(ticket(), form("new", user("19121212-1212"), user(HSA, "Administratör")), mapping)
    assert [(c.op, c.person, c.person_kind, c.system, c.role, c.valid_from) for c in changes] == [
        ("grant", "191212121212", "personnummer", "MittVaccin", "Vaccinatör", "2026-12-01"),
        ("grant", HSA, "hsa_id", "MittVaccin", "Administratör", "2026-12-01"),
    ]
    c = changes[0]
    assert (c.unit, c.unit_hsa_id, c.municipality) == ("Hemsjukvården Väster", "SE2321000131-E000000000123",
                                                        "Halmstad")
    assert (c.orderer_name, c.orderer_email) == ("Beata Beställare", "beata.bestallare@halmstad.example.test")
    assert c.name == "Tolvan Testperson"


def test_without_a_start_date_access_starts_the_day_the_ticket_was_done(mapping):
    [c] = entries_from_ticket(ticket(), form("new", user("19121212-1212", giltig_fran=None)), mapping)
    assert c.valid_from == "2026-11-30"


def test_termination_ends_every_role_on_the_end_date_or_the_day_it_was_done(mapping):
    changes = entries_from_ticket(ticket("avslut"), form(
        "termination", user("19121212-1212", roll=None, giltig_fran=None, giltig_till="2026-12-31"),
        user("19870521-2382", roll=None, giltig_fran=None)), mapping)
    assert [(c.op, c.person, c.role, c.valid_to) for c in changes] == [
        ("end", "191212121212", None, "2026-12-31"), ("end", "198705212382", None, "2026-11-30")]


def test_change_order_becomes_updates(mapping):
    [c] = entries_from_ticket(ticket(), form("change", user("19870521-2382", "Läsbehörighet")), mapping)
    assert (c.op, c.role) == ("update", "Läsbehörighet")


def test_roles_as_a_list_give_one_change_per_role(mapping):
    changes = entries_from_ticket(ticket(), form("new", user(HSA, ["Vaccinatör", "Ordinatör", "Vaccinatör"])),
                                  mapping)
    assert [(c.op, c.role) for c in changes] == [("grant", "Vaccinatör"), ("grant", "Ordinatör")]


def test_a_row_marked_remove_ends_that_persons_entries(mapping):
    changes = entries_from_ticket(ticket(), form("new", user("19121212-1212"),
                                                 user(HSA, ["Dashboard"], action="remove")), mapping)
    assert [(c.op, c.person, c.role) for c in changes] == [
        ("grant", "191212121212", "Vaccinatör"), ("end", HSA, "Dashboard")]


def test_other_request_types_and_missing_forms_change_nothing(mapping):
    assert entries_from_ticket(ticket("anvandarstod"), form("new", user("19121212-1212")), mapping) == []
    assert entries_from_ticket(ticket(), None, mapping) == []
    # A row without an identifier is skipped, not guessed.
    assert entries_from_ticket(ticket(), form("new", user("")), mapping) == []


@pytest.mark.parametrize("text, expected", [
    ("19121212-1212", ("191212121212", "personnummer")),
    ("191212121212", ("191212121212", "personnummer")),
    ("121212+1212", ("191212121212", "personnummer")),  # "+": a hundred years or older
    (" se2321000131-p000000000042 ", (HSA, "hsa_id")),
    ("", None),
])
def test_identifiers_are_normalised_so_every_writing_finds_the_same_person(text, expected):
    assert normalise_person(text) == expected


def test_display_writes_a_personnummer_with_its_dash():
    assert display_person("191212121212", "personnummer") == "19121212-1212"
    assert display_person(HSA, "hsa_id") == HSA


BASE = {"person": {"column": "identitet"}, "system": "MittVaccin",
        "effects": [{"request_type": "behorighet", "does": "grant"}]}


def parse(data):
    return parse_register_mapping(data, routine="mittvaccin", request_types=["behorighet", "avslut"],
                                  form_kinds=["new"], fields=["kommun"], columns=["identitet", "roll"],
                                  where="packs/x/register.toml")


@pytest.mark.parametrize("change, message", [
    ({"colour": "red"}, "packs/x/register.toml: colour: unknown key"),
    ({"role": {"column": "rolle"}}, "packs/x/register.toml: role.column: 'rolle' is not a column"),
    ({"municipality": {"field": "kommune"}}, "packs/x/register.toml: municipality.field: 'kommune' is not a field"),
    ({"person": {"field": "kommun"}}, "packs/x/register.toml: person: must be a column"),
    ({"unit": {"cell": "B4"}}, "packs/x/register.toml: unit.cell: unknown key"),
    ({"effects": [{"request_type": "nyupplagg", "does": "grant"}]}, "effects[0]: request_type: 'nyupplagg'"),
    ({"effects": [{"request_type": "avslut", "does": "delete"}]}, "effects[0]: does: must be one of"),
    ({"effects": [{"request_type": "avslut", "does": "end", "when": 1}]}, "effects[0]: when: unknown key"),
    ({"effects": [{"request_type": "avslut", "does": "end", "form_kinds": ["old"]}]}, "form_kinds: 'old'"),
    ({"name_columns": ["namn"]}, "name_columns: 'namn' is not a column"),
])
def test_a_bad_mapping_is_refused_naming_file_and_key(change, message):
    with pytest.raises(RegisterMappingError) as err:
        parse({**BASE, **change})
    assert message in str(err.value)


def test_person_and_system_are_required():
    with pytest.raises(RegisterMappingError, match="person: missing"):
        parse({k: v for k, v in BASE.items() if k != "person"})


def test_the_mittvaccin_mapping_loads_and_says_what_each_request_does(mapping):
    assert mapping.effect_for("behorighet", "new") == "grant"
    assert mapping.effect_for("behorighet", "change") == "change"
    assert mapping.effect_for("avslut", "termination") == "end"
    assert mapping.effect_for("felsokning", None) is None
