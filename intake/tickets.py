"""Former home of the handler's ticket work, now split by job; kept so older imports keep working.

Desk actions: :mod:`intake.desk`; held mail: :mod:`intake.held`; the list, export and statistics:
:mod:`intake.reports`; retention: :mod:`intake.retention`; statuses and transitions are each
pack's ``[lifecycle]`` (:mod:`rules.lifecycle`), carried out by :mod:`intake.engine`.
"""

from __future__ import annotations

from intake.desk import TicketDesk, TicketError
from intake.held import HeldMail
from intake.reports import EXPORT_COLUMNS, SORTABLE, Filters, export_xlsx, search, stats
from intake.retention import PurgeResult, purge, purge_job

__all__ = ["EXPORT_COLUMNS", "SORTABLE", "Filters", "HeldMail", "PurgeResult", "TicketDesk", "TicketError",
           "export_xlsx", "purge", "purge_job", "search", "stats"]
