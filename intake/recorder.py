"""Recording decisions: the one transaction that makes a mail's effect exactly-once.

The message row, its ticket (or the ticket it follows up), the reply it gets and their events are
written together; a handler releasing a held mail uses the same functions, so a ticket and its
receipt look the same whichever way they came about.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from intake.decision import Decision, content_hash
from intake.engine import Engine, TicketError
from intake.pipeline import Settings
from intake.sources.base import FetchedMail
from intake.store import Recorded, Store
from rules.packs import Routine

#: Join handlers by name: ``handler(recorder, decision, message_pk, ticket, now)`` records a mail that joined a
#: ticket with ``join_data`` naming it (an approval answer), in the recording transaction, instead of ``followup``.
JOIN_HANDLERS: dict[str, Callable[..., None]] = {}


#: Reason parameters never kept with a recorded mail: they may repeat what the sender wrote.
UNSTORED_PARAMS = frozenset({"filename"})


def stored_reason(r: Any) -> dict[str, Any]:
    """A reason as kept with its mail: code, staff detail, and the facts its sentence names ("ett
    personnummer på rad 3"), so the sentence reads the same on every page."""
    return {"code": r.code, "detail": r.detail,
            "params": {k: v for k, v in r.params if k not in UNSTORED_PARAMS}}

class Recorder:
    """Writes decisions into the store; tickets change only through the lifecycle engine."""

    def __init__(self, store: Store, routines: list[Routine], settings: Settings, *, rate_limit_per_hour: int = 5,
                 engine: Engine | None = None):
        self.store = store
        self.by_id = {r.id: r for r in routines}
        self.settings = settings
        self.rate_limit_per_hour = rate_limit_per_hour
        self.engine = engine or Engine(store, routines, settings, rate_limit_per_hour=rate_limit_per_hour)

    def record(self, decision: Decision, fetched: FetchedMail, source_name: str, uidvalidity: int,
               now: datetime, *, digest: str | None = None) -> Recorded:
        """Write the message, its ticket, its reply and their events in one transaction.

        ``digest`` is the mail's content hash when the caller has it already (the poller does).
        """
        store = self.store
        now_iso = now.isoformat(timespec="seconds")
        with store.transaction():
            again = store.find_message(decision.message_key)
            if again is not None:
                return Recorded(again["id"], new=False, ticket_ref=None, outbox_id=None)
            message_pk = self.insert_message(decision, fetched, source_name, uidvalidity, now_iso, digest=digest)
            store.add_event("received", message_id=message_pk, at=now_iso,
                            data={"verdict": decision.verdict, "reasons": decision.codes})

            ticket_id, ref = None, None
            if decision.verdict in ("accepted", "held") and decision.ticket_ref:
                ticket_id, ref = self.attach_followup(decision, message_pk, now)
            elif decision.verdict == "accepted":
                ticket_id, ref = self.engine.create_ticket(decision, message_pk, now)

            if decision.bounce_of:
                ticket_id = self.note_bounce(decision, message_pk, now_iso)

            outbox_id = None
            if decision.reply is not None and not decision.ticket_ref:
                outbox_id = self.queue_reply(decision, message_pk, ticket_id, now)
            elif decision.reply_suppressed:
                store.update_message(message_pk, {"reply_suppressed": decision.reply_suppressed})
            return Recorded(message_pk, new=True, ticket_ref=ref, outbox_id=outbox_id)

    def insert_message(self, decision: Decision, fetched: FetchedMail, source_name: str, uidvalidity: int,
                       now_iso: str, *, digest: str | None = None) -> int:
        subject_pd = decision.subject_withheld
        return self.store.insert_message({
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
            "reasons": json.dumps([stored_reason(r) for r in decision.reasons], ensure_ascii=False),
            "routine": decision.routine,
            "request_type": decision.request_type,
            "size": fetched.size,
            "recorded_at": now_iso,
            # Mail rejected for personal data is kept as metadata only, and so is mail we could not
            # read: its content was never scanned (the mail itself stays in its folder on the server).
            "raw": None if decision.metadata_only or _unread(decision) else fetched.raw,
        })

    def attach_followup(self, decision: Decision, message_pk: int, now: datetime) -> tuple[int, str]:
        """A follow-up joins its ticket and fires ``followup`` (which reopens a closed ticket in MittVaccin)."""
        store = self.store
        ticket = store.ticket(decision.ticket_ref)
        store.update_message(message_pk, {"ticket_id": ticket["id"]})
        handler = JOIN_HANDLERS.get((decision.join_data or {}).get("handler", ""))
        if handler is not None:
            handler(self, decision, message_pk, ticket, now)
            return ticket["id"], ticket["ref"]
        try:
            self.engine.fire(ticket, "followup", actor="bot", role="bot", optional=True, now=now)
        except TicketError as exc:
            # A gate (or a pack that lets only others reopen) refused the step: the mail still joins the ticket.
            store.add_event("transition_refused", ticket_id=ticket["id"], message_id=message_pk,
                            at=now.isoformat(timespec="seconds"),
                            data={"event": "followup", "code": getattr(exc, "code", "error")})
        store.add_event("followup", ticket_id=ticket["id"], message_id=message_pk,
                        at=now.isoformat(timespec="seconds"), data={"verdict": decision.verdict})
        return ticket["id"], ticket["ref"]

    def note_bounce(self, decision: Decision, message_pk: int, now_iso: str) -> int | None:
        """A bounce of one of our replies: mark that reply bounced and show it on its ticket."""
        store = self.store
        ticket_id = None
        for row in store.outbox_by_rfc_ids(list(decision.bounce_of)):
            store.mark_bounced(row["id"])
            store.add_event("reply_bounced", ticket_id=row["ticket_id"], message_id=message_pk, at=now_iso,
                            data={"outbox": row["id"], "kind": row["kind"]})
            ticket_id = ticket_id or row["ticket_id"]
        if ticket_id is not None:
            store.update_message(message_pk, {"ticket_id": ticket_id})
        return ticket_id

    def queue_reply(self, decision: Decision, message_pk: int, ticket_id: int | None, now: datetime) -> int | None:
        """The decision's planned reply, rendered once (with the ticket's reference, if any) and queued."""
        ticket = self.store.ticket_by_id(ticket_id) if ticket_id is not None else None
        return self.engine.mailer.queue_reply(decision, message_pk, ticket, now)


def _unread(decision: Decision) -> bool:
    return bool({"mail.unparseable", "mail.too_large"} & set(decision.codes))
