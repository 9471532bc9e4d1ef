"""Queries of the handler's desk: unread follow-ups, server moves waiting for the poller, poll runs."""

from __future__ import annotations

from typing import Any

from intake.store.base import NotFoundError, StoreBase, utcnow


class DeskQueries(StoreBase):
    def unread_messages(self, ticket_id: int) -> set[int]:
        """Ids of the ticket's follow-ups (every mail after the first) that nobody has opened yet."""
        return {r["id"] for r in self.db.query(
            "select fm.id from messages fm where fm.ticket_id = ? "
            "and fm.id > (select min(m0.id) from messages m0 where m0.ticket_id = ?) "
            "and not exists (select 1 from events ev where ev.kind = 'viewed' and ev.message_id = fm.id)",
            [ticket_id, ticket_id])}

    # -- server moves decided on the desk, carried out by the poller ------------------------------------

    def request_move(self, message_pk: int, *, source: str, uid: str, uidvalidity: int | None, from_folder: str,
                     action: str, to_folder: str | None, user: str) -> int:
        """Ask the poller to move (or delete) a mail on the server. Call inside the decision's transaction."""
        return self.db["pending_moves"].insert({
            "message_pk": message_pk, "source": source, "uid": uid, "uidvalidity": uidvalidity,
            "from_folder": from_folder, "action": action, "to_folder": to_folder, "requested_by": user,
            "requested_at": utcnow(), "attempts": 0}).last_pk

    def pending_moves(self, source: str | None = None) -> list[dict[str, Any]]:
        sql = "select * from pending_moves where done_at is null"
        params: list[Any] = []
        if source is not None:
            sql += " and source = ?"
            params.append(source)
        return list(self.db.query(sql + " order by id", params))

    def finish_move(self, move_id: int, *, error: str | None = None, done: bool = False) -> None:
        """Count an attempt at a move: done (``error`` then only a note), or failed with ``error``."""
        with self.transaction() as db:
            row = db["pending_moves"].get(move_id)
            values: dict[str, Any] = {"attempts": (row["attempts"] or 0) + 1, "last_error": error}
            if done or error is None:
                values["done_at"] = utcnow()
            db["pending_moves"].update(move_id, values)
            if "done_at" in values and row["message_pk"]:
                db["messages"].update(row["message_pk"], {
                    "moved_at": values["done_at"],
                    "moved_to": row["to_folder"] if row["action"] == "move" else "(deleted)"})

    # -- poll runs ---------------------------------------------------------------------------------------

    def record_poll_run(self, source: str, started_at: str, *, ok: bool, fetched: int = 0, recorded: int = 0,
                        error_kind: str | None = None, error: str | None = None) -> None:
        with self.transaction() as db:
            db["poll_runs"].insert({"source": source, "started_at": started_at, "finished_at": utcnow(),
                                    "ok": int(ok), "fetched": fetched, "recorded": recorded,
                                    "error_kind": error_kind, "error": (error or "")[:300] or None})
            db.execute("delete from poll_runs where id <= (select max(id) - 1000 from poll_runs)")

    def poll_runs(self, limit: int = 20) -> list[dict[str, Any]]:
        return list(self.db.query(f"select * from poll_runs order by id desc limit {int(limit)}"))

    def auth_failures_in_a_row(self, source: str) -> tuple[int, str | None]:
        """How many of ``source``'s latest poll runs failed to sign in, back to its last other outcome,
        and when the latest of them finished."""
        n, last = 0, None
        for r in self.db.query("select ok, error_kind, finished_at from poll_runs where source = ? "
                               "order by id desc limit 50", [source]):
            if r["ok"] or r["error_kind"] != "auth":
                break
            n += 1
            last = last or r["finished_at"]
        return n, last

    # -- the health page's outbox actions ------------------------------------------------------------------

    def retry_outbox(self, outbox_id: int, user: str, now_iso: str) -> bool:
        """A failed or bounced reply (or one waiting) goes again on the next send run; ``False`` if sent."""
        with self.transaction() as db:
            row = self._outbox_row(outbox_id)
            if row["status"] not in ("failed", "bounced", "pending"):
                return False
            db["outbox"].update(outbox_id, {"status": "pending", "attempts": 0, "next_attempt_at": now_iso})
            self.add_event("reply_retried", actor=user, ticket_id=row["ticket_id"], message_id=row["message_id"],
                           at=now_iso, data={"outbox": outbox_id, "kind": row["kind"], "was": row["status"]})
            return True

    def _outbox_row(self, outbox_id: int) -> dict[str, Any]:
        row = next(iter(self.db.query("select * from outbox where id = ?", [outbox_id])), None)
        if row is None:
            raise NotFoundError(f"no reply #{outbox_id}")
        return row

    def cancel_outbox(self, outbox_id: int, user: str, now_iso: str) -> bool:
        """A reply that has not gone is not sent at all; ``False`` if it was sent already."""
        with self.transaction() as db:
            row = self._outbox_row(outbox_id)
            if row["status"] not in ("failed", "bounced", "pending"):
                return False
            db["outbox"].update(outbox_id, {"status": "cancelled"})
            self.add_event("reply_cancelled", actor=user, ticket_id=row["ticket_id"], message_id=row["message_id"],
                           at=now_iso, data={"outbox": outbox_id, "kind": row["kind"], "was": row["status"]})
            return True
