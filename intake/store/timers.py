"""Queries on lifecycle timers: rows that fire a ticket event by the scheduler when due."""

from __future__ import annotations

from typing import Any

from intake.store.base import StoreBase


class TimerQueries(StoreBase):
    def set_timer(self, ticket_id: int, name: str, event: str, due_at: str, state: str, keep: bool,
                  now_iso: str) -> int:
        """A pending timer; a pending one of the same name on the ticket is cancelled. Call in a transaction."""
        self.cancel_timers(ticket_id, names=[name])
        return self.db["timers"].insert({
            "ticket_id": ticket_id, "name": name, "event": event, "due_at": due_at, "status": "pending",
            "state": state, "keep": int(keep), "created_at": now_iso,
        }).last_pk

    def cancel_timers(self, ticket_id: int, *, names: list[str] | None = None,
                      set_in_state: str | None = None) -> int:
        """Cancel pending timers of a ticket, by name or by the state that set them (unless kept)."""
        sql = "update timers set status = 'cancelled' where ticket_id = ? and status = 'pending'"
        params: list[Any] = [ticket_id]
        if names is not None:
            sql += " and name in (" + ",".join("?" * len(names)) + ")"
            params += names
        if set_in_state is not None:
            sql += " and state = ? and keep = 0"
            params.append(set_in_state)
        return self.db.execute(sql, params).rowcount

    def due_timers(self, now_iso: str) -> list[dict[str, Any]]:
        return list(self.db.query(
            "select * from timers where status = 'pending' and due_at <= ? order by due_at, id", [now_iso]))

    def claim_timer(self, timer_id: int, now_iso: str) -> bool:
        """Mark a pending timer fired; False when it is no longer pending. Call in the firing transaction."""
        cur = self.db.execute("update timers set status = 'fired', fired_at = ? where id = ? and status = 'pending'",
                              [now_iso, timer_id])
        return cur.rowcount == 1

    def timers(self, ticket_id: int) -> list[dict[str, Any]]:
        return list(self.db.query("select * from timers where ticket_id = ? order by id", [ticket_id]))

    def timer_rows(self, *, pending_only: bool = True) -> list[dict[str, Any]]:
        """Timers with their ticket's reference, soonest first."""
        sql = ("select t.ref, x.name, x.event, x.due_at, x.status, x.fired_at from timers x "
               "join tickets t on t.id = x.ticket_id")
        if pending_only:
            sql += " where x.status = 'pending'"
        return list(self.db.query(sql + " order by x.due_at, x.id"))
