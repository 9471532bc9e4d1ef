"""Form schema version 2, end to end on real files: the blank form is generated from
tests/packs/formv2/form.toml, filled with openpyxl and python-docx the ways people fill it (several
persons, roles listed in one cell with commas, slashes, "och" or one per line, roles as ticked
checkbox columns, an unknown role, a person with no role, a row to remove), parsed in the sandbox
and judged. Names and addresses are invented (example.test)."""

from __future__ import annotations

import copy
from datetime import date
from pathlib import Path

import docx
import openpyxl
import pytest

from intake.blankforms import write_blank_forms
from parsers.forms import extract_form
from parsers.mail import Attachment
from parsers.schema import form_schema_from_dict, load_form_schema
from rules.forms import judge_form, validate_form

HERE = Path(__file__).resolve().parent
SCHEMA = load_form_schema(HERE / "form.toml")
TODAY = date(2026, 11, 24)
W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
W14 = "http://schemas.microsoft.com/office/word/2010/wordml"


def cell_layout_schema():
    """The same form with the roles written in one cell instead of checkbox columns."""
    raw = copy.deepcopy(SCHEMA.raw)
    for col in raw["users"]["columns"]:
        if col["id"] == "roller":
            col["layout"] = "cell"
    return form_schema_from_dict(raw, SCHEMA.source)


FIELDS = {
    "forvaltning": "Närhälsan", "enhet_1": "vårdcentralen norr", "enhet_2": "Vårdcentralen Söder",
    "vardgivare": "Privat", "uppdrag": "VoB SJF, Administration Spärr & Logg",
    "startdatum": date(2026, 12, 1), "slutdatum": None,
    "bestallare_namn": "Olga Orderer", "bestallare_epost": "olga.orderer@example.test",
    "attestant_namn": "Atte Attestsson", "attestant_epost": "atte.attestsson@example.test",
}


def person(n: int) -> dict[str, str]:
    return {"namn": f"Testperson {n}", "hsa_id": f"SE2321000131-P00000000{n:04d}", "epost": f"person{n}@example.test"}


# (roles as written in the one roles cell, action as written) -> what the parser must read
CELL_ROWS = [
    ("Dashboard, Flygledartornet", "Lägg till", ["Dashboard", "Flygledartornet"], "add"),
    ("Dashboard / Flygledartornet", None, ["Dashboard", "Flygledartornet"], "add"),
    ("Systemadministratör\nDashboard", "Ny", ["Systemadministratör", "Dashboard"], "add"),
    ("flygledartornet och SYSTEMADMINISTRATOR", "Ta bort", ["Systemadministratör", "Flygledartornet"], "remove"),
    ("Dashboard, Superanvändare", "Lägg till", ["Dashboard", "Superanvändare"], "add"),
    (None, "Lägg till", None, "add"),
    ("Systemadministratör; Dashboard; Flygledartornet", None, ["Systemadministratör", "Dashboard",
                                                                "Flygledartornet"], "add"),
]
# For checkbox columns: the mark written under each role (None: left empty), action as written.
BOX_ROWS = [
    ({"Dashboard": "X", "Flygledartornet": "x"}, None, ["Dashboard", "Flygledartornet"], "add"),
    ({"Systemadministratör": "✓", "Dashboard": "ja"}, "Lägg till", ["Systemadministratör", "Dashboard"], "add"),
    ({}, "Lägg till", None, "add"),
    ({"Dashboard": "X"}, "Ta bort", ["Dashboard"], "remove"),
    ({"Systemadministratör": "X", "Dashboard": "X", "Flygledartornet": "X"}, None,
     ["Systemadministratör", "Dashboard", "Flygledartornet"], "add"),
]


# --- filling the generated blanks ------------------------------------------------------------------------


def field_label(schema, fid: str) -> str:
    spec = schema.spec(fid)
    return f"{spec.label} ({spec.hint})" if spec.hint else spec.label


def fill_xlsx(schema, blank: Path, out: Path, kind: str, fields: dict, rows: list, boxes: bool) -> None:
    wb = openpyxl.load_workbook(blank)
    ws = wb["Blankett"]
    by_text = {}
    for row in ws.iter_rows():
        for cell in row:
            if isinstance(cell.value, str):
                by_text.setdefault(cell.value, cell)
    option = schema.option(kind)
    ws.cell(by_text[option.label].row, by_text[option.label].column + 1, "X")
    for fid, value in fields.items():
        if value is not None:
            label = by_text[field_label(schema, fid)]
            ws.cell(label.row, label.column + 1, value)
    header = by_text["Namn"].row
    col_of = {ws.cell(header, c).value: c for c in range(1, ws.max_column + 1) if ws.cell(header, c).value}
    for i, (roles, action, _, _) in enumerate(rows, start=1):
        r = header + i
        for key, value in person(i).items():
            ws.cell(r, col_of[schema.spec(key).label], value)
        if boxes:
            for role, mark in roles.items():
                ws.cell(r, col_of[role], mark)
        elif roles is not None:
            ws.cell(r, col_of["Roller"], roles)
        if action is not None:
            ws.cell(r, col_of["Åtgärd"], action)
    wb.save(out)


def tick_word_box(cell) -> None:
    sdt = cell._tc.find(f".//{{{W}}}sdt")
    sdt.find(f".//{{{W14}}}checked").set(f"{{{W14}}}val", "1")
    sdt.find(f".//{{{W}}}t").text = "☒"


def fill_docx(schema, blank: Path, out: Path, kind: str, fields: dict, rows: list, boxes: bool) -> None:
    document = docx.Document(str(blank))
    kind_table, *tables = document.tables
    for row in kind_table.rows:
        if row.cells[1].text == schema.option(kind).label:
            tick_word_box(row.cells[0])
    labels = {field_label(schema, fid): value for fid, value in fields.items() if value is not None}
    for table in tables:
        header = next((i for i, row in enumerate(table.rows) if row.cells[0].text == "Namn"), None)
        if header is None:
            for row in table.rows:
                if row.cells[0].text in labels:
                    value = labels[row.cells[0].text]
                    row.cells[1].text = value.isoformat() if isinstance(value, date) else value
            continue
        col_of = {c.text: j for j, c in enumerate(table.rows[header].cells)}
        for i, (roles, action, _, _) in enumerate(rows, start=1):
            cells = table.rows[header + i].cells
            for key, value in person(i).items():
                cells[col_of[schema.spec(key).label]].text = value
            if boxes:
                for n, role in enumerate(roles):
                    # Word users tick the box; some type an X over it instead.
                    if n % 2 == 0:
                        tick_word_box(cells[col_of[role]])
                    else:
                        cells[col_of[role]].text = roles[role]
            elif roles is not None:
                cells[col_of["Roller"]].text = roles
            if action is not None:
                cells[col_of["Åtgärd"]].text = action
    document.save(str(out))


def filled(tmp_path: Path, schema, suffix: str, rows: list, *, boxes: bool, kind: str = "order",
           fields: dict | None = None) -> Attachment:
    blank = next(p for p in write_blank_forms(schema, "Testrutin", tmp_path / "blank") if p.suffix == suffix)
    out = tmp_path / f"ifylld{suffix}"
    (fill_xlsx if suffix == ".xlsx" else fill_docx)(schema, blank, out, kind, fields or FIELDS, rows, boxes)
    return Attachment(out.name, "", out.read_bytes())


def judge(att: Attachment, schema, kind: str = "order"):
    return judge_form([att], schema, form_kinds=[kind], request_type_label=kind, today=TODAY)


def where(reason) -> tuple[str, str, str]:
    """(code, field, row) from a reason's staff detail."""
    parts = dict(p.split("=", 1) for p in reason.detail.split() if "=" in p)
    return reason.code, parts.get("field", ""), parts.get("row", "")


# --- the tests ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".xlsx", ".docx"])
def test_roles_listed_in_one_cell_are_read_and_judged_by_row_and_column(tmp_path: Path, suffix: str) -> None:
    schema = cell_layout_schema()
    att = filled(tmp_path, schema, suffix, CELL_ROWS, boxes=False)
    result = judge(att, schema)
    form = result.form
    assert form is not None and form.kind == "order"
    assert [u["roller"] for u in form.users] == [want for _, _, want, _ in CELL_ROWS]
    assert [u["atgard"] for u in form.users] == [act for _, _, _, act in CELL_ROWS]
    assert [u["namn"] for u in form.users] == [person(i)["namn"] for i in range(1, len(CELL_ROWS) + 1)]
    assert form.fields["uppdrag"] == ["VoB SJF", "Administration Spärr & Logg"]
    assert form.fields["enhet_1"] == "vårdcentralen norr"
    assert form.party("orderer") == {"name": "Olga Orderer", "email": "olga.orderer@example.test"}
    assert form.party("attestant") == {"name": "Atte Attestsson", "email": "atte.attestsson@example.test"}
    assert [where(r) for r in result.reasons] == [
        ("form.invalid_field", "roller", "5"),  # an unknown role
        ("form.missing_field", "roller", "6"),  # a person with no role
        ("form.rule", "roller", "7"),  # three roles added at once: at most two
    ]
    unknown, missing, rule = result.reasons
    assert unknown.message.startswith('Fältet "Roller" på rad 5 är felaktigt ifyllt')
    assert "Superanvändare" not in unknown.message + unknown.detail  # the text as written is never repeated
    assert "Systemadministratör, Dashboard, Flygledartornet" in unknown.message  # what may be written
    assert missing.message == 'Fältet "Roller" saknas eller är tomt på rad 6.'
    assert rule.message == "Rad 7: Högst två roller kan läggas till per person och blankett."
    for r in result.reasons:
        for value in ("Testperson", "example.test", "SE2321000131"):
            assert value not in r.message and value not in r.detail


@pytest.mark.parametrize("suffix", [".xlsx", ".docx"])
def test_roles_as_ticked_checkbox_columns(tmp_path: Path, suffix: str) -> None:
    att = filled(tmp_path, SCHEMA, suffix, BOX_ROWS, boxes=True)
    result = judge(att, SCHEMA)
    form = result.form
    assert form is not None
    assert [u["roller"] for u in form.users] == [want for _, _, want, _ in BOX_ROWS]
    assert [u["atgard"] for u in form.users] == [act for _, _, _, act in BOX_ROWS]
    assert [where(r) for r in result.reasons] == [
        ("form.missing_field", "roller", "3"),
        ("form.rule", "roller", "5"),
    ]


def test_generated_blank_offers_checkbox_columns_and_drop_downs(tmp_path: Path) -> None:
    xlsx = next(p for p in write_blank_forms(SCHEMA, "Testrutin", tmp_path) if p.suffix == ".xlsx")
    ws = openpyxl.load_workbook(xlsx)["Blankett"]
    texts = [c.value for row in ws.iter_rows() for c in row if isinstance(c.value, str)]
    header = next(row for row in ws.iter_rows() if row[0].value == "Namn")
    assert [c.value for c in header] == ["Namn", "HSA-id", "E-post", "Systemadministratör", "Dashboard",
                                         "Flygledartornet", "Åtgärd"]
    assert "Roller (skriv X)" in texts  # the heading over the checkbox columns
    assert {"Attestant", "Beställare", "Attestantens e-post"} <= set(texts)  # parties as sections
    formulas = {dv.formula1 for dv in ws.data_validations.dataValidation}
    assert '"Lägg till,Ta bort"' in formulas  # the action column
    assert '"X"' in formulas  # the checkbox columns
    assert '"Närhälsan,Regionhälsan"' in formulas  # a single choice
    # The blank reads back as the form, empty.
    facts = extract_form([Attachment(xlsx.name, "", xlsx.read_bytes())], SCHEMA, sandbox=False)
    assert facts.form is not None and facts.form.users == []


def test_the_form_facts_carry_no_reasons_and_the_rules_carry_the_verdict(tmp_path: Path) -> None:
    att = filled(tmp_path, SCHEMA, ".xlsx", BOX_ROWS[:1], boxes=True)
    facts = extract_form([att], SCHEMA)
    assert facts.problems == [] and facts.attachment is att
    assert facts.form.to_dict()["users"][0]["roller"] == ["Dashboard", "Flygledartornet"]
    assert facts.form.to_dict()["parties"]["attestant"]["email"] == "atte.attestsson@example.test"
    assert judge(att, SCHEMA).reasons == []
    stored = facts.form.to_dict()["users"][0]
    assert SCHEMA.spec("roller").display(stored["roller"]) == "Dashboard, Flygledartornet"
    assert SCHEMA.spec("atgard").display(stored["atgard"]) == "Lägg till"
    assert SCHEMA.spec("akut").display(True) == "Ja" and SCHEMA.spec("startdatum").display(date(2026, 12, 1)) == (
        "2026-12-01")


FORM_CASES = [
    # (changes to the fields, kind, expected (code, field) pairs)
    ({}, "order", []),
    ({"enhet_1": "Barnhälsovården Öst"}, "order", [("form.invalid_field", "enhet_1")]),  # not a Närhälsan unit
    ({"forvaltning": "Regionhälsan", "enhet_1": "Barnhälsovården Öst", "enhet_2": None}, "order", []),
    ({"enhet_1": "Vårdcentralen Mitt"}, "order", [("form.invalid_field", "enhet_1")]),
    ({"vardgivare": "Region"}, "order", [("form.rule", "uppdrag")]),  # Spärr & Logg only for a private one
    ({"vardgivare": "Region", "uppdrag": "VoB SJF"}, "order", []),
    ({"uppdrag": None}, "order", [("form.missing_field", "uppdrag")]),
    ({"uppdrag": "VoB SJF, Städning"}, "order", [("form.invalid_field", "uppdrag")]),
    ({"startdatum": date(2026, 11, 23)}, "order", [("form.invalid_field", "startdatum")]),  # in the past
    ({"startdatum": date(2027, 3, 1)}, "order", [("form.invalid_field", "startdatum")]),  # > 90 days ahead
    ({"slutdatum": date(2026, 11, 30)}, "order", [("form.invalid_field", "slutdatum")]),  # before the start
    ({}, "cancel", [("form.rule", "slutdatum")]),  # a cancellation needs an end date
    ({"slutdatum": date(2027, 1, 31)}, "cancel", []),
    ({"attestant_epost": "atte(at)example"}, "order", [("form.invalid_field", "attestant_epost")]),
    ({"akut": "X"}, "order", []),
    ({"akut": "X", "slutdatum": date(2027, 1, 31)}, "cancel", [("form.rule", "akut")]),  # yes: not for a cancel
    ({"akut": "ja"}, "cancel", [("form.rule", "slutdatum"), ("form.rule", "akut")]),
    ({"akut": "Nej", "slutdatum": date(2027, 1, 31)}, "cancel", []),
    ({"akut": "kanske"}, "order", [("form.invalid_field", "akut")]),
]


@pytest.mark.parametrize(("change", "kind", "want"), FORM_CASES)
def test_sections_dependent_lists_dates_and_rules(tmp_path: Path, change: dict, kind: str, want: list) -> None:
    att = filled(tmp_path, SCHEMA, ".xlsx", BOX_ROWS[:1], boxes=True, kind=kind, fields={**FIELDS, **change})
    facts = extract_form([att], SCHEMA, sandbox=False)
    reasons = validate_form(facts.form, SCHEMA, form_kinds=[kind], request_type_label=kind, today=TODAY)
    assert [where(r)[:2] for r in reasons] == want
    for r in reasons:
        assert "example" not in r.message


def test_date_rule_messages() -> None:
    from parsers.forms import ParsedForm

    form = ParsedForm(kind="order", kinds_checked=["order"], filename="x.xlsx", format="xlsx",
                      fields={**FIELDS, "uppdrag": ["VoB SJF"], "startdatum": date(2026, 11, 1),
                              "slutdatum": date(2026, 10, 1)},
                      users=[{"row": 1, **person(1), "roller": ["Dashboard"], "atgard": "add"}])
    reasons = validate_form(form, SCHEMA, form_kinds=["order"], request_type_label="x", today=TODAY)
    assert [r.message for r in reasons] == [
        'Fältet "Startdatum" är felaktigt ifyllt: datumet har redan passerat.',
        'Fältet "Slutdatum" är felaktigt ifyllt: datumet ligger före "Startdatum".',
    ]


def test_row_limits() -> None:
    from parsers.forms import ParsedForm

    users = [{"row": i, **person(i), "roller": ["Dashboard"], "atgard": "add"} for i in range(1, 10)]
    form = ParsedForm(kind="order", kinds_checked=["order"], filename="x.xlsx", format="xlsx",
                      fields={**FIELDS, "uppdrag": ["VoB SJF"]}, users=users)
    reasons = validate_form(form, SCHEMA, form_kinds=["order"], request_type_label="x", today=TODAY)
    assert [r.code for r in reasons] == ["form.too_many_rows"]
    assert reasons[0].message.startswith('Tabellen "Personer" har 9 rader, men högst 8')
    form.users = []
    assert [r.code for r in validate_form(form, SCHEMA, form_kinds=["order"], request_type_label="x",
                                          today=TODAY)] == ["form.no_users"]


# --- refused at load, naming the file and the key --------------------------------------------------------

TOML = (HERE / "form.toml").read_text("utf-8")
BAD = [
    (TOML.replace('label = "Roller"', 'label = "Roller"\ncolour = "blå"'), "colour: unknown key"),
    (TOML.replace('type = "multi_choice"\nvalues = "roller"', 'type = "roles"\nvalues = "roller"'),
     "type: 'roles' is not one of"),
    (TOML.replace('fields = ["roller"]', 'fields = ["rollerna"]'), "field: 'rollerna' is not a field"),
    (TOML.replace('field = "slutdatum"', 'field = "avslutsdatum"'), "field: 'avslutsdatum' is not a field"),
    (TOML.replace('unless = { field = "vardgivare", equals = "Privat" }',
                  'unless = { field = "vardgivare", equals = "Kommunal" }'), "unless.equals: 'Kommunal'"),
    (TOML.replace('kind = "at_most"', 'kind = "expression"'), "kind: 'expression' is not one of"),
    (TOML.replace('kind = "at_most"', 'kind = "at_most"\nexpr = "len(roller) <= 2"'), "rules[2]: expr: unknown key"),
    (TOML.replace('values = "enheter"\ndepends_on = "forvaltning"\nrequired = true',
                  'values = "enheterna"\ndepends_on = "forvaltning"\nrequired = true'), "values: no list 'enheterna'"),
    (TOML.replace('"Regionhälsan" = ["Barnhälsovården Öst"', '"Västhälsan" = ["Barnhälsovården Öst"'),
     "values: 'Västhälsan' is not a value of 'forvaltning'"),
    (TOML.replace('"Regionhälsan" = ["Barnhälsovården Öst", "Ungdomsmottagningen Väst"]\n', ''),
     "values: no list for 'Regionhälsan' of 'forvaltning'"),
    (TOML.replace('depends_on = "forvaltning"\nrequired = true', 'depends_on = "vardgivar"\nrequired = true'),
     "depends_on: 'vardgivar' is not a choice field"),
    (TOML.replace('not_before = "startdatum"', 'not_before = "forvaltning"'), "not_before: 'forvaltning'"),
    (TOML.replace("max_days_ahead = 90", "max_days_ahead = -1"), "max_days_ahead: must be at least 0"),
    (TOML.replace('value = "Ja"', 'value = "Kanske"'), "rules[3]: value: 'Kanske' is not Ja or Nej"),
    (TOML.replace('equals = "add"', 'equals = "keep"'), "when.equals: 'keep' is not an option of 'atgard'"),
    (TOML.replace('equals = "cancel" }\nmessage = "Ange', 'equals = "cancel", one_of = ["order"] }\nmessage = "Ange'),
     "rules[1].when: equals: give either equals or one_of"),
    (TOML.replace('equals = "Privat" }', 'one_of = ["Privat", "Kommunal"] }'), "unless.equals: 'Kommunal'"),
    (TOML.replace('layout = "checkboxes"', 'layout = "dropdown"'), "layout: 'dropdown'"),
    (TOML.replace('default = "add"', 'default = "keep"'), "default: 'keep'"),
    (TOML.replace("max_rows = 8", "max_rows = 8\nmax_people = 3"), "users: max_people: unknown key"),
    (TOML.replace('party_key = "email"', 'party_key = "email"\nnot_in_past = true', 1), "not_in_past: not a key"),
    (TOML.replace('min_values = 1\nmax_values = 3', 'min_values = 4\nmax_values = 3'), "max_values: less than"),
]


@pytest.mark.parametrize(("text", "message"), BAD)
def test_a_misused_key_is_refused_at_load_naming_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    from parsers.schema import FormSchemaError

    assert text != TOML
    path = tmp_path / "form.toml"
    path.write_text(text, "utf-8")
    with pytest.raises(FormSchemaError) as err:
        load_form_schema(path)
    assert str(err.value).startswith(f"{path}: ")
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_every_registered_field_type_has_a_check() -> None:
    from parsers.schema import FIELD_TYPES
    from rules.forms import CHECKS

    assert set(CHECKS) == {name for name, t in FIELD_TYPES.items() if t.value != "kind"}
    assert FIELD_TYPES["checkbox_group"].value == "kind"  # checked as the request kind, in validate_form


def test_a_form_without_request_kind_boxes(tmp_path: Path) -> None:
    """The subject alone may say the kind: no [kind], no boxes on the blank, nothing to tick."""
    import tomllib

    from parsers.schema import FormSchemaError

    raw = tomllib.loads(TOML)
    del raw["kind"]
    with pytest.raises(FormSchemaError, match="rules\\[1\\]: field: 'kind' is not a field"):
        form_schema_from_dict(raw, "form.toml")
    raw["rules"] = [r for r in raw["rules"] if "kind" not in (r.get("when") or {}).get("field", "")]
    schema = form_schema_from_dict(raw, "form.toml")
    blank = next(p for p in write_blank_forms(schema, "Testrutin", tmp_path) if p.suffix == ".docx")
    assert len(docx.Document(str(blank)).tables) == 4  # three sections and the table, no kind boxes
    wb_path = tmp_path / "ifylld.xlsx"
    xlsx = next(p for p in write_blank_forms(schema, "Testrutin", tmp_path) if p.suffix == ".xlsx")
    wb = openpyxl.load_workbook(xlsx)
    ws = wb["Blankett"]
    label = next(c for row in ws.iter_rows() for c in row if c.value == "Förvaltning")
    ws.cell(label.row, label.column + 1, "Regionhälsan")
    wb.save(wb_path)
    facts = extract_form([Attachment(wb_path.name, "", wb_path.read_bytes())], schema, sandbox=False)
    assert facts.form is not None and facts.form.kinds_checked == []
    assert facts.form.fields["forvaltning"] == "Regionhälsan"
    codes = [r.code for r in validate_form(facts.form, schema, form_kinds=[], request_type_label="x", today=TODAY)]
    assert "form.missing_field" in codes and "form.type_mismatch" not in codes


REGIONS = ["Region Blekinge", "Region Dalarna", "Region Gotland", "Region Gävleborg", "Region Halland",
           "Region Jämtland Härjedalen", "Region Jönköpings län", "Region Kalmar län", "Region Kronoberg",
           "Region Norrbotten", "Region Skåne", "Region Stockholm", "Region Sörmland", "Region Uppsala",
           "Region Värmland", "Region Västerbotten", "Region Västernorrland", "Region Västmanland",
           "Region Örebro län", "Region Östergötland", "Västra Götalandsregionen"]


def test_a_long_list_gets_its_drop_down_from_a_hidden_sheet(tmp_path: Path) -> None:
    import tomllib

    raw = tomllib.loads(TOML)
    raw["lists"]["regioner"] = REGIONS
    raw["sections"][0]["fields"].append({"id": "region", "label": "Region", "type": "choice", "values": "regioner"})
    schema = form_schema_from_dict(raw, "form.toml")
    xlsx = next(p for p in write_blank_forms(schema, "Testrutin", tmp_path) if p.suffix == ".xlsx")
    wb = openpyxl.load_workbook(xlsx)
    lists = wb["Listor"]
    assert lists.sheet_state == "hidden"
    formulas = [dv.formula1 for dv in wb["Blankett"].data_validations.dataValidation]
    ref = next(f for f in formulas if f.startswith("Listor!"))
    column = ref.split("$")[1]
    assert [lists[f"{column}{i}"].value for i in range(1, len(REGIONS) + 1)] == REGIONS
    label = next(c for row in wb["Blankett"].iter_rows() for c in row if c.value == "Region")
    wb["Blankett"].cell(label.row, label.column + 1, "Region Skåne")
    wb.save(tmp_path / "ifylld.xlsx")
    facts = extract_form([Attachment("ifylld.xlsx", "", (tmp_path / "ifylld.xlsx").read_bytes())], schema,
                         sandbox=False)
    assert facts.form.fields["region"] == "Region Skåne" and facts.form.users == []


def test_at_least_counts_values_over_several_fields() -> None:
    import tomllib

    from parsers.forms import ParsedForm

    raw = tomllib.loads(TOML)
    raw["rules"].append({"kind": "at_least", "fields": ["enhet_1", "enhet_2"], "count": 2,
                         "when": {"field": "forvaltning", "equals": "Närhälsan"},
                         "message": "Ange båda enheterna för Närhälsan."})
    schema = form_schema_from_dict(raw, "form.toml")

    def codes(**change: object) -> list[str]:
        form = ParsedForm(kind="order", kinds_checked=["order"], filename="x.xlsx", format="xlsx",
                          fields={**FIELDS, "uppdrag": ["VoB SJF"], **change},
                          users=[{"row": 1, **person(1), "roller": ["Dashboard"], "atgard": "add"}])
        return [r.message for r in validate_form(form, schema, form_kinds=["order"], request_type_label="x",
                                                 today=TODAY)]

    assert codes() == []
    raw["rules"][-1]["when"] = {"field": "forvaltning", "one_of": ["Regionhälsan", "Närhälsan"]}
    schema = form_schema_from_dict(raw, "form.toml")
    assert codes(enhet_2=None) == ["Ange båda enheterna för Närhälsan."]
    raw["rules"][-1]["when"] = {"field": "forvaltning", "one_of": ["Regionhälsan"]}
    schema = form_schema_from_dict(raw, "form.toml")
    assert codes(enhet_2=None) == []
    raw["rules"][-1]["when"] = {"field": "forvaltning", "equals": "Närhälsan"}
    schema = form_schema_from_dict(raw, "form.toml")
    assert codes(enhet_2=None) == ["Ange båda enheterna för Närhälsan."]
    assert codes(enhet_2=None, forvaltning="Regionhälsan", enhet_1="Barnhälsovården Öst") == []
