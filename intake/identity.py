"""A mail's identity, read from its header block alone: what the poller checks before deciding.

The message key is the Message-ID (or a sha256 of the bytes without one) and the content hash is a hash
of the body (:func:`intake.decision.content_hash`). Both come from the bytes the source delivered,
without parsing the body, so a mail already recorded costs one header parse and one hash, never a decision.
"""

from __future__ import annotations

import email.parser
import email.policy
from dataclasses import dataclass

from intake.decision import content_hash, message_key
from parsers.mail import decode_header_value

#: A header block longer than this is not parsed for its Message-ID (the mail is keyed by its bytes).
HEADER_LIMIT = 256 * 1024


@dataclass(frozen=True)
class Identity:
    """Who a mail is: ``key`` (recording is idempotent on it), its Message-ID and its body hash."""

    key: str
    message_id: str
    digest: str


def header_block(raw: bytes) -> bytes:
    """The top-level header block of ``raw`` (line ends as sent), without the blank line."""
    for end in (raw.find(b"\r\n\r\n"), raw.find(b"\n\n")):
        if end >= 0:
            return raw[:end]
    return raw


def message_id_of(raw: bytes) -> str:
    """The first Message-ID header of ``raw``, decoded as the mail parser does; "" when there is none."""
    head = header_block(raw)
    if len(head) > HEADER_LIMIT:
        return ""
    head = head.replace(b"\r\n", b"\n").replace(b"\r", b"\n") + b"\n\n"
    try:
        # compat32: the values as sent (raw_items is the same under every policy), without the default
        # policy's parse of the Content-Type header the parser reads at the end of the block (0.3 ms a mail).
        parsed = email.parser.BytesParser(policy=email.policy.compat32).parsebytes(head, headersonly=True)
        for name, value in parsed.raw_items():
            if name.strip().lower() == "message-id":
                text = decode_header_value(value)
                return text.encode("utf-8", "replace").decode("utf-8").strip()
    except Exception:  # noqa: BLE001 - a header we cannot read: keyed by its bytes instead
        return ""
    return ""


def identify(raw: bytes) -> Identity:
    """The identity of the mail ``raw`` (its whole bytes, or its header block when it was too large)."""
    mid = message_id_of(raw)
    return Identity(key=message_key(mid, raw), message_id=mid, digest=content_hash(raw))
