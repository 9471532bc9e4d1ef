"""Queries on approvals: who was asked to approve a ticket, their tokens (hashed), and the decision."""

from __future__ import annotations

import re
from typing import Any

from intake.store.base import StoreBase

_TAG = re.compile(r"\[ATTEST-[0-9a-f]{16,64}\]", re.IGNORECASE)
_LINK = re.compile(r"/attest/[0-9a-f]{16,64}", re.IGNORECASE)


class ApprovalQueries(StoreBase):
    def add_approval(self, ticket_id: int, attestant: str, now_iso: str) -> int:
        """A pending approval; any other pending one of the ticket is replaced (its tokens revoked)."""
        for row in self.db.query("select id from approvals where ticket_id = ? and status = 'pending'", [ticket_id]):
            self.end_approval(row["id"], "replaced", now_iso)
        return self.db["approvals"].insert({
            "ticket_id": ticket_id, "attestant": attestant, "status": "pending", "requested_at": now_iso,
            "reminders": 0,
        }).last_pk

    def add_approval_token(self, approval_id: int, token_sha: str, now_iso: str, expires_iso: str) -> int:
        return self.db["approval_tokens"].insert({
            "approval_id": approval_id, "token_sha": token_sha, "created_at": now_iso, "expires_at": expires_iso,
        }).last_pk

    def approval(self, approval_id: int) -> dict[str, Any] | None:
        rows = list(self.db.query("select * from approvals where id = ?", [approval_id]))
        return rows[0] if rows else None

    def approvals(self, ticket_id: int) -> list[dict[str, Any]]:
        """Every approval of a ticket, oldest first."""
        return list(self.db.query("select * from approvals where ticket_id = ? order by id", [ticket_id]))

    def pending_approval(self, ticket_id: int) -> dict[str, Any] | None:
        rows = list(self.db.query(
            "select * from approvals where ticket_id = ? and status = 'pending' order by id desc limit 1",
            [ticket_id]))
        return rows[0] if rows else None

    def approval_by_token(self, token_sha: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """The (token row, approval row) of a hashed token, or None."""
        rows = list(self.db.query("select * from approval_tokens where token_sha = ?", [token_sha]))
        if not rows:
            return None
        approval = self.approval(rows[0]["approval_id"])
        return (rows[0], approval) if approval is not None else None

    def use_approval_token(self, token_sha: str, now_iso: str) -> bool:
        """Spend a token once: False when it was used, revoked or expired already. Call in a transaction."""
        cur = self.db.execute(
            "update approval_tokens set used_at = ? where token_sha = ? and used_at is null and revoked_at is null "
            "and expires_at > ?", [now_iso, token_sha, now_iso])
        return cur.rowcount == 1

    def update_approval(self, approval_id: int, values: dict[str, Any]) -> None:
        self.db["approvals"].update(approval_id, values)

    def end_approval(self, approval_id: int, status: str, now_iso: str, **values: Any) -> None:
        """Close an approval (decided, replaced, expired): every token of it stops working, and the tokens are
        blanked out of the mails already sent about it (the outbox keeps no usable secret)."""
        self.db["approvals"].update(approval_id, {"status": status, **values})
        self.db.execute("update approval_tokens set revoked_at = ? where approval_id = ? and used_at is null "
                        "and revoked_at is null", [now_iso, approval_id])
        approval = self.approval(approval_id)
        if approval is not None:
            self.redact_approval_tokens(approval["ticket_id"])

    def redact_approval_tokens(self, ticket_id: int) -> int:
        """Blank ``[ATTEST-<token>]`` and ``/attest/<token>`` in the ticket's sent mail; returns how many rows."""
        changed = 0
        rows = self.db.query("select id, subject, body from outbox where ticket_id = ? and status != 'pending' "
                             "and (subject like '%ATTEST-%' or body like '%/attest/%')", [ticket_id])
        for row in list(rows):
            subject = _TAG.sub("[ATTEST-…]", row["subject"] or "")
            body = _LINK.sub("/attest/…", _TAG.sub("[ATTEST-…]", row["body"] or ""))
            if (subject, body) != (row["subject"], row["body"]):
                self.db["outbox"].update(row["id"], {"subject": subject, "body": body})
                changed += 1
        return changed

    def approval_for_messages(self, message_ids: list[str]) -> dict[str, Any] | None:
        """The ticket one of our mails (by Message-ID) belongs to, when that ticket has had an approval."""
        if not message_ids:
            return None
        marks = ",".join("?" * len(message_ids))
        rows = list(self.db.query(
            f"select t.* from outbox o join tickets t on t.id = o.ticket_id where o.rfc_message_id in ({marks}) "
            "and exists (select 1 from approvals a where a.ticket_id = t.id) order by o.id desc limit 1",
            message_ids))
        return rows[0] if rows else None
