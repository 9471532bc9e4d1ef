"""Ticket work for handlers: look, take, assign, change status, note, reply, close.

Used by the web UI and the CLI alike. Every change is one transaction that also writes an event
naming who did it, and every change of state goes through :class:`intake.engine.Engine`, so the
pack's lifecycle (its transitions, gates and effects) holds here exactly as for mail and timers.
Event data holds ids, statuses and counts, never a personal value: note texts live in the
``notes`` table and reply texts in the outbox, both cleared by :func:`intake.retention.purge`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from intake.engine import Engine, Refused, TicketError, refused
from intake.store import NotFoundError, Store
from rules.packs import Routine

__all__ = ["PersonalDataInReply", "Refused", "TicketDesk", "TicketError"]


class PersonalDataInReply(TicketError):
    """A handler's text to the requester (a reply, the completion note) holds personal data: not sent.

    ``sv`` names what and where in Swedish ("ett personnummer på rad 2"); ``findings`` are the guard's
    findings (kinds and lines, never values). An admin may send it anyway (``force``), which is audited.
    """

    def __init__(self, ref: str, findings: list[Any]):
        from rules.personal_data import describe

        self.findings = findings
        self.what = describe(findings)
        self.sv = (f"Texten skickades inte: den innehåller {self.what}. Personuppgifter får inte stå i e-post; "
                   "ta bort dem och skicka igen.")
        super().__init__(f"{ref}: not sent, the text holds personal data ({self.what})")


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


class TicketDesk:
    """The handler's actions on one store. ``role`` is the acting user's role (handler or admin)."""

    def __init__(
        self,
        store: Store,
        routines: list[Routine],
        settings: Any,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        folders: Mapping[str, Any] | None = None,
        source_folders: Mapping[str, Mapping[str, Any]] | None = None,
    ):
        self.store = store
        self.folders = folders  # config [mailbox.folders]: where judged held mail goes on the server
        self.source_folders = source_folders  # several mailboxes: each source's own folders
        self.routines = routines
        self.by_id = {r.id: r for r in routines}
        self.settings = settings
        self.clock = clock
        self.engine = Engine(store, routines, settings, clock=clock)

    # -- looking --------------------------------------------------------------------------------

    def view(self, ref: str, user: str, *, what: str = "ticket", via: str = "web") -> dict[str, Any]:
        """The ticket, with the view written to the audit trail (every look at personal data is)."""
        ticket = self.store.ticket(ref)
        with self.store.transaction():
            self.store.add_event("viewed", actor=user, ticket_id=ticket["id"], at=_iso(self.clock()),
                                 data={"what": what, "via": via})
        return ticket

    def read_message(self, ref: str, message_pk: int, user: str, *, via: str = "web",
                     what: str = "message") -> tuple[dict[str, Any], Any]:
        """One mail on the ticket (its request, a follow-up, a linked bounce) as a handler reads it, the look
        audited like a look at the form. Returns (the message row, :class:`intake.mailview.MailView`)."""
        from intake.mailview import view_mail

        ticket = self.store.ticket(ref)
        msg = self.store.message(message_pk)
        if msg["ticket_id"] != ticket["id"]:
            raise NotFoundError(f"message {message_pk} is not on {ref}")
        with self.store.transaction():
            self.store.add_event("viewed", actor=user, ticket_id=ticket["id"], message_id=message_pk,
                                 at=_iso(self.clock()), data={"what": what, "via": via, "message": message_pk})
        return msg, view_mail(msg["raw"], sender=msg["sender"] or "", subject=msg["subject"] or "")

    def targets(self, ticket: dict[str, Any], role: str = "handler") -> list[str]:
        """The statuses ``role`` may choose for the ticket now."""
        return self.engine.targets(ticket, role)

    # -- actions --------------------------------------------------------------------------------

    def take(self, ref: str, user: str, *, role: str = "handler") -> dict[str, Any]:
        """Assign the ticket to ``user``; the lifecycle's ``assign`` event may start the work."""
        return self.assign(ref, user, user, role=role, _check=False)

    def assign(self, ref: str, user: str, assignee: str | None, *, role: str = "handler",
               _check: bool = True) -> dict[str, Any]:
        """Give the ticket to ``assignee`` (``None`` or "" to unassign) and fire ``assign``
        (in MittVaccin: a new or waiting ticket becomes in_progress)."""
        assignee = assignee or None
        now = self.clock()
        with self.store.transaction():
            ticket = self.store.ticket(ref)
            lifecycle = self.engine.routine(ticket).lifecycle
            if not lifecycle.is_open(ticket["status"]):
                raise refused(ref, "lifecycle.closed", state=ticket["status"])
            if not lifecycle.is_workable(ticket["status"]):
                raise refused(ref, "lifecycle.not_workable", state=ticket["status"])
            if _check and assignee is not None and not self.store.user_exists(assignee):
                raise TicketError(f"no user {assignee}")
            self.store.add_event("assigned", actor=user, ticket_id=ticket["id"], at=_iso(now),
                                 data={"from": ticket["assignee"], "to": assignee})
            if assignee is None:
                self.store.update_ticket(ticket["id"], {"assignee": None, "updated_at": _iso(now)})
                return self.store.ticket(ref)
            return self.engine.fire(ticket, "assign", actor=user, role=role, optional=True, now=now,
                                    changes={"assignee": assignee}).ticket

    def set_status(self, ref: str, user: str, status: str, *, note: str = "", role: str = "handler",
                   override: str = "", force: bool = False) -> dict[str, Any]:
        """Move the ticket to ``status`` along the pack's transitions; the new state's effects run
        (MittVaccin's ``done`` queues the completion mail, with ``note`` in it). A ``note`` holding personal
        data raises :class:`PersonalDataInReply` unless an admin sends it anyway (``force``, audited)."""
        if note.strip():
            self.guard_text(ref, user, note, role=role, force=force, what="completion_note")
        return self.engine.fire(ref, "set_status", actor=user, role=role, target=status,
                                payload={"note": note}, override=override).ticket

    def mark_done(self, ref: str, user: str, note: str = "", *, role: str = "handler",
                  force: bool = False) -> dict[str, Any]:
        """Close the ticket as done and queue the completion mail (with ``note`` in it, if given)."""
        return self.set_status(ref, user, "done", note=note, role=role, force=force)

    def guard_text(self, ref: str, user: str, text: str, *, role: str = "handler", force: bool = False,
                   what: str = "reply") -> None:
        """The personal-data guard over a text for the requester, as over incoming mail.

        Raises :class:`PersonalDataInReply` on a finding; with ``force`` an admin's text passes and the
        override is written to the audit trail (kinds and lines only). ``force`` by a handler is refused.
        """
        from rules.personal_data import PersonalDataConfig, scan

        ticket = self.store.ticket(ref)
        config = getattr(self.settings, "personal_data", None) or PersonalDataConfig()
        findings = scan("", text, sender_name=user, sender_address=ticket["requester"] or "",
                        today=self.clock().date(), config=config)
        if not findings:
            return
        if not force:
            raise PersonalDataInReply(ref, findings)
        if role != "admin":
            raise TicketError(f"{ref}: only an admin may send a text with personal data")
        with self.store.transaction():
            self.store.add_event("personal_data_override", actor=user, ticket_id=ticket["id"], at=_iso(self.clock()),
                                 data={"what": what, "findings": [[f.category, f.line] for f in findings]})

    def add_note(self, ref: str, user: str, text: str) -> int:
        """An internal note, seen by handlers only; returns the note id."""
        text = text.strip()
        if not text:
            raise TicketError("empty note")
        now_iso = _iso(self.clock())
        with self.store.transaction():
            ticket = self.store.ticket(ref)
            note_id = self.store.add_note(ticket["id"], user, text, now_iso)
            self.store.update_ticket(ticket["id"], {"updated_at": now_iso})
            self.store.add_event("note", actor=user, ticket_id=ticket["id"], at=now_iso, data={"note": note_id})
        return note_id

    def reply(self, ref: str, user: str, text: str, *, role: str = "handler", force: bool = False) -> int:
        """Queue a handler's reply to the requester, threaded to the ticket's first mail; returns the outbox id.

        The text goes through the personal-data guard first (:meth:`guard_text`)."""
        text = text.strip()
        if not text:
            raise TicketError("empty reply")
        self.guard_text(ref, user, text, role=role, force=force)
        now = self.clock()
        with self.store.transaction():
            ticket = self.store.ticket(ref)
            if not ticket["requester"]:
                raise TicketError(f"{ref} has no requester to write to")
            outbox_id = self.engine.mailer.queue_handler_reply(self.engine.routine(ticket), ticket, user, text, now)
            if outbox_id is None:
                raise TicketError(f"{ref}: the reply could not be queued (no usable address)")
            self.store.update_ticket(ticket["id"], {"updated_at": _iso(now)})
        return outbox_id

    # -- held mail (see intake.held) ---------------------------------------------------------------

    def release_held(self, message_pk: int, user: str) -> str:
        """A held mail becomes a ticket (with a receipt queued), as if accepted; returns the ticket ref."""

        return self._held().release(message_pk, user)

    def reject_held(self, message_pk: int, user: str, *, reply: bool = True) -> int | None:
        """Reject a held mail as holding personal data (see :meth:`intake.held.HeldMail.reject`)."""

        return self._held().reject(message_pk, user, reply=reply)

    def inspect_held(self, message_pk: int, user: str, *, full_text: bool = False) -> dict[str, Any]:
        """A held mail's findings, masked (see :meth:`intake.held.HeldMail.inspect`); the whole text only
        with ``full_text``, audited."""
        return self._held().inspect(message_pk, user, full_text=full_text)

    def _held(self) -> Any:
        from intake.held import HeldMail

        return HeldMail(self.store, self.routines, self.settings, clock=self.clock, folders=self.folders,
                        source_folders=self.source_folders)
