"""The one place that queues outgoing mail: receipts, rejections, lifecycle mail and handlers' replies.

A mail is planned first (a :class:`~intake.decision.Reply`, or a lifecycle ``mail`` effect: a kind,
a recipient role and a template) and rendered exactly once, here, when it is queued: by then the
ticket reference exists. Recipients are roles (requester, approver, previous approver, handler)
or an address read from the ticket's form (``field:<id>``, ``party:<id>``). Every kind has its own
rate cap and the same loop guards: never our own address, never a value that is not an address.
The mail is written to the outbox in the caller's transaction; :mod:`intake.outbox` sends it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from intake.decision import Decision, Reply
from intake.replies import clean_header, new_message_id
from intake.store import Store
from rules.lifecycle import RECIPIENT_ROLES
from rules.packs import RequestType, Routine

#: Automatic replies to incoming mail; they share the per-sender hourly cap (replies.rate_limit_per_hour).
AUTO_REPLY_KINDS = ("ack", "rejection")
#: Default hourly cap per recipient for a lifecycle mail kind (``rate_limit_per_hour`` overrides; 0: none).
EFFECT_RATE_LIMIT = 5

_ADDRESS = re.compile(r"^[^@\s<>,;\"]+@[^@\s<>,;\"]+$")

#: Template values other parts add to every mail about a ticket (name -> loader(store, ticket)), e.g. the
#: checklist's titles (:mod:`intake.checklists`). Registered with :func:`mail_context`; never a personal value.
MAIL_CONTEXT: dict[str, Callable[[Store, Mapping[str, Any]], Any]] = {}


def mail_context(name: str) -> Callable[[Callable[[Store, Mapping[str, Any]], Any]], Callable[..., Any]]:
    """Register a loader of the template value ``name`` for mail about a ticket."""

    def register(fn: Callable[[Store, Mapping[str, Any]], Any]) -> Callable[..., Any]:
        MAIL_CONTEXT[name] = fn
        return fn

    return register


@dataclass(frozen=True)
class Thread:
    """Which mail an outgoing mail answers: the incoming message row and its Message-ID chain."""

    message_pk: int | None = None
    in_reply_to: str = ""
    references: str = ""


@dataclass(frozen=True)
class Rendered:
    subject: str
    body: str


# -- planning and rendering ---------------------------------------------------------------------------


def reply_plan(kind: str, routine: Routine, rtype: RequestType | None, decision: Decision) -> Reply:
    """The plan of the automatic reply ``kind`` (``ack`` or ``rejection``) to ``decision``'s mail."""
    attach = kind == "rejection" and (any(r.code.startswith(("attachment.", "form.")) for r in decision.reasons)
                                      or meant_a_form(routine, decision))
    return Reply(
        kind=kind, to=decision.sender, attach_blank_form=attach, routine=routine,
        request_type=rtype.id if rtype is not None else None, reasons=tuple(decision.reasons),
        user_count=len(decision.form.users) if decision.form is not None else 0,
        offered=tuple(getattr(decision, "offered", ()) or ()),
    )


def meant_a_form(routine: Routine, decision: Decision) -> bool:
    """A mail whose subject fitted no routine but that probably asks for a form routine: it carries a form,
    or its subject shares a word with the subject of one of ``routine``'s form request types ("Behörighet").
    Its rejection then brings the blank form."""
    if "subject.unknown" not in decision.codes:
        return False
    form_types = [rt for rt in routine.request_types if rt.needs_form]
    if not form_types:
        return False
    if decision.form_attachment is not None:
        return True
    words = set(re.findall(r"\w{5,}", (decision.subject or "").casefold()))
    return any(words & set(re.findall(r"\w{5,}", rt.subject.casefold())) for rt in form_types)


def _rtype(routine: Routine, type_id: str | None) -> RequestType | None:
    if not type_id:
        return None
    try:
        return routine.request_type(type_id)
    except KeyError:
        return None


def context(routine: Routine, rtype: RequestType | None, *, ref: str | None, **extra: Any) -> dict[str, Any]:
    """What every template sees: the routine, the request type, the reference, and ``extra``
    (``reasons``, ``user_count``, ``attach_form``, ``note``, ...). Never a personal value."""
    base = {
        "routine": routine,
        "request_type": rtype,
        # Before the ticket exists (``intake check``) the reference is shown as its pattern.
        "ref": ref or routine.ref_pattern(),
        "user_count": 0,
        "reasons": (),
        "attach_form": False,
        "note": "",
        "form": None,
        # The routines whose subjects a rejection lists: every routine the mailbox serves when the
        # subject fitted none, else this one.
        "offered": (routine,),
    }
    base.update(extra)
    base["offered"] = base["offered"] or (routine,)
    return base


def render(routine: Routine, template: str, ctx: Mapping[str, Any], *, body: str | None = None,
           subject: str | None = None) -> Rendered:
    """Render the mail ``template`` (a name in the pack's ``[templates]`` and ``[reply_subjects]``; ``ack``
    takes the request type's receipt). ``body`` and ``subject`` replace the template's (a handler's own
    words; a fixed subject)."""
    env = routine.template_env()
    if body is None:
        rtype = ctx.get("request_type")
        if template == "ack":
            name = rtype.ack_template if rtype is not None else routine.templates["rejection"]
        else:
            name = routine.templates[template]
        body = env.get_template(name).render(**ctx)
    if subject is None:
        # Subjects are short templates in pack.toml: compiled once per environment, not per mail.
        compiled = env.__dict__.setdefault("_intake_subjects", {})
        text = routine.reply_subjects[template]
        if text not in compiled:
            compiled[text] = env.from_string(text)
        subject = compiled[text].render(**ctx)
    return Rendered(clean_header(subject), body)


def render_reply(reply: Reply, *, ref: str | None) -> Rendered:
    """The text of a planned reply; ``ref=None`` gives the preview ``intake check`` shows."""
    routine = reply.routine
    rtype = _rtype(routine, reply.request_type)
    ctx = context(routine, rtype, ref=ref, user_count=reply.user_count, reasons=reply.reasons,
                  attach_form=reply.attach_blank_form, offered=reply.offered)
    return render(routine, reply.kind, ctx)


def form_of(ticket: Mapping[str, Any]) -> dict[str, Any]:
    try:
        return json.loads(ticket.get("form") or "null") or {}
    except (TypeError, ValueError):
        return {}


# -- queueing -----------------------------------------------------------------------------------------


class Mailer:
    """Queues mail into one store's outbox, inside the caller's transaction."""

    def __init__(self, store: Store, routines: list[Routine], settings: Any, *, rate_limit_per_hour: int = 5):
        self.store = store
        self.by_id = {r.id: r for r in routines}
        self.settings = settings
        self.rate_limit_per_hour = rate_limit_per_hour

    # -- recipients --------------------------------------------------------------------------------

    def address(self, to: str, ticket: Mapping[str, Any]) -> str | None:
        """The address a recipient role stands for on ``ticket`` (None when it has none)."""
        if to == "requester":
            value = ticket.get("requester")
        elif to in ("approver", "previous_approver"):
            value = ticket.get(to)
        elif to == "handler":
            value = self.store.user_email(ticket["assignee"]) if ticket.get("assignee") else None
        elif to.startswith("field:"):
            value = (form_of(ticket).get("fields") or {}).get(to[6:])
        elif to.startswith("party:"):
            value = self._party_address(to[6:], ticket)
        else:
            value = to
        if not isinstance(value, str):
            return None
        value = value.strip()
        return value if _ADDRESS.match(value) else None

    def _party_address(self, party: str, ticket: Mapping[str, Any]) -> Any:
        form = form_of(ticket)
        stored = (form.get("parties") or {}).get(party)
        if isinstance(stored, Mapping):
            for key in ("email", "epost", "e_post"):
                if stored.get(key):
                    return stored[key]
        fields = form.get("fields") or {}
        routine = self.by_id.get(ticket.get("routine") or "")
        schema = getattr(routine, "form_schema", None)
        for p in getattr(schema, "parties", None) or ():
            if getattr(p, "id", None) == party:
                for attr in ("email_field", "email"):
                    field_id = getattr(p, attr, None)
                    if isinstance(field_id, str) and fields.get(field_id):
                        return fields[field_id]
        return fields.get(f"{party}_epost") or fields.get(party)

    # -- the one insert ------------------------------------------------------------------------------

    def queue(
        self,
        *,
        routine: Routine,
        kind: str,
        template: str,
        to: str,
        ctx: Mapping[str, Any],
        now: datetime,
        ticket: Mapping[str, Any] | None = None,
        thread: Thread = Thread(),
        actor: str = "bot",
        automatic: bool = True,
        rate_limit: int | None = None,
        rate_kinds: tuple[str, ...] | None = None,
        attach_blank_form: bool = False,
        attach_form: bool = False,
        body: str | None = None,
        subject: str | None = None,
    ) -> int | None:
        """Render and queue one mail; returns its outbox id, or None when a guard suppressed it.

        ``to`` is a recipient role or an address; ``rate_limit`` mails per hour and recipient of
        ``rate_kinds`` (default: this kind) at most (None or 0: no cap). A suppressed mail is an event
        (``reply_suppressed`` with a reason code) and, for a reply, a mark on the incoming message.
        """
        store = self.store
        now_iso = now.isoformat(timespec="seconds")
        ticket_id = ticket["id"] if ticket is not None else None
        address = self.address(to, ticket or {})
        role = to if to in RECIPIENT_ROLES or to.startswith(("field:", "party:")) else None
        why = None
        if address is None:
            why = "mail.no_recipient"
        elif address.lower() in self.settings.own_addresses or address.lower() == self.settings.from_address.lower():
            why = "mail.own_address"
        elif rate_limit:
            since = (now - timedelta(hours=1)).isoformat(timespec="seconds")
            if store.replies_to_since(address, since, rate_kinds or (kind,)) >= rate_limit:
                why = "mail.rate_limited"
        if why is not None:
            if thread.message_pk is not None and kind in AUTO_REPLY_KINDS:
                store.update_message(thread.message_pk, {"reply_suppressed": why})
            data: dict[str, Any] = {"reason": why}
            if kind not in AUTO_REPLY_KINDS:
                data.update(kind=kind, to=role)  # the role, never the address
            store.add_event("reply_suppressed", actor=actor, message_id=thread.message_pk, ticket_id=ticket_id,
                            at=now_iso, data=data)
            return None
        if ticket is not None and MAIL_CONTEXT:
            ctx = {**{name: load(store, ticket) for name, load in MAIL_CONTEXT.items()}, **ctx}
        text = render(routine, template, ctx, body=body, subject=subject)
        outbox_id = store.insert_outbox({
            "message_id": thread.message_pk,
            "ticket_id": ticket_id,
            "kind": kind,
            "to_addr": address,
            "subject": text.subject,
            "body": text.body,
            "rfc_message_id": new_message_id(self.settings.from_address),
            "in_reply_to": thread.in_reply_to or None,
            "references_": thread.references or None,
            "attach_blank_form": int(attach_blank_form),
            "attach_ticket_form": int(attach_form),
            "automatic": int(automatic),
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now_iso,
            "created_at": now_iso,
            # The sender identity of the mailbox the mail came in through, read when the mail is sent. Only a
            # poller's settings name a mailbox; otherwise the outbox finds it from the mail's source.
            **self._identity(),
        })
        data = {"kind": kind, "outbox": outbox_id}
        if role is not None and role != "requester":
            data["to"] = role  # the role, never the address
        store.add_event("reply_queued", actor=actor, message_id=thread.message_pk, ticket_id=ticket_id,
                        at=now_iso, data=data)
        return outbox_id

    def _identity(self) -> dict[str, str | None]:
        mailbox = getattr(self.settings, "mailbox", "") or ""
        if not mailbox:
            return {}
        return {"mailbox": mailbox, "from_address": self.settings.from_address,
                "from_name": getattr(self.settings, "from_name", "") or None}

    # -- the kinds -----------------------------------------------------------------------------------

    def queue_reply(self, decision: Decision, message_pk: int, ticket: Mapping[str, Any] | None,
                    now: datetime) -> int | None:
        """Queue the automatic reply ``decision`` planned, answering its incoming mail."""
        reply = decision.reply
        assert reply is not None
        routine = reply.routine
        ref = ticket["ref"] if ticket is not None else None
        rtype = _rtype(routine, reply.request_type)
        ctx = context(routine, rtype, ref=ref, user_count=reply.user_count, reasons=reply.reasons,
                      attach_form=reply.attach_blank_form)
        thread = Thread(message_pk, decision.message_id or "",
                        " ".join([*decision.references, decision.message_id]).strip())
        return self.queue(
            routine=routine, kind=reply.kind, template=reply.kind, to=reply.to, ctx=ctx, now=now, ticket=ticket,
            thread=thread, automatic=True, rate_limit=self.rate_limit_per_hour, rate_kinds=AUTO_REPLY_KINDS,
            attach_blank_form=reply.attach_blank_form,
        )

    def ticket_thread(self, ticket: Mapping[str, Any]) -> Thread:
        """A mail to the requester about a ticket answers the ticket's first mail."""
        first = self.store.first_message(ticket["id"])
        mid = (first or {}).get("message_id") or ""
        return Thread(first["id"] if first else None, mid, mid)

    def queue_effect(self, params: Mapping[str, Any], *, routine: Routine, ticket: Mapping[str, Any],
                     actor: str, payload: Mapping[str, Any], now: datetime,
                     extra: Mapping[str, Any] | None = None) -> int | None:
        """A lifecycle ``mail`` effect: ``to``, ``template``, optional ``kind``, ``automatic``,
        ``rate_limit_per_hour``, ``attach_form`` (the ticket's stored form goes with it). Mail to the
        requester answers the ticket's first mail. The template sees ``note`` from the event's payload and
        ``extra`` (what an earlier effect of the step put in ``mail_context``, e.g. an approval link)."""
        to = params["to"]
        template = params["template"]
        kind = params.get("kind", template)
        # ``form`` (the ticket's stored form) lets a template count persons and roles; never print names.
        values: dict[str, Any] = {"user_count": ticket.get("user_count") or 0,
                                  "note": str(payload.get("note", "")).strip(), "form": form_of(ticket) or None}
        values.update(extra or {})
        ctx = context(routine, _rtype(routine, ticket.get("request_type")), ref=ticket["ref"], **values)
        thread = self.ticket_thread(ticket) if to == "requester" else Thread()
        return self.queue(
            routine=routine, kind=kind, template=template, to=to, ctx=ctx, now=now, ticket=ticket,
            thread=thread, actor=actor, automatic=params.get("automatic", True),
            rate_limit=params.get("rate_limit_per_hour", EFFECT_RATE_LIMIT),
            attach_form=params.get("attach_form", False),
        )

    def queue_handler_reply(self, routine: Routine, ticket: Mapping[str, Any], actor: str, text: str,
                            now: datetime) -> int | None:
        """A handler's own words to the requester, under the receipt's subject (keeps the reference); a ticket
        whose request type the pack no longer has gets just the reference as its subject."""
        rtype = _rtype(routine, ticket.get("request_type"))
        return self.queue(routine=routine, kind="handler_reply", template="ack", to="requester",
                          ctx=context(routine, rtype, ref=ticket["ref"]), now=now, ticket=ticket,
                          thread=self.ticket_thread(ticket), actor=actor, automatic=False, body=text + "\n",
                          subject=None if rtype is not None else f"[{ticket['ref']}]")
