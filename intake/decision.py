"""The decision: what the bot concluded about one mail, and what should happen because of it."""

from __future__ import annotations

import hashlib
import re
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
    # The routines whose subjects a rejection lists (every routine served, when the subject fitted none).
    offered: tuple[Any, ...] = field(default=(), repr=False, compare=False)

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
    # Rejected for another reason while an uncertain personal-data finding was also there (issue 10):
    # the finding's reasons, for staff. Such a mail is stored like a personal-data rejection (metadata only).
    unsure_personal_data: tuple[Reason, ...] = ()
    reply_routine: str | None = None  # the routine in whose name the mail is answered (default when none fits)
    offered: tuple[Any, ...] = ()  # routines whose subjects a rejection lists (all served, when none fitted)
    trail: tuple[tuple[str, str], ...] = ()  # (check, "miss" or the action its hit took), in chain order
    # What a ``join`` hit carried beyond the ticket (an approval answer: {"handler": "approval", "kind": ...});
    # the recorder hands it to the join handler registered under that name instead of firing ``followup``.
    join_data: Any = field(default=None, compare=False)

    @property
    def metadata_only(self) -> bool:
        """Keep no raw text of this mail: rejected for personal data, or rejected beside an uncertain finding."""
        return self.personal_data or bool(self.unsure_personal_data)

    @property
    def subject_withheld(self) -> bool:
        """Store no subject: it holds personal data, or may and the mail was rejected anyway."""
        return "subject.personal_data" in self.codes or any(
            r.code == "subject.possible_personal_data" for r in self.unsure_personal_data)

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

    The hash is ``sha256(raw.replace(b"\r\n", b"\n").split(b"\n\n", 1)[1].rstrip())`` (empty when there is no
    blank line), computed in slices: the mail is never copied whole (a copy of a 30 MB mail is 30 MB more).
    """
    digest = hashlib.sha256()
    blank = _BLANK_LINE.search(raw)
    if blank is None:
        return digest.hexdigest()
    start, end = blank.end(), _end_of_text(raw, blank.end())
    carry = b""
    for at in range(start, end, _HASH_SLICE):
        piece = carry + raw[at : min(at + _HASH_SLICE, end)]
        # A CR at the end of a slice may begin a CRLF that the next slice ends: hold it back.
        carry = b"\r" if piece.endswith(b"\r") else b""
        digest.update((piece[:-1] if carry else piece).replace(b"\r\n", b"\n"))
    digest.update(carry)
    return digest.hexdigest()


#: The first blank line once CRLF is LF: an LF, then LF or CRLF (a CR followed by LF is dropped).
_BLANK_LINE = re.compile(rb"\n\r?\n")
_HASH_SLICE = 1 << 20
_TRAILING = b" \t\n\r\x0b\x0c"  # what bytes.rstrip() strips


def _end_of_text(raw: bytes, start: int) -> int:
    """Where ``raw[start:]`` ends once trailing whitespace is stripped, read from the end in slices."""
    end = len(raw)
    while end > start:
        piece = raw[max(start, end - 65536) : end]
        kept = piece.rstrip(_TRAILING)
        if kept:
            return end - len(piece) + len(kept)
        end -= len(piece)
    return start
