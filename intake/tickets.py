"""Ticket work for handlers: take, assign, change status, note, reply, close; held mail; retention.

Used by the web UI and the CLI alike. Every change is one transaction that also writes an event
naming who did it. Event data holds ids, statuses and counts, never a personal value: note texts
live in the ``notes`` table and reply texts in the outbox, both cleared by :func:`purge`.
"""

from __future__ import annotations

import io
import json
import statistics
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from intake.decision import Decision
from intake.recorder import Recorder
from intake.replies import new_message_id, render_reply
from intake.store import NotFoundError, Store
from parsers.errors import IntakeError
from rules.packs import Routine

STATUSES = ("new", "in_progress", "waiting", "done", "rejected")
CLOSED = ("done", "rejected")

#: Allowed status changes. A closed ticket can only be reopened (to in_progress).
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "new": ("in_progress", "waiting", "done", "rejected"),
    "in_progress": ("new", "waiting", "done", "rejected"),
    "waiting": ("in_progress", "done", "rejected"),
    "done": ("in_progress",),
    "rejected": ("in_progress",),
}

#: Columns the ticket list may be sorted by.
SORTABLE = ("ref", "created_at", "updated_at", "closed_at", "status", "queue", "request_type", "requester",
            "assignee", "user_count", "routine")

EXPORT_COLUMNS = ("ref", "routine", "request_type", "queue", "status", "requester", "assignee", "user_count",
                  "created_at", "updated_at", "closed_at", "purged_at")


class TicketError(IntakeError, ValueError):
    """An action that is not allowed in the ticket's (or message's) present state."""


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


class TicketDesk:
    """The handler's actions on one store. Routines and settings are needed to render replies."""

    def __init__(
        self,
        store: Store,
        routines: list[Routine],
        settings: Any,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ):
        self.store = store
        self.routines = routines
        self.by_id = {r.id: r for r in routines}
        self.settings = settings
        self.clock = clock

    # -- looking --------------------------------------------------------------------------------

    def view(self, ref: str, user: str, *, what: str = "ticket", via: str = "web") -> dict[str, Any]:
        """The ticket, with the view written to the audit trail (every look at personal data is)."""
        ticket = self.store.ticket(ref)
        with self.store.transaction():
            self.store.add_event("viewed", actor=user, ticket_id=ticket["id"], at=_iso(self.clock()),
                                 data={"what": what, "via": via})
        return ticket

    # -- actions --------------------------------------------------------------------------------

    def take(self, ref: str, user: str) -> dict[str, Any]:
        """Assign the ticket to ``user``; a new or waiting ticket becomes in_progress."""
        return self.assign(ref, user, user, _check=False)

    def assign(self, ref: str, user: str, assignee: str | None, *, _check: bool = True) -> dict[str, Any]:
        """Give the ticket to ``assignee`` (``None`` or "" to unassign); a new or waiting ticket becomes
        in_progress."""
        assignee = assignee or None
        now_iso = _iso(self.clock())
        with self.store.transaction() as db:
            ticket = self.store.ticket(ref)
            if ticket["status"] in CLOSED:
                raise TicketError(f"{ref} is closed ({ticket['status']}); reopen it first")
            if _check and assignee is not None and not _user_exists(self.store, assignee):
                raise TicketError(f"no user {assignee}")
            changes: dict[str, Any] = {"assignee": assignee, "updated_at": now_iso}
            self.store.add_event("assigned", actor=user, ticket_id=ticket["id"], at=now_iso,
                                 data={"from": ticket["assignee"], "to": assignee})
            if assignee is not None and ticket["status"] in ("new", "waiting"):
                changes["status"] = "in_progress"
                self.store.add_event("status_changed", actor=user, ticket_id=ticket["id"], at=now_iso,
                                     data={"from": ticket["status"], "to": "in_progress"})
            db["tickets"].update(ticket["id"], changes)
        return self.store.ticket(ref)

    def set_status(self, ref: str, user: str, status: str, *, note: str = "") -> dict[str, Any]:
        """Move the ticket to ``status`` along :data:`TRANSITIONS`; ``done`` queues the completion mail."""
        if status not in STATUSES:
            raise TicketError(f"unknown status {status!r} (one of {', '.join(STATUSES)})")
        now = self.clock()
        now_iso = _iso(now)
        with self.store.transaction() as db:
            ticket = self.store.ticket(ref)
            old = ticket["status"]
            if status not in TRANSITIONS[old]:
                raise TicketError(f"{ref}: cannot go from {old} to {status}")
            changes: dict[str, Any] = {"status": status, "updated_at": now_iso}
            changes["closed_at"] = now_iso if status in CLOSED else None
            db["tickets"].update(ticket["id"], changes)
            self.store.add_event("status_changed", actor=user, ticket_id=ticket["id"], at=now_iso,
                                 data={"from": old, "to": status})
            if status == "done":
                self._queue_completion(ticket, user, note, now)
        return self.store.ticket(ref)

    def mark_done(self, ref: str, user: str, note: str = "") -> dict[str, Any]:
        """Close the ticket as done and queue the completion mail (with ``note`` in it, if given)."""
        return self.set_status(ref, user, "done", note=note)

    def add_note(self, ref: str, user: str, text: str) -> int:
        """An internal note, seen by handlers only; returns the note id."""
        text = text.strip()
        if not text:
            raise TicketError("empty note")
        now_iso = _iso(self.clock())
        with self.store.transaction() as db:
            ticket = self.store.ticket(ref)
            note_id = db["notes"].insert({"ticket_id": ticket["id"], "author": user, "text": text,
                                          "created_at": now_iso}).last_pk
            db["tickets"].update(ticket["id"], {"updated_at": now_iso})
            self.store.add_event("note", actor=user, ticket_id=ticket["id"], at=now_iso, data={"note": note_id})
        return note_id

    def reply(self, ref: str, user: str, text: str) -> int:
        """Queue a handler's reply to the requester, threaded to the ticket's first mail; returns the outbox id."""
        text = text.strip()
        if not text:
            raise TicketError("empty reply")
        now_iso = _iso(self.clock())
        with self.store.transaction() as db:
            ticket = self.store.ticket(ref)
            routine = self._routine(ticket)
            rtype = _rtype(routine, ticket)
            subject = routine.template_env().from_string(routine.reply_subjects["ack"]).render(
                routine=routine, request_type=rtype, ref=ref,
            ) if rtype is not None else f"[{ref}]"
            outbox_id = self._queue(db, ticket, "handler_reply", subject, text + "\n", now_iso)
            db["tickets"].update(ticket["id"], {"updated_at": now_iso})
            self.store.add_event("reply_queued", actor=user, ticket_id=ticket["id"], at=now_iso,
                                 data={"kind": "handler_reply", "outbox": outbox_id})
        return outbox_id

    def _queue_completion(self, ticket: dict[str, Any], user: str, note: str, now: datetime) -> int:
        routine = self._routine(ticket)
        rtype = _rtype(routine, ticket)
        decision = Decision(verdict="accepted", message_key="", sender=ticket["requester"] or "")
        reply = render_reply("completion", routine, rtype, decision, ref=ticket["ref"], settings=self.settings,
                             note=note.strip(), form=json.loads(ticket["form"]) if ticket.get("form") else None)
        now_iso = _iso(now)
        outbox_id = self._queue(self.store.db, ticket, "completion", reply.subject, reply.body, now_iso)
        self.store.add_event("reply_queued", actor=user, ticket_id=ticket["id"], at=now_iso,
                             data={"kind": "completion", "outbox": outbox_id})
        return outbox_id

    def _queue(self, db: Any, ticket: dict[str, Any], kind: str, subject: str, body: str, now_iso: str) -> int:
        first = _first_message(self.store, ticket["id"])
        if not ticket["requester"]:
            raise TicketError(f"{ticket['ref']} has no requester to write to")
        return db["outbox"].insert({
            "message_id": first["id"] if first else None,
            "ticket_id": ticket["id"],
            "kind": kind,
            "to_addr": ticket["requester"],
            "subject": subject,
            "body": body,
            "rfc_message_id": new_message_id(self.settings.from_address),
            "in_reply_to": (first or {}).get("message_id") or None,
            "references_": (first or {}).get("message_id") or None,
            "attach_blank_form": 0,
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now_iso,
            "created_at": now_iso,
        }).last_pk

    def _routine(self, ticket: dict[str, Any]) -> Routine:
        try:
            return self.by_id[ticket["routine"]]
        except KeyError:
            raise TicketError(f"{ticket['ref']}: routine {ticket['routine']!r} is not enabled") from None

    # -- held mail ------------------------------------------------------------------------------

    def release_held(self, message_pk: int, user: str) -> str:
        """A held mail becomes a ticket (with a receipt queued), as if accepted; returns the ticket ref."""
        from intake.pipeline import decide

        now = self.clock()
        now_iso = _iso(now)
        recorder = self._recorder()
        with self.store.transaction() as db:
            msg = _held(self.store, message_pk)
            if msg["ticket_id"]:
                # A held follow-up is already attached to its ticket: releasing only settles the verdict.
                ref = db["tickets"].get(msg["ticket_id"])["ref"]
                db["messages"].update(message_pk, {"verdict": "accepted"})
                self.store.add_event("held_released", actor=user, message_id=message_pk,
                                     ticket_id=msg["ticket_id"], at=now_iso, data={"ref": ref})
                return ref
            if msg["raw"] is None:
                raise TicketError(f"message {message_pk}: the mail itself is no longer stored")
            judged_at = datetime.fromisoformat(msg["recorded_at"])
            decision = decide(msg["raw"], self.routines, settings=self.settings, now=judged_at)
            if decision.verdict not in ("held", "accepted") or decision.routine is None or not decision.request_type:
                raise TicketError(f"message {message_pk}: judged {decision.verdict} now "
                                  f"({', '.join(decision.codes) or 'no routine'}); cannot become a ticket")
            routine = self.by_id[decision.routine]
            rtype = routine.request_type(decision.request_type)
            decision = replace(decision, verdict="accepted",
                               reply=render_reply("ack", routine, rtype, decision, ref=None, settings=self.settings))
            ticket_id, ref = recorder.create_ticket(decision, message_pk, now, now_iso)
            db["messages"].update(message_pk, {"verdict": "accepted"})
            self.store.add_event("held_released", actor=user, message_id=message_pk, ticket_id=ticket_id,
                                 at=now_iso, data={"ref": ref, "reasons": [r["code"] for r in _reasons(msg)]})
            recorder.queue_reply(decision, message_pk, ticket_id, ref, now, now_iso)
        return ref

    def reject_held(self, message_pk: int, user: str, *, reply: bool = True) -> int | None:
        """Judge a held mail as holding personal data: reject it, forget its bytes, and (by default) queue
        the rejection that says what to remove. Returns the outbox id of that reply, if any."""
        from intake.pipeline import decide
        from rules.personal_data import describe
        from rules.reasons import reason

        now = self.clock()
        now_iso = _iso(now)
        with self.store.transaction() as db:
            msg = _held(self.store, message_pk)
            held_codes = [r["code"] for r in _reasons(msg)]
            reasons, decision = [], None
            if msg["raw"] is not None:
                decision = decide(msg["raw"], self.routines, settings=self.settings,
                                  now=datetime.fromisoformat(msg["recorded_at"]))
                for location in ("subject", "body"):
                    if f"{location}.possible_personal_data" in held_codes:
                        found = [f for f in decision.findings if f.location == location]
                        if found:
                            reasons.append(reason(f"{location}.personal_data", what=describe(found),
                                                  detail="confirmed by a handler"))
            changes: dict[str, Any] = {"verdict": "rejected", "raw": None,
                                       "reasons": json.dumps([{"code": r.code, "detail": r.detail} for r in reasons]
                                                             or _reasons(msg), ensure_ascii=False)}
            if "subject.possible_personal_data" in held_codes:
                changes["subject"] = ""
            db["messages"].update(message_pk, changes)
            self.store.add_event("held_rejected", actor=user, message_id=message_pk, at=now_iso,
                                 data={"held": held_codes, "reasons": [r.code for r in reasons]})
            outbox_id = None
            if reply and reasons and decision is not None and decision.sender:
                routine = self.by_id.get(decision.routine or "", self.routines[0])
                rtype = routine.request_type(decision.request_type) if decision.request_type else None
                rejected = replace(decision, verdict="rejected", reasons=tuple(reasons), ticket_ref=None)
                rejected = replace(rejected, reply=render_reply("rejection", routine, rtype, rejected, ref=None,
                                                                settings=self.settings))
                outbox_id = self._recorder().queue_reply(rejected, message_pk, None, None, now, now_iso)
        return outbox_id

    def _recorder(self) -> Recorder:
        # Tickets and replies are written exactly as a poll writes them.
        return Recorder(self.store, self.routines, self.settings)


def _user_exists(store: Store, name: str) -> bool:
    """An active account of that name; without any accounts (CLI-only use) every name goes."""
    if not list(store.db.query("select 1 from users limit 1")):
        return True
    return bool(list(store.db.query("select 1 from users where name = ? and active = 1", [name])))


def _rtype(routine: Routine, ticket: dict[str, Any]) -> Any:
    try:
        return routine.request_type(ticket["request_type"]) if ticket["request_type"] else None
    except KeyError:
        return None


def _first_message(store: Store, ticket_id: int) -> dict[str, Any] | None:
    rows = list(store.db.query(
        "select id, message_id from messages where ticket_id = ? order by id limit 1", [ticket_id]))
    return rows[0] if rows else None


def _held(store: Store, message_pk: int) -> dict[str, Any]:
    rows = list(store.db.query("select * from messages where id = ?", [message_pk]))
    if not rows:
        raise NotFoundError(f"no message {message_pk}")
    if rows[0]["verdict"] != "held":
        raise TicketError(f"message {message_pk} is {rows[0]['verdict']}, not held")
    return rows[0]


def _reasons(msg: dict[str, Any]) -> list[dict[str, Any]]:
    return json.loads(msg["reasons"] or "[]")


# -- the list, its filters and its export ----------------------------------------------------------


@dataclass(frozen=True)
class Filters:
    """What the ticket list is narrowed to. Dates are ISO days, inclusive, on ``created_at``."""

    queue: str | None = None
    status: str | None = None
    routine: str | None = None
    request_type: str | None = None
    date_from: str | None = None
    date_to: str | None = None
    assignee: str | None = None

    def where(self) -> tuple[str, list[Any]]:
        clauses, params = [], []
        for column in ("queue", "status", "routine", "request_type", "assignee"):
            value = getattr(self, column)
            if value:
                clauses.append(f"{column} = ?")
                params.append(value)
        if self.date_from:
            clauses.append("created_at >= ?")
            params.append(date.fromisoformat(self.date_from).isoformat())
        if self.date_to:
            clauses.append("created_at < ?")
            params.append((date.fromisoformat(self.date_to) + timedelta(days=1)).isoformat())
        return (" where " + " and ".join(clauses)) if clauses else "", params


def search(
    store: Store,
    filters: Filters = Filters(),
    *,
    sort: str = "created_at",
    descending: bool = True,
    page: int = 1,
    per_page: int | None = 50,
) -> tuple[list[dict[str, Any]], int]:
    """One page of the filtered, sorted ticket list and the total count. ``per_page=None``: all rows."""
    if sort not in SORTABLE:
        raise TicketError(f"cannot sort by {sort!r}")
    where, params = filters.where()
    (total,) = store.db.execute(f"select count(*) from tickets{where}", params).fetchone()
    sql = f"select * from tickets{where} order by {sort} {'desc' if descending else 'asc'}, id"
    if per_page:
        sql += f" limit {int(per_page)} offset {max(0, int(page) - 1) * int(per_page)}"
    return list(store.db.query(sql, params)), total


def export_xlsx(rows: list[dict[str, Any]]) -> bytes:
    """The ticket rows as an .xlsx workbook (Swedish headers; no form contents)."""
    from openpyxl import Workbook

    from intake.web.labels import label

    wb = Workbook()
    ws = wb.active
    ws.title = "Ärenden"[:31]
    ws.append([label("column", c) for c in EXPORT_COLUMNS])
    for row in rows:
        values = []
        for column in EXPORT_COLUMNS:
            value = row.get(column)
            if column == "status":
                value = label("status", value)
            values.append(value)
        ws.append(values)
        for cell in ws[ws.max_row]:
            # Text from mail ("=HYPERLINK(...)") must never become a formula in the handler's Excel.
            if isinstance(cell.value, str) and cell.value.startswith("="):
                cell.data_type = "s"
    ws.freeze_panes = "A2"
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


# -- retention ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PurgeResult:
    tickets: int
    messages: int

    def summary(self) -> str:
        return f"{self.tickets} tickets purged, {self.messages} mails cleared"


def purge(store: Store, older_than_days: int, now: datetime | None = None) -> PurgeResult:
    """Remove personal contents of tickets closed more than ``older_than_days`` ago.

    The form JSON, the attachments, note texts, the bodies of handler-written replies and the stored
    mails of those tickets go; the ticket's metadata and its history stay. Stored bytes of mail without a
    ticket (rejected, ignored, settled held mail) recorded that long ago are cleared too. Mail still held
    for a handler is kept.
    """
    now = now or datetime.now(UTC)
    cutoff = _iso(now - timedelta(days=older_than_days))
    now_iso = _iso(now)
    with store.transaction() as db:
        ids = [r["id"] for r in db.query(
            "select id from tickets where closed_at is not null and closed_at < ? and purged_at is null", [cutoff])]
        cleared = 0
        for ticket_id in ids:
            (n_att,) = db.execute("select count(*) from attachments where ticket_id = ?", [ticket_id]).fetchone()
            db.execute("delete from attachments where ticket_id = ?", [ticket_id])
            cur = db.execute("update messages set raw = null where ticket_id = ? and raw is not null", [ticket_id])
            cleared += cur.rowcount
            db.execute("update notes set text = null where ticket_id = ?", [ticket_id])
            db.execute("update outbox set body = '' where ticket_id = ? and status != 'pending' "
                       "and kind in ('handler_reply', 'completion')", [ticket_id])
            db["tickets"].update(ticket_id, {"form": None, "purged_at": now_iso})
            store.add_event("purged", actor="bot", ticket_id=ticket_id, at=now_iso,
                            data={"attachments": n_att, "days": older_than_days})
        cur = db.execute("update messages set raw = null where ticket_id is null and raw is not null "
                         "and verdict != 'held' and recorded_at < ?", [cutoff])
        cleared += cur.rowcount
    return PurgeResult(tickets=len(ids), messages=cleared)


def purge_job(config: Any) -> Callable[[], PurgeResult]:
    """The retention job for ``intake run``: purge with ``retention.days`` on the configured store."""

    def job() -> PurgeResult:
        from intake.store import open_store

        store = open_store(config.db_path)  # its own connection: the scheduler runs jobs in other threads
        try:
            return purge(store, config["retention"]["days"])
        finally:
            store.db.conn.close()

    return job


# -- statistics -------------------------------------------------------------------------------------


def stats(store: Store, *, days: int = 30, now: datetime | None = None) -> dict[str, Any]:
    """Tickets per day (last ``days`` days) and per queue, rejection reasons, and time to done."""
    now = now or datetime.now(UTC)
    first = (now - timedelta(days=days - 1)).date()
    per_day = Counter(r["day"] for r in store.db.query(
        "select substr(created_at, 1, 10) as day from tickets where created_at >= ?", [first.isoformat()]))
    reasons: Counter[str] = Counter()
    for r in store.db.query("select reasons from messages where verdict = 'rejected'"):
        reasons.update({x["code"] for x in json.loads(r["reasons"] or "[]")})
    hours = []
    done = "select created_at, closed_at from tickets where status = 'done' and closed_at is not null"
    for r in store.db.query(done):
        delta = datetime.fromisoformat(r["closed_at"]) - datetime.fromisoformat(r["created_at"])
        hours.append(delta.total_seconds() / 3600)
    return {
        "per_day": [((first + timedelta(days=i)).isoformat(), per_day.get((first + timedelta(days=i)).isoformat(), 0))
                    for i in range(days)],
        "per_queue": [(r["queue"] or "", r["n"]) for r in store.db.query(
            "select queue, count(*) as n from tickets group by queue order by n desc, queue")],
        "per_status": [(r["status"], r["n"]) for r in store.db.query(
            "select status, count(*) as n from tickets group by status order by status")],
        "rejection_reasons": sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])),
        "median_hours_to_done": statistics.median(hours) if hours else None,
        "done": len(hours),  # number of tickets done
        "hours_to_done": sorted(hours),
    }
