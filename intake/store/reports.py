"""Queries for the ticket list, its statistics, and retention."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from intake.store.base import StoreBase

#: Columns the ticket list may be sorted by.
SORTABLE = ("ref", "created_at", "updated_at", "closed_at", "status", "queue", "request_type", "requester",
            "assignee", "user_count", "routine")


#: Six or more digits in a row, possibly split by a hyphen or plus: the start of an identity number.
_IDENTITY = re.compile(r"\d{6}(?:\d{2})?[-+]?\d{0,4}")


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
    #: Only tickets whose first mail came from one of these sources (a handler limited to some desks).
    sources: tuple[str, ...] | None = None
    q: str | None = None  # free text: reference, requester, subject, the form's fields (never a personnummer)

    def where(self) -> tuple[str, list[Any]]:
        clauses, params = [], []
        text = " ".join((self.q or "").split())[:200]
        if text:
            like = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            if _IDENTITY.search(text):
                # A personnummer (or something shaped like one) is never a search key: only references match.
                clauses.append("ref like ? escape '\\'")
                params.append(like)
            else:
                clauses.append("(ref like ? escape '\\' or requester like ? escape '\\' "
                               "or subject like ? escape '\\' or exists (select 1 from json_each(form, '$.fields') "
                               "j where j.value like ? escape '\\'))")
                params.extend([like] * 4)
        if self.sources is not None:
            marks = ",".join("?" * len(self.sources)) or "null"
            clauses.append(f"id in (select ticket_id from messages where source in ({marks}))")
            params.extend(self.sources)
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


class ReportQueries(StoreBase):
    def search_tickets(self, where: str, params: list[Any], *, sort: str, descending: bool,
                       after_id: int | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        """Tickets matching ``where`` (built from fixed column names, "" or " where ...") in the order
        ``sort`` (desc or asc), then id the same way, strictly after the ticket ``after_id`` (keyset: the
        boundary row's own values, no OFFSET), at most ``limit`` of them (None: all).

        SQLite puts NULLs first going up and last going down, so the order is two runs: the rows with a
        value and those without (by id); each run is read by its own index search from the cursor on.
        """
        if sort not in SORTABLE:
            raise ValueError(f"cannot sort by {sort!r}")
        way, cmp = ("desc", "<") if descending else ("asc", ">")
        base = where[len(" where "):] if where else ""
        cursor: tuple[Any, int] | None = None
        if after_id is not None:
            row = self.db.execute(f"select {sort}, id from tickets where id = ?", [int(after_id)]).fetchone()
            cursor = (row[0], row[1]) if row else None
        runs = ["null", "value"] if not descending else ["value", "null"]
        if cursor is not None:  # start in the cursor's run
            runs = runs[runs.index("null" if cursor[0] is None else "value"):]
        out: list[dict[str, Any]] = []
        for run in runs:
            clauses, args = ([base], list(params)) if base else ([], [])
            if run == "value":
                clauses.append(f"{sort} is not null")
                if cursor is not None and cursor[0] is not None:
                    clauses.append(f"({sort}, id) {cmp} (?, ?)")
                    args += [cursor[0], cursor[1]]
            else:
                clauses.append(f"{sort} is null")
                if cursor is not None and cursor[0] is None:
                    clauses.append(f"id {cmp} ?")
                    args.append(cursor[1])
            # (In the run without a value, ordering by the column too changes nothing but lets the
            # column's index give the order: an index search instead of a walk of every id.)
            order = f"{sort} {way}, id {way}"
            sql = f"select * from tickets where {' and '.join(clauses)} order by {order}"
            if limit is not None:
                sql += f" limit {int(limit) - len(out)}"
            out += self.db.query(sql, args)
            if limit is not None and len(out) >= limit:
                break
            cursor = None  # the next run is read from its start
        return out

    def unread_tickets(self, where: str, params: list[Any], limit: int) -> list[dict[str, Any]]:
        """Tickets matching ``where`` with a follow-up nobody has opened, latest change first (at most ``limit``).

        Read from the unread flag kept on each ticket (migration ``015_counters``) by its partial indexes (the
        unread tickets only, by status, queue and status, or assignee, in the order of their latest change):
        never a walk of every ticket."""
        clause = f"{where} and t.unread = 1" if where else " where t.unread = 1"
        return list(self.db.query(f"select * from tickets t{clause} order by updated_at desc, id desc "
                                  f"limit {int(limit)}", params))

    def annotate_tickets(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """One page of tickets with what the list shows beside the row: ``unread`` (a follow-up nobody has
        opened), ``kommun`` and ``enhet`` (from the form). One indexed query for the page, never the table."""
        if not rows:
            return rows
        ids = [r["id"] for r in rows]
        marks = ",".join("?" * len(ids))
        extra = {r["id"]: r for r in self.db.query(
            f"select t.id, t.unread, json_extract(t.form, '$.fields.kommun') as kommun, "
            f"json_extract(t.form, '$.fields.enhet') as enhet from tickets t where t.id in ({marks})", ids)}
        return [{**r, **{k: v for k, v in extra.get(r["id"], {}).items() if k != "id"}} for r in rows]

    # -- retention ------------------------------------------------------------------------------------

    def closed_before(self, cutoff_iso: str) -> list[int]:
        """Ids of tickets closed before ``cutoff_iso`` and not yet purged."""
        return [r["id"] for r in self.db.query(
            "select id from tickets where closed_at is not null and closed_at < ? and purged_at is null",
            [cutoff_iso])]

    def purge_tickets(self, ids: list[int], now_iso: str) -> tuple[dict[int, int], int]:
        """Remove the personal contents of the tickets ``ids`` with one statement per table (set-based, the
        caller batches the ids); returns (attachments removed per ticket, mails cleared)."""
        if not ids:
            return {}, 0
        db = self.db
        marks = ",".join("?" * len(ids))
        n_att = {r["ticket_id"]: r["n"] for r in db.query(
            f"select ticket_id, count(*) as n from attachments where ticket_id in ({marks}) group by ticket_id",
            ids)}
        db.execute(f"delete from attachments where ticket_id in ({marks})", ids)
        cleared = db.execute(f"update messages set raw = null where ticket_id in ({marks}) and raw is not null",
                             ids).rowcount
        db.execute(f"update notes set text = null where ticket_id in ({marks})", ids)
        # A checklist's recorded values (an RSID, an order number) go with the form.
        db.execute(f"update checklist_tasks set value = null where ticket_id in ({marks})", ids)
        db.execute(f"update outbox set body = '' where ticket_id in ({marks}) and status != 'pending' "
                   "and kind in ('handler_reply', 'completion')", ids)
        db.execute(f"update tickets set form = null, purged_at = ? where id in ({marks})", [now_iso, *ids])
        return n_att, cleared

    def add_events(self, rows: list[dict[str, Any]]) -> None:
        """Append many events to the audit trail in one statement (``data`` as in :meth:`add_event`)."""
        self.db.conn.executemany(
            "insert into events (at, ticket_id, message_id, actor, kind, data) values (?, ?, ?, ?, ?, ?)",
            [(r["at"], r.get("ticket_id"), r.get("message_id"), r.get("actor", "bot"), r["kind"],
              json.dumps(r.get("data") or {}, ensure_ascii=False)) for r in rows])

    def clear_unticketed_mail(self, cutoff_iso: str) -> int:
        """Forget the bytes of mail without a ticket (never held mail) recorded before ``cutoff_iso``."""
        return self.db.execute("update messages set raw = null where ticket_id is null and raw is not null "
                               "and verdict != 'held' and recorded_at < ?", [cutoff_iso]).rowcount
