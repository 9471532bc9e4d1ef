"""Queries on incoming mail and mailbox state."""

from __future__ import annotations

from typing import Any

from intake.store.base import StoreBase, utcnow


class MessageQueries(StoreBase):
    def find_message(self, message_key: str) -> dict[str, Any] | None:
        rows = list(self.db.query("select * from messages where message_key = ?", [message_key]))
        return rows[0] if rows else None

    def mark_moved(self, message_pk: int, folder: str) -> None:
        with self.transaction():
            self.db["messages"].update(message_pk, {"moved_at": utcnow(), "moved_to": folder})

    def messages(self, *, verdicts: tuple[str, ...] | None = None, limit: int = 200) -> list[dict[str, Any]]:
        sql = "select id, message_id, sender, subject, verdict, reasons, routine, request_type, "
        sql += "ticket_id, recorded_at, moved_to, reply_suppressed from messages"
        if not verdicts:
            return list(self.db.query(sql + f" order by id desc limit {int(limit)}"))
        # One walk of the verdict index per verdict, newest first and stopped by the limit, rather than
        # `verdict in (...)`, which sorts every such message ever recorded before taking the newest.
        newest = f"select * from ({sql} where verdict = ? order by id desc limit {int(limit)})"
        union = " union all ".join([newest] * len(verdicts))
        return list(self.db.query(f"{union} order by id desc limit {int(limit)}", list(verdicts)))

    # -- mailbox state ------------------------------------------------------------------------

    def uidvalidity(self, source: str) -> int | None:
        rows = list(self.db.query("select uidvalidity from mailbox_state where source = ?", [source]))
        return rows[0]["uidvalidity"] if rows else None

    def set_uidvalidity(self, source: str, value: int) -> None:
        with self.transaction():
            self.db["mailbox_state"].upsert(
                {"source": source, "uidvalidity": value, "updated_at": utcnow()}, pk="source"
            )
