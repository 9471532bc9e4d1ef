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

__all__ = ["EXPORT_COLUMNS", "SORTABLE", "Filters", "export_xlsx", "search", "stats"]

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


def search(
    store: Store,
    filters: Filters = Filters(),
    *,
    sort: str = "created_at",
    descending: bool = True,
    page: int = 1,
    per_page: int | None = 50,
) -> tuple[list[dict[str, Any]], int]:
    """One page of the filtered, sorted ticket list and the total count. ``per_page=None``: all rows."""
    if sort not in SORTABLE:
        raise TicketError(f"cannot sort by {sort!r}")
    where, params = filters.where()
    return store.search_tickets(where, params, sort=sort, descending=descending, page=page, per_page=per_page)


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
    """Tickets per day (last ``days`` days) and per queue, rejection reasons, and time to done."""
    now = now or datetime.now(UTC)
    first = (now - timedelta(days=days - 1)).date()
    per_day = store.created_days_since(first.isoformat())
    reasons = store.rejection_reason_counts()
    hours = [(datetime.fromisoformat(closed) - datetime.fromisoformat(created)).total_seconds() / 3600
             for created, closed in store.done_spans()]
    return {
        "per_day": [((first + timedelta(days=i)).isoformat(), per_day.get((first + timedelta(days=i)).isoformat(), 0))
                    for i in range(days)],
        "per_queue": store.per_queue(),
        "per_status": store.per_status(),
        "rejection_reasons": sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])),
        "median_hours_to_done": statistics.median(hours) if hours else None,
        "done": len(hours),  # number of tickets done
        "hours_to_done": sorted(hours),
    }
