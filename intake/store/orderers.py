"""Queries on the orderer register: per routine and region, who may order (see :mod:`intake.orderers`)."""

from __future__ import annotations

from typing import Any

from intake.store.base import NotFoundError, StoreBase

#: The columns a caller may set on an orderer row.
ORDERER_COLUMNS = ("routine", "region", "email", "name", "valid_from", "valid_to")


class OrdererQueries(StoreBase):
    def orderers(self, routine: str | None = None, region: str | None = None,
                 email: str | None = None) -> list[dict[str, Any]]:
        """Orderer rows, by routine, region and e-mail (each optional, matched without case)."""
        clauses, params = [], []
        for column, value in (("routine", routine), ("region", region), ("email", email)):
            if value:
                clauses.append(f"{column} = ? collate nocase")
                params.append(value)
        where = (" where " + " and ".join(clauses)) if clauses else ""
        return list(self.db.query(f"select * from orderers{where} order by routine, region, email", params))

    def orderer(self, orderer_id: int) -> dict[str, Any]:
        rows = list(self.db.query("select * from orderers where id = ?", [orderer_id]))
        if not rows:
            raise NotFoundError(f"no orderer with id {orderer_id}")
        return rows[0]

    def find_orderer(self, routine: str, region: str, email: str) -> dict[str, Any] | None:
        rows = list(self.db.query(
            "select * from orderers where routine = ? and region = ? collate nocase and email = ? collate nocase",
            [routine, region, email]))
        return rows[0] if rows else None

    def insert_orderer(self, values: dict[str, Any], now_iso: str) -> int:
        row = {k: values.get(k) for k in ORDERER_COLUMNS}
        return self.db["orderers"].insert({**row, "created_at": now_iso, "updated_at": now_iso}).last_pk

    def update_orderer(self, orderer_id: int, values: dict[str, Any], now_iso: str) -> None:
        changes = {k: v for k, v in values.items() if k in ORDERER_COLUMNS}
        self.db["orderers"].update(orderer_id, {**changes, "updated_at": now_iso})

    def delete_orderer(self, orderer_id: int) -> None:
        self.db.execute("delete from orderers where id = ?", [orderer_id])

    def orderer_may_order(self, routine: str, region: str | None, email: str, day: str) -> bool:
        """Whether ``email`` is on the register of ``routine`` for ``region`` (any region when None) on ``day``."""
        sql = ("select 1 from orderers where routine = ? and email = ? collate nocase and valid_from <= ? "
               "and (valid_to is null or valid_to >= ?)")
        params: list[Any] = [routine, email, day, day]
        if region is not None:
            sql += " and region = ? collate nocase"
            params.append(region)
        return bool(list(self.db.query(sql + " limit 1", params)))
