"""Kept counters: what the queue page and the overview count, read from small tables kept by triggers.

Migration ``015_counters`` creates ``ticket_counts`` (tickets now, per desk, routine, queue and status) and
``daily_counts`` (per day: tickets created, per queue and per present status of that day's tickets, tickets done
in buckets of time to done, rejected mail per reason code), and the triggers that keep them in the same
transaction as every change of the rows they count. Reading them costs the same whatever the history: the queue
page reads a row per (desk, routine, queue, status), the overview a few rows per day of its period.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from intake.store.base import StoreBase
from intake.store.migrations import COUNTER_SOURCES, DONE_BUCKET_HOURS


class CounterQueries(StoreBase):
    def daily_sums(self, metric: str, first_day: str) -> Counter[str]:
        """A daily count summed over the days from ``first_day`` (ISO day) on, per key."""
        return Counter({r["key"]: r["n"] for r in self.db.query(
            "select key, sum(n) as n from daily_counts where metric = ? and day >= ? group by key having n != 0",
            [metric, first_day])})

    def count_per_day(self, metric: str, first_day: str) -> Counter[str]:
        """A daily count (of a metric with a single key) per day from ``first_day`` on."""
        return Counter({r["day"]: r["n"] for r in self.db.query(
            "select day, sum(n) as n from daily_counts where metric = ? and day >= ? group by day having n != 0",
            [metric, first_day])})

    def done_histogram(self, first_day: str) -> list[tuple[float, float | None, int, float]]:
        """Tickets done (by closing day) from ``first_day`` on, in buckets of time to done:
        (lower hours, upper hours or None for the last, tickets, their summed hours), shortest first."""
        rows = {int(r["key"]): (r["n"], r["total"]) for r in self.db.query(
            "select key, sum(n) as n, sum(total) as total from daily_counts where metric = 'done' and day >= ? "
            "group by key having n != 0", [first_day])}
        out = []
        for i, lower in enumerate(DONE_BUCKET_HOURS):
            n, total = rows.get(int(lower * 3600), (0, 0))
            if n:
                upper = DONE_BUCKET_HOURS[i + 1] if i + 1 < len(DONE_BUCKET_HOURS) else None
                out.append((float(lower), None if upper is None else float(upper), n, total / 3600))
        return out

    # The overview's figures come from the daily counts kept by triggers (migration ``015_counters``): a few
    # rows per day of the period, however many tickets and mails the period or the history holds.

    def created_days_since(self, first_day: str) -> Counter[str]:
        """Tickets created per day (ISO day -> count) from ``first_day`` on."""
        return self.count_per_day("created", first_day)

    def rejection_reason_counts(self, since: str) -> Counter[str]:
        """Reason codes of the mail rejected from the day ``since`` (ISO) on, each counted once per mail."""
        return self.daily_sums("rejected", since[:10])

    def per_queue(self, since: str) -> list[tuple[str, int]]:
        """Tickets created since ``since`` (an ISO day) per queue."""
        counts = self.daily_sums("queue", since[:10])
        return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))

    def per_status(self, since: str) -> list[tuple[str, int]]:
        """Tickets created since ``since`` (an ISO day) per status (the status they have now)."""
        return sorted(self.daily_sums("status", since[:10]).items())

    # -- checking and rebuilding -------------------------------------------------------------------------

    def kept_counters(self) -> dict[str, set[tuple[Any, ...]]]:
        """The kept counts as rows, zero counts left out (what :meth:`counted_afresh` must equal)."""
        return {
            "ticket_counts": set(self.db.execute(
                "select source, routine, queue, status, n, 0 from ticket_counts where n != 0").fetchall()),
            "daily_counts": set(self.db.execute(
                "select day, metric, key, n, total from daily_counts where n != 0 or total != 0").fetchall()),
        }

    def counted_afresh(self) -> dict[str, set[tuple[Any, ...]]]:
        """The same counts counted now from every ticket and mail (a full scan: for tests and repairs only)."""
        out: dict[str, set[tuple[Any, ...]]] = {"ticket_counts": set(), "daily_counts": set()}
        for table, select in COUNTER_SOURCES:
            out[table] |= set(self.db.execute(select).fetchall())
        return out

    def kept_ticket_flags(self) -> set[tuple[int, str | None, int]]:
        """(id, source, unread) of every ticket as kept on it."""
        return set(self.db.execute("select id, source, unread from tickets").fetchall())

    def ticket_flags_afresh(self) -> set[tuple[int, str | None, int]]:
        """(id, source, unread) of every ticket worked out now from its mail and the reads of it (full scan)."""
        from intake.store.migrations import first_source_sql, unread_sql

        return set(self.db.execute(
            f"select t.id, {first_source_sql('t.id')}, {unread_sql('t.id')} from tickets t").fetchall())

    def rebuild_counters(self) -> None:
        """Count everything afresh into the kept tables and flags (a repair; the triggers keep them otherwise).
        Daily counts of deleted rows are lost by a rebuild: it counts what is there now."""
        from intake.store.migrations import first_source_sql, unread_sql

        with self.transaction() as db:
            db.execute("delete from ticket_counts")
            db.execute("delete from daily_counts")
            # Setting a ticket's source goes through the counting trigger: the counts are filled after it.
            db.execute(f"update tickets set source = {first_source_sql('tickets.id')}, "
                       f"unread = {unread_sql('tickets.id')}")
            db.execute("delete from ticket_counts")
            db.execute("delete from daily_counts")
            for table, select in COUNTER_SOURCES:
                columns = ("source, routine, queue, status, n" if table == "ticket_counts"
                           else "day, metric, key, n, total")
                db.execute(f"insert into {table} ({columns}) select {columns} from ({select})")
