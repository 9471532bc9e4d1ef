"""Queries for the staff side: server-side web sessions and the login limiter."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from intake.store.base import StoreBase


def _sid_hash(sid: str) -> str:
    # Only a hash is stored: a copy of the database cannot be turned into a working cookie.
    return hashlib.sha256(sid.encode("utf-8")).hexdigest()


class StaffQueries(StoreBase):
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

    def settle_login_attempt(self, attempt_id: int, success: bool) -> None:
        if success:
            with self.transaction() as db:
                db.execute("update login_attempts set success = 1 where id = ?", [attempt_id])
