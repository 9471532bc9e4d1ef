"""One poll of the mailbox: fetch, decide, record, then move. The imperative shell around ``decide``.

The order is what makes the effect exactly-once: the message, its ticket, its queued reply and
their events are committed in one transaction keyed by the message key, and only then is the
mail moved out of the inbox. A crash before the commit leaves the mail in the inbox to be
decided again; a crash after it leaves a recorded mail in the inbox, which the next poll only
moves. A mail that breaks anything becomes a recorded decision; the poll goes on.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from intake import faults
from intake.decision import Decision, content_hash, message_key
from intake.logs import where
from intake.pipeline import Settings, decide
from intake.recorder import Recorder
from intake.sources.base import FetchedMail, MailSource, SourceError
from intake.store import Store
from rules.packs import Routine
from rules.reasons import reason

log = logging.getLogger("intake.poll")


@dataclass
class PollResult:
    """What one poll did, for the log line and the CLI."""

    seen: int = 0
    recorded: int = 0
    already_recorded: int = 0
    moved: int = 0
    verdicts: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = [f"{self.seen} seen", f"{self.recorded} recorded", f"{self.moved} moved"]
        if self.already_recorded:
            parts.append(f"{self.already_recorded} already recorded")
        parts += [f"{n} {v}" for v, n in sorted(self.verdicts.items())]
        if self.errors:
            parts.append(f"{len(self.errors)} errors")
        return ", ".join(parts)


@dataclass(frozen=True)
class Folders:
    """Where mail goes once recorded, per verdict; personal-data mail may be deleted instead."""

    accepted: str = "Intake/Accepted"
    rejected: str = "Intake/Rejected"
    ignored: str = "Intake/Ignored"
    held: str = "Intake/Held"
    personal_data: str = "Intake/PersonalData"
    personal_data_action: str = "move"

    @classmethod
    def from_config(cls, data: dict[str, Any]) -> Folders:
        return cls(**data)

    def for_message(self, verdict: str, personal_data: bool) -> str | None:
        """The folder to move to, or ``None`` to delete."""
        if personal_data:
            return None if self.personal_data_action == "delete" else self.personal_data
        return getattr(self, verdict)


class Poller:
    """Polls one mailbox into one store."""

    def __init__(
        self,
        store: Store,
        routines: list[Routine],
        source_factory: Callable[[], MailSource],
        *,
        settings: Settings,
        folders: Folders,
        rate_limit_per_hour: int = 5,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ):
        self.store = store
        self.routines = routines
        self.by_id = {r.id: r for r in routines}
        self.source_factory = source_factory
        self.settings = settings
        self.folders = folders
        self.clock = clock
        self.recorder = Recorder(store, routines, settings, rate_limit_per_hour=rate_limit_per_hour)

    def poll_once(self) -> PollResult:
        """Handle every mail waiting in the inbox. Raises :class:`SourceError` if the mailbox is unreachable;
        what was recorded before that stays recorded, and the next poll picks up the rest."""
        result = PollResult()
        with self.source_factory() as source:
            self._check_uidvalidity(source)
            uids = source.list_uids()
            for fetched in source.fetch(uids, self.settings.max_message_bytes):
                result.seen += 1
                faults.point("mid-batch")
                try:
                    self._handle(source, fetched, result)
                except SourceError:
                    raise  # the mailbox itself is gone: stop here, the next poll goes on
                except Exception as exc:  # noqa: BLE001 - one mail must never stop the others
                    result.errors.append(f"uid {fetched.uid}: {type(exc).__name__}")
                    log.error("uid=%s could not be handled, left in the inbox: %s at %s",
                              fetched.uid, type(exc).__name__, where(exc))
        log.info("poll done: %s", result.summary())
        return result

    def _check_uidvalidity(self, source: MailSource) -> None:
        current = source.uidvalidity()
        known = self.store.uidvalidity(source.name)
        if known is not None and known != current:
            # UIDs we remembered now mean other mails. Nothing depends on them for correctness
            # (recording is keyed by Message-ID or content hash), so note it and go on.
            log.warning("UIDVALIDITY of %s changed from %s to %s", source.name, known, current)
            self.store.add_event("uidvalidity_changed", data={"source": source.name, "old": known, "new": current})
        if known != current:
            self.store.set_uidvalidity(source.name, current)

    def _handle(self, source: MailSource, fetched: FetchedMail, result: PollResult) -> None:
        decision = self.decide(fetched)
        existing = self.store.find_message(decision.message_key)
        raw = fetched.raw if fetched.raw is not None else fetched.header
        digest = content_hash(raw)
        if existing is not None and existing["content_hash"] not in (None, digest):
            # Same Message-ID, different mail: record it under a key of its own instead of dropping it.
            decision = replace(decision, message_key=f"{decision.message_key}#{digest[:16]}")
            existing = self.store.find_message(decision.message_key)
        if existing is not None:
            result.already_recorded += 1
            # Recorded by an earlier poll that died before moving it, or the same message sent twice.
            folder = existing["moved_to"]
            if folder in (None, "(deleted)"):
                folder = self.folders.for_message(existing["verdict"], _personal(existing))
            if existing["moved_at"] is not None:
                self.store.add_event("duplicate_seen", message_id=existing["id"], data={"uid": str(fetched.uid)})
            self._move(source, fetched.uid, existing["id"], folder, result)
            return
        faults.point("before-commit")
        try:
            recorded = self.recorder.record(decision, fetched, source.name, source.uidvalidity(), self.clock())
        except Exception as exc:  # noqa: BLE001 - a mail the store cannot take is still recorded, minimally
            log.error("uid=%s could not be recorded (%s at %s); recording it as unparseable",
                      fetched.uid, type(exc).__name__, where(exc))
            decision = _fallback(fetched, exc)
            recorded = self.recorder.record(decision, fetched, source.name, source.uidvalidity(), self.clock())
        faults.point("after-commit")
        result.recorded += 1
        result.verdicts[decision.verdict] += 1
        log.info(
            "recorded uid=%s message-id=%s verdict=%s reasons=%s ticket=%s",
            fetched.uid, decision.message_id or "-", decision.verdict,
            ",".join(decision.codes) or "-", recorded.ticket_ref or "-",
        )
        self._move(source, fetched.uid, recorded.message_pk,
                   self.folders.for_message(decision.verdict, decision.personal_data), result)

    def _move(self, source: MailSource, uid: int | str, message_pk: int, folder: str | None,
              result: PollResult) -> None:
        try:
            if folder is None:
                source.delete(uid)
            else:
                source.move(uid, folder)
        except SourceError as exc:
            # Recorded but not moved: the next poll sees it again and only moves it.
            result.errors.append(str(exc))
            log.error("could not move uid=%s: %s", uid, exc)
            return
        self.store.mark_moved(message_pk, folder or "(deleted)")
        result.moved += 1

    def decide(self, fetched: FetchedMail) -> Decision:
        raw = fetched.raw if fetched.raw is not None else fetched.header
        return decide(
            raw, self.routines, settings=self.settings, now=self.clock(), received=fetched.received,
            lookup=self.lookup, size=fetched.size,
        )

    def lookup(self, ref: str | None, message_ids: list[str]) -> dict[str, Any] | None:
        """The ticket a follow-up belongs to: by a reference in the subject, or by our reply it answers."""
        db = self.store.db
        rows: list[dict[str, Any]] = []
        if ref:
            rows = list(db.query("select * from tickets where ref = ?", [ref]))
        if not rows and message_ids:
            marks = ",".join("?" * len(message_ids))
            rows = list(db.query(
                f"select t.* from outbox o join tickets t on t.id = o.ticket_id where o.rfc_message_id in ({marks}) "
                "order by o.id desc limit 1", message_ids,
            ))
        return rows[0] if rows else None

def _fallback(fetched: FetchedMail, exc: Exception) -> Decision:
    """A metadata-only, unanswered record for a mail whose decision could not be stored."""
    raw = fetched.raw if fetched.raw is not None else fetched.header
    return Decision(
        verdict="rejected",
        message_key=message_key("", raw),
        reasons=(reason("mail.unparseable", detail=f"record error: {type(exc).__name__}"),),
    )  # kept as metadata only (the recorder keeps no bytes of unread mail); moved, never deleted


def _personal(row: dict[str, Any]) -> bool:
    codes = {r["code"] for r in json.loads(row["reasons"] or "[]")}
    return bool(codes & {"subject.personal_data", "body.personal_data"})

