"""Build real RFC 5322 messages for tests with the stdlib email package."""

from __future__ import annotations

import email.policy
import email.utils
from email.message import EmailMessage
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"

SIGNATURE = "\n\nMed vänliga hälsningar\nEva Berg\nEnhetschef, Hemtjänst Väster\nTel 035-13 10 00\n"


def make_mail(
    subject: str | None = "MittVaccin – användarstöd",
    body: str = "Hej!\nHur loggar jag in i MittVaccin från en ny dator?" + SIGNATURE,
    *,
    sender: str | None = "Eva Berg <eva.berg@halmstad.example.test>",
    to: str = "mittvaccin@region.example.test",
    message_id: str | None = "auto",
    attachments: list[tuple[str, bytes, str]] | None = None,
    headers: dict[str, str] | None = None,
    html: str | None = None,
    date: str | None = "Tue, 24 Nov 2026 08:30:00 +0100",
) -> bytes:
    msg = EmailMessage(policy=email.policy.SMTP)
    if sender is not None:
        msg["From"] = sender
    msg["To"] = to
    if subject is not None:
        msg["Subject"] = subject
    if date is not None:
        msg["Date"] = date
    if message_id == "auto":
        msg["Message-ID"] = email.utils.make_msgid(domain="halmstad.example.test")
    elif message_id:
        msg["Message-ID"] = message_id
    for key, value in (headers or {}).items():
        msg[key] = value
    if html is not None and body is None:
        msg.set_content(html, subtype="html")
    else:
        msg.set_content(body)
        if html is not None:
            msg.add_alternative(html, subtype="html")
    for filename, data, content_type in attachments or []:
        maintype, subtype = content_type.split("/", 1)
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return msg.as_bytes()


def form_attachment(name: str) -> tuple[str, bytes, str]:
    """A fixture form from fixtures/forms/, as an attachment tuple."""
    path = FIXTURES / "forms" / name
    return (path.name, path.read_bytes(), XLSX if path.suffix == ".xlsx" else DOCX)
