"""The staff web UI: a server-rendered Flask app over the queue store (``intake serve``).

Every page but the login page and static files needs a signed-in user (local account, or a
trusted reverse proxy's user header when configured). Every POST carries the session's CSRF token.
Every look at a ticket's personal data is written to the audit trail.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import secrets
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, abort, g, redirect, render_template, request, session, url_for
from werkzeug.exceptions import HTTPException
from werkzeug.routing import IntegerConverter

from intake.config import Config
from intake.store import NotFoundError, open_store
from intake.web import accounts
from intake.web.approvals import PUBLIC as APPROVAL_PAGES
from intake.web.approvals import approvals_blueprint
from intake.web.common import WebContext, close_store, event_summary, filesize, local_time, reason_text, store
from intake.web.labels import label, labels

log = logging.getLogger("intake.web")

PUBLIC_ENDPOINTS = {"login", "static", *APPROVAL_PAGES}

CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'")


def _secret_key(config: Config) -> str:
    web = config["web"]
    key = web["secret_key"] or config.env.get(web["secret_key_env"], "")
    if not key:
        log.warning("no web.secret_key and $%s is empty: using a random key, sessions end on restart",
                    web["secret_key_env"])
        key = secrets.token_hex(32)
    return key


def create_app(config: Config, *, routines: list[Any] | None = None, settings: Any = None) -> Flask:
    """The app for ``config``'s store; ``routines``/``settings`` default to those the config names."""
    if routines is None:
        from intake.app import routines_for

        routines = routines_for(config)
    if settings is None:
        from intake.pipeline import Settings

        settings = Settings.from_config(config)
    web = config["web"]
    db_path = config.db_path
    open_store(db_path).db.conn.close()  # create and migrate once, before the first request

    app = Flask(__name__)
    app.url_map.converters["int"] = _RowId  # before any route: ids beyond SQLite's range are simply not found
    app.config.update(
        SECRET_KEY=_secret_key(config),
        SESSION_COOKIE_NAME="intake_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=bool(web["secure_cookies"]),
        PERMANENT_SESSION_LIFETIME=timedelta(hours=web["session_hours"]),
        MAX_CONTENT_LENGTH=1024 * 1024,
    )
    app.jinja_env.autoescape = True  # every template, whatever its name
    # Statuses are each pack's lifecycle states, labelled by the pack (README: "Lifecycle").
    statuses = list(dict.fromkeys(s for r in routines for s in r.lifecycle.states))
    state_labels = {s: r.lifecycle.label(s) for r in reversed(routines) for s in r.lifecycle.states}

    def staff_label(section: str, key: str | None) -> str:
        if section == "status" and key in state_labels:
            return state_labels[key]
        return label(section, key)

    app.jinja_env.globals.update(label=staff_label, labels=labels, csrf_token=_csrf_token, STATUSES=statuses)
    app.jinja_env.filters.update(local=local_time, event_summary=lambda e: event_summary(e, staff_label),
                                 reason_text=reason_text, filesize=filesize)
    from intake.app import desks_of

    # Several mailboxes: each is a desk; a handler may be limited to some (``intake user desks``).
    app.extensions["intake"] = WebContext(config, routines, settings, db_path, statuses,
                                          desks=desks_of(config, routines))
    app.teardown_appcontext(close_store)
    proxies = [ipaddress.ip_network(p, strict=False) for p in web["trusted_proxies"]]

    def from_proxy() -> bool:
        try:
            addr = ipaddress.ip_address(request.remote_addr or "")
        except ValueError:
            return False
        return any(addr in net for net in proxies)

    def current_user() -> accounts.User | None:
        header = web["trusted_proxy_header"]
        if header and proxies and from_proxy() and request.headers.get(header):
            return accounts.get_user(store(), request.headers[header].strip())
        name = session.get("user")
        if not name:
            return None
        if session.get("stamp") != accounts.session_stamp(store(), name) or not accounts.session_live(
                store(), session.get("sid"), name, app.permanent_session_lifetime):
            session.clear()  # logged out, password changed or account disabled since this session began
            return None
        return accounts.get_user(store(), name)

    @app.before_request
    def guard():
        g.user = None
        if request.endpoint in PUBLIC_ENDPOINTS:
            if request.method == "POST":
                _check_csrf()
            return None
        user = current_user()
        if user is None:
            nxt = request.full_path.rstrip("?") if request.method == "GET" else None
            return redirect(url_for("login", next=nxt) if nxt and nxt != "/" else url_for("login"))
        g.user = user
        if request.method not in ("GET", "HEAD"):
            _check_csrf()
        return None

    @app.after_request
    def headers(resp):
        resp.headers["Content-Security-Policy"] = CSP
        resp.headers["X-Frame-Options"] = "DENY"
        resp.headers["Referrer-Policy"] = "no-referrer"
        resp.headers["X-Content-Type-Options"] = "nosniff"
        resp.headers["Cross-Origin-Opener-Policy"] = "same-origin"
        if request.endpoint != "static":
            resp.headers["Cache-Control"] = "no-store"
        return resp

    @app.errorhandler(NotFoundError)
    def not_found(_exc):
        return render_template("error.html", code=404), 404

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        return render_template("error.html", code=exc.code), exc.code

    # -- signing in -----------------------------------------------------------------------------

    @app.route("/login", methods=["GET", "POST"])
    def login():
        error, status = None, 200
        if request.method == "POST":
            name = request.form.get("username", "").strip()[:64]
            password = request.form.get("password", "")
            ip = request.remote_addr or "?"
            if accounts.throttled(store(), name, ip):
                error, status = "throttled", 429
            else:
                user = accounts.authenticate(store(), name, password, ip)
                if user is None:
                    error, status = ("throttled", 429) if accounts.throttled(store(), name, ip) else ("bad", 401)
                else:
                    session.clear()
                    session.permanent = True
                    session["user"] = user.name
                    session["stamp"] = accounts.session_stamp(store(), user.name)
                    session["sid"] = accounts.start_session(store(), user.name)
                    session["csrf"] = secrets.token_urlsafe(32)
                    store().add_event("signed_in", actor=user.name, data={})
                    return redirect(_safe_next(request.args.get("next")) or url_for("desk.index"))
        return render_template("login.html", error=error), status

    @app.post("/logout")
    def logout():
        accounts.end_session(store(), session.get("sid"))  # a copied cookie must not outlive the logout
        session.clear()
        return redirect(url_for("login"))

    for blueprint in blueprints():
        app.register_blueprint(blueprint)
    from intake.web.register import register_blueprint  # the access register's pages under /register

    app.register_blueprint(register_blueprint(config, routines))
    from intake.web.orderers import orderers_blueprint  # the orderer register's pages under /orderers (admins)

    app.register_blueprint(orderers_blueprint(config, routines))
    from intake.web.checklists import checklist_blueprint  # checklists: tasks, their actions, progress

    app.register_blueprint(checklist_blueprint(config, routines, settings))

    app.register_blueprint(approvals_blueprint(config, routines, settings))  # the attestant's one-time link
    app.url_build_error_handlers.append(_legacy_endpoint)

    return app


# -- helpers ---------------------------------------------------------------------------------------


class _RowId(IntegerConverter):
    """``<int:...>`` in this app: a database row id, so at most SQLite's largest integer (else 404, not 500)."""

    def __init__(self, map, *args: Any, **kwargs: Any) -> None:  # noqa: A002 - Werkzeug's parameter name
        kwargs.setdefault("max", 2**63 - 1)
        super().__init__(map, *args, **kwargs)


def _csrf_token() -> str:
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    return session["csrf"]


def _check_csrf() -> None:
    sent = request.form.get("csrf_token") or request.headers.get("X-CSRF-Token") or ""
    expected = session.get("csrf") or ""
    if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
        abort(400)


def _safe_next(target: str | None) -> str | None:
    """Only a path on this site: never "//evil.example", "https://…", or a path that becomes one once a
    browser or Werkzeug drops the whitespace and control characters in it ("/\t/evil.example")."""
    if not target or any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 or ch == "\\" for ch in target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/") or parts.path.startswith("//"):
        return None
    return target


def blueprints() -> list[Any]:
    """The UI's areas, each in its own module."""
    from intake.web import admin, desk, health, mail, overview

    return [desk.bp, mail.bp, overview.bp, admin.bp, health.bp]


# Endpoint names from before the UI was split into blueprints, for templates written against them.
LEGACY_ENDPOINTS = {
    "index": "desk.index", "tickets": "desk.tickets", "ticket": "desk.ticket", "attachment": "desk.attachment",
    "ticket_action": "desk.ticket_action", "mail": "mail.index", "mail_action": "mail.action",
    "overview": "reports.overview", "export": "reports.export", "users": "admin.users",
}


def _legacy_endpoint(error: Exception, endpoint: str, values: dict[str, Any]) -> str:
    if endpoint in LEGACY_ENDPOINTS:
        values = {k: v for k, v in values.items() if not k.startswith("_")}
        return url_for(LEGACY_ENDPOINTS[endpoint], **values)
    raise error
