"""The staff web UI: a server-rendered Flask app over the queue store (``intake serve``).

Every page but the login page and static files needs a signed-in user (local account, or a
trusted reverse proxy's user header when configured). Every POST carries the session's CSRF token.
Every look at a ticket's personal data is written to the audit trail.
"""

from __future__ import annotations

import hmac
import io
import ipaddress
import json
import logging
import re
import secrets
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from flask import Flask, abort, flash, g, redirect, render_template, request, send_file, session, url_for
from werkzeug.exceptions import HTTPException
from werkzeug.routing import IntegerConverter

from intake.config import Config
from intake.desk import Refused, TicketDesk, TicketError
from intake.reports import SORTABLE, Filters, export_xlsx, search, stats
from intake.store import NotFoundError, Store, open_store
from intake.web import accounts
from intake.web.approvals import PUBLIC as APPROVAL_PAGES
from intake.web.approvals import approvals_blueprint
from intake.web.labels import label, labels
from rules.reasons import catalogue

log = logging.getLogger("intake.web")

PER_PAGE = 50
MAX_ROW_ID = 2**63 - 1  # SQLite's largest integer: a larger id in a query is a bad request
PUBLIC_ENDPOINTS = {"login", "static", *APPROVAL_PAGES}
TZ = ZoneInfo("Europe/Stockholm")

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
    app.jinja_env.filters.update(local=_local_time, event_summary=lambda e: _event_summary(e, staff_label),
                                 reason_text=_reason_text, filesize=_filesize)
    proxies = [ipaddress.ip_network(p, strict=False) for p in web["trusted_proxies"]]
    by_id = {r.id: r for r in routines}

    def store() -> Store:
        if "store" not in g:
            g.store = open_store(db_path)
        return g.store

    def desk() -> TicketDesk:
        return TicketDesk(store(), routines, settings)

    # -- desks (several mailboxes): a handler may be limited to some (``intake user desks``) --------------
    from intake.app import desks_of

    desks = desks_of(config, routines)

    def visible_sources(only: str | None = None) -> tuple[str, ...] | None:
        """The sources whose tickets the user may see (``None``: all), narrowed to desk ``only`` if given."""
        allowed = store().user_desks(g.user.name)
        chosen = [d for d in desks if (not allowed or d.name in allowed) and (only is None or d.name == only)]
        if not allowed and only is None:
            return None
        return tuple(d.source for d in chosen)

    def check_desk(ref: str) -> None:
        """404 for a ticket of a desk the user is not given (as if it did not exist)."""
        sources = visible_sources()
        if sources is None:
            return
        if store().ticket_source(store().ticket(ref)["id"]) not in sources:
            abort(404)

    @app.teardown_appcontext
    def close_store(_exc: BaseException | None) -> None:
        st = g.pop("store", None)
        if st is not None:
            st.db.conn.close()

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
                    return redirect(_safe_next(request.args.get("next")) or url_for("index"))
        return render_template("login.html", error=error), status

    @app.post("/logout")
    def logout():
        accounts.end_session(store(), session.get("sid"))  # a copied cookie must not outlive the logout
        session.clear()
        return redirect(url_for("login"))

    # -- queues and tickets -----------------------------------------------------------------------

    @app.get("/")
    def index():
        counts: dict[tuple[str, str, str, str], int] = {}
        for r in store().status_counts_by_source():
            key = (r["source"] or "", r["routine"], r["queue"] or "", r["status"])
            counts[key] = counts.get(key, 0) + r["n"]
        allowed = store().user_desks(g.user.name)
        groups = []
        for d in desks:
            if allowed and d.name not in allowed:
                continue
            # With one mailbox every ticket is its desk's (also those from before it was named).
            mine = (lambda source, d=d: True) if len(desks) == 1 else (lambda source, d=d: source == d.source)
            queues = []
            for routine in routines:
                if routine.id not in d.routines:
                    continue
                for qid, qname in routine.queues.items():
                    queues.append({"routine": routine.id, "id": qid, "name": qname, "counts": {
                        st: sum(n for (src, rid, q, s2), n in counts.items()
                                if mine(src) and rid == routine.id and q == qid and s2 == st)
                        for st in statuses}})
            groups.append({"name": d.name, "desk_name": d.desk_name, "queues": queues,
                           "only": len(desks) > 1})
        held = store().held_count()
        return render_template("queues.html", groups=groups, held=held)

    def filters_from_args() -> Filters:
        args = request.args

        def day(key: str) -> str | None:
            value = args.get(key, "").strip()
            if not value:
                return None
            try:
                parsed = date.fromisoformat(value) if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value) else None
            except ValueError:
                parsed = None
            if parsed is None or parsed >= date.max:  # "to" searches up to the next day
                abort(400)
            return value

        return Filters(queue=args.get("queue") or None, status=args.get("status") or None,
                       routine=args.get("routine") or None, request_type=args.get("request_type") or None,
                       date_from=day("from"), date_to=day("to"), assignee=args.get("assignee") or None,
                       sources=visible_sources(args.get("desk") or None))

    @app.get("/tickets")
    def tickets():
        f = filters_from_args()
        sort = request.args.get("sort", "created_at")
        sort = sort if sort in SORTABLE else "created_at"
        descending = request.args.get("order", "desc") != "asc"
        after = request.args.get("after", type=int)
        before = request.args.get("before", type=int)
        if any(v is not None and not 0 <= v <= MAX_ROW_ID for v in (after, before)):
            abort(400)  # a ticket id SQLite cannot hold is a bad request, not a database error
        try:
            rows, nav = search(store(), f, sort=sort, descending=descending, after=after, before=before,
                               per_page=PER_PAGE)
        except ValueError:
            abort(400)
        args = {k: v for k, v in request.args.items() if k not in ("page", "after", "before", "sort", "order") and v}
        return render_template("tickets.html", rows=rows, nav=nav, sort=sort,
                               descending=descending, args=args, filters=f, routines=routines,
                               by_id=by_id, sortable=SORTABLE)

    @app.get("/tickets/export.xlsx")
    def export():
        rows, _ = search(store(), filters_from_args(), per_page=None)
        store().add_event("exported", actor=g.user.name, data={"tickets": len(rows)})
        xlsx = export_xlsx(rows, lambda row: _state_label(by_id, row))
        return send_file(io.BytesIO(xlsx), as_attachment=True, download_name="arenden.xlsx",
                         mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")

    @app.get("/tickets/<ref>")
    def ticket(ref: str):
        check_desk(ref)
        d = desk()
        t = d.view(ref, g.user.name)
        st = store()
        routine = by_id.get(t["routine"])
        form = json.loads(t["form"]) if t["form"] else None
        history = [dict(e, data=json.loads(e["data"] or "{}")) for e in store().events(t["id"])]
        return render_template(
            "ticket.html", t=t, routine=routine, rtype=_rtype(routine, t), form=form,
            field_labels=_field_labels(routine), user_columns=_user_columns(routine, form), show=_shower(routine),
            attachments=st.attachments(t["id"]),
            messages=[dict(m, reasons=json.loads(m["reasons"] or "[]")) for m in st.ticket_messages(t["id"])],
            replies=st.ticket_replies(t["id"]),
            notes=st.notes(t["id"]),
            history=history, transitions=d.targets(t, g.user.role),
            workable=routine is not None and routine.lifecycle.is_workable(t["status"]),
            users=[u["name"] for u in accounts.list_users(store()) if u["active"]],
        )

    @app.get("/tickets/<ref>/attachments/<int:att_id>")
    def attachment(ref: str, att_id: int):
        check_desk(ref)
        t = store().ticket(ref)
        att = store().attachment(t["id"], att_id)
        if att is None:
            abort(404)
        desk().view(ref, g.user.name, what="attachment")
        return send_file(io.BytesIO(att["data"]), as_attachment=True,
                         download_name=att["filename"] or "bilaga", mimetype="application/octet-stream")

    @app.post("/tickets/<ref>/<any(take, assign, status, note, reply, done):action>")
    def ticket_action(ref: str, action: str):
        check_desk(ref)
        d, user, role, form = desk(), g.user.name, g.user.role, request.form
        try:
            if action == "take":
                d.take(ref, user, role=role)
            elif action == "assign":
                d.assign(ref, user, form.get("assignee", ""), role=role)
            elif action == "status":
                d.set_status(ref, user, form.get("status", ""), role=role)
            elif action == "note":
                d.add_note(ref, user, form.get("text", "")[:10000])
            elif action == "reply":
                d.reply(ref, user, form.get("text", "")[:20000])
            elif action == "done":
                d.mark_done(ref, user, form.get("note", "")[:5000], role=role)
            flash(f"ok.{action}", "ok")
        except Refused as exc:
            flash(exc.sv, "error")  # the lifecycle's own Swedish sentence (a gate, a forbidden step)
        except TicketError:
            flash(f"error.{action}", "error")
        return redirect(url_for("ticket", ref=ref))

    # -- mail that did not become a ticket ----------------------------------------------------------

    @app.get("/mail")
    def mail():
        verdict = request.args.get("verdict")
        verdicts = (verdict,) if verdict in ("rejected", "held", "ignored") else ("rejected", "held", "ignored")
        rows = [dict(m, reasons=json.loads(m["reasons"] or "[]")) for m in store().messages(verdicts=verdicts)]
        return render_template("mail.html", rows=rows, verdict=verdict)

    @app.post("/mail/<int:pk>/<any(release, reject):action>")
    def mail_action(pk: int, action: str):
        try:
            if action == "release":
                ref = desk().release_held(pk, g.user.name)
                flash("ok.release", "ok")
                return redirect(url_for("ticket", ref=ref))
            desk().reject_held(pk, g.user.name)
            flash("ok.reject", "ok")
        except TicketError:
            flash(f"error.{action}", "error")
        return redirect(url_for("mail", verdict="held"))

    # -- overview ----------------------------------------------------------------------------------

    @app.get("/overview")
    def overview():
        data = stats(store())
        queue_names = {qid: name for r in routines for qid, name in r.queues.items()}
        return render_template("overview.html", s=data, queue_names=queue_names)

    from intake.web.register import register_blueprint  # the access register's pages under /register

    app.register_blueprint(register_blueprint(config, routines))
    from intake.web.orderers import orderers_blueprint  # the orderer register's pages under /orderers (admins)

    app.register_blueprint(orderers_blueprint(config, routines))

    from intake.web.checklists import checklist_blueprint  # checklists: tasks, their actions, progress

    app.register_blueprint(checklist_blueprint(config, routines, settings))

    app.register_blueprint(approvals_blueprint(config, routines, settings))  # the attestant's one-time link

    # -- accounts (admin) ------------------------------------------------------------------------

    @app.route("/admin/users", methods=["GET", "POST"])
    def users():
        if not g.user.is_admin:
            abort(403)
        if request.method == "POST":
            try:
                accounts.add_user(store(), request.form.get("name", "").strip(), request.form.get("password", ""),
                                  request.form.get("role", "handler"), actor=g.user.name)
                flash("ok.user_added", "ok")
            except accounts.AccountError:
                flash("error.user_added", "error")
            return redirect(url_for("users"))
        return render_template("users.html", users=accounts.list_users(store()), roles=accounts.ROLES)

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


def _local_time(value: str | None) -> str:
    if not value:
        return ""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(TZ).strftime("%Y-%m-%d %H:%M")


def _filesize(n: int | None) -> str:
    n = n or 0
    return f"{n / 1024:.0f} kB" if n >= 1024 else f"{n} B"


def _reason_text(code: str) -> str:
    """The Swedish sentence of a reason code, with its placeholders shown as an ellipsis."""
    return re.sub(r"\{\w+\}", "…", catalogue().get(code, ""))


def _event_summary(event: dict[str, Any], label: Any = label) -> str:
    data, kind = event["data"], event["kind"]
    if kind == "status_changed":
        return f"{label('status', data.get('from'))} → {label('status', data.get('to'))}"
    if kind == "assigned":
        return f"→ {data.get('to') or '–'}"
    if kind in ("reply_queued", "reply_sent", "reply_failed"):
        return label("reply_kind", data.get("kind"))
    if kind == "received":
        return label("verdict", data.get("verdict")) + (" (" + ", ".join(data.get("reasons") or []) + ")"
                                                        if data.get("reasons") else "")
    if kind == "viewed":
        return data.get("what", "")
    if kind == "ticket_created":
        return data.get("ref", "")
    if kind == "checklist_task":
        return f"{data.get('task', '')}: {label('task_action', data.get('action'))}"
    return ""


def _state_label(by_id: dict[str, Any], ticket: dict[str, Any]) -> str:
    routine = by_id.get(ticket["routine"])
    return routine.lifecycle.label(ticket["status"]) if routine is not None else label("status", ticket["status"])


def _rtype(routine: Any, ticket: dict[str, Any]) -> Any:
    if routine is None or not ticket["request_type"]:
        return None
    try:
        return routine.request_type(ticket["request_type"])
    except KeyError:
        return None


def _field_labels(routine: Any) -> dict[str, str]:
    schema = getattr(routine, "form_schema", None)
    if schema is None:
        return {}
    out = {f.id: f.label for section in schema.sections for f in section.fields}
    out.update({c.id: c.label for c in schema.users.columns})
    return out


def _shower(routine: Any) -> Any:
    """show(field id, stored value) -> how it reads for staff (``FieldSpec.display``: lists joined, an
    action by its label, Ja/Nej); a field the pack does not know is shown as stored."""
    schema = getattr(routine, "form_schema", None)

    def show(field_id: str, value: Any) -> str:
        spec = schema.spec(field_id) if schema is not None else None
        if spec is not None:
            return spec.display(value)
        return "" if value is None else ", ".join(map(str, value)) if isinstance(value, list) else str(value)

    return show


def _user_columns(routine: Any, form: dict[str, Any] | None) -> list[str]:
    if not form:
        return []
    schema = getattr(routine, "form_schema", None)
    columns = [c.id for c in schema.users.columns] if schema is not None else []
    for user in form.get("users") or []:
        for key in user:
            if key not in columns and key != "row":
                columns.append(key)
    return columns
