"""The contract every mailbox source (IMAP, local Maildir / .eml folder) fulfils."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from parsers.errors import IntakeError


@dataclass(frozen=True)
class FetchedMail:
    """One message as it sits in the source.

    ``uid`` is the source's own stable key for the message (an IMAP UID, a file name);
    ``raw`` is ``None`` when the message was over the size cap and only ``header`` was fetched.
    A source delivers bytes and cheap metadata only (size, arrival time); it never parses a mail.
    """

    uid: int | str
    raw: bytes | None
    size: int
    received: datetime | None = None
    header: bytes = b""


class SourceError(IntakeError):
    """The mailbox could not be reached or refused a command; the message names the command."""


class SourceUnavailable(SourceError):
    """The connection to the mailbox is gone (or was never made): nothing is wrong with the mail at hand."""


class SourceAuthError(SourceError):
    """The mailbox refused our login: retried only after a long backoff (a lockout policy may be counting)."""


class MailSource(Protocol):
    """A mailbox to poll. Used as a context manager: ``with source: ...``."""

    #: A stable name for this mailbox, the key of its remembered state (e.g. ``imap://user@host/INBOX``).
    name: str

    def __enter__(self) -> MailSource: ...

    def __exit__(self, *exc: object) -> None: ...

    def uidvalidity(self) -> int:
        """The UIDVALIDITY of the polled folder (a constant for local sources)."""
        ...

    def list_uids(self) -> list[int | str]:
        """Every message waiting in the polled folder, oldest first."""
        ...

    def fetch(self, uids: Iterable[int | str], max_bytes: int) -> Iterator[FetchedMail]:
        """The messages ``uids``, in batches; those over ``max_bytes`` come with headers only."""
        ...

    def move(self, uid: int | str, folder: str) -> None:
        """Move one message out of the polled folder into ``folder`` (created when missing)."""
        ...

    def delete(self, uid: int | str) -> None:
        """Remove one message for good (used when configured for personal-data mail)."""
        ...

    def holds(self, folder: str, message_id: str) -> bool | None:
        """Whether ``folder`` holds a message with ``message_id``; ``None`` when that cannot be told."""
        ...
