"""Queries on outgoing mail (the outbox)."""

from __future__ import annotations

from intake.store.base import StoreBase


class OutboxQueries(StoreBase):
    def replies_to_since(self, address: str, since_iso: str) -> int:
        """How many automatic replies were queued for ``address`` since ``since_iso``."""
        (count,) = self.db.execute(
            "select count(*) from outbox where lower(to_addr) = lower(?) and created_at >= ? "
            "and kind in ('ack', 'rejection')",
            [address, since_iso],
        ).fetchone()
        return count
