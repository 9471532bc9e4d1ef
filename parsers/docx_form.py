"""A filled-in .docx form into facts: tables and paragraphs as grids of cells, read by label.

The main document part is parsed as python-docx parses it (by :mod:`parsers.leanform`, or by python-docx
itself for a package the lean reader does not model); the body is then walked directly so that text inside content
controls (w:sdt), Word checkbox controls (w14:checkbox), legacy form checkboxes and Wingdings
checkbox symbols is seen, which ``Paragraph.text`` leaves out. Ticks become "☒", empty boxes "☐".
Call only on checked bytes, inside the sandbox.
"""

from __future__ import annotations

import io

from parsers.formgrid import Cell, FormData, Grid, read_form
from parsers.schema import FormSchema

W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
W14 = "http://schemas.microsoft.com/office/word/2010/wordml"
MC = "http://schemas.openxmlformats.org/markup-compatibility/2006"
_w = f"{{{W}}}".__add__
_SDT, _SDT_CONTENT, _CUSTOM_XML = _w("sdt"), _w("sdtContent"), _w("customXml")


def _wrapped(el, tag: str, custom_xml: bool = True) -> list:
    """``el``'s children ``tag``, also those inside content controls (``w:sdt/w:sdtContent``) and, when
    ``custom_xml``, custom XML (``w:customXml``), in document order (the XPath union
    ``./t | ./w:sdt/w:sdtContent/t | ./w:customXml/t``, without an XPath call per element)."""
    out = []
    for child in el:
        ctag = child.tag
        if ctag == tag:
            out.append(child)
        elif ctag == _SDT:
            for content in child.iterchildren(_SDT_CONTENT):
                out.extend(content.iterchildren(tag))
        elif custom_xml and ctag == _CUSTOM_XML:
            out.extend(child.iterchildren(tag))
    return out


_TRPR, _GRID_BEFORE, _TCPR, _GRID_SPAN, _VMERGE, _TBL, _VAL = (
    _w("trPr"), _w("gridBefore"), _w("tcPr"), _w("gridSpan"), _w("vMerge"), _w("tbl"), _w("val"))


def _child(el, tag: str):  # noqa: ANN202 - an lxml element or None
    """The first child ``tag`` of ``el`` (``el.find(tag)`` without a path lookup)."""
    return next(el.iterchildren(tag), None)


def _ROWS(tbl) -> list:  # noqa: N802 - it stands for the XPath it replaced
    return _wrapped(tbl, _w("tr"))


def _CELLS(tr) -> list:  # noqa: N802
    return _wrapped(tr, _w("tc"))


def _PARAS(tc) -> list:  # noqa: N802
    return _wrapped(tc, _w("p"), custom_xml=False)
TICKED, EMPTY = "☒", "☐"
# Wingdings code points Word uses for boxes: ticked (x, check) and empty.
_SYM_TICKED = {"F0FE", "F078", "F0FD", "F0FB", "F0FC", "F0D6"}
_SYM_EMPTY = {"F0A8", "F06F", "F071", "F0A3"}


def _on(el, attr: str = _w("val")) -> bool:
    """A Word on/off property: present without a value, or with 1/true/on."""
    if el is None:
        return False
    val = el.get(attr)
    return val is None or val.lower() in ("1", "true", "on")


def _checkbox_sdt(sdt) -> str | None:
    box = sdt.find(f"{_w('sdtPr')}/{{{W14}}}checkbox")
    if box is None:
        return None
    checked = box.find(f"{{{W14}}}checked")
    return TICKED if checked is not None and _on(checked, f"{{{W14}}}val") else EMPTY


def _text(el, out: list[str]) -> None:
    """Append the visible text of ``el`` (a paragraph or part of one) to ``out``."""
    for child in el:
        tag = child.tag
        if not isinstance(tag, str):
            continue
        if tag == _w("t"):
            out.append(child.text or "")
        elif tag == _w("tab"):
            out.append("\t")
        elif tag in (_w("br"), _w("cr")):
            out.append("\n")
        elif tag == _w("sym"):
            code = (child.get(_w("char")) or "").upper()
            out.append(TICKED if code in _SYM_TICKED else EMPTY if code in _SYM_EMPTY else "")
        elif tag == _w("fldChar"):
            box = child.find(f"{_w('ffData')}/{_w('checkBox')}")
            if box is not None:
                state = box.find(_w("checked"))
                if state is None:
                    state = box.find(_w("default"))
                    out.append(TICKED if state is not None and _on(state) else EMPTY)
                else:
                    out.append(TICKED if _on(state) else EMPTY)
        elif tag == _w("sdt"):
            mark = _checkbox_sdt(child)
            if mark is not None:
                out.append(f" {mark} ")
            else:
                content = child.find(_w("sdtContent"))
                if content is not None:
                    _text(content, out)
        elif tag in (_w("instrText"), _w("delText"), _w("rPr"), _w("pPr"), f"{{{MC}}}Fallback"):
            continue
        else:
            _text(child, out)


def _ptext(p) -> str:
    out: list[str] = []
    _text(p, out)
    return "".join(out)


class _Walker:
    def __init__(self, max_rows: int) -> None:
        self.grids: list[Grid] = []
        self.lines: list[list[Cell]] = []
        self.max_rows = max_rows
        self.budget = max_rows * 20

    def flush(self) -> None:
        if self.lines:
            self.grids.append(Grid(self.lines))
            self.lines = []

    def block(self, container) -> None:
        for child in container:
            self.budget -= 1
            if self.budget < 0:
                return
            tag = child.tag
            if tag == _w("p"):
                text = _ptext(child)
                if text.strip():
                    self.lines.append([Cell(text=text.strip())])
            elif tag == _w("tbl"):
                self.flush()
                self.table(child)
            elif tag in (_w("sdt"), _w("customXml")):
                content = child.find(_w("sdtContent")) if tag == _w("sdt") else child
                if content is not None:
                    self.block(content)

    def table(self, tbl) -> None:
        rows: list[list[Cell]] = []
        active: dict[int, Cell] = {}  # grid column -> top cell of a running vertical merge
        nested = []
        for tr in _ROWS(tbl):
            if len(rows) >= self.max_rows:
                break
            row: list[Cell] = []
            trpr = _child(tr, _TRPR)
            before = _child(trpr, _GRID_BEFORE) if trpr is not None else None
            for _ in range(int(before.get(_VAL, "0")) if before is not None else 0):
                row.append(Cell(text=""))
            for tc in _CELLS(tr):
                tcpr = _child(tc, _TCPR)
                span_el = _child(tcpr, _GRID_SPAN) if tcpr is not None else None
                span = max(1, min(int(span_el.get(_VAL, "1")), 60)) if span_el is not None else 1
                vmerge = _child(tcpr, _VMERGE) if tcpr is not None else None
                col = len(row)
                paras = []
                for p in _PARAS(tc):
                    paras.append(_ptext(p).strip())
                nested.extend(tc.iterchildren(_TBL))
                text = "\n".join(t for t in paras if t)
                if vmerge is not None and (vmerge.get(_VAL) or "continue") == "continue" and col in active:
                    top = active[col]
                    top.height += 1
                    cells = [Cell(text="", merge=top.merge) for _ in range(span)]
                else:
                    marker = object() if span > 1 or vmerge is not None else None
                    first = Cell(text=text, merge=marker)
                    cells = [first] + [Cell(text="", merge=marker) for _ in range(span - 1)]
                    if vmerge is not None:
                        active[col] = first
                    else:
                        active.pop(col, None)
                row.extend(cells)
            rows.append(row)
        self.grids.append(Grid(rows))
        for inner in nested:
            self.table(inner)


def docx_grids(data: bytes, max_rows: int = 2000, *, lean: bool = True) -> list[Grid]:
    """The document body as grids: each table, and each run of paragraphs as a one-column grid.

    With ``lean``, only the main document part is parsed (:func:`parsers.leanform.docx_body`, the same tree
    python-docx would build); python-docx opens the package when ``lean`` is false or the lean reader does
    not model the file.
    """
    body = None
    if lean:
        from parsers.leanform import NotLean, docx_body

        try:
            body = docx_body(data)
        except NotLean:
            body = None  # python-docx reads it (and gives its own answer for whatever is odd in it)
    if body is None:
        import docx

        body = docx.Document(io.BytesIO(data)).element.body
    walker = _Walker(max_rows)
    walker.block(body)
    walker.flush()
    return walker.grids


def parse_docx_form(data: bytes, schema: FormSchema, max_rows: int = 2000, *, lean: bool = True) -> FormData:
    """The form read from a .docx file's bytes."""
    return read_form(docx_grids(data, max_rows, lean=lean), schema, max_rows)
