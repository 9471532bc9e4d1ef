"""One poll of the mailbox: fetch, decide, record, then move. The imperative shell around ``decide``.

The order is what makes the effect exactly-once: the message, its ticket, its queued reply and
their events are committed in one transaction keyed by the message key, and only then is the
mail moved out of the inbox. A crash before the commit leaves the mail in the inbox to be
decided again; a crash after it leaves a recorded mail in the inbox, which the next poll only
moves. A mail that breaks anything becomes a recorded decision; the poll goes on.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from intake import faults
from intake.decision import Decision
from intake.pipeline import Settings, decide
from intake.replies import new_message_id, render_reply
from intake.sources.base import FetchedMail, MailSource, SourceError
from intake.store import Recorded, Store
from rules.packs import Routine

log = logging.getLogger("intake.poll")


@dataclass
class PollResult:
    """What one poll did, for the log line and the CLI."""

    seen: int = 0
    recorded: int = 0
    already_recorded: int = 0
    moved: int = 0
    verdicts: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = [f"{self.seen} seen", f"{self.recorded} recorded", f"{self.moved} moved"]
        if self.already_recorded:
            parts.append(f"{self.already_recorded} already recorded")
        parts += [f"{n} {v}" for v, n in sorted(self.verdicts.items())]
        if self.errors:
            parts.append(f"{len(self.errors)} errors")
        return ", ".join(parts)


@dataclass(frozen=True)
class Folders:
    """Where mail goes once recorded, per verdict; personal-data mail may be deleted instead."""

    accepted: str = "Intake/Accepted"
    rejected: str = "Intake/Rejected"
    ignored: str = "Intake/Ignored"
    held: str = "Intake/Held"
    personal_data: str = "Intake/PersonalData"
    personal_data_action: str = "move"

    @classmethod
    def from_config(cls, data: dict[str, Any]) -> Folders:
        return cls(**data)

    def for_message(self, verdict: str, personal_data: bool) -> str | None:
        """The folder to move to, or ``None`` to delete."""
        if personal_data:
            return None if self.personal_data_action == "delete" else self.personal_data
        return getattr(self, verdict)


class Poller:
    """Polls one mailbox into one store."""

    def __init__(
        self,
        store: Store,
        routines: list[Routine],
        source_factory: Callable[[], MailSource],
        *,
        settings: Settings,
        folders: Folders,
        rate_limit_per_hour: int = 5,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ):
        self.store = store
        self.routines = routines
        self.by_id = {r.id: r for r in routines}
        self.source_factory = source_factory
        self.settings = settings
        self.folders = folders
        self.rate_limit_per_hour = rate_limit_per_hour
        self.clock = clock

    def poll_once(self) -> PollResult:
        """Handle every mail waiting in the inbox. Raises :class:`SourceError` if the mailbox is unreachable;
        what was recorded before that stays recorded, and the next poll picks up the rest."""
        result = PollResult()
        with self.source_factory() as source:
            self._check_uidvalidity(source)
            uids = source.list_uids()
            for fetched in source.fetch(uids, self.settings.max_message_bytes):
                result.seen += 1
                faults.point("mid-batch")
                self._handle(source, fetched, result)
        log.info("poll done: %s", result.summary())
        return result

    def _check_uidvalidity(self, source: MailSource) -> None:
        current = source.uidvalidity()
        known = self.store.uidvalidity(source.name)
        if known is not None and known != current:
            # UIDs we remembered now mean other mails. Nothing depends on them for correctness
            # (recording is keyed by Message-ID or content hash), so note it and go on.
            log.warning("UIDVALIDITY of %s changed from %s to %s", source.name, known, current)
            self.store.add_event("uidvalidity_changed", data={"source": source.name, "old": known, "new": current})
        if known != current:
            self.store.set_uidvalidity(source.name, current)

    def _handle(self, source: MailSource, fetched: FetchedMail, result: PollResult) -> None:
        decision = self.decide(fetched)
        existing = self.store.find_message(decision.message_key)
        if existing is not None:
            result.already_recorded += 1
            # Recorded by an earlier poll that died before moving it, or the same message sent twice.
            folder = existing["moved_to"]
            if folder in (None, "(deleted)"):
                folder = self.folders.for_message(existing["verdict"], _personal(existing))
            if existing["moved_at"] is not None:
                self.store.add_event("duplicate_seen", message_id=existing["id"], data={"uid": str(fetched.uid)})
            self._move(source, fetched.uid, existing["id"], folder, result)
            return
        faults.point("before-commit")
        recorded = self.record(decision, fetched, source)
        faults.point("after-commit")
        result.recorded += 1
        result.verdicts[decision.verdict] += 1
        log.info(
            "recorded uid=%s message-id=%s verdict=%s reasons=%s ticket=%s",
            fetched.uid, decision.message_id or "-", decision.verdict,
            ",".join(decision.codes) or "-", recorded.ticket_ref or "-",
        )
        self._move(source, fetched.uid, recorded.message_pk,
                   self.folders.for_message(decision.verdict, decision.personal_data), result)

    def _move(self, source: MailSource, uid: int | str, message_pk: int, folder: str | None,
              result: PollResult) -> None:
        try:
            if folder is None:
                source.delete(uid)
            else:
                source.move(uid, folder)
        except SourceError as exc:
            # Recorded but not moved: the next poll sees it again and only moves it.
            result.errors.append(str(exc))
            log.error("could not move uid=%s: %s", uid, exc)
            return
        self.store.mark_moved(message_pk, folder or "(deleted)")
        result.moved += 1

    def decide(self, fetched: FetchedMail) -> Decision:
        raw = fetched.raw if fetched.raw is not None else fetched.header
        return decide(
            raw, self.routines, settings=self.settings, now=self.clock(), received=fetched.received,
            lookup=self.lookup, size=fetched.size,
        )

    def lookup(self, ref: str | None, message_ids: list[str]) -> dict[str, Any] | None:
        """The ticket a follow-up belongs to: by a reference in the subject, or by our reply it answers."""
        db = self.store.db
        rows: list[dict[str, Any]] = []
        if ref:
            rows = list(db.query("select * from tickets where ref = ?", [ref]))
        if not rows and message_ids:
            marks = ",".join("?" * len(message_ids))
            rows = list(db.query(
                f"select t.* from outbox o join tickets t on t.id = o.ticket_id where o.rfc_message_id in ({marks}) "
                "order by o.id desc limit 1", message_ids,
            ))
        return rows[0] if rows else None

    # -- recording ------------------------------------------------------------------------------

    def record(self, decision: Decision, fetched: FetchedMail, source: MailSource) -> Recorded:
        """Write the message, its ticket, its reply and their events in one transaction."""
        store, now = self.store, self.clock()
        now_iso = now.isoformat(timespec="seconds")
        with store.transaction() as db:
            again = store.find_message(decision.message_key)
            if again is not None:
                return Recorded(again["id"], new=False, ticket_ref=None, outbox_id=None)
            subject_pd = "subject.personal_data" in decision.codes
            message_pk = db["messages"].insert({
                "message_key": decision.message_key,
                "message_id": decision.message_id,
                "source": source.name,
                "uidvalidity": source.uidvalidity(),
                "uid": str(fetched.uid),
                "received_at": fetched.received.isoformat(timespec="seconds") if fetched.received else None,
                "sent_at": decision.sent_at.isoformat(timespec="seconds") if decision.sent_at else None,
                "sender": decision.sender,
                "subject": "" if subject_pd else decision.subject,
                "verdict": decision.verdict,
                "reasons": json.dumps([{"code": r.code, "detail": r.detail} for r in decision.reasons],
                                      ensure_ascii=False),
                "routine": decision.routine,
                "request_type": decision.request_type,
                "size": fetched.size,
                "recorded_at": now_iso,
                # Mail rejected for personal data is kept as metadata only.
                "raw": None if decision.personal_data else (fetched.raw if fetched.raw is not None else None),
            }).last_pk
            store.add_event("received", message_id=message_pk, at=now_iso,
                            data={"verdict": decision.verdict, "reasons": decision.codes})

            ticket_id, ref = None, None
            if decision.verdict in ("accepted", "held") and decision.ticket_ref:
                ticket_id, ref = self._attach_followup(decision, message_pk, now_iso)
            elif decision.verdict == "accepted":
                ticket_id, ref = self._create_ticket(decision, message_pk, now, now_iso)

            if decision.bounce_of:
                ticket_id = self._note_bounce(decision, message_pk, now_iso)

            outbox_id = None
            if decision.reply is not None and not decision.ticket_ref:
                outbox_id = self._queue_reply(decision, message_pk, ticket_id, ref, now, now_iso)
            elif decision.reply_suppressed:
                db["messages"].update(message_pk, {"reply_suppressed": decision.reply_suppressed})
            return Recorded(message_pk, new=True, ticket_ref=ref, outbox_id=outbox_id)

    def _create_ticket(self, decision: Decision, message_pk: int, now: datetime, now_iso: str) -> tuple[int, str]:
        store, db = self.store, self.store.db
        routine = self.by_id[decision.routine]
        ref = store.next_ref(routine.ref_prefix, now.year)
        form = decision.form
        ticket_id = db["tickets"].insert({
            "ref": ref,
            "routine": decision.routine,
            "request_type": decision.request_type,
            "queue": decision.queue,
            "status": "new",
            "requester": decision.sender,
            "subject": decision.subject,
            "form": json.dumps(form.to_dict(), ensure_ascii=False) if form is not None else None,
            "user_count": len(form.users) if form is not None else 0,
            "created_at": now_iso,
            "updated_at": now_iso,
        }).last_pk
        att = decision.form_attachment
        if att is not None:
            db["attachments"].insert({
                "ticket_id": ticket_id, "filename": att.filename, "content_type": att.content_type,
                "size": att.size, "data": att.data,
            })
        db["messages"].update(message_pk, {"ticket_id": ticket_id})
        store.add_event("ticket_created", ticket_id=ticket_id, message_id=message_pk, at=now_iso,
                        data={"ref": ref, "queue": decision.queue, "request_type": decision.request_type})
        return ticket_id, ref

    def _attach_followup(self, decision: Decision, message_pk: int, now_iso: str) -> tuple[int, str]:
        store, db = self.store, self.store.db
        ticket = store.ticket(decision.ticket_ref)
        db["messages"].update(message_pk, {"ticket_id": ticket["id"]})
        changes: dict[str, Any] = {"updated_at": now_iso}
        if ticket["status"] in ("done", "rejected"):
            changes.update(status="new", closed_at=None)
            store.add_event("status_changed", ticket_id=ticket["id"], at=now_iso,
                            data={"from": ticket["status"], "to": "new", "why": "follow-up"})
        db["tickets"].update(ticket["id"], changes)
        store.add_event("followup", ticket_id=ticket["id"], message_id=message_pk, at=now_iso,
                        data={"verdict": decision.verdict})
        return ticket["id"], ticket["ref"]

    def _note_bounce(self, decision: Decision, message_pk: int, now_iso: str) -> int | None:
        """A bounce of one of our replies: mark that reply bounced and show it on its ticket."""
        store, db = self.store, self.store.db
        marks = ",".join("?" * len(decision.bounce_of))
        rows = list(db.query(f"select id, ticket_id, kind from outbox where rfc_message_id in ({marks})",
                             list(decision.bounce_of)))
        ticket_id = None
        for row in rows:
            db["outbox"].update(row["id"], {"status": "bounced", "last_error": "bounced"})
            store.add_event("reply_bounced", ticket_id=row["ticket_id"], message_id=message_pk, at=now_iso,
                            data={"outbox": row["id"], "kind": row["kind"]})
            ticket_id = ticket_id or row["ticket_id"]
        if ticket_id is not None:
            db["messages"].update(message_pk, {"ticket_id": ticket_id})
        return ticket_id

    def _queue_reply(self, decision: Decision, message_pk: int, ticket_id: int | None, ref: str | None,
                     now: datetime, now_iso: str) -> int | None:
        store, db = self.store, self.store.db
        since = (now - timedelta(hours=1)).isoformat(timespec="seconds")
        if store.replies_to_since(decision.sender, since) >= self.rate_limit_per_hour:
            db["messages"].update(message_pk, {"reply_suppressed": "mail.rate_limited"})
            store.add_event("reply_suppressed", message_id=message_pk, ticket_id=ticket_id, at=now_iso,
                            data={"reason": "mail.rate_limited"})
            return None
        reply = decision.reply
        assert reply is not None
        if ref is not None:
            routine = self.by_id[decision.routine]
            rtype = routine.request_type(decision.request_type)
            reply = render_reply(reply.kind, routine, rtype, decision, ref=ref, settings=self.settings)
        rfc_id = new_message_id(self.settings.from_address)
        outbox_id = db["outbox"].insert({
            "message_id": message_pk,
            "ticket_id": ticket_id,
            "kind": reply.kind,
            "to_addr": reply.to,
            "subject": reply.subject,
            "body": reply.body,
            "rfc_message_id": rfc_id,
            "in_reply_to": decision.message_id,
            "references_": " ".join([*decision.references, decision.message_id]).strip(),
            "attach_blank_form": int(reply.attach_blank_form),
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now_iso,
            "created_at": now_iso,
        }).last_pk
        store.add_event("reply_queued", message_id=message_pk, ticket_id=ticket_id, at=now_iso,
                        data={"kind": reply.kind, "outbox": outbox_id})
        return outbox_id


def _personal(row: dict[str, Any]) -> bool:
    codes = {r["code"] for r in json.loads(row["reasons"] or "[]")}
    return bool(codes & {"subject.personal_data", "body.personal_data"})

