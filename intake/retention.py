"""Retention: the personal contents of tickets closed long ago are purged; metadata and history stay."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from intake.store import Store

BATCH = 500  # tickets purged per set of statements (well under SQLite's limit on bound parameters)


@dataclass(frozen=True)
class PurgeResult:
    tickets: int
    messages: int

    def summary(self) -> str:
        return f"{self.tickets} tickets purged, {self.messages} mails cleared"


def purge(store: Store, older_than_days: int, now: datetime | None = None) -> PurgeResult:
    """Remove personal contents of tickets closed more than ``older_than_days`` ago.

    The form JSON, the attachments, note texts, the bodies of handler-written replies and the stored
    mails of those tickets go; the ticket's metadata and its history stay. Stored bytes of mail without a
    ticket (rejected, ignored, settled held mail) recorded that long ago are cleared too. Mail still held
    for a handler is kept.
    """
    now = now or datetime.now(UTC)
    cutoff = (now - timedelta(days=older_than_days)).isoformat(timespec="seconds")
    now_iso = now.isoformat(timespec="seconds")
    with store.transaction():
        ids = store.closed_before(cutoff)
        cleared = 0
        for start in range(0, len(ids), BATCH):
            batch = ids[start: start + BATCH]
            n_att, n_mail = store.purge_tickets(batch, now_iso)
            cleared += n_mail
            store.add_events([{"kind": "purged", "actor": "bot", "ticket_id": ticket_id, "at": now_iso,
                               "data": {"attachments": n_att.get(ticket_id, 0), "days": older_than_days}}
                              for ticket_id in batch])
        cleared += store.clear_unticketed_mail(cutoff)
    return PurgeResult(tickets=len(ids), messages=cleared)


def purge_job(config: Any) -> Callable[[], PurgeResult]:
    """The retention job for ``intake run``: purge with ``retention.days`` on the configured store."""

    def job() -> PurgeResult:
        from intake.store import open_store

        store = open_store(config.db_path)  # its own connection: the scheduler runs jobs in other threads
        try:
            return purge(store, config["retention"]["days"])
        finally:
            store.db.conn.close()

    return job
