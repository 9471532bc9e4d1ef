"""Queries that record mail and the handler's work on it: message rows, held mail, notes, attachments."""

from __future__ import annotations

from typing import Any

from intake.store.base import NotFoundError, StoreBase


class RecordingQueries(StoreBase):
    def insert_message(self, row: dict[str, Any]) -> int:
        return self.insert_row("messages", row)

    def update_message(self, message_pk: int, changes: dict[str, Any]) -> None:
        self.update_row("messages", message_pk, changes)

    def message(self, message_pk: int) -> dict[str, Any]:
        rows = list(self.db.query("select * from messages where id = ?", [message_pk]))
        if not rows:
            raise NotFoundError(f"no message {message_pk}")
        return rows[0]

    def ticket_messages(self, ticket_id: int) -> list[dict[str, Any]]:
        return list(self.db.query(
            "select id, message_id, sender, subject, verdict, reasons, recorded_at, sent_at from messages "
            "where ticket_id = ? order by id", [ticket_id]))

    def first_message(self, ticket_id: int) -> dict[str, Any] | None:
        rows = list(self.db.query(
            "select id, message_id from messages where ticket_id = ? order by id limit 1", [ticket_id]))
        return rows[0] if rows else None

    def held_count(self) -> int:
        (n,) = self.db.execute("select count(*) from messages where verdict = 'held'").fetchone()
        return n

    # -- attachments and notes --------------------------------------------------------------------

    def add_attachment(self, row: dict[str, Any]) -> int:
        return self.db["attachments"].insert(row).last_pk

    def attachments(self, ticket_id: int) -> list[dict[str, Any]]:
        return list(self.db.query("select id, filename, content_type, size from attachments "
                                  "where ticket_id = ? order by id", [ticket_id]))

    def attachment_files(self, ticket_id: int) -> list[dict[str, Any]]:
        """The ticket's stored attachments with their bytes (purged ones are gone)."""
        return list(self.db.query("select filename, content_type, data from attachments where ticket_id = ? "
                                  "order by id", [ticket_id]))

    def attachment(self, ticket_id: int, att_id: int) -> dict[str, Any] | None:
        rows = list(self.db.query("select * from attachments where id = ? and ticket_id = ?", [att_id, ticket_id]))
        return rows[0] if rows else None

    def add_note(self, ticket_id: int, author: str, text: str, now_iso: str) -> int:
        return self.db["notes"].insert({"ticket_id": ticket_id, "author": author, "text": text,
                                        "created_at": now_iso}).last_pk

    def notes(self, ticket_id: int) -> list[dict[str, Any]]:
        return list(self.db.query("select id, author, text, created_at from notes where ticket_id = ? order by id",
                                  [ticket_id]))

    # -- accounts, as far as ticket work needs them -------------------------------------------------

    def user_exists(self, name: str) -> bool:
        """An active account of that name; without any accounts (CLI-only use) every name goes."""
        if not list(self.db.query("select 1 from users limit 1")):
            return True
        return bool(list(self.db.query("select 1 from users where name = ? and active = 1", [name])))

    def user_email(self, name: str) -> str | None:
        rows = list(self.db.query("select email from users where name = ? and active = 1", [name]))
        return rows[0]["email"] if rows and rows[0]["email"] else None
