"""Waiting for mail: per-mailbox backoff, and a watcher thread that holds an IMAP connection in IDLE.

The watcher never reads or moves mail. When the server announces new mail (or after every reconnect, which
may have missed announcements) it calls ``wake``, which makes the mailbox's ordinary poll run now: there is
still one code path that records and then moves, in the scheduler's single poll worker.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from intake.sources.base import SourceAuthError, SourceError

log = logging.getLogger("intake.watch")

#: First wait after a mailbox could not be reached; doubles per failure up to ``backoff_max_seconds``.
FIRST_BACKOFF_SECONDS = 1.0


class Backoff:
    """When a failing mailbox may be tried again: capped exponential, longer after a refused login.

    Shared by a mailbox's poll job and its watcher, so the two never add up to more logins than one
    backoff step allows (a lockout policy counts every refused login of a shared mailbox).
    """

    def __init__(self, *, max_seconds: float, auth_seconds: float, auth_max_seconds: float,
                 first_seconds: float = FIRST_BACKOFF_SECONDS, clock: Callable[[], float] = time.monotonic):
        self.max_seconds = max_seconds
        self.auth_seconds = auth_seconds
        self.auth_max_seconds = auth_max_seconds
        self.first_seconds = first_seconds
        self.clock = clock
        self.failures = 0
        self._until = 0.0
        self._lock = threading.Lock()

    def remaining(self) -> float:
        """Seconds until the mailbox may be tried again (0: now)."""
        with self._lock:
            return max(0.0, self._until - self.clock())

    def failed(self, exc: BaseException) -> float:
        """Note a failed try; returns how long to wait before the next."""
        with self._lock:
            self.failures += 1
            step = self.failures - 1
            if isinstance(exc, SourceAuthError):
                delay = min(self.auth_seconds * 2**step, self.auth_max_seconds)
            else:
                delay = min(self.first_seconds * 2**step, self.max_seconds)
            self._until = self.clock() + delay
            return delay

    def succeeded(self) -> None:
        with self._lock:
            self.failures = 0
            self._until = 0.0


def until_iso(delay: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=delay)).isoformat(timespec="seconds")


class IdleWatcher(threading.Thread):
    """Holds one IMAP connection of a mailbox in IDLE and calls ``wake`` when mail may have arrived.

    ``source_factory`` makes an :class:`~intake.sources.imap.ImapSource`; ``status`` records the mode and
    errors (``intake status``). Without the IDLE capability it records ``polling`` and ends: the mailbox's
    poll job alone serves it, as without IDLE.
    """

    def __init__(self, name: str, source_factory: Callable[[], Any], wake: Callable[[], None], *,
                 backoff: Backoff, refresh_seconds: float, stop: threading.Event,
                 status: Callable[..., None]):
        super().__init__(name=f"idle:{name}", daemon=True)
        self.mailbox = name
        self.source_factory = source_factory
        self.wake = wake
        self.backoff = backoff
        self.refresh_seconds = refresh_seconds
        self.stop_event = stop
        self.status = status
        self.in_idle = threading.Event()  # set while the connection is in IDLE (the poll job reads it)
        self.tried = threading.Event()  # set once the first connection attempt is over (either way)
        self.reconnects = 0

    def run(self) -> None:
        stop = self.stop_event
        while not stop.is_set():
            wait = self.backoff.remaining()
            if wait > 0:
                stop.wait(wait)
                continue
            try:
                if not self._watch():
                    self.tried.set()
                    return
            except SourceError as exc:
                self.in_idle.clear()
                if stop.is_set():
                    break
                delay = self.backoff.failed(exc)
                self._failed(exc, delay)
                self.tried.set()
                stop.wait(delay)
            except Exception as exc:  # noqa: BLE001 - the watcher must outlive any one error; polling goes on
                self.in_idle.clear()
                log.error("%s: IDLE watcher error %s; retrying", self.mailbox, type(exc).__name__)
                delay = self.backoff.failed(exc)
                self.tried.set()
                stop.wait(delay)
        self.in_idle.clear()
        self.tried.set()

    def _watch(self) -> bool:
        """One connection: IDLE until it drops or the service stops; ``False`` when the server lacks IDLE."""
        stop = self.stop_event
        with self.source_factory() as source:
            if not source.has_idle():
                log.info("%s: the server does not offer IDLE; polling only", self.mailbox)
                self.status(mode="polling")
                self.tried.set()
                self.wake()
                return False
            self.backoff.succeeded()
            self.in_idle.set()
            self.status(mode="idle", failures=0, next_try_at=None)
            if self.reconnects:
                log.info("%s: reconnected; IDLE again", self.mailbox)
            self.reconnects += 1
            self.tried.set()
            # A full UID SEARCH after every (re)connect: announcements made while we were away are lost.
            self.wake()
            while not stop.is_set():
                if source.idle_wait(self.refresh_seconds, stop):
                    self.wake()
        return True

    def _failed(self, exc: SourceError, delay: float) -> None:
        auth = isinstance(exc, SourceAuthError)
        # Logged once per backoff step (never per interval): a refused login is not retried before the wait.
        log.error("%s: %s; next try in %.0f s%s", self.mailbox, exc, delay,
                  " (login refused: waiting long, a lockout policy may be counting)" if auth else "")
        self.status(mode="backoff", last_error=str(exc)[:300], last_error_at=datetime.now(UTC).isoformat(
            timespec="seconds"), next_try_at=until_iso(delay), failures=self.backoff.failures,
            increment={"login_failures": 1} if auth else None)
