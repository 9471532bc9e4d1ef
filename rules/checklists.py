"""Ordered checklists as pack data: per request type, the steps a ticket needs before it may close.

A pack may have ``checklists.toml`` beside ``pack.toml`` (README, "Checklists"): one list of tasks per
request type, each with an id, a Swedish title, an actor role, a link (text), a condition on form fields
(``when`` / ``unless``, the vocabulary of form.toml's rules), a text shown when it does not apply, tasks
reused from another checklist (``same_as = "avsluta.rsvpn"``), dependencies (``after``) and optionally a
value to record (``record``) that later tasks show (``shows``). :func:`load_checklists` checks it when the
pack loads (unknown key, request type, task, field or value, a dependency cycle: a :class:`ChecklistError`
naming the file and the key). :func:`instantiate` copies a checklist onto a new ticket's form (pure), and
:func:`blocked_by` / :func:`open_required` answer whether a task may be ticked and whether the ticket may
close. The lifecycle effect ``start_checklist`` and the gate ``checklist_complete`` are registered here;
:mod:`intake.checklists` carries them out.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from parsers.errors import IntakeError
from parsers.schema import YES_NO, fold
from rules.lifecycle import EffectSpec, GateSpec, PackContext, TicketFacts, register_effect, register_gate

#: Keys of checklists.toml, of a task, of a condition and of a timer (documented in the README; tests/test_docs.py).
TOP_KEYS = ("checklists", "timers")
TASK_KEYS = ("id", "title", "actor", "link", "when", "unless", "applies", "not_applicable", "same_as", "after",
             "record", "shows", "required")
CONDITION_KEYS = ("field", "equals", "one_of")
TIMER_KEYS = ("request_type", "name", "event", "at_field", "offset_days")
#: What a task's ``not_applicable`` text is when the pack gives none.
DEFAULT_NOT_APPLICABLE = "Ingen åtgärd"
#: Task states on a ticket.
STATES = ("open", "done", "not_applicable")
#: The fact the gate reads (open required tasks of the ticket), loaded by intake.checklists.
OPEN_FACT = "checklist_open"


class ChecklistError(IntakeError, ValueError):
    """A checklists.toml that is malformed or names something unknown; the message names file and key."""


@dataclass(frozen=True)
class Condition:
    """Holds when form field ``field`` has one of ``values`` (a list field: contains one)."""

    field: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class TaskTemplate:
    id: str
    title: str
    actor: str = ""
    link: str = ""
    when: Condition | None = None
    unless: Condition | None = None
    applies: bool = True
    not_applicable: str = DEFAULT_NOT_APPLICABLE
    after: tuple[str, ...] = ()
    record: str = ""  # the Swedish label of a value the handler records (RSID, ordernummer)
    shows: tuple[str, ...] = ()  # tasks whose recorded values this one shows
    required: bool = True
    same_as: str = ""


@dataclass(frozen=True)
class ReminderTimer:
    """A timer the checklist sets on a ticket of ``request_type`` when the date field holds a date."""

    request_type: str
    name: str
    event: str
    at_field: str
    offset_days: int = 0


@dataclass(frozen=True)
class Checklists:
    """A pack's checklists: request type id -> tasks in order; and the timers they set."""

    source: str
    by_type: Mapping[str, tuple[TaskTemplate, ...]]
    timers: tuple[ReminderTimer, ...] = ()

    def for_type(self, request_type: str | None) -> tuple[TaskTemplate, ...]:
        return self.by_type.get(request_type or "", ())


# -- loading --------------------------------------------------------------------------------------------


def _strings(value: Any, here: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ChecklistError(f"{here}: expected a list of strings")
    return tuple(value)


def _text(row: Mapping[str, Any], key: str, here: str, default: str | None = None) -> str:
    if key not in row:
        if default is None:
            raise ChecklistError(f"{here}.{key}: missing")
        return default
    value = row[key]
    if not isinstance(value, str) or (default is None and not value.strip()):
        raise ChecklistError(f"{here}.{key}: expected a text")
    return value


def _flag(row: Mapping[str, Any], key: str, here: str, default: bool) -> bool:
    value = row.get(key, default)
    if not isinstance(value, bool):
        raise ChecklistError(f"{here}.{key}: expected true or false")
    return value


def _condition(row: Mapping[str, Any], key: str, here: str, schema: Any) -> Condition | None:
    if key not in row:
        return None
    where = f"{here}.{key}"
    raw = row[key]
    if not isinstance(raw, dict):
        raise ChecklistError(f"{where}: expected a table {{ field = ..., equals = ... }}")
    for k in raw:
        if k not in CONDITION_KEYS:
            raise ChecklistError(f"{where}.{k}: unknown key")
    if not isinstance(raw.get("field"), str):
        raise ChecklistError(f"{where}.field: missing")
    if ("equals" in raw) == ("one_of" in raw):
        raise ChecklistError(f"{where}.equals: give either equals or one_of")
    values = _strings(raw["equals"] if "equals" in raw else raw["one_of"], f"{where}.one_of")
    if not values:
        raise ChecklistError(f"{where}.one_of: name at least one value")
    cond = Condition(raw["field"], values)
    problem = _condition_problem(cond, schema)
    if problem:
        raise ChecklistError(f"{where}.{problem}")
    return cond


def _condition_problem(cond: Condition, schema: Any) -> str | None:
    """Why ``cond`` cannot hold on this pack's form (unknown field, a value the field cannot hold), or None."""
    if schema is None:
        return f"field: {cond.field!r}: the pack has no form.toml"
    if cond.field == schema.kind.id and schema.kind.options:
        kinds = {o.value for o in schema.kind.options}
        bad = [v for v in cond.values if v not in kinds]
        return f"equals: {bad[0]!r} is not a request kind" if bad else None
    spec = schema.spec(cond.field)
    if spec is None:
        return f"field: {cond.field!r} is not a field of the form"
    for value in cond.values:
        if spec.type == "yes_no" and fold(value) not in YES_NO:
            return f"equals: {value!r} is not Ja or Nej"
        if spec.type == "action" and spec.action(value) is None:
            return f"equals: {value!r} is not an option of {cond.field!r}"
        if spec.values and spec.match(value) is None:
            return f"equals: {value!r} is not a value of {cond.field!r}"
    return None


def _task(row: Any, here: str, schema: Any) -> tuple[TaskTemplate, set[str]]:
    """A task as written (before ``same_as`` is resolved) and the keys it gave."""
    if not isinstance(row, dict):
        raise ChecklistError(f"{here}: expected a table")
    for key in row:
        if key not in TASK_KEYS:
            raise ChecklistError(f"{here}.{key}: unknown key")
    tid = _text(row, "id", here)
    if not tid.replace("_", "").isalnum() or not tid[0].isalpha() or tid.lower() != tid:
        raise ChecklistError(f"{here}.id: must be lower-case letters, digits and _")
    same_as = _text(row, "same_as", here, "")
    title = _text(row, "title", here, "" if same_as else None)
    task = TaskTemplate(
        id=tid, title=title, actor=_text(row, "actor", here, ""), link=_text(row, "link", here, ""),
        when=_condition(row, "when", here, schema), unless=_condition(row, "unless", here, schema),
        applies=_flag(row, "applies", here, True),
        not_applicable=_text(row, "not_applicable", here, DEFAULT_NOT_APPLICABLE),
        after=_strings(row.get("after", []), f"{here}.after"), record=_text(row, "record", here, ""),
        shows=_strings(row.get("shows", []), f"{here}.shows"), required=_flag(row, "required", here, True),
        same_as=same_as,
    )
    return task, set(row)


_REUSED = ("title", "actor", "link", "when", "unless", "applies", "not_applicable", "record", "required")


def load_checklists(path: str | Path, *, request_types: Sequence[str], form_schema: Any = None,
                    scheduler_events: set[str] | None = None) -> Checklists:
    """Check and build the checklists in ``path`` (a pack's checklists.toml).

    ``request_types`` are the pack's request type ids, ``form_schema`` its form (conditions and timers
    name its fields), ``scheduler_events`` the events its lifecycle lets the scheduler fire (a timer's event).
    """
    path = Path(path)
    where = str(path)
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except OSError as exc:
        raise ChecklistError(f"{where}: cannot read ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ChecklistError(f"{where}: not valid TOML ({exc})") from None
    return checklists_from_dict(data, where, request_types=request_types, form_schema=form_schema,
                                scheduler_events=scheduler_events)


def checklists_from_dict(data: Mapping[str, Any], where: str, *, request_types: Sequence[str],
                         form_schema: Any = None, scheduler_events: set[str] | None = None) -> Checklists:
    """:func:`load_checklists` on parsed TOML (``where`` names the file in errors)."""
    for key in data:
        if key not in TOP_KEYS:
            raise ChecklistError(f"{where}: {key}: unknown key")
    lists = data.get("checklists", {})
    if not isinstance(lists, dict):
        raise ChecklistError(f"{where}: checklists: expected a table of lists ([[checklists.<request type>]])")
    raw: dict[str, list[tuple[TaskTemplate, set[str], str]]] = {}
    for type_id, rows in lists.items():
        if type_id not in request_types:
            raise ChecklistError(f"{where}: checklists.{type_id}: not a request type of the pack "
                                 f"(one of {', '.join(request_types)})")
        if not isinstance(rows, list) or not rows:
            raise ChecklistError(f"{where}: checklists.{type_id}: expected tasks ([[checklists.{type_id}]])")
        seen: set[str] = set()
        raw[type_id] = []
        for i, row in enumerate(rows):
            here = f"{where}: checklists.{type_id}[{i}]"
            task, given = _task(row, here, form_schema)
            if task.id in seen:
                raise ChecklistError(f"{here}.id: {task.id!r} is used twice in the checklist")
            seen.add(task.id)
            raw[type_id].append((task, given, here))

    def resolve(type_id: str, task: TaskTemplate, given: set[str], here: str, trail: tuple[str, ...]) -> TaskTemplate:
        if not task.same_as:
            return task
        ref_type, _, ref_id = task.same_as.partition(".")
        found = next(((t, g, h) for t, g, h in raw.get(ref_type, []) if t.id == ref_id), None)
        if found is None:
            raise ChecklistError(f"{here}.same_as: no task {task.same_as!r} (write <request type>.<task id>)")
        if task.same_as in trail:
            raise ChecklistError(f"{here}.same_as: {task.same_as!r} refers back to itself")
        base = resolve(ref_type, *found, (*trail, task.same_as))
        taken = {k: getattr(base, k) for k in _REUSED if k not in given}
        return replace(task, **taken)

    by_type: dict[str, tuple[TaskTemplate, ...]] = {}
    for type_id, rows in raw.items():
        tasks = []
        for task, given, here in rows:
            task = resolve(type_id, task, given, here, (f"{type_id}.{task.id}",))
            if not task.title.strip():
                raise ChecklistError(f"{here}.title: missing")
            tasks.append((task, here))
        ids = {t.id: t for t, _ in tasks}
        for task, here in tasks:
            for dep in task.after:
                if dep not in ids:
                    raise ChecklistError(f"{here}.after: unknown task {dep!r} in checklists.{type_id}")
            for shown in task.shows:
                if shown not in ids or not ids[shown].record:
                    raise ChecklistError(f"{here}.shows: {shown!r} is not a task of checklists.{type_id} "
                                         f"that records a value")
        cycle = _cycle({t.id: t.after for t, _ in tasks})
        if cycle:
            first = next(h for t, h in tasks if t.id == cycle[0])
            raise ChecklistError(f"{first}.after: dependency cycle {' -> '.join(cycle)}")
        by_type[type_id] = tuple(t for t, _ in tasks)

    timers = []
    for i, row in enumerate(data.get("timers", [])):
        here = f"{where}: timers[{i}]"
        timers.append(_timer(row, here, by_type, form_schema, scheduler_events))
    return Checklists(where, by_type, tuple(timers))


def _timer(row: Any, here: str, by_type: Mapping[str, Any], schema: Any,
           scheduler_events: set[str] | None) -> ReminderTimer:
    if not isinstance(row, dict):
        raise ChecklistError(f"{here}: expected a table")
    for key in row:
        if key not in TIMER_KEYS:
            raise ChecklistError(f"{here}.{key}: unknown key")
    rtype = _text(row, "request_type", here)
    if rtype not in by_type:
        raise ChecklistError(f"{here}.request_type: {rtype!r} has no checklist")
    at_field = _text(row, "at_field", here)
    spec = schema.spec(at_field) if schema is not None else None
    if spec is None or spec.type != "date" or schema.is_column(at_field):
        raise ChecklistError(f"{here}.at_field: {at_field!r} is not a date field of the form")
    event = _text(row, "event", here)
    if scheduler_events is not None and event not in scheduler_events:
        raise ChecklistError(f"{here}.event: no transition fires on {event!r} by the scheduler")
    offset = row.get("offset_days", 0)
    if not isinstance(offset, int) or isinstance(offset, bool):
        raise ChecklistError(f"{here}.offset_days: expected an integer")
    return ReminderTimer(rtype, _text(row, "name", here), event, at_field, offset)


def _cycle(graph: Mapping[str, Sequence[str]]) -> list[str] | None:
    """A dependency cycle in ``graph`` (task -> tasks it comes after) as a path, or None."""
    colour: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        colour[node] = 1
        stack.append(node)
        for dep in graph.get(node, ()):
            if colour.get(dep) == 1:
                return [*stack[stack.index(dep):], dep]
            if colour.get(dep) is None:
                found = visit(dep)
                if found:
                    return found
        stack.pop()
        colour[node] = 2
        return None

    for node in graph:
        if node not in colour:
            found = visit(node)
            if found:
                return found
    return None


# -- on a ticket (pure) ---------------------------------------------------------------------------------


def _same(spec: Any, value: Any, target: str) -> bool:
    if isinstance(value, bool):
        return YES_NO.get(fold(target)) is value
    if isinstance(value, list):
        return any(_same(spec, v, target) for v in value)
    if value is None or str(value).strip() == "":
        return False
    text = str(value)
    if spec is not None and spec.values:
        text = spec.match(text) or text
    elif spec is not None and spec.type == "action":
        text = spec.action(text) or text
    return fold(text) == fold(target)


def holds(cond: Condition, form: Mapping[str, Any], schema: Any) -> bool:
    """Whether ``cond`` holds on a parsed form (``{"fields", "users", "kind"}``): a table column holds
    when any person's row holds it; the request kind is the ticked box."""
    spec = schema.spec(cond.field) if schema is not None else None
    if schema is not None and cond.field == schema.kind.id:
        values: list[Any] = [form.get("kind")]
    elif schema is not None and schema.is_column(cond.field):
        values = [row.get(cond.field) for row in form.get("users") or []]
    else:
        values = [(form.get("fields") or {}).get(cond.field)]
    return any(_same(spec, value, target) for value in values for target in cond.values)


def applies(task: TaskTemplate, form: Mapping[str, Any], schema: Any) -> bool:
    """Whether ``task`` applies to a ticket with this form."""
    if not task.applies:
        return False
    if task.when is not None and not holds(task.when, form, schema):
        return False
    return not (task.unless is not None and holds(task.unless, form, schema))


def instantiate(tasks: Sequence[TaskTemplate], form: Mapping[str, Any], schema: Any) -> list[dict[str, Any]]:
    """The rows a new ticket's checklist starts with: a copy of every task (so a later pack change does not
    alter work in progress), ``open`` or ``not_applicable`` (with its text) according to the form."""
    out = []
    for position, task in enumerate(tasks, start=1):
        ok = applies(task, form, schema)
        out.append({
            "position": position, "task": task.id, "title": task.title, "actor": task.actor, "link": task.link,
            "after": list(task.after), "record_label": task.record, "shows": list(task.shows),
            "required": task.required, "state": "open" if ok else "not_applicable",
            "note": "" if ok else task.not_applicable,
        })
    return out


def blocked_by(task: Mapping[str, Any], tasks: Sequence[Mapping[str, Any]]) -> list[str]:
    """The predecessors of ``task`` (in ``after``) that are still open: while any is, it cannot be ticked.
    A predecessor that is done or does not apply lets it through."""
    state = {t["task"]: t["state"] for t in tasks}
    return [dep for dep in task.get("after") or [] if state.get(dep, "open") == "open"]


def dependants_done(task_id: str, tasks: Sequence[Mapping[str, Any]]) -> list[str]:
    """Done tasks that come after ``task_id`` (unticking it would leave them done out of order)."""
    return [t["task"] for t in tasks if task_id in (t.get("after") or []) and t["state"] == "done"]


def open_required(tasks: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The required tasks still open: the ticket may not close while there is one."""
    return [t for t in tasks if t["state"] == "open" and t.get("required", True)]


@dataclass(frozen=True)
class Progress:
    """How far a ticket's checklist is: done of applicable, and the titles (for mail)."""

    done: int = 0
    total: int = 0
    done_titles: tuple[str, ...] = ()
    planned_titles: tuple[str, ...] = ()
    not_applicable_titles: tuple[str, ...] = field(default_factory=tuple)

    def __str__(self) -> str:
        return f"{self.done}/{self.total}" if self.total else ""


def progress(tasks: Sequence[Mapping[str, Any]]) -> Progress:
    applicable = [t for t in tasks if t["state"] != "not_applicable"]
    done = [t for t in applicable if t["state"] == "done"]
    return Progress(len(done), len(applicable), tuple(t["title"] for t in done),
                    tuple(t["title"] for t in applicable),
                    tuple(t["title"] for t in tasks if t["state"] == "not_applicable"))


# -- the lifecycle vocabulary ---------------------------------------------------------------------------


def _no_params(_params: Mapping[str, Any], _ctx: PackContext) -> str | None:
    return None


register_effect(EffectSpec(
    "start_checklist",
    "copy the checklist of the ticket's request type (checklists.toml) onto the ticket; tasks that do not "
    "apply are marked with their text; sets the checklist's timers",
    required={}, check=_no_params,
))

register_gate(GateSpec(
    "checklist_complete", "no required checklist task of the ticket is open",
    lambda facts, _p: not _open_count(facts),
    sv="Checklistan har uppgifter kvar som inte är klara.", en="the checklist has open required tasks",
))


def _open_count(facts: TicketFacts) -> int:
    return int(facts.extra.get(OPEN_FACT) or 0)
