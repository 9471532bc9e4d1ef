"""Checklists on tickets: the ``start_checklist`` effect, the facts the ``checklist_complete`` gate reads,
the checklist in mail, and the handlers' actions (tick, untick, record a value).

The pure parts (templates, conditions, dependencies) are :mod:`rules.checklists`. Here they meet the
store: a ticket's checklist is copied from its pack when the ticket is created, so a later change to the
pack leaves work in progress alone. Every action is one transaction with an audit event (the task's id
and the action, never a recorded value). Closing is not decided here: the pack puts the gate
``checklist_complete`` on its transitions into closed states, and :class:`intake.engine.Engine` (the one
place that changes tickets) refuses them while a required task is open.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, time, timedelta
from typing import Any

from intake.engine import LOCAL_TZ, EffectContext, Engine, TicketError, executor, fact, refused
from intake.mailer import form_of, mail_context
from intake.store import NotFoundError, Store
from rules.checklists import OPEN_FACT, Progress, blocked_by, dependants_done, instantiate, progress
from rules.lifecycle import field_date
from rules.packs import Routine

#: The actions on one task: tick, untick, record a value.
ACTIONS = ("done", "undo", "value")
#: The longest value a handler may record (an RSID, an order number).
MAX_VALUE = 200


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


@executor("start_checklist")
def _start_checklist(ctx: EffectContext, _params: Mapping[str, Any]) -> int:
    """Copy the checklist of the ticket's request type onto it (once), and set the checklist's timers."""
    store, ticket = ctx.engine.store, ctx.ticket
    lists = ctx.routine.checklists
    if lists is None or store.checklist(ticket["id"]):
        return 0
    templates = lists.for_type(ticket.get("request_type"))
    if not templates:
        return 0
    form = form_of(ticket)
    rows = instantiate(templates, form, ctx.routine.form_schema)
    store.add_checklist(ticket["id"], rows)
    store.add_event("checklist_started", actor=ctx.actor, ticket_id=ticket["id"], at=_iso(ctx.now),
                    data={"tasks": len(rows), "applicable": sum(r["state"] == "open" for r in rows)})
    for timer in lists.timers:
        if timer.request_type != ticket.get("request_type"):
            continue
        day = field_date((form.get("fields") or {}).get(timer.at_field))
        if day is None:
            continue
        due = datetime.combine(day + timedelta(days=timer.offset_days), time(0, 0), tzinfo=LOCAL_TZ)
        store.set_timer(ticket["id"], timer.name, timer.event, _iso(due), ctx.state, True, _iso(ctx.now))
    return len(rows)


@fact(OPEN_FACT)
def _open_required(store: Store, ticket: Mapping[str, Any]) -> int:
    return store.open_required_tasks(ticket["id"])


@mail_context("checklist")
def _checklist_in_mail(store: Store, ticket: Mapping[str, Any]) -> Progress:
    """Templates see ``checklist``: ``planned_titles``, ``done_titles``, ``done``, ``total`` (titles only)."""
    return progress(store.checklist(ticket["id"]))


class ChecklistDesk:
    """Handlers' actions on tickets' checklists (web UI and CLI)."""

    def __init__(self, store: Store, routines: list[Routine], settings: Any, *,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)):
        self.store = store
        self.clock = clock
        self.engine = Engine(store, routines, settings, clock=clock)

    def tasks(self, ref: str) -> list[dict[str, Any]]:
        """The ticket's tasks, each with ``blocked_by`` (open predecessors) and ``shown`` (values of the
        tasks it shows: label and value)."""
        ticket = self.store.ticket(ref)
        return annotate(self.store.checklist(ticket["id"]))

    def act(self, ref: str, user: str, task: str, action: str, value: str = "") -> dict[str, Any]:
        """Tick (``done``), untick (``undo``) or record a value (``value``) on one task; returns the task.

        Refused (:class:`intake.engine.Refused`) on a closed ticket, a task waiting for its predecessors,
        a task that does not apply, or unticking a task later tasks were ticked after.
        """
        if action not in ACTIONS:
            raise TicketError(f"{ref}: unknown checklist action {action!r} (one of {', '.join(ACTIONS)})")
        now = self.clock()
        with self.store.transaction():
            ticket = self.store.ticket(ref)
            routine = self.engine.routine(ticket)
            if not routine.lifecycle.is_open(ticket["status"]):
                raise refused(ref, "lifecycle.closed", state=ticket["status"])
            tasks = self.store.checklist(ticket["id"])
            try:
                row = self.store.checklist_task(ticket["id"], task)
            except NotFoundError:
                raise refused(ref, "checklist.unknown_task", task=task) from None
            changes: dict[str, Any] = {}
            if action == "done":
                if row["state"] != "open":
                    raise refused(ref, "checklist.not_open", task=task)
                waiting = blocked_by(row, tasks)
                if waiting:
                    raise refused(ref, "checklist.blocked", task=task, waiting=", ".join(_titles(tasks, waiting)))
                changes = {"state": "done", "done_by": user, "done_at": _iso(now)}
            elif action == "undo":
                if row["state"] != "done":
                    raise refused(ref, "checklist.not_done", task=task)
                later = dependants_done(task, tasks)
                if later:
                    raise refused(ref, "checklist.dependants_done", task=task,
                                  waiting=", ".join(_titles(tasks, later)))
                changes = {"state": "open", "done_by": None, "done_at": None}
            else:
                if not row["record_label"]:
                    raise refused(ref, "checklist.no_value", task=task)
                text = " ".join(value.split())[:MAX_VALUE]
                if not text:
                    raise TicketError(f"{ref}: empty value")
                changes = {"value": text}
            self.store.update_checklist_task(row["id"], changes)
            self.store.update_ticket(ticket["id"], {"updated_at": _iso(now)})
            # The task and the action; a recorded value stays in the checklist row, never in the audit trail.
            self.store.add_event("checklist_task", actor=user, ticket_id=ticket["id"], at=_iso(now),
                                 data={"task": task, "action": action})
            return self.store.checklist_task(ticket["id"], task)


def _titles(tasks: list[dict[str, Any]], ids: list[str]) -> list[str]:
    by_id = {t["task"]: t["title"] for t in tasks}
    return [by_id.get(i, i) for i in ids]


def annotate(tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Tasks with ``blocked_by`` (titles of open predecessors) and ``shown`` ([(label, value)] recorded by
    the tasks each one shows)."""
    by_id = {t["task"]: t for t in tasks}
    out = []
    for t in tasks:
        shown = [(by_id[s]["record_label"], by_id[s]["value"]) for s in t["shows"]
                 if s in by_id and by_id[s].get("value")]
        out.append(dict(t, blocked_by=_titles(tasks, blocked_by(t, tasks)) if t["state"] == "open" else [],
                        shown=shown))
    return out
