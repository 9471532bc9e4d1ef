"""The outbox job: send the replies that polls and handlers queued, separately from polling.

Replies are queued in the same transaction as the decision that caused them, so a reply is never
lost; this job hands each one to SMTP (or writes it to the file outbox) and then marks it sent.
Killed between the hand-over and the mark, it sends that one reply again on restart: at worst
one repeat, never a loss. The file outbox writes each reply under its own name (its Message-ID), so
writing it again replaces the same file: it marks the replies of a round together, once they are
written (one lock on the store a round instead of one a reply). Temporary failures are retried with
exponential backoff; permanent ones are marked failed and shown to staff.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import Message as EmailMessage
from pathlib import Path
from typing import Any

from intake import faults
from intake.replies import build_message, message_bytes
from intake.store import Store

log = logging.getLogger("intake.outbox")

#: Replies a file outbox writes before it marks them sent together (what a kill could make it write again).
MARK_EVERY = 100

#: Seconds to wait after the n-th temporary failure (then the last value, up to max_attempts).
BACKOFF = (60, 300, 900, 1800, 3600)


class TemporaryFailure(Exception):
    """Try again later (4xx, connection refused, timeout)."""


class SetupFailure(TemporaryFailure):
    """Our own sending setup is wrong (TLS trust, login): retried without using up the reply's attempts,
    and the rest of the run is skipped, since every reply would fail the same way (and repeated bad
    logins can lock the service account)."""


class ServerTimeout(TemporaryFailure):
    """The server did not connect or greet within the timeout: retried later, and the rest of the round
    waits too (each reply would wait the full timeout)."""


class PermanentFailure(Exception):
    """Will never work (5xx: the recipient does not exist, the message is refused)."""


Transport = Callable[[EmailMessage], None]


def file_transport(folder: Path) -> Transport:
    """Write each outgoing mail as an .eml file: the embedded default, needing no server."""
    folder = Path(folder)

    def deliver(msg: EmailMessage) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        name = msg["Message-ID"].strip("<>").replace("/", "_") + ".eml"
        tmp = folder / f".{name}.tmp"
        tmp.write_bytes(message_bytes(msg))
        os.replace(tmp, folder / name)  # atomic: a crash leaves either nothing or the whole file

    deliver.idempotent = True  # type: ignore[attr-defined] - the same reply again replaces its own file
    return deliver


def smtp_transport(config: Any) -> Transport:
    """Hand each mail to the configured SMTP server with the null envelope sender (RFC 3834)."""
    from intake.smtp import (
        PermanentSendError,
        ServerTimeoutError,
        SetupSendError,
        SmtpConfig,
        TemporarySendError,
        send,
    )

    smtp = config["smtp"]
    # A relative ca_file is relative to the config file's folder, like every other path.
    ca_file = str(config.path("smtp", "ca_file")) if smtp.get("ca_file") else ""
    smtp_config = SmtpConfig.from_mapping(
        {**smtp, "from_address": config["replies"]["from_address"], "ca_file": ca_file}, config.env
    )

    def deliver(msg: EmailMessage) -> None:
        try:
            send(msg, smtp_config)
        except SetupSendError as exc:
            raise SetupFailure(str(exc)) from None
        except ServerTimeoutError as exc:
            raise ServerTimeout(str(exc)) from None
        except TemporarySendError as exc:
            raise TemporaryFailure(str(exc)) from None
        except PermanentSendError as exc:
            raise PermanentFailure(str(exc)) from None

    return deliver


@dataclass
class SendResult:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    setup_error: str = ""  # sending is misconfigured (TLS trust, login, TLS mode): nothing can go until fixed
    server_down: str = ""  # the server did not answer: the rest of the round waits

    @property
    def ok(self) -> bool:
        """Whether the run did its job: no setup error, no unreachable server, nothing failed for good."""
        return not (self.setup_error or self.server_down or self.failed)

    def summary(self) -> str:
        return f"{self.sent} sent, {self.retried} to retry, {self.failed} failed"

    def add(self, other: SendResult) -> SendResult:
        """Count ``other`` (a later round of the same run) in this one; returns ``self``."""
        self.sent += other.sent
        self.retried += other.retried
        self.failed += other.failed
        self.setup_error = self.setup_error or other.setup_error
        self.server_down = other.server_down  # the last round says whether the server answers now
        return self


class Outbox:
    """Sends due outbox rows through a transport."""

    def __init__(
        self,
        store: Store,
        transport: Transport,
        *,
        from_address: str,
        from_name: str = "",
        max_attempts: int = 10,
        blank_forms: Callable[[int], list[tuple[str, bytes, str]]] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        identities: dict[str, tuple[str, str]] | None = None,
    ):
        #: source name -> (From address, From name) of each configured mailbox
        self.identities = identities or {}
        self.store = store
        self.transport = transport
        self.from_address = from_address
        self.from_name = from_name
        self.max_attempts = max_attempts
        self.blank_forms = blank_forms
        self.clock = clock

    def due(self) -> list[dict[str, Any]]:
        return self.store.due_outbox(self.clock().isoformat(timespec="seconds"))

    def message_for(self, row: dict[str, Any]) -> EmailMessage:
        attachments = []
        if row["attach_blank_form"] and self.blank_forms is not None:
            attachments = self.blank_forms(row["id"])
        if row.get("attach_ticket_form") and row["ticket_id"] is not None:
            attachments += self.ticket_forms(row["ticket_id"])
        from_address, from_name = self.identity_of(row)
        return build_message(
            to=row["to_addr"], subject=row["subject"], body=row["body"],
            from_address=from_address, from_name=from_name,
            message_id=row["rfc_message_id"], in_reply_to=row["in_reply_to"] or "",
            references=(row["references_"] or "").split(),
            # Rows from before migration 004 have no flag: then the kind decides, as it did.
            automatic=bool(row["automatic"]) if row.get("automatic") is not None
            else row["kind"] in ("ack", "rejection"),
            attachments=attachments,
        )

    def ticket_forms(self, ticket_id: int) -> list[tuple[str, bytes, str]]:
        """The ticket's stored form, named by its type only (the sender's file name may hold a name)."""
        files = []
        for i, att in enumerate(self.store.attachment_files(ticket_id), 1):
            suffix = Path(att["filename"] or "").suffix.lower()
            suffix = suffix if suffix in (".xlsx", ".docx", ".pdf") else ".bin"
            name = f"blankett{suffix}" if i == 1 else f"blankett-{i}{suffix}"
            files.append((name, att["data"], att["content_type"] or "application/octet-stream"))
        return files
    def identity_of(self, row: dict[str, Any]) -> tuple[str, str]:
        """The From of a reply: stored on its row when a poll queued it, else that of the mailbox its mail (or its
        ticket's first mail) came in through (a handler's reply answers for the same mailbox), else the default."""
        if row.get("from_address"):
            return row["from_address"], row.get("from_name") or ""
        if self.identities:
            for source in self.store.mail_sources(row.get("message_id"), row.get("ticket_id")):
                if source in self.identities:
                    return self.identities[source]
        return self.from_address, self.from_name

    def send_due(self) -> SendResult:
        result = SendResult()
        # Written by a transport that can repeat a reply harmlessly: marked sent together, after the round.
        written: list[tuple[dict[str, Any], str]] | None = [] if getattr(self.transport, "idempotent", False) else None
        try:
            for row in self.due():
                if not self._send_one(row, result, written):
                    break
                if written is not None and len(written) >= MARK_EVERY:
                    self._mark_sent(written)
                    written.clear()
        finally:
            if written:  # whatever ends the round (a reply that raises): what was written is marked
                self._mark_sent(written)
        if result.sent or result.retried or result.failed:
            log.info("outbox: %s", result.summary())
        return result

    def _mark_sent(self, rows: list[tuple[dict[str, Any], str]]) -> None:
        # Not flushed to disk: a kill cannot undo it, only a power cut in the next moments (after which the
        # reply would go again; the server's own acceptance was never atomic with this mark anyway).
        with self.store.transaction(synced=False):
            for row, now_iso in rows:
                self.store.update_outbox(row["id"], {"status": "sent", "sent_at": now_iso,
                                                     "attempts": row["attempts"] + 1})
                self.store.add_event("reply_sent", ticket_id=row["ticket_id"], message_id=row["message_id"],
                                     at=now_iso, data={"kind": row["kind"], "outbox": row["id"]})

    def _send_one(self, row: dict[str, Any], result: SendResult,
                  written: list[tuple[dict[str, Any], str]] | None = None) -> bool:
        """Send one row; ``False`` when the setup is broken and the rest of the run should wait. With
        ``written``, a reply handed over is added there to be marked with the round's others."""
        store, now = self.store, self.clock()
        now_iso = now.isoformat(timespec="seconds")
        try:
            msg = self.message_for(row)
            faults.point("before-send")
            self.transport(msg)
            faults.point("after-send")
        except TemporaryFailure as exc:
            attempts = row["attempts"] + 1
            setup = isinstance(exc, SetupFailure)
            if attempts >= self.max_attempts and not setup:
                self._fail(row, f"gave up after {attempts} attempts: {exc}", now_iso)
                result.failed += 1
                return not isinstance(exc, ServerTimeout)
            wait = BACKOFF[min(attempts - 1, len(BACKOFF) - 1)]
            with store.transaction():
                store.update_outbox(row["id"], {
                    "attempts": attempts, "last_error": str(exc)[:500],
                    "next_attempt_at": (now + timedelta(seconds=wait)).isoformat(timespec="seconds"),
                })
            if setup:
                result.setup_error = str(exc)[:500]
                log.error("outbox: sending is misconfigured, replies wait until it is fixed: %s", exc)
            else:
                log.warning("outbox id=%s: temporary failure, retry in %ss: %s", row["id"], wait, exc)
            result.retried += 1
            if isinstance(exc, ServerTimeout):
                result.server_down = str(exc)[:500]
                log.error("outbox: the SMTP server did not answer; the other replies wait for the next round")
                return False
            return not setup
        except PermanentFailure as exc:
            self._fail(row, str(exc), now_iso)
            result.failed += 1
            return True
        if written is not None:
            written.append((row, now_iso))
        else:
            self._mark_sent([(row, now_iso)])
        log.info("outbox id=%s sent (%s)", row["id"], row["kind"])
        result.sent += 1
        return True

    def waiting(self) -> list[dict[str, Any]]:
        """Replies still to go that are not due yet: when each is next tried and why it did not go."""
        return self.store.outbox_waiting(self.clock().isoformat(timespec="seconds"))

    def _fail(self, row: dict[str, Any], error: str, now_iso: str) -> None:
        with self.store.transaction():
            self.store.update_outbox(row["id"], {"status": "failed", "last_error": error[:500],
                                                 "attempts": row["attempts"] + 1})
            self.store.add_event("reply_failed", ticket_id=row["ticket_id"], message_id=row["message_id"],
                                 at=now_iso, data={"kind": row["kind"], "outbox": row["id"], "error": error[:200]})
        log.error("outbox id=%s failed for good: %s", row["id"], error)


class SenderProcess:
    """Sends due replies from a forked process while the poll that queues them runs (``intake poll --once``).

    The poller and its deciding workers keep the two cores busy with recording, moving and deciding; writing
    the replies out (serialising them, one file or SMTP transaction each, marking them sent) is as much work
    again, and here it runs beside them instead of after them. The process opens a store connection of its
    own (``make`` builds its :class:`Outbox`), sends whatever is due, again and again, until :meth:`stop`,
    and reports what it sent. Only one sender runs at a time: :meth:`stop` waits for it before the caller
    sends the rest, so no reply can be sent by both. It ends by itself when its parent is gone.
    """

    #: How long the sender waits when nothing was due before it looks again.
    IDLE_SECONDS = 0.05

    def __init__(self, make: Callable[[], Outbox]):
        import multiprocessing

        ctx = multiprocessing.get_context("fork")
        self._stop = ctx.Event()
        self._results, theirs = ctx.Pipe(duplex=False)
        self.proc = ctx.Process(target=self._run, args=(make, theirs), name="intake-sender", daemon=True)
        self.proc.start()
        theirs.close()

    def _run(self, make: Callable[[], Outbox], results: Any) -> None:  # in the forked process
        from intake.deciders import end_with_parent

        end_with_parent()
        total = SendResult()
        try:
            outbox = make()
            while True:
                stopping = self._stop.is_set()  # (asked to stop: send what is due now, then end)
                round_ = outbox.send_due()
                total.add(round_)
                if round_.setup_error or round_.server_down:
                    break  # a broken setup or a silent server: the caller's last round says so
                if not (round_.sent or round_.retried or round_.failed):
                    if stopping:
                        break
                    self._stop.wait(self.IDLE_SECONDS)
        except Exception as exc:  # noqa: BLE001 - the caller's own round sends what is left
            log.error("the sending process stopped: %s", type(exc).__name__)
        results.send((total.sent, total.retried, total.failed, total.setup_error, total.server_down))

    def stop(self) -> SendResult:
        """Stop once what is due now has gone (this process is warm: its templates, forms and connection are
        ready, so the caller's last round finds little or nothing left); what it sent (zeros if it died)."""
        self._stop.set()
        got = SendResult()
        try:
            sent, retried, failed, setup_error, server_down = self._results.recv()
            got = SendResult(sent, retried, failed, setup_error, server_down)
        except (EOFError, OSError):
            log.error("the sending process ended without a report")
        self.proc.join()
        return got
