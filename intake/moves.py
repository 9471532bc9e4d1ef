"""Server moves a handler decided on the desk, carried out by the poller (which holds the mailbox session),
and the poll-run record the health page and the auth back-off read.

The web process never connects to the mailbox: releasing or rejecting a held mail records the intended
move in ``pending_moves`` (:func:`request_held_move`); the next poll calls :func:`carry_out` first.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from intake.sources.base import SourceError, SourceUnavailable
from intake.store import Store

log = logging.getLogger("intake.poll")

#: After an authentication failure the next login waits base * 2**(failures-1) seconds, at most cap.
AUTH_BACKOFF_BASE = 60
AUTH_BACKOFF_CAP = 3600


def request_held_move(store: Store, msg: dict[str, Any], folders: dict[str, Any], *, personal_data: bool,
                      user: str) -> int | None:
    """Record where a judged held mail goes on the server: the personal-data folder (or nowhere, per
    ``personal_data_action``) when rejected for personal data, the accepted folder when released. Call inside
    the decision's transaction. ``None`` when the mail is not in the held folder (never moved there)."""
    held = folders.get("held", "Intake/Held")
    if msg.get("moved_to") != held or not msg.get("source"):
        return None
    if personal_data:
        delete = folders.get("personal_data_action", "move") == "delete"
        action, target = ("delete", None) if delete else ("move", folders.get("personal_data", "Intake/PersonalData"))
    else:
        action, target = "move", folders.get("accepted", "Intake/Accepted")
    return store.request_move(msg["id"], source=msg["source"], uid=msg["uid"] or "", uidvalidity=msg["uidvalidity"],
                              from_folder=held, action=action, to_folder=target, user=user)


def carry_out(store: Store, source: Any) -> int:
    """Do the moves waiting for ``source``; returns how many were done. A move that fails stays waiting
    (its error kept for the health page); a mail no longer in its folder is done with a note."""
    relocate = getattr(source, "relocate", None)
    done = 0
    for move in store.pending_moves(source.name):
        if relocate is None:
            break
        msg = store.message(move["message_pk"])
        try:
            found = relocate(move["from_folder"], msg["message_id"] or "",
                             move["to_folder"] if move["action"] == "move" else None)
        except SourceUnavailable:
            raise
        except SourceError as exc:
            store.finish_move(move["id"], error=str(exc)[:300])
            log.error("held mail %s: %s in %s failed: %s", move["message_pk"], move["action"], move["from_folder"], exc)
            continue
        store.finish_move(move["id"], error=None if found else "not found in the folder (moved by someone else?)",
                          done=True)
        done += 1
        log.info("held mail %s: %s from %s%s", move["message_pk"], move["action"], move["from_folder"],
                 "" if found else " (not found there)")
    return done


def error_kind(exc: BaseException) -> str:
    text = str(exc)
    # A refused login (the server answered), not a connection lost during it.
    if not isinstance(exc, SourceUnavailable) and any(w in text.split(" failed", 1)[0] for w in ("LOGIN", "AUTH")):
        return "auth"
    if "TLS" in text or "SSL" in text or "certificate" in text:
        return "tls"
    if type(exc).__name__ == "StoreFailure":
        return "store"
    if isinstance(exc, SourceUnavailable):
        return "connect"
    return "other"


def backoff_until(store: Store, source_name: str, *, base: int = AUTH_BACKOFF_BASE,
                  cap: int = AUTH_BACKOFF_CAP) -> datetime | None:
    """When the next login may be tried after authentication failures in a row, or ``None`` (no wait)."""
    failures, last = store.auth_failures_in_a_row(source_name)
    if not failures or not last:
        return None
    wait = min(cap, base * 2 ** (failures - 1))
    until = datetime.fromisoformat(last) + timedelta(seconds=wait)
    return until if until > datetime.now(UTC) else None
