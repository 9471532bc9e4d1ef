"""The form schema a routine pack declares (form.toml): dataclasses, the loader and the field types.

A leaf module (standard library only) below both the parsers and the rules: the blank-form
generator, the parsers and the validator all read the same :class:`FormSchema`, so a form and its
parser cannot drift apart. Everything is data; there are no expression strings. A schema that
misuses the format is a :class:`FormSchemaError` whose one-line message names the file and the key;
unknown keys, field types, list names and field ids are refused when the schema loads.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from parsers.errors import IntakeError


class FormSchemaError(IntakeError, ValueError):
    """A form.toml is missing, malformed or inconsistent; the message names the file and key."""


# --- field types -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldType:
    """A field type, registered by name: how its value is read and which extra keys it takes.

    ``value``: ``text`` (stripped text), ``date`` (a date when readable), ``choice`` (one of
    ``values``), ``multi`` (a list of ``values``), ``action`` (an option value, per table row),
    ``flag`` (yes or no: True/False from Ja/Nej or a ticked/empty box), ``kind`` (the request-kind
    checkbox group, only as ``[kind]``).
    ``fill_hint`` is printed on blank forms beside columns of this type.
    """

    name: str
    value: str
    keys: frozenset[str] = frozenset()
    in_sections: bool = True
    in_table: bool = True
    fill_hint: str = ""


FIELD_TYPES: dict[str, FieldType] = {}


def register_field_type(ftype: FieldType) -> FieldType:
    """Add a field type to the registry (the validator registers a check under the same name)."""
    FIELD_TYPES[ftype.name] = ftype
    return ftype


_DATE_KEYS = frozenset({"not_before", "not_in_past", "max_days_ahead"})
for _t in (
    FieldType("text", "text"),
    FieldType("email", "text"),
    FieldType("phone", "text"),
    FieldType("date", "date", _DATE_KEYS, fill_hint="ÅÅÅÅ-MM-DD"),
    FieldType("personnummer_or_hsa", "text", fill_hint="ÅÅÅÅMMDD-NNNN eller HSA-id"),
    FieldType("hsa_id", "text"),
    FieldType("yes_no", "flag", fill_hint="Ja eller Nej"),
    FieldType("choice", "choice", frozenset({"values", "suffixes", "depends_on"})),
    FieldType("multi_choice", "multi", frozenset({"values", "depends_on", "min_values", "max_values", "layout"})),
    FieldType("action", "action", frozenset({"options", "default"}), in_sections=False),
    # The request kind ([kind]): a group of checkboxes, its own table, never a section field or column.
    FieldType("checkbox_group", "kind", in_sections=False, in_table=False),
):
    register_field_type(_t)
KIND_TYPES = tuple(name for name, t in FIELD_TYPES.items() if t.value == "kind")

# Every key the loader accepts, as a dotted path (documented in the README; tests/test_docs.py checks).
_FIELD_KEYS = ("id", "label", "synonyms", "type", "required", "hint", "party_key", "values", "suffixes",
               "depends_on", "not_before", "not_in_past", "max_days_ahead", "min_values", "max_values", "layout",
               "options", "default")
_TOP_KEYS = ("id", "name", "min_labels", "instructions", "lists", "kind", "sections", "users", "rules")
_KIND_KEYS = ("id", "label", "synonyms", "type", "required", "options")
_OPTION_KEYS = ("value", "label", "synonyms", "name")
_ACTION_OPTION_KEYS = ("value", "label", "synonyms")
_SECTION_KEYS = ("id", "title", "synonyms", "party", "fields")
_USERS_KEYS = ("title", "synonyms", "blank_rows", "min_rows", "max_rows", "columns")
_RULE_KEYS = ("kind", "field", "fields", "value", "count", "when", "unless", "message")
_CONDITION_KEYS = ("field", "equals", "one_of")
FORM_KEYS: tuple[str, ...] = (
    *_TOP_KEYS,
    *(f"kind.{k}" for k in _KIND_KEYS),
    *(f"kind.options.{k}" for k in _OPTION_KEYS),
    *(f"sections.{k}" for k in _SECTION_KEYS),
    *(f"sections.fields.{k}" for k in _FIELD_KEYS if k not in ("options", "default")),
    *(f"users.{k}" for k in _USERS_KEYS),
    *(f"users.columns.{k}" for k in _FIELD_KEYS if k != "party_key"),
    *(f"users.columns.options.{k}" for k in _ACTION_OPTION_KEYS),
    *(f"rules.{k}" for k in _RULE_KEYS),
    *(f"rules.when.{k}" for k in _CONDITION_KEYS),
    *(f"rules.unless.{k}" for k in _CONDITION_KEYS),
)
RULE_KINDS = ("forbid_value", "requires", "at_most", "at_least")
LAYOUTS = ("cell", "checkboxes")
YES_NO = {"ja": True, "nej": False}  # how a rule condition names the two answers of a yes_no field
RESERVED_COLUMN_IDS = {"row"}  # ParsedForm user rows carry their table row number under "row"
_ID = re.compile(r"^[a-z][a-z0-9_]*$")


# --- text normalisation (shared by the parsers and the validator) -----------------------------------

_DASHES = dict.fromkeys(map(ord, "\u2010\u2011\u2012\u2013\u2014\u2212"), "-")
_ODD = re.compile("[\u00a0\u2010\u2011\u2012\u2013\u2014\u2212]")  # what squash replaces before splitting
_TRAILING_HINT = re.compile(r"\s*\([^()]*\)\s*$")
_FOLD = str.maketrans("åäàáâöòóôüéèêëíï", "aaaaaoooouee" + "eeii")


def squash(text: str) -> str:
    """Casefolded text with one space between words and one kind of dash."""
    if not text.isascii() and _ODD.search(text) is not None:  # (translating a text costs more than looking)
        text = text.replace("\u00a0", " ").translate(_DASHES)
    return " ".join(text.split()).casefold()


def label_key(text: str) -> str:
    """How a label compares: squashed, without a trailing colon, asterisk or "(hint)"."""
    s = squash(text)
    for _ in range(3):
        s = _TRAILING_HINT.sub("", s).rstrip(" :*").strip()
    return re.sub(r"\s*/\s*", "/", s)


def fold(text: str) -> str:
    """How a listed value compares: squashed, and å/ä/ö (and accents) written without their marks."""
    return squash(text).translate(_FOLD)


# --- the schema ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ActionOption:
    """One value of a per-row action column: ``add`` or ``remove`` and how the form spells it."""

    value: str
    label: str
    synonyms: tuple[str, ...] = ()

    @property
    def labels(self) -> tuple[str, ...]:
        return (self.label, *self.synonyms)


@dataclass(frozen=True)
class FieldSpec:
    """One field of the form (a single value in a section, or a column of the persons table)."""

    id: str
    label: str
    type: str
    synonyms: tuple[str, ...] = ()
    required: bool = False
    required_kinds: tuple[str, ...] = ()  # empty with required=True: every kind
    values: tuple[str, ...] = ()  # every allowed value (for a dependent list: all of them)
    values_by: tuple[tuple[str, tuple[str, ...]], ...] = ()  # dependent list: parent value -> values
    suffixes: tuple[str, ...] = ()
    depends_on: str = ""
    not_before: str = ""
    not_in_past: bool = False
    max_days_ahead: int | None = None
    min_values: int = 0
    max_values: int | None = None
    layout: str = "cell"
    options: tuple[ActionOption, ...] = ()
    default: str = ""
    hint: str = ""
    party_key: str = ""

    @property
    def labels(self) -> tuple[str, ...]:
        return (self.label, *self.synonyms)

    @property
    def ftype(self) -> FieldType:
        return FIELD_TYPES[self.type]

    @property
    def multi(self) -> bool:
        return self.ftype.value == "multi"

    def is_required(self, kinds: list[str] | tuple[str, ...]) -> bool:
        """Required for the form's kind(s); with several possible kinds, only when all need it."""
        if not self.required:
            return False
        if not self.required_kinds:
            return True
        return bool(kinds) and all(k in self.required_kinds for k in kinds)

    def allowed(self, parent: str | None = None) -> tuple[str, ...]:
        """The allowed values; for a dependent list, those for the parent field's (canonical) value."""
        if self.values_by and parent is not None:
            return dict(self.values_by).get(parent, ())
        return self.values

    def match(self, text: str, parent: str | None = None) -> str | None:
        """The canonical value ``text`` stands for (case, spacing, missing å/ä/ö tolerated), or None."""
        wanted = fold(text)
        for value in self.allowed(parent):
            if fold(value) == wanted:
                return value
        return None

    def display(self, value: object) -> str:
        """How a stored value reads for staff: lists joined with commas, an action by its label,
        yes/no as Ja/Nej, dates as ISO text (a value from ``ParsedForm.to_dict()`` or a parser)."""
        if value is None:
            return ""
        if isinstance(value, list):
            return ", ".join(self.display(v) for v in value)
        if isinstance(value, bool):
            return next(k.capitalize() for k, v in YES_NO.items() if v is value)
        if self.type == "action":
            return next((o.label for o in self.options if o.value == value), str(value))
        return value.isoformat() if hasattr(value, "isoformat") else str(value)

    def action(self, text: str) -> str | None:
        """The action option value ``text`` stands for (label or synonym), or None."""
        wanted = fold(text)
        for option in self.options:
            if wanted in {fold(lab) for lab in option.labels} or wanted == fold(option.value):
                return option.value
        return None


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
        return (self.label, *self.synonyms) if self.label else ()


@dataclass(frozen=True)
class Section:
    id: str
    title: str
    synonyms: tuple[str, ...]
    fields: tuple[FieldSpec, ...]
    party: str = ""  # a named party (orderer, attestant) whose fields may become a mail recipient

    @property
    def labels(self) -> tuple[str, ...]:
        return (self.title, *self.synonyms)


@dataclass(frozen=True)
class UsersSpec:
    """The table of persons: one row each, found by its header row."""

    title: str
    synonyms: tuple[str, ...]
    blank_rows: int
    columns: tuple[FieldSpec, ...]
    min_rows: int = 1
    max_rows: int | None = None

    @property
    def labels(self) -> tuple[str, ...]:
        return (self.title, *self.synonyms)

    @property
    def action(self) -> FieldSpec | None:
        return next((c for c in self.columns if c.type == "action"), None)


@dataclass(frozen=True)
class Condition:
    """Holds when ``field`` has one of ``values`` (``equals = "x"`` or ``one_of = ["x", "y"]``; a list
    field holds when it contains one of them; the request kind is the field named like ``[kind].id``)."""

    field: str
    values: tuple[str, ...]

    @property
    def equals(self) -> str:
        return self.values[0]


@dataclass(frozen=True)
class Rule:
    """A cross-field rule, one of :data:`RULE_KINDS`, with its Swedish message.

    ``forbid_value``: ``field`` may not hold ``value`` (unless ``unless`` holds / only when ``when``
    holds). ``requires``: ``field`` is required when ``when`` holds. ``at_most`` / ``at_least``: the
    number of values filled in ``fields`` (a list counts each value) is at most / at least ``count``.
    Rules naming a table column are checked per row.
    """

    kind: str
    message: str
    field: str = ""
    fields: tuple[str, ...] = ()
    value: str = ""
    count: int = 0
    when: Condition | None = None
    unless: Condition | None = None

    @property
    def names(self) -> tuple[str, ...]:
        """Every field id the rule reads."""
        out = [*([self.field] if self.field else []), *self.fields]
        out += [c.field for c in (self.when, self.unless) if c is not None]
        return tuple(out)


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
    rules: tuple[Rule, ...] = ()
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

    @property
    def parties(self) -> tuple[str, ...]:
        return tuple(s.party for s in self.sections if s.party)

    def option(self, value: str) -> KindOption | None:
        return next((o for o in self.kind.options if o.value == value), None)

    def spec(self, field_id: str) -> FieldSpec | None:
        """The section field or table column with this id."""
        return next((f for f in (*self.fields, *self.users.columns) if f.id == field_id), None)

    def is_column(self, field_id: str) -> bool:
        return any(c.id == field_id for c in self.users.columns)


# --- loading -------------------------------------------------------------------------------------------


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


def _table(data: Any, where: str, keys: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise FormSchemaError(f"{where}: expected a table")
    unknown = set(data) - set(keys)
    if unknown:
        raise FormSchemaError(f"{where}: {sorted(unknown)[0]}: unknown key")
    return data


def _strings(data: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = _get(data, key, list, where, [])
    if not all(isinstance(v, str) and v.strip() for v in value):
        raise FormSchemaError(f"{where}: {key}: expected a list of non-empty strings")
    return tuple(value)


def _count(data: dict[str, Any], key: str, where: str, default: int | None, least: int = 0) -> int | None:
    value = _get(data, key, int, where, default)
    if value is not None and value < least:
        raise FormSchemaError(f"{where}: {key}: must be at least {least}")
    return value


_Lists = dict[str, tuple[str, ...] | dict[str, tuple[str, ...]]]


def _lists(data: dict[str, Any], where: str) -> _Lists:
    lists: _Lists = {}
    for name, values in _get(data, "lists", dict, where, {}).items():
        here = f"{where}: lists.{name}"
        if isinstance(values, dict):  # a dependent list: parent value -> values
            by: dict[str, tuple[str, ...]] = {}
            for parent, sub in values.items():
                if not isinstance(sub, list) or not sub or not all(isinstance(v, str) and v for v in sub):
                    raise FormSchemaError(f"{here}.{parent}: expected a non-empty list of strings")
                by[parent] = tuple(sub)
            if not by:
                raise FormSchemaError(f"{here}: expected at least one parent value")
            lists[name] = by
        elif isinstance(values, list) and values and all(isinstance(v, str) and v for v in values):
            lists[name] = tuple(values)
        else:
            raise FormSchemaError(f"{here}: expected a non-empty list of strings, or a table of lists")
    return lists


def _field(data: Any, where: str, lists: _Lists, kinds: set[str], in_table: bool) -> FieldSpec:
    data = _table(data, where, _FIELD_KEYS)
    fid = _get(data, "id", str, where)
    if not _ID.match(fid):
        raise FormSchemaError(f"{where}: id: must be lower-case letters, digits and _")
    where = f"{where} ({fid})"
    ftype = _get(data, "type", str, where)
    if ftype not in FIELD_TYPES:
        raise FormSchemaError(f"{where}: type: {ftype!r} is not one of {', '.join(sorted(FIELD_TYPES))}")
    ft = FIELD_TYPES[ftype]
    if in_table and not ft.in_table or not in_table and not ft.in_sections:
        place = "in the table" if in_table else "in a section"
        raise FormSchemaError(f"{where}: type: {ftype!r} is not allowed {place}")
    own_keys = {"values", "suffixes", "depends_on", "not_before", "not_in_past", "max_days_ahead", "min_values",
                "max_values", "layout", "options", "default"}
    misplaced = sorted(set(data) & own_keys - ft.keys)
    if misplaced:
        raise FormSchemaError(f"{where}: {misplaced[0]}: not a key of type {ftype!r}")
    if "party_key" in data and in_table:
        raise FormSchemaError(f"{where}: party_key: only for fields of a party section")
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
    values_by: tuple[tuple[str, tuple[str, ...]], ...] = ()
    if "values" in data:
        raw = data["values"]
        if isinstance(raw, str):
            if raw not in lists:
                raise FormSchemaError(f"{where}: values: no list {raw!r} under [lists]")
            found = lists[raw]
            if isinstance(found, dict):
                if "depends_on" not in data:
                    raise FormSchemaError(f"{where}: values: list {raw!r} depends on a field; name it in depends_on")
                values_by = tuple(found.items())
                values = tuple(dict.fromkeys(v for sub in found.values() for v in sub))
            else:
                values = found
        else:
            values = _strings(data, "values", where)
    if ft.value in ("choice", "multi") and not values:
        raise FormSchemaError(f"{where}: values: a {ftype} field needs allowed values")
    if "depends_on" in data and not values_by:
        raise FormSchemaError(f"{where}: depends_on: values must name a table of lists under [lists]")

    options: list[ActionOption] = []
    for i, opt in enumerate(_get(data, "options", list, where, [])):
        owhere = f"{where}: options[{i}]"
        opt = _table(opt, owhere, _ACTION_OPTION_KEYS)
        value = _get(opt, "value", str, owhere)
        if not _ID.match(value):
            raise FormSchemaError(f"{owhere}: value: must be lower-case letters, digits and _")
        options.append(ActionOption(value, _get(opt, "label", str, owhere), _strings(opt, "synonyms", owhere)))
    if ft.value == "action" and (not options or len({o.value for o in options}) != len(options)):
        raise FormSchemaError(f"{where}: options: an action column needs options with unique values")
    default = _get(data, "default", str, where, "")
    if default and default not in {o.value for o in options}:
        raise FormSchemaError(f"{where}: default: {default!r} is not one of the options")
    layout = _get(data, "layout", str, where, "cell")
    if layout not in LAYOUTS:
        raise FormSchemaError(f"{where}: layout: {layout!r} is not one of {', '.join(LAYOUTS)}")
    if layout == "checkboxes" and not in_table:
        raise FormSchemaError(f"{where}: layout: checkbox columns are only for table columns")
    min_values = _count(data, "min_values", where, 0)
    max_values = _count(data, "max_values", where, None, least=1)
    if max_values is not None and min_values is not None and max_values < min_values:
        raise FormSchemaError(f"{where}: max_values: less than min_values")
    party_key = _get(data, "party_key", str, where, "")
    if party_key and not _ID.match(party_key):
        raise FormSchemaError(f"{where}: party_key: must be lower-case letters, digits and _")
    return FieldSpec(
        id=fid,
        label=_get(data, "label", str, where),
        type=ftype,
        synonyms=_strings(data, "synonyms", where),
        required=required or bool(min_values),
        required_kinds=required_kinds,
        values=values,
        values_by=values_by,
        suffixes=_strings(data, "suffixes", where),
        depends_on=_get(data, "depends_on", str, where, ""),
        not_before=_get(data, "not_before", str, where, ""),
        not_in_past=_get(data, "not_in_past", bool, where, False),
        max_days_ahead=_count(data, "max_days_ahead", where, None),
        min_values=min_values or 0,
        max_values=max_values,
        layout=layout,
        options=tuple(options),
        default=default,
        hint=_get(data, "hint", str, where, ""),
        party_key=party_key,
    )


def _kind(data: dict[str, Any], where: str) -> KindSpec:
    if "kind" not in data:  # a form without request-kind checkboxes: the subject alone says the kind
        return KindSpec(id="kind", label="", synonyms=(), required=False, options=())
    kwhere = f"{where}: kind"
    kind_raw = _table(data["kind"], kwhere, _KIND_KEYS)
    if _get(kind_raw, "type", str, kwhere, KIND_TYPES[0]) not in KIND_TYPES:
        raise FormSchemaError(f"{kwhere}: type: must be {' or '.join(KIND_TYPES)}")
    options = []
    for i, opt in enumerate(_get(kind_raw, "options", list, kwhere)):
        owhere = f"{kwhere}.options[{i}]"
        opt = _table(opt, owhere, _OPTION_KEYS)
        value = _get(opt, "value", str, owhere)
        if not _ID.match(value):
            raise FormSchemaError(f"{owhere}: value: must be lower-case letters, digits and _")
        options.append(KindOption(value=value, label=_get(opt, "label", str, owhere),
                                  synonyms=_strings(opt, "synonyms", owhere), name=_get(opt, "name", str, owhere)))
    if len(options) < 1 or len({o.value for o in options}) != len(options):
        raise FormSchemaError(f"{kwhere}: options: need at least one, with unique values")
    return KindSpec(id=_get(kind_raw, "id", str, kwhere), label=_get(kind_raw, "label", str, kwhere),
                    synonyms=_strings(kind_raw, "synonyms", kwhere), required=_get(kind_raw, "required", bool,
                                                                                     kwhere, True),
                    options=tuple(options))


def _condition(data: dict[str, Any], key: str, where: str) -> Condition | None:
    if key not in data:
        return None
    here = f"{where}.{key}"
    raw = _table(data[key], here, _CONDITION_KEYS)
    if ("equals" in raw) == ("one_of" in raw):
        raise FormSchemaError(f"{here}: equals: give either equals or one_of")
    values = (_get(raw, "equals", str, here),) if "equals" in raw else _strings(raw, "one_of", here)
    if not values:
        raise FormSchemaError(f"{here}: one_of: name at least one value")
    return Condition(field=_get(raw, "field", str, here), values=values)


def _rule(data: Any, where: str) -> Rule:
    data = _table(data, where, _RULE_KEYS)
    kind = _get(data, "kind", str, where)
    if kind not in RULE_KINDS:
        raise FormSchemaError(f"{where}: kind: {kind!r} is not one of {', '.join(RULE_KINDS)}")
    message = _get(data, "message", str, where)
    if not message.strip():
        raise FormSchemaError(f"{where}: message: must not be empty")
    needs = {"forbid_value": ("field", "value"), "requires": ("field", "when"), "at_most": ("fields", "count"),
             "at_least": ("fields", "count")}[kind]
    allowed = set(needs) | {"kind", "message", "when", "unless"}
    for key in needs:
        if key not in data:
            raise FormSchemaError(f"{where}: {key}: missing (a {kind} rule needs {' and '.join(needs)})")
    misplaced = sorted(set(data) - allowed)
    if misplaced:
        raise FormSchemaError(f"{where}: {misplaced[0]}: not a key of a {kind} rule")
    fields = _strings(data, "fields", where)
    if "fields" in data and not fields:
        raise FormSchemaError(f"{where}: fields: name at least one field")
    return Rule(kind=kind, message=message, field=_get(data, "field", str, where, ""), fields=fields,
                value=_get(data, "value", str, where, ""), count=_count(data, "count", where, 0) or 0,
                when=_condition(data, "when", where), unless=_condition(data, "unless", where))


def form_schema_from_dict(data: dict[str, Any], source: str = "form.toml") -> FormSchema:
    """Build and check a schema from parsed TOML (``source`` names the file in errors)."""
    where = source
    _table(data, where, _TOP_KEYS)
    lists = _lists(data, where)
    kind = _kind(data, where)
    kinds = {o.value for o in kind.options}

    sections = []
    for i, sec in enumerate(_get(data, "sections", list, where)):
        swhere = f"{where}: sections[{i}]"
        sec = _table(sec, swhere, _SECTION_KEYS)
        fields = tuple(_field(f, f"{swhere}.fields[{j}]", lists, kinds, in_table=False)
                       for j, f in enumerate(_get(sec, "fields", list, swhere)))
        party = _get(sec, "party", str, swhere, "")
        if party and not _ID.match(party):
            raise FormSchemaError(f"{swhere}: party: must be lower-case letters, digits and _")
        for f in fields:
            if f.party_key and not party:
                raise FormSchemaError(f"{swhere}.fields ({f.id}): party_key: the section names no party")
        sections.append(Section(id=_get(sec, "id", str, swhere), title=_get(sec, "title", str, swhere),
                                synonyms=_strings(sec, "synonyms", swhere), fields=fields, party=party))
    parties = [s.party for s in sections if s.party]
    if len(set(parties)) != len(parties):
        raise FormSchemaError(f"{where}: sections: party: a party is named twice")

    uwhere = f"{where}: users"
    users_raw = _table(_get(data, "users", dict, where), uwhere, _USERS_KEYS)
    columns = tuple(_field(c, f"{uwhere}.columns[{j}]", lists, kinds, in_table=True)
                    for j, c in enumerate(_get(users_raw, "columns", list, uwhere)))
    if not columns:
        raise FormSchemaError(f"{uwhere}: columns: at least one is needed")
    if sum(c.type == "action" for c in columns) > 1:
        raise FormSchemaError(f"{uwhere}: columns: at most one action column")
    min_rows = _count(users_raw, "min_rows", uwhere, 1)
    max_rows = _count(users_raw, "max_rows", uwhere, None, least=1)
    if max_rows is not None and max_rows < (min_rows or 0):
        raise FormSchemaError(f"{uwhere}: max_rows: less than min_rows")
    users = UsersSpec(title=_get(users_raw, "title", str, uwhere), synonyms=_strings(users_raw, "synonyms", uwhere),
                      blank_rows=_count(users_raw, "blank_rows", uwhere, 8) or 0, columns=columns,
                      min_rows=min_rows or 0, max_rows=max_rows)

    all_ids = [kind.id] + [f.id for s in sections for f in s.fields] + [c.id for c in columns]
    dupes = sorted({i for i in all_ids if all_ids.count(i) > 1})
    if dupes:
        raise FormSchemaError(f"{where}: id: {dupes[0]!r} is used twice")
    scalars = {f.id: f for s in sections for f in s.fields}
    cols = {c.id: c for c in columns}
    for j, col in enumerate(columns):
        if col.id in RESERVED_COLUMN_IDS:
            raise FormSchemaError(f"{uwhere}.columns[{j}]: id: {col.id!r} is reserved")
    _check_references(where, sections, scalars, cols)
    _check_checkbox_labels(uwhere, columns)

    rules = tuple(_rule(r, f"{where}: rules[{i}]") for i, r in enumerate(_get(data, "rules", list, where, [])))
    known = {**scalars, **cols}
    for i, rule in enumerate(rules):
        _check_rule(f"{where}: rules[{i}]", rule, known, kind)

    return FormSchema(
        id=_get(data, "id", str, where),
        name=_get(data, "name", str, where),
        min_labels=_get(data, "min_labels", int, where, 3),
        instructions=_strings(data, "instructions", where),
        kind=kind,
        sections=tuple(sections),
        users=users,
        rules=rules,
        source=source,
        raw=data,
    )


def _check_references(where: str, sections: list[Section], scalars: dict[str, FieldSpec],
                      cols: dict[str, FieldSpec]) -> None:
    """not_before and depends_on name a field of the same scope, of the right type."""
    for scope, here in ((scalars, f"{where}: sections"), (cols, f"{where}: users.columns")):
        for f in scope.values():
            if f.not_before and (f.not_before not in scope or scope[f.not_before].type != "date"):
                raise FormSchemaError(f"{here} ({f.id}): not_before: {f.not_before!r} is not a date field "
                                      f"{'in the same row' if scope is cols else 'of the form'}")
            if f.depends_on:
                parent = scope.get(f.depends_on) or scalars.get(f.depends_on)
                if parent is None or parent.type != "choice":
                    raise FormSchemaError(f"{here} ({f.id}): depends_on: {f.depends_on!r} is not a choice field")
                extra = sorted(set(dict(f.values_by)) - set(parent.values))
                if extra:
                    raise FormSchemaError(f"{here} ({f.id}): values: {extra[0]!r} is not a value of "
                                          f"{f.depends_on!r}")
                missing = [v for v in parent.values if v not in dict(f.values_by)]
                if missing:
                    raise FormSchemaError(f"{here} ({f.id}): values: no list for {missing[0]!r} of "
                                          f"{f.depends_on!r}")


def _check_checkbox_labels(where: str, columns: tuple[FieldSpec, ...]) -> None:
    """A checkbox column is found by its value as header: it must not read as another column's label."""
    seen = {label_key(lab): c.id for c in columns for lab in c.labels}
    for c in columns:
        if c.multi and c.layout == "checkboxes":
            for value in c.values:
                other = seen.get(label_key(value))
                if other is not None and other != c.id:
                    raise FormSchemaError(f"{where} ({c.id}): values: {value!r} reads as a label of {other!r}")


def _check_rule(where: str, rule: Rule, known: dict[str, FieldSpec], kind: KindSpec) -> None:
    for name in rule.names:
        if name != kind.id and name not in known or name == kind.id and not kind.options:
            raise FormSchemaError(f"{where}: field: {name!r} is not a field of the form")
    for key, cond in (("when", rule.when), ("unless", rule.unless)):
        if cond is None:
            continue
        for value in cond.values:
            if cond.field == kind.id:
                if value not in {o.value for o in kind.options}:
                    raise FormSchemaError(f"{where}: {key}.equals: {value!r} is not a request kind")
            elif known[cond.field].type == "yes_no" and fold(value) not in YES_NO:
                raise FormSchemaError(f"{where}: {key}.equals: {value!r} is not Ja or Nej")
            elif known[cond.field].type == "action" and known[cond.field].action(value) is None:
                raise FormSchemaError(f"{where}: {key}.equals: {value!r} is not an option of {cond.field!r}")
            elif known[cond.field].values and known[cond.field].match(value) is None:
                raise FormSchemaError(f"{where}: {key}.equals: {value!r} is not a value of {cond.field!r}")
    if rule.kind == "forbid_value" and rule.field != kind.id:
        spec = known[rule.field]
        if spec.type == "yes_no" and fold(rule.value) not in YES_NO:
            raise FormSchemaError(f"{where}: value: {rule.value!r} is not Ja or Nej")
        if spec.values and spec.match(rule.value) is None:
            raise FormSchemaError(f"{where}: value: {rule.value!r} is not a value of {rule.field!r}")
