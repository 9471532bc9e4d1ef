"""The store's core: the connection, transactions, migrations and the audit trail."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import sqlite_utils

from intake.store.migrations import MIGRATIONS
from parsers.errors import IntakeError


class NotFoundError(IntakeError, LookupError):
    """No ticket or message with that reference."""


def utcnow() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class StoreBase:
    """Connection, transactions, migrations and events; the query mixins build on it."""

    def __init__(self, db: sqlite_utils.Database):
        self.db = db

    @contextmanager
    def transaction(self, *, synced: bool = True) -> Iterator[sqlite_utils.Database]:
        """One atomic unit of work; nested calls become savepoints.

        The outer transaction is ``BEGIN IMMEDIATE``: it takes the write lock at once (waiting up to the
        busy timeout), so a poll and a handler's action never collide halfway through a transaction.

        Every commit is flushed to disk (``synchronous = FULL``, ~2.5 ms on this machine) unless
        ``synced=False``: then it survives the process being killed but may be lost with the machine's power
        until the next flushed commit. Only marking a reply sent uses that (README, "Performance").
        """
        conn = self.db.conn
        if conn.in_transaction:
            with self.db.atomic():
                yield self.db
            return
        if not synced:
            conn.execute("pragma synchronous = normal")
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        finally:
            if not synced:
                conn.execute("pragma synchronous = full")

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
        """Append to the audit trail. ``data`` holds ids, codes and counts, never a personal value."""
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
