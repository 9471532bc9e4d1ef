"""The attestant's one-time link: ``/attest/<token>``. No sign-in: the token is the authority.

A GET only shows the order (the same summary as the request mail, free of personal data) and a form; only a
POST decides (so mail scanners that prefetch links decide nothing). The token works once and expires; a used,
replaced or expired link shows why and changes nothing (410).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, g, redirect, render_template, request, url_for

from intake import approvals
from intake.engine import Engine, TicketError
from intake.mailer import form_of
from intake.store import Store, open_store

#: Endpoints reachable without signing in (CSRF still applies to the POST).
PUBLIC = {"approvals.page"}
#: Swedish words for the approval table on the ticket page (``_approval.html``).
LABELS = {
    "status": {"pending": "Väntar på svar", "approved": "Godkänd", "rejected": "Avslagen", "replaced": "Ersatt",
               "expired": "Ej besvarad i tid", "cancelled": "Makulerad"},
    "decision": {"approve": "Godkänn", "reject": "Avslå"},
    "channel": {"reply": "Svar via e-post", "link": "Länk", "handler": "Handläggare"},
}


def approval_label(section: str, key: str | None) -> str:
    return "" if key is None else LABELS.get(section, {}).get(key, key)


def _summary(routine: Any, ticket: dict[str, Any]) -> list[tuple[str, str]]:
    params = next((e.params for e in routine.lifecycle.all_effects() if e.name == "approval_request"), {})
    fields = form_of(ticket).get("fields") or {}
    schema = routine.form_schema
    out = []
    for field_id in params.get("show", []):
        spec = schema.spec(field_id) if schema is not None else None
        if fields.get(field_id) not in (None, "", []) and spec is not None:
            out.append((spec.label, spec.display(fields[field_id])))
    for column in params.get("show_columns", []):
        spec = schema.spec(column) if schema is not None else None
        values: list[str] = []
        for row in form_of(ticket).get("users") or []:
            cell = row.get(column)
            for v in cell if isinstance(cell, list) else [cell]:
                if v not in (None, "") and str(v) not in values:
                    values.append(str(v))
        if values and spec is not None:
            out.append((spec.label, ", ".join(values)))
    return out


def approvals_blueprint(config: Any, routines: list[Any], settings: Any) -> Blueprint:
    bp = Blueprint("approvals", __name__)
    by_id = {r.id: r for r in routines}

    def store() -> Store:
        if "store" not in g:
            g.store = open_store(config.db_path)  # closed by the app's teardown
        return g.store

    @bp.route("/attest/<token>", methods=["GET", "POST"])
    def page(token: str):
        engine = Engine(store(), routines, settings)
        now = engine.clock()
        token = token.strip().lower()[:64]
        outcome = None
        if request.method == "POST":
            outcome = approvals.decide_by_link(engine, token, request.form.get("decision", ""),
                                               request.form.get("reason", ""), now=now)
        state, approval, ticket = approvals.link_state(store(), token, now)
        if outcome == "ok":
            decision = request.form.get("decision")
            return render_template("attest.html", state="done", decision=decision, ticket=ticket)
        if ticket is None or state != "valid" or outcome not in (None, "no_reason"):
            code = 404 if ticket is None else 410
            return render_template("attest.html", state=outcome or state, ticket=None), code
        routine = by_id.get(ticket["routine"])
        rtype = None
        if routine is not None and ticket.get("request_type"):
            rtype = next((t for t in routine.request_types if t.id == ticket["request_type"]), None)
        return render_template(
            "attest.html", state="open", ticket=ticket, routine=routine, rtype=rtype,
            missing_reason=outcome == "no_reason",
            summary=_summary(routine, ticket) if routine else [], orderer=ticket.get("requester"),
        ), (422 if outcome == "no_reason" else 200)

    @bp.app_context_processor
    def approval_helpers() -> dict[str, Any]:
        return {"approvals_of": lambda ticket_id: store().approvals(ticket_id), "approval_label": approval_label}

    @bp.post("/tickets/<ref>/attestant")
    def change(ref: str):
        try:
            approvals.change_attestant(Engine(store(), routines, settings), ref, request.form.get("address", ""),
                                       actor=g.user.name, role=g.user.role)
            flash("ok.attestant", "ok")
        except TicketError:
            flash("error.attestant", "error")
        return redirect(url_for("ticket", ref=ref))

    @bp.post("/tickets/<ref>/confirm-attest")
    def confirm(ref: str):
        try:
            approvals.confirm_held(Engine(store(), routines, settings), ref, g.user.name)
            flash("ok.confirm_attest", "ok")
        except TicketError:
            flash("error.confirm_attest", "error")
        return redirect(url_for("ticket", ref=ref))

    return bp
