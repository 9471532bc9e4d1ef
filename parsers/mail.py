"""Raw message bytes into a parsed mail: subject, sender, plain body text, attachments, headers."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Attachment:
    """One attached file as it came in the mail. ``filename`` is untrusted text."""

    filename: str
    content_type: str
    data: bytes

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass(frozen=True)
class ParsedMail:
    """What the rules need to know about a message, with no I/O left to do."""

    message_id: str
    subject: str
    sender: str  # address only, lower-cased; "" when missing or unreadable
    sender_name: str
    to: list[str]
    date: object  # datetime | None (timezone-aware when the mail said so)
    body_text: str  # text part, or the HTML part turned into text when there is no text part
    headers: dict[str, list[str]]  # lower-cased header name -> every value, decoded
    attachments: list[Attachment] = field(default_factory=list)
    in_reply_to: str = ""
    references: list[str] = field(default_factory=list)
    content_type: str = "text/plain"
    defects: list[str] = field(default_factory=list)
