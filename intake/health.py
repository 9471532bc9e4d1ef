"""What the health page and ``intake status`` show: the last polls, the outbox's trouble, parked mail,
server moves still waiting, and whether the mailbox and SMTP logins work (from the last outcomes)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from intake.store import Store

#: Login states: "ok", "failing" (with the error), "unknown" (nothing tried yet).


@dataclass
class Health:
    polls: list[dict[str, Any]] = field(default_factory=list)
    mailbox: tuple[str, str] = ("unknown", "")
    smtp: tuple[str, str] = ("unknown", "")
    pending: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)
    bounced: list[dict[str, Any]] = field(default_factory=list)
    parked: list[dict[str, Any]] = field(default_factory=list)
    moves: list[dict[str, Any]] = field(default_factory=list)
    backoff_until: str = ""

    @property
    def ok(self) -> bool:
        return (self.mailbox[0] != "failing" and self.smtp[0] != "failing" and not self.failed and not self.parked
                and not any(m["last_error"] for m in self.moves))


def health(store: Store, *, now: datetime | None = None) -> Health:
    from intake.moves import backoff_until

    now = now or datetime.now(UTC)
    h = Health(polls=store.poll_runs(10))
    if h.polls:
        last = h.polls[0]
        if last["ok"] or last["error_kind"] == "mail":
            h.mailbox = ("ok", last["finished_at"] or "")
        else:
            h.mailbox = ("failing", last["error"] or last["error_kind"] or "")
            until = backoff_until(store, last["source"] or "")
            h.backoff_until = until.isoformat(timespec="seconds") if until else ""
    h.pending = store.outbox_by_status(("pending",))
    h.failed = store.outbox_by_status(("failed",))
    h.bounced = store.outbox_by_status(("bounced",))
    errors = [r for r in h.pending if r["last_error"]]
    if errors:
        h.smtp = ("failing", errors[0]["last_error"])
    elif (sent := store.last_sent_at()) is not None:
        h.smtp = ("ok", sent)
    h.parked = store.parked()
    h.moves = store.pending_moves()
    return h
