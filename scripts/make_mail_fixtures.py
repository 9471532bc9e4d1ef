"""Write the generated .eml fixtures in fixtures/mail/ (run: .venv/bin/python scripts/make_mail_fixtures.py).

Ordinary mail is built with the stdlib ``email`` package (``policy.SMTP``: CRLF line ends, RFC 2047
and RFC 2231 encoding done by the library). Hostile mail the library refuses to build (100 kB
header lines, thousands of parts, 1200 nested levels) is written as bytes. Boundaries, dates and
Message-IDs are fixed, so running the script again gives identical files. Hand-written fixtures
in the same folder are listed in its README.md and never touched here.
"""

from __future__ import annotations

import email.charset
import email.message
import email.policy
from email.header import Header
from email.message import EmailMessage
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "fixtures" / "mail"
XLSX = ("application", "vnd.openxmlformats-officedocument.spreadsheetml.sheet")
SENDER = "Eva Berg <eva.berg@halmstad.example.test>"
DESK = "mittvaccin@region.example.test"
SUBJECT = "MittVaccin – Behörighet"
# Not a real workbook: the mail parser only carries bytes. The form parsers have their own fixtures.
FAKE_XLSX = b"PK\x03\x04" + bytes(range(256)) * 4


def base(subject: str | None = SUBJECT, *, n: int = 1, sender: str | None = SENDER, msgid: bool = True) -> EmailMessage:
    msg = EmailMessage(policy=email.policy.SMTP)
    if sender is not None:
        msg["From"] = sender
    msg["To"] = DESK
    if subject is not None:
        msg["Subject"] = subject
    msg["Date"] = "Tue, 24 Nov 2026 08:30:00 +0100"
    if msgid:
        msg["Message-ID"] = f"<fixture-{n:03d}@halmstad.example.test>"
    return msg


def fix_boundaries(msg: EmailMessage, name: str) -> EmailMessage:
    for i, part in enumerate(msg.walk()):
        if part.get_content_maintype() == "multipart":
            part.set_boundary(f"=_{name}_{i}")
    return msg


def legacy_subject_mail(text: str, charset: str, encoding: int, n: int) -> bytes:
    """A mail whose subject is RFC 2047 in ``charset`` with Q or B encoding.

    ``policy.SMTP`` would re-encode any subject as UTF-8, so this one uses the stdlib's compat32
    API (``email.header.Header``), which keeps the charset, as older and Outlook clients write.
    """
    cs = email.charset.Charset(charset)
    cs.header_encoding = encoding
    msg = email.message.Message()
    msg["From"] = SENDER
    msg["To"] = DESK
    msg["Subject"] = Header(text, cs)
    msg["Date"] = "Tue, 24 Nov 2026 08:30:00 +0100"
    msg["Message-ID"] = f"<fixture-{n:03d}@halmstad.example.test>"
    msg["MIME-Version"] = "1.0"
    msg.set_payload("Hej!\n".encode(charset), charset=charset)
    return msg.as_bytes(policy=email.policy.compat32.clone(linesep="\r\n"))


def build() -> dict[str, bytes]:
    files: dict[str, bytes] = {}

    msg = base(n=1)
    msg.set_content("Hej!\nBifogar blankett för ny användare.\n\nMed vänliga hälsningar\nEva Berg\nTel 035-13 10 00\n")
    files["plain.eml"] = msg.as_bytes()

    msg = base("MittVaccin – användarstöd", n=2)
    msg.set_content(
        "<html><head><title>Titel som inte syns</title><style>p {color: red}</style></head><body>"
        "<script>alert('x')</script>"
        "<p class=MsoNormal>Hej!</p><p class=MsoNormal>&nbsp;</p>"
        "<div>Rad ett<br>Rad två<br/>Rad tre</div>"
        "<ul><li>Punkt &aring;tta</li><li>Punkt &#246;</li></ul>"
        "<table><tr><td>Kommun</td><td>Halmstad</td></tr><tr><td>Enhet</td><td>Hemtj&auml;nst</td></tr></table>"
        "<p>Fr&aring;ga &amp; svar &lt;snart&gt;</p></body></html>",
        subtype="html",
    )
    files["html-only.eml"] = msg.as_bytes()

    msg = base("MittVaccin – felsökning", n=3)
    msg.set_content("Texten i text/plain-delen.\nAndra raden.\n")
    msg.add_alternative("<p>Texten i <b>HTML</b>-delen.</p>", subtype="html")
    files["alternative.eml"] = fix_boundaries(msg, "alt").as_bytes()

    subjects = {
        "utf8-q": ("utf-8", email.charset.QP),
        "utf8-b": ("utf-8", email.charset.BASE64),
        "latin1-q": ("iso-8859-1", email.charset.QP),
        "latin1-b": ("iso-8859-1", email.charset.BASE64),
        "cp1252-q": ("windows-1252", email.charset.QP),
        "cp1252-b": ("windows-1252", email.charset.BASE64),
    }
    for i, (name, (charset, encoding)) in enumerate(subjects.items()):
        # ISO-8859-1 has no en dash: those subjects use a hyphen, as a Latin-1 client must.
        text = "SV: MittVaccin – Behörighet avslut" if charset != "iso-8859-1" else "SV: MittVaccin - Behörighet avslut"
        files[f"subject-{name}.eml"] = legacy_subject_mail(text, charset, encoding, n=10 + i)

    files["outlook-forward.eml"] = outlook_forward()

    msg = base(n=20)
    msg.set_content("Blanketten bifogad.\n")
    msg.add_attachment(FAKE_XLSX, *XLSX, filename="Behörighet – IT-system MittVaccin blankett kommun.xlsx")
    msg.add_attachment(b"x", "application", "octet-stream", filename="../../etc/passwd")
    files["attachment-rfc2231.eml"] = fix_boundaries(msg, "att").as_bytes()

    msg = base(n=21)
    msg.set_content("En tom bilaga.\n")
    msg.add_attachment(b"", *XLSX, filename="tom.xlsx")
    files["attachment-empty.eml"] = fix_boundaries(msg, "empty").as_bytes()

    msg = base(n=22)
    msg.set_content("Ett vidarebefordrat meddelande som bilaga.\n")
    inner = base("MittVaccin – Behörighet", n=23, sender="Anna Ek <anna.ek@kungsbacka.example.test>")
    inner.set_content("Inre meddelandets text.\n")
    msg.add_attachment(inner)
    files["forward-as-attachment.eml"] = fix_boundaries(msg, "fwdatt").as_bytes()

    msg = base(n=0, msgid=False)
    msg.set_content("Inget Message-ID.\n")
    files["no-message-id.eml"] = msg.as_bytes()

    msg = base(None, n=30)
    msg.set_content("Ingen ämnesrad.\n")
    files["no-subject.eml"] = msg.as_bytes()

    msg = base(n=31, sender=None)
    msg.set_content("Ingen avsändare.\n")
    files["no-from.eml"] = msg.as_bytes()

    files.update(hostile())
    return files


def outlook_forward() -> bytes:
    """A forward as Outlook (Swedish) writes it: VB: subject, quoted header block, Thread-Index."""
    msg = base("VB: MittVaccin – Behörighet", n=40, sender="Lars Holm <lars.holm@falkenberg.example.test>")
    msg["Thread-Topic"] = "MittVaccin – Behörighet"
    msg["Thread-Index"] = "AdnfQ2VhbXBsZS10aHJlYWQtaW5kZXg="
    msg["Content-Language"] = "sv-SE"
    msg["X-MS-Has-Attach"] = "yes"
    text = (
        "Hej,\r\nVidarebefordrar beställningen nedan.\r\n\r\n/Lars\r\n\r\n"
        "Från: Eva Berg <eva.berg@halmstad.example.test>\r\nSkickat: den 23 november 2026 16:02\r\n"
        "Till: Lars Holm <lars.holm@falkenberg.example.test>\r\nÄmne: MittVaccin – Behörighet\r\n\r\n"
        "Hej! Här är blanketten.\r\n"
    )
    html = (
        '<html><body><div class=WordSection1><p class=MsoNormal>Hej,<o:p></o:p></p>'
        "<p class=MsoNormal>Vidarebefordrar beställningen nedan.<o:p></o:p></p>"
        "<p class=MsoNormal><o:p>&nbsp;</o:p></p><p class=MsoNormal>/Lars<o:p></o:p></p>"
        '<div style="border:none;border-top:solid #E1E1E1 1.0pt"><p class=MsoNormal><b>Från:</b> Eva Berg '
        "&lt;eva.berg@halmstad.example.test&gt;<br><b>Skickat:</b> den 23 november 2026 16:02<br>"
        "<b>Till:</b> Lars Holm &lt;lars.holm@falkenberg.example.test&gt;<br><b>Ämne:</b> MittVaccin – Behörighet"
        "</p></div><p class=MsoNormal>Hej! Här är blanketten.</p></div></body></html>"
    )
    msg.set_content(text.replace("\r\n", "\n"))
    msg.add_alternative(html, subtype="html")
    msg.add_attachment(FAKE_XLSX, *XLSX, filename="Behörighet blankett.xlsx")
    return fix_boundaries(msg, "outlook").as_bytes()


def hostile() -> dict[str, bytes]:
    head = (
        b"From: Eva Berg <eva.berg@halmstad.example.test>\r\nTo: mittvaccin@region.example.test\r\n"
        b"Date: Tue, 24 Nov 2026 08:30:00 +0100\r\nMIME-Version: 1.0\r\n"
    )
    files = {}
    files["hostile-long-header.eml"] = (
        head + b"Subject: MittVaccin - Beh=F6righet\r\nX-Padding: " + b"a" * 100_000 + b"\r\n\r\nHej!\r\n"
    )
    parts = b"".join(b"--p\r\n\r\nx\r\n" for _ in range(5000))
    files["hostile-many-parts.eml"] = (
        head + b"Subject: parts\r\nContent-Type: multipart/mixed; boundary=p\r\n\r\n" + parts + b"--p--\r\n"
    )
    depth = 1200
    nested = b"".join(b"Content-Type: multipart/mixed; boundary=n%d\r\n\r\n--n%d\r\n" % (i, i) for i in range(depth))
    files["hostile-deep-nesting.eml"] = head + b"Subject: nesting\r\n" + nested + b"\r\nx\r\n"
    return files


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, data in build().items():
        (OUT / name).write_bytes(data)
        print(f"wrote fixtures/mail/{name} ({len(data)} bytes)")


if __name__ == "__main__":
    main()
