"""Form schema loading and form validation: one reason per problem, naming the field and the user
row, never the value."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from parsers.forms import ParsedForm
from parsers.sandbox import parse_in_process
from rules.forms import FormSchemaError, load_form_schema, validate_form

ROOT = Path(__file__).resolve().parents[2]
FORM_TOML = ROOT / "rules" / "packs" / "mittvaccin" / "form.toml"
SCHEMA = load_form_schema(FORM_TOML)
FORMS = ROOT / "fixtures" / "forms"
EXPECTED = json.loads((FORMS / "expected.json").read_text("utf-8"))
TODAY = date(2026, 11, 24)
SUBJECT_KINDS = {"new": ["new", "change"], "change": ["new", "change"], "termination": ["termination"]}

ORG = {"kommun": "Halmstad", "forvaltning": "Socialförvaltningen", "enhet": "Hemsjukvården",
       "bestallare_namn": "Beata Beställare", "bestallare_titel": "Enhetschef", "bestallare_telefon": "035-131000",
       "bestallare_epost": "beata@halmstad.example", "datum": date(2026, 11, 20)}
USER = {"row": 1, "fornamn": "Tolvan", "efternamn": "Tolvansson", "identitet": "19121212-1212",
        "epost": "tolvan@halmstad.example", "titel": "Sjuksköterska", "roll": "Vaccinatör",
        "giltig_fran": date(2026, 12, 1)}


def form(kind: str | None = "new", fields: dict | None = None, users: list[dict] | None = None,
         kinds: list[str] | None = None) -> ParsedForm:
    checked = kinds if kinds is not None else ([kind] if kind else [])
    return ParsedForm(kind=kind if len(checked) == 1 else None, fields={**ORG, **(fields or {})},
                      users=[dict(USER)] if users is None else users, filename="b.xlsx", format="xlsx",
                      kinds_checked=checked)


def check(f: ParsedForm, subject: str = "new") -> list:
    return validate_form(f, SCHEMA, form_kinds=SUBJECT_KINDS[subject], request_type_label="ny eller ändrad behörighet",
                         today=TODAY)


def personal_values(f: ParsedForm) -> list[str]:
    values = [v for v in f.fields.values()] + [v for u in f.users for k, v in u.items() if k != "row"]
    return [v.isoformat() if isinstance(v, date) else str(v) for v in values if v not in (None, "")]


def assert_no_personal_values(reasons: list, f: ParsedForm) -> None:
    for r in reasons:
        for value in personal_values(f):
            if len(value) >= 4:
                assert value not in r.message and value not in r.detail, (r.code, value)


def test_a_good_form_gives_no_reasons() -> None:
    assert check(form()) == []


@pytest.mark.parametrize(
    ("change", "code", "words"),
    [
        ({"fields": {"kommun": "Göteborg"}}, "form.invalid_field", ['"Kommun"', "Falkenberg"]),
        ({"fields": {"kommun": "halmstads kommun"}}, None, []),
        ({"fields": {"kommun": " HYLTE "}}, None, []),
        ({"fields": {"kommun": None}}, "form.missing_field", ['"Kommun"']),
        ({"fields": {"bestallare_epost": "beata(at)halmstad"}}, "form.invalid_field", ['"Beställarens e-post"']),
        ({"fields": {"datum": "förra veckan"}}, "form.invalid_field", ["ÅÅÅÅ-MM-DD"]),
        ({"fields": {"enhet_hsa_id": "SE2321000131-E000000000001"}}, None, []),
        ({"fields": {"enhet_hsa_id": "E000000000001"}}, "form.invalid_field", ['"Enhetens HSA-id"']),
        ({"users": [{**USER, "identitet": "19121212-1213"}]}, "form.invalid_field", ["på rad 1", "kontrollsiffra"]),
        ({"users": [{**USER, "identitet": "121212-1212"}]}, None, []),
        ({"users": [{**USER, "identitet": "191212121212"}]}, None, []),
        ({"users": [{**USER, "identitet": "19701063-2391"}]}, None, []),  # samordningsnummer
        ({"users": [{**USER, "identitet": "SE2321000131-P000000245581"}]}, None, []),
        ({"users": [{**USER, "identitet": "20991212-1212"}]}, "form.invalid_field", ["på rad 1"]),
        ({"users": [{**USER, "roll": "Superadmin"}]}, "form.invalid_field", ['"MittVaccin-roll"', "Vaccinatör"]),
        ({"users": [{**USER, "roll": "vaccinatör"}]}, None, []),
        ({"users": [{**USER, "row": 4, "epost": None}]}, "form.missing_field", ['"E-post"', "på rad 4"]),
        ({"users": [{**USER, "giltig_fran": None}]}, "form.missing_field", ['"Giltig från"']),
        ({"users": [{**USER, "giltig_fran": "1 smarch 2026"}]}, "form.invalid_field", ['"Giltig från"']),
        ({"users": [{**USER, "giltig_till": date(2026, 11, 1)}]}, "form.invalid_field",
         ['"Giltig till/avslutsdatum"', 'före "Giltig från"']),
        ({"users": [{**USER, "telefon": "ring mig"}]}, "form.invalid_field", ['"Telefon"']),
        ({"users": []}, "form.no_users", []),
        ({"kind": None}, "form.missing_field", ['"Beställningen gäller"']),
        ({"kinds": ["new", "termination"]}, "form.invalid_field", ["bara i ett alternativ"]),
    ],
)
def test_each_problem_is_one_reason_naming_field_and_row(change: dict, code: str | None, words: list[str]) -> None:
    f = form(**change)
    reasons = check(f)
    assert [r.code for r in reasons] == ([code] if code else [])
    for word in words:
        assert word in reasons[0].message
    assert_no_personal_values(reasons, f)


@pytest.mark.parametrize(
    ("kind", "subject", "codes"),
    [
        ("new", "new", []),
        ("change", "new", []),
        ("termination", "new", ["form.type_mismatch"]),
        ("new", "termination", ["form.type_mismatch"]),
    ],
)
def test_form_kind_must_agree_with_the_subject(kind: str, subject: str, codes: list[str]) -> None:
    user = {**USER, "giltig_till": date(2026, 12, 31)}
    reasons = check(form(kind, users=[user]), subject)
    assert [r.code for r in reasons] == codes
    if codes:
        assert "avslut av behörighet" in reasons[0].message or "ny behörighet" in reasons[0].message


def test_termination_needs_end_date_but_not_role_or_start() -> None:
    user = {k: v for k, v in USER.items() if k not in ("roll", "giltig_fran", "epost", "titel")}
    reasons = check(form("termination", users=[user]), "termination")
    assert [(r.code, r.message) for r in reasons] == [
        ("form.missing_field", 'Fältet "Giltig till/avslutsdatum" saknas eller är tomt på rad 1.')]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_forms_give_the_expected_reasons(name: str) -> None:
    want = EXPECTED[name]
    data = parse_in_process(want["format"], (FORMS / name).read_bytes(), SCHEMA)
    f = ParsedForm(kind=data.kinds_checked[0] if len(data.kinds_checked) == 1 else None, fields=data.fields,
                   users=data.users, filename=name, format=want["format"], kinds_checked=data.kinds_checked)
    reasons = check(f, want["kind"])
    assert sorted(r.code for r in reasons) == sorted(want["codes"])
    assert_no_personal_values(reasons, f)


BAD_SCHEMAS = [
    ("[kind]\nid='kind'\n", "name"),
    ('name = "x"\nid = "x"\n[kind]\nid = "kind"\nlabel = "K"\noptions = []\n', "kind: options"),
    (FORM_TOML.read_text("utf-8").replace('type = "email"', 'type = "mejl"', 1), "type"),
    (FORM_TOML.read_text("utf-8").replace('values = "roller"', 'values = "rollerna"'), "values"),
    (FORM_TOML.read_text("utf-8").replace('required = ["termination"]', 'required = ["avslut"]'), "required"),
    (FORM_TOML.read_text("utf-8").replace('not_before = "giltig_fran"', 'not_before = "fornamn"'), "not_before"),
    (FORM_TOML.read_text("utf-8").replace('id = "enhet"', 'id = "kommun"'), "id"),
    (FORM_TOML.read_text("utf-8").replace('label = "Enhet"', 'label = "Enhet"\ncolour = "blå"'), "colour"),
    ("this is = = not toml", "not valid TOML"),
]


@pytest.mark.parametrize(("text", "key"), BAD_SCHEMAS)
def test_a_bad_schema_names_the_file_and_key(tmp_path: Path, text: str, key: str) -> None:
    path = tmp_path / "form.toml"
    path.write_text(text, "utf-8")
    with pytest.raises(FormSchemaError) as err:
        load_form_schema(path)
    assert str(path) in str(err.value)
    assert key in str(err.value)


def test_schema_kinds_match_the_pack() -> None:
    from rules.packs import load_pack

    routine = load_pack(FORM_TOML.parent)
    for rt in routine.request_types:
        assert set(rt.form_kinds) <= set(SCHEMA.kinds)
