"""Held mail: a handler lets it through (it becomes a ticket) or rejects it (its bytes are dropped).

The mail is judged again by :func:`intake.pipeline.decide` *before* the write transaction opens (a
form in the sandbox can take a while, and the poller must not wait on it); the one transaction
that records the outcome checks that the mail is still held, so two handlers cannot both act.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from intake.engine import Engine, TicketError
from intake.moves import request_held_move
from intake.recorder import Recorder, stored_reason
from intake.store import Store
from rules.packs import Routine


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def _reasons(msg: dict[str, Any]) -> list[dict[str, Any]]:
    return json.loads(msg["reasons"] or "[]")


def _held(store: Store, message_pk: int) -> dict[str, Any]:
    msg = store.message(message_pk)
    if msg["verdict"] != "held":
        raise TicketError(f"message {message_pk} is {msg['verdict']}, not held")
    return msg


class HeldMail:
    """A handler's decisions on held mail, recorded exactly as a poll records mail."""

    def __init__(self, store: Store, routines: list[Routine], settings: Any, *,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC), folders: Mapping[str, Any] | None = None,
                 source_folders: Mapping[str, Mapping[str, Any]] | None = None):
        self.store = store
        self.folders = dict(folders or {})  # config [mailbox.folders]: where the judged mail goes on the server
        # Several mailboxes: the folders of the mailbox a mail came in through (by its recorded source).
        self.source_folders = {k: dict(v) for k, v in (source_folders or {}).items()}
        self.routines = routines
        self.by_id = {r.id: r for r in routines}
        self.settings = settings
        self.clock = clock
        self.recorder = Recorder(store, routines, settings, engine=Engine(store, routines, settings, clock=clock))


    def _folders(self, msg: Mapping[str, Any]) -> dict[str, Any]:
        return self.source_folders.get(msg.get("source") or "", self.folders)

    def _decide(self, msg: dict[str, Any]) -> Any:
        from intake.orderers import lookups_for
        from intake.pipeline import decide

        # Judged as the poller judges, with the same lookups (the orderer register), so a release does not
        # let through what the register now refuses.
        return decide(msg["raw"], self.routines, settings=self.settings,
                      now=datetime.fromisoformat(msg["recorded_at"]), lookups=lookups_for(self.store))

    def inspect(self, message_pk: int, user: str, *, full_text: bool = False) -> dict[str, Any]:
        """What a handler needs to judge a held mail: each finding's category, place and masked excerpt
        (:func:`intake.mailview.excerpt`), the reason sentences with their facts, and, only when asked
        (``full_text``, written to the audit trail), the whole text."""
        from intake.mailview import excerpt, view_mail
        from rules.personal_data import describe
        from rules.reasons import reason

        msg = self.store.message(message_pk)
        if msg["raw"] is None:
            return {"message": msg, "findings": [], "reasons": _reasons(msg), "text": None, "readable": False}
        decision = self._decide(msg)
        mail = view_mail(msg["raw"], sender=msg["sender"] or "", subject=msg["subject"] or "")
        findings = []
        for f in decision.findings:
            source = mail.subject if f.location == "subject" else mail.text
            findings.append({"category": f.category, "location": f.location, "line": f.line, "score": f.score,
                             "more": f.more, "excerpt": excerpt(source, 1 if f.location == "subject" else f.line,
                                                                f.category)})
        reasons = []
        for r in _reasons(msg):
            params = dict(r.get("params") or {})
            found = [f for f in decision.findings if r["code"].startswith(f.location + ".")]
            if "what" not in params and found:
                params["what"] = describe(found)
            reasons.append({**r, "params": params, "text": reason(r["code"], **params).message})
        text = None
        if full_text:
            with self.store.transaction():
                self.store.add_event("viewed", actor=user, message_id=message_pk, at=_iso(self.clock()),
                                     data={"what": "held_text", "via": "web", "message": message_pk})
            text = (mail.subject, mail.text)
        return {"message": msg, "findings": findings, "reasons": reasons, "text": text, "readable": True,
                "attachments": [(a.filename, a.size) for a in mail.attachments]}

    def release(self, message_pk: int, user: str) -> str:
        """A held mail becomes a ticket (with a receipt queued), as if accepted; returns the ticket ref."""
        from intake.mailer import reply_plan

        msg = _held(self.store, message_pk)
        decision = None
        if not msg["ticket_id"]:
            if msg["raw"] is None:
                raise TicketError(f"message {message_pk}: the mail itself is no longer stored")
            decision = self._decide(msg)  # outside the write transaction
            if decision.verdict not in ("held", "accepted") or decision.routine is None or not decision.request_type:
                raise TicketError(f"message {message_pk}: judged {decision.verdict} now "
                                  f"({', '.join(decision.codes) or 'no routine'}); cannot become a ticket")
        now = self.clock()
        now_iso = _iso(now)
        store = self.store
        with store.transaction():
            msg = _held(store, message_pk)  # still held: nobody acted on it meanwhile
            if msg["ticket_id"]:
                # A held follow-up is already attached to its ticket: releasing only settles the verdict.
                ref = store.ticket_by_id(msg["ticket_id"])["ref"]
                store.update_message(message_pk, {"verdict": "accepted"})
                store.add_event("held_released", actor=user, message_id=message_pk, ticket_id=msg["ticket_id"],
                                at=now_iso, data={"ref": ref})
                request_held_move(store, msg, self._folders(msg), personal_data=False, user=user)
                return ref
            if decision is None:
                raise TicketError(f"message {message_pk} changed while it was judged; try again")
            routine = self.by_id[decision.routine]
            decision = replace(decision, verdict="accepted",
                               reply=reply_plan("ack", routine, routine.request_type(decision.request_type),
                                                decision))
            ticket_id, ref = self.recorder.engine.create_ticket(decision, message_pk, now)
            store.update_message(message_pk, {"verdict": "accepted"})
            request_held_move(store, msg, self._folders(msg), personal_data=False, user=user)
            store.add_event("held_released", actor=user, message_id=message_pk, ticket_id=ticket_id,
                            at=now_iso, data={"ref": ref, "reasons": [r["code"] for r in _reasons(msg)]})
            self.recorder.queue_reply(decision, message_pk, ticket_id, now)
        return ref

    def reject(self, message_pk: int, user: str, *, reply: bool = True) -> int | None:
        """Judge a held mail as holding personal data: reject it, forget its bytes, and (by default) queue
        the rejection that says what to remove. Returns the outbox id of that reply, if any."""
        from intake.mailer import reply_plan
        from rules.personal_data import describe
        from rules.reasons import reason

        msg = _held(self.store, message_pk)
        held_codes = [r["code"] for r in _reasons(msg)]
        reasons, decision = [], None
        if msg["raw"] is not None:
            decision = self._decide(msg)  # outside the write transaction
            for location in ("subject", "body"):
                if f"{location}.possible_personal_data" in held_codes:
                    found = [f for f in decision.findings if f.location == location]
                    if found:
                        reasons.append(reason(f"{location}.personal_data", what=describe(found),
                                              detail="confirmed by a handler"))
        now = self.clock()
        now_iso = _iso(now)
        store = self.store
        with store.transaction():
            msg = _held(store, message_pk)
            changes: dict[str, Any] = {"verdict": "rejected", "raw": None,
                                       "reasons": json.dumps([stored_reason(r) for r in reasons]
                                                             or _reasons(msg), ensure_ascii=False)}
            if "subject.possible_personal_data" in held_codes:
                changes["subject"] = ""
            store.update_message(message_pk, changes)
            request_held_move(store, msg, self._folders(msg), personal_data=True, user=user)
            store.add_event("held_rejected", actor=user, message_id=message_pk, at=now_iso,
                            data={"held": held_codes, "reasons": [r.code for r in reasons]})
            outbox_id = None
            if reply and reasons and decision is not None and decision.sender and decision.routine in self.by_id:
                routine = self.by_id[decision.routine]
                rtype = routine.request_type(decision.request_type) if decision.request_type else None
                rejected = replace(decision, verdict="rejected", reasons=tuple(reasons), ticket_ref=None)
                rejected = replace(rejected, reply=reply_plan("rejection", routine, rtype, rejected))
                outbox_id = self.recorder.queue_reply(rejected, message_pk, None, now)
        return outbox_id
