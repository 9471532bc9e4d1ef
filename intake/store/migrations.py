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


def _m004_lifecycle(db: sqlite_utils.Database) -> None:
    """Lifecycle: timers as rows, mail recipients other than the requester, per-row automatic flag."""
    db["timers"].create(
        {
            "id": int,
            "ticket_id": int,
            "name": str,  # the pack's timer name (one pending timer per name and ticket)
            "event": str,  # the lifecycle event it fires, by the scheduler
            "due_at": str,
            "status": str,  # pending, fired, cancelled
            "state": str,  # the ticket state that set it; leaving that state cancels it unless keep
            "keep": int,
            "created_at": str,
            "fired_at": str,  # set in the same transaction as the step it fired
        },
        pk="id",
        not_null={"ticket_id", "name", "event", "due_at", "status", "created_at"},
        foreign_keys=[("ticket_id", "tickets", "id")],
    )
    db["timers"].create_index(["status", "due_at"])
    db["timers"].create_index(["ticket_id", "status"])
    db["tickets"].add_column("approver", str)  # the approval's present and previous approver addresses
    db["tickets"].add_column("previous_approver", str)
    db["outbox"].add_column("automatic", int)  # 1: RFC 3834 auto-reply headers; NULL: decided by kind
    db["outbox"].add_column("attach_ticket_form", int)  # 1: the ticket's stored form goes with the mail
    db["users"].add_column("email", str)  # where mail to the "handler" role goes


def _m009_register(db: sqlite_utils.Database) -> None:
    """The access register: persons (identifier as keyed hash + ciphertext), entries and their history."""
    db["register_meta"].create({"key": str, "value": str}, pk="key")  # key_check: detects a wrong key file
    db["register_persons"].create(
        {
            "id": int,
            "id_hash": str,  # HMAC-SHA256 of the normalised identifier (key outside the database)
            "id_kind": str,  # personnummer, samordningsnummer, hsa_id, other
            "id_enc": str,  # Fernet ciphertext of the identifier
            "name_enc": str,  # Fernet ciphertext of the name, if known
            "created_at": str,
        },
        pk="id",
        not_null={"id_hash", "id_kind", "id_enc", "created_at"},
    )
    db["register_persons"].create_index(["id_hash"], unique=True)
    db["register_entries"].create(
        {
            "id": int,
            "person_id": int,
            "routine": str,
            "system": str,
            "role": str,
            "unit": str,
            "unit_hsa_id": str,
            "municipality": str,
            "valid_from": str,  # ISO day
            "valid_to": str,  # end of a fixed period as ordered, if any
            "state": str,  # active, ended
            "ended_on": str,  # the day access ends or ended (termination or correction)
            "orderer_email": str,
            "orderer_name": str,
            "attestant_email": str,
            "attestant_name": str,
            "source": str,  # ticket, manual
            "created_at": str,
            "updated_at": str,
        },
        pk="id",
        not_null={"person_id", "system", "state", "source", "created_at"},
        foreign_keys=[("person_id", "register_persons", "id")],
    )
    # Lookups compare names case-insensitively (`= ? collate nocase`), so the indexes are NOCASE too.
    for name, columns in (
        ("person", "person_id, system collate nocase, state"),
        ("unit", "unit collate nocase, state"),
        ("unit_hsa_id", "unit_hsa_id collate nocase, state"),
        ("municipality", "municipality collate nocase, state"),
        ("system_role", "system collate nocase, role collate nocase, state"),
        ("orderer", "orderer_email collate nocase, state"),
        ("state_valid_to", "state, valid_to"),
        ("state_ended_on", "state, ended_on"),
    ):
        db.execute(f"create index idx_register_entries_{name} on register_entries ({columns})")
    db["register_history"].create(
        {
            "id": int,
            "entry_id": int,
            "at": str,
            "op": str,  # granted, renewed, updated, ended, added_manually, corrected, ended_manually
            "ticket_id": int,  # the ticket that made the change (none for manual corrections)
            "ticket_ref": str,
            "actor": str,
            "reason": str,  # required for manual corrections
            "changes": str,  # JSON: which columns changed (names only)
        },
        pk="id",
        not_null={"entry_id", "at", "op", "actor"},
        foreign_keys=[("entry_id", "register_entries", "id")],
    )
    db["register_history"].create_index(["entry_id"])
    db["register_history"].create_index(["ticket_id"])


def _m005_parked(db: sqlite_utils.Database) -> None:
    """Mail the poller gave up on (parked) and the failed attempts counted before that.

    A row with ``parked_at`` NULL only counts attempts; once parked, the mail is left where it is and never
    tried again until a handler looks at it (``intake parked list``). ``message_pk`` is set when the mail was
    recorded but could not be moved.
    """
    db["parked"].create(
        {
            "id": int,
            "source": str,
            "uid": str,
            "message_key": str,
            "message_pk": int,
            "attempts": int,
            "reason": str,  # reason code, e.g. mail.move_failed, mail.handling_failed
            "detail": str,  # exception type and place, or the source's error; never mail content
            "first_failed_at": str,
            "last_failed_at": str,
            "parked_at": str,
        },
        pk="id",
        not_null={"source", "message_key", "attempts", "reason", "first_failed_at", "last_failed_at"},
    )
    db["parked"].create_index(["source", "message_key"], unique=True)
    db.execute("create index messages_not_moved on messages(source) where moved_at is null")


def _m007_indexes(db: sqlite_utils.Database) -> None:
    """Indexes for every filter, sort and lookup the web UI, the CLI, recording and retention use.

    Without them a store of 100,000 tickets made recording a mail, every list page and the purge scan
    whole tables. ``tests/intake/test_query_plans.py`` checks the plans.
    """
    statements = [
        # A ticket's mail, replies and attachments (ticket page, purge, follow-ups).
        "create index if not exists idx_messages_ticket_id on messages (ticket_id)",
        "create index if not exists idx_outbox_ticket_id on outbox (ticket_id)",
        "create index if not exists idx_attachments_ticket_id on attachments (ticket_id)",
        # The per-sender rate limit compares lower(to_addr): an index on the bare column cannot serve it.
        "drop index if exists idx_outbox_to_addr_created_at",
        "create index if not exists idx_outbox_lower_to_addr_created_at on outbox (lower(to_addr), created_at)",
        # Ticket list: the default sort, each filter with it, and every other sortable column.
        "create index if not exists idx_tickets_created_at on tickets (created_at)",
        "create index if not exists idx_tickets_status_created_at on tickets (status, created_at)",
        "drop index if exists idx_tickets_queue_status",  # a prefix of the next one
        "create index if not exists idx_tickets_queue_status_created_at on tickets (queue, status, created_at)",
        "create index if not exists idx_tickets_assignee_created_at on tickets (assignee, created_at)",
        "create index if not exists idx_tickets_routine_queue_status on tickets (routine, queue, status)",
        "create index if not exists idx_tickets_request_type on tickets (request_type)",
        "create index if not exists idx_tickets_requester on tickets (requester)",
        "create index if not exists idx_tickets_updated_at on tickets (updated_at)",
        "create index if not exists idx_tickets_closed_at on tickets (closed_at)",
        "create index if not exists idx_tickets_user_count on tickets (user_count)",
        # Retention: tickets closed long ago and not yet purged; stored mail that belongs to no ticket.
        "create index if not exists idx_tickets_purged_at_closed_at on tickets (purged_at, closed_at)",
        # Stored mail still to clear, by ticket (ticket_id IS NULL for mail without one) and age; only rows
        # that still hold bytes are in it, so it stays small however long the history.
        "create index if not exists idx_messages_raw_kept on messages (ticket_id, recorded_at) where raw is not null",
        # The mail list: newest first within one verdict, stopped by the limit.
        "create index if not exists idx_messages_verdict on messages (verdict)",
    ]
    for sql in statements:
        db.execute(sql)


def _m010_mailboxes(db: sqlite_utils.Database) -> None:
    """Several mailboxes: their status (``intake status``), the sender identity of each reply, handler desks."""
    db["mailbox_status"].create(
        {
            "name": str,  # the mailbox's configured name (its desk id)
            "desk_name": str,
            "source": str,  # the source name its mail is recorded under (messages.source)
            "mode": str,  # idle, polling, backoff, starting, stopped
            "last_poll_at": str,
            "last_handled": int,  # mails the last poll dealt with (recorded or moved)
            "polls": int,  # polls done since the service started
            "last_error": str,  # one line, never mail content
            "last_error_at": str,
            "failures": int,  # failed tries in a row (0 after a good poll)
            "login_failures": int,  # refused logins since the service started
            "next_try_at": str,  # during a backoff: when the mailbox is tried again
            "updated_at": str,
        },
        pk="name",
    )
    db["outbox"].add_column("mailbox", str)  # the mailbox the reply answers for
    db["outbox"].add_column("from_address", str)  # its From, stored when queued, read when sent
    db["outbox"].add_column("from_name", str)
    db["users"].add_column("desks", str)  # comma-separated mailbox names the handler may see; empty: all


def _m006_sessions(db: sqlite_utils.Database) -> None:
    """Server-side web sessions: logging out ends the session for every copy of its cookie."""
    db["web_sessions"].create(
        {"sid_hash": str, "user": str, "created_at": str, "ended_at": str},
        pk="sid_hash",
        not_null={"user", "created_at"},
    )
    db["web_sessions"].create_index(["user"])


def _m011_orderers(db: sqlite_utils.Database) -> None:
    """The orderer register: per routine and region, who may order (work address, name, validity)."""
    db["orderers"].create(
        {
            "id": int,
            "routine": str,  # the pack id, e.g. symtombedomning
            "region": str,  # as the pack's form spells it
            "email": str,  # lower case
            "name": str,
            "valid_from": str,  # ISO day, inclusive
            "valid_to": str,  # ISO day, inclusive; NULL: until further notice
            "created_at": str,
            "updated_at": str,
        },
        pk="id",
        not_null={"routine", "region", "email", "name", "valid_from", "created_at", "updated_at"},
    )
    db.execute("create unique index idx_orderers_key on orderers "
               "(routine, region collate nocase, email collate nocase)")
    db.execute("create index idx_orderers_email on orderers (routine, email collate nocase)")


def _m013_checklists(db: sqlite_utils.Database) -> None:
    """Checklists: each ticket's own copy of its routine's checklist (a later pack change leaves it alone)."""
    db["checklist_tasks"].create(
        {
            "id": int,
            "ticket_id": int,
            "position": int,
            "task": str,  # the task's id in the pack's checklists.toml
            "title": str,
            "actor": str,  # the role who does it (Extern katalogadministratör)
            "link": str,
            "after": str,  # JSON list of task ids that must be done (or not apply) first
            "record_label": str,  # the label of a value to record (RSID); empty: none
            "shows": str,  # JSON list of task ids whose recorded values this task shows
            "required": int,
            "state": str,  # open, done, not_applicable
            "note": str,  # the text shown when it does not apply ("Ingen åtgärd")
            "value": str,  # the recorded value; NULL once purged
            "done_by": str,
            "done_at": str,
        },
        pk="id",
        not_null={"ticket_id", "position", "task", "title", "state"},
        foreign_keys=[("ticket_id", "tickets", "id")],
    )
    db["checklist_tasks"].create_index(["ticket_id", "task"], unique=True)
    db["checklist_tasks"].create_index(["state", "actor"])


def _m012_approvals(db: sqlite_utils.Database) -> None:
    """Approvals by an attestant: one row per attestant asked, and their single-use tokens (hashed)."""
    db["approvals"].create(
        {
            "id": int,
            "ticket_id": int,
            "attestant": str,  # the address asked (like tickets.approver)
            "status": str,  # pending, approved, rejected, replaced, expired, cancelled
            "requested_at": str,
            "reminders": int,
            "last_reminded_at": str,
            "out_of_office_at": str,  # the attestant's last out-of-office reply (never answered)
            "decision": str,  # approve, reject
            "reason": str,  # the attestant's reason for a rejection (shown to staff and mailed to the orderer)
            "channel": str,  # reply, link, handler
            "decided_by": str,  # "attestant", or the handler who confirmed a held answer
            "decided_at": str,
            "held_decision": str,  # an answer held for a handler (approvals.require_authenticated)
            "held_reason": str,
            "held_message_id": int,
        },
        pk="id",
        not_null={"ticket_id", "attestant", "status", "requested_at"},
        foreign_keys=[("ticket_id", "tickets", "id")],
    )
    db["approvals"].create_index(["ticket_id", "status"])
    db["approval_tokens"].create(
        {
            "id": int,
            "approval_id": int,
            "token_sha": str,  # sha256 of the token; the token itself is only in the mail and the link
            "created_at": str,
            "expires_at": str,
            "used_at": str,
            "revoked_at": str,
        },
        pk="id",
        not_null={"approval_id", "token_sha", "created_at", "expires_at"},
        foreign_keys=[("approval_id", "approvals", "id")],
    )
    db["approval_tokens"].create_index(["token_sha"], unique=True)


def _m014_desk(db: sqlite_utils.Database) -> None:
    """The handler's desk: server moves a handler decided (done by the poller, which holds the mailbox
    connection), a record of each poll run (the health page), and reads of single mails (unread follow-ups)."""
    db["pending_moves"].create(
        {
            "id": int,
            "message_pk": int,
            "source": str,
            "uid": str,
            "uidvalidity": int,
            "from_folder": str,
            "action": str,  # "move" or "delete"
            "to_folder": str,  # for "move"
            "requested_by": str,
            "requested_at": str,
            "done_at": str,
            "attempts": int,
            "last_error": str,  # exception type and the server's words; never mail content
        },
        pk="id",
        not_null={"message_pk", "action", "requested_at"},
    )
    db.execute("create index pending_moves_open on pending_moves(source) where done_at is null")
    db["poll_runs"].create(
        {
            "id": int,
            "source": str,
            "started_at": str,
            "finished_at": str,
            "ok": int,  # 1 when the poll did its job
            "fetched": int,
            "recorded": int,
            "error_kind": str,  # "auth", "tls", "connect", "store", "other"
            "error": str,  # one line: exception type and message (never mail content)
        },
        pk="id",
        not_null={"started_at"},
    )
    db["poll_runs"].create_index(["source", "id"])
    db.execute("create index events_viewed_message on events(message_id) where kind = 'viewed'")


# -- 015: kept counters ------------------------------------------------------------------------------------
#
# The queue page and the overview read small tables of counts instead of counting tickets and mail: the counts
# are kept by triggers, so they change in the same transaction as the row they count, whatever path made the
# change (a poll, a handler on the web, the CLI, a timer, a purge, a bulk insert). The statements below are
# frozen with the migration; :mod:`intake.store.counters` uses the same ones to rebuild and to check them.

#: Lower bounds (hours) of the time-to-done histogram. The overview's own bins (1, 8, 24, 72, 168 h) are among
#: them, so its chart is exact; its median is found in the bucket that holds it (exact when that bucket holds
#: a single ticket, else estimated within the bucket, whose width is about a fifth of its value). Frozen with
#: the migration: counts already kept are keyed by these bounds.
DONE_BUCKET_HOURS = (0, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 4, 5, 6, 8, 10, 12, 16, 20, 24, 30, 36, 42, 48, 60, 72, 84,
                     96, 120, 144, 168, 240, 336, 504, 720)


def done_seconds_sql(row: str) -> str:
    """SQL: the seconds from a ticket's creation to its closing (``row`` is ``new``, ``old`` or a table alias)."""
    return (f"cast(round((julianday({row}.closed_at) - julianday({row}.created_at)) * 86400) as integer)")


def done_bucket_sql(seconds: str) -> str:
    """SQL: the histogram bucket (its lower bound in seconds, as text) of a duration in seconds."""
    bounds = [int(h * 3600) for h in DONE_BUCKET_HOURS]
    whens = " ".join(f"when {seconds} < {hi} then '{lo}'" for lo, hi in zip(bounds, bounds[1:], strict=False))
    return f"(case {whens} else '{bounds[-1]}' end)"


#: SQL: the reason code of one entry ``j`` of a mail's ``reasons`` (NULL when it is no object with a code).
REASON_CODE = "(case when j.type = 'object' then json_extract(j.value, '$.code') end)"


def _valid_json(row: str) -> str:
    return f"case when json_valid({row}.reasons) then {row}.reasons else '[]' end"


def reason_codes_sql(row: str) -> str:
    """SQL (a FROM source): the distinct reason codes of a mail's ``reasons`` JSON, as column ``code``. Malformed
    JSON or entries without a code give no row, never an error (a trigger's error would refuse the mail)."""
    return f"(select distinct {REASON_CODE} as code from json_each({_valid_json(row)}) j)"


def unread_sql(ticket_id: str) -> str:
    """SQL: 1 when the ticket ``ticket_id`` has a follow-up (a mail after its first) nobody has opened."""
    return (f"exists (select 1 from messages fm where fm.ticket_id = {ticket_id} "
            f"and fm.id > (select min(m0.id) from messages m0 where m0.ticket_id = {ticket_id}) "
            "and not exists (select 1 from events ev where ev.kind = 'viewed' and ev.message_id = fm.id))")


def first_source_sql(ticket_id: str) -> str:
    """SQL: the source (mailbox) of the ticket's first mail."""
    return f"(select m1.source from messages m1 where m1.ticket_id = {ticket_id} order by m1.id limit 1)"


#: The kept counts as they would be counted afresh from the rows: (table, SELECT giving its rows).
COUNTER_SOURCES = (
    ("ticket_counts",
     "select coalesce(source, '') as source, routine, coalesce(queue, '') as queue, status, count(*) as n, "
     "0 as total from tickets group by 1, 2, 3, 4"),
    ("daily_counts",
     "select substr(created_at, 1, 10) as day, 'created' as metric, '' as key, count(*) as n, 0 as total "
     "from tickets group by 1"),
    ("daily_counts",
     "select substr(created_at, 1, 10) as day, 'queue' as metric, coalesce(queue, '') as key, count(*) as n, "
     "0 as total from tickets group by 1, 3"),
    ("daily_counts",
     "select substr(created_at, 1, 10) as day, 'status' as metric, status as key, count(*) as n, 0 as total "
     "from tickets group by 1, 3"),
    ("daily_counts",
     f"select day, 'done' as metric, {done_bucket_sql('s')} as key, count(*) as n, sum(s) as total from "
     f"(select substr(t.closed_at, 1, 10) as day, {done_seconds_sql('t')} as s from tickets t "
     "where t.status = 'done' and t.closed_at is not null) where s is not null group by 1, 3"),
    ("daily_counts",
     "select substr(m.recorded_at, 1, 10) as day, 'rejected' as metric, "
     f"{REASON_CODE} as key, count(distinct m.id) as n, 0 as total from messages m, json_each({_valid_json('m')}) j "
     f"where m.verdict = 'rejected' and {REASON_CODE} is not null group by 1, 3"),
)


def _ticket_count(row: str, delta: int) -> str:
    key = f"coalesce({row}.source, ''), {row}.routine, coalesce({row}.queue, ''), {row}.status"
    return (f"insert into ticket_counts (source, routine, queue, status, n) values ({key}, {delta}) "
            f"on conflict do update set n = n + {delta};")


def _daily(day: str, metric: str, key: str, delta: int, *, total: str = "0", where: str = "") -> str:
    """One daily count up or down by ``delta`` (a statement of a trigger's body)."""
    return (f"insert into daily_counts (day, metric, key, n, total) select {day}, '{metric}', {key}, {delta}, "
            f"{delta} * ({total}) where {where or 1} on conflict do update set n = n + excluded.n, "
            "total = total + excluded.total;")


def _ticket_daily(row: str, delta: int) -> str:
    created = f"substr({row}.created_at, 1, 10)"
    seconds = done_seconds_sql(row)
    return "\n".join([
        _daily(created, "created", "''", delta),
        _daily(created, "queue", f"coalesce({row}.queue, '')", delta),
        _daily(created, "status", f"{row}.status", delta),
        _daily(f"substr({row}.closed_at, 1, 10)", "done", done_bucket_sql(seconds), delta, total=seconds,
               where=f"{row}.status = 'done' and {row}.closed_at is not null and {seconds} is not null"),
    ])


def _rejected(row: str, delta: int) -> str:
    return (f"insert into daily_counts (day, metric, key, n, total) select substr({row}.recorded_at, 1, 10), "
            f"'rejected', r.code, {delta}, 0 from {reason_codes_sql(row)} r where {row}.verdict = 'rejected' "
            "and r.code is not null on conflict do update set n = n + excluded.n;")


def _refresh_ticket(ticket_id: str) -> str:
    return (f"update tickets set source = {first_source_sql(ticket_id)}, unread = {unread_sql(ticket_id)} "
            f"where id = {ticket_id};")


COUNTER_TRIGGERS = (
    # Tickets: the queue page's counts follow every change of a ticket's desk, routine, queue or status, and
    # the overview's daily counts every change of its creation day, queue, status or closing.
    f"""create trigger counters_ticket_insert after insert on tickets begin
        {_ticket_count("new", 1)}
        {_ticket_daily("new", 1)}
    end""",
    f"""create trigger counters_ticket_update after update of source, routine, queue, status, created_at, closed_at
        on tickets
        when old.source is not new.source or old.routine is not new.routine or old.queue is not new.queue
          or old.status is not new.status or old.created_at is not new.created_at
          or old.closed_at is not new.closed_at
    begin
        {_ticket_count("old", -1)}
        {_ticket_count("new", 1)}
        {_ticket_daily("old", -1)}
        {_ticket_daily("new", 1)}
    end""",
    # A deleted ticket leaves the queues; last month's figures stay what they were (statistics, no personal data).
    f"""create trigger counters_ticket_delete after delete on tickets begin
        {_ticket_count("old", -1)}
    end""",
    # Mail: rejections per day and reason; a ticket's desk (its first mail's source) and its unread flag.
    f"""create trigger counters_message_insert after insert on messages begin
        {_rejected("new", 1)}
        {_refresh_ticket("new.ticket_id")}
    end""",
    f"""create trigger counters_message_update after update of verdict, reasons, recorded_at on messages
        when old.verdict is not new.verdict or old.reasons is not new.reasons
          or old.recorded_at is not new.recorded_at
    begin
        {_rejected("old", -1)}
        {_rejected("new", 1)}
    end""",
    f"""create trigger counters_message_ticket after update of ticket_id, source on messages
        when old.ticket_id is not new.ticket_id or old.source is not new.source
    begin
        {_refresh_ticket("old.ticket_id")}
        {_refresh_ticket("new.ticket_id")}
    end""",
    f"""create trigger counters_message_delete after delete on messages when old.ticket_id is not null begin
        {_refresh_ticket("old.ticket_id")}
    end""",
    # Opening a follow-up (a 'viewed' event naming the mail) may leave its ticket with nothing unread.
    f"""create trigger counters_viewed_insert after insert on events
        when new.kind = 'viewed' and new.message_id is not null
    begin
        {_refresh_ticket("(select ticket_id from messages where id = new.message_id)")}
    end""",
    f"""create trigger counters_viewed_delete after delete on events
        when old.kind = 'viewed' and old.message_id is not null
    begin
        {_refresh_ticket("(select ticket_id from messages where id = old.message_id)")}
    end""",
)


def _m015_counters(db: sqlite_utils.Database) -> None:
    """Kept counters for the queue page and the overview, and a kept unread flag for the ticket list.

    ``ticket_counts``: tickets per desk (the source of their first mail), routine, queue and status, now.
    ``daily_counts``: per day, tickets created (``created``), per queue and per present status of the tickets
    created that day (``queue``, ``status``), tickets done by their closing day in buckets of time to done
    (``done``: ``n`` tickets, ``total`` seconds) and rejected mail per reason code (``rejected``).
    ``tickets.source`` (the ticket's first mail's source) and ``tickets.unread`` (1: a follow-up nobody has
    opened) are kept on the ticket, the latter with a partial index the ticket list's first page reads.
    Triggers keep all of it; a deleted ticket or mail never lowers a daily count. The existing rows are
    counted once here. (Rebuilding a table with sqlite-utils' ``transform`` drops its triggers: a later
    migration doing so must create them again.)
    """
    db.execute("create table ticket_counts (source text not null, routine text not null, queue text not null, "
               "status text not null, n integer not null, primary key (source, routine, queue, status)) "
               "without rowid")
    db.execute("create table daily_counts (day text not null, metric text not null, key text not null, "
               "n integer not null, total integer not null default 0, primary key (metric, day, key)) "
               "without rowid")
    db["tickets"].add_column("source", str)
    db["tickets"].add_column("unread", int, not_null_default=0)
    db.execute(f"update tickets set source = {first_source_sql('tickets.id')}, unread = {unread_sql('tickets.id')} "
               "where exists (select 1 from messages where messages.ticket_id = tickets.id)")
    for table, select in COUNTER_SOURCES:
        columns = "source, routine, queue, status, n" if table == "ticket_counts" else "day, metric, key, n, total"
        db.execute(f"insert into {table} ({columns}) select {columns} from ({select})")
    # The ticket list's first page puts unread tickets first, latest change first: these partial indexes hold
    # only unread tickets, with the list's equality filters before the order.
    for name, columns in (("updated_at", "updated_at"), ("status", "status, updated_at"),
                          ("queue_status", "queue, status, updated_at"), ("assignee", "assignee, updated_at")):
        db.execute(f"create index idx_tickets_unread_{name} on tickets ({columns}) where unread = 1")
    for sql in COUNTER_TRIGGERS:
        db.execute(sql)


#: Ordered, append-only. Never edit an applied migration; add a new one.
MIGRATIONS: list[tuple[str, Callable[[sqlite_utils.Database], None]]] = [
    ("001_initial", _m001_initial),
    ("002_staff", _m002_staff),
    ("003_content_hash", _m003_content_hash),
    ("004_lifecycle", _m004_lifecycle),
    ("005_parked", _m005_parked),
    ("006_sessions", _m006_sessions),
    ("007_indexes", _m007_indexes),
    ("009_register", _m009_register),
    ("010_mailboxes", _m010_mailboxes),
    ("011_orderers", _m011_orderers),
    ("012_approvals", _m012_approvals),
    ("013_checklists", _m013_checklists),
    ("014_desk", _m014_desk),
    ("015_counters", _m015_counters),
]
