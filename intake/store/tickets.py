"""Queries on tickets, their references and their history."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from intake.store.base import NotFoundError, StoreBase


class TicketQueries(StoreBase):
    def next_ref(self, prefix: str, year: int) -> str:
        """Allocate the next ticket reference, e.g. ``MV-2026-0001``. Call inside a transaction."""
        self.db.execute(
            "insert into ref_counters (prefix, year, last) values (?, ?, 1) "
            "on conflict(prefix, year) do update set last = last + 1",
            [prefix, year],
        )
        (last,) = self.db.execute(
            "select last from ref_counters where prefix = ? and year = ?", [prefix, year]
        ).fetchone()
        return f"{prefix}-{year}-{last:04d}"

    def next_numbered_ref(self, prefix: str, start: int) -> str:
        """Allocate the next reference of a pack with a ``ref_format`` (``VMU3000001``): counted per prefix,
        never per year, from ``start``. Call inside a transaction."""
        self.db.execute(
            "insert into ref_counters (prefix, year, last) values (?, 0, ?) "
            "on conflict(prefix, year) do update set last = last + 1",
            [prefix, start],
        )
        (last,) = self.db.execute("select last from ref_counters where prefix = ? and year = 0", [prefix]).fetchone()
        return f"{prefix}{last}"

    def ticket(self, ref: str) -> dict[str, Any]:
        rows = list(self.db.query("select * from tickets where ref = ?", [ref]))
        if not rows:
            raise NotFoundError(f"no ticket {ref}")
        return rows[0]

    def tickets(
        self,
        *,
        queue: str | None = None,
        status: str | None = None,
        routine: str | None = None,
        request_type: str | None = None,
        limit: int | None = None,
        after_id: int = 0,
    ) -> list[dict[str, Any]]:
        """Tickets in id order after ``after_id`` (keyset), at most ``limit`` of them (None: all)."""
        where, params = [], []
        for column, value in (
            ("queue", queue),
            ("status", status),
            ("routine", routine),
            ("request_type", request_type),
        ):
            if value:
                where.append(f"{column} = ?")
                params.append(value)
        where.append("id > ?")
        params.append(int(after_id))
        sql = "select * from tickets where " + " and ".join(where) + " order by id"
        if limit:
            sql += f" limit {int(limit)}"
        return list(self.db.query(sql, params))

    def iter_tickets(self, *, page: int = 500, **filters: Any) -> Iterator[dict[str, Any]]:
        """Every matching ticket in id order, read a keyset page at a time (constant memory)."""
        after = 0
        while True:
            rows = self.tickets(limit=page, after_id=after, **filters)
            yield from rows
            if len(rows) < page:
                return
            after = rows[-1]["id"]

    def events(self, ticket_id: int) -> list[dict[str, Any]]:
        return list(self.db.query("select * from events where ticket_id = ? order by id", [ticket_id]))

    def ticket_by_id(self, ticket_id: int) -> dict[str, Any]:
        rows = list(self.db.query("select * from tickets where id = ?", [ticket_id]))
        if not rows:
            raise NotFoundError(f"no ticket with id {ticket_id}")
        return rows[0]

    def insert_ticket(self, row: dict[str, Any]) -> int:
        return self.insert_row("tickets", row)

    def update_ticket(self, ticket_id: int, changes: dict[str, Any]) -> None:
        self.update_row("tickets", ticket_id, changes)

    def followup_ticket(self, ref: str | None, message_ids: list[str]) -> dict[str, Any] | None:
        """The ticket a follow-up belongs to: by its reference, else by the reply of ours it answers."""
        rows: list[dict[str, Any]] = []
        if ref:
            rows = list(self.db.query("select * from tickets where ref = ?", [ref]))
        if not rows and message_ids:
            marks = ",".join("?" * len(message_ids))
            rows = list(self.db.query(
                f"select t.* from outbox o join tickets t on t.id = o.ticket_id where o.rfc_message_id in ({marks}) "
                "order by o.id desc limit 1", message_ids,
            ))
        return rows[0] if rows else None

    def ticket_source(self, ticket_id: int) -> str | None:
        """The source (mailbox) of the ticket's first mail."""
        row = self.db.execute("select source from messages where ticket_id = ? order by id limit 1",
                              [ticket_id]).fetchone()
        return row[0] if row else None

    def mail_sources(self, message_pk: int | None, ticket_id: int | None) -> list[str]:
        """The source of a mail, then that of its ticket's first mail (the mailbox a reply answers for)."""
        return [r[0] for r in self.db.execute(
            "select source from messages where id = ? union all "
            "select source from (select source from messages where ticket_id = ? order by id limit 1)",
            [message_pk, ticket_id]).fetchall()]

    def status_counts_by_source(self) -> list[dict[str, Any]]:
        """Tickets counted per source of their first mail (the mailbox, i.e. the desk; "" when unknown), routine,
        queue ("" when none) and status: the kept counts (migration ``015_counters``), never a count of tickets."""
        return list(self.db.query("select source, routine, queue, status, n from ticket_counts where n != 0"))

    def status_counts(self) -> list[dict[str, Any]]:
        """Tickets counted per routine, queue and status (the kept counts)."""
        return list(self.db.query("select routine, queue, status, sum(n) as n from ticket_counts "
                                  "group by routine, queue, status having sum(n) != 0"))
