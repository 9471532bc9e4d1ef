"""Queries for the ticket list, its statistics, and retention."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from intake.store.base import StoreBase

#: Columns the ticket list may be sorted by.
SORTABLE = ("ref", "created_at", "updated_at", "closed_at", "status", "queue", "request_type", "requester",
            "assignee", "user_count", "routine")


class ReportQueries(StoreBase):
    def search_tickets(self, where: str, params: list[Any], *, sort: str, descending: bool, page: int,
                       per_page: int | None) -> tuple[list[dict[str, Any]], int]:
        """One page of tickets matching ``where`` (built from fixed column names) and the total count."""
        if sort not in SORTABLE:
            raise ValueError(f"cannot sort by {sort!r}")
        from intake.store.desk import UNREAD_SQL

        (total,) = self.db.execute(f"select count(*) from tickets{where}", params).fetchone()
        # A ticket with a follow-up nobody has opened comes first, whatever the order asked for.
        rows = (f"select t.*, {UNREAD_SQL} as unread, json_extract(t.form, '$.fields.kommun') as kommun, "
                "json_extract(t.form, '$.fields.enhet') as enhet from tickets t")
        sql = f"select * from ({rows}){where} order by unread desc, {sort} {'desc' if descending else 'asc'}, id"
        if per_page:
            sql += f" limit {int(per_page)} offset {max(0, int(page) - 1) * int(per_page)}"
        return list(self.db.query(sql, params)), total

    def created_days_since(self, first_day: str) -> Counter[str]:
        return Counter(r["day"] for r in self.db.query(
            "select substr(created_at, 1, 10) as day from tickets where created_at >= ?", [first_day]))

    def rejection_reason_counts(self) -> Counter[str]:
        reasons: Counter[str] = Counter()
        for r in self.db.query("select reasons from messages where verdict = 'rejected'"):
            reasons.update({x["code"] for x in json.loads(r["reasons"] or "[]")})
        return reasons

    def done_spans(self) -> list[tuple[str, str]]:
        return [(r["created_at"], r["closed_at"]) for r in self.db.query(
            "select created_at, closed_at from tickets where status = 'done' and closed_at is not null")]

    def per_queue(self) -> list[tuple[str, int]]:
        return [(r["queue"] or "", r["n"]) for r in self.db.query(
            "select queue, count(*) as n from tickets group by queue order by n desc, queue")]

    def per_status(self) -> list[tuple[str, int]]:
        return [(r["status"], r["n"]) for r in self.db.query(
            "select status, count(*) as n from tickets group by status order by status")]

    # -- retention ------------------------------------------------------------------------------------

    def closed_before(self, cutoff_iso: str) -> list[int]:
        """Ids of tickets closed before ``cutoff_iso`` and not yet purged."""
        return [r["id"] for r in self.db.query(
            "select id from tickets where closed_at is not null and closed_at < ? and purged_at is null",
            [cutoff_iso])]

    def purge_ticket(self, ticket_id: int, now_iso: str) -> tuple[int, int]:
        """Remove a ticket's personal contents; returns (attachments removed, mails cleared)."""
        db = self.db
        (n_att,) = db.execute("select count(*) from attachments where ticket_id = ?", [ticket_id]).fetchone()
        db.execute("delete from attachments where ticket_id = ?", [ticket_id])
        cleared = db.execute("update messages set raw = null where ticket_id = ? and raw is not null",
                             [ticket_id]).rowcount
        db.execute("update notes set text = null where ticket_id = ?", [ticket_id])
        db.execute("update checklist_tasks set value = null where ticket_id = ?", [ticket_id])  # an RSID, an order no.
        db.execute("update outbox set body = '' where ticket_id = ? and status != 'pending' "
                   "and kind in ('handler_reply', 'completion')", [ticket_id])
        db["tickets"].update(ticket_id, {"form": None, "purged_at": now_iso})
        return n_att, cleared

    def clear_unticketed_mail(self, cutoff_iso: str) -> int:
        """Forget the bytes of mail without a ticket (never held mail) recorded before ``cutoff_iso``."""
        return self.db.execute("update messages set raw = null where ticket_id is null and raw is not null "
                               "and verdict != 'held' and recorded_at < ?", [cutoff_iso]).rowcount
