"""How staff read a point in time: Swedish date format (ÅÅÅÅ-MM-DD HH:MM) in one time zone, the same in
the web UI and the CLI. Stored times stay ISO 8601 in UTC; JSON output keeps them so."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

#: The one time zone staff see (the region's).
TZ = ZoneInfo("Europe/Stockholm")


def local_time(value: str | None) -> str:
    """``2026-11-24T08:00:00+00:00`` -> ``2026-11-24 09:00``; "" for nothing; text that is no time as it is."""
    if not value:
        return ""
    try:
        moment = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return str(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(TZ).strftime("%Y-%m-%d %H:%M")
