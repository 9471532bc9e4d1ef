"""The orderer register: per routine and region, the persons allowed to order (e-mail, name, validity).

Routines whose chain has the ``authorised_orderer`` check (``rules/checks/orderers.py``) accept a mail
only when its sender and the orderer named in the form are here, for the form's region, on the day the
mail is judged. Staff keep the register with ``intake orderers`` and the web UI (admins); every change
is an event in the audit trail (``orderer_added``, ``orderer_updated``, ``orderer_removed``,
``orderers_imported``, ``orderers_exported``) with the actor, ids and counts, never an address or name.

:func:`lookup_for` is the lookup the poller hands to ``decide(..., lookups={"orderers": ...})``;
:func:`unknown` is the one ``intake check`` hands (no store: every answer is "unknown", so such a mail
is reported as held for a handler).
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from intake.errors import IntakeError
from intake.store import Store, utcnow
from parsers.schema import fold
from rules.checks.orderers import LOOKUP, OrdererLookup

CHECK = "authorised_orderer"
#: Columns of the .xlsx import and export, in order (their Swedish headers come from the labels file).
COLUMNS = ("email", "name", "region", "valid_from", "valid_to")
REQUIRED = ("email", "name", "region", "valid_from")
_EMAIL = re.compile(r"^[^@\s<>()\[\],;:\"]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)+$")


class OrdererError(IntakeError, ValueError):
    """A refused change of the orderer register (bad value, unknown routine or region, no such entry)."""


class OrdererImportError(OrdererError):
    """A refused import: ``row`` is the row of the sheet (1 = the header), ``problem`` a stable id."""

    def __init__(self, row: int, problem: str, message: str):
        super().__init__(f"row {row}: {message}; nothing was imported")
        self.row = row
        self.problem = problem


# -- which routines use the register --------------------------------------------------------------------


def uses_register(routine: Any) -> bool:
    return any(row.check.name == CHECK for row in getattr(routine, "chain", ()) or ())


def register_routines(routines: Iterable[Any]) -> list[Any]:
    """The routines whose chain checks the orderer register."""
    return [r for r in routines if uses_register(r)]


def choose_routine(routines: Iterable[Any], wanted: str | None) -> Any:
    """The routine named ``wanted`` among those using the register; the only one when none is named."""
    using = register_routines(routines)
    if wanted:
        for routine in using:
            if routine.id == wanted:
                return routine
        raise OrdererError(f"routine {wanted!r} does not use the orderer register "
                           f"(routines that do: {', '.join(r.id for r in using) or 'none'})")
    if len(using) != 1:
        raise OrdererError("name the routine with --routine (routines using the orderer register: "
                           f"{', '.join(r.id for r in using) or 'none'})")
    return using[0]


def regions_of(routine: Any) -> list[str] | None:
    """The regions the routine's form allows (the field its check reads), or None when it has no list."""
    row = next((r for r in routine.chain if r.check.name == CHECK), None)
    field_id = (row.params.get("region_field") if row else None) or "region"
    schema = getattr(routine, "form_schema", None)
    spec = schema.spec(field_id) if schema is not None else None
    allowed = list(spec.allowed(None)) if spec is not None else []
    return allowed or None


# -- values --------------------------------------------------------------------------------------------


def _text(value: Any) -> str:
    return re.sub(r"\s+", " ", "" if value is None else str(value)).strip()


def _day(value: Any) -> str | None:
    """An ISO day from an Excel date or text (``2026-11-23``, ``20261123``); '' or None is None."""
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    text = _text(value)
    if not text:
        return None
    try:
        return date.fromisoformat(text[:10] if len(text) > 10 and text[10] in " T" else text).isoformat()
    except ValueError:
        raise ValueError(text) from None


def clean(values: dict[str, Any], regions: list[str] | None) -> tuple[dict[str, Any], str | None]:
    """``values`` checked and normalised, or the id of the first problem (``email``, ``name``, ...)."""
    out: dict[str, Any] = {}
    email = _text(values.get("email")).lower()
    if not _EMAIL.match(email):
        return out, "email"
    out["email"] = email
    name = _text(values.get("name"))
    if not name or len(name) > 200:
        return out, "name"
    out["name"] = name
    region = _text(values.get("region"))
    if regions is not None:
        region = next((r for r in regions if fold(r) == fold(region)), "")
    if not region or len(region) > 200:
        return out, "region"
    out["region"] = region
    try:
        out["valid_from"] = _day(values.get("valid_from"))
    except ValueError:
        return out, "valid_from"
    if out["valid_from"] is None:
        return out, "valid_from"
    try:
        out["valid_to"] = _day(values.get("valid_to"))
    except ValueError:
        return out, "valid_to"
    if out["valid_to"] is not None and out["valid_to"] < out["valid_from"]:
        return out, "order"
    return out, None


#: What each problem id means, for the CLI and exceptions (the web UI words them in Swedish).
PROBLEMS = {
    "email": "the e-mail address is missing or not an address",
    "name": "the name is missing",
    "region": "the region is missing or not one of the routine's regions",
    "valid_from": "'valid from' is missing or not a date (YYYY-MM-DD)",
    "valid_to": "'valid to' is not a date (YYYY-MM-DD)",
    "order": "'valid to' is before 'valid from'",
    "duplicate": "the same e-mail address and region are on an earlier row",
    "header": "the header row lacks a column",
    "unreadable": "the file is not a readable .xlsx workbook",
    "too_many": "more than 10000 rows",
}


# -- changes (each one audited) -----------------------------------------------------------------------


def add_orderer(store: Store, routine: Any, values: dict[str, Any], *, actor: str,
                via: str = "cli") -> tuple[int, bool]:
    """Put one orderer on ``routine``'s register (or update the one with that region and e-mail).

    Returns (id, created). A bad value is an :class:`OrdererError` naming the problem.
    """
    row, problem = clean(values, regions_of(routine))
    if problem:
        raise OrdererError(PROBLEMS[problem])
    now_iso = utcnow()
    with store.transaction():
        existing = store.find_orderer(routine.id, row["region"], row["email"])
        if existing is not None:
            store.update_orderer(existing["id"], row, now_iso)
            store.add_event("orderer_updated", actor=actor, at=now_iso,
                            data={"orderer": existing["id"], "routine": routine.id, "via": via})
            return existing["id"], False
        orderer_id = store.insert_orderer({**row, "routine": routine.id}, now_iso)
        store.add_event("orderer_added", actor=actor, at=now_iso,
                        data={"orderer": orderer_id, "routine": routine.id, "via": via})
    return orderer_id, True


def remove_orderer(store: Store, orderer_id: int, *, actor: str, via: str = "cli") -> None:
    """Take one orderer off the register (the audit trail keeps its id)."""
    with store.transaction():
        row = store.orderer(orderer_id)
        store.delete_orderer(orderer_id)
        store.add_event("orderer_removed", actor=actor,
                        data={"orderer": orderer_id, "routine": row["routine"], "via": via})


@dataclass(frozen=True)
class ImportResult:
    rows: int
    added: int
    updated: int
    removed: int

    def summary(self) -> str:
        return f"{self.rows} rows: {self.added} added, {self.updated} updated, {self.removed} removed"


def read_xlsx(data: bytes, headers: dict[str, str]) -> list[tuple[int, dict[str, Any]]]:
    """(sheet row, values by column id) of the first sheet; the header row names the columns.

    A header matches a column by its id (``email``) or its Swedish header (``E-post``), any case.
    """
    from openpyxl import load_workbook

    try:
        wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception:  # noqa: BLE001 - any damage to the file is the same answer to the user
        raise OrdererImportError(1, "unreadable", PROBLEMS["unreadable"]) from None
    try:
        rows = wb.worksheets[0].iter_rows(values_only=True)
        head = next(rows, None) or ()
        names = {fold(c): c for c in COLUMNS} | {fold(h): c for c, h in headers.items() if c in COLUMNS}
        where = {names[fold(_text(h))]: i for i, h in enumerate(head) if fold(_text(h)) in names}
        missing = [c for c in REQUIRED if c not in where]
        if missing:
            raise OrdererImportError(1, "header", f"{PROBLEMS['header']} ({headers.get(missing[0], missing[0])})")
        out = []
        for number, cells in enumerate(rows, start=2):
            values = {c: (cells[i] if i < len(cells) else None) for c, i in where.items()}
            if all(_text(v) == "" for v in values.values()):
                continue  # blank rows are skipped, as in the forms
            out.append((number, values))
            if len(out) > 10000:
                raise OrdererImportError(number, "too_many", PROBLEMS["too_many"])
        return out
    finally:
        wb.close()


def import_xlsx(store: Store, routine: Any, data: bytes, *, actor: str, headers: dict[str, str] | None = None,
                replace: bool = False, via: str = "cli") -> ImportResult:
    """Import orderers from an .xlsx sheet into ``routine``'s register, all or nothing.

    Every row is checked before anything is written: the first bad row refuses the whole import
    (:class:`OrdererImportError` names the row). A row with a region and e-mail already on the register
    updates it; with ``replace``, orderers of the routine that the sheet does not name are removed.
    """
    regions = regions_of(routine)
    checked: list[dict[str, Any]] = []
    seen: dict[tuple[str, str], int] = {}
    for number, values in read_xlsx(data, headers or {}):
        row, problem = clean(values, regions)
        if problem:
            raise OrdererImportError(number, problem, PROBLEMS[problem])
        key = (row["region"].casefold(), row["email"])
        if key in seen:
            raise OrdererImportError(number, "duplicate", f"{PROBLEMS['duplicate']} (row {seen[key]})")
        seen[key] = number
        checked.append(row)
    added = updated = removed = 0
    now_iso = utcnow()
    with store.transaction():
        kept: set[int] = set()
        for row in checked:
            existing = store.find_orderer(routine.id, row["region"], row["email"])
            if existing is None:
                kept.add(store.insert_orderer({**row, "routine": routine.id}, now_iso))
                added += 1
            else:
                kept.add(existing["id"])
                if any(existing[k] != row[k] for k in COLUMNS):
                    store.update_orderer(existing["id"], row, now_iso)
                    updated += 1
        if replace:
            for old in store.orderers(routine.id):
                if old["id"] not in kept:
                    store.delete_orderer(old["id"])
                    removed += 1
        result = ImportResult(rows=len(checked), added=added, updated=updated, removed=removed)
        store.add_event("orderers_imported", actor=actor, at=now_iso,
                        data={"routine": routine.id, "rows": result.rows, "added": added, "updated": updated,
                              "removed": removed, "replace": replace, "via": via})
    return result


def export_xlsx(rows: list[dict[str, Any]], headers: dict[str, str] | None = None) -> bytes:
    """Orderer rows as an .xlsx workbook that :func:`import_xlsx` reads back."""
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = "Beställare"
    ws.append([(headers or {}).get(c, c) for c in COLUMNS])
    for row in rows:
        ws.append([row.get(c) for c in COLUMNS])
        for cell in ws[ws.max_row]:
            if isinstance(cell.value, str) and cell.value.startswith("="):
                cell.data_type = "s"  # a typed value never becomes a formula in Excel
    ws.freeze_panes = "A2"
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def export_orderers(store: Store, routine: Any, *, actor: str, region: str | None = None,
                    headers: dict[str, str] | None = None, via: str = "cli") -> tuple[bytes, int]:
    """The routine's orderers (of one region, if given) as .xlsx bytes and their count; audited."""
    rows = store.orderers(routine.id, region)
    with store.transaction():
        store.add_event("orderers_exported", actor=actor,
                        data={"routine": routine.id, "orderers": len(rows), "via": via})
    return export_xlsx(rows, headers), len(rows)


def today() -> date:
    """The day as the poller judges mail (UTC, like its clock)."""
    return datetime.now(UTC).date()


def is_valid(row: dict[str, Any], day: date | None = None) -> bool:
    """Whether the orderer ``row`` may order on ``day`` (today by default)."""
    today_iso = (day or today()).isoformat()
    return row["valid_from"] <= today_iso and (row["valid_to"] is None or row["valid_to"] >= today_iso)


# -- the lookups handed to decide() --------------------------------------------------------------------


def lookup_for(store: Store) -> OrdererLookup:
    """The read-only lookup over ``store`` that the ``authorised_orderer`` check asks."""

    def may_order(routine: str, region: str | None, email: str, day: date) -> bool:
        return store.orderer_may_order(routine, region, email, day.isoformat())

    return may_order


def unknown(routine: str, region: str | None, email: str, day: date) -> None:
    """The lookup without a store (``intake check``): the register is unknown, so the mail would be held."""
    return None


def lookups_for(store: Store | None) -> dict[str, OrdererLookup]:
    """``decide``'s ``lookups`` argument: the register over ``store``, or :func:`unknown` without one."""
    return {LOOKUP: lookup_for(store) if store is not None else unknown}
