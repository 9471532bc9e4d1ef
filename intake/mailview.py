"""Reading a stored mail for staff: its text (the HTML part only ever as text), its headers and its
attachments. Pure functions over the stored bytes; auditing the look is the caller's job
(:meth:`intake.desk.TicketDesk.read_message`)."""

from __future__ import annotations

import email
import email.policy
import re
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


# -- held mail: where the guard found something, masked ----------------------------------------------

_MASK = re.compile(
    r"(?P<hsa>(?i:\bSE\d{10})-\w+)"
    r"|(?<!\d)(?P<id>\d{6}|\d{8})(?P<sep>[-+ ]?)\d{4}(?!\d)"
    r"|(?<!\d)(?P<year>\d{4})(?P<dsep>[-./])\d{1,2}(?P=dsep)\d{1,2}(?!\d)"
    r"|(?P<digits>\d{5,})"
)
_CAPITALISED = re.compile(r"\b([A-ZÅÄÖÉÜ])([a-zåäöéüß]+(?:-[A-ZÅÄÖ][a-zåäöéü]+)?)")
EXCERPT_CHARS = 120


def mask_line(line: str, category: str) -> str:
    """``line`` with what the guard looks for masked: the last four digits of an identity number
    (``19121212-****``), the day and month of a date, the suffix of an HSA-id, and every capitalised word
    but its first letter (unless it starts a sentence). The other words
    stay, so a handler can judge them."""
    def number(m: re.Match[str]) -> str:
        if m.group("hsa"):
            head, _, tail = m.group("hsa").partition("-")
            return f"{head}-" + "*" * len(tail)
        if m.group("id"):
            return f"{m.group('id')}{m.group('sep')}****"
        if m.group("year"):
            return f"{m.group('year')}{m.group('dsep')}**{m.group('dsep')}**"
        return m.group()[:2] + "*" * (len(m.group()) - 2)

    line = _MASK.sub(number, line)
    # A name may stand beside a number: capitalised words are masked wherever they do not start a sentence.
    def name(m: re.Match[str]) -> str:
        before = line[:m.start()].rstrip()
        if not before or before[-1] in ".!?:":
            return m.group()
        return m.group(1) + "*" * len(m.group(2))

    return _CAPITALISED.sub(name, line)


def excerpt(text: str, line: int | None, category: str) -> str:
    """The masked line ``line`` (1-based) of ``text``, cut to about :data:`EXCERPT_CHARS` characters
    around its first masked place; "" when the text has no such line."""
    lines = text.split("\n")
    if line is None or not 1 <= line <= len(lines):
        return ""
    masked = " ".join(mask_line(lines[line - 1], category).split())
    if len(masked) <= EXCERPT_CHARS:
        return masked
    star = max(0, masked.find("*"))
    start = max(0, star - EXCERPT_CHARS // 2)
    return ("…" if start else "") + masked[start:start + EXCERPT_CHARS] + "…"
