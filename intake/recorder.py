"""Recording decisions: the one transaction that makes a mail's effect exactly-once.

The message row, its ticket (or the ticket it follows up), the reply it gets and their events are
written together; a handler releasing a held mail uses the same functions, so a ticket and its
receipt look the same whichever way they came about.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from intake.decision import Decision, content_hash
from intake.pipeline import Settings
from intake.replies import new_message_id, render_reply
from intake.sources.base import FetchedMail
from intake.store import Recorded, Store
from rules.packs import Routine


class Recorder:
    """Writes decisions into the store."""

    def __init__(self, store: Store, routines: list[Routine], settings: Settings, *, rate_limit_per_hour: int = 5):
        self.store = store
        self.by_id = {r.id: r for r in routines}
        self.settings = settings
        self.rate_limit_per_hour = rate_limit_per_hour

    def record(self, decision: Decision, fetched: FetchedMail, source_name: str, uidvalidity: int,
               now: datetime, *, digest: str | None = None) -> Recorded:
        """Write the message, its ticket, its reply and their events in one transaction.

        ``digest`` is the mail's content hash when the caller has it already (the poller does).
        """
        store = self.store
        now_iso = now.isoformat(timespec="seconds")
        with store.transaction() as db:
            again = store.find_message(decision.message_key)
            if again is not None:
                return Recorded(again["id"], new=False, ticket_ref=None, outbox_id=None)
            subject_pd = "subject.personal_data" in decision.codes
            message_pk = db["messages"].insert({
                "message_key": decision.message_key,
                "content_hash": digest or content_hash(fetched.raw if fetched.raw is not None else fetched.header),
                "message_id": decision.message_id,
                "source": source_name,
                "uidvalidity": uidvalidity,
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
                # Mail rejected for personal data is kept as metadata only, and so is mail we could not
                # read: its content was never scanned (the mail itself stays in its folder on the server).
                "raw": None if decision.personal_data or _unread(decision) else fetched.raw,
            }).last_pk
            store.add_event("received", message_id=message_pk, at=now_iso,
                            data={"verdict": decision.verdict, "reasons": decision.codes})

            ticket_id, ref = None, None
            if decision.verdict in ("accepted", "held") and decision.ticket_ref:
                ticket_id, ref = self.attach_followup(decision, message_pk, now_iso)
            elif decision.verdict == "accepted":
                ticket_id, ref = self.create_ticket(decision, message_pk, now, now_iso)

            if decision.bounce_of:
                ticket_id = self.note_bounce(decision, message_pk, now_iso)

            outbox_id = None
            if decision.reply is not None and not decision.ticket_ref:
                outbox_id = self.queue_reply(decision, message_pk, ticket_id, ref, now, now_iso)
            elif decision.reply_suppressed:
                db["messages"].update(message_pk, {"reply_suppressed": decision.reply_suppressed})
            return Recorded(message_pk, new=True, ticket_ref=ref, outbox_id=outbox_id)

    def create_ticket(self, decision: Decision, message_pk: int, now: datetime, now_iso: str) -> tuple[int, str]:
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

    def attach_followup(self, decision: Decision, message_pk: int, now_iso: str) -> tuple[int, str]:
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

    def note_bounce(self, decision: Decision, message_pk: int, now_iso: str) -> int | None:
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

    def queue_reply(self, decision: Decision, message_pk: int, ticket_id: int | None, ref: str | None,
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
            # The sender identity of the mailbox the mail came in through, read when the reply is sent.
            # (Only a poller's settings name a mailbox; otherwise the outbox finds it from the mail's source.)
            "mailbox": getattr(self.settings, "mailbox", "") or None,
            "from_address": self.settings.from_address if getattr(self.settings, "mailbox", "") else None,
            "from_name": getattr(self.settings, "from_name", "") if getattr(self.settings, "mailbox", "") else None,
        }).last_pk
        store.add_event("reply_queued", message_id=message_pk, ticket_id=ticket_id, at=now_iso,
                        data={"kind": reply.kind, "outbox": outbox_id})
        return outbox_id


def _unread(decision: Decision) -> bool:
    return bool({"mail.unparseable", "mail.too_large"} & set(decision.codes))
