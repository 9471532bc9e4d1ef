"""Request forms judged: the facts the parsers found turned into reasons, and the checks on a filled-in form.

The schema (form.toml) lives in :mod:`parsers.schema`, below both the parsers and the rules; this
module re-exports its names. :func:`judge_form` is the one call the pipeline makes: it has the
attachments read (:func:`parsers.forms.extract_form`, facts only) and turns every problem into
exactly one :class:`~rules.reasons.Reason` that names the field label, the row and the column,
never the value.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from parsers.attachments import KIND_LABELS, WHY, AttachmentLimits, Verdict
from parsers.forms import FormFacts, ParsedForm, Problem, extract_form
from parsers.mail import Attachment
from parsers.schema import (
    FIELD_TYPES,
    YES_NO,
    FieldSpec,
    FormSchema,
    FormSchemaError,
    KindOption,
    KindSpec,
    Rule,
    Section,
    UsersSpec,
    fold,
    form_schema_from_dict,
    load_form_schema,
)
from rules.identity import is_hsa_id, parse_identity_number
from rules.reasons import Reason, reason

__all__ = [
    "FIELD_TYPES", "FieldSpec", "FormJudgement", "FormSchema", "FormSchemaError", "KindOption", "KindSpec",
    "Section", "UsersSpec", "attachment_reason", "check_value", "facts_reasons", "find_form",
    "form_schema_from_dict", "judge_form", "load_form_schema", "match_choice", "validate_form",
]


# --- facts about the attachments -> reasons ---------------------------------------------------------


def attachment_reason(verdict: Verdict) -> Reason | None:
    """The reason for the sender about one refused attachment, or None when nothing was refused."""
    if not verdict.refusal:
        return None
    if verdict.refusal == "unsupported":
        return reason("attachment.unsupported", verdict.detail, filename=verdict.filename,
                      kind=KIND_LABELS.get(verdict.kind, KIND_LABELS["unknown"]))
    if verdict.refusal == "corrupt":
        # Broken in transit or on disk, not hostile: the sender only needs to save and send it again.
        return reason("attachment.damaged", verdict.detail, filename=verdict.filename)
    why, instead = WHY[verdict.refusal]
    return reason("attachment.unsafe", verdict.detail, filename=verdict.filename, why=why, what_instead=instead)


def _problem_reason(problem: Problem, schema: FormSchema) -> Reason | None:
    if problem.kind == "refused":
        return attachment_reason(problem.verdict) if problem.verdict is not None else None
    if problem.kind == "too_many":
        return reason("attachment.too_many", problem.detail, count=problem.count)
    if problem.kind == "unreadable":
        return reason("form.unreadable", problem.detail, filename=problem.filename)
    if problem.kind == "multiple":
        return reason("attachment.multiple_forms", problem.detail, count=problem.count)
    if problem.kind == "unsupported":
        return reason("attachment.unsupported", problem.detail, filename=problem.filename,
                      kind=KIND_LABELS.get(problem.file_kind, KIND_LABELS["unknown"]))
    if problem.kind == "missing":
        return reason("attachment.missing", problem.detail, form_name=schema.name)
    raise ValueError(f"unknown form problem {problem.kind!r}")  # pragma: no cover - PROBLEM_KINDS is closed


def facts_reasons(facts: FormFacts, schema: FormSchema) -> list[Reason]:
    """One reason per problem the parsers reported."""
    return [r for p in facts.problems if (r := _problem_reason(p, schema)) is not None]


@dataclass(frozen=True)
class FormJudgement:
    """The form read from a mail (or None), the attachment it came from, and every reason against it."""

    form: ParsedForm | None
    attachment: Attachment | None
    reasons: list[Reason]


def find_form(attachments: list[Attachment], schema: FormSchema, limits: AttachmentLimits | None = None, *,
              sandbox: bool = True) -> FormJudgement:
    """The one form among ``attachments`` with the reasons about the attachments (no field checks)."""
    facts = extract_form(attachments, schema, limits, sandbox=sandbox)
    return FormJudgement(facts.form, facts.attachment, facts_reasons(facts, schema))


def judge_form(
    attachments: list[Attachment],
    schema: FormSchema,
    *,
    form_kinds: list[str],
    request_type_label: str,
    today: date,
    limits: AttachmentLimits | None = None,
    sandbox: bool = True,
) -> FormJudgement:
    """Find, read and check the form: the pipeline's one call for a request type that needs a form."""
    found = find_form(attachments, schema, limits, sandbox=sandbox)
    if found.form is None:
        return found
    problems = validate_form(found.form, schema, form_kinds=form_kinds, request_type_label=request_type_label,
                             today=today)
    return FormJudgement(found.form, found.attachment, [*found.reasons, *problems])


# --- checks per field type (registered by the same names as parsers.schema.FIELD_TYPES) ------------------

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
    "multi_choice": "ett eller flera värden finns inte i listan; välj bland: {values}",
    "action": "välj ett av: {values}",
    "yes_no": "skriv Ja eller Nej, eller kryssa i rutan",
    "text": "fältet kan inte läsas som text",
}
KIND_MANY = "kryssa bara i ett alternativ"
DATE_ORDER = "datumet ligger före \"{other}\""
DATE_PAST = "datumet har redan passerat"
DATE_AHEAD = "datumet får ligga högst {days} dagar fram i tiden"
MIN_VALUES = "ange minst {count} värden"
MAX_VALUES = "ange högst {count} värden"


def _norm(text: str) -> str:
    return " ".join(text.replace("\u00a0", " ").split()).casefold()


def match_choice(spec: FieldSpec, value: str, parent: str | None = None) -> str | None:
    """The allowed value ``value`` stands for (any case, spacing, allowed suffixes), or None."""
    wanted = _norm(value)
    for allowed in spec.allowed(parent):
        a = _norm(allowed)
        if wanted == a or any(wanted == _norm(allowed + sfx) for sfx in spec.suffixes):
            return allowed
    return None


def _text_check(ok: Callable[[str, date], bool]) -> Callable[[FieldSpec, object, date, str | None], str | None]:
    def check(spec: FieldSpec, value: object, today: date, parent: str | None) -> str | None:
        text = (value.isoformat() if isinstance(value, date) else str(value)).strip()
        return None if ok(text, today) else PROBLEMS[spec.type]

    return check


def _check_date(spec: FieldSpec, value: object, today: date, parent: str | None) -> str | None:
    return None if isinstance(value, date) else PROBLEMS["date"]


def _check_choice(spec: FieldSpec, value: object, today: date, parent: str | None) -> str | None:
    if match_choice(spec, str(value).strip(), parent) is None:
        return PROBLEMS["choice"].format(values=", ".join(spec.allowed(parent)))
    return None


def _check_multi(spec: FieldSpec, value: object, today: date, parent: str | None) -> str | None:
    items = value if isinstance(value, list) else [value]
    allowed = spec.allowed(parent)
    if any(not isinstance(v, str) or spec.match(v, parent) is None for v in items):
        return PROBLEMS["multi_choice"].format(values=", ".join(allowed))
    return None


def _check_flag(spec: FieldSpec, value: object, today: date, parent: str | None) -> str | None:
    return None if isinstance(value, bool) else PROBLEMS["yes_no"]


def _check_action(spec: FieldSpec, value: object, today: date, parent: str | None) -> str | None:
    if spec.action(str(value)) is None:
        return PROBLEMS["action"].format(values=", ".join(o.label for o in spec.options))
    return None


CHECKS: dict[str, Callable[[FieldSpec, object, date, str | None], str | None]] = {
    "text": _text_check(lambda t, d: True),
    "email": _text_check(lambda t, d: bool(_EMAIL.match(t))),
    "phone": _text_check(lambda t, d: bool(_PHONE.match(t)) and 6 <= sum(ch.isdigit() for ch in t) <= 15),
    "personnummer_or_hsa": _text_check(lambda t, d: is_hsa_id(t) or parse_identity_number(t, d) is not None),
    "hsa_id": _text_check(lambda t, d: is_hsa_id(t)),
    "date": _check_date,
    "choice": _check_choice,
    "multi_choice": _check_multi,
    "action": _check_action,
    "yes_no": _check_flag,
}


def check_value(spec: FieldSpec, value: object, today: date, parent: str | None = None) -> str | None:
    """The Swedish problem with a non-blank ``value`` for ``spec``, or None when it is fine.

    ``parent`` is the canonical value of the field a dependent list depends on (None: any value).
    """
    check = CHECKS.get(spec.type)
    if check is None:  # a type registered in the schema without a check here: never pass silently
        raise FormSchemaError(f"{spec.id}: type: {spec.type!r} has no check")
    return check(spec, value, today, parent)


# --- validation ----------------------------------------------------------------------------------------


def _blank(value: object) -> bool:
    return value is None or value == [] or (isinstance(value, str) and not value.strip())


def _where(row: int | None) -> str:
    return f" på rad {row}" if row is not None else ""


def _detail(kind: str, fid: str, row: int | None = None, check: str = "") -> str:
    parts = [kind, f"field={fid}"]
    if row is not None:
        parts.append(f"row={row}")
    if check:
        parts.append(f"check={check}")
    return " ".join(parts)


class _Checker:
    """Checks values of one form against the schema; ``today`` for the date rules."""

    def __init__(self, form: ParsedForm, schema: FormSchema, today: date, kinds: list[str]) -> None:
        self.form, self.schema, self.today, self.kinds = form, schema, today, kinds
        self.reasons: list[Reason] = []

    def parent(self, spec: FieldSpec, row: dict[str, object] | None) -> str | None:
        """The canonical value of the field ``spec``'s list depends on (None: blank or not allowed)."""
        if not spec.depends_on:
            return None
        parent_spec = self.schema.spec(spec.depends_on)
        source = row if row is not None and self.schema.is_column(spec.depends_on) else self.form.fields
        value = source.get(spec.depends_on)
        if parent_spec is None or _blank(value):
            return None
        return match_choice(parent_spec, str(value))

    def field(self, spec: FieldSpec, value: object, values: dict[str, object], row: int | None,
              scope: str, labels: dict[str, str]) -> None:
        if _blank(value):
            if spec.is_required(self.kinds):
                self.reasons.append(reason("form.missing_field", _detail(scope, spec.id, row), field=spec.label,
                                           where=_where(row)))
            return
        parent = self.parent(spec, values if scope == "user" else None)
        problem = check_value(spec, value, self.today, parent)
        check = spec.type
        if problem is None and spec.multi:
            count = len(value) if isinstance(value, list) else 1
            if count < spec.min_values:
                problem, check = MIN_VALUES.format(count=spec.min_values), "min_values"
            elif spec.max_values is not None and count > spec.max_values:
                problem, check = MAX_VALUES.format(count=spec.max_values), "max_values"
        if problem is None and isinstance(value, date):
            problem, check = self.date_rules(spec, value, values, labels)
        if problem:
            self.reasons.append(reason("form.invalid_field", _detail(scope, spec.id, row, check), field=spec.label,
                                       where=_where(row), problem=problem))

    def date_rules(self, spec: FieldSpec, value: date, values: dict[str, object],
                   labels: dict[str, str]) -> tuple[str | None, str]:
        if spec.not_before:
            other = values.get(spec.not_before)
            if isinstance(other, date) and value < other:
                return DATE_ORDER.format(other=labels[spec.not_before]), "date_order"
        if spec.not_in_past and value < self.today:
            return DATE_PAST, "not_in_past"
        if spec.max_days_ahead is not None and (value - self.today).days > spec.max_days_ahead:
            return DATE_AHEAD.format(days=spec.max_days_ahead), "max_days_ahead"
        return None, ""


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
    label, the row and the column, never the value.
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

    checker = _Checker(form, schema, today, kinds)
    field_labels = {f.id: f.label for f in schema.fields}
    for spec in schema.fields:
        checker.field(spec, form.fields.get(spec.id), form.fields, None, "field", field_labels)
    reasons.extend(checker.reasons)

    table = schema.users
    rows = len(form.users)
    if not form.users and table.min_rows >= 1:
        reasons.append(reason("form.no_users", "users=0"))
    elif rows < table.min_rows:
        reasons.append(reason("form.too_few_rows", f"rows={rows} min={table.min_rows}", table=table.title,
                              count=rows, min=table.min_rows))
    if table.max_rows is not None and rows > table.max_rows:
        reasons.append(reason("form.too_many_rows", f"rows={rows} max={table.max_rows}", table=table.title,
                              count=rows, max=table.max_rows))

    checker.reasons = []
    column_labels = {c.id: c.label for c in table.columns}
    for position, user in enumerate(form.users, start=1):
        row = user.get("row") if isinstance(user.get("row"), int) else position
        for spec in table.columns:
            checker.field(spec, user.get(spec.id), user, row, "user", column_labels)
    reasons.extend(checker.reasons)
    reasons.extend(_rules(form, schema, checked))
    return reasons


# --- cross-field rules ----------------------------------------------------------------------------------


def _same(spec: FieldSpec | None, value: object, target: str) -> bool:
    if isinstance(value, bool):
        return YES_NO.get(fold(target)) is value
    if isinstance(value, list):
        return any(_same(spec, v, target) for v in value)
    if _blank(value):
        return False
    text = str(value)
    if spec is not None and spec.type == "choice":
        text = match_choice(spec, text) or text
    elif spec is not None and spec.type == "action":
        text = spec.action(text) or text
    return fold(text) == fold(target)


def _rules(form: ParsedForm, schema: FormSchema, checked: list[str]) -> list[Reason]:
    reasons: list[Reason] = []
    for i, rule in enumerate(schema.rules):
        per_row = any(schema.is_column(n) for n in rule.names)
        scopes: list[tuple[int | None, dict[str, object]]] = (
            [(u.get("row") if isinstance(u.get("row"), int) else n, u) for n, u in enumerate(form.users, start=1)]
            if per_row else [(None, {})]
        )
        for row, values in scopes:
            if _broken(rule, form, schema, checked, values):
                where = f"Rad {row}: " if row is not None else ""
                detail = f"rule={i} kind={rule.kind} field={rule.field or ','.join(rule.fields)}"
                detail += f" row={row}" if row is not None else ""
                reasons.append(reason("form.rule", detail, message=rule.message, where=where))
    return reasons


def _broken(rule: Rule, form: ParsedForm, schema: FormSchema, checked: list[str], row: dict[str, object]) -> bool:
    def get(name: str) -> object:
        if name == schema.kind.id:
            return list(checked)
        if schema.is_column(name):
            return row.get(name)
        return form.fields.get(name)

    def holds(cond) -> bool:
        return any(_same(schema.spec(cond.field), get(cond.field), v) for v in cond.values)

    if rule.when is not None and not holds(rule.when):
        return False
    if rule.unless is not None and holds(rule.unless):
        return False
    if rule.kind == "forbid_value":
        return _same(schema.spec(rule.field), get(rule.field), rule.value)
    if rule.kind == "requires":
        return _blank(get(rule.field))
    total = 0
    for name in rule.fields:
        value = get(name)
        total += len(value) if isinstance(value, list) else (0 if _blank(value) else 1)
    return total > rule.count if rule.kind == "at_most" else total < rule.count
