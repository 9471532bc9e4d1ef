"""``intake run``: poll and send on a schedule until SIGTERM or SIGINT, then stop cleanly."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from datetime import UTC, datetime

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

from intake.config import Config
from intake.engine import timers_job
from intake.lock import InstanceLock
from intake.logs import where
from intake.outbox import Outbox
from intake.poller import Poller, StoreFailure
from intake.retention import purge_job
from intake.sources.base import SourceError

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


def run_forever(config: Config, poller: Poller, outbox: Outbox, *, stop: threading.Event | None = None) -> None:
    """Run the poll and outbox jobs on their intervals until a stop signal; holds the instance lock.

    Polling and sending run beside each other, each in a worker of its own, so a slow or silent SMTP server
    never delays intake. ``poller`` and ``outbox`` must each have a store connection of their own: SQLite (WAL,
    ``BEGIN IMMEDIATE`` and a busy timeout) keeps the two writers apart.
    """
    stop = stop or threading.Event()
    if poller.store is outbox.store:
        raise ValueError("the poller and the outbox need a store connection each (open_config_store)")
    with InstanceLock(config.lock_path, str(config.db_path)):
        # One worker per job kind: a job is never overlapped by itself (max_instances=1, coalesce), but the
        # outbox job runs while a poll does. Other jobs (purge) share the poll's worker.
        scheduler = BackgroundScheduler(timezone=UTC, executors={
            "default": ThreadPoolExecutor(1),
            "outbox": ThreadPoolExecutor(1),
        })
        now = datetime.now(UTC)

        def poll_then_wake_outbox() -> None:
            result = poller.poll_once(respect_backoff=True)
            if result.recorded:
                # Replies go out right after the poll that queued them, in the outbox's own worker.
                scheduler.modify_job("outbox", next_run_time=datetime.now(UTC))

        scheduler.add_job(_guarded("poll", poll_then_wake_outbox), "interval",
                          seconds=config["poll"]["interval_seconds"], next_run_time=now,
                          max_instances=1, coalesce=True, id="poll")
        scheduler.add_job(_guarded("outbox", outbox.send_due), "interval",
                          seconds=config["outbox"]["interval_seconds"], next_run_time=now,
                          max_instances=1, coalesce=True, id="outbox", executor="outbox")

        scheduler.add_job(_guarded("timers", timers_job(poller.store, poller.routines, poller.settings)), "interval",
                          seconds=60, next_run_time=now, max_instances=1, coalesce=True, id="timers")
        # Retention: personal data of long-closed tickets is purged once a day.
        scheduler.add_job(_guarded("purge", purge_job(config)), "interval", hours=24, next_run_time=now,
                          max_instances=1, coalesce=True, id="purge")

        def on_signal(signum: int, _frame: object) -> None:
            log.info("received %s, stopping after the running job", signal.Signals(signum).name)
            stop.set()

        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, on_signal)
            signal.signal(signal.SIGINT, on_signal)
        scheduler.start()
        log.info("running: poll every %ss, outbox every %ss",
                 config["poll"]["interval_seconds"], config["outbox"]["interval_seconds"])
        try:
            stop.wait()
        finally:
            scheduler.shutdown(wait=True)  # lets a running poll finish its current mail
            log.info("stopped")
