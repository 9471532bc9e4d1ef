"""The health page: last polls, the outbox's trouble (retry or cancel), parked mail, logins (blueprint
``health``)."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, flash, g, redirect, render_template, url_for

from intake.health import health
from intake.web.common import store

bp = Blueprint("health", __name__)


@bp.get("/health")
def page():
    return render_template("health.html", h=health(store()))


@bp.post("/health/outbox/<int:oid>/<any(retry, cancel):action>")
def outbox_action(oid: int, action: str):
    now = datetime.now(UTC).isoformat(timespec="seconds")
    st = store()
    done = (st.retry_outbox if action == "retry" else st.cancel_outbox)(oid, g.user.name, now)
    flash(f"ok.outbox_{action}" if done else f"error.outbox_{action}", "ok" if done else "error")
    return redirect(url_for("health.page"))
