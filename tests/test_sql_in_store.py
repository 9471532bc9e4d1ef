"""The store owns SQL: every query lives in ``intake/store/``. No other module of ``intake/``, ``parsers/`` or
``rules/`` runs a statement (``.execute(``, ``.executemany(``, ``.executescript(``, ``.query(`` on anything),
reaches into a table (a subscript of a ``.db`` attribute, or of a name ``db``: ``store.db["users"]``), or spells
a statement in a string literal. Found by walking every module's syntax tree, code inside functions included."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("intake", "parsers", "rules")
STORE = ROOT / "intake" / "store"
RUNS_SQL = {"execute", "executemany", "executescript", "query"}
#: The shape of a statement: what a string holding SQL cannot avoid.
STATEMENT = re.compile(r"\b(select\s.+?\sfrom\s|insert\s+into\s|delete\s+from\s|update\s+\w+\s+set\s)",
                       re.IGNORECASE | re.DOTALL)


def modules() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py") if STORE not in p.parents)


def _is_db(node: ast.expr) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr == "db") or (isinstance(node, ast.Name) and node.id == "db")


def sql_outside_store(source: str, name: str = "<module>") -> list[str]:
    """``line: what`` for every place in ``source`` that touches the database directly."""
    found = []
    for node in ast.walk(ast.parse(source, name)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in RUNS_SQL:
            found.append(f"{node.lineno}: .{node.func.attr}(")
        elif isinstance(node, ast.Subscript) and _is_db(node.value):
            found.append(f"{node.lineno}: {ast.unparse(node.value)}[...]")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and STATEMENT.search(node.value):
            found.append(f"{node.lineno}: SQL text {STATEMENT.search(node.value).group(0).strip()!r}")
    return found


def test_the_walk_sees_the_modules() -> None:
    paths = modules()
    assert ROOT / "intake" / "web" / "accounts.py" in paths
    assert ROOT / "parsers" / "__init__.py" in paths and ROOT / "rules" / "reasons.py" in paths
    assert not any(STORE in p.parents for p in paths)


@pytest.mark.parametrize("source", [
    'rows = list(store.db.query("select 1 from users where name = ?", [name]))',
    'store.db.execute("pragma optimize")',
    'conn.executemany(sql, rows)',
    'db["users"].update(1, {"role": "admin"})',
    'store.db["tickets"].insert({})',
    'def f():\n    return list(store.db["users"].rows)',
    'where = "id in (select ticket_id from messages where source = ?)"',
    'SQL = "UPDATE users SET email = ? WHERE id = ?"',
])
def test_the_check_catches_direct_database_use(source: str) -> None:
    assert sql_outside_store(source)


@pytest.mark.parametrize("source", [
    'store.set_user_email(user_id, None)',
    'ticket = store.ticket(ref)',
    'action = ("delete", None) if delete else ("move", folder)',
    '"""Put an orderer on the register (or update the one with that region and e-mail)."""',
    'rows = [r for r in found if r["db"]]',
])
def test_the_check_lets_store_calls_and_prose_pass(source: str) -> None:
    assert sql_outside_store(source) == []


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_sql_outside_the_store(path: Path) -> None:
    assert sql_outside_store(path.read_text("utf-8"), str(path)) == []
