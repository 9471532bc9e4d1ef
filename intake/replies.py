"""The outgoing mail itself: headers, threading and the RFC 3834 marks.

Texts are rendered from the routine pack's templates by :mod:`intake.mailer`. A reply never quotes
or attaches the incoming mail and never contains a personal value.
"""

from __future__ import annotations

import email.charset
import email.policy
import email.utils
import functools
import io
import re
import uuid
from email.generator import NLCRE as _NLCRE
from email.generator import BytesGenerator
from email.message import EmailMessage, Message
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from typing import Any

# The stdlib's compat32 message classes: the same standard output as ``EmailMessage`` with ``policy.SMTP``
# (CRLF, RFC 2047 words for non-ASCII headers, quoted-printable UTF-8 text) at about a fifth of the cost,
# since no header is parsed back into header objects (measured: 2.5 ms against 0.8 ms for a reply with two
# forms attached). Lines up to 200 characters before folding: a folded Message-ID is valid but some
# clients mishandle it.
_PLAIN = re.compile(r"[!-~]+(?: [!-~]+)*\Z")


class _ReplyPolicy(email.policy.Compat32):
    """compat32, but the text headers that may hold encoded-words (Subject, From) are folded at 76 characters,
    so no encoded-word is longer than the 75 RFC 2047 allows; the rest (Message-ID, References) at 200."""

    def _fold(self, name: str, value: Any, sanitize: bool) -> str:
        if name.lower() in ("subject", "from"):
            return email.policy.Compat32._fold(_WORDS, name, value, sanitize)
        if isinstance(value, str) and len(name) + 2 + len(value) <= self.max_line_length and _PLAIN.match(value):
            # Printable ASCII words with single spaces that fit on the line: the header class would write
            # them unchanged (tests/intake/test_replies_mime.py compares), at a tenth of the cost.
            return f"{name}: {value}{self.linesep}"
        return super()._fold(name, value, sanitize)


_POLICY = _ReplyPolicy(linesep="\r\n", max_line_length=200)
_WORDS = email.policy.Compat32(linesep="\r\n", max_line_length=76)
_SMTP_POLICY = email.policy.SMTP.clone(max_line_length=200)
_UTF8_QP = email.charset.Charset("utf-8")
_UTF8_QP.body_encoding = email.charset.QP


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
) -> Message:
    """The outgoing mail for a reply: plain text, threaded, marked as automatic (RFC 3834)."""
    if not (to.isascii() and from_address.isascii()):
        # An internationalised address (RFC 6532) goes in UTF-8 header text, which only the modern policy
        # writes (and smtplib then sends with SMTPUTF8).
        return _build_international(to=to, subject=subject, body=body, from_address=from_address,
                                    from_name=from_name, message_id=message_id, in_reply_to=in_reply_to,
                                    references=references, automatic=automatic, attachments=attachments)
    text = MIMEText(body, "plain", _UTF8_QP, policy=_POLICY)
    if attachments:
        # A boundary of our own, random: else the generator searches the whole serialised mail for a free one
        # (1.2 ms a reply with the blank forms). Base64 and quoted-printable text never hold "=_".
        msg: Message = MIMEMultipart(policy=_POLICY, boundary=f"=_intake_{uuid.uuid4().hex}")
        msg.attach(text)
        for filename, data, content_type in attachments:
            msg.attach(_attachment(clean_header(filename), data, content_type))
    else:
        msg = text
    sender = email.utils.formataddr((from_name, from_address), charset="utf-8") if from_name else from_address
    _head(msg, sender, to, subject, message_id, in_reply_to, references, automatic)
    return msg


def _head(msg: Message, sender: str, to: str, subject: str, message_id: str, in_reply_to: str,
          references: list[str] | None, automatic: bool) -> None:
    """The reply's headers: addresses, threading, and the RFC 3834 marks of an automatic reply."""
    msg["From"] = sender
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


def _build_international(*, to: str, subject: str, body: str, from_address: str, from_name: str,
                         message_id: str, in_reply_to: str, references: list[str] | None, automatic: bool,
                         attachments: list[tuple[str, bytes, str]] | None) -> Message:
    msg = EmailMessage(policy=_SMTP_POLICY)
    sender = email.utils.formataddr((from_name, from_address)) if from_name else from_address
    _head(msg, sender, to, subject, message_id, in_reply_to, references, automatic)
    msg.set_content(body, charset="utf-8")
    for filename, data, content_type in attachments or []:
        maintype, subtype = content_type.split("/", 1)
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return msg


@functools.lru_cache(maxsize=16)
def _attachment(filename: str, data: bytes, content_type: str) -> Message:
    """One attached file as a MIME part, base64-encoded once and shared by every reply attaching the same
    file (the blank forms of a rejection); the generator only reads a part."""
    maintype, subtype = content_type.split("/", 1)
    part = MIMEApplication(data, subtype, policy=_POLICY) if maintype == "application" else \
        _other_part(data, maintype, subtype)
    part.add_header("Content-Disposition", "attachment", filename=filename)
    return part


class _BlockGenerator(BytesGenerator):
    """The standard library's ``BytesGenerator``, writing a body in one piece: its ``_write_lines`` writes
    a part's text line by line (two calls a line, 1,700 a reply with the blank forms), this one writes the
    same bytes at once, line ends normalised by the same expression."""

    def _write_lines(self, lines: str) -> None:
        if lines:
            if "\r" not in lines:  # (a base64 or quoted-printable body: LF line ends only)
                self.write(lines.replace("\n", self._NL) if self._NL != "\n" else lines)
            else:
                self.write(_NLCRE.sub(self._NL, lines))


def message_bytes(msg: Message) -> bytes:
    """``msg`` serialised exactly as ``msg.as_bytes()`` serialises it, in a fraction of the time."""
    out = io.BytesIO()
    _BlockGenerator(out, mangle_from_=False, policy=msg.policy).flatten(msg)
    return out.getvalue()


def _other_part(data: bytes, maintype: str, subtype: str) -> Message:
    from email import encoders
    from email.mime.base import MIMEBase

    part = MIMEBase(maintype, subtype, policy=_POLICY)
    part.set_payload(data)
    encoders.encode_base64(part)
    return part


def new_message_id(from_address: str) -> str:
    domain = from_address.rsplit("@", 1)[-1] or "intake.invalid"
    return email.utils.make_msgid(idstring="intake", domain=domain)
