"""Staff accounts, for admins only (blueprint ``admin``)."""

from __future__ import annotations

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for

from intake.store import NotFoundError
from intake.web import accounts
from intake.web.common import store

bp = Blueprint("admin", __name__)


@bp.before_request
def admins_only():
    if g.user is None or not g.user.is_admin:
        abort(403)


@bp.route("/admin/users", methods=["GET", "POST"])
def users():
    if request.method == "POST":
        try:
            accounts.add_user(store(), request.form.get("name", "").strip(), request.form.get("password", ""),
                              request.form.get("role", "handler"), actor=g.user.name)
            flash("ok.user_added", "ok")
        except accounts.AccountError:
            flash("error.user_added", "error")
        return redirect(url_for("admin.users"))
    return render_template("users.html", users=accounts.list_users(store()), roles=accounts.ROLES)


@bp.post("/admin/users/<name>/<any(deactivate, activate, role, password):action>")
def user_action(name: str, action: str):
    """Deactivate or reactivate an account, change its role, or set a new password (each audited)."""
    st, actor = store(), g.user.name
    try:
        if name.lower() == actor.lower() and action in ("deactivate", "role"):
            raise accounts.AccountError("an admin cannot lock themselves out")
        if action in ("deactivate", "activate"):
            accounts.set_active(st, name, action == "activate", actor=actor)
        elif action == "role":
            accounts.set_role(st, name, request.form.get("role", ""), actor=actor)
        else:
            accounts.set_password(st, name, request.form.get("password", ""), actor=actor)
        flash(f"ok.user_{action}", "ok")
    except (accounts.AccountError, NotFoundError):
        flash(f"error.user_{action}", "error")
    return redirect(url_for("admin.users"))
