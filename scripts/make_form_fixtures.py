"""Make the request-form fixtures under fixtures/forms/ (run from the repository root).

    .venv/bin/python scripts/make_form_fixtures.py [--libreoffice]

1. Generates the blank forms from the pack's form.toml (fixtures/forms/blank/).
2. Fills those blanks with openpyxl and python-docx, and builds hand-made layouts the way people
   really fill forms (value below the label, merged cells, no colons, odd case, X/☒/Ja ticks,
   legacy Word checkboxes, Excel dates and text dates, blank rows between users).
3. Writes fixtures/forms/expected.json: for each file, the data it was filled with and the reason
   codes validation should give. Tests compare the parser's output against it.
4. With --libreoffice, re-saves a few filled forms with `libreoffice --headless --convert-to` into
   fixtures/forms/libreoffice/ so the parsers also meet a second real writer.

Only Skatteverket's published test personnummer are used.
"""

from __future__ import annotations

import argparse
import copy
import json
import shutil
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import docx  # noqa: E402
import openpyxl  # noqa: E402
from docx.oxml import parse_xml  # noqa: E402
from openpyxl.styles import Alignment  # noqa: E402

from intake.blankforms import write_blank_forms  # noqa: E402
from rules.forms import FormSchema, load_form_schema  # noqa: E402

OUT = ROOT / "fixtures" / "forms"
SCHEMA = load_form_schema(ROOT / "rules" / "packs" / "mittvaccin" / "form.toml")
W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
W14 = "http://schemas.microsoft.com/office/word/2010/wordml"
MONTHS = ["jan", "feb", "mar", "apr", "maj", "jun", "jul", "aug", "sep", "okt", "nov", "dec"]

ORG = {"kommun": "Halmstad", "forvaltning": "Socialförvaltningen", "enhet": "Hemsjukvården Väster",
       "enhet_hsa_id": "SE2321000131-E000000000123"}
ORDERER = {"bestallare_namn": "Beata Beställare", "bestallare_titel": "Enhetschef",
           "bestallare_telefon": "035-13 10 00", "bestallare_epost": "beata.bestallare@halmstad.example",
           "datum": date(2026, 11, 20)}


def user(n: int, **over: object) -> dict[str, object]:
    pnr = ["19121212-1212", "19870521-2382", "20000229-2381", "19440813-9089", "19571230-2842",
           "19610729-3059", "19791230-9296"][n]
    base = {"fornamn": ["Tolvan", "Anna", "Skott", "Greta", "Nils", "Maja", "Olle"][n],
            "efternamn": f"Testperson{n + 1}", "identitet": pnr,
            "epost": f"testperson{n + 1}@halmstad.example", "telefon": f"035-13 10 0{n}", "titel": "Sjuksköterska",
            "roll": ["Vaccinatör", "Administratör", "Läsbehörighet", "Vaccinatör", "Registrerare", "Ordinatör",
                     "Vaccinatör"][n],
            "giltig_fran": date(2026, 12, 1), "giltig_till": None}
    base.update(over)
    return base


def label_of(field_id: str, schema: FormSchema = SCHEMA) -> str:
    for f in (*schema.fields, *schema.users.columns):
        if f.id == field_id:
            return f"{f.label} ({f.hint})" if f.hint else f.label
    raise KeyError(field_id)


def option_label(kind: str) -> str:
    opt = SCHEMA.option(kind)
    assert opt is not None
    return opt.label


# --- filling the generated blanks ---------------------------------------------------------------------


def fill_xlsx_blank(blank: Path, out: Path, kind: str | None, fields: dict, users: list[dict], *,
                    tick: str = "X", gaps: tuple[int, ...] = (), dates_as_text: bool = False) -> None:
    wb = openpyxl.load_workbook(blank)
    ws = wb.active
    by_text = {}
    for row in ws.iter_rows():
        for cell in row:
            if isinstance(cell.value, str):
                by_text.setdefault(cell.value, cell)
    if kind:
        cell = by_text[option_label(kind)]
        ws.cell(cell.row, cell.column + 1, tick)
    for fid, value in fields.items():
        cell = by_text[label_of(fid)]
        if isinstance(value, date) and dates_as_text:
            value = value.strftime("%d/%m/%Y")
        ws.cell(cell.row, cell.column + 1, value)
    header = by_text[SCHEMA.users.columns[0].label].row
    r = header + 1
    for i, u in enumerate(users):
        if i in gaps:
            r += 1  # a blank row left between users
        for c, col in enumerate(SCHEMA.users.columns, start=1):
            value = u.get(col.id)
            if isinstance(value, date) and dates_as_text:
                value = value.isoformat()
            ws.cell(r, c, value)
        r += 1
    wb.save(out)


def _tick_sdt(sdt) -> None:
    sdt.find(f".//{{{W14}}}checked").set(f"{{{W14}}}val", "1")
    sdt.find(f".//{{{W}}}t").text = "☒"


def fill_docx_blank(blank: Path, out: Path, kind: str | None, fields: dict, users: list[dict]) -> None:
    document = docx.Document(str(blank))
    kind_table, *tables = document.tables
    for row in kind_table.rows:
        if kind and row.cells[1].text == option_label(kind):
            _tick_sdt(row.cells[0]._tc.find(f".//{{{W}}}sdt"))
    for table in tables:
        first = table.rows[0].cells[0].text
        if first == SCHEMA.users.columns[0].label:
            for i, u in enumerate(users):
                for c, col in enumerate(SCHEMA.users.columns):
                    value = u.get(col.id)
                    table.rows[1 + i].cells[c].text = value.isoformat() if isinstance(value, date) else (value or "")
            continue
        for row in table.rows:
            for fid in fields:
                if row.cells[0].text == label_of(fid):
                    value = fields[fid]
                    row.cells[1].text = value.isoformat() if isinstance(value, date) else value
    document.save(str(out))


# --- hand-built layouts ---------------------------------------------------------------------------------


def handbuilt_below_merged(out: Path, users: list[dict]) -> None:
    """Labels in upper case without colons, values BELOW them in merged cells; ticks with "X"
    beside horizontal options; users on a second sheet with blank rows; dates as text."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Beställning"
    ws["A1"] = "BEHÖRIGHET MITTVACCIN"
    ws["A3"] = "TYP AV BESTÄLLNING"
    ws["A4"], ws["B4"], ws["C4"], ws["D4"], ws["E4"], ws["F4"] = "Nyupplägg", "X", "Förändring", None, "Avslut", None
    ws["A6"] = "ORGANISATION"
    for col, (fid, label) in zip("ACEG", [("kommun", "KOMMUN"), ("forvaltning", "förvaltning"),
                                          ("enhet", "ENHETENS NAMN"), ("enhet_hsa_id", "hsa-id för enheten")],
                                 strict=True):
        ws[f"{col}7"] = label
        ws[f"{col}8"] = ORG[fid]
        nxt = chr(ord(col) + 1)
        ws.merge_cells(f"{col}7:{nxt}7")
        ws.merge_cells(f"{col}8:{nxt}8")
    ws["A10"] = "Beställarens uppgifter"
    ws["A11"], ws["C11"], ws["E11"], ws["G11"], ws["I11"] = "NAMN", "TITEL", "TELEFON", "E-POST", "DATUM"
    ws["A12"], ws["C12"], ws["E12"] = ORDERER["bestallare_namn"], ORDERER["bestallare_titel"], \
        ORDERER["bestallare_telefon"]
    ws["G12"], ws["I12"] = ORDERER["bestallare_epost"], "20261120"
    us = wb.create_sheet("Användare")
    us.append(["Användare som ska ha behörighet"])
    us.append(["förnamn", "EFTERNAMN", "Personnr", "Mejl", "Tel", "Befattning", "Roll", "Fr.o.m.", "T.o.m."])
    for i, u in enumerate(users):
        if i in (1, 3):
            us.append([None] * 9)
        us.append([u["fornamn"], u["efternamn"], u["identitet"], u["epost"], u["telefon"], u["titel"], u["roll"],
                   u["giltig_fran"].strftime("%d/%m/%Y") if u["giltig_fran"] else None,
                   u["giltig_till"].strftime("%Y%m%d") if u["giltig_till"] else None])
    wb.save(out)


def handbuilt_inline_termination(out: Path, users: list[dict]) -> None:
    """"Label: value" in one cell, a ☒ tick written in the option's cell, Excel dates, termination."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Avslut"
    ws["B2"] = "Behörighet – IT-system MittVaccin blankett kommun"
    ws["B4"] = "Beställningen gäller:"
    ws["B5"] = "☐ Nyupplägg/ny behörighet   ☐ Förändring/ändrad behörighet   ☒ Avslut"
    ws["B7"] = "Kommun:   Varbergs kommun"
    ws["B8"] = "Förvaltning/administration: Vård och omsorg"
    ws["B9"] = "enhet : Äldreboendet Solgården"
    ws["B11"] = "Förnamn"
    for c, label in enumerate(["Efternamn", "Personnummer", "E-post", "Telefon", "Titel", "Roll i MittVaccin",
                               "Giltig från", "Avslutsdatum"], start=3):
        ws.cell(11, c, label)
    for r, u in enumerate(users, start=12):
        for c, fid in enumerate(["fornamn", "efternamn", "identitet", "epost", "telefon", "titel", "roll",
                                 "giltig_fran", "giltig_till"], start=2):
            cell = ws.cell(r, c, u[fid])
            if isinstance(u[fid], date):
                cell.number_format = "yyyy-mm-dd"
    r = 12 + len(users) + 2
    ws.cell(r, 2, "Beställare")
    for i, (label, fid) in enumerate([("Namn:", "bestallare_namn"), ("Titel:", "bestallare_titel"),
                                      ("Telefon:", "bestallare_telefon"), ("E-post:", "bestallare_epost"),
                                      ("Datum:", "datum")], start=1):
        ws.cell(r + i, 2, label)
        cell = ws.cell(r + i, 3, ORDERER[fid])
        cell.alignment = Alignment(horizontal="left")
        if isinstance(ORDERER[fid], date):
            cell.number_format = "yyyy-mm-dd"
    wb.save(out)


def handbuilt_paragraphs_docx(out: Path, users: list[dict]) -> None:
    """"Label: value" paragraphs, ticks as ☒ in one paragraph, a users table with synonym headers
    and text dates such as "1 dec 2026"."""
    d = docx.Document()
    d.add_heading("Behörighet MittVaccin", 1)
    d.add_paragraph("Ärendet gäller: ☐ Nyupplägg  ☒ Förändring  ☐ Avslut")
    d.add_paragraph("KOMMUN: Kungsbacka")
    d.add_paragraph("Förvaltning:\tIndividen och familjen")
    d.add_paragraph("Arbetsplats: Hemtjänst Norr")
    d.add_paragraph("Användare")
    headers = ["Förnamn", "Efternamn", "Personnummer/HSA-id", "E-postadress", "Mobil", "Yrke", "Behörighetsroll",
               "Startdatum", "Slutdatum"]
    t = d.add_table(rows=1, cols=len(headers))
    for c, h in enumerate(headers):
        t.rows[0].cells[c].text = h
    for u in users:
        cells = t.add_row().cells
        for c, fid in enumerate(["fornamn", "efternamn", "identitet", "epost", "telefon", "titel", "roll",
                                 "giltig_fran", "giltig_till"]):
            v = u[fid]
            cells[c].text = f"{v.day} {MONTHS[v.month - 1]} {v.year}" if isinstance(v, date) else (v or "")
    d.add_paragraph("Beställare")
    d.add_paragraph(f"Namn: {ORDERER['bestallare_namn']}")
    d.add_paragraph(f"Titel: {ORDERER['bestallare_titel']}")
    d.add_paragraph(f"Telefon: {ORDERER['bestallare_telefon']}")
    d.add_paragraph(f"E-post: {ORDERER['bestallare_epost']}")
    d.add_paragraph("Datum: 2026-11-20")
    d.save(str(out))


_LEGACY_BOX = (
    f'<w:r xmlns:w="{W}"><w:fldChar w:fldCharType="begin"><w:ffData><w:name w:val="{{name}}"/><w:enabled/>'
    '<w:calcOnExit w:val="0"/><w:checkBox><w:sizeAuto/><w:default w:val="{default}"/></w:checkBox>'
    '</w:ffData></w:fldChar></w:r>'
    f'<w:r xmlns:w="{W}"><w:instrText xml:space="preserve"> FORMCHECKBOX </w:instrText></w:r>'
    f'<w:r xmlns:w="{W}"><w:fldChar w:fldCharType="end"/></w:r>'
)


def handbuilt_legacy_docx(out: Path, users: list[dict]) -> None:
    """Legacy Word form checkboxes (FORMCHECKBOX) for the kind; labels over values in a table
    (value below the label); "Ja" as a tick is not used here, see the xlsx blanks."""
    d = docx.Document()
    d.add_paragraph("Behörighet – IT-system MittVaccin blankett kommun")
    d.add_paragraph("Typ av beställning")
    for opt in SCHEMA.kind.options:
        p = d.add_paragraph()
        for xml in _LEGACY_BOX.replace("{name}", opt.value).replace("{default}",
                                                                     "1" if opt.value == "new" else "0").split(
                "</w:r>")[:-1]:
            p._p.append(parse_xml(xml + "</w:r>"))
        p.add_run(" " + opt.label)
    t = d.add_table(rows=2, cols=4)
    for c, (label, fid) in enumerate([("Kommun", "kommun"), ("Förvaltning / administration", "forvaltning"),
                                      ("Enhet", "enhet"), ("Enhetens HSA-id", "enhet_hsa_id")]):
        t.rows[0].cells[c].text = label
        t.rows[1].cells[c].text = {**ORG, "kommun": "Laholm"}[fid]
    ut = d.add_table(rows=1, cols=9)
    for c, col in enumerate(SCHEMA.users.columns):
        ut.rows[0].cells[c].text = col.label + ":"
    for u in users:
        cells = ut.add_row().cells
        for c, col in enumerate(SCHEMA.users.columns):
            v = u[col.id]
            cells[c].text = v.strftime("%Y%m%d") if isinstance(v, date) else (v or "")
    d.add_paragraph("Beställare")
    bt = d.add_table(rows=5, cols=2)
    for r, fid in enumerate(["bestallare_namn", "bestallare_titel", "bestallare_telefon", "bestallare_epost", "datum"]):
        bt.rows[r].cells[0].text = label_of(fid)
        v = ORDERER[fid]
        bt.rows[r].cells[1].text = "20 november 2026" if isinstance(v, date) else v
    d.save(str(out))


# --- the catalogue ----------------------------------------------------------------------------------------


def _plain(v: object) -> object:
    return v.isoformat() if isinstance(v, date) else v


def build(libreoffice: bool) -> None:
    blank_dir = OUT / "blank"
    xlsx_blank, docx_blank = write_blank_forms(SCHEMA, "MittVaccin – Region Halland", blank_dir)
    filled = OUT / "filled"
    filled.mkdir(parents=True, exist_ok=True)
    expected: dict[str, dict] = {}

    def record(name: str, kind, fields, users, codes, fmt):
        expected[name] = {"kind": kind, "format": fmt, "fields": {k: _plain(v) for k, v in fields.items()},
                          "users": [{k: _plain(v) for k, v in u.items()} for u in users], "codes": codes}

    full = {**ORG, **ORDERER}
    one = [user(0)]
    five = [user(i) for i in range(5)]

    cases = [
        ("blank_new_1user.xlsx", "xlsx", "new", full, one, {"tick": "X"}, []),
        ("blank_new_5users_gaps.xlsx", "xlsx", "new", full, five, {"tick": "☒", "gaps": (2, 4)}, []),
        ("blank_change_ja_textdates.xlsx", "xlsx", "change", full, [user(1), user(2)],
         {"tick": "Ja", "dates_as_text": True}, []),
        ("blank_missing_fields.xlsx", "xlsx", "new", {k: v for k, v in full.items() if k != "kommun"},
         [user(0, epost=None, giltig_fran=None)], {},
         ["form.missing_field", "form.missing_field", "form.missing_field"]),
        ("blank_bad_checkdigit.xlsx", "xlsx", "new", full, [user(0), user(1, identitet="19870521-2383")], {},
         ["form.invalid_field"]),
        ("blank_new_1user.docx", "docx", "new", full, one, {}, []),
        ("blank_termination.docx", "docx", "termination", full,
         [user(3, roll=None, giltig_fran=None, giltig_till=date(2026, 12, 31))], {}, []),
        ("blank_wrong_kommun.docx", "docx", "new", {**full, "kommun": "Göteborg"}, [user(4)], {},
         ["form.invalid_field"]),
        ("blank_date_order.docx", "docx", "change", full,
         [user(5, giltig_fran=date(2026, 12, 1), giltig_till=date(2026, 11, 1))], {}, ["form.invalid_field"]),
    ]
    for name, fmt, kind, fields, users, opts, codes in cases:
        if fmt == "xlsx":
            fill_xlsx_blank(xlsx_blank, filled / name, kind, fields, users, **opts)
        else:
            fill_docx_blank(docx_blank, filled / name, kind, fields, users)
        if opts.get("gaps"):
            rows, r = [], 1
            for i in range(len(users)):
                r += 1 if i in opts["gaps"] else 0
                rows.append(r)
                r += 1
        else:
            rows = list(range(1, len(users) + 1))
        record(f"filled/{name}", kind, fields, [{"row": rw, **u} for rw, u in zip(rows, users, strict=True)],
               codes, fmt)

    hand = OUT / "handmade"
    hand.mkdir(parents=True, exist_ok=True)
    hb_users = [user(i, giltig_till=date(2027, 6, 30) if i == 0 else None) for i in range(3)]
    handbuilt_below_merged(hand / "below_merged_nocolon.xlsx", hb_users)
    record("handmade/below_merged_nocolon.xlsx", "new", full,
           [{"row": rw, **u} for rw, u in zip([1, 3, 4], hb_users, strict=True)], [], "xlsx")
    term_users = [user(6, roll=None, giltig_fran=date(2024, 1, 15), giltig_till=date(2026, 12, 31))]
    handbuilt_inline_termination(hand / "inline_colon_termination.xlsx", term_users)
    record("handmade/inline_colon_termination.xlsx", "termination",
           {"kommun": "Varbergs kommun", "forvaltning": "Vård och omsorg", "enhet": "Äldreboendet Solgården",
            **ORDERER}, [{"row": 1, **u} for u in term_users], [], "xlsx")
    par_users = [user(i) for i in (1, 2)]
    handbuilt_paragraphs_docx(hand / "paragraphs_change.docx", par_users)
    record("handmade/paragraphs_change.docx", "change",
           {"kommun": "Kungsbacka", "forvaltning": "Individen och familjen", "enhet": "Hemtjänst Norr",
            **ORDERER}, [{"row": i, **u} for i, u in enumerate(par_users, start=1)], [], "docx")
    leg_users = [user(0)]
    handbuilt_legacy_docx(hand / "legacy_checkbox_below.docx", leg_users)
    record("handmade/legacy_checkbox_below.docx", "new", {**ORG, "kommun": "Laholm", **ORDERER},
           [{"row": 1, **u} for u in leg_users], [], "docx")

    if libreoffice:
        lo_dir = OUT / "libreoffice"
        lo_dir.mkdir(parents=True, exist_ok=True)
        for rel in ["filled/blank_new_5users_gaps.xlsx", "filled/blank_termination.docx",
                    "handmade/paragraphs_change.docx"]:
            src = OUT / rel
            with tempfile.TemporaryDirectory() as tmp:
                subprocess.run(["libreoffice", f"-env:UserInstallation=file://{tmp}/profile", "--headless",
                                "--convert-to", src.suffix[1:], "--outdir", f"{tmp}/out", str(src)],
                               check=True, capture_output=True, timeout=180)
                target = lo_dir / src.name
                shutil.copy(Path(tmp) / "out" / src.name, target)
            entry = copy.deepcopy(expected[rel])
            expected[f"libreoffice/{src.name}"] = entry
    else:
        old = json.loads((OUT / "expected.json").read_text("utf-8")) if (OUT / "expected.json").exists() else {}
        expected.update({k: v for k, v in old.items() if k.startswith("libreoffice/")})

    (OUT / "expected.json").write_text(json.dumps(expected, ensure_ascii=False, indent=1, sort_keys=True) + "\n",
                                       "utf-8")
    print(f"wrote {len(expected)} fixtures under {OUT}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--libreoffice", action="store_true", help="also re-save some forms with LibreOffice")
    build(parser.parse_args().libreoffice)
