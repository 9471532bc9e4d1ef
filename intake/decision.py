"""The decision: what the bot concluded about one mail, and what should happen because of it."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from rules.reasons import Reason

VERDICTS = ("accepted", "rejected", "ignored", "held")


@dataclass(frozen=True)
class Reply:
    """The plan of an automatic reply: its kind, recipient and what its template may see.

    It is rendered once, by :mod:`intake.mailer`, when it is queued (by then the ticket reference
    exists). ``subject`` and ``body`` are a preview with the reference shown as its pattern, for
    ``intake check``. A reply never quotes the incoming mail.
    """

    kind: str  # "ack" or "rejection"
    to: str
    attach_blank_form: bool = False
    routine: Any = field(default=None, repr=False, compare=False)  # rules.packs.Routine
    request_type: str | None = None
    reasons: tuple[Reason, ...] = ()
    user_count: int = 0

    def preview(self) -> Any:
        from intake.mailer import render_reply

        return render_reply(self, ref=None)

    @property
    def subject(self) -> str:
        return self.preview().subject

    @property
    def body(self) -> str:
        return self.preview().body

    def to_dict(self) -> dict[str, Any]:
        text = self.preview()
        return {"kind": self.kind, "to": self.to, "subject": text.subject, "body": text.body}


@dataclass(frozen=True)
class Decision:
    """The verdict on one mail with everything needed to record and answer it.

    Built by :func:`intake.pipeline.decide`, a pure function. ``findings`` hold categories and
    places of personal data, never values.
    """

    verdict: str
    message_key: str
    message_id: str = ""
    sender: str = ""
    subject: str = ""
    sent_at: datetime | None = None
    routine: str | None = None
    request_type: str | None = None
    queue: str | None = None
    reasons: tuple[Reason, ...] = ()
    form: Any = None  # parsers.forms.ParsedForm
    form_attachment: Any = None  # parsers.mail.Attachment kept with the ticket
    reply: Reply | None = None
    reply_suppressed: str | None = None  # reason code when a reply was due but is not sent
    findings: tuple[Any, ...] = ()
    in_reply_to: str = ""
    references: tuple[str, ...] = ()
    ticket_ref: str | None = None  # set only for a confirmed follow-up: the ticket it joins
    personal_data: bool = False  # True when rejected for personal data: store metadata only
    bounce_of: tuple[str, ...] = ()  # Message-IDs a bounce names: which of our replies failed

    @property
    def codes(self) -> list[str]:
        return [r.code for r in self.reasons]

    def to_json(self) -> dict[str, Any]:
        """The ``intake check --json`` contract (documented in the README)."""
        return {
            "verdict": self.verdict,
            "routine": self.routine,
            "request_type": self.request_type,
            "queue": self.queue,
            "reasons": [r.to_dict() for r in self.reasons],
            "reply": self.reply.to_dict() if self.reply else None,
            "form": self.form.to_dict() if self.form is not None else None,
            "message_id": self.message_id,
            "reply_suppressed": self.reply_suppressed,
            "findings": [
                {"category": f.category, "location": f.location, "line": f.line, "score": f.score}
                for f in self.findings
            ],
        }


def message_key(message_id: str, raw: bytes) -> str:
    """The key that makes recording idempotent: the Message-ID, or a hash of the bytes without one."""
    message_id = message_id.strip()
    if message_id:
        return "mid:" + message_id
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def content_hash(raw: bytes) -> str:
    """A hash of the mail's body (everything after the header block, line endings normalised).

    Tells a re-delivery of one mail (same body; Received headers may differ) from a different mail that
    reuses a Message-ID (some scan-to-mail devices do): the first is a duplicate, the second is not.
    """
    body = raw.replace(b"\r\n", b"\n").split(b"\n\n", 1)
    return hashlib.sha256(body[1].rstrip() if len(body) > 1 else b"").hexdigest()


def verdict_of(reasons: list[Reason], held: bool, ignored: bool) -> str:
    """One place decides the verdict from the rules' hits (Mailman's chain, as a table)."""
    if ignored:
        return "ignored"
    if reasons:
        return "rejected"
    if held:
        return "held"
    return "accepted"


@dataclass
class Hits:
    """What the rules found while judging one mail, collected before the verdict is taken."""

    rejections: list[Reason] = field(default_factory=list)
    held: list[Reason] = field(default_factory=list)
    ignored: Reason | None = None
