"""``intake run``: poll and send on a schedule until SIGTERM or SIGINT, then stop cleanly."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.background import BackgroundScheduler

from intake.app import desk_name_of, open_config_store
from intake.config import Config
from intake.engine import timers_job
from intake.lock import InstanceLock
from intake.logs import where
from intake.outbox import Outbox
from intake.poller import Poller, Pollers, PollResult, StoreFailure
from intake.register import purge_register_job
from intake.retention import purge_job
from intake.sources.base import SourceAuthError, SourceError
from intake.sources.watch import Backoff, IdleWatcher, until_iso
from intake.store import Store

log = logging.getLogger("intake.run")


def _guarded(name: str, fn: Callable[[], object]) -> Callable[[], None]:
    def job() -> None:
        try:
            fn()
        except SourceError as exc:
            # The mailbox is down or refused us: nothing was lost, the next run tries again.
            log.error("%s: mailbox unavailable: %s", name, exc)
        except StoreFailure as exc:
            # The database was locked or failing: the mail stays where it is, the next run tries again.
            log.error("%s: %s; the next run tries again", name, exc)
        except Exception as exc:  # noqa: BLE001 - one bad run must not stop the service
            log.error("%s failed: %s at %s", name, type(exc).__name__, where(exc))

    return job


def run_forever(config: Config, poller: Poller | Pollers, outbox: Outbox, *,
                stop: threading.Event | None = None) -> None:
    """Run the poll and outbox jobs on their intervals until a stop signal; holds the instance lock.

    Polling and sending run beside each other, each in a worker of its own, so a slow or silent SMTP server
    never delays intake. ``poller`` and ``outbox`` must each have a store connection of their own: SQLite (WAL,
    ``BEGIN IMMEDIATE`` and a busy timeout) keeps the two writers apart.

    Each mailbox has a poll job of its own, all in the one poll worker (one writer for intake), and backs off
    on its own when it fails. An IMAP mailbox with IDLE also has a watcher thread that makes its poll job run
    as soon as the server announces mail; the poll interval still runs as the safety net.
    """
    stop = stop or threading.Event()
    if poller.store is outbox.store:
        raise ValueError("the poller and the outbox need a store connection each (open_config_store)")
    pollers = poller.pollers if isinstance(poller, Pollers) else [poller]
    with InstanceLock(config.lock_path, str(config.db_path)):
        # One worker per job kind: a job is never overlapped by itself (max_instances=1, coalesce), but the
        # outbox job runs while a poll does. Other jobs (purge) share the poll's worker.
        scheduler = BackgroundScheduler(timezone=UTC, executors={
            "default": ThreadPoolExecutor(1),
            "outbox": ThreadPoolExecutor(1),
        })
        now = datetime.now(UTC)

        gate = RunNow(scheduler)

        def wake_outbox() -> None:
            # Replies go out right after the poll that queued them, in the outbox's own worker.
            gate.run_now("outbox")

        status_store = open_config_store(config)  # the watchers and the poll worker note status through it
        status_store.forget_mailboxes_except([p.mailbox.name if p.mailbox else "default" for p in pollers])
        desks = [MailboxJob(config, p, gate, status_store, wake_outbox, stop) for p in pollers]
        for desk in desks:
            desk.schedule(now)
        scheduler.add_job(_guarded("outbox", outbox.send_due), "interval",
                          seconds=config["outbox"]["interval_seconds"], next_run_time=now,
                          max_instances=1, coalesce=True, id="outbox", executor="outbox")

        # Timers of every mailbox's tickets, in the poll worker. Their mail carries no mailbox identity of its
        # own: the outbox sends it From the mailbox the ticket's mail came in through.
        every_routine = list({r.id: r for p in pollers for r in p.routines}.values())
        timer_settings = replace(pollers[0].settings, mailbox="")
        scheduler.add_job(_guarded("timers", timers_job(poller.store, every_routine, timer_settings)), "interval",
                          seconds=60, next_run_time=now, max_instances=1, coalesce=True, id="timers")
        # Retention: personal data of long-closed tickets is purged once a day.
        scheduler.add_job(_guarded("purge", purge_job(config)), "interval", hours=24, next_run_time=now,
                          max_instances=1, coalesce=True, id="purge")
        # The access register keeps ended access for its own retention period (register.retention_days).
        register_purge = purge_register_job(config)
        if register_purge is not None:
            scheduler.add_job(_guarded("register-purge", register_purge), "interval", hours=24, next_run_time=now,
                              max_instances=1, coalesce=True, id="register-purge")

        def on_signal(signum: int, _frame: object) -> None:
            log.info("received %s, stopping after the running job", signal.Signals(signum).name)
            stop.set()

        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, on_signal)
            signal.signal(signal.SIGINT, on_signal)
        scheduler.start()
        for desk in desks:
            desk.start_watcher()
        log.info("running %d mailbox(es): poll every %ss, outbox every %ss",
                 len(desks), config["poll"]["interval_seconds"], config["outbox"]["interval_seconds"])
        try:
            stop.wait()
        finally:
            for desk in desks:
                desk.stop_watcher()
            gate.close()  # no job moves another from now on (that would wait for the shutdown that waits for it)
            scheduler.shutdown(wait=True)  # lets a running poll finish its current mail
            for desk in desks:
                desk.status(mode="stopped")
            log.info("stopped")


class RunNow:
    """Makes a job run now, from a job or a watcher thread, until :meth:`close`.

    ``scheduler.shutdown(wait=True)`` holds the scheduler's job-store lock while it waits for running jobs,
    and ``modify_job`` takes that lock: a job moving another during shutdown would wait forever. Closing the
    gate first (under its own lock) makes sure no job is inside ``modify_job`` once the shutdown begins.
    """

    def __init__(self, scheduler: BackgroundScheduler):
        self.scheduler = scheduler
        self._lock = threading.Lock()
        self._open = True

    def run_now(self, job_id: str) -> None:
        with self._lock:
            if not self._open:
                return
            try:
                self.scheduler.modify_job(job_id, next_run_time=datetime.now(UTC))
            except JobLookupError:
                pass

    def close(self) -> None:
        with self._lock:
            self._open = False


class MailboxJob:
    """One mailbox in ``intake run``: its poll job, its backoff, its IDLE watcher and its status row."""

    def __init__(self, config: Config, poller: Poller, gate: RunNow, status_store: Store,
                 wake_outbox: Callable[[], None], stop: threading.Event):
        box = poller.mailbox or config.mailboxes[0]
        self.box, self.poller, self.gate = box, poller, gate
        self.scheduler = gate.scheduler
        self.name = box.name
        self.job_id = "poll" if len(config.mailboxes) == 1 else f"poll:{box.name}"
        self.interval = config["poll"]["interval_seconds"]
        self.status_store = status_store
        self.wake_outbox = wake_outbox
        self.backoff = Backoff(max_seconds=box["backoff_max_seconds"], auth_seconds=box["auth_backoff_seconds"],
                               auth_max_seconds=box["auth_backoff_max_seconds"])
        self._lock = threading.Lock()
        self._running = False
        self._pending = False
        self.watcher: IdleWatcher | None = None
        if box.kind == "imap" and box["idle"]:
            self.watcher = IdleWatcher(box.name, poller.source_factory, self.wake, backoff=self.backoff,
                                       refresh_seconds=box["idle_refresh_seconds"], stop=stop, status=self.status)
        self.status(mode="starting", desk_name=desk_name_of(box, poller.routines), source=_source_name(poller),
                    failures=0, next_try_at=None, polls=0, login_failures=0)

    def status(self, **values: object) -> None:
        try:
            self.status_store.update_mailbox_status(self.name, **values)  # type: ignore[arg-type]
        except Exception as exc:  # noqa: BLE001 - the status table is a view; never let it stop a mailbox
            log.warning("%s: status not recorded (%s)", self.name, type(exc).__name__)

    def schedule(self, now: datetime) -> None:
        # With IDLE the watcher asks for the first poll once connected (one login at a time at start).
        first = now + timedelta(seconds=self.interval) if self.watcher is not None else now
        self.scheduler.add_job(self.run, "interval", seconds=self.interval, next_run_time=first,
                               max_instances=1, coalesce=True, misfire_grace_time=None, id=self.job_id)

    def start_watcher(self) -> None:
        if self.watcher is not None:
            self.watcher.start()

    def stop_watcher(self) -> None:
        if self.watcher is not None and self.watcher.is_alive():
            self.watcher.join(timeout=10)

    def wake(self) -> None:
        """Poll now (called by the IDLE watcher); a poll already running polls once more when it ends."""
        with self._lock:
            self._pending = True
            if self._running:
                return
        self.gate.run_now(self.job_id)

    def run(self) -> None:
        """The poll job: poll (again while woken meanwhile), unless the mailbox is backing off."""
        if self.backoff.remaining() > 0:
            return  # tried again only when its backoff step is over: no login (and no log line) per interval
        if self.watcher is not None and not self.watcher.tried.is_set():
            return  # the watcher logs in first and asks for the first poll (one login at a time at start)
        with self._lock:
            self._running = True
        try:
            while True:
                with self._lock:
                    self._pending = False
                if not self._poll_once():
                    break
                with self._lock:
                    if not self._pending:
                        break
        finally:
            with self._lock:
                self._running = False

    def _poll_once(self) -> bool:
        try:
            result: PollResult = self.poller.poll_once()
        except SourceError as exc:
            delay = self.backoff.failed(exc)
            auth = isinstance(exc, SourceAuthError)
            log.error("%s: mailbox unavailable: %s; next try in %.0f s", self.name, exc, delay)
            self.status(mode="backoff", last_error=str(exc)[:300], last_error_at=_now_iso(),
                        next_try_at=until_iso(delay), failures=self.backoff.failures,
                        increment={"login_failures": 1} if auth else None)
            return False
        except StoreFailure as exc:
            # The database was locked or failing: the mail stays where it is, the next run tries again.
            log.error("%s: %s; the next run tries again", self.name, exc)
            self.status(last_error=str(exc)[:300], last_error_at=_now_iso())
            return False
        except Exception as exc:  # noqa: BLE001 - one bad run must not stop the service
            log.error("%s: poll failed: %s at %s", self.name, type(exc).__name__, where(exc))
            self.status(last_error=f"{type(exc).__name__} at {where(exc)}", last_error_at=_now_iso())
            return False
        self.backoff.succeeded()
        in_idle = self.watcher is not None and self.watcher.in_idle.is_set()
        self.status(mode="idle" if in_idle else "polling", last_poll_at=_now_iso(),
                    last_handled=result.seen - result.left_parked, failures=0, next_try_at=None,
                    increment={"polls": 1})
        if result.recorded:
            self.wake_outbox()
        return True


def _source_name(poller: Poller) -> str:
    try:
        return poller.source_factory().name
    except Exception:  # noqa: BLE001 - only a label for the status table
        return ""


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
