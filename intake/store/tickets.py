"""Queries on tickets, their references and their history."""

from __future__ import annotations

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
    ) -> list[dict[str, Any]]:
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
        sql = "select * from tickets" + (" where " + " and ".join(where) if where else "")
        sql += " order by id"
        if limit:
            sql += f" limit {int(limit)}"
        return list(self.db.query(sql, params))

    def events(self, ticket_id: int) -> list[dict[str, Any]]:
        return list(self.db.query("select * from events where ticket_id = ? order by id", [ticket_id]))

    def ticket_by_id(self, ticket_id: int) -> dict[str, Any]:
        rows = list(self.db.query("select * from tickets where id = ?", [ticket_id]))
        if not rows:
            raise NotFoundError(f"no ticket with id {ticket_id}")
        return rows[0]

    def insert_ticket(self, row: dict[str, Any]) -> int:
        return self.db["tickets"].insert(row).last_pk

    def update_ticket(self, ticket_id: int, changes: dict[str, Any]) -> None:
        self.db["tickets"].update(ticket_id, changes)

    def status_counts(self) -> list[dict[str, Any]]:
        """Tickets counted per routine, queue and status."""
        return list(self.db.query("select routine, queue, status, count(*) as n from tickets "
                                  "group by routine, queue, status"))
