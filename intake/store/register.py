"""Queries on the access register: persons (hashed and encrypted identifiers), entries and their history.

No cryptography here: callers hand in the keyed hash and the ciphertexts (see :mod:`intake.register`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from intake.store.base import NotFoundError, StoreBase

#: Columns of an entry that a correction may change.
ENTRY_COLUMNS = ("system", "role", "unit", "unit_hsa_id", "municipality", "valid_from", "valid_to",
                 "orderer_email", "orderer_name", "attestant_email", "attestant_name")


@dataclass(frozen=True)
class RegisterFilters:
    """What a register list is narrowed to. ``state``: current (not yet ended), ended, or all."""

    person_id: int | None = None
    system: str | None = None
    role: str | None = None
    unit: str | None = None
    municipality: str | None = None
    orderer: str | None = None
    state: str = "current"

    def where(self, today: str) -> tuple[str, list[Any]]:
        clauses, params = [], []
        if self.person_id is not None:
            clauses.append("e.person_id = ?")
            params.append(self.person_id)
        for column, value in (("system", self.system), ("role", self.role), ("municipality", self.municipality),
                              ("orderer_email", (self.orderer or "").lower() or None)):
            if value:
                clauses.append(f"e.{column} = ? collate nocase")
                params.append(value)
        if self.unit:
            # A unit is named by its name or its HSA-id.
            clauses.append("(e.unit = ? collate nocase or e.unit_hsa_id = ? collate nocase)")
            params += [self.unit, self.unit]
        if self.state == "current":
            clauses.append("(e.state = 'active' or e.ended_on >= ?)")
            params.append(today)
        elif self.state == "ended":
            clauses.append("(e.state = 'ended' and e.ended_on < ?)")
            params.append(today)
        return (" where " + " and ".join(clauses)) if clauses else "", params

    def given(self) -> list[str]:
        """The names of the filters in use (for the audit trail: names, never values)."""
        names = [n for n in ("person_id", "system", "role", "unit", "municipality", "orderer")
                 if getattr(self, n) not in (None, "")]
        return [*names, f"state={self.state}"]


_SELECT = ("select e.*, p.id_kind, p.id_enc, p.name_enc from register_entries e "
           "join register_persons p on p.id = e.person_id")


class RegisterQueries(StoreBase):
    # -- the key check ------------------------------------------------------------------------------

    def register_meta(self, key: str) -> str | None:
        rows = list(self.db.query("select value from register_meta where key = ?", [key]))
        return rows[0]["value"] if rows else None

    def set_register_meta(self, key: str, value: str) -> None:
        self.db.execute("insert into register_meta (key, value) values (?, ?) "
                        "on conflict(key) do update set value = excluded.value", [key, value])

    def register_person_count(self) -> int:
        (n,) = self.db.execute("select count(*) from register_persons").fetchone()
        return n

    # -- persons ------------------------------------------------------------------------------------

    def register_person_by_hash(self, id_hash: str) -> dict[str, Any] | None:
        rows = list(self.db.query("select * from register_persons where id_hash = ?", [id_hash]))
        return rows[0] if rows else None

    def register_person(self, person_id: int) -> dict[str, Any]:
        rows = list(self.db.query("select * from register_persons where id = ?", [person_id]))
        if not rows:
            raise NotFoundError(f"no register person {person_id}")
        return rows[0]

    def register_add_person(self, id_hash: str, id_kind: str, id_enc: str, name_enc: str | None, now: str) -> int:
        return self.db["register_persons"].insert({"id_hash": id_hash, "id_kind": id_kind, "id_enc": id_enc,
                                                   "name_enc": name_enc, "created_at": now}).last_pk

    def register_set_person_name(self, person_id: int, name_enc: str) -> None:
        self.db["register_persons"].update(person_id, {"name_enc": name_enc})

    # -- entries ------------------------------------------------------------------------------------

    def register_entry(self, entry_id: int) -> dict[str, Any]:
        rows = list(self.db.query(_SELECT + " where e.id = ?", [entry_id]))
        if not rows:
            raise NotFoundError(f"no register entry {entry_id}")
        return rows[0]

    def register_active(self, person_id: int, system: str, role: str | None = None,
                        any_role: bool = True) -> list[dict[str, Any]]:
        """Active entries of a person in a system; with ``any_role`` false, only those of ``role``."""
        sql = "select * from register_entries where person_id = ? and system = ? collate nocase and state = 'active'"
        params: list[Any] = [person_id, system]
        if not any_role:
            sql += " and coalesce(role, '') = ? collate nocase"
            params.append(role or "")
        return list(self.db.query(sql + " order by id", params))

    def register_add_entry(self, values: dict[str, Any]) -> int:
        return self.db["register_entries"].insert(values).last_pk

    def register_update_entry(self, entry_id: int, changes: dict[str, Any]) -> None:
        self.db["register_entries"].update(entry_id, changes)

    def register_add_history(self, entry_id: int, op: str, at: str, actor: str, *, ticket_id: int | None = None,
                             ticket_ref: str | None = None, reason: str | None = None,
                             changes: list[str] | None = None) -> int:
        return self.db["register_history"].insert({
            "entry_id": entry_id, "op": op, "at": at, "actor": actor, "ticket_id": ticket_id,
            "ticket_ref": ticket_ref, "reason": reason, "changes": json.dumps(changes or []),
        }).last_pk

    def register_history_of(self, entry_ids: list[int]) -> list[dict[str, Any]]:
        if not entry_ids:
            return []
        marks = ", ".join("?" for _ in entry_ids)
        return list(self.db.query(f"select * from register_history where entry_id in ({marks}) order by at, id",
                                  entry_ids))

    def register_entry_ids_of_ticket(self, ticket_id: int) -> list[int]:
        """The entries a ticket made or changed."""
        return [r["entry_id"] for r in self.db.query(
            "select distinct entry_id from register_history where ticket_id = ? order by entry_id", [ticket_id])]

    def register_ticket_applied(self, ticket_id: int) -> bool:
        return bool(list(self.db.query("select 1 from register_history where ticket_id = ? limit 1", [ticket_id])))

    def register_entries(self, filters: RegisterFilters, today: str, *, limit: int | None = None
                         ) -> list[dict[str, Any]]:
        where, params = filters.where(today)
        sql = _SELECT + where + " order by e.system, e.unit, e.role, e.person_id, e.id"
        if limit:
            sql += f" limit {int(limit)}"
        return list(self.db.query(sql, params))

    def register_ending_between(self, first: str, last: str) -> list[dict[str, Any]]:
        """Entries whose access ends (termination date, or end of the ordered period) within [first, last]."""
        return list(self.db.query(
            _SELECT + " where (e.state = 'ended' and e.ended_on between ? and ?) "
            "or (e.state = 'active' and e.valid_to between ? and ?) order by coalesce(e.ended_on, e.valid_to), e.id",
            [first, last, first, last]))

    def register_expired_unrenewed(self, today: str) -> list[dict[str, Any]]:
        """Active entries whose ordered period has passed without a renewal or a termination."""
        return list(self.db.query(_SELECT + " where e.state = 'active' and e.valid_to < ? order by e.valid_to, e.id",
                                  [today]))

    def register_values(self, column: str) -> list[str]:
        """The distinct values of one entry column (for the filter menus)."""
        if column not in ("system", "role", "unit", "municipality"):
            raise ValueError(column)
        return [r["v"] for r in self.db.query(
            f"select distinct {column} as v from register_entries where {column} is not null order by {column}")]

    # -- retention ----------------------------------------------------------------------------------

    def register_purge_ended(self, cutoff: str) -> tuple[int, int]:
        """Delete entries that ended before ``cutoff`` with their history, and persons left without entries.

        Returns (entries, persons) deleted. Call inside a transaction.
        """
        ids = [r["id"] for r in self.db.query(
            "select id from register_entries where state = 'ended' and ended_on < ?", [cutoff])]
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            marks = ", ".join("?" for _ in chunk)
            self.db.execute(f"delete from register_history where entry_id in ({marks})", chunk)
            self.db.execute(f"delete from register_entries where id in ({marks})", chunk)
        cur = self.db.execute("delete from register_persons where id not in "
                              "(select person_id from register_entries)")
        return len(ids), cur.rowcount

    def open_tickets_of(self, routine: str, request_types: list[str]) -> list[dict[str, Any]]:
        """Tickets of a routine still open (not closed), with their form, of the given request types."""
        if not request_types:
            return []
        marks = ", ".join("?" for _ in request_types)
        return list(self.db.query(
            f"select id, ref, routine, request_type, status, form, created_at, closed_at from tickets "
            f"where routine = ? and closed_at is null and form is not null and request_type in ({marks}) "
            f"order by id", [routine, *request_types]))
