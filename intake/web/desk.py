"""The queues, the ticket list and a ticket's page with its actions (blueprint ``desk``)."""

from __future__ import annotations

import io
import json
import re
from datetime import date
from typing import Any

from flask import Blueprint, abort, flash, g, redirect, render_template, request, send_file, url_for

from intake.desk import PersonalDataInReply, Refused, TicketError
from intake.reports import SORTABLE, Filters, search
from intake.web import accounts
from intake.web.common import check_desk, ctx, desk, shower, store, visible_sources

PER_PAGE = 50
MAX_ROW_ID = 2**63 - 1  # SQLite's largest integer: a larger id in a query is a bad request

bp = Blueprint("desk", __name__)


@bp.get("/")
def index():
    """The queues, grouped by desk (mailbox); a handler limited to some desks sees only theirs."""
    statuses, desks = ctx().statuses, ctx().desks
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
        for routine in ctx().routines:
            if routine.id not in d.routines:
                continue
            for qid, qname in routine.queues.items():
                queues.append({"routine": routine.id, "id": qid, "name": qname, "counts": {
                    st: sum(n for (src, rid, q, s2), n in counts.items()
                            if mine(src) and rid == routine.id and q == qid and s2 == st)
                    for st in statuses}})
        groups.append({"name": d.name, "desk_name": d.desk_name, "queues": queues, "only": len(desks) > 1})
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
                   q=args.get("q", "").strip()[:200] or None, sources=visible_sources(args.get("desk") or None))


@bp.get("/tickets")
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
                           descending=descending, args=args, filters=f, routines=ctx().routines,
                           by_id=ctx().by_id, sortable=SORTABLE)


@bp.get("/tickets/<ref>")
def ticket(ref: str):
    return _ticket_page(ref)


def _ticket_page(ref: str, draft: dict[str, str] | None = None):
    """The ticket's page; ``draft`` keeps a text that was not sent (field name -> text) in its form."""
    check_desk(ref)
    d = desk()
    t = d.view(ref, g.user.name)
    st = store()
    routine = ctx().by_id.get(t["routine"])
    form = json.loads(t["form"]) if t["form"] else None
    history = [dict(e, data=json.loads(e["data"] or "{}")) for e in st.events(t["id"])]
    return render_template(
        "ticket.html", t=t, routine=routine, rtype=_rtype(routine, t), form=form,
        field_labels=_field_labels(routine), user_columns=_user_columns(routine, form),
        show=shower(routine), attachments=st.attachments(t["id"]),
        messages=[dict(m, reasons=json.loads(m["reasons"] or "[]")) for m in st.ticket_messages(t["id"])],
        replies=st.ticket_replies(t["id"]),
        notes=st.notes(t["id"]),
        history=history, transitions=d.targets(t, g.user.role), unread=st.unread_messages(t["id"]),
        workable=routine is not None and routine.lifecycle.is_workable(t["status"]),
        users=[u["name"] for u in accounts.list_users(st) if u["active"]], draft=draft or {},
    )


@bp.get("/tickets/<ref>/attachments/<int:att_id>")
def attachment(ref: str, att_id: int):
    check_desk(ref)
    t = store().ticket(ref)
    att = store().attachment(t["id"], att_id)
    if att is None:
        abort(404)
    desk().view(ref, g.user.name, what="attachment")
    return send_file(io.BytesIO(att["data"]), as_attachment=True,
                     download_name=att["filename"] or "bilaga", mimetype="application/octet-stream")


@bp.get("/tickets/<ref>/messages/<int:msg_id>")
def message(ref: str, msg_id: int):
    check_desk(ref)
    t = store().ticket(ref)
    msg, mail = desk().read_message(ref, msg_id, g.user.name)
    return render_template("message.html", t=t, m=dict(msg, reasons=json.loads(msg["reasons"] or "[]")), mail=mail)


@bp.get("/tickets/<ref>/messages/<int:msg_id>/attachments/<int:index>")
def message_attachment(ref: str, msg_id: int, index: int):
    check_desk(ref)
    _msg, mail = desk().read_message(ref, msg_id, g.user.name, what="attachment")
    if not 0 <= index < len(mail.attachments):
        abort(404)
    att = mail.attachments[index]
    return send_file(io.BytesIO(att.data), as_attachment=True, download_name=_safe_name(att.filename),
                     mimetype="application/octet-stream")


def _safe_name(name: str) -> str:
    name = re.sub(r"[\x00-\x1f\x7f/\\]", "_", name or "").strip()
    return name[:120] or "bilaga"


@bp.post("/tickets/<ref>/<any(take, assign, status, note, reply, done):action>")
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
            d.reply(ref, user, form.get("text", "")[:20000], role=role, force=form.get("force") == "1")
        elif action == "done":
            d.mark_done(ref, user, form.get("note", "")[:5000], role=role, force=form.get("force") == "1")
        flash(f"ok.{action}", "ok")
    except PersonalDataInReply as exc:
        # Not sent: the page again, with the text kept so it can be edited (an admin may send it anyway).
        flash(exc.sv, "error")
        field = "text" if action == "reply" else "note"
        return _ticket_page(ref, draft={action: form.get(field, "")[:20000], "blocked": action}), 422
    except Refused as exc:
        flash(exc.sv, "error")  # the lifecycle's own Swedish sentence (a gate, a forbidden step)
    except TicketError:
        flash(f"error.{action}", "error")
    return redirect(url_for("desk.ticket", ref=ref))


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
