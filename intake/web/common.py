"""What the web UI's blueprints share: the app's routines and settings, the per-request store and desk,
and the small helpers and template filters every page uses.

:func:`intake.web.app.create_app` puts a :class:`WebContext` in ``app.extensions["intake"]``; a blueprint
reaches it with :func:`ctx` and the request's store with :func:`store`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from flask import abort, current_app, g

from intake.config import Config
from intake.desk import TicketDesk
from intake.store import Store, open_store
from intake.timefmt import TZ, local_time  # noqa: F401 - re-exported for the app's filters
from intake.web.labels import label, labels
from rules.reasons import catalogue


@dataclass
class WebContext:
    config: Config
    routines: list[Any]
    settings: Any
    db_path: Any
    statuses: list[str] = field(default_factory=list)
    #: The desks (mailboxes) of the configuration (:func:`intake.app.desks_of`).
    desks: list[Any] = field(default_factory=list)

    @property
    def by_id(self) -> dict[str, Any]:
        return {r.id: r for r in self.routines}


def ctx() -> WebContext:
    return current_app.extensions["intake"]


def store() -> Store:
    if "store" not in g:
        g.store = open_store(ctx().db_path)
    return g.store


def desk() -> TicketDesk:
    c = ctx()
    from intake.app import folders_by_source

    return TicketDesk(store(), c.routines, c.settings, folders=c.config["mailbox.folders"],
                      source_folders=folders_by_source(c.config))


# -- desks (several mailboxes): a handler may be limited to some (``intake user desks``) ------------------


def visible_sources(only: str | None = None) -> tuple[str, ...] | None:
    """The sources whose tickets the user may see (``None``: all), narrowed to desk ``only`` if given."""
    allowed = store().user_desks(g.user.name)
    chosen = [d for d in ctx().desks if (not allowed or d.name in allowed) and (only is None or d.name == only)]
    if not allowed and only is None:
        return None
    return tuple(d.source for d in chosen)


def check_desk(ref: str) -> None:
    """404 for a ticket of a desk the user is not given (as if it did not exist)."""
    sources = visible_sources()
    if sources is None:
        return
    if store().ticket_source(store().ticket(ref)["id"]) not in sources:
        abort(404)


def close_store(_exc: BaseException | None = None) -> None:
    st = g.pop("store", None)
    if st is not None:
        st.db.conn.close()


# -- template filters -------------------------------------------------------------------------------


def filesize(n: int | None) -> str:
    n = n or 0
    return f"{n / 1024:.0f} kB" if n >= 1024 else f"{n} B"


def reason_text(reason: str | dict[str, Any]) -> str:
    """The Swedish sentence of a reason (a stored ``{code, detail, params}``, or a bare code as on the
    overview), filled with its facts ("ett personnummer på rad 3"); a fact not known is said in general
    words (labels.toml ``[reason_fact]``), never shown as a placeholder."""
    code, params = (reason, {}) if isinstance(reason, str) else (reason.get("code", ""), reason.get("params") or {})
    template = catalogue().get(code, "")

    def fill(m: re.Match[str]) -> str:
        key = m.group(1)
        if key in params:
            return str(params[key])
        return label("reason_fact", key) if key in labels().get("reason_fact", {}) else ""

    return " ".join(re.sub(r"\{(\w+)\}", fill, template).replace(" .", ".").replace("( ", "(").split())


def event_summary(event: dict[str, Any], label: Any = label) -> str:
    data, kind = event["data"], event["kind"]
    if kind == "status_changed":
        return f"{label('status', data.get('from'))} → {label('status', data.get('to'))}"
    if kind == "assigned":
        return f"→ {data.get('to') or '–'}"
    if kind in ("reply_queued", "reply_sent", "reply_failed"):
        return label("reply_kind", data.get("kind"))
    if kind == "received":
        return label("verdict", data.get("verdict")) + (" (" + ", ".join(data.get("reasons") or []) + ")"
                                                        if data.get("reasons") else "")
    if kind == "viewed":
        return data.get("what", "")
    if kind == "ticket_created":
        return data.get("ref", "")
    if kind == "checklist_task":
        return f"{data.get('task', '')}: {label('task_action', data.get('action'))}"
    return ""


def state_label(by_id: dict[str, Any], ticket: dict[str, Any]) -> str:
    routine = by_id.get(ticket["routine"])
    return routine.lifecycle.label(ticket["status"]) if routine is not None else label("status", ticket["status"])


def shower(routine: Any) -> Any:
    """show(field id, stored value) -> how it reads for staff (``FieldSpec.display``: lists joined, an
    action by its label, Ja/Nej); a field the pack does not know is shown as stored."""
    schema = getattr(routine, "form_schema", None)

    def show(field_id: str, value: Any) -> str:
        spec = schema.spec(field_id) if schema is not None else None
        if spec is not None:
            return spec.display(value)
        return "" if value is None else ", ".join(map(str, value)) if isinstance(value, list) else str(value)

    return show
