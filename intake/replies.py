"""The outgoing mail itself: headers, threading and the RFC 3834 marks.

Texts are rendered from the routine pack's templates by :mod:`intake.mailer`. A reply never quotes
or attaches the incoming mail and never contains a personal value.
"""

from __future__ import annotations

import email.policy
import email.utils
from email.message import EmailMessage

# Lines up to 200 characters before folding: a folded Message-ID is valid but some clients mishandle it.
_POLICY = email.policy.SMTP.clone(max_line_length=200)


def clean_header(text: str) -> str:
    """``text`` as one header line: incoming text must never inject headers (FIELD-NOTES: =0D=0A)."""
    return " ".join(text.replace("\x00", " ").splitlines()).strip()


def build_message(
    *,
    to: str,
    subject: str,
    body: str,
    from_address: str,
    from_name: str = "",
    message_id: str,
    in_reply_to: str = "",
    references: list[str] | None = None,
    automatic: bool = True,
    attachments: list[tuple[str, bytes, str]] | None = None,
) -> EmailMessage:
    """The outgoing mail for a reply: plain text, threaded, marked as automatic (RFC 3834)."""
    msg = EmailMessage(policy=_POLICY)
    msg["From"] = email.utils.formataddr((from_name, from_address)) if from_name else from_address
    msg["To"] = clean_header(to)
    msg["Subject"] = clean_header(subject)
    msg["Date"] = email.utils.formatdate(localtime=False)
    msg["Message-ID"] = message_id
    if in_reply_to:
        msg["In-Reply-To"] = clean_header(in_reply_to)
    refs = [clean_header(r) for r in (references or []) if r]
    if refs:
        msg["References"] = " ".join(refs)
    if automatic:
        msg["Auto-Submitted"] = "auto-replied"
        msg["X-Auto-Response-Suppress"] = "All"
        msg["Precedence"] = "auto_reply"
    msg.set_content(body, charset="utf-8")
    for filename, data, content_type in attachments or []:
        maintype, subtype = content_type.split("/", 1)
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return msg


def new_message_id(from_address: str) -> str:
    domain = from_address.rsplit("@", 1)[-1] or "intake.invalid"
    return email.utils.make_msgid(idstring="intake", domain=domain)
