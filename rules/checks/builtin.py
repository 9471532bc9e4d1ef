"""The built-in checks. Each is a few lines that look at :class:`Facts` and return hits.

The default chain (:data:`rules.checks.chain.DEFAULT_CHAIN`) runs them in the order of this file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from rules.checks.base import Hit, Param, register
from rules.checks.facts import Facts
from rules.loops import auto_reply_block
from rules.personal_data import describe
from rules.reasons import reason

_MESSAGE_ID = re.compile(rb"<[^<>\s@]{1,250}@[^<>\s@]{1,250}>")


def named_message_ids(raw: bytes, limit: int = 50) -> tuple[str, ...]:
    """Message-IDs anywhere in a bounce (its returned headers name the mail that failed)."""
    seen: dict[str, None] = {}
    for m in _MESSAGE_ID.finditer(raw[: 1024 * 1024]):
        seen.setdefault(m.group().decode("ascii", "replace"), None)
        if len(seen) >= limit:
            break
    return tuple(seen)


@register(
    "auto_reply",
    "Auto-replies, bounces, mailing-list mail and our own mail, which must never be answered.",
    actions=("ignore", "hold"),  # answering one of these could start a mail loop
)
def auto_reply(facts: Facts, params: Mapping[str, Any]) -> list[Hit]:
    mail = facts.mail
    block = auto_reply_block(
        mail.headers, mail.sender, mail.content_type, facts.own_addresses,
        return_path=(mail.headers.get("return-path") or [None])[0],
    )
    if block is None:
        return []
    # A bounce names the mail that failed: the shell matches it to the reply it answers.
    return [Hit(block, data=named_message_ids(facts.raw) if block.code == "mail.bounce" else ())]


@register("sender_missing", "The mail has no usable From address (it is never answered).")
def sender_missing(facts: Facts, params: Mapping[str, Any]) -> list[Hit]:
    return [] if facts.mail.sender else [Hit(reason("sender.missing"))]


def _finding_detail(findings: list[Any]) -> str:
    # Categories and places only: the value never leaves the mail.
    return ", ".join(f"{f.category}@{'subject' if f.line is None else 'line ' + str(f.line)}" for f in findings)


@register(
    "personal_data",
    "Personal data in the subject or body text: a clear finding hits, an uncertain one is held for a handler.",
    params=(
        Param("reject_threshold", float, "score from which a finding is clear (default: "
              "personal_data.reject_threshold)", between=(0.0, 1.0)),
        Param("hold_threshold", float, "score from which a finding is uncertain (default: "
              "personal_data.hold_threshold)", between=(0.0, 1.0)),
    ),
)
def personal_data(facts: Facts, params: Mapping[str, Any]) -> list[Hit]:
    config = facts.personal_data
    if params:
        config = replace(config, **{k: float(v) for k, v in params.items()})
    findings = facts.findings(config)
    hits = []
    for location in ("subject", "body"):
        clear = [f for f in findings if f.location == location and f.score >= config.reject_threshold]
        unsure = [f for f in findings
                  if f.location == location and config.hold_threshold <= f.score < config.reject_threshold]
        if clear:
            hits.append(Hit(reason(f"{location}.personal_data", detail=_finding_detail(clear), what=describe(clear))))
        elif unsure:
            hits.append(Hit(reason(f"{location}.possible_personal_data", detail=_finding_detail(unsure),
                                   what=describe(unsure)), uncertain=True))
    return hits


@register(
    "followup",
    "A reply to one of our tickets, from its requester or a trusted domain (senders.trusted_domains).",
    params=(Param("trusted_domains", list, "domains whose staff may follow up any ticket "
                  "(default: senders.trusted_domains)"),),
    actions=("join",),
)
def followup(facts: Facts, params: Mapping[str, Any]) -> list[Hit]:
    target = facts.followup_target()
    if target is None:
        return []
    trusted = {d.lower().lstrip("@") for d in params["trusted_domains"]} if "trusted_domains" in params \
        else facts.trusted_domains
    if facts.sender == (target.get("requester") or "").lower() or facts.sender_domain in trusted:
        return [Hit(None, data=target)]
    return []


@register(
    "sender_domain",
    "The sender's domain is not on the list of domains that may send to this mailbox.",
    params=(Param("domains", list, "the domains that may send (default: senders.allowed_domains; "
                  "an empty list lets every domain through)"),),
)
def sender_domain(facts: Facts, params: Mapping[str, Any]) -> list[Hit]:
    allowed = {d.lower().lstrip("@") for d in params["domains"]} if "domains" in params else facts.allowed_domains
    if allowed and facts.sender_domain not in allowed:
        where = "the check's domains" if "domains" in params else "senders.allowed_domains"
        return [Hit(reason("sender.not_allowed", detail=f"domain not in {where}"))]
    return []


@register(
    "subject",
    "The subject names none of the request types of the routines this mailbox serves (or is empty).",
    lead=True,  # the sender must fix the subject first: its reason leads the answer
)
def subject(facts: Facts, params: Mapping[str, Any]) -> list[Hit]:
    if facts.request_type is not None:
        return []
    return [Hit(reason("subject.missing" if not facts.mail.subject.strip() else "subject.unknown"))]


@register(
    "form",
    "The form the request type needs is missing, unreadable, of the wrong kind or wrongly filled in.",
)
def form(facts: Facts, params: Mapping[str, Any]) -> list[Hit]:
    judgement = facts.form()
    if judgement is None:
        return []
    return [Hit(r) for r in judgement.reasons]
