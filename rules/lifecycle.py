"""A routine's lifecycle as data: states, transitions, gates and effects, and the one pure step.

A pack declares its lifecycle in ``pack.toml`` under ``[lifecycle]`` (see the README, "Lifecycle").
:func:`load_lifecycle` checks it when the pack loads (an unknown state, effect, gate, role,
recipient or template is a :class:`LifecycleError` naming the file and the key), and
:func:`advance` is the only place that decides whether a ticket may move: it takes the ticket's
facts, an event, who fires it and the lifecycle, and returns the new state with the effects to
carry out, or a :class:`Refusal` with a stable code. It never touches a store, a mailbox or a clock
it is not handed; :mod:`intake.engine` carries the effects out.

Effects and gates are registered by name (:func:`register_effect`, :func:`register_gate`), so a new
routine step (an approval token, a checklist) is a registration plus pack data, not a change here.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from functools import cache
from importlib import resources
from typing import Any

#: Who may fire an event. An ``admin`` may also do whatever a ``handler`` may.
ACTOR_ROLES = ("handler", "admin", "requester", "approver", "bot", "scheduler")
#: Whom a mail effect may go to, besides ``field:<form field id>`` and ``party:<form party id>``.
RECIPIENT_ROLES = ("requester", "approver", "previous_approver", "handler")
#: Keys of ``[lifecycle]``, of a state and of a transition (documented in the README; tests/test_docs.py).
LIFECYCLE_KEYS = ("initial", "states", "transitions")
STATE_KEYS = ("label", "open", "workable", "on_enter")
TRANSITION_KEYS = ("from", "to", "event", "by", "gates", "effects")
GATE_KEYS = ("gate", "override_by")
ANY_STATE = "*"

_ID = re.compile(r"^[a-z][a-z0-9_]*$")


class LifecycleError(ValueError):
    """A lifecycle declaration that is malformed or names something unknown."""


@dataclass(frozen=True)
class Effect:
    """One effect to carry out, by its registered name, with the parameters the pack gave."""

    name: str
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class GateUse:
    """A gate on a transition: its registered name, parameters, and who may override it (with a reason)."""

    name: str
    params: Mapping[str, Any] = field(default_factory=dict)
    override_by: tuple[str, ...] = ()


@dataclass(frozen=True)
class State:
    id: str
    label: str
    open: bool
    workable: bool
    on_enter: tuple[Effect, ...] = ()


@dataclass(frozen=True)
class Transition:
    sources: tuple[str, ...]  # state ids, or ("*",) for any state
    to: str
    event: str
    by: tuple[str, ...]
    gates: tuple[GateUse, ...] = ()
    effects: tuple[Effect, ...] = ()

    def leaves(self, state: str) -> bool:
        return ANY_STATE in self.sources or state in self.sources

    def allows(self, role: str) -> bool:
        return role in self.by or (role == "admin" and "handler" in self.by)


@dataclass(frozen=True)
class Lifecycle:
    """A loaded, checked lifecycle."""

    initial: str
    states: Mapping[str, State]
    transitions: tuple[Transition, ...]

    def is_open(self, state: str) -> bool:
        s = self.states.get(state)
        return s.open if s is not None else True

    def is_workable(self, state: str) -> bool:
        s = self.states.get(state)
        return s is not None and s.open and s.workable

    def label(self, state: str) -> str:
        s = self.states.get(state)
        return s.label if s is not None else state

    def targets(self, state: str, event: str, role: str) -> list[str]:
        """The states ``role`` may move a ticket in ``state`` to with ``event`` (gates not yet applied)."""
        out: list[str] = []
        for t in self.transitions:
            if t.event == event and t.leaves(state) and t.allows(role) and t.to not in out and t.to != state:
                out.append(t.to)
        return out

    def timer_names(self) -> set[str]:
        return {e.params["name"] for e in self.all_effects() if e.name == "timer"}

    def all_effects(self) -> list[Effect]:
        found = [e for s in self.states.values() for e in s.on_enter]
        return found + [e for t in self.transitions for e in t.effects]


@dataclass(frozen=True)
class TicketFacts:
    """What the lifecycle may look at: the ticket's state and fields, never its mail.

    ``extra`` holds facts other registered parts provide (open checklist tasks, the approval).
    """

    state: str
    routine: str = ""
    request_type: str | None = None
    assignee: str | None = None
    requester: str | None = None
    fields: Mapping[str, Any] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)
    now: datetime | None = None  # the moment of the step (set by advance), for gates about dates


@dataclass(frozen=True)
class Advance:
    """The outcome of an allowed step: the new state (may equal the old one) and the effects, in order."""

    old_state: str
    new_state: str
    event: str
    effects: tuple[Effect, ...]
    overridden: tuple[str, ...] = ()  # gates passed only by an override

    @property
    def changed(self) -> bool:
        return self.old_state != self.new_state


@dataclass(frozen=True)
class Refusal:
    """A step that is not allowed: a stable ``code``, a Swedish sentence for staff and an English one."""

    code: str
    sv: str
    en: str
    data: Mapping[str, Any] = field(default_factory=dict)


# -- registries ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PackContext:
    """What a parameter check may look at while the pack loads."""

    where: str
    states: frozenset[str]
    events: frozenset[str]
    scheduler_events: frozenset[str]
    templates: frozenset[str]  # names usable as mail templates (in [templates] and [reply_subjects])
    form_fields: frozenset[str] | None  # None: the pack has no form
    form_parties: frozenset[str] | None


@dataclass(frozen=True)
class EffectSpec:
    """A kind of effect: its parameters (name -> type or tuple of types) and an extra check."""

    name: str
    description: str
    required: Mapping[str, Any]
    optional: Mapping[str, Any] = field(default_factory=dict)
    check: Callable[[Mapping[str, Any], PackContext], str | None] | None = None


@dataclass(frozen=True)
class GateSpec:
    """A named condition a transition may require. ``check(facts, params)`` is pure: True lets it pass."""

    name: str
    description: str
    check: Callable[[TicketFacts, Mapping[str, Any]], bool]
    params: Mapping[str, Any] = field(default_factory=dict)  # required parameters: name -> type
    param_check: Callable[[Mapping[str, Any], PackContext], str | None] | None = None
    sv: str = ""  # the refusal in Swedish ({...} filled from params)
    en: str = ""


EFFECTS: dict[str, EffectSpec] = {}
GATES: dict[str, GateSpec] = {}


def register_effect(spec: EffectSpec) -> EffectSpec:
    """Make an effect name usable in packs (its executor is registered with :func:`intake.engine.executor`)."""
    EFFECTS[spec.name] = spec
    return spec


def register_gate(spec: GateSpec) -> GateSpec:
    """Make a gate name usable in packs."""
    GATES[spec.name] = spec
    return spec


def recipient_problem(to: str, ctx: PackContext) -> str | None:
    """Why ``to`` cannot be a mail recipient in this pack, or None."""
    if to in RECIPIENT_ROLES:
        return None
    kind, _, ident = to.partition(":")
    if kind == "field":
        if ctx.form_fields is None:
            return f"{to!r}: the pack has no form.toml"
        return None if ident in ctx.form_fields else f"{to!r}: no form field {ident!r}"
    if kind == "party":
        if not ctx.form_parties:
            return f"{to!r}: the form declares no parties"
        return None if ident in ctx.form_parties else f"{to!r}: no form party {ident!r}"
    return f"{to!r}: not a recipient (one of {', '.join(RECIPIENT_ROLES)}, field:<id>, party:<id>)"


def _mail_check(params: Mapping[str, Any], ctx: PackContext) -> str | None:
    problem = recipient_problem(params["to"], ctx)
    if problem:
        return f"to: {problem}"
    if params["template"] not in ctx.templates:
        return f"template: {params['template']!r} is not in [templates] with a subject in [reply_subjects]"
    if params.get("rate_limit_per_hour", 0) < 0:
        return "rate_limit_per_hour: must be 0 (no cap) or more"
    return None


_WHEN = ("after_days", "after_hours", "after_working_days", "at_field")


def _timer_check(params: Mapping[str, Any], ctx: PackContext) -> str | None:
    if not _ID.match(params["name"]):
        return "name: must be a lower-case id"
    given = [k for k in _WHEN if k in params]
    if len(given) != 1:
        return f"needs exactly one of {', '.join(_WHEN)}"
    if "offset_days" in params and given[0] != "at_field":
        return "offset_days: only with at_field"
    if given[0] == "at_field":
        if ctx.form_fields is None or params["at_field"] not in ctx.form_fields:
            return f"at_field: no form field {params['at_field']!r}"
    elif params[given[0]] < 0:
        return f"{given[0]}: must not be negative"
    if params["event"] not in ctx.scheduler_events:
        return f"event: no transition fires on {params['event']!r} by the scheduler"
    return None


register_effect(EffectSpec(
    "mail", "queue a mail to a recipient role, rendered from a template once the ticket exists",
    required={"to": str, "template": str},
    optional={"kind": str, "automatic": bool, "rate_limit_per_hour": int, "attach_form": bool},
    check=_mail_check,
))
register_effect(EffectSpec(
    "timer", "set a timer that fires an event by the scheduler when due (replaces a pending one of that name)",
    required={"name": str, "event": str},
    optional={"after_days": (int, float), "after_hours": (int, float), "after_working_days": int,
              "at_field": str, "offset_days": int, "keep": bool},
    check=_timer_check,
))
register_effect(EffectSpec(
    "cancel_timer", "cancel a pending timer of the ticket by name", required={"name": str},
))
register_effect(EffectSpec(
    "register", "write the ticket's persons, systems and roles into the access register (the pack's register.toml; "
    "nothing when the pack has none or the register is off)",
    required={},
))


def _field_param(params: Mapping[str, Any], ctx: PackContext) -> str | None:
    if ctx.form_fields is None or params["field"] not in ctx.form_fields:
        return f"field: no form field {params['field']!r}"
    return None


register_gate(GateSpec(
    "assigned", "the ticket has an assignee", lambda facts, _p: bool(facts.assignee),
    sv="Ärendet måste ha en handläggare först.", en="the ticket needs an assignee first",
))
register_gate(GateSpec(
    "field_present", "a form field of the ticket has a value",
    lambda facts, p: facts.fields.get(p["field"]) not in (None, "", []),
    params={"field": str}, param_check=_field_param,
    sv="Fältet {field} i blanketten är tomt.", en="form field {field} is empty",
))


def field_date(value: Any) -> date | None:
    """The date a form field holds (stored as ISO text), or None."""
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


def _date_reached(facts: TicketFacts, params: Mapping[str, Any]) -> bool:
    day = field_date(facts.fields.get(params["field"]))
    if day is None or facts.now is None:
        return True
    from zoneinfo import ZoneInfo

    return day <= facts.now.astimezone(ZoneInfo("Europe/Stockholm")).date()


register_gate(GateSpec(
    "date_reached", "the date in a form field is today or past (in Sweden), or the field holds no date",
    _date_reached, params={"field": str}, param_check=_field_param,
    sv="Datumet i fältet {field} har inte kommit än.", en="the date in form field {field} has not come yet",
))


# -- loading ------------------------------------------------------------------------------------------


def _typed(value: Any, kind: Any) -> bool:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool) and bool not in kinds:
        return False
    return isinstance(value, kinds)


def _type_name(kind: Any) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(k.__name__ for k in kinds)


def _roles(value: Any, here: str, allowed: tuple[str, ...]) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(x, str) for x in items):
        raise LifecycleError(f"{here}: expected a role or a list of roles")
    for role in items:
        if role not in allowed:
            raise LifecycleError(f"{here}: {role!r} is not a role (one of {', '.join(allowed)})")
    return tuple(items)


def _effects(value: Any, here: str, ctx: PackContext) -> tuple[Effect, ...]:
    if not isinstance(value, list):
        raise LifecycleError(f"{here}: expected a list of effects")
    out = []
    for i, row in enumerate(value):
        where = f"{here}[{i}]"
        if not isinstance(row, dict) or not isinstance(row.get("effect"), str):
            raise LifecycleError(f"{where}.effect: missing")
        spec = EFFECTS.get(row["effect"])
        if spec is None:
            raise LifecycleError(f"{where}.effect: unknown effect {row['effect']!r} "
                                 f"(one of {', '.join(sorted(EFFECTS))})")
        params = {k: v for k, v in row.items() if k != "effect"}
        _params(params, spec.required, spec.optional, where)
        problem = spec.check(params, ctx) if spec.check else None
        if problem:
            raise LifecycleError(f"{where}.{problem}")
        out.append(Effect(spec.name, params))
    return tuple(out)


def _params(params: Mapping[str, Any], required: Mapping[str, Any], optional: Mapping[str, Any],
            where: str) -> None:
    for key in required:
        if key not in params:
            raise LifecycleError(f"{where}.{key}: missing")
    for key, value in params.items():
        kind = required.get(key, optional.get(key))
        if kind is None:
            raise LifecycleError(f"{where}.{key}: unknown key")
        if not _typed(value, kind):
            raise LifecycleError(f"{where}.{key}: expected {_type_name(kind)}")


def _gates(value: Any, here: str, ctx: PackContext) -> tuple[GateUse, ...]:
    if not isinstance(value, list):
        raise LifecycleError(f"{here}: expected a list of gates")
    out = []
    for i, row in enumerate(value):
        where = f"{here}[{i}]"
        row = {"gate": row} if isinstance(row, str) else row
        if not isinstance(row, dict) or not isinstance(row.get("gate"), str):
            raise LifecycleError(f"{where}.gate: missing")
        spec = GATES.get(row["gate"])
        if spec is None:
            raise LifecycleError(f"{where}.gate: unknown gate {row['gate']!r} (one of {', '.join(sorted(GATES))})")
        override = _roles(row["override_by"], f"{where}.override_by", ACTOR_ROLES) if "override_by" in row else ()
        params = {k: v for k, v in row.items() if k not in GATE_KEYS}
        _params(params, spec.params, {}, where)
        problem = spec.param_check(params, ctx) if spec.param_check else None
        if problem:
            raise LifecycleError(f"{where}.{problem}")
        out.append(GateUse(spec.name, params, override))
    return tuple(out)


def load_lifecycle(data: Mapping[str, Any], where: str, *, templates: set[str],
                   form_fields: set[str] | None = None, form_parties: set[str] | None = None) -> Lifecycle:
    """Check and build the lifecycle declared in ``data`` (the ``[lifecycle]`` table of ``where``)."""
    here = f"{where}: lifecycle"
    for key in data:
        if key not in LIFECYCLE_KEYS:
            raise LifecycleError(f"{here}.{key}: unknown key")
    states_data = data.get("states")
    if not isinstance(states_data, dict) or not states_data:
        raise LifecycleError(f"{here}.states: at least one state is needed")
    transitions_data = data.get("transitions", [])
    if not isinstance(transitions_data, list):
        raise LifecycleError(f"{here}.transitions: expected a list of tables ([[lifecycle.transitions]])")
    for sid in states_data:
        if not _ID.match(sid):
            raise LifecycleError(f"{here}.states.{sid}: state ids are lower-case letters, digits and _")
    events, scheduler_events = set(), set()
    for i, row in enumerate(transitions_data):
        if isinstance(row, dict) and isinstance(row.get("event"), str):
            events.add(row["event"])
            by = _roles(row["by"], f"{here}.transitions[{i}].by", ACTOR_ROLES) if "by" in row else ()
            if "scheduler" in by:
                scheduler_events.add(row["event"])
    ctx = PackContext(
        where=where, states=frozenset(states_data), events=frozenset(events),
        scheduler_events=frozenset(scheduler_events), templates=frozenset(templates),
        form_fields=frozenset(form_fields) if form_fields is not None else None,
        form_parties=frozenset(form_parties) if form_parties is not None else None,
    )

    states: dict[str, State] = {}
    for sid, sdata in states_data.items():
        sh = f"{here}.states.{sid}"
        if not isinstance(sdata, dict):
            raise LifecycleError(f"{sh}: expected a table")
        for key in sdata:
            if key not in STATE_KEYS:
                raise LifecycleError(f"{sh}.{key}: unknown key")
        label = sdata.get("label")
        if not isinstance(label, str) or not label.strip():
            raise LifecycleError(f"{sh}.label: missing")
        is_open = sdata.get("open", True)
        workable = sdata.get("workable", is_open)
        for key, value in (("open", is_open), ("workable", workable)):
            if not isinstance(value, bool):
                raise LifecycleError(f"{sh}.{key}: expected true or false")
        states[sid] = State(sid, label, is_open, workable and is_open,
                            _effects(sdata.get("on_enter", []), f"{sh}.on_enter", ctx))

    initial = data.get("initial")
    if not isinstance(initial, str):
        raise LifecycleError(f"{here}.initial: missing")
    if initial not in states:
        raise LifecycleError(f"{here}.initial: unknown state {initial!r}")
    if not states[initial].open:
        raise LifecycleError(f"{here}.initial: {initial!r} is a closed state")

    transitions = []
    for i, row in enumerate(transitions_data):
        th = f"{here}.transitions[{i}]"
        if not isinstance(row, dict):
            raise LifecycleError(f"{th}: expected a table")
        for key in row:
            if key not in TRANSITION_KEYS:
                raise LifecycleError(f"{th}.{key}: unknown key")
        for key in ("from", "to", "event", "by"):
            if key not in row:
                raise LifecycleError(f"{th}.{key}: missing")
        sources = [row["from"]] if isinstance(row["from"], str) else row["from"]
        if not isinstance(sources, list) or not sources:
            raise LifecycleError(f"{th}.from: expected a state, a list of states, or \"*\"")
        for s in sources:
            if s != ANY_STATE and s not in states:
                raise LifecycleError(f"{th}.from: unknown state {s!r}")
        if row["to"] not in states:
            raise LifecycleError(f"{th}.to: unknown state {row['to']!r}")
        if not isinstance(row["event"], str) or not _ID.match(row["event"]):
            raise LifecycleError(f"{th}.event: must be a lower-case id")
        transitions.append(Transition(
            sources=tuple(sources), to=row["to"], event=row["event"],
            by=_roles(row["by"], f"{th}.by", ACTOR_ROLES),
            gates=_gates(row.get("gates", []), f"{th}.gates", ctx),
            effects=_effects(row.get("effects", []), f"{th}.effects", ctx),
        ))
    lifecycle = Lifecycle(initial=initial, states=states, transitions=tuple(transitions))
    timers = lifecycle.timer_names()
    for e in lifecycle.all_effects():
        if e.name == "cancel_timer" and e.params["name"] not in timers:
            raise LifecycleError(f"{here}: cancel_timer: no timer named {e.params['name']!r} is ever set")
    return lifecycle


# -- the step -----------------------------------------------------------------------------------------


@cache
def _texts() -> dict[str, dict[str, str]]:
    return tomllib.loads(resources.files("rules").joinpath("lifecycle.toml").read_text("utf-8"))


def refusal(code: str, **data: Any) -> Refusal:
    """The refusal ``code`` with its Swedish and English sentences (from ``rules/lifecycle.toml``)."""
    text = _texts().get(code) or {"sv": code, "en": code}
    fill = {k: str(v) for k, v in data.items()}
    return Refusal(code, text["sv"].format_map(_Blank(fill)), text["en"].format_map(_Blank(fill)), data)


class _Blank(dict):
    def __missing__(self, key: str) -> str:
        return ""


def _gate_refusal(gate: GateUse) -> Refusal:
    spec = GATES[gate.name]
    fill = _Blank({k: str(v) for k, v in gate.params.items()})
    return Refusal(f"gate.{gate.name}", spec.sv.format_map(fill) or spec.description,
                   spec.en.format_map(fill) or spec.description, {"gate": gate.name})


def advance(
    facts: TicketFacts,
    event: str,
    actor_role: str,
    lifecycle: Lifecycle,
    now: datetime | None = None,
    *,
    target: str | None = None,
    override: str = "",
) -> Advance | Refusal:
    """Decide one step: which transition ``event`` fired by ``actor_role`` takes, and its effects.

    ``target`` narrows the step to one destination (a handler choosing a status). The first declared
    transition that leaves the ticket's state on ``event`` (towards ``target``), that ``actor_role`` may
    fire and whose gates pass is taken. A gate that fails may be passed by a role in its ``override_by``
    when ``override`` (the reason) is given. Effects: the transition's own, then, when the state changes,
    the new state's ``on_enter``. ``now`` is accepted for gates that compare times (none built in yet).
    """
    if now is not None:
        facts = replace(facts, now=now)
    state = facts.state
    if target is not None and target not in lifecycle.states:
        return refusal("lifecycle.unknown_state", state=target, states=", ".join(lifecycle.states))
    rows = [t for t in lifecycle.transitions
            if t.event == event and t.leaves(state) and (target is None or t.to == target)]
    if not rows:
        return refusal("lifecycle.not_allowed", event=event, state=state, target=target or "")
    permitted = [t for t in rows if t.allows(actor_role)]
    if not permitted:
        return refusal("lifecycle.forbidden", event=event, state=state, target=target or "", role=actor_role)
    first_failure: Refusal | None = None
    for t in permitted:
        overridden = []
        failure = None
        for gate in t.gates:
            if GATES[gate.name].check(facts, gate.params):
                continue
            if override.strip() and (actor_role in gate.override_by
                                     or (actor_role == "admin" and "handler" in gate.override_by)):
                overridden.append(gate.name)
                continue
            failure = _gate_refusal(gate)
            break
        if failure is not None:
            first_failure = first_failure or failure
            continue
        effects = t.effects
        if t.to != state:
            effects = effects + lifecycle.states[t.to].on_enter
        return Advance(state, t.to, event, effects, tuple(overridden))
    assert first_failure is not None
    return first_failure
