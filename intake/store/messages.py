"""Queries on incoming mail and mailbox state."""

from __future__ import annotations

from typing import Any

from intake.store.base import StoreBase, utcnow


class MessageQueries(StoreBase):
    def find_message(self, message_key: str) -> dict[str, Any] | None:
        rows = self.rows("select * from messages where message_key = ?", [message_key])
        return rows[0] if rows else None

    def mark_moved(self, message_pk: int, folder: str, *, event: str | None = None,
                   data: dict[str, Any] | None = None) -> None:
        with self.transaction():
            self.update_row("messages", message_pk, {"moved_at": utcnow(), "moved_to": folder})
            if event:
                self.add_event(event, message_id=message_pk, data=data)

    def mark_moved_many(self, message_pks: list[int], folder: str) -> None:
        """:meth:`mark_moved` for many mails moved to one folder, a statement per 500."""
        at = utcnow()
        with self.transaction():
            for start in range(0, len(message_pks), 500):
                chunk = message_pks[start:start + 500]
                marks = ",".join("?" * len(chunk))
                self._write(f"update messages set moved_at = ?, moved_to = ? where id in ({marks})",
                            [at, folder, *chunk])

    def messages(self, *, verdicts: tuple[str, ...] | None = None, limit: int = 200,
                 sources: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
        """The newest mails (with ``verdicts``); with ``sources``, only mail that came in through them."""
        sql = "select id, message_id, sender, subject, verdict, reasons, routine, request_type, "
        sql += "ticket_id, recorded_at, moved_to, reply_suppressed from messages"
        only, only_params = "", []
        if sources is not None:
            only = " and source in (" + (",".join("?" * len(sources)) or "null") + ")"
            only_params = list(sources)
        if not verdicts:
            return list(self.db.query(sql + f" where 1{only} order by id desc limit {int(limit)}", only_params))
        # One walk of the verdict index per verdict, newest first and stopped by the limit, rather than
        # `verdict in (...)`, which sorts every such message ever recorded before taking the newest.
        newest = f"select * from ({sql} where verdict = ?{only} order by id desc limit {int(limit)})"
        union = " union all ".join([newest] * len(verdicts))
        params = [p for v in verdicts for p in [v, *only_params]]
        return list(self.db.query(f"{union} order by id desc limit {int(limit)}", params))

    # -- mailbox state ------------------------------------------------------------------------

    def uidvalidity(self, source: str) -> int | None:
        rows = list(self.db.query("select uidvalidity from mailbox_state where source = ?", [source]))
        return rows[0]["uidvalidity"] if rows else None

    def set_uidvalidity(self, source: str, value: int) -> None:
        with self.transaction():
            self.db["mailbox_state"].upsert(
                {"source": source, "uidvalidity": value, "updated_at": utcnow()}, pk="source"
            )

    # -- moves left unmarked, parked mail ------------------------------------------------------

    def not_moved(self, source: str) -> list[dict[str, Any]]:
        """Recorded mail of ``source`` not marked as moved, and not parked: the poller checks these."""
        return list(self.db.query(
            "select m.id, m.uid, m.uidvalidity, m.message_id, m.message_key, m.verdict, m.reasons "
            "from messages m where m.source = ? and m.moved_at is null and not exists "
            "(select 1 from parked p where p.message_pk = m.id and p.parked_at is not null) order by m.id",
            [source],
        ))

    def failures(self, source: str) -> dict[str, bool]:
        """Mail of ``source`` that failed before: message key -> parked. The poller leaves parked mail alone."""
        rows = self.db.query("select message_key, parked_at from parked where source = ?", [source])
        return {r["message_key"]: r["parked_at"] is not None for r in rows}

    def count_failure(self, source: str, uid: str, message_key: str, *, reason: str, detail: str,
                      max_attempts: int, message_pk: int | None = None) -> tuple[int, bool]:
        """Count one failed attempt at a mail; park it at ``max_attempts``. Returns (attempts, parked now)."""
        now = utcnow()
        with self.transaction() as db:
            rows = list(db.query("select * from parked where source = ? and message_key = ?",
                                 [source, message_key]))
            if rows and rows[0]["parked_at"] is not None:
                return rows[0]["attempts"], False
            attempts = (rows[0]["attempts"] if rows else 0) + 1
            parked = attempts >= max_attempts
            values = {"source": source, "uid": uid, "message_key": message_key, "message_pk": message_pk,
                      "attempts": attempts, "reason": reason, "detail": detail[:300], "last_failed_at": now,
                      "parked_at": now if parked else None}
            if rows:
                db["parked"].update(rows[0]["id"], values)
                parked_id = rows[0]["id"]
            else:
                parked_id = db["parked"].insert({**values, "first_failed_at": now}).last_pk
            if parked:
                self.add_event("mail_parked", message_id=message_pk, at=now,
                               data={"parked": parked_id, "reason": reason, "attempts": attempts, "uid": uid})
            return attempts, parked

    def clear_failures(self, source: str, message_key: str) -> None:
        """Forget counted failures of a mail that went through after all (never a parked one)."""
        with self.transaction() as db:
            db.execute("delete from parked where source = ? and message_key = ? and parked_at is null",
                       [source, message_key])

    def parked(self, *, limit: int = 200) -> list[dict[str, Any]]:
        """Parked mail, newest first: where it is, why, how often it failed (never its content)."""
        return list(self.db.query(
            "select p.id, p.source, p.uid, p.message_pk, p.attempts, p.reason, p.detail, p.first_failed_at, "
            "p.parked_at, m.message_id, m.verdict from parked p left join messages m on m.id = p.message_pk "
            f"where p.parked_at is not null order by p.id desc limit {int(limit)}"
        ))
