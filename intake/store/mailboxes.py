"""Queries on the mailboxes the service serves: their status (``intake status``) and handlers' desks."""

from __future__ import annotations

import threading
from typing import Any

from intake.store.base import StoreBase, utcnow

_STATUS_LOCK = threading.Lock()  # the watcher threads and the poll worker share one status connection


class MailboxQueries(StoreBase):
    def update_mailbox_status(self, name: str, *, increment: dict[str, int] | None = None, **values: Any) -> None:
        """Set ``values`` (and add ``increment``) on the status row of mailbox ``name``, creating it."""
        values["updated_at"] = utcnow()
        with _STATUS_LOCK, self.transaction() as db:
            db.execute("insert or ignore into mailbox_status (name, polls, failures, login_failures) "
                       "values (?, 0, 0, 0)", [name])
            sets = [f"{key} = ?" for key in values] + [f"{key} = coalesce({key}, 0) + ?" for key in increment or {}]
            db.execute(f"update mailbox_status set {', '.join(sets)} where name = ?",
                       [*values.values(), *(increment or {}).values(), name])

    def mailbox_status(self) -> list[dict[str, Any]]:
        return list(self.db.query("select * from mailbox_status order by name"))

    def forget_mailboxes_except(self, names: list[str]) -> None:
        """Drop the status of mailboxes no longer configured (a renamed or removed desk)."""
        marks = ",".join("?" * len(names))
        with _STATUS_LOCK, self.transaction() as db:
            db.execute(f"delete from mailbox_status where name not in ({marks})", names)

    def desk_sources(self) -> dict[str, str]:
        """Source name -> mailbox name, as last recorded by ``intake run``."""
        return {r["source"]: r["name"] for r in self.db.query("select name, source from mailbox_status")
                if r["source"]}

    def user_desks(self, user: str) -> list[str]:
        """The mailbox names handler ``user`` is limited to; ``[]`` means every desk."""
        rows = list(self.db.query("select desks from users where name = ?", [user]))
        if not rows or not rows[0]["desks"]:
            return []
        return [d for d in rows[0]["desks"].split(",") if d]

    def set_user_desks(self, user: str, desks: list[str]) -> int:
        """Limit ``user`` to ``desks`` (``[]``: every desk); returns the rows changed (0: no such user)."""
        with self.transaction() as db:
            return db.execute("update users set desks = ? where name = ?", [",".join(desks), user]).rowcount
