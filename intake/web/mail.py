"""Mail that did not become a ticket: rejected, ignored and held mail, and judging held mail
(blueprint ``mail``)."""

from __future__ import annotations

import json

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for

from intake.desk import TicketError
from intake.web.common import desk, store, visible_sources

VERDICTS = ("rejected", "held", "ignored")

bp = Blueprint("mail", __name__)


@bp.get("/mail")
def index():
    verdict = request.args.get("verdict")
    verdicts = (verdict,) if verdict in VERDICTS else VERDICTS
    rows = [dict(m, reasons=json.loads(m["reasons"] or "[]"))
            for m in store().messages(verdicts=verdicts, sources=visible_sources())]
    return render_template("mail.html", rows=rows, verdict=verdict)


@bp.get("/mail/<int:pk>")
def held(pk: int):
    """One held mail with what the guard found (masked); the whole text only on request, audited."""
    msg = store().message(pk)
    _check_source(msg)
    if msg["verdict"] != "held":
        return render_template("held.html", m=dict(msg, reasons=json.loads(msg["reasons"] or "[]")), view=None)
    view = desk().inspect_held(pk, g.user.name, full_text=request.args.get("text") == "1")
    return render_template("held.html", m=msg, view=view)


@bp.post("/mail/<int:pk>/<any(release, reject):action>")
def action(pk: int, action: str):
    _check_source(store().message(pk))
    try:
        if action == "release":
            ref = desk().release_held(pk, g.user.name)
            flash("ok.release", "ok")
            return redirect(url_for("desk.ticket", ref=ref))
        desk().reject_held(pk, g.user.name)
        flash("ok.reject", "ok")
    except TicketError:
        flash(f"error.{action}", "error")
    return redirect(url_for("mail.index", verdict="held"))


def _check_source(msg: dict) -> None:
    """404 for mail of a desk the user is not given (a handler limited to some desks)."""
    sources = visible_sources()
    if sources is not None and msg["source"] not in sources:
        abort(404)
