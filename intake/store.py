"""The SQLite queue store: messages, tickets, events, outbox and mailbox state.

One writer (the poller, or a handler's action), many readers; WAL mode so the web UI can read
while a poll writes. Schema changes are recorded migrations, each applied in a transaction.
The exactly-once guarantee lives in :meth:`Store.record`: a message, its ticket, its queued
reply and their events are written in one transaction keyed by the message key.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlite_utils


class NotFoundError(LookupError):
    """No ticket or message with that reference."""


def utcnow() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _m001_initial(db: sqlite_utils.Database) -> None:
    db["messages"].create(
        {
            "id": int,
            "message_key": str,  # Message-ID, or sha256 of the raw bytes when it has none
            "message_id": str,
            "source": str,
            "uidvalidity": int,
            "uid": str,
            "received_at": str,  # when the mailbox got it (IMAP INTERNALDATE), if known
            "sent_at": str,  # the mail's own Date header
            "sender": str,
            "subject": str,  # blanked for mail rejected for personal data in the subject
            "verdict": str,
            "reasons": str,  # JSON list of {code, detail}
            "routine": str,
            "request_type": str,
            "ticket_id": int,
            "size": int,
            "reply_suppressed": str,  # reason code when a reply was due but not sent (old, rate limit)
            "recorded_at": str,
            "moved_at": str,
            "moved_to": str,
            "raw": bytes,  # kept for accepted/held/ignored mail; never for personal-data rejections
        },
        pk="id",
        not_null={"message_key", "verdict", "recorded_at"},
    )
    db["messages"].create_index(["message_key"], unique=True)
    db["messages"].create_index(["verdict", "recorded_at"])
    db["messages"].create_index(["sender", "recorded_at"])

    db["tickets"].create(
        {
            "id": int,
            "ref": str,
            "routine": str,
            "request_type": str,
            "queue": str,
            "status": str,
            "requester": str,
            "subject": str,
            "form": str,  # JSON of the parsed form; NULL once purged
            "user_count": int,
            "assignee": str,
            "created_at": str,
            "updated_at": str,
            "closed_at": str,
            "purged_at": str,
        },
        pk="id",
        not_null={"ref", "routine", "status", "created_at"},
    )
    db["tickets"].create_index(["ref"], unique=True)
    db["tickets"].create_index(["queue", "status"])

    db["attachments"].create(
        {"id": int, "ticket_id": int, "filename": str, "content_type": str, "size": int, "data": bytes},
        pk="id",
        foreign_keys=[("ticket_id", "tickets", "id")],
    )

    db["events"].create(
        {
            "id": int,
            "at": str,
            "ticket_id": int,
            "message_id": int,
            "actor": str,  # "bot" or a handler's user name
            "kind": str,  # received, ticket_created, reply_queued, reply_sent, status_changed, note, ...
            "data": str,  # JSON; never a personal value
        },
        pk="id",
    )
    db["events"].create_index(["ticket_id", "at"])

    db["outbox"].create(
        {
            "id": int,
            "message_id": int,  # the incoming message it answers, if any
            "ticket_id": int,
            "kind": str,  # ack, rejection, completion, handler_reply
            "to_addr": str,
            "subject": str,
            "body": str,
            "rfc_message_id": str,  # our reply's own Message-ID, remembered for threading
            "in_reply_to": str,
            "references_": str,
            "attach_blank_form": int,
            "status": str,  # pending, sent, failed
            "attempts": int,
            "next_attempt_at": str,
            "last_error": str,
            "created_at": str,
            "sent_at": str,
        },
        pk="id",
        not_null={"status", "created_at"},
    )
    db["outbox"].create_index(["status", "next_attempt_at"])
    db["outbox"].create_index(["rfc_message_id"], unique=True)
    db["outbox"].create_index(["to_addr", "created_at"])

    db["mailbox_state"].create(
        {"source": str, "uidvalidity": int, "updated_at": str}, pk="source"
    )
    db["ref_counters"].create({"prefix": str, "year": int, "last": int}, pk=("prefix", "year"))


def _m002_staff(db: sqlite_utils.Database) -> None:
    """Staff side: local accounts, login attempts (rate limiting) and internal notes."""
    db["users"].create(
        {
            "id": int,
            "name": str,
            "password_hash": str,  # werkzeug scrypt hash
            "role": str,  # handler or admin
            "active": int,
            "created_at": str,
            "password_changed_at": str,
        },
        pk="id",
        not_null={"name", "password_hash", "role", "active", "created_at"},
    )
    db["users"].create_index(["name"], unique=True)
    db["login_attempts"].create(
        {"id": int, "at": str, "username": str, "ip": str, "success": int},
        pk="id",
        not_null={"at", "success"},
    )
    db["login_attempts"].create_index(["username", "at"])
    db["login_attempts"].create_index(["ip", "at"])
    db["notes"].create(
        {"id": int, "ticket_id": int, "author": str, "text": str, "created_at": str},  # text NULL once purged
        pk="id",
        not_null={"ticket_id", "author", "created_at"},
        foreign_keys=[("ticket_id", "tickets", "id")],
    )
    db["notes"].create_index(["ticket_id"])


def _m003_content_hash(db: sqlite_utils.Database) -> None:
    """Messages remember a hash of their body, to tell a reused Message-ID from a re-delivery."""
    db["messages"].add_column("content_hash", str)


#: Ordered, append-only. Never edit an applied migration; add a new one.
MIGRATIONS: list[tuple[str, Callable[[sqlite_utils.Database], None]]] = [
    ("001_initial", _m001_initial),
    ("002_staff", _m002_staff),
    ("003_content_hash", _m003_content_hash),
]


@dataclass(frozen=True)
class Recorded:
    """The outcome of recording one message."""

    message_pk: int
    new: bool  # False when the message was already recorded (only the move is left to do)
    ticket_ref: str | None
    outbox_id: int | None


class Store:
    """The queue database. Open with :func:`open_store`."""

    def __init__(self, db: sqlite_utils.Database):
        self.db = db

    # -- transactions -------------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[sqlite_utils.Database]:
        """One atomic unit of work; nested calls become savepoints.

        The outer transaction is ``BEGIN IMMEDIATE``: it takes the write lock at once (waiting up to the
        busy timeout), so a poll and a handler's action never collide halfway through a transaction.
        """
        conn = self.db.conn
        if conn.in_transaction:
            with self.db.atomic():
                yield self.db
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def migrate(self) -> list[str]:
        """Apply pending migrations, each in its own transaction; returns the names applied."""
        if "migrations" not in self.db.table_names():
            self.db["migrations"].create({"name": str, "applied_at": str}, pk="name")
        done = {r["name"] for r in self.db["migrations"].rows}
        applied = []
        for name, step in MIGRATIONS:
            if name in done:
                continue
            with self.transaction():
                step(self.db)
                self.db["migrations"].insert({"name": name, "applied_at": utcnow()})
            applied.append(name)
        return applied

    # -- messages -----------------------------------------------------------------------------

    def find_message(self, message_key: str) -> dict[str, Any] | None:
        rows = list(self.db.query("select * from messages where message_key = ?", [message_key]))
        return rows[0] if rows else None

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

    def add_event(
        self,
        kind: str,
        *,
        actor: str = "bot",
        ticket_id: int | None = None,
        message_id: int | None = None,
        data: dict[str, Any] | None = None,
        at: str | None = None,
    ) -> int:
        return self.db["events"].insert(
            {
                "at": at or utcnow(),
                "ticket_id": ticket_id,
                "message_id": message_id,
                "actor": actor,
                "kind": kind,
                "data": json.dumps(data or {}, ensure_ascii=False),
            }
        ).last_pk

    def mark_moved(self, message_pk: int, folder: str) -> None:
        with self.transaction():
            self.db["messages"].update(message_pk, {"moved_at": utcnow(), "moved_to": folder})

    def replies_to_since(self, address: str, since_iso: str) -> int:
        """How many automatic replies were queued for ``address`` since ``since_iso``."""
        (count,) = self.db.execute(
            "select count(*) from outbox where lower(to_addr) = lower(?) and created_at >= ? "
            "and kind in ('ack', 'rejection')",
            [address, since_iso],
        ).fetchone()
        return count

    # -- mailbox state ------------------------------------------------------------------------

    def uidvalidity(self, source: str) -> int | None:
        rows = list(self.db.query("select uidvalidity from mailbox_state where source = ?", [source]))
        return rows[0]["uidvalidity"] if rows else None

    def set_uidvalidity(self, source: str, value: int) -> None:
        with self.transaction():
            self.db["mailbox_state"].upsert(
                {"source": source, "uidvalidity": value, "updated_at": utcnow()}, pk="source"
            )

    # -- tickets ------------------------------------------------------------------------------

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

    def messages(self, *, verdicts: tuple[str, ...] | None = None, limit: int = 200) -> list[dict[str, Any]]:
        sql = "select id, message_id, sender, subject, verdict, reasons, routine, request_type, "
        sql += "ticket_id, recorded_at, moved_to, reply_suppressed from messages"
        params: list[Any] = []
        if verdicts:
            sql += " where verdict in (" + ",".join("?" * len(verdicts)) + ")"
            params.extend(verdicts)
        sql += f" order by id desc limit {int(limit)}"
        return list(self.db.query(sql, params))


def open_store(path: str | Path) -> Store:
    """Open (creating when missing) the database at ``path``, in WAL mode, fully migrated."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # The scheduler runs jobs in one worker thread (never two at once), so sharing is safe.
    conn = sqlite3.connect(str(path), timeout=30, check_same_thread=False)
    db = sqlite_utils.Database(conn)
    db.execute("pragma busy_timeout = 30000")
    db.enable_wal()
    db.execute("pragma foreign_keys = on")
    store = Store(db)
    store.migrate()
    return store
