"""The SQLite queue store: messages, tickets, events, outbox and mailbox state.

One writer (the poller, or a handler's action), many readers; WAL mode so the web UI can read
while a poll writes. Schema changes are recorded migrations (:mod:`intake.store.migrations`), each
applied in a transaction. Every SQL statement of the application lives in this package: the core
(:mod:`intake.store.base`) and one module of queries per area, combined in :class:`Store`.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

import sqlite_utils

from intake.store.approvals import ApprovalQueries
from intake.store.base import NotFoundError, StoreBase, utcnow
from intake.store.checklists import ChecklistQueries
from intake.store.counters import CounterQueries
from intake.store.desk import DeskQueries
from intake.store.mailboxes import MailboxQueries
from intake.store.messages import MessageQueries
from intake.store.migrations import MIGRATIONS
from intake.store.orderers import OrdererQueries
from intake.store.outbox import OutboxQueries
from intake.store.recording import RecordingQueries
from intake.store.register import RegisterQueries
from intake.store.reports import ReportQueries
from intake.store.staff import StaffQueries
from intake.store.tickets import TicketQueries
from intake.store.timers import TimerQueries

__all__ = ["MIGRATIONS", "NotFoundError", "Recorded", "Store", "StoreBase", "open_store", "utcnow"]


@dataclass(frozen=True)
class Recorded:
    """The outcome of recording one message."""

    message_pk: int
    new: bool  # False when the message was already recorded (only the move is left to do)
    ticket_ref: str | None
    outbox_id: int | None


class Store(MessageQueries, TicketQueries, OutboxQueries, RecordingQueries, ReportQueries, TimerQueries,
            RegisterQueries, MailboxQueries, StaffQueries, OrdererQueries, ChecklistQueries, ApprovalQueries,
            DeskQueries, CounterQueries, StoreBase):
    """The queue database. Open with :func:`open_store`."""


def open_store(path: str | Path, *, busy_timeout: float = 30) -> Store:
    """Open (creating when missing) the database at ``path``, in WAL mode, fully migrated.

    ``busy_timeout`` is how many seconds a write waits for another writer's lock before it fails. One
    connection is used by one thread at a time (``intake run`` gives the poll and the outbox a store each).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), timeout=busy_timeout, check_same_thread=False)
    db = sqlite_utils.Database(conn)
    db.execute(f"pragma busy_timeout = {int(busy_timeout * 1000)}")
    db.enable_wal()
    db.execute("pragma synchronous = full")  # every commit flushed (the default, said out loud): see transaction()
    db.execute("pragma foreign_keys = on")
    # Deleted content (purged forms, ended register entries, dropped mail) is overwritten with zeros, so a
    # copy of the database file does not keep it in free pages.
    db.execute("pragma secure_delete = on")
    store = Store(db)
    store.migrate()
    return store
