"""Approval by an attestant, the pure half: reading an answer, and the check and effects packs name.

A routine whose orders need someone else's approval (MINISTOP, vårdmedarbetaruppdrag) declares it as
pack data: an ``approval_request`` effect where the ticket starts waiting for attest, mails to the
``approver``, and ``approve``/``reject`` transitions fired by the ``approver`` role. Incoming answers
are recognised by the ``approval_answer`` check (first in the routine's chain): it looks the
approval up through ``facts.lookups["approval"]`` (handed in by the poller; the check stays pure)
and says what the mail is. The shell (:mod:`intake.approvals`) records it and fires the step.

Who may decide: the answer must carry the approval's secret token (the ``[ATTEST-…]`` tag of the
subject our mail had, or the one-time link), come from the attestant's address, and the attestant
must not be the orderer. Everything else changes nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rules.checks.base import Hit, register
from rules.lifecycle import EffectSpec, PackContext, register_effect
from rules.loops import auto_reply_block

#: The subject tag that carries an approval token in our request mail and in the attestant's reply.
TOKEN_TAG = re.compile(r"\[ATTEST-([0-9a-f]{16,64})\]", re.IGNORECASE)
_APPROVE = re.compile(r"^\s*[*_\"'>]*\s*(godk[äa]nn?[tsd]?|ja|approve[d]?)\b[\s.!:;,*_\"']*$", re.IGNORECASE)
_REJECT = re.compile(r"^\s*[*_\"'>]*\s*(avsl[åa](r|s)?|avslag|nej|reject(ed)?)\b[\s.!:;,\-–—*_\"']*(?P<reason>.*)$",
                     re.IGNORECASE)
_CHANGE = re.compile(r"^\s*byt\s+attestant\s*[:\-–]?\s*<?(?P<address>[^\s<>@,;]+@[^\s<>@,;]+?)>?\s*[.]?\s*$",
                     re.IGNORECASE)

#: Kinds of answer the check reports (``data["join_data"]["kind"]``), documented in the README.
ANSWER_KINDS = ("approve", "reject", "no_reason", "unclear", "closed", "refused", "out_of_office",
                "change_approver")
#: Why an answer was refused (stable codes, recorded in ``approval_refused`` events).
REFUSAL_CODES = {
    "approval.no_token": "the answer carries no valid approval token",
    "approval.wrong_sender": "the token came from another address than the attestant's",
    "approval.self": "the attestant is the orderer: an order cannot be approved by the one who placed it",
}


@dataclass(frozen=True)
class Answer:
    """What the first line of an attestant's answer says."""

    kind: str  # "approve", "reject", "no_reason" or "unclear"
    reason: str = ""


def first_line(body: str) -> str:
    """The first non-empty line of a mail body (what the attestant typed above the quoted mail)."""
    for line in (body or "").splitlines():
        if line.strip():
            return line.strip()
    return ""


def read_answer(body: str) -> Answer:
    """Read ``Godkänn`` or ``Avslå <reason>`` on the first line of ``body``."""
    line = first_line(body)
    if _APPROVE.match(line):
        return Answer("approve")
    found = _REJECT.match(line)
    if found:
        why = found.group("reason").strip()
        return Answer("reject", why[:500]) if why else Answer("no_reason")
    return Answer("unclear")


def change_request(body: str) -> str | None:
    """The new attestant's address in ``Byt attestant: ny.adress@…`` on the first line, or None."""
    found = _CHANGE.match(first_line(body))
    return found.group("address").lower() if found else None


def token_in(subject: str) -> str | None:
    found = TOKEN_TAG.search(subject or "")
    return found.group(1).lower() if found else None


def authenticated_by(headers: Mapping[str, list[str]], sender: str) -> list[str]:
    """The authserv-ids of ``Authentication-Results`` headers (RFC 8601) that report ``dmarc=pass``, or
    ``dkim=pass`` with ``header.d`` equal to the sender's domain (aligned). The shell decides which to trust."""
    domain = sender.rsplit("@", 1)[-1].lower()
    found = []
    for value in headers.get("authentication-results", []):
        text = " ".join(str(value).split())
        authserv = text.split(";", 1)[0].strip().split(" ", 1)[0].lower()
        parts = [p.strip().lower() for p in text.split(";")[1:]]
        ok = any(p.startswith("dmarc=pass") for p in parts)
        for p in parts:
            if p.startswith("dkim=pass"):
                d = re.search(r"header\.d=([a-z0-9.-]+)", p)
                if d and d.group(1) == domain:
                    ok = True
        if ok and authserv:
            found.append(authserv)
    return found


@register(
    "approval_answer",
    "An answer to an approval request (Godkänn / Avslå, an out-of-office, a change of attestant), found by the "
    "approval's token or by the request mail it answers; joins the ticket instead of opening one.",
    actions=("join",),
)
def approval_answer(facts: Any, params: Mapping[str, Any]) -> list[Hit]:
    lookup = facts.lookups.get("approval")
    if lookup is None:
        return []
    mail = facts.mail
    token = token_in(mail.subject)
    ids = [i for i in [mail.in_reply_to, *mail.references] if i]
    ref = facts.match.ticket_ref if facts.match else None
    found = lookup(token, ids, ref)
    if not found:
        return []
    ticket, approval = found["ticket"], found.get("approval") or {}
    sender = facts.sender
    attestant = (approval.get("attestant") or "").lower()
    orderer = (ticket.get("requester") or "").lower()
    block = auto_reply_block(mail.headers, sender, mail.content_type, facts.own_addresses)

    def hit(kind: str, **data: Any) -> list[Hit]:
        return [Hit(None, data={**ticket, "join_data": {"handler": "approval", "kind": kind,
                                                        "approval_id": approval.get("id"), **data}})]

    if block is not None:
        # An out-of-office from the attestant is never answered, but it is linked to the ticket.
        return hit("out_of_office") if attestant and sender == attestant else []
    new_address = change_request(mail.body_text)
    if new_address and sender == orderer and found.get("pending"):
        return hit("change_approver", address=new_address)
    if not token:
        if attestant and sender == attestant and found.get("pending") and read_answer(mail.body_text).kind != "unclear":
            return hit("refused", code="approval.no_token")
        return []  # not an answer: the chain goes on (a follow-up from the orderer joins as usual)
    if found.get("token") is None:
        return hit("refused", code="approval.no_token") if sender == attestant else []
    if not attestant or sender != attestant:
        return hit("refused", code="approval.wrong_sender")
    if attestant == orderer:
        return hit("refused", code="approval.self")
    if found["token"] != "valid":
        return hit("closed", token=found["token"])
    answer = read_answer(mail.body_text)
    return hit(answer.kind, reason=answer.reason, token_sha=found.get("token_sha"),
               authenticated_by=authenticated_by(mail.headers, sender))


# -- effects (carried out by intake.approvals) ---------------------------------------------------------


def _request_check(params: Mapping[str, Any], ctx: PackContext) -> str | None:
    party = params.get("party", "attestant")
    if not ctx.form_parties or party not in ctx.form_parties:
        return f"party: the form declares no party {party!r}"
    for field_id in params.get("show", []):
        if not isinstance(field_id, str) or ctx.form_fields is None or field_id not in ctx.form_fields:
            return f"show: no form field {field_id!r}"
    for column in params.get("show_columns", []):
        if not isinstance(column, str) or not re.match(r"^[a-z][a-z0-9_]*$", column):
            return f"show_columns: {column!r} is not a column id"
    return None


register_effect(EffectSpec(
    "approval_request",
    "ask the attestant (a form party) for approval: a new single-use token, the ticket's approver set, and "
    "the token, link and a summary free of personal data given to the mails after it",
    required={},
    optional={"party": str, "orderer_party": str, "show": list, "show_columns": list, "reminder": bool},
    check=_request_check,
))


def _end_check(params: Mapping[str, Any], ctx: PackContext) -> str | None:
    if params["status"] not in ("expired", "cancelled"):
        return "status: one of expired, cancelled"
    return None


register_effect(EffectSpec(
    "approval_end", "end the pending approval without a decision (expired, cancelled): its tokens stop working",
    required={"status": str}, check=_end_check,
))
