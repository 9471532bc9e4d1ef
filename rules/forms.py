"""Request forms: the schema a routine pack declares (form.toml) and the checks on a filled-in form.

The schema is data: labels, synonyms, types and which request kinds need which fields. The
parsers find fields by these labels; :func:`validate_form` turns every problem into exactly one
:class:`~rules.reasons.Reason` that names the field label and user row, never the value.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from parsers.errors import IntakeError
from rules.identity import is_hsa_id, parse_identity_number
from rules.reasons import Reason, reason

if TYPE_CHECKING:
    from parsers.forms import ParsedForm

FIELD_TYPES = {"text", "email", "phone", "date", "personnummer_or_hsa", "hsa_id", "choice"}
_FIELD_KEYS = {"id", "label", "synonyms", "type", "required", "values", "suffixes", "not_before", "hint"}
_ID = re.compile(r"^[a-z][a-z0-9_]*$")
RESERVED_COLUMN_IDS = {"row"}  # ParsedForm user rows carry their table row number under "row"


class FormSchemaError(IntakeError, ValueError):
    """A form.toml is missing, malformed or inconsistent; the message names the file and key."""


@dataclass(frozen=True)
class FieldSpec:
    """One field of the form (a single value, or a column of the users table)."""

    id: str
    label: str
    type: str
    synonyms: tuple[str, ...] = ()
    required: bool = False
    required_kinds: tuple[str, ...] = ()  # empty with required=True: every kind
    values: tuple[str, ...] = ()
    suffixes: tuple[str, ...] = ()
    not_before: str = ""
    hint: str = ""

    @property
    def labels(self) -> tuple[str, ...]:
        return (self.label, *self.synonyms)

    def is_required(self, kinds: list[str] | tuple[str, ...]) -> bool:
        """Required for the form's kind(s); with several possible kinds, only when all need it."""
        if not self.required:
            return False
        if not self.required_kinds:
            return True
        return bool(kinds) and all(k in self.required_kinds for k in kinds)


@dataclass(frozen=True)
class KindOption:
    value: str
    label: str
    synonyms: tuple[str, ...]
    name: str  # how it reads in a sentence: "ny behörighet"

    @property
    def labels(self) -> tuple[str, ...]:
        return (self.label, *self.synonyms)


@dataclass(frozen=True)
class KindSpec:
    id: str
    label: str
    synonyms: tuple[str, ...]
    required: bool
    options: tuple[KindOption, ...]

    @property
    def labels(self) -> tuple[str, ...]:
        return (self.label, *self.synonyms)


@dataclass(frozen=True)
class Section:
    id: str
    title: str
    synonyms: tuple[str, ...]
    fields: tuple[FieldSpec, ...]

    @property
    def labels(self) -> tuple[str, ...]:
        return (self.title, *self.synonyms)


@dataclass(frozen=True)
class UsersSpec:
    title: str
    synonyms: tuple[str, ...]
    blank_rows: int
    columns: tuple[FieldSpec, ...]

    @property
    def labels(self) -> tuple[str, ...]:
        return (self.title, *self.synonyms)


@dataclass(frozen=True)
class FormSchema:
    """A loaded, checked form schema."""

    id: str
    name: str
    min_labels: int
    instructions: tuple[str, ...]
    kind: KindSpec
    sections: tuple[Section, ...]
    users: UsersSpec
    source: str = ""
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def kinds(self) -> tuple[str, ...]:
        """The values the request-kind checkboxes can take (matched against a pack's form_kinds)."""
        return tuple(o.value for o in self.kind.options)

    @property
    def fields(self) -> tuple[FieldSpec, ...]:
        """Every single-value field, in form order."""
        return tuple(f for s in self.sections for f in s.fields)

    def option(self, value: str) -> KindOption | None:
        return next((o for o in self.kind.options if o.value == value), None)


# --- loading -------------------------------------------------------------------------------------


def load_form_schema(path: str | Path) -> FormSchema:
    """Load and check the form schema in ``path`` (a form.toml)."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except OSError as exc:
        raise FormSchemaError(f"{path}: cannot read ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise FormSchemaError(f"{path}: not valid TOML ({exc})") from None
    return form_schema_from_dict(data, str(path))


def _get(data: dict[str, Any], key: str, kind: type, where: str, default: Any = ...) -> Any:
    if key not in data:
        if default is ...:
            raise FormSchemaError(f"{where}: {key}: missing")
        return default
    value = data[key]
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise FormSchemaError(f"{where}: {key}: expected {kind.__name__}")
    return value


def _strings(data: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = _get(data, key, list, where, [])
    if not all(isinstance(v, str) and v.strip() for v in value):
        raise FormSchemaError(f"{where}: {key}: expected a list of non-empty strings")
    return tuple(value)


def _field(data: Any, where: str, lists: dict[str, list[str]], kinds: set[str]) -> FieldSpec:
    if not isinstance(data, dict):
        raise FormSchemaError(f"{where}: expected a table")
    unknown = set(data) - _FIELD_KEYS
    if unknown:
        raise FormSchemaError(f"{where}: {sorted(unknown)[0]}: unknown key")
    fid = _get(data, "id", str, where)
    if not _ID.match(fid):
        raise FormSchemaError(f"{where}: id: must be lower-case letters, digits and _")
    where = f"{where} ({fid})"
    ftype = _get(data, "type", str, where)
    if ftype not in FIELD_TYPES:
        raise FormSchemaError(f"{where}: type: {ftype!r} is not one of {', '.join(sorted(FIELD_TYPES))}")
    req = data.get("required", False)
    required_kinds: tuple[str, ...] = ()
    if isinstance(req, list):
        if not req or not all(isinstance(k, str) and k in kinds for k in req):
            raise FormSchemaError(f"{where}: required: list must name request kinds ({', '.join(sorted(kinds))})")
        required, required_kinds = True, tuple(req)
    elif isinstance(req, bool):
        required = req
    else:
        raise FormSchemaError(f"{where}: required: expected true, false or a list of request kinds")
    values: tuple[str, ...] = ()
    if "values" in data:
        raw = data["values"]
        if isinstance(raw, str):
            if raw not in lists:
                raise FormSchemaError(f"{where}: values: no list {raw!r} under [lists]")
            values = tuple(lists[raw])
        else:
            values = _strings(data, "values", where)
    if ftype == "choice" and not values:
        raise FormSchemaError(f"{where}: values: a choice field needs allowed values")
    return FieldSpec(
        id=fid,
        label=_get(data, "label", str, where),
        type=ftype,
        synonyms=_strings(data, "synonyms", where),
        required=required,
        required_kinds=required_kinds,
        values=values,
        suffixes=_strings(data, "suffixes", where),
        not_before=_get(data, "not_before", str, where, ""),
        hint=_get(data, "hint", str, where, ""),
    )


def form_schema_from_dict(data: dict[str, Any], source: str = "form.toml") -> FormSchema:
    """Build and check a schema from parsed TOML (``source`` names the file in errors)."""
    where = source
    lists_raw = _get(data, "lists", dict, where, {})
    lists: dict[str, list[str]] = {}
    for name, values in lists_raw.items():
        if not isinstance(values, list) or not values or not all(isinstance(v, str) and v for v in values):
            raise FormSchemaError(f"{where}: lists.{name}: expected a non-empty list of strings")
        lists[name] = values

    kind_raw = _get(data, "kind", dict, where)
    kwhere = f"{where}: kind"
    options = []
    for i, opt in enumerate(_get(kind_raw, "options", list, kwhere)):
        owhere = f"{kwhere}.options[{i}]"
        if not isinstance(opt, dict):
            raise FormSchemaError(f"{owhere}: expected a table")
        value = _get(opt, "value", str, owhere)
        if not _ID.match(value):
            raise FormSchemaError(f"{owhere}: value: must be lower-case letters, digits and _")
        options.append(
            KindOption(
                value=value,
                label=_get(opt, "label", str, owhere),
                synonyms=_strings(opt, "synonyms", owhere),
                name=_get(opt, "name", str, owhere),
            )
        )
    if len(options) < 1 or len({o.value for o in options}) != len(options):
        raise FormSchemaError(f"{kwhere}: options: need at least one, with unique values")
    kinds = {o.value for o in options}
    kind = KindSpec(
        id=_get(kind_raw, "id", str, kwhere),
        label=_get(kind_raw, "label", str, kwhere),
        synonyms=_strings(kind_raw, "synonyms", kwhere),
        required=_get(kind_raw, "required", bool, kwhere, True),
        options=tuple(options),
    )

    sections = []
    for i, sec in enumerate(_get(data, "sections", list, where)):
        swhere = f"{where}: sections[{i}]"
        if not isinstance(sec, dict):
            raise FormSchemaError(f"{swhere}: expected a table")
        fields = tuple(
            _field(f, f"{swhere}.fields[{j}]", lists, kinds) for j, f in enumerate(_get(sec, "fields", list, swhere))
        )
        sections.append(
            Section(
                id=_get(sec, "id", str, swhere),
                title=_get(sec, "title", str, swhere),
                synonyms=_strings(sec, "synonyms", swhere),
                fields=fields,
            )
        )

    users_raw = _get(data, "users", dict, where)
    uwhere = f"{where}: users"
    columns = tuple(
        _field(c, f"{uwhere}.columns[{j}]", lists, kinds)
        for j, c in enumerate(_get(users_raw, "columns", list, uwhere))
    )
    if not columns:
        raise FormSchemaError(f"{uwhere}: columns: at least one is needed")
    users = UsersSpec(
        title=_get(users_raw, "title", str, uwhere),
        synonyms=_strings(users_raw, "synonyms", uwhere),
        blank_rows=_get(users_raw, "blank_rows", int, uwhere, 8),
        columns=columns,
    )

    all_ids = [kind.id] + [f.id for s in sections for f in s.fields] + [c.id for c in columns]
    dupes = sorted({i for i in all_ids if all_ids.count(i) > 1})
    if dupes:
        raise FormSchemaError(f"{where}: id: {dupes[0]!r} is used twice")
    col_types = {c.id: c.type for c in columns}
    for j, col in enumerate(columns):
        if col.id in RESERVED_COLUMN_IDS:
            raise FormSchemaError(f"{uwhere}.columns[{j}]: id: {col.id!r} is reserved")
        if col.not_before and col_types.get(col.not_before) != "date":
            raise FormSchemaError(f"{uwhere}.columns[{j}]: not_before: {col.not_before!r} is not a date column")
    for s in sections:
        for f in s.fields:
            if f.not_before:
                raise FormSchemaError(f"{where}: sections ({s.id}.{f.id}): not_before: only for user columns")

    return FormSchema(
        id=_get(data, "id", str, where),
        name=_get(data, "name", str, where),
        min_labels=_get(data, "min_labels", int, where, 3),
        instructions=_strings(data, "instructions", where),
        kind=kind,
        sections=tuple(sections),
        users=users,
        source=source,
        raw=data,
    )


# --- validation ----------------------------------------------------------------------------------

_EMAIL = re.compile(r"^[^@\s<>()\[\],;:\"]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)+$")
_PHONE = re.compile(r"^\+?[\d\s\-()/.]+$")

PROBLEMS = {
    "email": "ange en e-postadress i formen namn@exempel.se",
    "phone": "ange ett telefonnummer med siffror, till exempel 035-13 10 00",
    "date": "ange ett datum i formen ÅÅÅÅ-MM-DD",
    "personnummer_or_hsa": (
        "ange ett giltigt personnummer eller samordningsnummer (ÅÅÅÅMMDD-NNNN, kontrollera datum och "
        "kontrollsiffra) eller ett HSA-id"
    ),
    "hsa_id": "ange ett HSA-id i formen SE följt av tio siffror, bindestreck och löpnummer",
    "choice": "välj ett av: {values}",
    "text": "fältet kan inte läsas som text",
}
KIND_MANY = "kryssa bara i ett alternativ"
DATE_ORDER = "datumet ligger före \"{other}\""


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _norm(text: str) -> str:
    return " ".join(text.replace("\u00a0", " ").split()).casefold()


def match_choice(spec: FieldSpec, value: str) -> str | None:
    """The allowed value ``value`` stands for (any case, spacing, allowed suffixes), or None."""
    wanted = _norm(value)
    for allowed in spec.values:
        a = _norm(allowed)
        if wanted == a or any(wanted == _norm(allowed + sfx) for sfx in spec.suffixes):
            return allowed
    return None


def check_value(spec: FieldSpec, value: object, today: date) -> str | None:
    """The Swedish problem with a non-blank ``value`` for ``spec``, or None when it is fine."""
    if spec.type == "date":
        return None if isinstance(value, date) else PROBLEMS["date"]
    text = value.isoformat() if isinstance(value, date) else str(value)
    text = text.strip()
    ok: bool
    if spec.type == "text":
        ok = True
    elif spec.type == "email":
        ok = bool(_EMAIL.match(text))
    elif spec.type == "phone":
        ok = bool(_PHONE.match(text)) and 6 <= sum(ch.isdigit() for ch in text) <= 15
    elif spec.type == "personnummer_or_hsa":
        ok = is_hsa_id(text) or parse_identity_number(text, today) is not None
    elif spec.type == "hsa_id":
        ok = is_hsa_id(text)
    elif spec.type == "choice":
        if match_choice(spec, text) is None:
            return PROBLEMS["choice"].format(values=", ".join(spec.values))
        return None
    else:  # pragma: no cover - the loader only admits FIELD_TYPES
        ok = False
    return None if ok else PROBLEMS[spec.type]


def _where(row: int | None) -> str:
    return f" på rad {row}" if row is not None else ""


def _detail(kind: str, fid: str, row: int | None = None, check: str = "") -> str:
    parts = [kind, f"field={fid}"]
    if row is not None:
        parts.append(f"row={row}")
    if check:
        parts.append(f"check={check}")
    return " ".join(parts)


def validate_form(
    form: ParsedForm,
    schema: FormSchema,
    *,
    form_kinds: list[str],
    request_type_label: str,
    today: date,
) -> list[Reason]:
    """Every problem with ``form`` as one reason each, in form order.

    ``form_kinds`` are the request kinds the mail's subject allows (from the pack's request type);
    ``request_type_label`` is how that request type reads in a sentence. Reasons name the field
    label and the user row, never the value.
    """
    reasons: list[Reason] = []
    checked = [k for k in getattr(form, "kinds_checked", []) or ([form.kind] if form.kind else [])]
    kind_label = schema.kind.label
    if len(checked) > 1:
        reasons.append(reason("form.invalid_field", _detail("kind", schema.kind.id, check="many"),
                              field=kind_label, where="", problem=KIND_MANY))
    elif not checked:
        if schema.kind.required:
            reasons.append(reason("form.missing_field", _detail("kind", schema.kind.id), field=kind_label, where=""))
    elif form_kinds and checked[0] not in form_kinds:
        option = schema.option(checked[0])
        reasons.append(reason(
            "form.type_mismatch", f"form kind={checked[0]} subject kinds={','.join(form_kinds)}",
            form_kind=option.name if option else checked[0], subject_kind=request_type_label,
        ))
    # Required-ness follows the form's own kind when it has exactly one; otherwise the subject's.
    kinds = checked if len(checked) == 1 else list(form_kinds)

    for spec in schema.fields:
        value = form.fields.get(spec.id)
        if _blank(value):
            if spec.is_required(kinds):
                reasons.append(reason("form.missing_field", _detail("field", spec.id), field=spec.label, where=""))
            continue
        problem = check_value(spec, value, today)
        if problem:
            reasons.append(reason("form.invalid_field", _detail("field", spec.id, check=spec.type),
                                  field=spec.label, where="", problem=problem))

    if not form.users:
        reasons.append(reason("form.no_users", "users=0"))
    by_id = {c.id: c for c in schema.users.columns}
    for position, user in enumerate(form.users, start=1):
        row = user.get("row") if isinstance(user.get("row"), int) else position
        for spec in schema.users.columns:
            value = user.get(spec.id)
            if _blank(value):
                if spec.is_required(kinds):
                    reasons.append(reason("form.missing_field", _detail("user", spec.id, row),
                                          field=spec.label, where=_where(row)))
                continue
            problem = check_value(spec, value, today)
            if problem is None and spec.not_before and isinstance(value, date):
                other = user.get(spec.not_before)
                if isinstance(other, date) and value < other:
                    problem = DATE_ORDER.format(other=by_id[spec.not_before].label)
                    reasons.append(reason("form.invalid_field", _detail("user", spec.id, row, "date_order"),
                                          field=spec.label, where=_where(row), problem=problem))
                continue
            if problem:
                reasons.append(reason("form.invalid_field", _detail("user", spec.id, row, spec.type),
                                      field=spec.label, where=_where(row), problem=problem))
    return reasons
