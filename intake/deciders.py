"""Deciding a batch of mail on every core: ``decide`` is a pure function, so worker processes can take it.

A poll with a backlog (a first import, a mailbox that was down) spends most of its time deciding: parsing
each mail and its form and scanning it for personal data. Those are pure functions of the mail's bytes and
of what the store answers (a follow-up's ticket, an approval, the orderer register), so ``poll.workers``
processes decide a batch in parallel while the poller alone records, moves and sends, in the same order and
with the same transactions as when it decides by itself.

The workers are forked from the poller (they inherit the loaded routines and settings, nothing is pickled
but the mail and the decision) and each opens a read-only connection of its own to the store. Forking is
only safe in a process with no other threads, so the pool is used by ``intake poll --once`` and not by
``intake run`` (whose IMAP watchers and sender are threads); a batch of a few mails, and a mail over
:data:`MAX_SHIPPED_BYTES`, are decided in the poller itself. A worker that dies (a crash, the memory
killer) ends the pool for the rest of the poll: the batch is decided again in the poller.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any

from intake.decision import Decision
from intake.logs import where
from intake.sources.base import FetchedMail
from parsers import sandbox

log = logging.getLogger("intake.poll")

#: Fewer new mails than this in a batch are decided in the poller: shipping them costs more than it saves.
MIN_BATCH = 4
#: A mail larger than this is decided in the poller, so its bytes are never copied to another process.
MAX_SHIPPED_BYTES = 1024 * 1024

#: How often a worker checks that the poller that forked it is still there.
ORPHAN_CHECK_SECONDS = 0.2

_poller: Any = None  # in a worker: the poller it was forked from, with a store connection of its own


def default_workers() -> int:
    """One worker per core the process may use, at most four."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(4, cores))


class DecidePool:
    """Worker processes deciding for one poller during one poll (``with DecidePool(poller, n) as pool``)."""

    def __init__(self, poller: Any, workers: int, db_path: Any):
        self.poller = poller
        self.workers = workers
        self.db_path = db_path
        self._executor: ProcessPoolExecutor | None = None
        self._broken = False

    def __enter__(self) -> DecidePool:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def warm(self, count: int) -> None:
        """Start the workers now when ``count`` mails wait (before the first batch is fetched: their start
        overlaps the fetch); otherwise they start at the first batch worth shipping, if any."""
        if self._executor is None and self.usable(count) and not self.poller.store.db.conn.in_transaction:
            self._start()
            try:
                self._executor.submit(_warm)
            except BrokenProcessPool:
                self._break()

    def _start(self) -> None:
        global _poller
        _poller = self.poller  # inherited by the forked workers, never pickled
        self._executor = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("fork"),
                                             initializer=_start_worker, initargs=(str(self.db_path),))

    def usable(self, count: int) -> bool:
        """Whether ``count`` mails are worth deciding in the workers now."""
        return (self.workers > 1 and count >= MIN_BATCH and not self._broken and self.db_path is not None
                and (self._executor is not None or threading.active_count() == 1))

    def submit(self, mails: list[FetchedMail], now: datetime) -> Pending | None:
        """Start deciding ``mails`` in the workers and return at once; ``None`` when the pool cannot be used
        now (the caller decides in-process). The poller records the previous batch meanwhile."""
        shipped = [m for m in mails if (len(m.raw) if m.raw is not None else len(m.header)) <= MAX_SHIPPED_BYTES]
        if not self.usable(len(shipped)) or self.poller.store.db.conn.in_transaction:
            return None  # (never fork with a transaction open: the workers would inherit its state)
        ids = [id(m) for m in shipped]
        shipped = [_shippable(m) for m in shipped]
        try:
            if self._executor is None:
                self._start()
            chunk = max(1, len(shipped) // (self.workers * 2))
            answers = self._executor.map(_decide, shipped, [now] * len(shipped), chunksize=chunk)
        except BrokenProcessPool:
            self._break()
            return None
        return Pending(self, mails, ids, answers, now)

    def decide(self, mails: list[FetchedMail], now: datetime) -> list[Decision | BaseException] | None:
        """Each mail's decision (or the exception deciding it raised), in order; ``None`` when the pool
        cannot be used now."""
        pending = self.submit(mails, now)
        return pending.result() if pending is not None else None

    def _break(self) -> None:
        log.error("a deciding worker died; this poll decides the rest of its mail by itself")
        self._broken = True
        self.__exit__()


class Pending:
    """The decisions on one batch, being made in the workers."""

    def __init__(self, pool: DecidePool, mails: list[FetchedMail], shipped: list[int], answers: Any,
                 now: datetime):
        self.pool, self.mails, self.shipped, self.answers, self.now = pool, mails, shipped, answers, now

    def result(self) -> list[Decision | BaseException]:
        """Each mail's decision or exception, in order (the whole batch decided here if a worker died)."""
        poller = self.pool.poller
        try:
            results = dict(zip(self.shipped, self.answers, strict=True))
        except BrokenProcessPool:
            self.pool._break()
            return [_in_process(poller, m, self.now) for m in self.mails]
        except Exception as exc:  # noqa: BLE001 - e.g. an answer that could not cross: decide here instead
            log.error("the deciding workers failed (%s); this batch is decided by the poller", type(exc).__name__)
            return [_in_process(poller, m, self.now) for m in self.mails]
        out: list[Decision | BaseException] = []
        for mail in self.mails:
            if id(mail) not in results:
                out.append(_in_process(poller, mail, self.now))
                continue
            kind, value = results[id(mail)]
            out.append(restore(value, poller.by_id) if kind == "ok" else DecideFailure(*value))
        return out


class DecideFailure(Exception):
    """What deciding one mail raised in a worker: its type and place, as the poller logs them."""

    def __init__(self, kind: str, place: str, store: bool):
        super().__init__(f"{kind} at {place}")
        self.kind, self.place, self.store = kind, place, store


def _shippable(mail: FetchedMail) -> FetchedMail:
    """``mail`` with its arrival time in the standard library's fixed-offset zone: the IMAP library's own
    zone class cannot be rebuilt by pickle in the worker."""
    when = mail.received
    if when is None or when.tzinfo is None or type(when.tzinfo) is timezone:
        return mail
    return replace(mail, received=when.replace(tzinfo=timezone(when.utcoffset() or timedelta(0))))


def _in_process(poller: Any, mail: FetchedMail, now: datetime) -> Decision | BaseException:
    try:
        return poller.decide(mail, now=now)
    except Exception as exc:  # noqa: BLE001 - handed to the poller, which counts and parks it
        return exc


def _warm() -> None:
    """A first task: it makes the executor start every worker process."""


def _start_worker(db_path: str) -> None:
    """In a new worker: a store connection of its own (the inherited one is never touched); it ends with the
    poller."""
    from intake.store import open_store

    _poller.store = open_store(db_path)
    _poller.store.read_only()  # deciding reads; a write here would be a bug
    end_with_parent()
    sandbox.start_worker()  # its form-parsing worker starts beside the first mails, not at the first form


def end_with_parent() -> None:
    """In a forked helper process (a deciding worker, the sender): end it when the process that forked it is
    gone (killed: nobody would ask it again, and it would keep that process's output open for whoever waits on
    it)."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(ORPHAN_CHECK_SECONDS)
        os._exit(0)

    threading.Thread(target=watch, name="orphan-watch", daemon=True).start()


def _decide(mail: FetchedMail, now: datetime) -> tuple[str, Any]:
    """In a worker: ("ok", the decision without routine objects) or ("error", (type, place, store?))."""
    from intake.poller import is_store_failure

    try:
        return "ok", portable(_poller.decide(mail, now=now))
    except Exception as exc:  # noqa: BLE001 - the poller counts it against the mail, as in-process
        return "error", (type(exc).__name__, where(exc), is_store_failure(exc))


def portable(decision: Decision) -> Decision:
    """``decision`` with each routine replaced by its id, to cross to another process."""
    reply = decision.reply
    if reply is not None:
        reply = replace(reply, routine=_id(reply.routine), offered=tuple(_id(r) for r in reply.offered))
    return replace(decision, reply=reply, offered=tuple(_id(r) for r in decision.offered))


def restore(decision: Decision, by_id: dict[str, Any]) -> Decision:
    """The routines of a :func:`portable` decision, looked up again among the poller's own."""
    reply = decision.reply
    if reply is not None:
        reply = replace(reply, routine=by_id.get(reply.routine) if reply.routine is not None else None,
                        offered=tuple(by_id[r] for r in reply.offered))
    return replace(decision, reply=reply, offered=tuple(by_id[r] for r in decision.offered))


def _id(routine: Any) -> Any:
    return getattr(routine, "id", routine)
