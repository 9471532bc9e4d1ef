"""Blank request forms (.xlsx and .docx) generated from a routine's form schema.

The form handed to senders and the parser read the same labels from the same form.toml, so they
cannot drift apart. Layout: title, instructions, request-kind checkboxes, the first section
(the organisation), the users table, then the remaining sections (the orderer).
"""

from __future__ import annotations

import re
from pathlib import Path

from parsers.schema import FieldSpec, FormSchema, Section

HEADING_INSTRUCTIONS = "Instruktioner"
NOTE_BOXES = "Kryssa i rutan"  # shown beside the kind label
FILL_HINT = {
    "date": "ÅÅÅÅ-MM-DD",
    "personnummer_or_hsa": "ÅÅÅÅMMDD-NNNN eller HSA-id",
}


def _slug(text: str) -> str:
    text = text.lower().translate(str.maketrans("åäöé", "aaoe"))
    return re.sub(r"[^a-z0-9]+", "-", text).strip("-") or "blankett"


def _label(spec: FieldSpec) -> str:
    return f"{spec.label} ({spec.hint})" if spec.hint else spec.label


def _order(schema: FormSchema) -> tuple[tuple[Section, ...], tuple[Section, ...]]:
    return schema.sections[:1], schema.sections[1:]


def write_blank_forms(schema: FormSchema, routine_name: str, out_dir: Path) -> list[Path]:
    """Write the blank form as .xlsx and .docx into ``out_dir``; return the paths written."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = _slug(schema.name)
    xlsx = out_dir / f"{stem}.xlsx"
    docx_path = out_dir / f"{stem}.docx"
    _write_xlsx(schema, routine_name, xlsx)
    _write_docx(schema, routine_name, docx_path)
    return [xlsx, docx_path]


# --- Excel -------------------------------------------------------------------------------------------


def _write_xlsx(schema: FormSchema, routine_name: str, path: Path) -> None:
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.datavalidation import DataValidation

    thin = Side(style="thin", color="808080")
    box = Border(left=thin, right=thin, top=thin, bottom=thin)
    bold = Font(bold=True)
    fill = PatternFill("solid", fgColor="DDEBF7")
    ncols = len(schema.users.columns)

    wb = Workbook()
    ws = wb.active
    ws.title = "Blankett"
    row = 1
    ws.cell(row, 1, schema.name).font = Font(bold=True, size=14)
    ws.merge_cells(start_row=row, start_column=1, end_row=row, end_column=ncols)
    row += 1
    ws.cell(row, 1, routine_name).font = Font(italic=True)
    row += 2
    ws.cell(row, 1, HEADING_INSTRUCTIONS).font = bold
    row += 1
    for text in schema.instructions:
        ws.cell(row, 1, text).alignment = Alignment(wrap_text=False)
        ws.merge_cells(start_row=row, start_column=1, end_row=row, end_column=ncols)
        row += 1
    row += 1

    ws.cell(row, 1, schema.kind.label).font = bold
    ws.cell(row, 2, NOTE_BOXES).font = Font(italic=True, color="606060")
    row += 1
    for option in schema.kind.options:
        ws.cell(row, 1, option.label)
        ws.cell(row, 2).border = box
        ws.cell(row, 2).alignment = Alignment(horizontal="center")
        row += 1
    row += 1

    def section(sec: Section, row: int) -> int:
        ws.cell(row, 1, sec.title).font = bold
        ws.cell(row, 1).fill = fill
        row += 1
        for spec in sec.fields:
            ws.cell(row, 1, _label(spec))
            ws.merge_cells(start_row=row, start_column=2, end_row=row, end_column=4)
            for c in range(2, 5):
                ws.cell(row, c).border = box
            if spec.type == "date":
                ws.cell(row, 2).number_format = "yyyy-mm-dd"
            if spec.type == "choice":
                dv = DataValidation(type="list", formula1='"' + ",".join(spec.values) + '"', allow_blank=True)
                ws.add_data_validation(dv)
                dv.add(ws.cell(row, 2))
            row += 1
        return row + 1

    first, rest = _order(schema)
    for sec in first:
        row = section(sec, row)

    ws.cell(row, 1, schema.users.title).font = bold
    ws.cell(row, 1).fill = fill
    row += 1
    for c, col in enumerate(schema.users.columns, start=1):
        cell = ws.cell(row, c, col.label)
        cell.font = bold
        cell.border = box
        cell.alignment = Alignment(wrap_text=True, vertical="top")
    row += 1
    for r in range(row, row + schema.users.blank_rows):
        for c, col in enumerate(schema.users.columns, start=1):
            cell = ws.cell(r, c)
            cell.border = box
            if col.type == "date":
                cell.number_format = "yyyy-mm-dd"
            if col.type in ("personnummer_or_hsa", "phone"):
                cell.number_format = "@"  # text: keeps leading zeros and separators
    for c, col in enumerate(schema.users.columns, start=1):
        if col.type == "choice":
            letter = get_column_letter(c)
            dv = DataValidation(type="list", formula1='"' + ",".join(col.values) + '"', allow_blank=True)
            ws.add_data_validation(dv)
            dv.add(f"{letter}{row}:{letter}{row + schema.users.blank_rows - 1}")
    row += schema.users.blank_rows + 1

    for sec in rest:
        row = section(sec, row)

    ws.column_dimensions["A"].width = 34
    for c in range(2, ncols + 1):
        ws.column_dimensions[get_column_letter(c)].width = 18
    ws.freeze_panes = None
    wb.properties.title = schema.name
    wb.properties.creator = "intake"
    wb.save(path)


# --- Word --------------------------------------------------------------------------------------------

_CHECKBOX_SDT = (
    '<w:sdt xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main" '
    'xmlns:w14="http://schemas.microsoft.com/office/word/2010/wordml">'
    "<w:sdtPr><w:alias w:val=\"{alias}\"/>"
    "<w14:checkbox><w14:checked w14:val=\"0\"/>"
    '<w14:checkedState w14:val="2612" w14:font="MS Gothic"/>'
    '<w14:uncheckedState w14:val="2610" w14:font="MS Gothic"/></w14:checkbox></w:sdtPr>'
    '<w:sdtContent><w:r><w:rPr><w:rFonts w:ascii="MS Gothic" w:eastAsia="MS Gothic" w:hAnsi="MS Gothic"/>'
    "</w:rPr><w:t>\u2610</w:t></w:r></w:sdtContent></w:sdt>"
)


def checkbox_sdt(alias: str):
    """A Word checkbox content control (w14:checkbox), unticked, as an lxml element."""
    from xml.sax.saxutils import quoteattr

    from docx.oxml import parse_xml

    return parse_xml(_CHECKBOX_SDT.replace('"{alias}"', quoteattr(alias)))


def _write_docx(schema: FormSchema, routine_name: str, path: Path) -> None:
    import docx
    from docx.enum.section import WD_ORIENT
    from docx.shared import Cm, Pt

    document = docx.Document()
    sec0 = document.sections[0]
    sec0.orientation = WD_ORIENT.LANDSCAPE
    sec0.page_width, sec0.page_height = sec0.page_height, sec0.page_width
    for side in ("left_margin", "right_margin"):
        setattr(sec0, side, Cm(1.5))
    document.core_properties.title = schema.name
    document.core_properties.author = "intake"

    document.add_heading(schema.name, level=1)
    document.add_paragraph(routine_name).runs[0].italic = True
    document.add_heading(HEADING_INSTRUCTIONS, level=2)
    for text in schema.instructions:
        document.add_paragraph(text, style="List Bullet")

    document.add_heading(schema.kind.label, level=2)
    table = document.add_table(rows=0, cols=2)
    table.style = "Table Grid"
    for option in schema.kind.options:
        cells = table.add_row().cells
        cells[0].paragraphs[0]._p.append(checkbox_sdt(option.label))
        cells[1].text = option.label
        cells[0].width = Cm(1.2)
        cells[1].width = Cm(12)

    def section(sec: Section) -> None:
        document.add_heading(sec.title, level=2)
        t = document.add_table(rows=0, cols=2)
        t.style = "Table Grid"
        for spec in sec.fields:
            cells = t.add_row().cells
            cells[0].text = _label(spec)
            cells[0].width = Cm(7)
            cells[1].width = Cm(12)

    first, rest = _order(schema)
    for sec in first:
        section(sec)

    document.add_heading(schema.users.title, level=2)
    hints = [f"{c.label}: {FILL_HINT[c.type]}" for c in schema.users.columns if c.type in FILL_HINT]
    if hints:
        document.add_paragraph("Format – " + "; ".join(hints) + ".")
    users = document.add_table(rows=1 + schema.users.blank_rows, cols=len(schema.users.columns))
    users.style = "Table Grid"
    for c, col in enumerate(schema.users.columns):
        cell = users.rows[0].cells[c]
        cell.text = col.label
        for run in cell.paragraphs[0].runs:
            run.bold = True
            run.font.size = Pt(9)

    for sec in rest:
        section(sec)
    document.save(path)
