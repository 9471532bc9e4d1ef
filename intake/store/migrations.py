"""Recorded schema migrations: ordered, append-only, each applied in its own transaction.

Never edit an applied migration; add a new one at the end of :data:`MIGRATIONS`.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlite_utils


def _m001_initial(db: sqlite_utils.Database) -> None:
    db["messages"].create(
        {
            "id": int,
            "message_key": str,  # Message-ID, or sha256 of the raw bytes when it has none
            "message_id": str,
            "source": str,
            "uidvalidity": int,
            "uid": str,
            "received_at": str,  # when the mailbox got it (IMAP INTERNALDATE), if known
            "sent_at": str,  # the mail's own Date header
            "sender": str,
            "subject": str,  # blanked for mail rejected for personal data in the subject
            "verdict": str,
            "reasons": str,  # JSON list of {code, detail}
            "routine": str,
            "request_type": str,
            "ticket_id": int,
            "size": int,
            "reply_suppressed": str,  # reason code when a reply was due but not sent (old, rate limit)
            "recorded_at": str,
            "moved_at": str,
            "moved_to": str,
            "raw": bytes,  # kept for accepted/held/ignored mail; never for personal-data rejections
        },
        pk="id",
        not_null={"message_key", "verdict", "recorded_at"},
    )
    db["messages"].create_index(["message_key"], unique=True)
    db["messages"].create_index(["verdict", "recorded_at"])
    db["messages"].create_index(["sender", "recorded_at"])

    db["tickets"].create(
        {
            "id": int,
            "ref": str,
            "routine": str,
            "request_type": str,
            "queue": str,
            "status": str,
            "requester": str,
            "subject": str,
            "form": str,  # JSON of the parsed form; NULL once purged
            "user_count": int,
            "assignee": str,
            "created_at": str,
            "updated_at": str,
            "closed_at": str,
            "purged_at": str,
        },
        pk="id",
        not_null={"ref", "routine", "status", "created_at"},
    )
    db["tickets"].create_index(["ref"], unique=True)
    db["tickets"].create_index(["queue", "status"])

    db["attachments"].create(
        {"id": int, "ticket_id": int, "filename": str, "content_type": str, "size": int, "data": bytes},
        pk="id",
        foreign_keys=[("ticket_id", "tickets", "id")],
    )

    db["events"].create(
        {
            "id": int,
            "at": str,
            "ticket_id": int,
            "message_id": int,
            "actor": str,  # "bot" or a handler's user name
            "kind": str,  # received, ticket_created, reply_queued, reply_sent, status_changed, note, ...
            "data": str,  # JSON; never a personal value
        },
        pk="id",
    )
    db["events"].create_index(["ticket_id", "at"])

    db["outbox"].create(
        {
            "id": int,
            "message_id": int,  # the incoming message it answers, if any
            "ticket_id": int,
            "kind": str,  # ack, rejection, completion, handler_reply
            "to_addr": str,
            "subject": str,
            "body": str,
            "rfc_message_id": str,  # our reply's own Message-ID, remembered for threading
            "in_reply_to": str,
            "references_": str,
            "attach_blank_form": int,
            "status": str,  # pending, sent, failed
            "attempts": int,
            "next_attempt_at": str,
            "last_error": str,
            "created_at": str,
            "sent_at": str,
        },
        pk="id",
        not_null={"status", "created_at"},
    )
    db["outbox"].create_index(["status", "next_attempt_at"])
    db["outbox"].create_index(["rfc_message_id"], unique=True)
    db["outbox"].create_index(["to_addr", "created_at"])

    db["mailbox_state"].create(
        {"source": str, "uidvalidity": int, "updated_at": str}, pk="source"
    )
    db["ref_counters"].create({"prefix": str, "year": int, "last": int}, pk=("prefix", "year"))


def _m002_staff(db: sqlite_utils.Database) -> None:
    """Staff side: local accounts, login attempts (rate limiting) and internal notes."""
    db["users"].create(
        {
            "id": int,
            "name": str,
            "password_hash": str,  # werkzeug scrypt hash
            "role": str,  # handler or admin
            "active": int,
            "created_at": str,
            "password_changed_at": str,
        },
        pk="id",
        not_null={"name", "password_hash", "role", "active", "created_at"},
    )
    db["users"].create_index(["name"], unique=True)
    db["login_attempts"].create(
        {"id": int, "at": str, "username": str, "ip": str, "success": int},
        pk="id",
        not_null={"at", "success"},
    )
    db["login_attempts"].create_index(["username", "at"])
    db["login_attempts"].create_index(["ip", "at"])
    db["notes"].create(
        {"id": int, "ticket_id": int, "author": str, "text": str, "created_at": str},  # text NULL once purged
        pk="id",
        not_null={"ticket_id", "author", "created_at"},
        foreign_keys=[("ticket_id", "tickets", "id")],
    )
    db["notes"].create_index(["ticket_id"])


def _m003_content_hash(db: sqlite_utils.Database) -> None:
    """Messages remember a hash of their body, to tell a reused Message-ID from a re-delivery."""
    db["messages"].add_column("content_hash", str)


def _m006_sessions(db: sqlite_utils.Database) -> None:
    """Server-side web sessions: logging out ends the session for every copy of its cookie."""
    db["web_sessions"].create(
        {"sid_hash": str, "user": str, "created_at": str, "ended_at": str},
        pk="sid_hash",
        not_null={"user", "created_at"},
    )
    db["web_sessions"].create_index(["user"])


#: Ordered, append-only. Never edit an applied migration; add a new one.
MIGRATIONS: list[tuple[str, Callable[[sqlite_utils.Database], None]]] = [
    ("001_initial", _m001_initial),
    ("002_staff", _m002_staff),
    ("003_content_hash", _m003_content_hash),
    ("006_sessions", _m006_sessions),
]
