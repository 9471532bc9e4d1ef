"""The ticket list, its filters, its .xlsx export and the overview's statistics (read-only)."""

from __future__ import annotations

import io
import re
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from intake.engine import TicketError
from intake.store import Store
from intake.store.reports import SORTABLE

__all__ = ["EXPORT_COLUMNS", "SORTABLE", "Filters", "Page", "export_xlsx", "search", "stats"]

EXPORT_COLUMNS = ("ref", "routine", "request_type", "queue", "status", "requester", "assignee", "user_count",
                  "created_at", "updated_at", "closed_at", "purged_at")


#: Six or more digits in a row, possibly split by a hyphen or plus: the start of an identity number.
_IDENTITY = re.compile(r"\d{6}(?:\d{2})?[-+]?\d{0,4}")


@dataclass(frozen=True)
class Filters:
    """What the ticket list is narrowed to. Dates are ISO days, inclusive, on ``created_at``."""

    queue: str | None = None
    status: str | None = None
    routine: str | None = None
    request_type: str | None = None
    date_from: str | None = None
    date_to: str | None = None
    assignee: str | None = None
    #: Only tickets whose first mail came from one of these sources (a handler limited to some desks).
    sources: tuple[str, ...] | None = None
    q: str | None = None  # free text: reference, requester, subject, the form's fields (never a personnummer)

    def where(self) -> tuple[str, list[Any]]:
        clauses, params = [], []
        text = " ".join((self.q or "").split())[:200]
        if text:
            like = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            if _IDENTITY.search(text):
                # A personnummer (or something shaped like one) is never a search key: only references match.
                clauses.append("ref like ? escape '\\'")
                params.append(like)
            else:
                clauses.append("(ref like ? escape '\\' or requester like ? escape '\\' "
                               "or subject like ? escape '\\' or exists (select 1 from json_each(form, '$.fields') "
                               "j where j.value like ? escape '\\'))")
                params.extend([like] * 4)
        if self.sources is not None:
            marks = ",".join("?" * len(self.sources)) or "null"
            clauses.append(f"id in (select ticket_id from messages where source in ({marks}))")
            params.extend(self.sources)
        for column in ("queue", "status", "routine", "request_type", "assignee"):
            value = getattr(self, column)
            if value:
                clauses.append(f"{column} = ?")
                params.append(value)
        if self.date_from:
            clauses.append("created_at >= ?")
            params.append(date.fromisoformat(self.date_from).isoformat())
        if self.date_to:
            clauses.append("created_at < ?")
            params.append((date.fromisoformat(self.date_to) + timedelta(days=1)).isoformat())
        return (" where " + " and ".join(clauses)) if clauses else "", params


@dataclass(frozen=True)
class Page:
    """Where the ticket list can go from a page: the ids to pass as ``after`` (next) and ``before``
    (previous), None where there is no such page."""

    next_after: int | None = None
    prev_before: int | None = None


def search(
    store: Store,
    filters: Filters = Filters(),
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


def stats(store: Store, *, days: int = 30, now: datetime | None = None) -> dict[str, Any]:
    """The overview over the last ``days`` days (bounded, so it costs the same whatever the history):
    tickets per day, per queue and per status of the tickets created in the period, the reasons of the
    mail rejected in it, and the time to done of the tickets done in it."""
    now = now or datetime.now(UTC)
    first = (now - timedelta(days=days - 1)).date()
    since = first.isoformat()
    per_day = store.created_days_since(since)
    reasons = store.rejection_reason_counts(since)
    hours = [(datetime.fromisoformat(closed) - datetime.fromisoformat(created)).total_seconds() / 3600
             for created, closed in store.done_spans(since)]
    return {
        "days": days,
        "per_day": [((first + timedelta(days=i)).isoformat(), per_day.get((first + timedelta(days=i)).isoformat(), 0))
                    for i in range(days)],
        "per_queue": store.per_queue(since),
        "per_status": store.per_status(since),
        "rejection_reasons": sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])),
        "median_hours_to_done": statistics.median(hours) if hours else None,
        "done": len(hours),  # number of tickets done
        "hours_to_done": sorted(hours),
    }
