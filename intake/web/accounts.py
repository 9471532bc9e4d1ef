"""Local staff accounts: scrypt password hashes, roles, login rate limiting and server-side sessions (no Flask here)."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from werkzeug.security import check_password_hash, generate_password_hash

from intake.store import NotFoundError, Store
from parsers.errors import IntakeError

ROLES = ("handler", "admin")
MIN_PASSWORD = 12
#: Failed logins allowed per user name, and per client address, within WINDOW.
MAX_FAILURES_PER_USER = 5
MAX_FAILURES_PER_IP = 20
WINDOW = timedelta(minutes=15)

_NAME = re.compile(r"^[A-Za-z0-9._@-]{1,64}$")
# Checked against when the user does not exist, so a wrong name costs as long as a wrong password.
_DUMMY_HASH = generate_password_hash("not a real password", method="scrypt")


class AccountError(IntakeError, ValueError):
    """A bad user name, role or password."""


@dataclass(frozen=True)
class User:
    name: str
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def _now() -> datetime:
    return datetime.now(UTC)


def add_user(store: Store, name: str, password: str, role: str = "handler", *, actor: str = "cli") -> None:
    """Create an account; the password is stored as a scrypt hash only."""
    if not _NAME.match(name):
        raise AccountError("user name: letters, digits and . _ @ - only, at most 64")
    if role not in ROLES:
        raise AccountError(f"role: one of {', '.join(ROLES)}")
    _check_password(password)
    now = _now().isoformat(timespec="seconds")
    with store.transaction():
        if store.user_named(name) is not None:
            raise AccountError(f"user {name} exists")
        store.insert_user(name, generate_password_hash(password, method="scrypt"), role, now)
        store.add_event("user_added", actor=actor, at=now, data={"user": name, "role": role})


def set_password(store: Store, name: str, password: str, *, actor: str = "cli") -> None:
    """Change a password; sessions signed in with the old one stop working."""
    _check_password(password)
    now = _now().isoformat(timespec="seconds")
    with store.transaction():
        row = _row(store, name)
        store.set_user_password_hash(row["id"], generate_password_hash(password, method="scrypt"), now)
        store.add_event("password_changed", actor=actor, at=now, data={"user": name})
        store.end_sessions_of(row["name"], _now())


def set_active(store: Store, name: str, active: bool, *, actor: str = "cli") -> None:
    with store.transaction():
        row = _row(store, name)
        store.set_user_active(row["id"], active)
        if not active:
            store.end_sessions_of(row["name"], _now())
        store.add_event("user_activated" if active else "user_deactivated", actor=actor,
                        at=_now().isoformat(timespec="seconds"), data={"user": row["name"]})


def set_role(store: Store, name: str, role: str, *, actor: str = "cli") -> None:
    """Change a user's role; audited."""
    if role not in ROLES:
        raise AccountError(f"role: one of {', '.join(ROLES)}")
    with store.transaction():
        row = _row(store, name)
        store.set_user_role(row["id"], role)
        store.add_event("role_changed", actor=actor, at=_now().isoformat(timespec="seconds"),
                        data={"user": row["name"], "from": row["role"], "to": role})


def list_users(store: Store) -> list[dict[str, Any]]:
    return store.list_user_rows()


def get_user(store: Store, name: str) -> User | None:
    row = store.active_user(name)
    return User(row["name"], row["role"]) if row else None


def session_stamp(store: Store, name: str) -> str | None:
    """A short fingerprint of the password hash, kept in the session: a password change ends old sessions."""
    row = store.active_user(name)
    return hashlib.sha256(row["password_hash"].encode()).hexdigest()[:16] if row else None


def throttled(store: Store, name: str, ip: str, now: datetime | None = None) -> bool:
    """True when too many logins failed recently for this user name or from this address."""
    since = ((now or _now()) - WINDOW).isoformat(timespec="seconds")
    by_user, by_ip = store.failed_logins_since(name.lower(), ip, since)
    return by_user >= MAX_FAILURES_PER_USER or by_ip >= MAX_FAILURES_PER_IP


def authenticate(store: Store, name: str, password: str, ip: str, now: datetime | None = None) -> User | None:
    """The user when the password is right and the login is not throttled; every attempt is recorded.

    The attempt is counted and recorded (as a failure) atomically *before* the password is checked, and
    marked a success afterwards: concurrent wrong logins cannot all slip under the limit together.
    """
    now = now or _now()
    attempt = store.reserve_login_attempt(name.lower()[:64], ip, now, WINDOW, MAX_FAILURES_PER_USER,
                                          MAX_FAILURES_PER_IP)
    if attempt is None:
        return None
    row = store.active_user(name)
    ok = check_password_hash(row["password_hash"] if row else _DUMMY_HASH, password) and row is not None
    store.settle_login_attempt(attempt, ok)
    return User(row["name"], row["role"]) if ok and row else None


def start_session(store: Store, name: str, now: datetime | None = None) -> str:
    """A new server-side session for ``name``; the returned id goes into the signed cookie."""
    sid = secrets.token_urlsafe(32)
    store.open_session(sid, name, now or _now())
    return sid


def session_live(store: Store, sid: str | None, name: str, lifetime: timedelta, now: datetime | None = None) -> bool:
    """True when the cookie's session id is one we opened for ``name`` and nobody has ended it."""
    return bool(sid) and store.session_live(str(sid), name, now or _now(), lifetime)


def end_session(store: Store, sid: str | None, now: datetime | None = None) -> None:
    """Logging out: the session ends on the server, so any copy of the cookie stops working too."""
    if sid:
        store.end_session(str(sid), now or _now())


def _row(store: Store, name: str) -> dict[str, Any]:
    row = store.user_named(name)
    if row is None:
        raise NotFoundError(f"no user {name}")
    return row


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"password: at least {MIN_PASSWORD} characters")
