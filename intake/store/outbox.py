"""Queries on outgoing mail (the outbox)."""

from __future__ import annotations

from typing import Any

from intake.store.base import StoreBase


class OutboxQueries(StoreBase):
    def replies_to_since(self, address: str, since_iso: str, kinds: tuple[str, ...] = ("ack", "rejection")) -> int:
        """How many mails of ``kinds`` were queued for ``address`` since ``since_iso``."""
        marks = ",".join("?" * len(kinds))
        (count,) = self.db.execute(
            "select count(*) from outbox where lower(to_addr) = lower(?) and created_at >= ? "
            f"and kind in ({marks})",
            [address, since_iso, *kinds],
        ).fetchone()
        return count

    def insert_outbox(self, row: dict[str, Any]) -> int:
        """Queue one outgoing mail (pending, due at once). Only :mod:`intake.mailer` calls this."""
        return self.insert_row("outbox", row)

    def outbox_by_rfc_ids(self, rfc_ids: list[str]) -> list[dict[str, Any]]:
        marks = ",".join("?" * len(rfc_ids))
        return list(self.db.query(
            f"select id, ticket_id, kind from outbox where rfc_message_id in ({marks})", rfc_ids))

    def mark_bounced(self, outbox_id: int) -> None:
        self.db["outbox"].update(outbox_id, {"status": "bounced", "last_error": "bounced"})

    def due_outbox(self, now_iso: str) -> list[dict[str, Any]]:
        return list(self.db.query(
            "select * from outbox where status = 'pending' and next_attempt_at <= ? order by id", [now_iso]))

    def update_outbox(self, outbox_id: int, changes: dict[str, Any]) -> None:
        self.update_row("outbox", outbox_id, changes)

    def ticket_replies(self, ticket_id: int) -> list[dict[str, Any]]:
        return list(self.db.query(
            "select id, kind, to_addr, subject, body, status, created_at, sent_at, last_error "
            "from outbox where ticket_id = ? order by id", [ticket_id]))

    def outbox_routine(self, outbox_id: int) -> str | None:
        """The routine of the mail (or ticket) an outbox row belongs to."""
        rows = list(self.db.query(
            "select coalesce(t.routine, m.routine) as routine from outbox o "
            "left join messages m on m.id = o.message_id left join tickets t on t.id = o.ticket_id "
            "where o.id = ?", [outbox_id]))
        return rows[0]["routine"] if rows else None

    def outbox_waiting(self, now_iso: str) -> list[dict[str, Any]]:
        """Pending replies not due before ``now_iso``, with their next attempt and last error."""
        return list(self.db.query(
            "select id, kind, attempts, next_attempt_at, last_error from outbox where status = 'pending' "
            "and next_attempt_at > ? order by next_attempt_at, id", [now_iso]))

    def outbox_by_status(self, statuses: tuple[str, ...], limit: int = 100) -> list[dict[str, Any]]:
        """Outbox rows in ``statuses`` (newest first) with their ticket's reference: the health page."""
        marks = ",".join("?" * len(statuses))
        return list(self.db.query(
            "select o.id, o.kind, o.to_addr, o.subject, o.status, o.attempts, o.next_attempt_at, o.last_error, "
            "o.created_at, o.sent_at, t.ref from outbox o left join tickets t on t.id = o.ticket_id "
            f"where o.status in ({marks}) order by o.id desc limit {int(limit)}", list(statuses)))

    def last_sent_at(self) -> str | None:
        (at,) = self.db.execute("select max(sent_at) from outbox where status = 'sent'").fetchone()
        return at
