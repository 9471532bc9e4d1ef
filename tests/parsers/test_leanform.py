"""The lean form reader gives exactly what openpyxl/python-docx give: the same grids (text, typed value,
merged regions, heights) and the same facts, for every form fixture and for generated edge cases; a file
it does not model goes to the library; hostile parts are refused, never expanded."""

from __future__ import annotations

import io
import zipfile
from datetime import datetime
from pathlib import Path

import openpyxl
import pytest
from openpyxl.cell.rich_text import CellRichText, TextBlock
from openpyxl.cell.text import InlineFont
from openpyxl.comments import Comment
from openpyxl.styles import PatternFill

from intake.blankforms import write_blank_forms
from parsers import docx_form, leanform, sandbox, xlsx_form
from parsers.mail import Attachment
from parsers.sandbox import parse_in_process
from rules.forms import find_form, load_form_schema
from tests.parsers import test_attachments as hostile

ROOT = Path(__file__).resolve().parents[2]
FORMS = ROOT / "fixtures" / "forms"
SCHEMA_FILES = sorted((ROOT / "rules" / "packs").glob("*/form.toml")) + sorted(
    (ROOT / "tests" / "packs").glob("*/form.toml"))
SCHEMAS = {f"{p.parent.parent.name}/{p.parent.name}": load_form_schema(p) for p in SCHEMA_FILES}
MITTVACCIN = SCHEMAS["packs/mittvaccin"]


def shape(grids: list) -> list:
    """Grids as plain data: each cell's text, typed value, merged region (numbered) and height."""
    out = []
    for grid in grids:
        regions: dict[int, int] = {}
        out.append([[(c.text, c.value, None if c.merge is None else regions.setdefault(id(c.merge), len(regions)),
                      c.height) for c in row] for row in grid.rows])
    return out


def library_grids(fmt: str, data: bytes) -> list:
    return shape(xlsx_form.xlsx_grids(data) if fmt == "xlsx" else docx_form.docx_grids(data, lean=False))


def lean_grids(fmt: str, data: bytes) -> list:
    """The lean reader's grids; raises NotLean rather than falling back."""
    if fmt == "xlsx":
        return shape(leanform.xlsx_grids(data))
    walker = docx_form._Walker(2000)
    walker.block(leanform.docx_body(data))
    walker.flush()
    return shape(walker.grids)


def assert_same(fmt: str, data: bytes) -> None:
    """Same grids from both readers (the lean one without falling back), hence the same facts under every
    schema; the facts are compared too, to pin the whole path."""
    assert lean_grids(fmt, data) == library_grids(fmt, data)
    for schema in SCHEMAS.values():
        assert parse_in_process(fmt, data, schema, lean=True) == parse_in_process(fmt, data, schema, lean=False)


# --- every form fixture -------------------------------------------------------------------------------------

FIXTURES = sorted(p.relative_to(FORMS).as_posix() for p in FORMS.rglob("*") if p.suffix in (".xlsx", ".docx"))


def test_there_are_fixtures_of_every_kind() -> None:
    assert {name.split("/")[0] for name in FIXTURES} >= {"filled", "blank", "libreoffice", "handmade", "audionom"}
    assert len(FIXTURES) >= 20


@pytest.mark.parametrize("name", FIXTURES)
def test_every_form_fixture_reads_the_same(name: str) -> None:
    assert_same(name.rsplit(".", 1)[1], (FORMS / name).read_bytes())


@pytest.mark.parametrize("pack", sorted(SCHEMAS))
def test_blank_forms_of_every_pack_read_the_same(pack: str, tmp_path: Path) -> None:
    for path in write_blank_forms(SCHEMAS[pack], "Rutin", tmp_path):
        assert_same(path.suffix[1:], path.read_bytes())


@pytest.mark.parametrize("suffix", [".xlsx", ".docx"])
def test_filled_forms_as_the_tests_write_them_read_the_same(suffix: str, tmp_path: Path) -> None:
    from tests.intake.sbforms import SCHEMA, form_bytes

    _, data, _ = form_bytes(tmp_path, suffix, schema=SCHEMA)
    assert_same(suffix[1:], data)


# --- edge cases written by openpyxl ------------------------------------------------------------------------


def _save(wb: openpyxl.Workbook) -> bytes:
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


@pytest.mark.parametrize("epoch", ["1900", "1904"])
def test_typed_values_rich_text_styles_and_extent_read_the_same(epoch: str) -> None:
    wb = openpyxl.Workbook()
    if epoch == "1904":
        wb.epoch = openpyxl.utils.datetime.CALENDAR_MAC_1904
    ws = wb.active
    ws.append(["Kommun:", "Halmstad", None, "  Förvaltning  ", "Omsorg\nHemtjänst"])
    formats = ["yyyy-mm-dd", "d mmm yyyy", "hh:mm", "[h]:mm:ss", "0.00", '"kr" 0', "[Red]0", "dd/mm/yy;@"]
    for col, fmt in enumerate(formats, start=1):
        cell = ws.cell(row=2, column=col, value=46349.25 if col != 3 else 0.5)
        cell.number_format = fmt
    ws["A3"] = datetime(2026, 11, 23)
    ws["B3"] = 3.0
    ws["C3"] = 2.5
    ws["D3"] = 191212121212
    ws["E3"] = True
    ws["F3"] = False
    ws["G3"] = "=1+1"  # no cached value: None with data_only
    ws["A4"] = CellRichText(["Förn", TextBlock(InlineFont(b=True), "amn")])
    ws["A5"] = "X"
    ws.merge_cells("A6:C7")
    ws["A6"] = "Enhet"
    ws.merge_cells("E10:F12")  # a merged range beyond every value extends the sheet
    ws["L15"].fill = PatternFill("solid", fgColor="FFFF00")  # a styled empty cell does too
    second = wb.create_sheet("Blad2")
    second["B2"] = "Roll"
    second.sheet_state = "hidden"
    data = _save(wb)
    assert_same("xlsx", data)
    grid = lean_grids("xlsx", data)[0]
    assert len(grid) == 15 and len(grid[0]) == 12


def test_a_sheet_wider_and_longer_than_read_is_cut_the_same() -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    for r in range(1, 40):
        ws.append([f"r{r}c{c}" for c in range(1, 30)])
    ws.merge_cells("B5:AD6")
    data = _save(wb)
    assert lean_grids("xlsx", data) == library_grids("xlsx", data)
    assert shape(leanform.xlsx_grids(data, 10, 7)) == shape(xlsx_form.xlsx_grids(data, 10, 7))


# --- edge cases in hand-written parts ------------------------------------------------------------------------

_CT = ('<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
       'content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
       'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
       '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.'
       'spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/'
       'vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/><Override PartName="/xl/sharedStrings.xml"'
       ' ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>'
       '<Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.'
       'spreadsheetml.styles+xml"/></Types>')
_PKG_RELS = ('<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/'
             'package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/'
             'officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>')
_WB = ('<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/'
       '2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">{pr}<sheets>'
       '<sheet name="Blad1" sheetId="1" r:id="rId1"/></sheets></workbook>')
_WB_RELS = ('<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/'
            'package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/'
            'officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/><Relationship Id="rId2" '
            'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" '
            'Target="/xl/sharedStrings.xml"/><Relationship Id="rId3" Type="http://schemas.openxmlformats.org/'
            'officeDocument/2006/relationships/styles" Target="styles.xml"/></Relationships>')
_STYLES = ('<?xml version="1.0" encoding="UTF-8"?><styleSheet xmlns="http://schemas.openxmlformats.org/'
           'spreadsheetml/2006/main"><numFmts count="2"><numFmt numFmtId="164" formatCode="yyyy\\-mm\\-dd"/>'
           '<numFmt numFmtId="165" formatCode="&quot;dag&quot; 0"/></numFmts><fonts count="1"><font><sz val="11"/>'
           '</font></fonts><fills count="1"><fill><patternFill patternType="none"/></fill></fills><borders '
           'count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders><cellStyleXfs count="1"><xf/>'
           '</cellStyleXfs><cellXfs count="4"><xf numFmtId="0"/><xf numFmtId="164"/><xf numFmtId="14"/>'
           '<xf numFmtId="165"/></cellXfs></styleSheet>')
_SST = ('<?xml version="1.0" encoding="UTF-8"?><sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/'
        'main"><si><t>Kommun</t></si><si><r><rPr><b/></rPr><t>Förval</t></r><r><t xml:space="preserve">tning </t>'
        '</r><rPh sb="0" eb="1"><t>fonetik</t></rPh></si><si><t>rad_x005F_x000D_ett</t></si><si><t/></si>'
        '<si><t>Enhet</t></si></sst>')
_SHEET = ('<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/'
          'spreadsheetml/2006/main"><sheetData>'
          '<row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="inlineStr"><is><t>Halm</t><r><t>stad</t></r></is>'
          '</c></row>'
          '<row r="2"><c r="A2" t="s"><v>1</v></c><c t="str"><v>Omsorg</v></c><c t="e"><v>#N/A</v></c></row>'
          '<row><c t="s"><v>4</v></c><c s="1"><v>46349</v></c><c s="2"><v>46349.5</v></c><c s="3"><v>7</v></c>'
          '</row>'
          '<row r="5"><c r="A5" t="s"><v>2</v></c><c r="B5" t="s"><v>3</v></c><c r="C5" t="b"><v>1</v></c>'
          '<c r="D5"><v>1.5E3</v></c><c r="E5"><v></v></c><c r="F5" t="inlineStr"><v>bortglömd</v></c></row>'
          '<row r="7"><c r="A7" t="inlineStr"><is><t>Roll</t></is></c><c r="B7" t="inlineStr"><is><t>under '
          'sammanslagen</t></is></c></row>'
          '</sheetData><mergeCells count="1"><mergeCell ref="A7:C8"/></mergeCells></worksheet>')


def handmade_xlsx(sheet: str = _SHEET, workbook_pr: str = "", extra: dict[str, str] | None = None) -> bytes:
    parts = {"[Content_Types].xml": _CT, "_rels/.rels": _PKG_RELS, "xl/workbook.xml": _WB.format(pr=workbook_pr),
             "xl/_rels/workbook.xml.rels": _WB_RELS, "xl/styles.xml": _STYLES, "xl/sharedStrings.xml": _SST,
             "xl/worksheets/sheet1.xml": sheet, **(extra or {})}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, text in parts.items():
            zf.writestr(name, text.encode("utf-8"))
    return buf.getvalue()


@pytest.mark.parametrize("workbook_pr", ["", '<workbookPr date1904="1"/>', '<workbookPr date1904="false"/>'])
def test_shared_strings_rich_runs_missing_references_and_odd_types_read_the_same(workbook_pr: str) -> None:
    data = handmade_xlsx(workbook_pr=workbook_pr)
    assert_same("xlsx", data)
    grid = lean_grids("xlsx", data)[0]
    assert [c[0] for c in grid[0][:2]] == ["Kommun", "Halmstad"]
    assert grid[1][0][0] == "Förvaltning"  # runs joined, the phonetic run left out
    assert grid[6][1][0] == ""  # a value inside a merged range (not its first cell) is dropped, as openpyxl does


# --- what the lean reader leaves to the library ------------------------------------------------------------------


def _with_link() -> bytes:
    wb = openpyxl.load_workbook(FORMS / "filled" / "blank_new_1user.xlsx")
    wb.active["H3"].hyperlink = "https://example.test/"  # an empty linked cell reads as the link in openpyxl
    return _save(wb)


def _with_comment() -> bytes:
    wb = openpyxl.load_workbook(FORMS / "filled" / "blank_new_1user.xlsx")
    wb.active["Z90"].comment = Comment("Kommentar", "Handläggare")  # openpyxl creates the cell: a wider sheet
    return _save(wb)


def _with_iso_date() -> bytes:
    return handmade_xlsx(_SHEET.replace('<c r="A1" t="s"><v>0</v>', '<c r="A1" t="d"><v>2026-11-23</v>'))


@pytest.mark.parametrize("make", [_with_link, _with_comment, _with_iso_date])
def test_what_the_lean_reader_does_not_model_goes_to_the_library(make) -> None:  # noqa: ANN001
    data = make()
    with pytest.raises(leanform.NotLean):
        leanform.xlsx_grids(data)
    for schema in SCHEMAS.values():
        assert parse_in_process("xlsx", data, schema, lean=True) == parse_in_process("xlsx", data, schema, lean=False)


def test_a_word_template_is_left_to_python_docx_which_refuses_it() -> None:
    data = (FORMS / "filled" / "blank_new_1user.docx").read_bytes()
    ct = zipfile.ZipFile(io.BytesIO(data)).read("[Content_Types].xml").replace(
        b"wordprocessingml.document.main+xml", b"wordprocessingml.template.main+xml")
    data = hostile.rezip(data, {"[Content_Types].xml": ct})
    with pytest.raises(leanform.NotLean):
        leanform.docx_body(data)
    with pytest.raises(ValueError, match="not a Word file"):
        parse_in_process("docx", data, MITTVACCIN, lean=True)


# --- safety -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", sorted(hostile.HOSTILE))
def test_hostile_files_get_the_same_answer_either_way(case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    filename, make, code = hostile.HOSTILE[case]
    att = Attachment(filename, "application/octet-stream", make())
    answers = []
    for lean in (True, False):
        monkeypatch.setattr(sandbox, "LEAN", lean)
        answers.append([(r.code, r.detail) for r in find_form([att], MITTVACCIN, sandbox=False).reasons])
    assert answers[0] == answers[1] and answers[0][0][0] == code


@pytest.mark.parametrize(("make", "fmt"), [(hostile.billion_laughs, "xlsx"), (hostile.xxe_docx, "docx")])
def test_the_lean_reader_refuses_entity_declarations_itself(make, fmt: str) -> None:  # noqa: ANN001
    """Even past the attachment check, no entity is declared, expanded or fetched."""
    with pytest.raises(leanform.UnsafeForm):
        leanform.xlsx_grids(make()) if fmt == "xlsx" else leanform.docx_body(make())


def test_the_lean_reader_reads_no_member_beyond_its_cap() -> None:
    with pytest.raises(leanform.UnsafeForm, match="too large"):
        leanform.xlsx_grids(hostile.whitespace_bomb())


@pytest.mark.parametrize("make", [hostile.encrypted_xlsx, hostile.legacy_ole, lambda: b"%PDF-1.7\n%%EOF\n"])
def test_the_lean_reader_opens_only_zip_packages(make) -> None:  # noqa: ANN001
    with pytest.raises(leanform.UnsafeForm):
        leanform.xlsx_grids(make())


def test_date_formats_are_openpyxls() -> None:
    from openpyxl.styles.numbers import BUILTIN_FORMATS, is_date_format, is_timedelta_format

    assert leanform.BUILTIN_DATE_FORMATS == {i for i, f in BUILTIN_FORMATS.items() if is_date_format(f)}
    assert leanform.BUILTIN_TIMEDELTA_FORMATS == {i for i, f in BUILTIN_FORMATS.items() if is_timedelta_format(f)}
    for fmt in ["yyyy-mm-dd", '"dag" 0', "[Red]0.00", "[$-41D]d mmm yyyy", "0_)", "h:mm AM/PM", "[h]:mm",
                "[mm]:ss", "@", "General", "0.0E+00", "d\\-m", '0 "h"', "mm:ss.0", None]:
        assert leanform.is_date_format(fmt) == is_date_format(fmt), fmt
        assert leanform.is_timedelta_format(fmt) == is_timedelta_format(fmt), fmt
