"""Blank request forms (.xlsx and .docx) generated from a routine's form schema.

The form handed to senders and the parser read the same labels from the same form.toml, so they
cannot drift apart. Layout: title, instructions, request-kind checkboxes (when the form has them),
the first section (the organisation), the persons table, then the remaining sections (parties such
as the orderer and the attestant). In the table, a multi-valued column with ``layout =
"checkboxes"`` becomes one column per value under a common heading (Excel users type X, Word
users tick a box); single choices and the per-row action get an Excel drop-down.
"""

from __future__ import annotations

import re
from pathlib import Path

from parsers.schema import FIELD_TYPES, FieldSpec, FormSchema, Section

HEADING_INSTRUCTIONS = "Instruktioner"
NOTE_BOXES = "Kryssa i rutan"  # shown beside the kind label
NOTE_TICK = "skriv X"  # beside the heading of a group of checkbox columns
HINT_MANY = "flera värden skrivs med komma emellan"  # a multi-valued column written in one cell
HINT_ACTION = "{values}"  # the action column: its options
FILL_HINT = {name: t.fill_hint for name, t in FIELD_TYPES.items() if t.fill_hint}
YES_NO_CHOICES = ("Ja", "Nej")  # the drop-down of a yes_no field
LIST_SHEET = "Listor"  # hidden sheet holding drop-down values too long for a list literal


def _columns(schema: FormSchema) -> list[tuple[FieldSpec, str | None]]:
    """The table's columns as printed: (column, None), or (column, value) for each checkbox column."""
    out: list[tuple[FieldSpec, str | None]] = []
    for col in schema.users.columns:
        if col.multi and col.layout == "checkboxes":
            out.extend((col, v) for v in col.values)
        else:
            out.append((col, None))
    return out


def _groups(columns: list[tuple[FieldSpec, str | None]]) -> list[tuple[int, int, FieldSpec]]:
    """(first index, last index, column) of each run of checkbox columns."""
    groups: list[tuple[int, int, FieldSpec]] = []
    for i, (col, value) in enumerate(columns):
        if value is None:
            continue
        if groups and groups[-1][2] is col and groups[-1][1] == i - 1:
            groups[-1] = (groups[-1][0], i, col)
        else:
            groups.append((i, i, col))
    return groups


def _hints(columns: list[tuple[FieldSpec, str | None]]) -> list[str]:
    hints = []
    for col, value in columns:
        if value is not None:
            continue
        if col.type in FILL_HINT:
            hints.append(f"{col.label}: {FILL_HINT[col.type]}")
        elif col.multi:
            hints.append(f"{col.label}: {HINT_MANY}")
        elif col.type == "action":
            hints.append(f"{col.label}: {HINT_ACTION.format(values=' / '.join(o.label for o in col.options))}")
    return hints


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
    columns = _columns(schema)
    ncols = len(columns)

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

    if schema.kind.options:
        ws.cell(row, 1, schema.kind.label).font = bold
        ws.cell(row, 2, NOTE_BOXES).font = Font(italic=True, color="606060")
        row += 1
        for option in schema.kind.options:
            ws.cell(row, 1, option.label)
            ws.cell(row, 2).border = box
            ws.cell(row, 2).alignment = Alignment(horizontal="center")
            row += 1
        row += 1

    def drop_down(values: list[str] | tuple[str, ...], where: str) -> None:
        literal = '"' + ",".join(values) + '"'
        if len(literal) <= 255:  # Excel's limit for a list written in the validation itself
            formula = literal
        else:
            lists = wb[LIST_SHEET] if LIST_SHEET in wb.sheetnames else wb.create_sheet(LIST_SHEET)
            lists.sheet_state = "hidden"
            col = lists.max_column + 1 if lists.max_row > 1 or lists["A1"].value is not None else 1
            for r, value in enumerate(values, start=1):
                lists.cell(r, col, value)
            letter = get_column_letter(col)
            formula = f"{LIST_SHEET}!${letter}$1:${letter}${len(values)}"
        dv = DataValidation(type="list", formula1=formula, allow_blank=True)
        ws.add_data_validation(dv)
        dv.add(where)

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
                drop_down(spec.values, ws.cell(row, 2).coordinate)
            elif spec.type == "yes_no":
                drop_down(YES_NO_CHOICES, ws.cell(row, 2).coordinate)
            row += 1
        return row + 1

    first, rest = _order(schema)
    for sec in first:
        row = section(sec, row)

    ws.cell(row, 1, schema.users.title).font = bold
    ws.cell(row, 1).fill = fill
    row += 1
    groups = _groups(columns)
    if groups:
        for first_i, last_i, col in groups:
            cell = ws.cell(row, first_i + 1, f"{col.label} ({NOTE_TICK})")
            cell.font = bold
            cell.alignment = Alignment(horizontal="center")
            if last_i > first_i:
                ws.merge_cells(start_row=row, start_column=first_i + 1, end_row=row, end_column=last_i + 1)
        row += 1
    for c, (col, value) in enumerate(columns, start=1):
        cell = ws.cell(row, c, value or col.label)
        cell.font = bold
        cell.border = box
        cell.alignment = Alignment(wrap_text=True, vertical="top")
    row += 1
    last = row + schema.users.blank_rows - 1
    for r in range(row, row + schema.users.blank_rows):
        for c, (col, value) in enumerate(columns, start=1):
            cell = ws.cell(r, c)
            cell.border = box
            if value is not None:
                cell.alignment = Alignment(horizontal="center")
            elif col.type == "date":
                cell.number_format = "yyyy-mm-dd"
            elif col.type in ("personnummer_or_hsa", "phone"):
                cell.number_format = "@"  # text: keeps leading zeros and separators
            elif col.multi:
                cell.alignment = Alignment(wrap_text=True, vertical="top")
    for c, (col, value) in enumerate(columns, start=1):
        letter = get_column_letter(c)
        if value is not None:
            drop_down(["X"], f"{letter}{row}:{letter}{last}")
        elif col.type == "choice":
            drop_down(col.values, f"{letter}{row}:{letter}{last}")
        elif col.type == "action":
            drop_down([o.label for o in col.options], f"{letter}{row}:{letter}{last}")
        elif col.type == "yes_no":
            drop_down(YES_NO_CHOICES, f"{letter}{row}:{letter}{last}")
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

    if schema.kind.options:
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
    columns = _columns(schema)
    hints = _hints(columns)
    if hints:
        document.add_paragraph("Format – " + "; ".join(hints) + ".")
    groups = _groups(columns)
    head = 1 if groups else 0
    users = document.add_table(rows=1 + head + schema.users.blank_rows, cols=len(columns))
    users.style = "Table Grid"
    for first_i, last_i, col in groups:
        cell = users.rows[0].cells[first_i]
        if last_i > first_i:
            cell = cell.merge(users.rows[0].cells[last_i])
        cell.text = f"{col.label} ({NOTE_TICK})"
        for run in cell.paragraphs[0].runs:
            run.bold = True
            run.font.size = Pt(9)
    for c, (col, value) in enumerate(columns):
        cell = users.rows[head].cells[c]
        cell.text = value or col.label
        for run in cell.paragraphs[0].runs:
            run.bold = True
            run.font.size = Pt(9)
        if value is not None:
            for r in range(head + 1, head + 1 + schema.users.blank_rows):
                users.rows[r].cells[c].paragraphs[0]._p.append(checkbox_sdt(value))

    for sec in rest:
        section(sec)
    document.save(path)
