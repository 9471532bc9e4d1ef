"""The store's core: the connection, transactions, migrations and the audit trail."""

from __future__ import annotations

import json
import re
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import Any

import sqlite_utils

from intake.store.migrations import MIGRATIONS
from parsers.errors import IntakeError


class NotFoundError(IntakeError, LookupError):
    """No ticket or message with that reference."""


def utcnow() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


_NAME = re.compile(r"[a-z_][a-z0-9_]*\Z")


def _value(value: Any) -> Any:
    """A Python value as SQLite stores it, as sqlite-utils would write it (JSON for containers)."""
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, ensure_ascii=False, default=repr)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


class StoreBase:
    """Connection, transactions, migrations and events; the query mixins build on it."""

    def __init__(self, db: sqlite_utils.Database):
        self.db = db
        self._busy_ms: int | None = None  # the connection's busy timeout, read at the first transaction

    def insert_row(self, table: str, row: dict[str, Any]) -> int:
        """Insert ``row`` into ``table`` with one statement; its new id.

        The paths run for every mail (recording, events, the outbox) use this rather than sqlite-utils'
        ``Table.insert``, which asks SQLite for the table list, the view list and the table's columns
        before each insert: about 60 statements a mail instead of 10.
        """
        if not _NAME.match(table) or not all(_NAME.match(c) for c in row):
            raise ValueError(f"not a table or column name: {table}")
        cols = ", ".join(f'"{c}"' for c in row)
        marks = ", ".join("?" * len(row))
        return self._write(f'insert into "{table}" ({cols}) values ({marks})',
                           [_value(v) for v in row.values()]).lastrowid

    def read_only(self) -> None:
        """Refuse every write on this connection from now on (a deciding worker's: it only reads)."""
        self.db.execute("pragma query_only = 1")

    def _write(self, sql: str, params: list[Any]) -> sqlite3.Cursor:
        """Run one write; on its own (no transaction open) it is committed at once, as sqlite-utils' were."""
        if self.db.conn.in_transaction:
            return self.db.conn.execute(sql, params)
        with self.transaction():
            return self.db.conn.execute(sql, params)

    def rows(self, sql: str, params: list[Any] | tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        """The rows of one read, as dicts: for reads run for every mail (sqlite-utils' ``query`` wraps each
        one in a savepoint of its own)."""
        cursor = self.db.conn.execute(sql, params)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def update_row(self, table: str, pk: int, changes: dict[str, Any]) -> None:
        """Set ``changes`` on row ``pk`` of ``table`` with one statement (sqlite-utils' ``Table.update``
        reads the whole row first, stored mail included); raises ``NotFoundError`` for no such row."""
        if not _NAME.match(table) or not all(_NAME.match(c) for c in changes):
            raise ValueError(f"not a table or column name: {table}")
        if not changes:
            return
        sets = ", ".join(f'"{c}" = ?' for c in changes)
        cursor = self._write(f'update "{table}" set {sets} where id = ?',
                             [*(_value(v) for v in changes.values()), pk])
        if cursor.rowcount == 0:
            raise sqlite_utils.db.NotFoundError(f"no row {pk} in {table}")

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
            self._begin_immediate(conn)
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

    def _begin_immediate(self, conn: sqlite3.Connection) -> None:
        """``BEGIN IMMEDIATE``, waiting for another writer's lock at most the connection's busy timeout.

        SQLite's own wait sleeps 1, 2, 5, 10, 15, 20, 25 ... 100 ms between tries, so a lock held 40 ms (a
        poll recording a batch) was taken up to 25 ms after it was free, and a sender marking each reply sent
        lost seconds a poll that way. Here the tries come every 0.5 to 4 ms.
        """
        busy_ms = self._busy_ms
        if busy_ms is None:
            busy_ms = self._busy_ms = int(conn.execute("pragma busy_timeout").fetchone()[0])
        if busy_ms <= 0:
            conn.execute("BEGIN IMMEDIATE")
            return
        conn.execute("pragma busy_timeout = 0")
        try:
            deadline = time.monotonic() + busy_ms / 1000
            delay = 0.0005
            while True:
                try:
                    conn.execute("BEGIN IMMEDIATE")
                    return
                except sqlite3.OperationalError as exc:
                    if getattr(exc, "sqlite_errorcode", None) != sqlite3.SQLITE_BUSY or time.monotonic() >= deadline:
                        raise
                time.sleep(delay)
                delay = min(delay * 2, 0.004)
        finally:
            conn.execute(f"pragma busy_timeout = {busy_ms}")

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
        return self.insert_row("events", {
            "at": at or utcnow(),
            "ticket_id": ticket_id,
            "message_id": message_id,
            "actor": actor,
            "kind": kind,
            "data": json.dumps(data or {}, ensure_ascii=False),
        })
