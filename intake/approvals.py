"""Approval by an attestant, the imperative half: tokens, the poller's lookup, answers, links, changes.

The pure half is :mod:`rules.approval` (the ``approval_answer`` check, reading an answer, the effect
declarations). Here:

- the executors of the ``approval_request`` and ``approval_end`` effects: a new approval row, a
  single-use token stored as its SHA-256 (the token itself is only in the mail's ``[ATTEST-…]`` tag and
  the link), and the token, link and a summary free of personal data in ``shared["mail_context"]``;
- :class:`ApprovalLookup`, the read-only ``lookups["approval"]`` the poller hands to ``decide()``;
- the join handler that records an answer in the recording transaction and fires ``approve`` or
  ``reject`` through the engine as the ``approver`` (or holds it, or answers a short Swedish reply);
- :func:`decide_by_link` (the web page), :func:`change_attestant` (handler, CLI, the orderer's reply) and
  :func:`confirm_held` (a handler confirming an answer that lacked authentication).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from intake import faults
from intake.engine import EffectContext, Engine, TicketError, executor
from intake.mailer import AUTO_REPLY_KINDS, Thread, context, form_of
from intake.recorder import JOIN_HANDLERS
from intake.store import NotFoundError, Store
from rules.approval import REFUSAL_CODES
from rules.personal_data import scan

#: Short Swedish replies to answers that change nothing (template names a pack with approvals must have).
ANSWER_REPLIES = {"unclear": "attest_unclear", "no_reason": "attest_no_reason", "closed": "attest_closed"}
#: Shown to the orderer instead of a rejection reason that may hold personal data.
WITHHELD_REASON = "(Attestantens motivering visas inte i e-post eftersom den kan innehålla personuppgifter. " \
                  "Kontakta attestanten.)"


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def token_sha(token: str) -> str:
    return hashlib.sha256(token.strip().lower().encode()).hexdigest()


def _settings(engine: Engine) -> Mapping[str, Any]:
    return getattr(engine.settings, "approvals", None) or {}


# -- the effects ------------------------------------------------------------------------------------------


def _summary(ctx: EffectContext, params: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(label, value) of the form fields the pack chose to show (units, uppdrag, dates; never the person)."""
    fields = form_of(ctx.ticket).get("fields") or {}
    schema = ctx.routine.form_schema
    out = []
    for field_id in params.get("show", []):
        spec = schema.spec(field_id) if schema is not None else None
        value = fields.get(field_id)
        if value in (None, "", []):
            continue
        out.append((spec.label if spec else field_id, spec.display(value) if spec else str(value)))
    users = form_of(ctx.ticket).get("users") or []
    for column in params.get("show_columns", []):
        spec = schema.spec(column) if schema is not None else None
        values: list[str] = []
        for row in users:
            cell = row.get(column)
            for v in cell if isinstance(cell, list) else [cell]:
                if v not in (None, "") and str(v) not in values:
                    values.append(str(v))
        if values:
            out.append((spec.label if spec else column, ", ".join(values)))
    return out


def _orderer(ctx: EffectContext, params: Mapping[str, Any]) -> str:
    party = (form_of(ctx.ticket).get("parties") or {}).get(params.get("orderer_party", "orderer")) or {}
    name = party.get("name") if isinstance(party, Mapping) else None
    address = ctx.ticket.get("requester") or ""
    return f"{name} ({address})" if name else address


def issue_token(store: Store, approval_id: int, now: datetime, days: int) -> str:
    token = secrets.token_hex(16)
    store.add_approval_token(approval_id, token_sha(token), _iso(now), _iso(now + timedelta(days=days)))
    return token


@executor("approval_request")
def _approval_request(ctx: EffectContext, params: Mapping[str, Any]) -> int | None:
    engine, store, ticket = ctx.engine, ctx.engine.store, ctx.ticket
    now_iso = _iso(ctx.now)
    if params.get("reminder"):
        approval = store.pending_approval(ticket["id"])
        if approval is None:
            return None
        store.update_approval(approval["id"], {"reminders": (approval["reminders"] or 0) + 1,
                                               "last_reminded_at": now_iso})
    else:
        wanted = ctx.payload.get("approver") or engine.mailer.address(f"party:{params.get('party', 'attestant')}",
                                                                         ticket)
        attestant = (wanted or "").strip().lower()
        if not attestant:
            store.add_event("approval_no_attestant", actor=ctx.actor, ticket_id=ticket["id"], at=now_iso, data={})
            return None
        previous = ticket.get("approver")
        approval_id = store.add_approval(ticket["id"], attestant, now_iso)
        approval = store.approval(approval_id)
        self_approval = attestant == (ticket.get("requester") or "").lower()
        changes = {"approver": None if self_approval else attestant,
                   "previous_approver": previous if previous and previous != attestant else None}
        store.update_ticket(ticket["id"], changes)
        ticket.update(changes)  # the mails after this effect go to the new attestant
        if self_approval:  # nobody approves their own order: the attestant is not mailed; a handler must change it
            store.add_event("approval_refused", actor=ctx.actor, ticket_id=ticket["id"], at=now_iso,
                            data={"approval": approval_id, "code": "approval.self"})
            return approval_id
    token = issue_token(store, approval["id"], ctx.now, int(_settings(engine).get("token_days", 30)))
    base = str(_settings(engine).get("link_base_url", "")).rstrip("/")
    ctx.shared.setdefault("mail_context", {}).update({
        "approval_token": token,
        "approval_tag": f"[ATTEST-{token}]",
        "approval_link": f"{base}/attest/{token}" if base else "",
        "approval_summary": _summary(ctx, params),
        "orderer": _orderer(ctx, params),
        "out_of_office": bool(approval.get("out_of_office_at")),
        "reminder_count": (approval.get("reminders") or 0) + (1 if params.get("reminder") else 0),
    })
    store.add_event("approval_requested", actor=ctx.actor, ticket_id=ticket["id"], at=now_iso,
                    data={"approval": approval["id"], "reminder": bool(params.get("reminder"))})
    return approval["id"]


@executor("approval_end")
def _approval_end(ctx: EffectContext, params: Mapping[str, Any]) -> int | None:
    store = ctx.engine.store
    approval = store.pending_approval(ctx.ticket["id"])
    if approval is None:
        return None
    store.end_approval(approval["id"], params["status"], _iso(ctx.now), decided_at=_iso(ctx.now))
    store.add_event("approval_ended", actor=ctx.actor, ticket_id=ctx.ticket["id"], at=_iso(ctx.now),
                    data={"approval": approval["id"], "status": params["status"]})
    return approval["id"]


# -- the poller's lookup ------------------------------------------------------------------------------------


class ApprovalLookup:
    """``lookups["approval"](token, message_ids, ref)``: the approval an incoming mail may answer, or None.

    Returns ``{"ticket", "approval", "pending", "token", "token_sha"}``; ``token`` is None when the mail
    carries no token we issued, ``"valid"`` when it works, else why not (``used``, ``expired``, ``revoked``).
    """

    def __init__(self, store: Store, clock: Any):
        self.store = store
        self.clock = clock

    def __call__(self, token: str | None, message_ids: list[str], ref: str | None = None) -> dict[str, Any] | None:
        store = self.store
        if token:
            sha = token_sha(token)
            found = store.approval_by_token(sha)
            if found is not None:
                row, approval = found
                ticket = store.ticket_by_id(approval["ticket_id"])
                now_iso = _iso(self.clock())
                status = ("used" if row["used_at"] else "revoked" if row["revoked_at"]
                          else "expired" if row["expires_at"] <= now_iso
                          else "valid" if approval["status"] == "pending" else "revoked")
                return {"ticket": dict(ticket), "approval": dict(approval), "token": status, "token_sha": sha,
                        "pending": approval["status"] == "pending"}
        ticket = store.approval_for_messages(message_ids)
        if ticket is None and ref:
            try:
                found_ticket = store.ticket(ref)
            except NotFoundError:
                found_ticket = None
            ticket = found_ticket if found_ticket is not None and store.approvals(found_ticket["id"]) else None
        if ticket is None:
            return None
        approvals = store.approvals(ticket["id"])
        pending = store.pending_approval(ticket["id"])
        approval = pending or (approvals[-1] if approvals else None)
        return {"ticket": dict(ticket), "approval": dict(approval) if approval else None, "token": None,
                "token_sha": None, "pending": pending is not None}


# -- deciding -----------------------------------------------------------------------------------------------


def _reason_for_orderer(reason: str, now: datetime) -> str:
    """The attestant's reason as the orderer may read it: withheld when it may hold personal data."""
    if not reason:
        return ""
    try:
        found = scan("", reason, today=now.date())
    except Exception:  # noqa: BLE001 - when in doubt, do not forward it
        return WITHHELD_REASON
    return WITHHELD_REASON if found else reason


def decide(engine: Engine, ticket: Mapping[str, Any], approval: Mapping[str, Any], sha: str | None, decision: str,
           reason: str, *, channel: str, actor: str, now: datetime) -> bool:
    """Record the decision and fire ``approve``/``reject`` as the approver, in the caller's transaction (or one).

    The token is spent first: False (nothing changed) when it was used, revoked or expired meanwhile."""
    store = engine.store
    now_iso = _iso(now)
    with store.transaction():
        if sha is not None and not store.use_approval_token(sha, now_iso):
            return False
        current = store.approval(approval["id"])
        if current is None or current["status"] != "pending":
            return False
        store.end_approval(approval["id"], "approved" if decision == "approve" else "rejected", now_iso,
                           decision=decision, reason=reason or None, channel=channel, decided_by=actor,
                           decided_at=now_iso, held_decision=None, held_reason=None)
        store.add_event("approval_decided", actor=actor, ticket_id=ticket["id"], at=now_iso,
                        data={"approval": approval["id"], "decision": decision, "channel": channel})
        faults.point("approval-decided")  # the decision is written, the orderer's mail not yet queued
        engine.fire(ticket["ref"], decision, actor=actor, role="approver",
                    payload={"note": _reason_for_orderer(reason, now)}, now=now)
    return True


def _reply(recorder: Any, decision: Any, message_pk: int, ticket: Mapping[str, Any], kind: str,
           now: datetime) -> None:
    """A short Swedish reply to an answer that changed nothing (rate-capped like every automatic reply)."""
    engine: Engine = recorder.engine
    routine = engine.routine(ticket)
    template = ANSWER_REPLIES[kind]
    if template not in routine.templates:
        return
    rtype = routine.request_type(ticket["request_type"]) if ticket.get("request_type") else None
    thread = Thread(message_pk, decision.message_id or "", " ".join([*decision.references,
                                                                      decision.message_id]).strip())
    engine.mailer.queue(routine=routine, kind=template, template=template, to=decision.sender,
                        ctx=context(routine, rtype, ref=ticket["ref"]), now=now, ticket=ticket, thread=thread,
                        automatic=True, rate_limit=recorder.rate_limit_per_hour,
                        rate_kinds=(*AUTO_REPLY_KINDS, *ANSWER_REPLIES.values()))


def record_answer(recorder: Any, decision: Any, message_pk: int, ticket: dict[str, Any], now: datetime) -> None:
    """The join handler ``approval``: what an answer to an approval request does (see rules.approval)."""
    engine: Engine = recorder.engine
    store = engine.store
    data = dict(decision.join_data or {})
    kind = data.get("kind")
    now_iso = _iso(now)
    approval = store.approval(data["approval_id"]) if data.get("approval_id") else None
    event = {"approval": data.get("approval_id"), "kind": kind}
    if kind == "out_of_office":
        if approval is not None:
            store.update_approval(approval["id"], {"out_of_office_at": now_iso})
        store.add_event("approval_out_of_office", ticket_id=ticket["id"], message_id=message_pk, at=now_iso, data=event)
        return
    if kind == "refused":
        code = data.get("code", "approval.no_token")
        store.add_event("approval_refused", ticket_id=ticket["id"], message_id=message_pk, at=now_iso,
                        data={**event, "code": code if code in REFUSAL_CODES else "approval.no_token"})
        return
    if kind == "change_approver":
        try:
            change_attestant(engine, ticket["ref"], data["address"], actor="requester", role="requester", now=now)
        except TicketError as exc:
            store.add_event("transition_refused", ticket_id=ticket["id"], message_id=message_pk, at=now_iso,
                            data={"event": "change_approver", "code": getattr(exc, "code", "error")})
        return
    if kind in ANSWER_REPLIES:
        store.add_event("approval_answer_unclear", ticket_id=ticket["id"], message_id=message_pk, at=now_iso,
                        data=event)
        _reply(recorder, decision, message_pk, ticket, kind, now)
        return
    if approval is None or kind not in ("approve", "reject"):
        return
    settings = _settings(engine)
    if settings.get("require_authenticated"):
        trusted = str(settings.get("authserv_id", "")).lower()
        if not trusted or trusted not in [a.lower() for a in data.get("authenticated_by", [])]:
            store.update_approval(approval["id"], {"held_decision": kind, "held_reason": data.get("reason") or None,
                                                   "held_message_id": message_pk})
            store.add_event("approval_held", ticket_id=ticket["id"], message_id=message_pk, at=now_iso, data=event)
            return
    if not decide(engine, ticket, approval, data.get("token_sha"), kind, data.get("reason", ""), channel="reply",
                  actor="attestant", now=now):
        store.add_event("approval_answer_unclear", ticket_id=ticket["id"], message_id=message_pk, at=now_iso,
                        data={**event, "kind": "closed"})
        _reply(recorder, decision, message_pk, ticket, "closed", now)


JOIN_HANDLERS["approval"] = record_answer


# -- the link, a handler's confirmation, a change of attestant --------------------------------------------


def link_state(store: Store, token: str, now: datetime) -> tuple[str, dict[str, Any] | None, dict[str, Any] | None]:
    """What a link's token stands for: (``valid``/``used``/``expired``/``revoked``/``unknown``, approval, ticket)."""
    found = ApprovalLookup(store, lambda: now)(token if token else None, [], None)
    if not found or found.get("token") is None:
        return "unknown", None, None
    return found["token"], found["approval"], found["ticket"]


def decide_by_link(engine: Engine, token: str, decision: str, reason: str, *, now: datetime | None = None) -> str:
    """A POST on the one-time link: ``ok``, or why nothing changed (``used``, ``expired``, ``revoked``,
    ``unknown``, ``self``, ``no_reason``)."""
    now = now or engine.clock()
    state, approval, ticket = link_state(engine.store, token, now)
    if state != "valid" or approval is None or ticket is None:
        return state
    if approval["attestant"] == (ticket.get("requester") or "").lower():
        return "self"
    if decision == "reject" and not reason.strip():
        return "no_reason"
    if decision not in ("approve", "reject"):
        return "unknown"
    ok = decide(engine, ticket, approval, token_sha(token), decision, reason.strip()[:500], channel="link",
                actor="attestant", now=now)
    return "ok" if ok else "used"


def confirm_held(engine: Engine, ref: str, actor: str, *, now: datetime | None = None) -> str:
    """A handler confirms an answer held for want of authentication; returns the decision applied."""
    now = now or engine.clock()
    ticket = engine.store.ticket(ref)
    approval = engine.store.pending_approval(ticket["id"])
    if approval is None or not approval.get("held_decision"):
        raise TicketError(f"{ref}: no held approval answer")
    decision = approval["held_decision"]
    if not decide(engine, ticket, approval, None, decision, approval.get("held_reason") or "", channel="reply",
                  actor=actor, now=now):
        raise TicketError(f"{ref}: the approval is no longer pending")
    return decision


def change_attestant(engine: Engine, ref: str, address: str, *, actor: str, role: str = "handler",
                     now: datetime | None = None) -> None:
    """Ask another attestant (fires ``change_approver``): the old tokens stop working, the new attestant is
    mailed, and the pack's mails tell the orderer and the previous attestant."""
    address = address.strip().lower()
    if "@" not in address or any(c in address for c in " <>,;\""):
        raise TicketError(f"{ref}: not an e-mail address")
    engine.fire(ref, "change_approver", actor=actor, role=role, payload={"approver": address}, now=now)
