"""The ticket list, its filters, its .xlsx export and the overview's statistics (read-only)."""

from __future__ import annotations

import io
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from intake.engine import TicketError
from intake.store import Store
from intake.store.reports import SORTABLE, Filters

__all__ = ["EXPORT_COLUMNS", "SORTABLE", "Filters", "Page", "export_xlsx", "search", "stats"]

EXPORT_COLUMNS = ("ref", "routine", "request_type", "queue", "status", "requester", "assignee", "user_count",
                  "created_at", "updated_at", "closed_at", "purged_at")


@dataclass(frozen=True)
class Page:
    """Where the ticket list can go from a page: the ids to pass as ``after`` (next) and ``before``
    (previous), None where there is no such page."""

    next_after: int | None = None
    prev_before: int | None = None


def search(
    store: Store,
    filters: Filters = Filters(),  # noqa: B008 - a frozen dataclass, safe to share
    *,
    sort: str = "created_at",
    descending: bool = True,
    after: int | None = None,
    before: int | None = None,
    per_page: int | None = 50,
) -> tuple[list[dict[str, Any]], Page]:
    """One page of the filtered, sorted ticket list (keyset pagination) and where to go from it.

    ``after``/``before``: the id of the ticket just before/after the wanted page (from :class:`Page`).
    Whether there is a next page comes from fetching ``per_page + 1`` rows, never from a count.
    ``per_page=None``: all rows, in order.
    """
    if sort not in SORTABLE:
        raise TicketError(f"cannot sort by {sort!r}")
    where, params = filters.where()
    if per_page is None:
        return store.search_tickets(where, params, sort=sort, descending=descending), Page()
    rows, page = _page(store, where, params, sort, descending, after, before, per_page)
    if after is None and before is None:
        # The first page starts with the tickets that have a follow-up nobody has opened, whatever the order.
        unread = store.unread_tickets(where, params, per_page)
        seen = {r["id"] for r in unread}
        rows = unread + [r for r in rows if r["id"] not in seen]
    return store.annotate_tickets(rows), page


def _page(store: Store, where: str, params: list[Any], sort: str, descending: bool, after: int | None,
          before: int | None, per_page: int) -> tuple[list[dict[str, Any]], Page]:
    if before is not None:
        # The previous page is the next one in the reversed order, read backwards.
        rows = store.search_tickets(where, params, sort=sort, descending=not descending, after_id=before,
                                    limit=per_page + 1)
        if len(rows) <= per_page:  # back at the start: the first page, full
            return _page(store, where, params, sort, descending, None, None, per_page)
        rows = rows[:per_page][::-1]
        return rows, Page(next_after=rows[-1]["id"], prev_before=rows[0]["id"])
    rows = store.search_tickets(where, params, sort=sort, descending=descending, after_id=after,
                                limit=per_page + 1)
    more = len(rows) > per_page
    rows = rows[:per_page]
    return rows, Page(next_after=rows[-1]["id"] if rows and more else None,
                      prev_before=rows[0]["id"] if rows and after is not None else None)


def export_xlsx(rows: list[dict[str, Any]], status_label: Callable[[dict[str, Any]], str] | None = None) -> bytes:
    """The ticket rows as an .xlsx workbook (Swedish headers; no form contents).

    ``status_label(row)`` names a ticket's status (the pack's label); by default the staff labels.
    """
    from openpyxl import Workbook

    from intake.web.labels import label

    wb = Workbook()
    ws = wb.active
    ws.title = "Ärenden"[:31]
    ws.append([label("column", c) for c in EXPORT_COLUMNS])
    for row in rows:
        values = []
        for column in EXPORT_COLUMNS:
            value = row.get(column)
            if column == "status":
                value = status_label(row) if status_label is not None else label("status", value)
            values.append(value)
        ws.append(values)
        for cell in ws[ws.max_row]:
            # Text from mail ("=HYPERLINK(...)") must never become a formula in the handler's Excel.
            if isinstance(cell.value, str) and cell.value.startswith("="):
                cell.data_type = "s"
    ws.freeze_panes = "A2"
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


#: The overview's bins of time to done: (label, from hours, to hours). Their bounds are among the kept
#: histogram's (:data:`intake.store.migrations.DONE_BUCKET_HOURS`), so the bins are exact.
DONE_BINS = (("< 1 timme", 0, 1), ("1–8 timmar", 1, 8), ("8–24 timmar", 8, 24), ("1–3 dagar", 24, 72),
             ("3–7 dagar", 72, 168), ("> 7 dagar", 168, None))


def stats(store: Store, *, days: int = 30, now: datetime | None = None) -> dict[str, Any]:
    """The overview over the last ``days`` days: tickets per day, per queue and per status of the tickets
    created in the period, the reasons of the mail rejected in it, and the time to done of the tickets done in
    it. Every figure is read from counts kept per day (``intake.store.counters``), so it costs the same
    whatever the history and the period's volume."""
    now = now or datetime.now(UTC)
    first = (now - timedelta(days=days - 1)).date()
    since = first.isoformat()
    per_day = store.created_days_since(since)
    reasons = store.rejection_reason_counts(since)
    histogram = store.done_histogram(since)
    median, exact = _median_hours(histogram)
    return {
        "days": days,
        "per_day": [((first + timedelta(days=i)).isoformat(), per_day.get((first + timedelta(days=i)).isoformat(), 0))
                    for i in range(days)],
        "per_queue": store.per_queue(since),
        "per_status": store.per_status(since),
        "rejection_reasons": sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])),
        "median_hours_to_done": median,
        "median_exact": exact,  # False: estimated within its histogram bucket
        "done": sum(n for _lo, _hi, n, _total in histogram),  # number of tickets done
        "done_bins": [(name, sum(n for lo, _hi, n, _total in histogram if lo >= start and (end is None or lo < end)))
                      for name, start, end in DONE_BINS],
    }


def _median_hours(histogram: list[tuple[float, float | None, int, float]]) -> tuple[float | None, bool]:
    """The median time to done from the kept histogram, and whether it is exact.

    Each bucket knows its tickets and their summed hours, i.e. their mean. A rank in a bucket is placed on an even
    spread around that mean, as wide as the bucket allows (to the nearer bound): exact when the bucket holds one
    ticket or tickets of one length, and otherwise within the bucket (about a fifth of its value wide)."""
    total = sum(n for _lo, _hi, n, _sum in histogram)
    if not total:
        return None, True

    def at(rank: int) -> tuple[float, bool]:  # the rank-th shortest (1-based)
        before = 0
        for lo, hi, n, hours in histogram:
            if before + n >= rank:
                mean = hours / n
                half = max(0.0, min(mean - lo, (hi - mean) if hi is not None else mean - lo))
                if n == 1 or half == 0:
                    return mean, True
                return mean - half + 2 * half * (rank - before - 0.5) / n, False
            before += n
        raise AssertionError("rank beyond the histogram")

    ranks = [(total + 1) // 2] if total % 2 else [total // 2, total // 2 + 1]
    values = [at(r) for r in ranks]
    return statistics.fmean(v for v, _ in values), all(e for _, e in values)
