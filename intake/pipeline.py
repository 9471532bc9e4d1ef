"""The decision core: one raw mail and the routines in, one :class:`Decision` out.

``decide`` is pure: it touches no network, database or clock that it is not handed (``now``,
and ``lookup`` for follow-ups). Rules only record hits; :func:`intake.decision.verdict_of`
takes the verdict in one place. Any exception from a parser becomes a rejected decision with
``mail.unparseable``, never an exception out of the poll.
"""

from __future__ import annotations

import email
import email.policy
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from intake.decision import Decision, Hits, message_key, verdict_of
from parsers.mail import MailLimits, ParsedMail, UnparseableMail, _storable, parse_mail
from rules.loops import auto_reply_block
from rules.packs import RequestType, Routine
from rules.personal_data import PersonalDataConfig, describe, scan
from rules.reasons import Reason, reason
from rules.subject import match_subject

#: lookup(ticket_ref, in_reply_to_ids) -> {"ref", "requester", "routine", "request_type", "queue"} or None
FollowupLookup = Callable[[str | None, list[str]], dict[str, Any] | None]


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
    from_name: str = ""  # the sender identity of replies (per mailbox); stored on each queued reply
    mailbox: str = ""  # the configured mailbox the mail came in through

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
        )


#: How much of a refused mail's header block we read to find whom (and whether) to answer.
HEADER_READ_LIMIT = 256 * 1024


def _header_block(raw: bytes) -> bytes | None:
    """The header block of ``raw``, or ``None`` when it is longer than we read (then we never answer)."""
    head = raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    return head if len(head) <= HEADER_READ_LIMIT else None


def decide(
    raw: bytes,
    routines: list[Routine],
    *,
    settings: Settings | None = None,
    now: datetime | None = None,
    received: datetime | None = None,
    lookup: FollowupLookup | None = None,
    size: int | None = None,
) -> Decision:
    """Judge one raw mail against ``routines``. Never raises for any input bytes.

    ``size`` is the mail's real size when ``raw`` is only its header (mail over the size cap).
    """
    settings = settings or Settings()
    if not routines:
        raise ValueError("decide needs at least one routine")
    try:
        if max(len(raw), size or 0) > settings.max_message_bytes:
            return _too_large(raw, max(len(raw), size or 0), routines[0], settings)
        mail = parse_mail(raw, settings.mail_limits)
    except UnparseableMail as exc:
        return _unparseable(raw, routines[0], settings, str(exc))
    except Exception as exc:  # noqa: BLE001 - a parser bug must not stop the poll
        return _unparseable(raw, routines[0], settings, f"parser error: {type(exc).__name__}")
    try:
        return _judge(raw, mail, routines, settings, now, received, lookup)
    except Exception as exc:  # noqa: BLE001 - same: record it, answer it, go on
        return _unparseable(raw, routines[0], settings, f"rule error: {type(exc).__name__}")


def _judge(
    raw: bytes,
    mail: ParsedMail,
    routines: list[Routine],
    settings: Settings,
    now: datetime | None,
    received: datetime | None,
    lookup: FollowupLookup | None,
) -> Decision:
    base = Decision(
        verdict="accepted",
        message_key=message_key(mail.message_id, raw),
        message_id=mail.message_id,
        sender=mail.sender,
        subject=mail.subject,
        sent_at=mail.date if isinstance(mail.date, datetime) else None,
        in_reply_to=mail.in_reply_to,
        references=tuple(mail.references),
    )
    hits = Hits()

    # 1. Mail that must never be answered: auto-replies, bounces, lists, our own.
    block = auto_reply_block(
        mail.headers, mail.sender, mail.content_type, settings.own_addresses,
        return_path=(mail.headers.get("return-path") or [None])[0],
    )
    if block is not None:
        bounce_of = _named_message_ids(raw) if block.code == "mail.bounce" else ()
        return replace(base, verdict="ignored", reasons=(block,), bounce_of=bounce_of)

    # 2. Which routine and request type the subject names (or a ticket it follows up).
    routine, rtype, match = _match(mail.subject, routines)
    if not mail.sender:
        return replace(base, verdict="rejected", reasons=(reason("sender.missing"),))
    policy = (routine or routines[0]).reason_overrides

    # 3. Personal data in the subject or body: clear findings reject, uncertain ones hold.
    findings = scan(
        mail.subject, mail.body_text, sender_name=mail.sender_name, sender_address=mail.sender,
        today=(now or datetime.now()).date(), config=settings.personal_data,
    )
    if mail.html_text:
        # What an Outlook reader sees is the HTML part: a finding only there counts as well.
        seen = {f.category for f in findings if f.location == "body"}
        html_findings = scan("", mail.html_text, sender_name=mail.sender_name, sender_address=mail.sender,
                             today=(now or datetime.now()).date(), config=settings.personal_data)
        findings += [f for f in html_findings if f.location == "body" and f.category not in seen]
    base = replace(base, findings=tuple(findings))
    pd = settings.personal_data
    for location, code in (("subject", "subject.personal_data"), ("body", "body.personal_data")):
        clear = [f for f in findings if f.location == location and f.score >= pd.reject_threshold]
        unsure = [
            f for f in findings if f.location == location and pd.hold_threshold <= f.score < pd.reject_threshold
        ]
        if clear:
            hits.rejections.append(
                reason(code, detail=_finding_detail(clear), overrides=policy, what=describe(clear))
            )
        elif unsure:
            hits.held.append(
                reason(f"{location}.possible_personal_data", detail=_finding_detail(unsure), what=describe(unsure))
            )

    # 4. A follow-up to one of our tickets joins that ticket instead of opening a new one.
    followup = _followup(mail, match, lookup, settings)
    if followup is not None and not hits.rejections:
        return replace(
            base,
            verdict=verdict_of([], bool(hits.held), False),
            routine=followup["routine"],
            request_type=followup.get("request_type"),
            queue=followup.get("queue"),
            reasons=tuple(hits.held),
            ticket_ref=followup["ref"],
        )

    # 5. Sender policy.
    if settings.allowed_domains and mail.sender.rsplit("@", 1)[-1] not in settings.allowed_domains:
        hits.rejections.append(
            reason("sender.not_allowed", overrides=policy, detail="domain not in senders.allowed_domains")
        )

    # 6. Subject convention.
    if rtype is None:
        code = "subject.missing" if not mail.subject.strip() else "subject.unknown"
        hits.rejections.insert(0, reason(code, overrides=policy))

    # 7. The form, for request types that need one.
    form = form_attachment = None
    if routine is not None and rtype is not None and rtype.needs_form:
        form, form_attachment, form_reasons = _check_form(mail, routine, rtype, now)
        hits.rejections.extend(form_reasons)

    verdict = verdict_of(hits.rejections, bool(hits.held), False)
    decision = replace(
        base,
        verdict=verdict,
        routine=(routine or routines[0]).id if verdict != "rejected" or routine else None,
        request_type=rtype.id if rtype else None,
        queue=rtype.queue if rtype else None,
        reasons=tuple(hits.rejections or hits.held),
        form=form,
        form_attachment=form_attachment if verdict != "rejected" else None,
        personal_data=any(r.code.endswith(".personal_data") for r in hits.rejections),
    )
    return _with_reply(decision, routine or routines[0], rtype, now, received, settings)


_MESSAGE_ID = re.compile(rb"<[^<>\s@]{1,250}@[^<>\s@]{1,250}>")


def _named_message_ids(raw: bytes, limit: int = 50) -> tuple[str, ...]:
    """Message-IDs anywhere in a bounce (its returned headers name the mail that failed)."""
    seen: dict[str, None] = {}
    for m in _MESSAGE_ID.finditer(raw[: 1024 * 1024]):
        seen.setdefault(m.group().decode("ascii", "replace"), None)
        if len(seen) >= limit:
            break
    return tuple(seen)


def _match(subject: str, routines: list[Routine]) -> tuple[Routine | None, RequestType | None, Any]:
    first = None
    for routine in routines:
        match = match_subject(subject, routine.conventions())
        first = first or match
        if match.request_type is not None:
            return routine, routine.request_type(match.request_type), match
    return None, None, first


def _finding_detail(findings: list[Any]) -> str:
    # Categories and places only: the value never leaves the mail.
    parts = [f"{f.category}@{'subject' if f.line is None else 'line ' + str(f.line)}" for f in findings]
    return ", ".join(parts)


def _followup(
    mail: ParsedMail, match: Any, lookup: FollowupLookup | None, settings: Settings
) -> dict[str, Any] | None:
    if lookup is None:
        return None
    ids = [i for i in [mail.in_reply_to, *mail.references] if i]
    ref = match.ticket_ref if match else None
    if not ref and not ids:
        return None
    target = lookup(ref, ids)
    if target is None:
        return None
    domain = mail.sender.rsplit("@", 1)[-1]
    if mail.sender == (target.get("requester") or "").lower() or domain in settings.trusted_domains:
        return target
    return None


def _check_form(
    mail: ParsedMail, routine: Routine, rtype: RequestType, now: datetime | None
) -> tuple[Any, Any, list[Reason]]:
    from parsers.forms import extract_form
    from rules.forms import validate_form

    outcome = extract_form(mail.attachments, routine.form_schema)
    if outcome.form is None:
        return None, outcome.attachment, list(outcome.reasons)
    problems = validate_form(
        outcome.form, routine.form_schema, form_kinds=list(rtype.form_kinds),
        request_type_label=rtype.label, today=(now or datetime.now()).date(),
    )
    return outcome.form, outcome.attachment, list(outcome.reasons) + list(problems)


def _with_reply(
    decision: Decision,
    routine: Routine,
    rtype: RequestType | None,
    now: datetime | None,
    received: datetime | None,
    settings: Settings,
) -> Decision:
    from intake.replies import render_reply

    if decision.verdict not in ("accepted", "rejected"):
        return decision
    if decision.verdict == "accepted":
        reply = render_reply("ack", routine, rtype, decision, ref=None, settings=settings)
    else:
        reply = render_reply("rejection", routine, rtype, decision, ref=None, settings=settings)
    if received is not None and settings.max_age is not None and now is not None:
        if now - received > settings.max_age:
            return replace(decision, reply=None, reply_suppressed="mail.old")
    return replace(decision, reply=reply)


def _unparseable(raw: bytes, routine: Routine, settings: Settings, detail: str) -> Decision:
    why = reason("mail.unparseable", detail=detail, overrides=routine.reason_overrides)
    return _from_headers(raw, why, routine, settings)


def _too_large(raw: bytes, size: int, routine: Routine, settings: Settings) -> Decision:
    limit = settings.max_message_bytes
    why = reason("mail.too_large", detail=f"{size} bytes > {limit}", overrides=routine.reason_overrides,
                 size_mb=f"{size / 1e6:.1f}", limit_mb=f"{limit / 1e6:.0f}")
    return _from_headers(raw, why, routine, settings)


def _from_headers(raw: bytes, why: Reason, routine: Routine, settings: Settings) -> Decision:
    """A rejection of mail we could not read, judged from its header block alone.

    It is answered only when the whole header block was read and shows no auto-reply, list or bounce.
    """
    from intake.replies import render_reply

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
                        reasons=(why,))
    if block is not None:
        return replace(decision, verdict="ignored", reasons=(why, block))
    if not sender or not readable:
        # Without the whole header block we cannot know it is not an auto-reply: stay silent.
        return decision
    return replace(decision, reply=render_reply("rejection", routine, None, decision, ref=None, settings=settings))
