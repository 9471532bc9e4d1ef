"""Finding a form's fields by label in grids of cells: the layout logic shared by .xlsx and .docx.

Both parsers turn a file into :class:`Grid` s (a worksheet; a Word table; a run of paragraphs as a
one-column grid) and hand them to :func:`read_form`. Fields are found by their label or a synonym
(any case, extra spaces, with or without a colon or a trailing "(hint)"), the value inline after a
colon, to the right, or below. The persons table ("users") is found by its header row; a
multi-valued column is read from one cell ("A, B", "A / B", one per line) and from checkbox columns
headed by its values, ticked with X/x/✓/ja/☒. Pure and deterministic.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from parsers.schema import FieldSpec, FormSchema, fold, label_key, squash

__all__ = ["Cell", "FormData", "Grid", "cell_text", "convert", "label_key", "parse_date", "read_form", "squash"]


@dataclass(slots=True)  # (many are made per form: slots make them quicker to make and to read)
class Cell:
    text: str
    value: Any = None  # the typed value when the file had one (date, number, bool)
    merge: object = None  # same object for every cell of one merged region
    height: int = 1  # rows spanned by a merged region (on its top-left cell)


@dataclass
class Grid:
    rows: list[list[Cell]] = field(default_factory=list)

    def at(self, r: int, c: int) -> Cell | None:
        if 0 <= r < len(self.rows) and 0 <= c < len(self.rows[r]):
            return self.rows[r][c]
        return None


@dataclass
class FormData:
    kinds_checked: list[str]
    fields: dict[str, object]
    users: list[dict[str, object]]
    labels_found: int


# --- text normalisation ---------------------------------------------------------------------------

CHECKED = {"x", "☒", "☑", "✓", "✔", "✗", "✘", "■", "☓", "ja", "yes", "[x]", "(x)", "true", "1", "sant"}
UNCHECKED = {"☐", "□", "nej", "no", "[ ]", "( )", "false", "0", "falskt", "-"}
_INLINE_CHECKED = re.compile(r"[☒☑✓✔✗✘■☓]|(?:^|[\s\[(:])x(?:$|[\s\])])|\bja\b")
_INLINE_UNCHECKED = re.compile(r"[☐□]|\bnej\b|\[\s*\]")


def _mark(cell: Cell | None) -> bool | None:
    """True/False when ``cell`` is a checkbox mark (ticked/empty box); None when it is not one."""
    if cell is None:
        return None
    if isinstance(cell.value, bool):
        return cell.value
    s = _SQUASHED.get(cell.text)  # only read here: _mark also runs outside read_form, whose memo this is
    if s is None:
        s = squash(cell.text)
    if s in CHECKED:
        return True
    if s in UNCHECKED:
        return False
    if len(s) <= 6:  # "☐ x", "[ x ]": a box someone wrote in
        return _inline_mark(s)
    return None


def _inline_mark(segment: str) -> bool | None:
    if _INLINE_CHECKED.search(segment):
        return True
    if _INLINE_UNCHECKED.search(segment):
        return False
    return None


# --- value conversion ------------------------------------------------------------------------------

_MONTHS = {
    "jan": 1, "januari": 1, "feb": 2, "februari": 2, "mar": 3, "mars": 3, "apr": 4, "april": 4, "maj": 5,
    "jun": 6, "juni": 6, "jul": 7, "juli": 7, "aug": 8, "augusti": 8, "sep": 9, "sept": 9, "september": 9,
    "okt": 10, "oktober": 10, "nov": 11, "november": 11, "dec": 12, "december": 12,
    "may": 5, "oct": 10, "january": 1, "february": 2, "march": 3, "june": 6, "july": 7, "august": 8,
    "october": 10,
}
_ISO = re.compile(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?:[ T]\d{1,2}:\d{2}(?::\d{2})?)?$")
_COMPACT = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_DMY = re.compile(r"^(\d{1,2})[-/.](\d{1,2})[-/.](\d{4})$")
_TEXT_MONTH = re.compile(r"^(\d{1,2})\.?\s+([a-zåäö]+)\.?\s+(\d{4})$")


def parse_date(value: object) -> date | None:
    """A date from an Excel date, a serial number or text (2026-11-23, 23/11/2026, 20261123,
    23 nov 2026); None when it cannot be read. Day before month, as written in Sweden."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        if float(value).is_integer() and 19000101 <= value <= 21001231:
            value = str(int(value))
        elif 20000 <= value <= 80000:  # an Excel serial left unformatted
            return date(1899, 12, 30) + timedelta(days=int(value))
        else:
            return None
    if not isinstance(value, str):
        return None
    s = squash(value)
    try:
        if m := _ISO.match(s):
            return date(int(m[1]), int(m[2]), int(m[3]))
        if m := _COMPACT.match(s):
            return date(int(m[1]), int(m[2]), int(m[3]))
        if m := _DMY.match(s):
            return date(int(m[3]), int(m[2]), int(m[1]))
        if (m := _TEXT_MONTH.match(s)) and m[2] in _MONTHS:
            return date(int(m[3]), _MONTHS[m[2]], int(m[1]))
    except ValueError:
        return None
    return None


def cell_text(value: object) -> str:
    """How a typed cell value reads as text (whole numbers without ".0", dates as ISO)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "X" if value else ""
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == datetime.min.time() else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def convert(spec: FieldSpec, cell_or_text: Cell | str) -> object:
    """The field value as the form holds it: a date for readable dates, a list for a multi-valued
    field, an option value for an action, else the stripped text (None when empty)."""
    if isinstance(cell_or_text, Cell):
        raw: object = cell_or_text.value if cell_or_text.value is not None else cell_or_text.text
    else:
        raw = cell_or_text
    if spec.multi:
        values = split_values(spec, cell_text(raw) if not isinstance(raw, str) else raw)
        return values or None
    text = cell_text(raw) if not isinstance(raw, str) else " ".join(raw.replace("\u00a0", " ").split())
    if spec.type == "date":
        if not text:
            return None
        return parse_date(raw if not isinstance(raw, str) else text) or text
    if spec.type == "action" and text:
        return spec.action(text) or text
    if spec.ftype.value == "flag":
        mark = _mark(cell_or_text) if isinstance(cell_or_text, Cell) else _mark(Cell(text=text))
        return mark if mark is not None else (text or None)
    return text or None


_SEPARATOR = re.compile(r"[,;/+&|]|\b(?:och|samt|and)\b")
_PUNCT = " .:-*\t"


def split_values(spec: FieldSpec, text: str) -> list[str]:
    """The values listed in one cell ("A, B", "A / B", "A och B", one per line), in list order.

    Known values are found first, as whole phrases (so a value may itself hold "&" or "/"), in any
    case and with or without å/ä/ö; what is left is split at separators, and each piece that is not
    a known value is kept as written (the validator names its row and column, never the text).
    """
    known: list[str] = []
    unknown: list[str] = []
    patterns = sorted(spec.values, key=lambda v: -len(v))
    for line in text.replace("\r", "\n").split("\n"):
        line = " ".join(line.replace("\u00a0", " ").split())
        if not line:
            continue
        folded = line.lower().translate(_FOLD_TABLE)
        if len(folded) != len(line):
            folded, line = fold(line), fold(line)
        taken = [False] * len(folded)
        for value in patterns:
            needle = fold(value)
            for m in re.finditer(r"(?<!\w)" + re.escape(needle) + r"(?!\w)", folded):
                if not any(taken[m.start():m.end()]):
                    taken[m.start():m.end()] = [True] * (m.end() - m.start())
                    if value not in known:
                        known.append(value)
        rest = "".join(" " if t else ch for ch, t in zip(line, taken, strict=True))
        for piece in _SEPARATOR.split(rest):
            piece = piece.strip(_PUNCT)
            if piece and squash(piece) not in {"", "x"}:
                unknown.append(piece)
    order = {v: i for i, v in enumerate(spec.values)}
    return sorted(known, key=order.__getitem__) + unknown


_FOLD_TABLE = str.maketrans("åäàáâöòóôüéèêëíï", "aaaaaoooouee" + "eeii")


# --- the form reader ---------------------------------------------------------------------------------


@dataclass
class _Labels:
    scalars: dict[str, list[FieldSpec]]  # label key -> fields using that label
    columns: dict[str, tuple[FieldSpec, str | None]]  # label key -> (column, value of a checkbox column)
    headings: dict[str, str]  # label key -> section id ("users" for the users title)
    options: list[tuple[re.Pattern[str], str]]  # option synonym pattern -> kind value
    all_keys: set[str]
    option_heads: tuple[str, ...] = ()  # text one of which each option's match contains (a quick test)


_LABELS: dict[int, tuple[FormSchema, _Labels]] = {}  # per schema (kept, so that its id is not reused)
_KEYS: dict[str, str] = {}  # label keys of the cells of the form being read; emptied after each form
_SQUASHED: dict[str, str] = {}  # and their squashed text
_Names = tuple[str | None, tuple["FieldSpec", ...], list[tuple[str, bool | None]]]
_FOUND: dict[str, _Names | None] = {}  # and what each text names (see _names); emptied with them


def _labels_of(schema: FormSchema) -> _Labels:
    hit = _LABELS.get(id(schema))
    if hit is not None and hit[0] is schema:
        return hit[1]
    if len(_LABELS) >= 64:
        _LABELS.clear()
    labels = _labels(schema)
    _LABELS[id(schema)] = (schema, labels)
    return labels


def _squash(text: str) -> str:
    """:func:`squash`, remembered while one form is read (with :func:`_key`)."""
    s = _SQUASHED.get(text)
    if s is None:
        s = _SQUASHED[text] = squash(text)
    return s


def _key(text: str) -> str:
    """:func:`label_key` of a cell's text, remembered while one form is read (a form repeats its texts: the
    users table is looked for first, then every label; the short way gives the same key when there is no
    "(hint)" and no "/" to normalise)."""
    key = _KEYS.get(text)
    if key is None:
        s = _SQUASHED.get(text)
        if s is None:
            s = _SQUASHED[text] = squash(text)
        key = s.rstrip(" :*").strip() if "(" not in s and "/" not in s else label_key(text)
        _KEYS[text] = key
    return key


def _labels(schema: FormSchema) -> _Labels:
    scalars: dict[str, list[FieldSpec]] = {}
    headings: dict[str, str] = {}
    for sec in schema.sections:
        for lab in sec.labels:
            headings.setdefault(label_key(lab), sec.id)
        for f in sec.fields:
            for lab in f.labels:
                scalars.setdefault(label_key(lab), []).append(f)
    for lab in schema.users.labels:
        headings.setdefault(label_key(lab), "users")
    for lab in schema.kind.labels:
        headings.setdefault(label_key(lab), "kind")
    columns: dict[str, tuple[FieldSpec, str | None]] = {}
    for col in schema.users.columns:
        for lab in col.labels:
            columns.setdefault(label_key(lab), (col, None))
    for col in schema.users.columns:
        if col.multi:  # a multi-valued column may also be written as one checkbox column per value
            for value in col.values:
                columns.setdefault(label_key(value), (col, value))
    pairs = [(squash(lab), o.value) for o in schema.kind.options for lab in o.labels]
    pairs.sort(key=lambda p: -len(p[0]))
    options = [(re.compile(r"(?<![\w])" + re.escape(lab).replace("/", r"\s*/\s*") + r"(?![\w])"), v)
               for lab, v in pairs]
    keys = set(scalars) | set(headings) | set(columns) | {label_key(lab) for o in schema.kind.options
                                                           for lab in o.labels}
    heads = sorted({lab.split("/", 1)[0] for lab, _ in pairs})  # ("/" matches with spaces around it)
    # (a head holding another head is found whenever that one is: the shorter one is the test)
    option_heads = tuple(h for h in heads if not any(o != h and o in h for o in heads))
    return _Labels(scalars, columns, headings, options, keys, option_heads)


def _right(grid: Grid, r: int, c: int) -> tuple[int, Cell] | None:
    """The first non-empty cell right of (r, c), skipping the rest of (r, c)'s merged region."""
    origin = grid.at(r, c)
    for cc in range(c + 1, len(grid.rows[r])):
        cell = grid.rows[r][cc]
        if origin is not None and origin.merge is not None and cell.merge is origin.merge:
            continue
        if cell.text.strip() or cell.value not in (None, ""):
            return cc, cell
    return None


def _neighbour(grid: Grid, r: int, c: int, step: int) -> Cell | None:
    origin = grid.at(r, c)
    cc = c + step
    while 0 <= cc < len(grid.rows[r]):
        cell = grid.rows[r][cc]
        if origin is not None and origin.merge is not None and cell.merge is origin.merge:
            cc += step
            continue
        return cell
    return None


def _find_users(grids: list[Grid], labels: _Labels, schema: FormSchema, max_rows: int):
    """(grid index, header row, end row, {col index: column spec}) of the users table, or None."""
    best = None
    need = min(3, len(schema.users.columns))
    column_of = labels.columns.get
    known = _KEYS.get
    for g, grid in enumerate(grids):
        for r, row in enumerate(grid.rows[:max_rows]):
            mapping: dict[int, tuple[FieldSpec, str | None]] = {}
            for c, cell in enumerate(row):
                text = cell.text
                if not text:
                    continue
                key = known(text)
                col = column_of(key if key is not None else _key(text))
                if col is not None and col not in mapping.values():
                    mapping[c] = col
            if len(mapping) >= need and (best is None or len(mapping) > len(best[3])):
                best = (g, r, None, mapping)
    if best is None:
        return None
    g, r, _, mapping = best
    grid = grids[g]
    end = len(grid.rows)
    stop_keys = {k for k, sec in labels.headings.items() if sec != "users"}
    stop_keys |= set(labels.scalars) - set(labels.columns)
    for rr in range(r + 1, min(len(grid.rows), r + 1 + max_rows)):
        if any(cell.text and _key(cell.text) in stop_keys for cell in grid.rows[rr]):
            end = rr
            break
    else:
        end = min(len(grid.rows), r + 1 + max_rows)
    return g, r, end, mapping


def _ticked(cell: Cell | None) -> bool:
    """A cell of a checkbox column: ticked by a mark (X, x, ✓, ja, ☒) or by any other text in it."""
    if cell is None:
        return False
    mark = _mark(cell)
    if mark is not None:
        return mark
    return bool(cell.text.strip())


def _read_users(grid: Grid, header: int, end: int, mapping: dict[int, tuple[FieldSpec, str | None]],
                schema: FormSchema) -> list[dict[str, object]]:
    users = []
    for position, rr in enumerate(range(header + 1, end), start=1):
        row = grid.rows[rr]
        user: dict[str, object] = {}
        ticks: dict[str, list[str]] = {}
        for c, (col, tick_value) in mapping.items():
            cell = row[c] if c < len(row) else None
            if tick_value is not None:
                user.setdefault(col.id, None)
                if _ticked(cell):
                    ticks.setdefault(col.id, []).append(tick_value)
                continue
            user[col.id] = convert(col, cell) if cell is not None else None
        for cid, ticked in ticks.items():
            spec = next(c for c in schema.users.columns if c.id == cid)
            listed = user.get(cid) if isinstance(user.get(cid), list) else []
            order = {v: i for i, v in enumerate(spec.values)}
            known = sorted(set(ticked) | {v for v in listed if v in order}, key=order.__getitem__)
            user[cid] = known + [v for v in listed if v not in order]
        if any(v not in (None, "", [], False) for v in user.values()):  # an empty box alone is no person
            action = schema.users.action
            if action is not None and action.id in user and user[action.id] is None and action.default:
                user[action.id] = action.default
            users.append({"row": position, **user})
    return users


def _find_value(grid: Grid, r: int, c: int, labels: _Labels) -> Cell | str | None:
    cell = grid.rows[r][c]
    if ":" in cell.text:
        inline = cell.text.split(":", 1)[1].strip()
        if inline:
            return inline
    right = _right(grid, r, c)
    if right is not None and _key(right[1].text) not in labels.all_keys:
        return right[1]
    # Nothing but another label to the right: the value may sit below (labels over values).
    below = grid.at(r + max(cell.height, 1), c)
    if below is not None and (below.text.strip() or below.value is not None):
        if _key(below.text) in labels.all_keys or _mark(below) is not None and below.value is None:
            return None
        return below
    return None


def read_form(grids: list[Grid], schema: FormSchema, max_rows: int = 2000) -> FormData:
    """The form's request kinds ticked, its single fields and its user rows, found by label."""
    try:
        return _read_form(grids, schema, max_rows)
    finally:
        _KEYS.clear()  # cell text is personal data: nothing of a form outlives its reading
        _SQUASHED.clear()
        _FOUND.clear()


def _read_form(grids: list[Grid], schema: FormSchema, max_rows: int) -> FormData:
    labels = _labels_of(schema)
    found_labels: set[str] = set()

    users_at = _find_users(grids, labels, schema, max_rows)
    users: list[dict[str, object]] = []
    if users_at is not None:
        g, header, end, mapping = users_at
        users = _read_users(grids[g], header, end, mapping, schema)
        found_labels.update(f"column:{col.id}" + (f":{v}" if v else "") for col, v in mapping.values())

    # Positions of section headings and label occurrences, in document order.
    heading_pos: dict[str, tuple[int, int, int]] = {}
    occurrences: dict[str, list[tuple[tuple[int, int, int], Cell | str | None]]] = {}
    option_cells: list[tuple[int, int, int, list[tuple[str, bool | None]]]] = []
    found = _FOUND
    for g, grid in enumerate(grids):
        skip_from, skip_to = users_at[1:3] if users_at is not None and users_at[0] == g else (0, 0)
        for r, row in enumerate(grid.rows):
            if skip_from <= r < skip_to:
                continue  # the users table
            for c, cell in enumerate(row):
                text = cell.text
                if not text:
                    continue
                names = found.get(text, _UNSEEN)
                if names is _UNSEEN:
                    names = found[text] = _names(text, labels)
                if names is None:
                    continue
                heading, specs, opts = names
                if heading is not None:
                    heading_pos.setdefault(heading, (g, r, c))
                for spec in specs:
                    occurrences.setdefault(spec.id, []).append(((g, r, c), None))
                if opts:
                    option_cells.append((g, r, c, opts))

    fields: dict[str, object] = {}
    for sec in schema.sections:
        start = heading_pos.get(sec.id)
        for spec in sec.fields:
            places = [p for p, _ in occurrences.get(spec.id, [])]
            if not places:
                continue
            found_labels.add(f"field:{spec.id}")
            after = [p for p in places if start is not None and p >= start]
            g, r, c = (after or places)[0]
            value = _find_value(grids[g], r, c, labels)
            fields[spec.id] = convert(spec, value) if value is not None else None

    checked: list[str] = []
    seen_options: set[str] = set()
    by_row: dict[tuple[int, int], list[tuple[int, list[tuple[str, bool | None]]]]] = {}
    for g, r, c, opts in option_cells:
        by_row.setdefault((g, r), []).append((c, opts))
    for (g, r), cells in by_row.items():
        grid = grids[g]
        cells.sort()
        leftmost = cells[0][0]
        orientation = -1 if _mark(_neighbour(grid, r, leftmost, -1)) is not None else 1
        for c, opts in cells:
            for value, state in opts:
                seen_options.add(value)
                if state is None and len(opts) == 1:
                    state = _mark(_neighbour(grid, r, c, orientation))
                    if state is None and len(cells) == 1:
                        state = _mark(_neighbour(grid, r, c, -orientation))
                if state and value not in checked:
                    checked.append(value)
    found_labels.update(f"option:{v}" for v in seen_options)
    order = [o.value for o in schema.kind.options]
    checked.sort(key=order.index)
    return FormData(kinds_checked=checked, fields=fields, users=users, labels_found=len(found_labels))


_UNSEEN = object()


def _names(text: str, labels: _Labels) -> _Names | None:
    """What a cell's text names: (the section it heads or None, the fields it labels, the kind options in it
    with their ticks), or None for none of these (most cells: values). Worked out once per text of a form."""
    key = _key(text)
    head = key.split(":", 1)[0].strip() if ":" in text else key
    heading = labels.headings.get(key)
    scalars = labels.scalars
    specs: tuple[FieldSpec, ...] | list[FieldSpec] = scalars.get(key, ())
    # A key without "(" or "/" is its own key (squashed text squashes to itself: casefolding twice is folding
    # once, and folding makes no space or dash; tests/parsers/test_lean_fastpaths.py pins both).
    head_key = key if head == key and "(" not in key and "/" not in key else _key(head)
    if head_key != key and head_key in scalars:
        specs = (*specs, *scalars[head_key])
    opts = _options_in(text, labels)
    if heading is None and not specs and not opts:
        return None
    return heading, specs, opts


def _options_in(text: str, labels: _Labels) -> list[tuple[str, bool | None]]:
    """Kind options named in one cell's text, each with the tick written beside it (None: none)."""
    s = _squash(text)
    if len(s) > 160:
        return []  # instructions and prose are not checkboxes
    for head in labels.option_heads:
        if head in s:
            break
    else:
        return []
    spans: list[tuple[int, int, str]] = []
    for pattern, value in labels.options:
        for m in pattern.finditer(s):
            if not any(a < m.end() and m.start() < b for a, b, _ in spans):
                spans.append((m.start(), m.end(), value))
    if not spans:
        return []
    spans.sort()
    prefix_style = _inline_mark(s[: spans[0][0]]) is not None
    result = []
    for i, (a, b, value) in enumerate(spans):
        if prefix_style:
            seg = s[spans[i - 1][1] if i else 0 : a]
        else:
            seg = s[b : spans[i + 1][0] if i + 1 < len(spans) else len(s)]
        result.append((value, _inline_mark(seg)))
    return result
