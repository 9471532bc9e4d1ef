"""The one executor of ticket lifecycles: every change of a ticket's state goes through :class:`Engine`.

The poller (a new ticket, a follow-up), the web UI, the CLI and the scheduler's timers all call
:meth:`Engine.fire` (or :meth:`Engine.create_ticket`). It asks the pure
:func:`rules.lifecycle.advance` whether the step is allowed, and carries out the effects it returns
(mail, timers, and whatever else is registered) inside the caller's transaction, together with the
audit events. So a gate holds on every path, and a step and its effects commit or vanish together.

Extending it: an effect named in packs is declared in :mod:`rules.lifecycle` with
``register_effect`` and carried out by a function registered here with :func:`executor`; a gate is
declared with ``register_gate``; facts a gate needs beyond the ticket row come from a function
registered with :func:`fact`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from intake import faults
from intake.decision import Decision
from intake.errors import IntakeError
from intake.mailer import Mailer, form_of
from intake.store import Store
from rules.lifecycle import Advance, Effect, Refusal, TicketFacts, advance, field_date, refusal
from rules.packs import Routine

log = logging.getLogger("intake.engine")

#: Dates in form fields (a start date) mean that day in this zone.
LOCAL_TZ = ZoneInfo("Europe/Stockholm")
#: Events a handler fires that need no "why" in the audit trail.
_PLAIN_EVENTS = ("set_status", "assign")


class TicketError(IntakeError, ValueError):
    """An action that is not allowed in the ticket's (or message's) present state."""


class Refused(TicketError):
    """A lifecycle step that was refused: ``code`` is stable; ``sv`` is the sentence shown to staff."""

    def __init__(self, ref: str, found: Refusal):
        super().__init__(f"{ref}: {found.en}")
        self.ref = ref
        self.code = found.code
        self.sv = found.sv
        self.data = dict(found.data)


@dataclass
class EffectContext:
    """What an effect's executor gets: the engine, the ticket (as it is after the step), who fired it."""

    engine: Engine
    routine: Routine
    ticket: dict[str, Any]
    actor: str
    role: str
    payload: Mapping[str, Any]
    now: datetime
    state: str  # the ticket's state after the step
    #: Shared by the effects of one step, in order: ``mail_context`` (a dict) is added to the template context
    #: of the mails after it (an approval link); each queued mail is appended to ``mails`` ({kind, outbox}).
    shared: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Fired:
    """The ticket after :meth:`Engine.fire`, and the step taken (None when an optional event moved nothing)."""

    ticket: dict[str, Any]
    step: Advance | None = None
    effects_done: list[str] = field(default_factory=list)


Executor = Callable[[EffectContext, Mapping[str, Any]], Any]
FactLoader = Callable[[Store, Mapping[str, Any]], Any]
EXECUTORS: dict[str, Executor] = {}
FACTS: dict[str, FactLoader] = {}


def executor(name: str) -> Callable[[Executor], Executor]:
    """Register the function that carries out the effect ``name`` (declared in :mod:`rules.lifecycle`)."""

    def register(fn: Executor) -> Executor:
        EXECUTORS[name] = fn
        return fn

    return register


def fact(name: str) -> Callable[[FactLoader], FactLoader]:
    """Register a loader of ``TicketFacts.extra[name]`` (e.g. open checklist tasks) for gates to read."""

    def register(fn: FactLoader) -> FactLoader:
        FACTS[name] = fn
        return fn

    return register


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


class Engine:
    """Creates tickets and fires lifecycle events on one store."""

    def __init__(
        self,
        store: Store,
        routines: list[Routine],
        settings: Any,
        *,
        rate_limit_per_hour: int = 5,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ):
        self.store = store
        self.routines = routines
        self.by_id = {r.id: r for r in routines}
        self.settings = settings
        self.clock = clock
        self.mailer = Mailer(store, routines, settings, rate_limit_per_hour=rate_limit_per_hour)

    # -- looking --------------------------------------------------------------------------------

    def routine(self, ticket: Mapping[str, Any]) -> Routine:
        try:
            return self.by_id[ticket["routine"]]
        except KeyError:
            raise TicketError(f"{ticket['ref']}: routine {ticket['routine']!r} is not enabled") from None

    def facts(self, ticket: Mapping[str, Any]) -> TicketFacts:
        form = form_of(ticket)
        return TicketFacts(
            state=ticket["status"], routine=ticket["routine"], request_type=ticket.get("request_type"),
            assignee=ticket.get("assignee"), requester=ticket.get("requester"),
            fields=dict(form.get("fields") or {}),
            extra={name: load(self.store, ticket) for name, load in FACTS.items()},
        )

    def targets(self, ticket: Mapping[str, Any], role: str, event: str = "set_status") -> list[str]:
        """The states ``role`` may choose for the ticket with ``event`` (for menus; gates apply on firing)."""
        routine = self.by_id.get(ticket["routine"])
        return routine.lifecycle.targets(ticket["status"], event, role) if routine is not None else []

    # -- creating -------------------------------------------------------------------------------

    def create_ticket(self, decision: Decision, message_pk: int, now: datetime) -> tuple[int, str]:
        """The ticket of an accepted mail, in its lifecycle's initial state (whose effects run).
        Call inside the recording transaction."""
        store = self.store
        routine = self.by_id[decision.routine]
        now_iso = _iso(now)
        ref = store.next_ref(routine.ref_prefix, now.year)
        form = decision.form
        state = routine.lifecycle.initial
        ticket_id = store.insert_ticket({
            "ref": ref,
            "routine": decision.routine,
            "request_type": decision.request_type,
            "queue": decision.queue,
            "status": state,
            "requester": decision.sender,
            "subject": decision.subject,
            "form": json.dumps(form.to_dict(), ensure_ascii=False) if form is not None else None,
            "user_count": len(form.users) if form is not None else 0,
            "created_at": now_iso,
            "updated_at": now_iso,
        })
        att = decision.form_attachment
        if att is not None:
            store.add_attachment({"ticket_id": ticket_id, "filename": att.filename,
                                  "content_type": att.content_type, "size": att.size, "data": att.data})
        store.update_message(message_pk, {"ticket_id": ticket_id})
        store.add_event("ticket_created", ticket_id=ticket_id, message_id=message_pk, at=now_iso,
                        data={"ref": ref, "queue": decision.queue, "request_type": decision.request_type})
        effects = routine.lifecycle.states[state].on_enter
        if effects:
            self._run(effects, routine, store.ticket_by_id(ticket_id), "bot", "bot", {}, now)
        return ticket_id, ref

    # -- firing ---------------------------------------------------------------------------------

    def fire(
        self,
        ticket: str | Mapping[str, Any],
        event: str,
        *,
        actor: str,
        role: str,
        target: str | None = None,
        payload: Mapping[str, Any] | None = None,
        override: str = "",
        optional: bool = False,
        now: datetime | None = None,
        changes: Mapping[str, Any] | None = None,
    ) -> Fired:
        """Fire ``event`` on a ticket (by ref or row) as ``actor`` in ``role``, in one transaction
        (or the caller's). ``target`` is the state a handler chose; ``payload`` reaches the effects
        (``note`` for the completion mail); ``override`` is the reason for passing an overridable gate;
        ``changes`` are column updates made with the step (an assignment). With ``optional`` an event
        that no transition takes moves nothing instead of raising :class:`Refused`."""
        now = now or self.clock()
        now_iso = _iso(now)
        payload = payload or {}
        with self.store.transaction():
            row = self.store.ticket(ticket if isinstance(ticket, str) else ticket["ref"])
            if changes:
                self.store.update_ticket(row["id"], dict(changes))
                row = self.store.ticket_by_id(row["id"])
            routine = self.routine(row)
            lifecycle = routine.lifecycle
            step = advance(self.facts(row), event, role, lifecycle, now, target=target, override=override)
            if isinstance(step, Refusal):
                if optional and step.code == "lifecycle.not_allowed":
                    if changes:
                        self.store.update_ticket(row["id"], {"updated_at": now_iso})
                    return Fired(self.store.ticket_by_id(row["id"]))
                raise Refused(row["ref"], step)
            update: dict[str, Any] = {"updated_at": now_iso}
            if step.changed:
                update["status"] = step.new_state
                update["closed_at"] = None if lifecycle.is_open(step.new_state) else now_iso
                self.store.cancel_timers(row["id"], set_in_state=step.old_state)
            self.store.update_ticket(row["id"], update)
            if step.changed:
                data: dict[str, Any] = {"from": step.old_state, "to": step.new_state}
                if event not in _PLAIN_EVENTS:
                    data["why"] = "follow-up" if event == "followup" else event
                self.store.add_event("status_changed", actor=actor, ticket_id=row["id"], at=now_iso, data=data)
            if step.overridden:
                note_id = self.store.add_note(row["id"], actor, override.strip(), now_iso)
                self.store.add_event("gate_overridden", actor=actor, ticket_id=row["id"], at=now_iso,
                                     data={"gates": list(step.overridden), "note": note_id, "event": event})
            ticket_row = self.store.ticket_by_id(row["id"])
            done = self._run(step.effects, routine, ticket_row, actor, role, payload, now)
            return Fired(self.store.ticket_by_id(row["id"]), step, done)

    def _run(self, effects: tuple[Effect, ...], routine: Routine, ticket: dict[str, Any], actor: str, role: str,
             payload: Mapping[str, Any], now: datetime) -> list[str]:
        done: list[str] = []
        shared: dict[str, Any] = {}
        for effect in effects:
            run = EXECUTORS.get(effect.name)
            if run is None:  # the pack loader only accepts registered names; an executor must exist too
                raise TicketError(f"{ticket['ref']}: effect {effect.name!r} has no executor")
            run(EffectContext(self, routine, ticket, actor, role, payload, now, ticket["status"], shared),
                effect.params)
            done.append(effect.name)
        return done

    # -- timers ---------------------------------------------------------------------------------

    def run_due_timers(self) -> int:
        """Fire every due timer through the lifecycle; returns how many fired.

        Each timer is claimed (marked fired) in the same transaction as the step it fires and that
        step's effects: a crash before the commit leaves it pending, after it, fired; never twice.
        A timer whose event no transition takes any more is still marked fired (and noted).
        """
        now = self.clock()
        fired = 0
        for timer in self.store.due_timers(_iso(now)):
            with self.store.transaction():
                if not self.store.claim_timer(timer["id"], _iso(now)):
                    continue
                ticket = self.store.ticket_by_id(timer["ticket_id"])
                self.store.add_event("timer_fired", actor="scheduler", ticket_id=ticket["id"], at=_iso(now),
                                     data={"timer": timer["name"], "event": timer["event"]})
                try:
                    self.fire(ticket, timer["event"], actor="scheduler", role="scheduler",
                              payload={"timer": timer["name"]}, optional=True, now=now)
                except TicketError as exc:
                    self.store.add_event("timer_refused", actor="scheduler", ticket_id=ticket["id"], at=_iso(now),
                                         data={"timer": timer["name"], "code": getattr(exc, "code", "error")})
                faults.point("timer-before-commit")
            faults.point("timer-after-commit")
            fired += 1
        if fired:
            log.info("timers: %s fired", fired)
        return fired


def refused(ref: str, code: str, **data: Any) -> Refused:
    """A :class:`Refused` for ``code`` of ``rules/lifecycle.toml`` (for checks made outside ``advance``)."""
    return Refused(ref, refusal(code, **data))


# -- the built-in executors -----------------------------------------------------------------------------


@executor("mail")
def _mail(ctx: EffectContext, params: Mapping[str, Any]) -> int | None:
    outbox_id = ctx.engine.mailer.queue_effect(params, routine=ctx.routine, ticket=ctx.ticket, actor=ctx.actor,
                                               payload=ctx.payload, now=ctx.now,
                                               extra=ctx.shared.get("mail_context", {}))
    ctx.shared.setdefault("mails", []).append({"kind": params.get("kind", params["template"]), "outbox": outbox_id})
    return outbox_id


def add_working_days(start: datetime, days: int) -> datetime:
    """``start`` plus ``days`` working days (Monday to Friday; public holidays are not known)."""
    moment = start
    while days > 0:
        moment += timedelta(days=1)
        if moment.astimezone(LOCAL_TZ).weekday() < 5:
            days -= 1
    return moment


def timer_due(params: Mapping[str, Any], ticket: Mapping[str, Any], now: datetime) -> datetime:
    """When a ``timer`` effect fires: after N days/hours/working days, or at 00:00 local time on the
    date in a form field, moved by ``offset_days`` (at once when that field holds no date)."""
    if "after_days" in params:
        return now + timedelta(days=params["after_days"])
    if "after_hours" in params:
        return now + timedelta(hours=params["after_hours"])
    if "after_working_days" in params:
        return add_working_days(now, params["after_working_days"])
    day = field_date((form_of(ticket).get("fields") or {}).get(params["at_field"]))
    if day is None:
        return now
    day += timedelta(days=params.get("offset_days", 0))
    return datetime.combine(day, time(0, 0), tzinfo=LOCAL_TZ)


@executor("timer")
def _timer(ctx: EffectContext, params: Mapping[str, Any]) -> int:
    due = timer_due(params, ctx.ticket, ctx.now)
    return ctx.engine.store.set_timer(ctx.ticket["id"], params["name"], params["event"], _iso(due), ctx.state,
                                      bool(params.get("keep", False)), _iso(ctx.now))


@executor("cancel_timer")
def _cancel_timer(ctx: EffectContext, params: Mapping[str, Any]) -> int:
    return ctx.engine.store.cancel_timers(ctx.ticket["id"], names=[params["name"]])


@executor("register")
def _register(ctx: EffectContext, params: Mapping[str, Any]) -> list[int]:
    from pathlib import Path

    from intake.register import RegisterError, apply_done_ticket, open_keys

    key_file = getattr(ctx.engine.settings, "register_key_file", "")
    if not key_file:
        return []
    store = ctx.engine.store
    try:
        keys = open_keys(store, Path(key_file))
        return apply_done_ticket(store, ctx.ticket["ref"], ctx.engine.by_id, ctx.now, ctx.actor, keys=keys)
    except RegisterError as exc:
        # A lost or wrong key file must not stop handlers closing tickets; the ticket shows it, and the
        # entries can be written later with `intake register apply REF`.
        log.error("register: %s not written: %s", ctx.ticket["ref"], exc)
        store.add_event("register_failed", actor=ctx.actor, ticket_id=ctx.ticket["id"], at=_iso(ctx.now),
                        data={"error": type(exc).__name__})
        return []


def timers_job(store: Store, routines: list[Routine], settings: Any) -> Callable[[], int]:
    """The scheduler's job: run due timers on ``store`` (``intake run`` runs it every minute)."""
    return Engine(store, routines, settings).run_due_timers
from intake import checklists as _checklists  # noqa: E402,F401  (registers start_checklist, its gate fact, mail values)
