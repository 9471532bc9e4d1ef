"""The lean reader's short cuts give what the general code gives: the cells read straight into their Cells
(inline and shared strings, numbers) against openpyxl at each edge of the short cut, the prolog-only DTD check
against DTDs and broken parts, and the quicker text normalisation against the plain one."""

from __future__ import annotations

import io
import sys
import zipfile
import zlib

import openpyxl
import pytest

from parsers import formgrid, leanform, schema
from parsers.sandbox import parse_in_process
from tests.parsers.test_leanform import _SHEET, FORMS, SCHEMAS, assert_same, handmade_xlsx, lean_grids

_HEAD = ('<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/'
         'spreadsheetml/2006/main"><sheetData>')
_TAIL = "</sheetData></worksheet>"


def sheet(rows: str, tail: str = _TAIL) -> bytes:
    return handmade_xlsx(_HEAD + rows + tail)


# --- cells: each edge of the short cut, read as openpyxl reads it ---------------------------------------------

EDGES = {
    "inline text with spaces around it": '<row r="1"><c r="A1" t="inlineStr"><is><t xml:space="preserve">  Kommun '
                                         " </t></is></c></row>",
    "inline text empty and absent": '<row r="1"><c r="A1" t="inlineStr"><is><t/></is></c><c r="B1" t="inlineStr">'
                                    '<is></is></c><c r="C1" t="inlineStr"/><c r="D1" t="inlineStr"><v>3</v></c></row>',
    "inline rich text and a phonetic run": '<row r="1"><c r="A1" t="inlineStr"><is><r><t>Halm</t></r><r><t>stad'
                                           '</t></r></is></c><c r="B1" t="inlineStr"><is><t>Enhet</t><rPh sb="0" '
                                           'eb="1"><t>fon</t></rPh></is></c></row>',
    "inline text with markup inside": '<row r="1"><c r="A1" t="inlineStr"><is><t>Ro<x/>ll</t></is></c></row>',
    "shared strings, one empty, one negative": '<row r="1"><c r="A1" t="s"><v>4</v></c><c r="B1" t="s"><v>3</v>'
                                               '</c><c r="C1" t="s"><v/></c><c r="D1" t="s"><v>-1</v></c></row>',
    "numbers of every spelling": '<row r="1"><c r="A1"><v>7</v></c><c r="B1"><v>2.50</v></c><c r="C1"><v>1e3</v>'
                                 '</c><c r="D1"><v>-0</v></c><c r="E1" t="n"><v>12</v></c><c r="F1"><v/></c>'
                                 '<c r="G1"><v>1_0</v></c></row>',
    "a number with a date style and a formula": '<row r="1"><c r="A1" s="1"><v>46349</v></c><c r="B1"><f>1+1</f>'
                                                '<v>2</v></c><c r="C1" t="str"><f>A1</f><v>x</v></c></row>',
    "styles written oddly": '<row r="1"><c r="A1" s="0"><v>1</v></c><c r="B1" s="01"><v>46349</v></c>'
                            '<c r="C1" s=" 2"><v>46349</v></c><c r="D1" s="3"><v>5</v></c></row>',
    "cells without references, after one with": '<row r="2"><c t="inlineStr"><is><t>a</t></is></c><c r="C2" '
                                                't="inlineStr"><is><t>c</t></is></c><c t="inlineStr"><is><t>d</t>'
                                                '</is></c></row><row><c><v>1</v></c></row>',
    "a reference in another row": '<row r="1"><c r="B3" t="inlineStr"><is><t>b3</t></is></c><c r="C1"><v>1</v>'
                                  '</c><c><v>2</v></c></row>',
    "a place written twice, columns out of order": '<row r="1"><c r="C1"><v>3</v></c><c r="A1"><v>1</v></c>'
                                                   '<c r="A1"><v>9</v></c></row>',
    "rows with gaps and a row read partly": '<row r="1"><c r="A1"><v>1</v></c><c r="D1"><v>4</v></c></row>'
                                            '<row r="4"><c r="B4"><v>2</v></c></row>',
    "a merged range over read cells": '<row r="1"><c r="A1" t="inlineStr"><is><t>Enhet</t></is></c><c r="B1" '
                                      't="inlineStr"><is><t>gone</t></is></c></row><row r="2"><c r="A2"><v>5</v>'
                                      '</c></row>',
}


@pytest.mark.parametrize("case", sorted(EDGES))
def test_cells_at_each_edge_of_the_short_cut_read_as_openpyxl_reads_them(case: str) -> None:
    tail = _TAIL
    if case == "a merged range over read cells":
        tail = '</sheetData><mergeCells count="1"><mergeCell ref="A1:B2"/></mergeCells></worksheet>'
    data = sheet(EDGES[case], tail)
    assert_same("xlsx", data)


def test_the_edges_read_what_a_user_would_see() -> None:
    grid = lean_grids("xlsx", sheet(EDGES["inline text with spaces around it"]))[0]
    assert grid[0][0][0] == "Kommun"
    grid = lean_grids("xlsx", sheet(EDGES["shared strings, one empty, one negative"]))[0]
    assert [c[0] for c in grid[0]] == ["Enhet", "", "", "Enhet"]  # -1 is the last shared string, as in openpyxl
    grid = lean_grids("xlsx", sheet(EDGES["numbers of every spelling"]))[0]
    assert [c[1] for c in grid[0]] == [7, 2.5, 1000.0, 0, 12, None, 10]
    grid = lean_grids("xlsx", sheet(EDGES["a place written twice, columns out of order"]))[0]
    assert [c[1] for c in grid[0]] == [9, None, 3]
    grid = lean_grids("xlsx", sheet(EDGES["cells without references, after one with"]))[0]
    assert [c[0] for c in grid[1]] == ["a", "", "c", "d"] and grid[2][0][1] == 1


@pytest.mark.parametrize(("case", "cell"), [
    ("style index out of range", '<c r="A1" s="4"><v>1</v></c>'),
    ("negative style index", '<c r="A1" s="-1"><v>1</v></c>'),
    ("style index not a number", '<c r="A1" s="x"><v>1</v></c>'),
    ("shared string index out of range", '<c r="A1" t="s"><v>5</v></c>'),
    ("shared string index not a number", '<c r="A1" t="s"><v>x</v></c>'),
    ("number not a number", '<c r="A1"><v>12abc</v></c>'),
    ("a reference that is not one", '<c r="A0"><v>1</v></c>'),
])
def test_what_the_short_cut_cannot_read_goes_to_the_library(case: str, cell: str) -> None:
    data = sheet(f'<row r="1">{cell}</row>')
    with pytest.raises(leanform.NotLean):
        leanform.xlsx_grids(data)
    for form_schema in SCHEMAS.values():
        try:
            library = parse_in_process("xlsx", data, form_schema, lean=False)
        except Exception as exc:  # noqa: BLE001 - openpyxl's own answer, compared below
            library = type(exc)
        try:
            lean = parse_in_process("xlsx", data, form_schema, lean=True)
        except Exception as exc:  # noqa: BLE001
            lean = type(exc)
        assert lean == library, case


def test_a_cell_reference_is_remembered_as_a_position_only() -> None:
    leanform.xlsx_grids(sheet('<row r="1"><c r="K9" t="inlineStr"><is><t>Tolvan</t></is></c></row>'))
    assert leanform._POSITIONS["K9"] == (9, 11)
    assert all(isinstance(k, str) and isinstance(v, tuple) for k, v in leanform._POSITIONS.items())
    assert "Tolvan" not in repr(leanform._POSITIONS)


def test_a_reference_off_any_excel_sheet_is_not_remembered() -> None:
    """A crafted file may write anything that reads as a reference; a long run of digits is not kept."""
    data = sheet('<row r="1"><c r="A191212121212"><v>1</v></c><c r="XFE1"><v>2</v></c><c r="B2"><v>3</v></c></row>')
    leanform.xlsx_grids(data)
    assert "A191212121212" not in leanform._POSITIONS and "XFE1" not in leanform._POSITIONS
    assert leanform._POSITIONS["B2"] == (2, 2)
    assert_same("xlsx", sheet('<row r="1"><c r="XFE1"><v>2</v></c></row>'))


# --- the DTD check reads the prolog only --------------------------------------------------------------------


def test_a_dtd_before_the_root_is_refused() -> None:
    evil = _SHEET.replace("?>", '?><!DOCTYPE worksheet [<!ENTITY e "Kommun">]>', 1).replace(
        "<t>Roll</t>", "<t>&e;</t>")
    with pytest.raises(leanform.UnsafeForm):
        leanform.xlsx_grids(handmade_xlsx(evil))


@pytest.mark.parametrize("broken", [
    _SHEET.replace("</sheetData>", '<!DOCTYPE x [<!ENTITY e "y">]></sheetData>'),  # a DTD after the root starts
    _SHEET.replace("<t>Roll</t>", "<t>&e;</t>"),  # an entity never declared
    _SHEET.replace("</worksheet>", ""),  # cut short
    _SHEET + "<worksheet/>",  # a second root
])
def test_a_part_broken_after_its_prolog_goes_to_the_library(broken: str) -> None:
    data = handmade_xlsx(broken)
    with pytest.raises(leanform.NotLean):
        leanform.xlsx_grids(data)


def test_a_large_sheet_broken_at_its_end_goes_to_the_library() -> None:
    rows = "".join(f'<row r="{r}"><c r="A{r}" t="inlineStr"><is><t>text {r}</t></is></c></row>'
                   for r in range(1, 12000))
    data = handmade_xlsx(_HEAD + rows + "</sheetData>")  # over _STREAM_FROM: streamed; the root never closed
    assert len(_HEAD + rows) > leanform._STREAM_FROM
    with pytest.raises(leanform.NotLean):
        leanform.xlsx_grids(data)


# --- text normalisation -----------------------------------------------------------------------------------------


def _squash_as_written(text: str) -> str:
    """squash as it was first written (one translate for every text)."""
    return " ".join(text.replace("\u00a0", " ").translate(schema._DASHES).split()).casefold()


TEXTS = ["", " ", "Kommun", "  Kommun/Region : ", "E\u2010post", "E\u2011post\u00a0adress",
         "Namn\u2012\u2013\u2014\u2212", "ÅÄÖ åäö", "Straße", "İstanbul", "ǅ", "ﬃ", "tab\tand\nnew line\r\n",
         "\u2003em space\u3000", "Giltig fr.o.m. (ÅÅÅÅ-MM-DD) :*", "Behörighetsnivå*", "Roll (välj en)", "x",
         "☒ Ny behörighet", "a\u00a0\u00a0b", "\u200bzero width", "Ｆｕｌｌ", "ΣΑΣ ς", "a\u2010\u00a0b"]


@pytest.mark.parametrize("text", TEXTS)
def test_squash_gives_what_it_always_gave(text: str) -> None:
    assert schema.squash(text) == _squash_as_written(text)


def test_squash_gives_what_it_always_gave_for_every_character() -> None:
    chars = "".join(map(chr, range(sys.maxunicode + 1)))
    chars = chars.encode("utf-8", "surrogatepass").decode("utf-8", "replace")  # no lone surrogates
    for i in range(0, len(chars), 4096):
        chunk = chars[i:i + 4096]
        assert schema.squash(chunk) == _squash_as_written(chunk)


def test_a_key_without_a_hint_or_a_slash_is_its_own_key() -> None:
    """What read_form relies on to skip computing a key's key: folding is idempotent and makes no space
    or dash, for every character; so a key without "(" or "/" keys to itself."""
    for code in range(sys.maxunicode + 1):
        c = chr(code)
        folded = c.casefold()
        assert folded.casefold() == folded
        assert c.isspace() or c in "\u00a0\u2010\u2011\u2012\u2013\u2014\u2212" or not any(
            ch.isspace() or ch in "\u00a0\u2010\u2011\u2012\u2013\u2014\u2212" for ch in folded)
    for text in TEXTS + ["Namn:", "Namn*: Tolvan", "Roll (a) (b) (c) (d)", "a / b"]:
        key = formgrid._key(text)
        if "(" not in key and "/" not in key:
            assert formgrid._key(key) == key == schema.label_key(key), text
    formgrid._KEYS.clear()
    formgrid._SQUASHED.clear()


# --- members inflated in one call, or by zipfile ----------------------------------------------------------------

GOOD = handmade_xlsx()
SHEET = "xl/worksheets/sheet1.xml"


def _fixture_packages() -> list[bytes]:
    forms = sorted(FORMS.rglob("*.xlsx")) + sorted(FORMS.rglob("*.docx"))
    return [GOOD] + [p.read_bytes() for p in forms]


def test_every_member_of_every_fixture_inflates_to_what_zipfile_reads() -> None:
    inflated = 0
    for data in _fixture_packages():
        pkg = leanform._Package(data)
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            for info in zf.infolist():
                blob = pkg._inflated(info)
                if blob is not None:
                    inflated += 1
                    assert blob == zf.read(info)
                assert pkg.read(info.filename) == zf.read(info)
    assert inflated > 100  # the short cut is taken for the usual members


def _stored() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(GOOD)) as zin, zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zout:
        for item in zin.infolist():
            zout.writestr(item.filename, zin.read(item))
    return out.getvalue()


def _patched_member(data: bytes, name: str, patch) -> bytes:  # noqa: ANN001 - bytes -> bytes on the raw member
    info = zipfile.ZipFile(io.BytesIO(data)).getinfo(name)
    at = info.header_offset
    start = at + 30 + int.from_bytes(data[at + 26:at + 28], "little") + int.from_bytes(data[at + 28:at + 30], "little")
    raw = data[start:start + info.compress_size]
    new = patch(raw)
    assert len(new) == len(raw)
    return data[:start] + new + data[start + len(raw):]


def _bad_crc() -> bytes:
    """The sheet's deflated bytes changed in its last stored byte before the end: it inflates, to other bytes."""
    return _patched_member(GOOD, SHEET, lambda raw: raw[:-6] + bytes([raw[-6] ^ 0x01]) + raw[-5:])


def _broken_stream() -> bytes:
    return _patched_member(GOOD, SHEET, lambda raw: b"\xff" * 8 + raw[8:])


def _local_name_differs() -> bytes:
    return GOOD.replace(SHEET.encode(), b"xl/worksheets/sheetX.xml", 1)  # the local header comes first


def _size_understated() -> bytes:
    """The directory gives the sheet one byte less than it inflates to."""
    info = zipfile.ZipFile(io.BytesIO(GOOD)).getinfo(SHEET)
    central = GOOD.index(b"PK\x01\x02")
    while GOOD[central + 46:central + 46 + len(SHEET)] != SHEET.encode():
        central = GOOD.index(b"PK\x01\x02", central + 4)
    size = (info.file_size - 1).to_bytes(4, "little")
    return GOOD[:central + 24] + size + GOOD[central + 28:]


@pytest.mark.parametrize("make", [_stored, _bad_crc, _broken_stream, _local_name_differs, _size_understated])
def test_an_unusual_member_is_read_by_zipfile_with_its_answer(make) -> None:  # noqa: ANN001
    data = make()
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        try:
            expected: object = zf.read(SHEET)
        except Exception as exc:  # noqa: BLE001 - zipfile's own answer, compared below
            expected = type(exc)
    pkg = leanform._Package(data)
    assert pkg._inflated(pkg.zf.getinfo(SHEET)) is None
    try:
        got: object = pkg.read(SHEET)
    except Exception as exc:  # noqa: BLE001
        got = type(exc)
    assert got == expected
    if make is _stored:
        assert_same("xlsx", data)
    else:
        assert expected in (zipfile.BadZipFile, zlib.error)  # the file is broken, and both readers say so


def test_a_sheets_hyperlinks_are_not_kept_in_the_readers_memory():
    # The reader remembers parsed structural parts across forms; a sheet's relationships (its hyperlinks) may
    # name a person, and must not outlive the form.
    wb = openpyxl.Workbook()
    wb.active["A1"] = "Kontakt"
    wb.active["A1"].hyperlink = "mailto:eva.berg@example.test"
    out = io.BytesIO()
    wb.save(out)
    with pytest.raises(leanform.NotLean):
        leanform.xlsx_grids(out.getvalue())
    assert "eva.berg" not in repr(leanform._PARSED)
