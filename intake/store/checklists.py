"""Queries on tickets' checklists: each ticket's own copy of its routine's tasks (see rules.checklists)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from intake.store.base import NotFoundError, StoreBase


def _row(row: dict[str, Any]) -> dict[str, Any]:
    row = dict(row)
    row["after"] = json.loads(row.get("after") or "[]")
    row["shows"] = json.loads(row.get("shows") or "[]")
    row["required"] = bool(row.get("required"))
    return row


class ChecklistQueries(StoreBase):
    def add_checklist(self, ticket_id: int, tasks: Iterable[dict[str, Any]]) -> int:
        """Copy a checklist onto a ticket (rows from :func:`rules.checklists.instantiate`). Call in a transaction."""
        n = 0
        for t in tasks:
            self.db["checklist_tasks"].insert({
                "ticket_id": ticket_id, "position": t["position"], "task": t["task"], "title": t["title"],
                "actor": t["actor"], "link": t["link"], "after": json.dumps(t["after"]),
                "record_label": t["record_label"], "shows": json.dumps(t["shows"]), "required": int(t["required"]),
                "state": t["state"], "note": t["note"],
            })
            n += 1
        return n

    def checklist(self, ticket_id: int) -> list[dict[str, Any]]:
        """The ticket's tasks in order ([] when it has no checklist)."""
        return [_row(r) for r in self.db.query(
            "select * from checklist_tasks where ticket_id = ? order by position", [ticket_id])]

    def checklist_task(self, ticket_id: int, task: str) -> dict[str, Any]:
        rows = list(self.db.query("select * from checklist_tasks where ticket_id = ? and task = ?", [ticket_id, task]))
        if not rows:
            raise NotFoundError(f"no task {task!r} on this ticket")
        return _row(rows[0])

    def update_checklist_task(self, task_pk: int, changes: dict[str, Any]) -> None:
        self.db["checklist_tasks"].update(task_pk, changes)

    def open_required_tasks(self, ticket_id: int) -> int:
        (n,) = self.db.execute("select count(*) from checklist_tasks where ticket_id = ? and state = 'open' "
                               "and required = 1", [ticket_id]).fetchone()
        return int(n)

    def checklist_progress(self, ticket_ids: list[int]) -> dict[int, tuple[int, int]]:
        """Ticket id -> (done, applicable) for the tickets that have a checklist."""
        if not ticket_ids:
            return {}
        marks = ",".join("?" * len(ticket_ids))
        rows = self.db.execute(
            f"select ticket_id, sum(state = 'done'), sum(state != 'not_applicable') from checklist_tasks "
            f"where ticket_id in ({marks}) group by ticket_id", ticket_ids).fetchall()
        return {tid: (int(done or 0), int(total or 0)) for tid, done, total in rows}

    def open_tasks_by_actor(self) -> list[dict[str, Any]]:
        """Open tasks of open tickets counted per actor role (the overview): actor, open, blocked-free or not."""
        return list(self.db.query(
            "select coalesce(nullif(c.actor, ''), '–') as actor, count(*) as n, count(distinct c.ticket_id) as tickets "
            "from checklist_tasks c join tickets t on t.id = c.ticket_id "
            "where c.state = 'open' and t.closed_at is null group by 1 order by n desc, actor"))

    def purge_checklist_values(self, ticket_id: int) -> int:
        """Retention: forget recorded values (an RSID, an order number) of a purged ticket."""
        return self.db.execute("update checklist_tasks set value = null where ticket_id = ? and value is not null",
                               [ticket_id]).rowcount
