"""Reading our small forms straight from the zip: the cells and paragraphs the label search needs.

Why this exists: measured on the 9 KB order form, ``openpyxl.load_workbook`` costs ~10 ms (it builds
the whole workbook model: styles, fonts, borders, column widths, a ``Cell`` object with its style for
every cell) and ``docx.Document`` ~10 ms (it loads every part of the package), against ~1 ms here,
where the raw IMAP cost of a whole mail is ~3-5 ms. So an .xlsx is read here with the standard library:
``zipfile``, a first pass of each XML part's prolog by ``pyexpat`` (no handlers but the ones refusing a
DTD, stopped at the root element), then ``xml.etree`` (the parser openpyxl itself uses, so text comes out
the same), row by row for a large sheet. For a .docx the one part that matters (the main document) is
parsed by lxml exactly as python-docx parses it, and the existing body walker (:mod:`parsers.docx_form`)
reads it. openpyxl and python-docx stay the writers of blank forms and fixtures, and the reader of any
file this module does not model: such a file raises :class:`NotLean` and :func:`parsers.xlsx_form.parse_xlsx_form` /
:func:`parsers.docx_form.parse_docx_form` fall back to the library (a file that cannot be read leanly
gets the library's answer, never a different one). tests/parsers/test_leanform.py pins that both give
the same grids and facts for every form fixture. (The other way round is possible: a damaged part that
neither grid needs, such as a malformed style list openpyxl rejects, does not stop this reader.)

What is modelled for .xlsx is what openpyxl (3.1, ``data_only=True``) gives ``xlsx_grids``: worksheets
in workbook order (chartsheets skipped), shared strings (rich text runs joined, phonetic runs left
out), inline strings, numbers (int or float as written), booleans, error values, cached formula
results, dates and times by the cell's number format (1900 or 1904 epoch), merged ranges (every cell
but the top-left emptied, as openpyxl does), and the sheet's extent including empty and merged cells.
Anything else that could change a value or the extent (hyperlinks, comments, tables, drawings,
``t="d"`` cells, a row holding anything but cells, overlapping merges, strict OOXML) raises
:class:`NotLean`.

Safety, kept here as well as in :mod:`parsers.attachments` (which runs first): no member is read
beyond ``MAX_MEMBER_BYTES`` decompressed nor all of them beyond ``MAX_TOTAL_BYTES``; a DOCTYPE or an
entity declaration is refused (:class:`UnsafeForm`) where XML allows one (before the root element) and is a
syntax error anywhere else, so no entity is ever expanded and no external resource is ever loaded;
encrypted or OLE files are not zip files and are refused. Parsed structural parts (content types,
relationships, styles) are remembered by their bytes, and cell references ("B7") by the position they
name; nothing else from a sheet, no shared string and nothing of a document body outlives the call.
"""

from __future__ import annotations

import hashlib
import io
import posixpath
import re
import xml.etree.ElementTree as ET
import zipfile
import zlib
from datetime import datetime, time, timedelta
from pyexpat import ExpatError, ParserCreate

from parsers.formgrid import Cell, Grid, cell_text

MAX_MEMBER_BYTES = 10 * 1024 * 1024  # as AttachmentLimits.max_member_bytes
MAX_TOTAL_BYTES = 25 * 1024 * 1024  # as AttachmentLimits.max_total_bytes


class NotLean(Exception):  # noqa: N818 - a signal to fall back, not an error
    """The file uses something this reader does not model: read it with openpyxl/python-docx instead."""


class UnsafeForm(ValueError):
    """The file holds what no reader may process (a DOCTYPE, an entity declaration, a member too large)."""


# --- the package -------------------------------------------------------------------------------------

_NS_CT = "http://schemas.openxmlformats.org/package/2006/content-types"
_NS_REL = "http://schemas.openxmlformats.org/package/2006/relationships"
_NS_R = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_NS_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL = f"{{{_NS_REL}}}Relationship"
_OVERRIDE = f"{{{_NS_CT}}}Override"
_M = f"{{{_NS_MAIN}}}"
_XLSX_TYPES = ("application/vnd.openxmlformats-officedocument.spreadsheetml.template.main+xml",
               "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml")
_SST_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"
_DOCX_MAIN = "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"
_OFFICE_DOCUMENT = _NS_R + "/officeDocument"


class _Package:
    """A zip package whose members are read at most to the size caps."""

    def __init__(self, data: bytes) -> None:
        if not data.startswith(b"PK\x03\x04"):
            raise UnsafeForm("not a zip package")  # OLE (encrypted, legacy) or a disguised file
        try:
            self.zf = zipfile.ZipFile(io.BytesIO(data))
        except zipfile.BadZipFile as exc:
            raise UnsafeForm("not a zip package") from exc
        self.names = set(self.zf.namelist())
        self.total = 0
        self.data = data

    def read(self, name: str) -> bytes:
        if name not in self.names:
            raise NotLean(f"missing part {name}")
        info = self.zf.getinfo(name)
        if info.flag_bits & 0x1:
            raise UnsafeForm("encrypted member")
        blob = self._inflated(info)
        if blob is None:
            with self.zf.open(info) as fh:
                blob = fh.read(MAX_MEMBER_BYTES + 1)
        self.total += len(blob)
        if len(blob) > MAX_MEMBER_BYTES or self.total > MAX_TOTAL_BYTES:
            raise UnsafeForm("member too large")
        return blob

    def _inflated(self, info: zipfile.ZipInfo) -> bytes | None:
        """The member ``info`` (as zipfile locates it) inflated in one call, when it is the usual kind: deflated,
        its local header naming it as the directory does, and inflating to exactly the size and CRC-32 the
        directory gives, within the member cap. None for anything else: then zipfile reads it (and raises
        what it raises), so this changes how long a member takes to read, never what is read. (zipfile's
        reader costs ~13 us a member in Python around ~5 us of inflating; a form has 7 members to read.)"""
        if (info.compress_type != zipfile.ZIP_DEFLATED or info.flag_bits & _ODD_FLAGS
                or info.file_size > MAX_MEMBER_BYTES):
            return None
        data, at = self.data, info.header_offset
        header = data[at:at + 30]
        if len(header) != 30 or header[:4] != b"PK\x03\x04":
            return None
        flags = int.from_bytes(header[6:8], "little")
        name_end = at + 30 + int.from_bytes(header[26:28], "little")
        start = name_end + int.from_bytes(header[28:30], "little")
        try:
            if data[at + 30:name_end].decode("utf-8" if flags & 0x800 else "cp437") != info.orig_filename:
                return None
        except UnicodeDecodeError:
            return None
        inflater = zlib.decompressobj(-15)
        try:
            blob = inflater.decompress(data[start:start + info.compress_size], info.file_size + 1)
        except zlib.error:
            return None
        if len(blob) != info.file_size or not inflater.eof or zlib.crc32(blob) != info.CRC:
            return None
        return blob

    def parsed(self, name: str, parse, *, remember: bool = True):  # noqa: ANN001, ANN201 - parse: bytes -> a value
        """``parse(member)``, remembered for small structural parts (content types, the package's and the
        workbook's relationships, styles): every mail with our blank form carries the same bytes. Kept by the
        part's digest, never its bytes, and only what the parse keeps (part names, content types, style
        numbers); a sheet's relationships (where hyperlinks are, which may name a person) are never kept."""
        blob = self.read(name)
        if len(blob) > _PARSED_MAX or not remember:
            return parse(blob)
        key = (parse, hashlib.sha256(blob).digest())
        value = _PARSED.get(key)
        if value is None:
            value = parse(blob)
            if len(_PARSED) >= 64:
                _PARSED.clear()
            _PARSED[key] = value
        return value

    def rels(self, part: str, *, remember: bool = True) -> dict[str, tuple[str, str]]:
        """Relationship id -> (type, target part name) of ``part`` (as openpyxl and python-docx resolve them)."""
        folder, name = posixpath.split(part)
        return self.parsed(posixpath.join(folder, "_rels", f"{name}.rels"), _RELS_PARSERS[folder],
                           remember=remember)

    def content_types(self) -> dict[str, str]:
        """Part name (without the leading /) -> content type, from the overrides."""
        return self.parsed("[Content_Types].xml", _content_types)


_ODD_FLAGS = 0x1 | 0x20 | 0x40  # encrypted, compressed patch data, strong encryption: zipfile's answer
_PARSED: dict[tuple[object, bytes], object] = {}  # (parse, sha256 of the part) -> its value
_PARSED_MAX = 64 * 1024


def _content_types(blob: bytes) -> dict[str, str]:
    return {el.get("PartName", "").lstrip("/"): el.get("ContentType", "") for el in _xml(blob).iter(_OVERRIDE)}


class _RelsParsers(dict):
    """folder -> a parser of relationships relative to it (one function per folder, so that it keys the cache)."""

    def __missing__(self, folder: str):  # noqa: ANN204
        def parse(blob: bytes) -> dict[str, tuple[str, str]]:
            out: dict[str, tuple[str, str]] = {}
            for el in _xml(blob).iter(_REL):
                attrs = el.attrib
                if attrs.get("TargetMode") != "External":
                    target = attrs.get("Target", "")
                    target = (target[1:] if target.startswith("/")
                              else posixpath.normpath(posixpath.join(folder, target)))
                    out[attrs.get("Id", "")] = (attrs.get("Type", ""), target)
            return out

        if len(self) >= 64:
            self.clear()
        self[folder] = parse
        return parse


_RELS_PARSERS = _RelsParsers()


def _refuse(*_args: object) -> None:
    raise UnsafeForm("DOCTYPE or entity declaration")


class _RootReached(Exception):  # noqa: N818 - the end of the prolog, not an error
    pass


def _root_reached(*_args: object) -> None:
    raise _RootReached


def _xml_check(blob: bytes) -> None:
    """A first pass by expat over the part's prolog that refuses any DTD: no entity can be declared, so none
    is ever expanded and no external resource is named (a reference to an undeclared entity is an error).
    Only then does ElementTree see the part.

    The pass stops at the root element's start tag: XML allows a document type declaration (the only place an
    entity can be declared) nowhere else, so the rest of the part cannot declare one; a ``<!DOCTYPE`` later
    on is a syntax error, which ElementTree reports when it parses the part (:class:`NotLean`)."""
    p = ParserCreate()
    p.StartDoctypeDeclHandler = _refuse
    p.EntityDeclHandler = _refuse
    p.ExternalEntityRefHandler = _refuse
    p.StartElementHandler = _root_reached
    try:
        p.Parse(blob, True)
    except _RootReached:
        return
    except ExpatError as exc:
        raise NotLean(f"XML: {exc}") from exc  # the library gives its own answer for broken XML
    raise NotLean("XML: no root element")  # not reached: expat reports a document without one as an error


def _xml(blob: bytes) -> ET.Element:
    """A small part's element tree (checked by :func:`_xml_check` first)."""
    _xml_check(blob)
    try:
        return ET.fromstring(blob)
    except ET.ParseError as exc:
        raise NotLean(f"XML: {exc}") from exc


# --- .xlsx ---------------------------------------------------------------------------------------------

# openpyxl.styles.numbers: the built-in formats that are dates, and the test it applies to custom ones
# (tests/parsers/test_leanform.py checks these against openpyxl).
BUILTIN_DATE_FORMATS = frozenset({14, 15, 16, 17, 18, 19, 20, 21, 22, 45, 46, 47})
BUILTIN_TIMEDELTA_FORMATS = frozenset({46})
_STRIP_RE = re.compile(r'".*?"|\[(?!hh?\]|mm?\]|ss?\])[^\]]*\]')
_TIMEDELTA_RE = re.compile(r"\[hh?\](:mm(:ss(\.0*)?)?)?|\[mm?\](:ss(\.0*)?)?|\[ss?\](\.0*)?", re.I)
_DATE_RE = re.compile(r"(?<![_\\])[dmhysDMHYS]")
_WINDOWS_EPOCH = datetime(1899, 12, 30)
_MAC_EPOCH = datetime(1904, 1, 1)
_COORD = re.compile(r"^\$?([A-Za-z]{1,3})\$?(\d+)$")


def is_date_format(fmt: str | None) -> bool:
    return fmt is not None and _DATE_RE.search(_STRIP_RE.sub("", fmt.split(";")[0])) is not None


def is_timedelta_format(fmt: str | None) -> bool:
    return fmt is not None and _TIMEDELTA_RE.search(fmt.split(";")[0]) is not None


def from_excel(value: float, epoch: datetime, as_timedelta: bool = False) -> object:
    """An Excel serial as openpyxl 3.1 reads it (``openpyxl.utils.datetime.from_excel``)."""
    if as_timedelta:
        td = timedelta(days=value)
        if td.microseconds:
            td = timedelta(seconds=td.total_seconds() // 1, microseconds=round(td.microseconds, -3))
        return td
    day, fraction = divmod(value, 1)
    diff = timedelta(milliseconds=round(fraction * 86400 * 1000))
    if 0 <= value < 1 and diff.days == 0:
        mins, seconds = divmod(diff.seconds, 60)
        hours, mins = divmod(mins, 60)
        return time(hours, mins, seconds, diff.microseconds)
    if 0 < value < 60 and epoch == _WINDOWS_EPOCH:
        day += 1
    return epoch + timedelta(days=day) + diff


_COLUMNS: dict[str, int] = {}  # column letters -> number, for one- and two-letter columns


def _coordinate(ref: str) -> tuple[int, int]:
    m = _COORD.match(ref)
    if m is None:
        raise NotLean("cell reference")
    letters = m[1]
    col = _COLUMNS.get(letters)
    if col is None:
        col = 0
        for ch in letters.upper():
            col = col * 26 + ord(ch) - 64
        if len(letters) <= 2:
            _COLUMNS[letters] = col
    row = int(m[2])
    if row < 1:
        raise NotLean("cell reference")
    return row, col


def _range(ref: str) -> tuple[int, int, int, int]:
    """(min_row, min_col, max_row, max_col) of "A1:B2" or "A1"."""
    first, _, last = ref.partition(":")
    r1, c1 = _coordinate(first)
    r2, c2 = _coordinate(last) if last else (r1, c1)
    if r2 < r1 or c2 < c1:
        raise NotLean("merged range")
    return r1, c1, r2, c2


def _content(item: ET.Element) -> str:
    """The text of a string item (``<si>``, ``<is>``) as openpyxl's ``Text.content``: the plain ``<t>`` and
    the ``<t>`` of each rich text run; phonetic runs (``<rPh>``) left out."""
    plain, runs = None, []
    for child in item:
        if child.tag == _T:
            plain = child.text
        elif child.tag == _R:
            run = None
            for grand in child:
                if grand.tag == _T:
                    run = grand.text
            if run is not None:
                runs.append(run)
    return (plain or "") + "".join(runs)


_T, _R, _SI, _IS, _V = _M + "t", _M + "r", _M + "si", _M + "is", _M + "v"
_ROW, _C, _MERGE, _HYPERLINKS = _M + "row", _M + "c", _M + "mergeCell", _M + "hyperlinks"


def _styles(pkg: _Package) -> tuple[int, frozenset[int], frozenset[int]]:
    """(number of cell styles, style ids that are dates, style ids that are durations) from xl/styles.xml."""
    if "xl/styles.xml" not in pkg.names:
        return 1, frozenset(), frozenset()
    return pkg.parsed("xl/styles.xml", _parse_styles)


def _parse_styles(blob: bytes) -> tuple[int, frozenset[int], frozenset[int]]:
    root = _xml(blob)
    try:
        custom = {int(el.get("numFmtId", "")): el.get("formatCode", "")
                  for fmts in root.findall(_M + "numFmts") for el in fmts.findall(_M + "numFmt")}
        xfs = [int(el.get("numFmtId", 0)) for cell_xfs in root.findall(_M + "cellXfs")
               for el in cell_xfs.findall(_M + "xf")]
    except ValueError as exc:
        raise NotLean("styles") from exc
    if not xfs:
        return 1, frozenset(), frozenset()  # openpyxl's default: one style, no dates
    dates, durations = set(), set()
    for idx, fmt_id in enumerate(xfs):
        fmt = custom.get(fmt_id)
        if fmt is None:
            if fmt_id in BUILTIN_DATE_FORMATS:
                dates.add(idx)
            if fmt_id in BUILTIN_TIMEDELTA_FORMATS:
                durations.add(idx)
            continue
        if is_date_format(fmt):
            dates.add(idx)
        if is_timedelta_format(fmt):
            durations.add(idx)
    return len(xfs), frozenset(dates), frozenset(durations)


_ALLOWED_SHEET_RELS = ("/printerSettings",)


def xlsx_grids(data: bytes, max_rows: int = 2000, max_cols: int = 60) -> list[Grid]:
    """Each worksheet as a :class:`Grid`, exactly as :func:`parsers.xlsx_form.xlsx_grids` gives it.

    Raises :class:`NotLean` for a file this reader does not model, :class:`UnsafeForm` for a refused one.
    """
    pkg = _Package(data)
    types = pkg.content_types()
    if any("macroEnabled" in ct for ct in types.values()):
        raise NotLean("macro-enabled workbook")  # openpyxl would pick that part first (attachments refuse it)
    wb_part = next((name for t in _XLSX_TYPES for name, ct in types.items() if ct == t), None)
    if wb_part is None:
        raise NotLean("no workbook part")
    sst_part = next((name for name, ct in types.items() if ct == _SST_TYPE), None)
    shared: list[str] = []
    if sst_part is not None:
        shared = [_content(si).replace("x005F_", "") for si in _xml(pkg.read(sst_part)).iter(_SI)]
    nstyles, dates, durations = _styles(pkg)
    rels = pkg.rels(wb_part)
    epoch = _WINDOWS_EPOCH
    workbook = _xml(pkg.read(wb_part))
    for pr in workbook.iter(_M + "workbookPr"):
        flag = pr.get("date1904")
        if flag in ("1", "true"):
            epoch = _MAC_EPOCH
        elif flag not in (None, "0", "false"):
            raise NotLean("date1904")
    sheets: list[str] = []
    for sheet in workbook.iter(_M + "sheet"):
        rid = sheet.get(f"{{{_NS_R}}}id")
        if not rid:
            continue  # openpyxl drops such a sheet with a warning
        if rid not in rels:
            raise NotLean("sheet relationship")
        rtype, target = rels[rid]
        if target not in pkg.names or "chartsheet" in rtype:
            continue
        sheets.append(target)
    grids = []
    for target in sheets:
        folder, name = posixpath.split(target)
        if posixpath.join(folder, "_rels", f"{name}.rels") in pkg.names:
            if any(not t.endswith(_ALLOWED_SHEET_RELS) for t, _ in pkg.rels(target, remember=False).values()):
                raise NotLean("sheet with comments, tables, drawings or links")
        grids.append(_sheet(pkg.read(target), shared, nstyles, dates, durations, epoch, max_rows, max_cols))
    return grids


def _cast_number(text: str) -> int | float:
    if "." in text or "E" in text or "e" in text:
        return float(text)
    return int(text)


def _value(c: ET.Element, kind: str, style: int, shared: list[str], dates: frozenset[int], durations: frozenset[int],
           epoch: datetime) -> object:
    """A cell's value as openpyxl's ``WorkSheetParser.parse_cell`` gives it with ``data_only=True``."""
    if kind == "inlineStr":
        item = c.find(_IS)
        return _content(item) if item is not None else None
    value = c.findtext(_V) or None
    if value is None:
        return None
    try:
        if kind == "n":
            number = _cast_number(value)
            if style in dates:
                try:
                    return from_excel(number, epoch, style in durations)
                except (OverflowError, ValueError):
                    return "#VALUE!"
            return number
        if kind == "s":
            return shared[int(value)]
        if kind == "b":
            return bool(int(value))
    except (ValueError, IndexError) as exc:
        raise NotLean("cell value") from exc
    if kind == "d":
        raise NotLean("ISO date cell")
    return value  # "str" (a formula's text), "e" (an error value) and unknown kinds: the text


_STREAM_FROM = 512 * 1024  # sheets larger than this are streamed row by row (smaller ones parse faster whole)


def _rows(xml: bytes, merge_refs: list[str]):  # noqa: ANN202 - a generator of (row element, clear it after)
    """The ``<row>`` elements of a sheet in order, each with whether to clear it once read (a streamed one);
    the merged ranges' refs are appended to ``merge_refs``. Raises NotLean for hyperlinks, for a sheet outside
    the main namespace and for XML that does not parse."""
    try:
        if len(xml) < _STREAM_FROM:
            root = ET.fromstring(xml)
            if next(root.iter(_HYPERLINKS), None) is not None:
                raise NotLean("hyperlinks")  # openpyxl gives an empty linked cell the link as its value
            if not root.tag.startswith(_M):
                raise NotLean("strict OOXML or an unknown sheet")
            merge_refs.extend(el.get("ref", "") for el in root.iter(_MERGE))
            for row in root.iter(_ROW):
                yield row, False
            return
        first = True
        for event, el in ET.iterparse(io.BytesIO(xml), events=("start", "end")):
            tag = el.tag
            if event == "start":
                if tag == _HYPERLINKS:
                    raise NotLean("hyperlinks")
                if first and not tag.startswith(_M):
                    raise NotLean("strict OOXML or an unknown sheet")
                first = False
            elif tag == _ROW:
                yield el, True
            elif tag == _MERGE:
                merge_refs.append(el.get("ref", ""))
    except ET.ParseError as exc:
        raise NotLean(f"XML: {exc}") from exc  # the library gives its own answer for broken XML


# Cell references ("B7") -> (row, column), for the references that recur from form to form: a reference is
# a position, never a value, so remembering it keeps nothing of anyone's form (and only positions on an Excel
# sheet are remembered: no long run of digits, whatever a crafted file writes as a reference). Bounded.
_POSITIONS: dict[str, tuple[int, int]] = {}
_POSITIONS_MAX = 8192
_EXCEL_ROWS, _EXCEL_COLUMNS = 1_048_576, 16_384


def _position(ref: str) -> tuple[int, int]:
    """:func:`_coordinate` of a cell reference, remembered when it is a place on an Excel sheet."""
    pos = _coordinate(ref)
    if pos[0] <= _EXCEL_ROWS and pos[1] <= _EXCEL_COLUMNS:
        if len(_POSITIONS) >= _POSITIONS_MAX:
            _POSITIONS.clear()
        _POSITIONS[ref] = pos
    return pos


_STYLE_IDS: dict[int, dict[str, int]] = {}  # number of cell styles -> {"0": 0, "1": 1, ...} (how styles are written)


def _style_ids(nstyles: int) -> dict[str, int]:
    ids = _STYLE_IDS.get(nstyles)
    if ids is None:
        if len(_STYLE_IDS) >= 16:
            _STYLE_IDS.clear()
        ids = _STYLE_IDS[nstyles] = {str(i): i for i in range(min(nstyles, 4096))}
    return ids


def _style(s: str) -> int:
    """A cell's style index as written in any other way (" 1", "01", ""), as ``int(c.get("s") or 0)``."""
    try:
        return int(s or 0)
    except ValueError:
        raise NotLean("style index") from None


def _sheet(xml: bytes, shared: list[str], nstyles: int, dates: frozenset[int], durations: frozenset[int],
           epoch: datetime, max_rows: int, max_cols: int) -> Grid:
    """One worksheet, streamed: each row is read and dropped, so memory follows the grid read, not the sheet.

    Each cell of the kinds our forms are made of (an inline or shared string or a number, with a reference and
    a style written the usual way, nothing else in it) becomes its :class:`Cell` at once; any other cell is read
    by :func:`_value`, the general reader, and gives the same cell it always did."""
    _xml_check(xml)
    cells: dict[int, dict[int, Cell]] = {}  # row -> column -> cell (the last one written at a place wins)
    refs: list[str] = []
    max_r = max_c = 0  # the largest row and column of any cell (openpyxl's max_row / max_column)
    row_counter = 0
    positions = _POSITIONS
    style_ids = _style_ids(nstyles)
    tag_c, tag_is, tag_t, tag_v = _C, _IS, _T, _V
    for row, stream in _rows(xml, refs):
        r = row.get("r")
        if r is None:
            row_counter += 1
        else:
            try:
                row_counter = int(r)
            except ValueError:
                try:
                    number = float(r)
                except ValueError:
                    raise NotLean("row number") from None
                if not number.is_integer():
                    raise NotLean("row number") from None
                row_counter = int(number)
        col_counter = 0
        row_cells = None
        row_at = -1
        for c in row:
            if c.tag != tag_c:
                raise NotLean("row child")
            attrs = c.attrib
            ref = attrs.get("r")
            if ref:
                pos = positions.get(ref)
                rr, cc = pos if pos is not None else _position(ref)
                col_counter = cc
            else:
                col_counter += 1
                rr, cc = row_counter, col_counter
            s = attrs.get("s")
            if s is None:
                style = 0  # nstyles is at least 1
            else:
                style = style_ids.get(s)
                if style is None:
                    style = _style(s)
                    if not 0 <= style < nstyles:
                        raise NotLean("style index")
            kind = attrs.get("t")
            cell = None
            if len(c) == 1:  # the fast paths: one child, as our forms and LibreOffice write a cell
                child = c[0]
                if kind == "inlineStr":
                    if child.tag == tag_is and len(child) == 1 and child[0].tag == tag_t:
                        text = child[0].text
                        cell = Cell(text.strip()) if text else Cell("")
                elif child.tag == tag_v and (kind is None or kind == "s"):
                    text = child.text
                    if not text:
                        cell = Cell("")
                    elif kind == "s":
                        try:
                            cell = Cell(shared[int(text)].strip())
                        except (ValueError, IndexError) as exc:
                            raise NotLean("cell value") from exc
                    elif style not in dates:
                        try:
                            number = _cast_number(text)
                        except ValueError as exc:
                            raise NotLean("cell value") from exc
                        cell = Cell(cell_text(number), number)
            if cell is None:
                value = _value(c, kind or "n", style, shared, dates, durations, epoch)
                if value is None:
                    cell = Cell("")
                elif type(value) is str:
                    cell = Cell(value.strip())  # cell_text of a text
                else:
                    cell = Cell(cell_text(value), value)
            if rr > max_r:
                max_r = rr
            if cc > max_c:
                max_c = cc
            if rr <= max_rows and cc <= max_cols:
                if rr != row_at:
                    row_at = rr
                    row_cells = cells.get(rr)
                    if row_cells is None:
                        row_cells = cells[rr] = {}
                row_cells[cc] = cell
        if stream:
            row.clear()
    merges = []
    for ref in refs:
        if ref:
            r1, c1, r2, c2 = _range(ref)
            if (r2 - r1 + 1) * (c2 - c1 + 1) > max_rows * max_cols:
                raise NotLean("merged range larger than the grid read")
            merges.append((r1, c1, r2, c2))
    covered: set[tuple[int, int]] = set()
    for r1, c1, r2, c2 in merges:
        for r in range(r1, r2 + 1):
            row_cells = cells.get(r)
            for c in range(c1, c2 + 1):
                if (r, c) in covered:
                    raise NotLean("overlapping merged ranges")
                covered.add((r, c))
                if (r, c) != (r1, c1):  # openpyxl empties every cell of a merged range but the first
                    if row_cells is not None:
                        row_cells.pop(c, None)
                    max_r, max_c = max(max_r, r), max(max_c, c)
        if len(covered) > 4 * max_rows * max_cols:
            raise NotLean("merged ranges larger than the grid read")
    nrows = min(max_r or 1, max_rows)
    ncols = min(max_c or 1, max_cols)
    rows: list[list[Cell]] = []
    columns = range(1, ncols + 1)
    in_order = list(columns)
    for r in range(1, nrows + 1):
        row_cells = cells.get(r)
        if row_cells is None:
            rows.append([Cell("") for _ in columns])
        elif len(row_cells) == ncols and list(row_cells) == in_order:  # every place, written left to right
            rows.append(list(row_cells.values()))
        else:
            get = row_cells.get
            rows.append([get(c) or Cell("") for c in columns])
    for r1, c1, r2, c2 in merges:
        marker = object()
        for r in range(r1 - 1, min(r2, nrows)):
            for c in range(c1 - 1, min(c2, ncols)):
                rows[r][c].merge = marker
        if r1 - 1 < len(rows) and c1 - 1 < len(rows[r1 - 1]):
            rows[r1 - 1][c1 - 1].height = r2 - r1 + 1
    return Grid(rows)


# --- .docx ---------------------------------------------------------------------------------------------


def docx_body(data: bytes):  # noqa: ANN201 - an lxml element
    """The ``w:body`` element of a .docx's main document, parsed as python-docx parses it (lxml, blank text
    removed, entities never resolved), without loading the rest of the package."""
    from lxml import etree

    pkg = _Package(data)
    mains = [target for rtype, target in pkg.rels("").values() if rtype == _OFFICE_DOCUMENT]
    main = mains[0] if len(mains) == 1 else None
    if main is None or pkg.content_types().get(main) != _DOCX_MAIN:
        raise NotLean("no Word main document")  # python-docx refuses it with its own error
    blob = pkg.read(main)
    parser = etree.XMLParser(remove_blank_text=True, resolve_entities=False, no_network=True, load_dtd=False,
                             huge_tree=False)
    try:
        root = etree.fromstring(blob, parser)
    except etree.XMLSyntaxError as exc:
        raise NotLean("XML") from exc
    info = root.getroottree().docinfo
    if info.doctype or info.internalDTD is not None or info.externalDTD is not None:
        raise UnsafeForm("DOCTYPE or entity declaration")
    body = root.find("{http://schemas.openxmlformats.org/wordprocessingml/2006/main}body")
    if body is None:
        raise NotLean("no body")
    return body
