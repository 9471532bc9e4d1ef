"""The decision core: one raw mail and the routines in, one :class:`Decision` out.

``decide`` is pure: it touches no network, database or clock that it is not handed (``now``,
and ``lookup`` for follow-ups). It parses the mail once, builds the :class:`~rules.checks.Facts`
the checks look at, runs the routine's check chain (``rules/checks``; the pack's ``[[chain]]`` or
the default chain) and turns the chain's result into a decision. Any exception from a parser
becomes a rejected decision with ``mail.unparseable``, never an exception out of the poll.
"""

from __future__ import annotations

import email
import email.policy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from intake.decision import Decision, message_key
from parsers.mail import MailLimits, ParsedMail, UnparseableMail, _storable, parse_mail
from rules.checks import Facts, FollowupLookup, run_chain
from rules.forms import FormJudgement, judge_form
from rules.loops import auto_reply_block
from rules.packs import RequestType, Routine
from rules.personal_data import PersonalDataConfig
from rules.reasons import Reason, reason
from rules.subject import match_subject, owns_ref

__all__ = ["FollowupLookup", "Settings", "decide", "default_routine"]


@dataclass(frozen=True)
class Settings:
    """What ``decide`` needs from the configuration."""

    from_address: str = "support@example.test"
    own_addresses: frozenset[str] = frozenset()
    allowed_domains: frozenset[str] = frozenset()
    trusted_domains: frozenset[str] = frozenset()
    max_age: timedelta | None = timedelta(days=7)
    personal_data: PersonalDataConfig = field(default_factory=PersonalDataConfig)
    mail_limits: MailLimits = field(default_factory=MailLimits)
    max_message_bytes: int = 25 * 1024 * 1024
    default_routine: str = ""  # mailbox.default_routine; "" only when one routine is served
    register_key_file: str = ""  # the access register's key file; "" when the register is off
    from_name: str = ""  # the sender identity of replies (per mailbox); stored on each queued reply
    mailbox: str = ""  # the configured mailbox the mail came in through
    # The [approvals] section (read by intake.approvals).
    approvals: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False)

    @classmethod
    def from_config(cls, config: Any) -> Settings:
        replies, pd = config["replies"], config["personal_data"]
        own = {a.lower() for a in replies["own_addresses"]} | {replies["from_address"].lower()}
        return cls(
            from_address=replies["from_address"],
            own_addresses=frozenset(own),
            allowed_domains=frozenset(d.lower().lstrip("@") for d in config["senders"]["allowed_domains"]),
            trusted_domains=frozenset(d.lower().lstrip("@") for d in config["senders"]["trusted_domains"]),
            max_age=timedelta(days=replies["max_age_days"]) if replies["max_age_days"] else None,
            personal_data=PersonalDataConfig.from_mapping(pd),
            max_message_bytes=config["mailbox"]["max_message_bytes"],
            default_routine=config["mailbox"]["default_routine"],
            register_key_file=str(config.path("register", "key_file")) if config["register"]["enabled"] else "",
            approvals=dict(config["approvals"]),
        )


#: How much of a refused mail's header block we read to find whom (and whether) to answer.
HEADER_READ_LIMIT = 256 * 1024


def _header_block(raw: bytes) -> bytes | None:
    """The header block of ``raw``, or ``None`` when it is longer than we read (then we never answer)."""
    end = raw.find(b"\r\n\r\n")  # found and sliced, not split: the body is never copied
    head = raw[:end] if end >= 0 else raw
    end = head.find(b"\n\n")
    head = head[:end] if end >= 0 else head
    return head if len(head) <= HEADER_READ_LIMIT else None


def default_routine(routines: Sequence[Routine], name: str | None) -> Routine:
    """The routine named ``name`` among ``routines``; with no name, the only routine there is.

    With several routines and no name this is an error, never a silent "the first one": which routine
    answers mail whose subject fits none is configuration (``mailbox.default_routine``).
    """
    if not routines:
        raise ValueError("decide needs at least one routine")
    if not name:
        if len(routines) > 1:
            raise ValueError("several routines are served: name the default one (mailbox.default_routine)")
        return routines[0]
    for routine in routines:
        if routine.id == name:
            return routine
    raise ValueError(f"default routine {name!r} is not among the routines served")


def decide(
    raw: bytes,
    routines: Sequence[Routine],
    *,
    default: str | None = None,
    settings: Settings | None = None,
    now: datetime | None = None,
    received: datetime | None = None,
    lookup: FollowupLookup | None = None,
    size: int | None = None,
    lookups: Mapping[str, Callable[..., Any]] | None = None,
) -> Decision:
    """Judge one raw mail against ``routines``. Never raises for any input bytes.

    ``default`` names the routine that answers mail whose subject fits none (else
    ``settings.default_routine``; it may be left out only when one routine is served). ``size`` is
    the mail's real size when ``raw`` is only its header (mail over the size cap). ``lookups`` are
    further read-only lookups the shell offers the checks, by name.
    """
    settings = settings or Settings()
    fallback = default_routine(routines, default or settings.default_routine)
    try:
        if max(len(raw), size or 0) > settings.max_message_bytes:
            return _too_large(raw, max(len(raw), size or 0), fallback, settings, routines)
        mail = parse_mail(raw, settings.mail_limits)
    except UnparseableMail as exc:
        return _unparseable(raw, fallback, settings, str(exc), routines)
    except Exception as exc:  # noqa: BLE001 - a parser bug must not stop the poll
        return _unparseable(raw, fallback, settings, f"parser error: {type(exc).__name__}", routines)
    try:
        return _judge(raw, mail, tuple(routines), fallback, settings, now, received, lookup, lookups or {})
    except Exception as exc:  # noqa: BLE001 - same: record it, answer it, go on
        return _unparseable(raw, fallback, settings, f"rule error: {type(exc).__name__}", routines)


def _judge(
    raw: bytes,
    mail: ParsedMail,
    routines: tuple[Routine, ...],
    fallback: Routine,
    settings: Settings,
    now: datetime | None,
    received: datetime | None,
    lookup: FollowupLookup | None,
    lookups: Mapping[str, Callable[..., Any]],
) -> Decision:
    routine, rtype, match = _match(mail.subject, routines)
    facts = Facts(
        raw=raw, mail=mail, routines=routines, default=fallback, routine=routine, request_type=rtype,
        match=match, now=now or datetime.now(), own_addresses=settings.own_addresses,
        allowed_domains=settings.allowed_domains, trusted_domains=settings.trusted_domains,
        personal_data=settings.personal_data, followup_lookup=lookup, lookups=lookups,
        form_judge=(lambda: _judge_form(mail, routine, rtype, now)) if routine and rtype else None,
    )
    served = facts.served_routine
    if routine is None and match is not None and match.ticket_ref:
        # A reply naming one of our tickets (an attestant's answer) is judged by that ticket's routine's chain.
        served = next((r for r in routines if owns_ref(r, match.ticket_ref)), served)
    result = run_chain(served.chain, facts, served.reason_overrides)
    base = Decision(
        verdict=result.verdict,
        message_key=message_key(mail.message_id, raw),
        message_id=mail.message_id,
        sender=mail.sender,
        subject=mail.subject,
        sent_at=mail.date if isinstance(mail.date, datetime) else None,
        in_reply_to=mail.in_reply_to,
        references=tuple(mail.references),
        reasons=result.reasons,
        findings=facts.findings_seen,
        trail=tuple(result.trail),
    )
    if result.ignored is not None:
        return replace(base, bounce_of=tuple(result.ignored.data or ()))
    if not mail.sender:
        # Nobody to answer and nobody to open a ticket for: recorded under no routine, never accepted
        # (even by a pack whose chain leaves out the sender_missing check).
        if base.verdict != "rejected":
            base = replace(base, verdict="rejected", reasons=(reason("sender.missing"),))
        return base
    if result.joined is not None:
        target = result.joined  # a follow-up to one of our tickets joins it instead of opening a new one
        return replace(base, routine=target["routine"], request_type=target.get("request_type"),
                       queue=target.get("queue"), ticket_ref=target["ref"], join_data=target.get("join_data"))

    judged = facts.form_judged
    rejected = base.verdict == "rejected"
    decision = replace(
        base,
        routine=routine.id if routine else None,
        request_type=rtype.id if rtype else None,
        queue=rtype.queue if rtype else None,
        form=judged.form if judged else None,
        form_attachment=judged.attachment if judged and not rejected else None,
        personal_data=any(r.code.endswith(".personal_data") for r in result.rejections),
        # An uncertain finding beside a rejection is not dropped: the mail keeps no raw text (issue 10).
        unsure_personal_data=tuple(r for r in result.held if r.code.endswith(".possible_personal_data"))
        if rejected else (),
        reply_routine=served.id,
        offered=routines if rtype is None else (),
    )
    return _with_reply(decision, served, rtype, now, received, settings)


def _match(subject: str, routines: Sequence[Routine]) -> tuple[Routine | None, RequestType | None, Any]:
    first = None
    for routine in routines:
        match = match_subject(subject, routine.conventions())
        first = first or match
        if match.request_type is not None:
            return routine, routine.request_type(match.request_type), match
    return None, None, first


def _judge_form(mail: ParsedMail, routine: Routine, rtype: RequestType, now: datetime | None) -> FormJudgement:
    return judge_form(mail.attachments, routine.form_schema, form_kinds=list(rtype.form_kinds),
                      request_type_label=rtype.label, today=(now or datetime.now()).date())


def _with_reply(
    decision: Decision,
    routine: Routine,
    rtype: RequestType | None,
    now: datetime | None,
    received: datetime | None,
    settings: Settings,
) -> Decision:
    from intake.mailer import reply_plan

    if decision.verdict not in ("accepted", "rejected"):
        return decision
    reply = reply_plan("ack" if decision.verdict == "accepted" else "rejection", routine, rtype, decision)
    if received is not None and settings.max_age is not None and now is not None:
        if now - received > settings.max_age:
            return replace(decision, reply=None, reply_suppressed="mail.old")
    return replace(decision, reply=reply)


def _unparseable(raw: bytes, routine: Routine, settings: Settings, detail: str,
                 served: Sequence[Routine] = ()) -> Decision:
    why = reason("mail.unparseable", detail=detail, overrides=routine.reason_overrides)
    return _from_headers(raw, why, routine, settings, served)


def _too_large(raw: bytes, size: int, routine: Routine, settings: Settings, served: Sequence[Routine] = ()) -> Decision:
    limit = settings.max_message_bytes
    why = reason("mail.too_large", detail=f"{size} bytes > {limit}", overrides=routine.reason_overrides,
                 size_mb=f"{size / 1e6:.1f}", limit_mb=f"{limit / 1e6:.0f}")
    return _from_headers(raw, why, routine, settings, served)


def _from_headers(raw: bytes, why: Reason, routine: Routine, settings: Settings,
                  served: Sequence[Routine] = ()) -> Decision:
    """A rejection of mail we could not read, judged from its header block alone.

    It is answered only when the whole header block was read and shows no auto-reply, list or bounce.
    """
    from intake.mailer import reply_plan

    head = _header_block(raw)
    sender = mid = ""
    block = None
    try:
        msg = email.message_from_bytes(head if head is not None else raw[:65536], policy=email.policy.default)
        if msg["From"] is not None and msg["From"].addresses:
            sender = _storable(msg["From"].addresses[0].addr_spec.lower())
        mid = _storable(str(msg["Message-ID"] or "").strip())
        headers: dict[str, list[str]] = {}
        for k, v in msg.items():
            headers.setdefault(k.lower(), []).append(str(v))
        block = auto_reply_block(headers, sender, msg.get_content_type(), settings.own_addresses)
        readable = head is not None
    except Exception:  # noqa: BLE001 - a header we cannot read: record it, and when in doubt, do not answer
        readable = False
    decision = Decision(verdict="rejected", message_key=message_key(mid, raw), message_id=mid, sender=sender,
                        reasons=(why,), reply_routine=routine.id, offered=tuple(served))
    if block is not None:
        return replace(decision, verdict="ignored", reasons=(why, block))
    if not sender or not readable:
        # Without the whole header block we cannot know it is not an auto-reply: stay silent.
        return decision
    return replace(decision, reply=reply_plan("rejection", routine, None, decision))
