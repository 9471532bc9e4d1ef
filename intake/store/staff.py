"""Queries for the staff side: local accounts, server-side web sessions and the login limiter."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any

from intake.store.base import StoreBase


def _sid_hash(sid: str) -> str:
    # Only a hash is stored: a copy of the database cannot be turned into a working cookie.
    return hashlib.sha256(sid.encode("utf-8")).hexdigest()


class StaffQueries(StoreBase):
    # -- accounts -----------------------------------------------------------------------------------
    # User names match case-insensitively (``collate nocase``) unless a method says otherwise.

    def user_named(self, name: str) -> dict[str, Any] | None:
        """The account called ``name`` (any case, active or not), every column; None when there is none."""
        rows = list(self.db.query("select * from users where name = ? collate nocase", [name]))
        return rows[0] if rows else None

    def user_id_exact(self, name: str) -> int | None:
        """The id of the account whose name is exactly ``name`` (the column's own comparison), or None."""
        rows = list(self.db.query("select id from users where name = ?", [name]))
        return rows[0]["id"] if rows else None

    def active_user(self, name: str) -> dict[str, Any] | None:
        """``name``, ``role`` and ``password_hash`` of the active account called ``name`` (any case), or None."""
        rows = list(self.db.query(
            "select name, role, password_hash from users where name = ? collate nocase and active = 1", [name]))
        return rows[0] if rows else None

    def list_user_rows(self) -> list[dict[str, Any]]:
        """Every account by name: name, role, active, created_at, password_changed_at (never the hash)."""
        return list(self.db.query("select name, role, active, created_at, password_changed_at from users "
                                  "order by name"))

    def insert_user(self, name: str, password_hash: str, role: str, now: str) -> None:
        """A new active account; ``now`` (ISO) is both its creation and its password's time.

        The caller checks in the same transaction that the name (in any case) is free."""
        self.db["users"].insert({"name": name, "password_hash": password_hash, "role": role, "active": 1,
                                 "created_at": now, "password_changed_at": now})

    def set_user_password_hash(self, user_id: int, password_hash: str, changed_at: str) -> None:
        """Store a new password hash for the account ``user_id`` and when (ISO) it changed."""
        self.db["users"].update(user_id, {"password_hash": password_hash, "password_changed_at": changed_at})

    def set_user_active(self, user_id: int, active: bool) -> None:
        """Enable or disable the account ``user_id`` (its sessions are the caller's to end)."""
        self.db["users"].update(user_id, {"active": int(active)})

    def set_user_role(self, user_id: int, role: str) -> None:
        """Give the account ``user_id`` the role ``role`` (checked by the caller)."""
        self.db["users"].update(user_id, {"role": role})

    def set_user_email(self, user_id: int, email: str | None) -> None:
        """Where mail to the account ``user_id`` goes; None clears it."""
        self.db["users"].update(user_id, {"email": email})

    # -- sessions ---------------------------------------------------------------------------------

    def open_session(self, sid: str, user: str, now: datetime) -> None:
        """Remember a signed-in session (its id lives in the signed cookie, its hash here)."""
        with self.transaction() as db:
            db.execute("insert into web_sessions (sid_hash, user, created_at, ended_at) values (?, ?, ?, null)",
                       [_sid_hash(sid), user, now.isoformat(timespec="seconds")])
            # Ended or long-expired rows are of no further use.
            db.execute("delete from web_sessions where ended_at is not null and ended_at < ? "
                       "or created_at < ?", [(now - timedelta(days=1)).isoformat(timespec="seconds"),
                                             (now - timedelta(days=31)).isoformat(timespec="seconds")])

    def session_live(self, sid: str, user: str, now: datetime, lifetime: timedelta) -> bool:
        """True when ``sid`` was opened for ``user`` within ``lifetime`` and has not been ended."""
        row = self.db.execute(
            "select 1 from web_sessions where sid_hash = ? and user = ? and ended_at is null and created_at >= ?",
            [_sid_hash(sid), user, (now - lifetime).isoformat(timespec="seconds")],
        ).fetchone()
        return row is not None

    def end_session(self, sid: str, now: datetime) -> bool:
        """End one session (logout); True when it was live."""
        with self.transaction() as db:
            cur = db.execute("update web_sessions set ended_at = ? where sid_hash = ? and ended_at is null",
                             [now.isoformat(timespec="seconds"), _sid_hash(sid)])
            return cur.rowcount > 0

    def end_sessions_of(self, user: str, now: datetime) -> int:
        """End every live session of ``user`` (password change, account disabled)."""
        with self.transaction() as db:
            cur = db.execute("update web_sessions set ended_at = ? where user = ? and ended_at is null",
                             [now.isoformat(timespec="seconds"), user])
            return cur.rowcount

    # -- login limiter ------------------------------------------------------------------------------

    def reserve_login_attempt(self, username: str, ip: str, now: datetime, window: timedelta,
                              max_per_user: int, max_per_ip: int) -> int | None:
        """Count recent failures and record this attempt as failed, in one ``BEGIN IMMEDIATE`` transaction.

        Returns the attempt's id, or ``None`` when the user name or the address is over its limit (nothing is
        recorded then, and the caller must not check the password). Concurrent attempts are serialised by the
        write lock, so at most ``max_per_user`` password checks can run per name and window, however many
        requests arrive at once. :meth:`settle_login_attempt` marks a right password afterwards.
        """
        since = (now - window).isoformat(timespec="seconds")
        with self.transaction() as db:
            (by_user,) = db.execute("select count(*) from login_attempts where username = ? and success = 0 "
                                    "and at >= ?", [username, since]).fetchone()
            (by_ip,) = db.execute("select count(*) from login_attempts where ip = ? and success = 0 and at >= ?",
                                  [ip, since]).fetchone()
            if by_user >= max_per_user or by_ip >= max_per_ip:
                return None
            cur = db.execute("insert into login_attempts (at, username, ip, success) values (?, ?, ?, 0)",
                             [now.isoformat(timespec="seconds"), username, ip])
            db.execute("delete from login_attempts where at < ?", [(now - 4 * window).isoformat(timespec="seconds")])
            return cur.lastrowid

    def failed_logins_since(self, username: str, ip: str, since: str) -> tuple[int, int]:
        """How many logins failed at or after ``since`` (ISO) for ``username`` and from ``ip``, in that order.

        A read only (refuse early, or tell "too many tries" from "wrong password"); the limit itself is enforced
        atomically by :meth:`reserve_login_attempt`."""
        (by_user,) = self.db.execute(
            "select count(*) from login_attempts where username = ? and success = 0 and at >= ?", [username, since]
        ).fetchone()
        (by_ip,) = self.db.execute(
            "select count(*) from login_attempts where ip = ? and success = 0 and at >= ?", [ip, since]
        ).fetchone()
        return by_user, by_ip

    def settle_login_attempt(self, attempt_id: int, success: bool) -> None:
        if success:
            with self.transaction() as db:
                db.execute("update login_attempts set success = 1 where id = ?", [attempt_id])
