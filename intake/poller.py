"""One poll of the mailbox: fetch, identify, decide, record, then move. The imperative shell around ``decide``.

The order is what makes the effect exactly-once: the message, its ticket, its queued reply and
their events are committed in one transaction keyed by the message key, and only then is the
mail moved out of the inbox. A crash before the commit leaves the mail in the inbox to be
decided again; a crash after it leaves a recorded mail in the inbox, which the next poll only
moves; a crash between the move and marking it is repaired by the next poll.

A mail's identity (message key and body hash) is read from its header block and checked against the
store before anything else, so a mail already recorded is never decided again. Deciding holds no
transaction. A mail that keeps failing, or that the source cannot move, is parked after
``max_attempts`` tries: left where it is, shown by ``intake parked list``, never tried again. A failure
of the store itself is a failure of the poll (:class:`StoreFailure`): the mail stays where it is and
the next poll tries again; it never becomes a decision about the mail.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from intake import faults, moves
from intake.approvals import ApprovalLookup
from intake.deciders import DecideFailure, DecidePool, Pending
from intake.decision import Decision
from intake.identity import Identity, identify
from intake.logs import where
from intake.orderers import lookups_for
from intake.pipeline import Settings, decide
from intake.recorder import Recorder
from intake.sources.base import FetchedMail, MailSource, SourceError, SourceUnavailable
from intake.store import Recorded, Store
from rules.packs import Routine
from rules.reasons import reason

log = logging.getLogger("intake.poll")

#: A fetch batch is decided, recorded in one transaction and moved with one command per folder; at most this
#: many mails, or (past the first mail) this many bytes of mail, make one batch.
BATCH_MAILS = 100
BATCH_BYTES = 32 * 1024 * 1024


class StoreFailure(Exception):
    """The store could not be read or written (locked past its busy timeout, disk full, damaged).

    Ends the poll: nothing about the mail at hand was decided, it stays where it is for the next poll.
    """


def is_store_failure(exc: BaseException) -> bool:
    """True for errors of the database itself, as opposed to a value it refused (e.g. a lone surrogate)."""
    return isinstance(exc, sqlite3.OperationalError | sqlite3.InternalError) or type(exc) is sqlite3.DatabaseError


@dataclass
class PollResult:
    """What one poll did, for the log line and the CLI."""

    seen: int = 0
    decided: int = 0  # mails that went through ``decide`` (a mail already recorded never does)
    recorded: int = 0
    already_recorded: int = 0
    moved: int = 0
    repaired: int = 0  # recorded mail found moved by an earlier poll that died before marking it
    parked: int = 0  # parked by this poll
    left_parked: int = 0  # parked earlier, left alone
    verdicts: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    backoff: str = ""  # set when the poll was skipped: no login before this time (auth failures)

    def summary(self) -> str:
        if self.backoff:
            return f"skipped: logins failed, next try after {self.backoff}"
        parts = [f"{self.seen} seen", f"{self.recorded} recorded", f"{self.moved} moved"]
        if self.already_recorded:
            parts.append(f"{self.already_recorded} already recorded")
        if self.repaired:
            parts.append(f"{self.repaired} repaired")
        if self.parked:
            parts.append(f"{self.parked} parked")
        if self.left_parked:
            parts.append(f"{self.left_parked} left parked")
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
        max_attempts: int = 3,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        mailbox: Any = None,
        workers: int = 1,
        db_path: Any = None,
    ):
        #: The configured mailbox (:class:`intake.config.MailboxConfig`) this poller serves, if known.
        self.mailbox = mailbox
        self.store = store
        self.routines = routines
        self.by_id = {r.id: r for r in routines}
        self.source_factory = source_factory
        self.settings = settings
        self.folders = folders
        self.max_attempts = max_attempts
        self.clock = clock
        #: Processes deciding a batch in parallel (``poll.workers``), given the store's path to open their own.
        self.workers = workers
        self.db_path = db_path
        self._pool: DecidePool | None = None
        self.recorder = Recorder(store, routines, settings, rate_limit_per_hour=rate_limit_per_hour)

    def poll_once(self, *, respect_backoff: bool = False) -> PollResult:
        """Handle every mail waiting in the inbox (first the server moves handlers decided on held mail).

        With ``respect_backoff`` (``intake run``), no login is tried while the last ones failed to
        authenticate: the wait doubles with each failure, up to an hour (:mod:`intake.moves`).

        Raises :class:`SourceError` if the mailbox is unreachable and :class:`StoreFailure` if the store is;
        what was recorded before that stays recorded, and the next poll picks up the rest.
        """
        source = self.source_factory()
        if respect_backoff and (until := moves.backoff_until(self.store, source.name)) is not None:
            log.warning("not polling %s until %s: the last logins failed (fix the password, or run poll --once)",
                        source.name, until.isoformat(timespec="seconds"))
            return PollResult(backoff=until.isoformat(timespec="seconds"))
        started = self.clock().isoformat(timespec="seconds")
        try:
            result = self._poll(source)
        except StoreFailure:
            raise
        except Exception as exc:
            if is_store_failure(exc):
                raise StoreFailure(f"store unavailable: {_store_error(exc)}") from None
            self._record_run(source.name, started, None, exc)
            raise
        self._record_run(source.name, started, result, None)
        return result

    def _record_run(self, name: str, started: str, result: PollResult | None, exc: BaseException | None) -> None:
        """One row of ``poll_runs`` for the health page and the back-off (never fails the poll)."""
        try:
            self.store.record_poll_run(
                name, started, ok=exc is None and not (result and result.errors),
                fetched=result.seen if result else 0, recorded=result.recorded if result else 0,
                error_kind=moves.error_kind(exc) if exc else ("mail" if result and result.errors else None),
                error=str(exc) if exc else "; ".join(result.errors[:3]) if result else None)
        except Exception as err:  # noqa: BLE001 - the record is for people; the poll's outcome stands
            log.warning("could not record the poll run: %s", type(err).__name__)

    def _poll(self, source: MailSource) -> PollResult:
        result = PollResult()
        with source:
            self._check_uidvalidity(source)
            moves.carry_out(self.store, source)  # what handlers decided on held mail since the last poll
            uids = source.list_uids()
            self._repair(source, uids, result)
            failures = self.store.failures(source.name)
            size = min(BATCH_MAILS, getattr(source, "batch_size", BATCH_MAILS))  # the source's own fetch batch
            seen: dict[str, str] = {}  # message key -> content hash, of the mail planned so far in this poll
            try:
                with DecidePool(self, self.workers, self.db_path) as self._pool:
                    self._pool.warm(len(uids))
                    # While the workers decide one batch, the poller records and moves the one before it.
                    ahead: _Staged | None = None
                    sizes = batch_sizes(len(uids), size) or [size]
                    for batch in _batches(source.fetch(uids, self.settings.max_message_bytes), sizes, BATCH_BYTES):
                        staged = self._stage(source, batch, failures, seen, result)
                        if ahead is not None:
                            self._finish(source, ahead, failures, result)
                        ahead = staged
                    if ahead is not None:
                        self._finish(source, ahead, failures, result)
            finally:
                self._pool = None
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

    def _repair(self, source: MailSource, uids: list[int | str], result: PollResult) -> None:
        """Mark as moved the recorded mail that left the inbox while its move was not marked (a kill)."""
        listed = {str(uid) for uid in uids}
        uidvalidity = source.uidvalidity()
        for row in self.store.not_moved(source.name):
            if row["uid"] in listed or row["uidvalidity"] != uidvalidity:
                continue  # still waiting (the loop below moves it), or a UID of another mailbox generation
            folder = self.folders.for_message(row["verdict"], _personal(row))
            if folder is None and (finish := getattr(source, "finish_delete", None)) is not None:
                finish(row["uid"])  # killed between flagging it deleted and expunging it: not left in the inbox
            found = source.holds(folder, row["message_id"] or "") if folder is not None else None
            target = "(gone)" if found is False else folder or "(deleted)"
            self.store.mark_moved(row["id"], target, event="move_repaired", data={"uid": row["uid"], "found": found})
            result.repaired += 1
            log.info("uid=%s was moved by an earlier poll; marked now (found in target: %s)", row["uid"], found)

    def _stage(self, source: MailSource, batch: list[FetchedMail], failures: dict[str, Any],
               seen: dict[str, str], result: PollResult) -> _Staged:
        """Identify each mail of a fetch batch and start deciding the new ones (no transaction is open)."""
        plans: list[_Plan] = []
        new: list[_Plan] = []
        for fetched in batch:
            result.seen += 1
            faults.point("mid-batch")
            raw = fetched.raw if fetched.raw is not None else fetched.header
            ident = identify(raw)
            keys = (ident.key, f"{ident.key}#{ident.digest[:16]}")  # the second: a reused Message-ID
            if any(failures.get(k) for k in keys):
                result.left_parked += 1  # parked once, visibly; never tried (or logged) again
                continue
            try:
                plan = self._plan(fetched, ident, seen, result)
            except (SourceError, StoreFailure):
                raise  # the mailbox or the store itself is gone: stop here, the next poll goes on
            except Exception as exc:  # noqa: BLE001 - one mail must never stop the others
                if is_store_failure(exc):
                    raise StoreFailure(f"store unavailable: {_store_error(exc)}") from None
                self._failed(source, fetched, ident.key, None, "mail.handling_failed",
                             f"{type(exc).__name__} at {where(exc)}", result)
                continue
            seen.setdefault(plan.key, ident.digest)
            plan.keys = keys
            (plans if plan.message_pk else new).append(plan)
        now = self.clock()
        pending = self._pool.submit([p.fetched for p in new], now) if self._pool is not None and new else None
        return _Staged(plans, new, now, pending)

    def _finish(self, source: MailSource, staged: _Staged, failures: dict[str, Any], result: PollResult) -> None:
        """Take a staged batch's decisions, record them in one transaction, then move the batch.

        The order keeps the effect exactly-once: nothing is moved before its record is committed, and a mail
        recorded but not moved (a kill after the commit) is only moved by the next poll.
        """
        plans = staged.plans + self._decided(source, staged, result)
        unrecorded = self._record(source, [p for p in plans if p.decision is not None], result)
        plans = [p for p in plans if p not in unrecorded]
        groups: dict[str | None, list[_Plan]] = {}
        for plan in plans:
            groups.setdefault(plan.folder, []).append(plan)
        moved: dict[str | None, list[_Plan]] = {}
        try:
            for folder, group in groups.items():
                moved[folder] = self._move_group(source, folder, group, result)
        finally:  # (also when the mailbox goes away halfway: what moved is marked, not left to repair)
            if any(moved.values()):
                with self.store.transaction():  # every move of the batch marked in one commit
                    for folder, group in moved.items():
                        self.store.mark_moved_many([p.message_pk for p in group], folder or "(deleted)")
                for group in moved.values():
                    for plan in group:
                        plan.moved = True
                    result.moved += len(group)
        for plan in plans:
            for k in plan.keys:
                if plan.moved and k in failures:
                    self.store.clear_failures(source.name, k)

    def _plan(self, fetched: FetchedMail, ident: Identity, seen: dict[str, str], result: PollResult) -> _Plan:
        """What to do with one mail: only move it (recorded before, ``message_pk`` set), or decide it."""
        key = ident.key
        existing = self.store.find_message(key)
        if (existing is not None and existing["content_hash"] not in (None, ident.digest)) or \
                seen.get(key, ident.digest) != ident.digest:
            # Same Message-ID, different mail: record it under a key of its own instead of dropping it.
            key = f"{key}#{ident.digest[:16]}"
            existing = self.store.find_message(key)
        if existing is not None:
            result.already_recorded += 1
            # Recorded by an earlier poll that died before moving it, or the same message sent twice.
            folder = existing["moved_to"]
            if folder in (None, "(deleted)", "(gone)"):
                folder = self.folders.for_message(existing["verdict"], _personal(existing))
            if existing["moved_at"] is not None:
                self.store.add_event("duplicate_seen", message_id=existing["id"], data={"uid": str(fetched.uid)})
            return _Plan(fetched, ident, key, folder, message_pk=existing["id"])
        return _Plan(fetched, ident, key, None)

    def _decided(self, source: MailSource, staged: _Staged, result: PollResult) -> list[_Plan]:
        """The staged new mail with its decisions (made here when no worker took them), in order."""
        if not staged.new:
            return []
        if staged.pending is not None:
            outcomes = staged.pending.result()
        else:
            outcomes = []
            for plan in staged.new:
                try:
                    outcomes.append(self.decide(plan.fetched, now=staged.now))
                except Exception as exc:  # noqa: BLE001 - sorted below, as for a worker's
                    outcomes.append(exc)
        decided = []
        for plan, outcome in zip(staged.new, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                if getattr(outcome, "store", False) or is_store_failure(outcome):
                    raise StoreFailure(f"store unavailable: {outcome}") from None
                if isinstance(outcome, SourceError):
                    raise outcome
                detail = str(outcome) if isinstance(outcome, DecideFailure) else \
                    f"{type(outcome).__name__} at {where(outcome)}"
                self._failed(source, plan.fetched, plan.ident.key, None, "mail.handling_failed", detail, result)
                continue
            plan.decision = replace(outcome, message_key=plan.key)
            plan.folder = self.folders.for_message(outcome.verdict, outcome.personal_data)
            result.decided += 1
            decided.append(plan)
        return decided

    def _record(self, source: MailSource, plans: list[_Plan], result: PollResult) -> list[_Plan]:
        """Record the batch's decided mail in one transaction (each mail in a savepoint of its own); returns
        the mail that could not be recorded at all (counted as failed, left where it is)."""
        if not plans:
            return []
        now = self.clock()
        uidvalidity = source.uidvalidity()
        recorded: list[tuple[_Plan, Recorded]] = []
        unrecorded: list[tuple[_Plan, Exception]] = []
        with self.store.transaction():
            for plan in plans:
                faults.point("before-commit")
                decision, fetched = plan.decision, plan.fetched
                assert decision is not None
                try:
                    done = self.recorder.record(decision, fetched, source.name, uidvalidity, now,
                                                digest=plan.ident.digest)
                except Exception as exc:  # noqa: BLE001 - sorted below: the store's own failures end the poll
                    if is_store_failure(exc):
                        raise
                    # A value the database refused (e.g. text it cannot store): its savepoint is rolled
                    # back; keep the mail as metadata only.
                    log.error("uid=%s could not be recorded (%s at %s); recording it as unparseable",
                              fetched.uid, type(exc).__name__, where(exc))
                    plan.decision = decision = _fallback(plan.key, exc)
                    plan.folder = self.folders.for_message(decision.verdict, decision.personal_data)
                    try:
                        done = self.recorder.record(decision, fetched, source.name, uidvalidity, now,
                                                    digest=plan.ident.digest)
                    except Exception as again:  # noqa: BLE001 - not even that: counted, left in the inbox
                        if is_store_failure(again):
                            raise
                        unrecorded.append((plan, again))
                        continue
                plan.message_pk = done.message_pk
                if not done.new:  # the same mail twice in this poll: the first one's record and folder stand
                    first = self.store.find_message(plan.key)
                    if first is not None:
                        plan.folder = self.folders.for_message(first["verdict"], _personal(first))
                    self.store.add_event("duplicate_seen", message_id=done.message_pk,
                                         data={"uid": str(fetched.uid)})
                recorded.append((plan, done))
        for plan, exc in unrecorded:
            self._failed(source, plan.fetched, plan.ident.key, None, "mail.handling_failed",
                         f"{type(exc).__name__} at {where(exc)}", result)
        for plan, done in recorded:
            faults.point("after-commit")
            decision = plan.decision
            assert decision is not None
            if not done.new:
                result.already_recorded += 1
                continue
            result.recorded += 1
            result.verdicts[decision.verdict] += 1
            log.info(
                "recorded uid=%s message-id=%s verdict=%s reasons=%s ticket=%s",
                plan.fetched.uid, decision.message_id or "-", decision.verdict,
                ",".join(decision.codes) or "-", done.ticket_ref or "-",
            )
        return [plan for plan, _ in unrecorded]

    def _move_group(self, source: MailSource, folder: str | None, group: list[_Plan],
                    result: PollResult) -> list[_Plan]:
        """Move (or delete) the recorded mail of one batch bound for ``folder``; returns what moved (the caller
        marks it). A source that can move several mails at once gets one command; if that fails, or the
        source cannot, each mail is moved on its own, so only a mail that cannot be moved counts a failure."""
        uids = [p.fetched.uid for p in group]
        many = getattr(source, "delete_many" if folder is None else "move_many", None)
        moved: list[_Plan] = []
        if many is not None and len(group) > 1:
            try:
                many(uids) if folder is None else many(uids, folder)
                moved = group
            except SourceUnavailable:
                raise  # the connection is gone, not these mails' fault: the next poll moves them
            except Exception as exc:  # noqa: BLE001 - one mail's trouble must not hold up the others
                log.warning("moving %d mails to %s at once failed (%s); moving them one by one",
                            len(group), folder or "(deleted)", exc if isinstance(exc, SourceError) else
                            f"{type(exc).__name__} at {where(exc)}")
        if not moved:
            for plan in group:
                try:
                    source.move(plan.fetched.uid, folder) if folder is not None else source.delete(plan.fetched.uid)
                except SourceUnavailable:
                    raise
                except Exception as exc:  # noqa: BLE001 - counted against this mail only
                    # Recorded but not moved: the next poll sees it again and only moves it, up to max_attempts.
                    detail = str(exc) if isinstance(exc, SourceError) else f"{type(exc).__name__} at {where(exc)}"
                    self._failed(source, plan.fetched, plan.key, plan.message_pk, "mail.move_failed", detail,
                                 result)
                    continue
                moved.append(plan)
        for _ in moved:
            faults.point("after-move")
        return moved

    def _failed(self, source: MailSource, fetched: FetchedMail, key: str, message_pk: int | None, why: str,
                detail: str, result: PollResult) -> None:
        """Count a failed attempt at one mail; at ``max_attempts`` it is parked (once, with an event)."""
        result.errors.append(f"uid {fetched.uid}: {why}")
        attempts, parked = self.store.count_failure(
            source.name, str(fetched.uid), key, reason=why, detail=detail, max_attempts=self.max_attempts,
            message_pk=message_pk,
        )
        if parked:
            result.parked += 1
            log.error("uid=%s parked after %d failed attempts (%s: %s); see `intake parked list`",
                      fetched.uid, attempts, why, detail)
        else:
            log.error("uid=%s failed (%s: %s), attempt %d of %d; left in the inbox",
                      fetched.uid, why, detail, attempts, self.max_attempts)

    def decide(self, fetched: FetchedMail, *, now: datetime | None = None) -> Decision:
        """The decision on one mail as of ``now`` (default: the poller's clock); pure but for the store's
        answers, so the deciding workers (:mod:`intake.deciders`) run this very method."""
        raw = fetched.raw if fetched.raw is not None else fetched.header
        now = now or self.clock()
        return decide(
            raw, self.routines, settings=self.settings, now=now, received=fetched.received,
            lookup=self.lookup, size=fetched.size,
            lookups={**lookups_for(self.store), "approval": ApprovalLookup(self.store, lambda: now)},
        )

    def lookup(self, ref: str | None, message_ids: list[str]) -> dict[str, Any] | None:
        """The ticket a follow-up belongs to: by a reference in the subject, or by our reply it answers."""
        return self.store.followup_ticket(ref, message_ids)


class Pollers:
    """Several mailboxes polled one after another into one store (``intake poll --once`` over all).

    One mailbox that cannot be reached does not stop the others: its error is raised after they are done.
    A failure of the store ends at once, as for one mailbox.
    """

    def __init__(self, pollers: list[Poller]):
        self.pollers = pollers
        self.store = pollers[0].store

    def poll_once(self) -> PollResult:
        total = PollResult()
        unreachable: SourceError | None = None
        for poller in self.pollers:
            try:
                result = poller.poll_once()
            except SourceError as exc:
                log.error("%s: mailbox unavailable: %s", poller.mailbox.name if poller.mailbox else "?", exc)
                unreachable = unreachable or exc
                continue
            for name in ("seen", "decided", "recorded", "already_recorded", "moved", "repaired", "parked",
                         "left_parked"):
                setattr(total, name, getattr(total, name) + getattr(result, name))
            total.verdicts.update(result.verdicts)
            total.errors += result.errors
        if unreachable is not None:
            raise unreachable
        return total


@dataclass
class _Plan:
    """One mail of a batch: recorded before (``message_pk`` known) or decided now (``decision``)."""

    fetched: FetchedMail
    ident: Identity
    key: str
    folder: str | None
    decision: Decision | None = None
    message_pk: int = 0
    keys: tuple[str, ...] = ()
    moved: bool = False


@dataclass
class _Staged:
    """A fetch batch identified and being decided: mail recorded before, and new mail with its decisions."""

    plans: list[_Plan]
    new: list[_Plan]
    now: datetime
    pending: Pending | None


#: The first batches and the last are smaller: the workers start deciding sooner and the poller starts
#: recording sooner, and after the last decisions little is left to record, move and send.
RAMP = (8, 16, 32, 64)


def batch_sizes(total: int, size: int) -> list[int]:
    """How many mails each batch of a poll of ``total`` mails takes: ramping up to ``size`` and down again."""
    head = [s for s in RAMP if s < size]
    tail = head[:2][::-1]
    if total <= sum(head) + sum(tail) + size:
        out, left = [], total
        for s in head + [size] * (total // size + 1):
            if left <= 0:
                break
            out.append(min(s, left))
            left -= out[-1]
        return out
    middle = total - sum(head) - sum(tail)
    return head + [size] * (middle // size) + ([middle % size] if middle % size else []) + tail


def _batches(mails: Iterable[FetchedMail], sizes: list[int], max_bytes: int) -> Iterator[list[FetchedMail]]:
    """``mails`` in lists of ``sizes`` (the last size again when more mails come), cut early once they hold
    ``max_bytes`` of mail."""
    batch: list[FetchedMail] = []
    held, k = 0, 0
    for mail in mails:
        batch.append(mail)
        held += len(mail.raw) if mail.raw is not None else len(mail.header)
        if len(batch) >= sizes[min(k, len(sizes) - 1)] or held >= max_bytes:
            yield batch
            batch, held, k = [], 0, k + 1
    if batch:
        yield batch


def _fallback(key: str, exc: Exception) -> Decision:
    """A metadata-only, unanswered record for a mail whose decision could not be stored."""
    return Decision(
        verdict="rejected",
        message_key=key,
        reasons=(reason("mail.unparseable", detail=f"record error: {type(exc).__name__}"),),
    )  # kept as metadata only (the recorder keeps no bytes of unread mail); moved, never deleted


def _store_error(exc: BaseException) -> str:
    """The database's own words (e.g. "database is locked"): SQLite's messages never quote values."""
    return f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"


def _personal(row: dict[str, Any]) -> bool:
    codes = {r["code"] for r in json.loads(row["reasons"] or "[]")}
    return bool(codes & {"subject.personal_data", "body.personal_data"})
