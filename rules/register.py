"""The access register's pure core: how a routine's completed form maps to register entry changes.

A pack declares the mapping as data in ``register.toml`` beside its ``pack.toml``: which request
types (and form kinds) grant, end or change access, and where each part of an entry comes from
(a constant, a single form field, or a column of the persons table). :func:`load_register_mapping`
checks it against the pack's request types and form fields and names the file and key of any
mistake. :func:`entries_from_ticket` turns one ticket row and its stored form JSON into a list of
:class:`EntryChange` — no database, clock or key is involved; the shell (``intake.register``)
hashes, encrypts and writes them.

Person identifiers are normalised here (personnummer to ``YYYYMMDDNNNN``, HSA-ids upper case) so
"19121212-1212" and "191212121212" are the same person in the register.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Literal

from parsers.errors import IntakeError
from rules.identity import is_hsa_id, parse_identity_number

Op = Literal["grant", "end", "update"]
OPS = ("grant", "end", "change")  # what a request type does, as the pack says it
FILE_NAME = "register.toml"

#: Entry parts a mapping may declare: key -> whether it is required.
PARTS: dict[str, bool] = {
    "person": True,  # the person's identifier (personnummer, samordningsnummer or HSA-id)
    "system": True,
    "role": False,
    "unit": False,
    "unit_hsa_id": False,
    "municipality": False,
    "valid_from": False,
    "valid_to": False,
    "orderer_email": False,
    "orderer_name": False,
    "attestant_email": False,
    "attestant_name": False,
    "action": False,  # a per-row "add"/"remove" column (form schema v2)
}
#: Parts that must come from the persons table (one value per person row).
ROW_PARTS = {"person", "action"}
_SOURCE_KEYS = {"value", "field", "column"}
_TOP_KEYS = {*PARTS, "effects", "name_columns"}
_EFFECT_KEYS = {"request_type", "form_kinds", "does"}
#: Values of an action column that end access; anything else (or empty) adds.
REMOVE_VALUES = {"remove", "ta bort", "avsluta", "borttag"}


class RegisterMappingError(IntakeError, ValueError):
    """A register.toml is malformed or names something the pack does not have."""


@dataclass(frozen=True)
class Source:
    """Where one part of an entry comes from: a constant ``value``, a form ``field`` or a persons ``column``."""

    value: str | None = None
    field: str | None = None
    column: str | None = None

    def get(self, fields: dict[str, Any], row: dict[str, Any]) -> Any:
        if self.value is not None:
            return self.value
        if self.field is not None:
            return fields.get(self.field)
        if self.column is not None:
            return row.get(self.column)
        return None


@dataclass(frozen=True)
class Effect:
    request_type: str
    form_kinds: tuple[str, ...]  # empty: any kind
    does: str  # grant | end | change


@dataclass(frozen=True)
class RegisterMapping:
    """A checked register.toml of one routine."""

    routine: str
    parts: dict[str, Source]
    effects: tuple[Effect, ...]
    name_columns: tuple[str, ...] = ()
    path: Path | None = None

    def effect_for(self, request_type: str | None, form_kind: str | None) -> str | None:
        """What a done ticket of this request type (and form kind) does to the register, or None."""
        for eff in self.effects:
            if eff.request_type == request_type and (not eff.form_kinds or form_kind in eff.form_kinds):
                return eff.does
        return None

    def request_types_that(self, does: str) -> set[str]:
        return {e.request_type for e in self.effects if e.does == does}

    def source(self, part: str) -> Source:
        return self.parts.get(part, Source())


@dataclass(frozen=True)
class EntryChange:
    """One change a done ticket makes to the register.

    ``grant``: the person gets ``role`` in ``system`` from ``valid_from``. ``end``: the person's entries in
    ``system`` with ``role`` (every role when ``role`` is None) end on ``valid_to``. ``update``: part of a
    change order; per person and system, the roles named by the order's ``update`` changes are the new set
    (others are ended, missing ones granted, held ones updated).
    """

    op: Op
    person: str  # normalised identifier
    person_kind: str  # personnummer | samordningsnummer | hsa_id | other
    system: str
    role: str | None = None
    name: str | None = None
    unit: str | None = None
    unit_hsa_id: str | None = None
    municipality: str | None = None
    valid_from: str | None = None  # ISO dates
    valid_to: str | None = None
    orderer_email: str | None = None
    orderer_name: str | None = None
    attestant_email: str | None = None
    attestant_name: str | None = None
    row: int | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)


# -- loading -------------------------------------------------------------------------------------------


def _source(data: Any, where: str, fields: set[str], columns: set[str], row_only: bool) -> Source:
    if isinstance(data, str):
        data = {"value": data}
    if not isinstance(data, dict) or len(data) != 1:
        raise RegisterMappingError(f"{where}: expected a table with one of value, field or column")
    (kind, name), = data.items()
    if kind not in _SOURCE_KEYS:
        raise RegisterMappingError(f"{where}.{kind}: unknown key (use value, field or column)")
    if not isinstance(name, str) or not name.strip():
        raise RegisterMappingError(f"{where}.{kind}: expected a non-empty string")
    if row_only and kind != "column":
        raise RegisterMappingError(f"{where}: must be a column of the persons table")
    if kind == "field" and name not in fields:
        raise RegisterMappingError(f"{where}.field: {name!r} is not a field of the pack's form")
    if kind == "column" and name not in columns:
        raise RegisterMappingError(f"{where}.column: {name!r} is not a column of the pack's persons table")
    return Source(**{kind: name})


def parse_register_mapping(
    data: dict[str, Any],
    *,
    routine: str,
    request_types: Iterable[str],
    form_kinds: Iterable[str] = (),
    fields: Iterable[str] = (),
    columns: Iterable[str] = (),
    where: str = FILE_NAME,
) -> RegisterMapping:
    """Check a register mapping (already read from TOML) against what the pack has."""
    fields, columns, rtypes, kinds = set(fields), set(columns), set(request_types), set(form_kinds)
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise RegisterMappingError(f"{where}: {unknown[0]}: unknown key")
    parts: dict[str, Source] = {}
    for part, required in PARTS.items():
        if part not in data:
            if required:
                raise RegisterMappingError(f"{where}: {part}: missing")
            continue
        parts[part] = _source(data[part], f"{where}: {part}", fields, columns, part in ROW_PARTS)
    names = data.get("name_columns", [])
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise RegisterMappingError(f"{where}: name_columns: expected a list of column ids")
    for n in names:
        if n not in columns:
            raise RegisterMappingError(f"{where}: name_columns: {n!r} is not a column of the pack's persons table")
    effects_data = data.get("effects")
    if not isinstance(effects_data, list) or not effects_data:
        raise RegisterMappingError(f"{where}: effects: at least one [[effects]] table is needed")
    effects = []
    for i, eff in enumerate(effects_data):
        here = f"{where}: effects[{i}]"
        if not isinstance(eff, dict):
            raise RegisterMappingError(f"{here}: expected a table")
        bad = sorted(set(eff) - _EFFECT_KEYS)
        if bad:
            raise RegisterMappingError(f"{here}: {bad[0]}: unknown key")
        rt = eff.get("request_type")
        if rt not in rtypes:
            raise RegisterMappingError(f"{here}: request_type: {rt!r} is not a request type of the pack")
        does = eff.get("does")
        if does not in OPS:
            raise RegisterMappingError(f"{here}: does: must be one of {', '.join(OPS)}, not {does!r}")
        fk = eff.get("form_kinds", [])
        if not isinstance(fk, list) or not all(isinstance(k, str) for k in fk):
            raise RegisterMappingError(f"{here}: form_kinds: expected a list of form kinds")
        for k in fk:
            if kinds and k not in kinds:
                raise RegisterMappingError(f"{here}: form_kinds: {k!r} is not a kind of the pack's form")
        effects.append(Effect(request_type=rt, form_kinds=tuple(fk), does=does))
    return RegisterMapping(routine=routine, parts=parts, effects=tuple(effects), name_columns=tuple(names))


def schema_ids(schema: Any) -> tuple[set[str], set[str], set[str]]:
    """(single field ids, persons-table column ids, form kinds) of a form schema.

    Duck-typed on purpose: today's :class:`rules.forms.FormSchema` (``sections[].fields``,
    ``users.columns``, ``kind.options``) and a later schema with ``fields``/``tables`` both work.
    """
    if schema is None:
        return set(), set(), set()
    fields = {f.id for f in getattr(schema, "fields", ()) or ()}
    for section in getattr(schema, "sections", ()) or ():
        fields |= {f.id for f in section.fields}
    columns: set[str] = set()
    users = getattr(schema, "users", None)
    if users is not None:
        columns |= {c.id for c in users.columns}
    for table in getattr(schema, "tables", ()) or ():
        columns |= {c.id for c in getattr(table, "columns", ())}
    kinds: set[str] = set(getattr(schema, "kinds", ()) or ())
    kind = getattr(schema, "kind", None)
    if kind is not None and hasattr(kind, "options"):
        kinds |= {o.value for o in kind.options}
    return fields, columns, kinds


def load_register_mapping(routine: Any) -> RegisterMapping | None:
    """The checked ``register.toml`` of a loaded routine pack; None when the pack has none."""
    path = Path(routine.path) / FILE_NAME
    if not path.exists():
        return None
    where = str(path)
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except OSError as exc:
        raise RegisterMappingError(f"{where}: cannot read ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise RegisterMappingError(f"{where}: not valid TOML ({exc})") from None
    fields, columns, kinds = schema_ids(getattr(routine, "form_schema", None))
    mapping = parse_register_mapping(
        data, routine=routine.id, request_types=[rt.id for rt in routine.request_types], form_kinds=kinds,
        fields=fields, columns=columns, where=where)
    return RegisterMapping(routine=mapping.routine, parts=mapping.parts, effects=mapping.effects,
                           name_columns=mapping.name_columns, path=path)


# -- the mapping applied -------------------------------------------------------------------------------


def normalise_person(value: Any) -> tuple[str, str] | None:
    """(normalised identifier, kind) of a person identifier; None when empty.

    A personnummer or samordningsnummer becomes ``YYYYMMDDNNNN`` (no separator), an HSA-id upper case
    without spaces; anything else is kept stripped and upper-cased as kind ``other`` (a manual entry
    may name a person by another id).
    """
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return None
    number = parse_identity_number(text)
    if number is not None:
        return number.normalised.replace("-", ""), number.kind
    if is_hsa_id(text):
        return re.sub(r"\s+", "", text).upper(), "hsa_id"
    return re.sub(r"\s+", "", text).upper(), "other"


def display_person(normalised: str, kind: str) -> str:
    """How an identifier is written for people: ``YYYYMMDD-NNNN`` for numbers, as stored otherwise."""
    if kind in ("personnummer", "samordningsnummer") and len(normalised) == 12:
        return f"{normalised[:8]}-{normalised[8:]}"
    return normalised


def _values(value: Any) -> list[str]:
    """A cell as a list of values: a list (multi-valued column) or one text; empty ones dropped."""
    items = value if isinstance(value, (list, tuple)) else [value]
    out = []
    for item in items:
        text = "" if item is None else str(item).strip()
        if text and text not in out:
            out.append(text)
    return out


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        value = ", ".join(str(v) for v in value if v)
    text = str(value).strip()
    return text or None


def _day(value: Any) -> str | None:
    if isinstance(value, date):
        return value.isoformat()
    text = _text(value)
    if text is None:
        return None
    try:
        return date.fromisoformat(text[:10]).isoformat()
    except ValueError:
        return None


def entries_from_ticket(ticket: dict[str, Any], form: dict[str, Any] | None, mapping: RegisterMapping) -> list[
        EntryChange]:
    """The register changes one done ticket makes, from its row and its stored form JSON.

    Rows without a usable person identifier are skipped (validation refused such forms at intake). A role
    given as a list makes one change per role. A row whose action column says remove ends that person's
    entries, whatever the request type. Default dates are the day the ticket was closed.
    """
    if not form or ticket.get("routine") not in (None, mapping.routine):
        return []
    does = mapping.effect_for(ticket.get("request_type"), form.get("kind"))
    if does is None:
        return []
    closed = _day(ticket.get("closed_at")) or _day(ticket.get("updated_at")) or _day(ticket.get("created_at"))
    fields = form.get("fields") or {}
    rows = form.get("users") or form.get("persons") or []
    changes: list[EntryChange] = []
    for row in rows:
        if not isinstance(row, dict):
            continue
        person = normalise_person(mapping.source("person").get(fields, row))
        if person is None:
            continue
        # Without a declared action column, a row's own "action" (form schema v2) still counts.
        raw_action = mapping.source("action").get(fields, row) if "action" in mapping.parts else row.get("action")
        action = (_text(raw_action) or "").lower()
        row_does = "end" if action in REMOVE_VALUES else does

        def part(name: str, row: dict[str, Any] = row) -> Any:
            return mapping.source(name).get(fields, row)

        name = " ".join(t for t in (_text(row.get(c)) for c in mapping.name_columns) if t) or None
        systems = _values(part("system"))
        roles: list[str | None] = list(_values(part("role"))) if "role" in mapping.parts else []
        valid_from = _day(part("valid_from"))
        valid_to = _day(part("valid_to"))
        common = dict(
            person=person[0], person_kind=person[1], name=name,
            unit=_text(part("unit")), unit_hsa_id=_text(part("unit_hsa_id")),
            municipality=_text(part("municipality")),
            orderer_email=(_text(part("orderer_email")) or "").lower() or None,
            orderer_name=_text(part("orderer_name")),
            attestant_email=(_text(part("attestant_email")) or "").lower() or None,
            attestant_name=_text(part("attestant_name")),
            row=row.get("row") if isinstance(row.get("row"), int) else None,
        )
        for system in systems:
            if row_does == "end":
                # A termination names the roles to end, or none: then every role in that system ends.
                for role in roles or [None]:
                    changes.append(EntryChange(op="end", system=system, role=role, valid_from=valid_from,
                                               valid_to=valid_to or closed, **common))
                continue
            op: Op = "grant" if row_does == "grant" else "update"
            for role in roles or [None]:
                changes.append(EntryChange(op=op, system=system, role=role, valid_from=valid_from or closed,
                                           valid_to=valid_to, **common))
    return changes
