"""Checklists in the staff web UI: a ticket's tasks (``_checklist.html``, included on the ticket page),
tick / untick / record a value, an admin's "close anyway" with its reason, each ticket's progress in the
list and open tasks per actor role on the overview.

Runs inside :func:`intake.web.app.create_app` (sign-in, CSRF on every POST and the security headers come
from the app). Every action goes through :class:`intake.checklists.ChecklistDesk` or the ticket desk, so
the lifecycle's gates hold here as on every other path.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, g, redirect, request, url_for

from intake.checklists import ChecklistDesk, annotate
from intake.desk import TicketDesk
from intake.engine import Refused, TicketError
from intake.store import Store, open_store
from intake.web.common import check_desk


def checklist_blueprint(config: Any, routines: list[Any], settings: Any) -> Blueprint:
    bp = Blueprint("checklists", __name__)
    by_id = {r.id: r for r in routines}

    def store() -> Store:
        if "store" not in g:
            g.store = open_store(config.db_path)  # closed by the app's teardown
        return g.store

    @bp.app_context_processor
    def checklist_helpers() -> dict[str, Any]:
        def checklist_for(ticket: dict[str, Any]) -> list[dict[str, Any]]:
            return annotate(store().checklist(ticket["id"]))

        def checklist_progress(rows: list[dict[str, Any]]) -> dict[int, str]:
            found = store().checklist_progress([r["id"] for r in rows])
            return {tid: f"{done}/{total}" for tid, (done, total) in found.items() if total}

        def close_targets(ticket: dict[str, Any], transitions: list[str]) -> list[str]:
            routine = by_id.get(ticket["routine"])
            return [s for s in transitions if routine is not None and not routine.lifecycle.is_open(s)]

        return {"checklist_for": checklist_for, "checklist_progress": checklist_progress,
                "close_targets": close_targets, "open_tasks_by_actor": lambda: store().open_tasks_by_actor()}

    @bp.post("/tickets/<ref>/tasks/<task>/<any(done, undo, value):action>")
    def task_action(ref: str, task: str, action: str):
        check_desk(ref)  # a handler limited to some desks acts only on their tickets
        desk = ChecklistDesk(store(), routines, settings)
        try:
            desk.act(ref, g.user.name, task, action, request.form.get("value", "")[:1000])
            flash(f"ok.task_{action}", "ok")
        except Refused as exc:
            flash(exc.sv, "error")
        except TicketError:
            flash(f"error.task_{action}", "error")
        return redirect(url_for("desk.ticket", ref=ref) + "#checklista")

    @bp.post("/tickets/<ref>/close-anyway")
    def close_anyway(ref: str):
        if not g.user.is_admin:
            abort(403)
        check_desk(ref)
        reason = request.form.get("reason", "").strip()[:2000]
        if not reason:
            flash("error.close_anyway", "error")
            return redirect(url_for("desk.ticket", ref=ref))
        try:
            TicketDesk(store(), routines, settings).set_status(ref, g.user.name, request.form.get("status", ""),
                                                              role="admin", override=reason)
            flash("ok.close_anyway", "ok")
        except Refused as exc:
            flash(exc.sv, "error")
        except TicketError:
            flash("error.status", "error")
        return redirect(url_for("desk.ticket", ref=ref))

    return bp
