"""Reading a stored mail for staff: its text (the HTML part only ever as text), its headers and its
attachments. Pure functions over the stored bytes; auditing the look is the caller's job
(:meth:`intake.desk.TicketDesk.read_message`)."""

from __future__ import annotations

import email
import email.policy
from dataclasses import dataclass, field

from parsers.mail import Attachment, UnparseableMail, parse_mail


@dataclass(frozen=True)
class MailView:
    """What a handler sees of one mail. ``text`` is never HTML: an HTML-only mail is converted to text."""

    sender: str
    to: list[str]
    subject: str
    date: str
    text: str
    from_html: bool
    attachments: list[Attachment] = field(default_factory=list)
    readable: bool = True


def view_mail(raw: bytes | None, *, sender: str = "", subject: str = "") -> MailView:
    """The mail ``raw`` as a handler reads it; an empty, unreadable view when the bytes are gone or broken."""
    if raw is None:
        return MailView(sender, [], subject, "", "", False, [], readable=False)
    try:
        parsed = parse_mail(raw)
    except UnparseableMail:
        return MailView(sender, [], subject, "", "", False, [], readable=False)
    text = parsed.body_text if parsed.body_text.strip() else parsed.html_text
    from_html = not parsed.body_text.strip() and bool(parsed.html_text) or not _has_plain_part(raw)
    date = parsed.date.isoformat() if parsed.date is not None else ""
    return MailView(parsed.sender or sender, parsed.to, parsed.subject or subject, date, text, from_html,
                    list(parsed.attachments))


def _has_plain_part(raw: bytes) -> bool:
    """Whether the mail has a text/plain body (else what the handler reads was converted from HTML)."""
    try:
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        return msg.get_body(preferencelist=("plain",)) is not None or msg.get_body(("html",)) is None
    except Exception:  # noqa: BLE001 - a damaged mail: say nothing about where its text came from
        return True
