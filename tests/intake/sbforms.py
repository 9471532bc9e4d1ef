"""The 1177 symtombedömning pack's own blank forms (``intake forms symtombedomning``) filled in by
openpyxl and python-docx, and orders made of them, for the pack's tests."""

from __future__ import annotations

import io
import tomllib
from pathlib import Path

import docx
import openpyxl

from intake.blankforms import write_blank_forms
from parsers.schema import FormSchema, form_schema_from_dict, load_form_schema
from tests.mailmaker import DOCX, XLSX, make_mail

ROOT = Path(__file__).resolve().parents[2]
PACK = ROOT / "rules" / "packs" / "symtombedomning"
SCHEMA = load_form_schema(PACK / "form.toml")
ROUTINE_NAME = "Beställning av behörighet – 1177 symtombedömning och hänvisning"
W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
W14 = "http://schemas.microsoft.com/office/word/2010/wordml"

ORDER = "1177 symtombedömning – Beställning"
CANCEL = "1177 symtombedömning – Avbeställning"
ORDERER = "Olga Ordnare <olga.ordnare@region-halland.example.test>"
ORDERER_EMAIL = "olga.ordnare@region-halland.example.test"
FIELDS = {"region": "Region Halland", "vardenhet": "Vårdcentralen Testbyn",
          "bestallare_namn": "Olga Ordnare", "bestallare_epost": ORDERER_EMAIL}
PERSONS = [
    {"namn": "Tolvan Test", "hsa_id": "SE2321000131-P000000000001", "epost": "tolvan@example.test",
     "roller": ["Dashboard", "Flygledartornet"], "atgard": "Lägg till"},
    {"namn": "Greta Test", "hsa_id": "SE2321000131-P000000000002", "epost": "greta@example.test",
     "roller": ["Systemadministratör"], "atgard": "Lägg till"},
    {"namn": "Sven Test", "hsa_id": "SE2321000131-P000000000003", "epost": "sven@example.test",
     "roller": ["Systemadministratör", "Dashboard", "Flygledartornet"], "atgard": "Ta bort"},
]


def cell_schema() -> FormSchema:
    """The pack's form with its roles printed as one column (layout "cell") instead of checkbox columns."""
    text = (PACK / "form.toml").read_text("utf-8").replace('layout = "checkboxes"', 'layout = "cell"')
    return form_schema_from_dict(tomllib.loads(text), "form.toml (cell layout)")


def blank(tmp: Path, suffix: str, schema: FormSchema = SCHEMA) -> Path:
    return next(p for p in write_blank_forms(schema, ROUTINE_NAME, tmp) if p.suffix == suffix)


def _label(field_id: str, schema: FormSchema) -> str:
    spec = schema.spec(field_id)
    return f"{spec.label} ({spec.hint})" if spec.hint else spec.label


def _roles_text(roles) -> str:
    return roles if isinstance(roles, str) else ", ".join(roles)


def fill_xlsx(path: Path, out: Path, fields: dict, persons: list[dict], schema: FormSchema = SCHEMA,
              tick: str = "X") -> Path:
    wb = openpyxl.load_workbook(path)
    ws = wb.active
    by_text: dict[str, openpyxl.cell.Cell] = {}
    for row in ws.iter_rows():
        for cell in row:
            if isinstance(cell.value, str):
                by_text.setdefault(cell.value, cell)
    for fid, value in fields.items():
        cell = by_text[_label(fid, schema)]
        ws.cell(cell.row, cell.column + 1, value)
    header = by_text[_label("namn", schema)].row
    columns = {ws.cell(header, c).value: c for c in range(1, ws.max_column + 1) if ws.cell(header, c).value}
    roles_spec = schema.spec("roller")
    for i, person in enumerate(persons, start=1):
        r = header + i
        for cid in ("namn", "hsa_id", "epost", "atgard"):
            if person.get(cid) is not None:
                ws.cell(r, columns[_label(cid, schema)], person[cid])
        roles = person.get("roller") or []
        if roles_spec.layout == "checkboxes" and not isinstance(roles, str):
            for role in roles:
                ws.cell(r, columns[role], tick)
        else:
            ws.cell(r, columns[_label("roller", schema)], _roles_text(roles))
    wb.save(out)
    return out


def _tick(cell) -> None:
    sdt = cell._tc.find(f".//{{{W}}}sdt")
    sdt.find(f".//{{{W14}}}checked").set(f"{{{W14}}}val", "1")
    sdt.find(f".//{{{W}}}t").text = "☒"


def fill_docx(path: Path, out: Path, fields: dict, persons: list[dict], schema: FormSchema = SCHEMA) -> Path:
    document = docx.Document(str(path))
    labels = {_label(fid, schema): fid for fid in fields}
    roles_spec = schema.spec("roller")
    for table in document.tables:
        heads = [c.text for c in table.rows[min(1, len(table.rows) - 1)].cells]
        first = [c.text for c in table.rows[0].cells]
        head_row = 1 if _label("namn", schema) in heads else 0 if _label("namn", schema) in first else None
        if head_row is not None:
            heads = [c.text for c in table.rows[head_row].cells]
            for i, person in enumerate(persons, start=1):
                cells = table.rows[head_row + i].cells
                for cid in ("namn", "hsa_id", "epost", "atgard"):
                    if person.get(cid) is not None:
                        cells[heads.index(_label(cid, schema))].text = person[cid]
                roles = person.get("roller") or []
                if roles_spec.layout == "checkboxes" and not isinstance(roles, str):
                    for role in roles:
                        _tick(cells[heads.index(role)])
                else:
                    cells[heads.index(_label("roller", schema))].text = _roles_text(roles)
            continue
        for row in table.rows:
            fid = labels.get(row.cells[0].text)
            if fid is not None:
                row.cells[1].text = fields[fid]
    document.save(str(out))
    return out


def form_bytes(tmp: Path, suffix: str = ".xlsx", fields: dict | None = None, persons: list[dict] | None = None,
               schema: FormSchema = SCHEMA) -> tuple[str, bytes, str]:
    """A filled form as an attachment tuple."""
    tmp.mkdir(parents=True, exist_ok=True)
    out = tmp / f"bestallning{suffix}"
    fill = fill_xlsx if suffix == ".xlsx" else fill_docx
    fill(blank(tmp / "blank", suffix, schema), out, FIELDS if fields is None else fields,
         PERSONS if persons is None else persons, schema)
    return (out.name, out.read_bytes(), XLSX if suffix == ".xlsx" else DOCX)


def order_mail(tmp: Path, *, subject: str = ORDER, sender: str = ORDERER, fields: dict | None = None,
               persons: list[dict] | None = None, suffix: str = ".xlsx", message_id: str = "auto",
               date: str | None = None) -> bytes:
    """An order as a requester sends it: a short body, the filled form attached."""
    extra = {"date": date} if date else {}
    return make_mail(subject=subject, body="Hej!\nHär kommer en beställning, blanketten är bifogad.\n",
                     sender=sender, to="symtombedomning@inera.example.test", message_id=message_id,
                     attachments=[form_bytes(tmp, suffix, fields, persons)], **extra)


def xlsx_of(rows: list[list], title: str = "Beställare") -> bytes:
    """An .xlsx sheet of ``rows`` (the first is the header), as an admin would write an orderer list."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = title
    for row in rows:
        ws.append(row)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
