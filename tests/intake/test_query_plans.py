"""Query plans: what the web UI, the CLI, recording, the outbox and retention ask of SQLite stays flat in
the size of the history.

Each test drives one real path (a web page through Flask's test client, a CLI command through click's
runner, a store method) with every SQLite connection traced (``set_trace_callback`` gives the SQL with
its values bound), then runs ``EXPLAIN QUERY PLAN`` on each statement it issued against ``tickets``,
``messages`` or ``outbox``. A statement is not flat when its plan walks one of those tables whole:

- ``SCAN tickets`` (no index at all), or
- ``SCAN tickets USING [COVERING] INDEX ...`` with no ``LIMIT`` (nothing stops the walk), or
- ``OFFSET n`` with n > 0 (SQLite steps over n rows to reach the page).

``SEARCH`` and an index walk stopped by ``LIMIT`` are fine. A statement that no index can make flat is listed
in :data:`KNOWN` with the fix it needs (left out of the check) and held by an ``xfail(strict=True)`` test of its
own, so that fixing it fails that test and the entry is removed. None is left: the last one, the queue page's
counts over every ticket ever, now reads counts kept by triggers (migration ``015_counters``), as
:func:`test_the_queue_page_and_the_overview_count_nothing` holds.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner

from intake import config as config_mod
from intake.cli import main as cli_main
from intake.store import open_store
from intake.web.accounts import add_user
from intake.web.app import create_app
from tests.intake.test_tickets import seed_ticket

TABLES = ("tickets", "messages", "outbox")
PASSWORD = "korrekt-hast-batteri"
REQUESTER = "eva.berg@halmstad.example.test"

#: Statements that need more than an index, as (name, SQL pattern, the fix needed). None left.
KNOWN: list[tuple[str, str, str]] = []


# -- tracing -----------------------------------------------------------------------------------------


@contextmanager
def traced(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every statement run on any SQLite connection opened inside the block, values bound."""
    statements: list[str] = []
    real_connect = sqlite3.connect

    def connect(*args, **kwargs):
        conn = real_connect(*args, **kwargs)
        conn.set_trace_callback(statements.append)
        return conn

    monkeypatch.setattr(sqlite3, "connect", connect)
    try:
        yield statements
    finally:
        monkeypatch.setattr(sqlite3, "connect", real_connect)


def _touches(sql: str) -> bool:
    """A query on tickets, messages or outbox (an INSERT only when it selects)."""
    if not re.match(r"\s*(select|update|delete|with|insert\b.*\bselect\b)", sql, re.I | re.S):
        return False
    return re.search(r'\b(from|update|join)\s+[\["]?(' + "|".join(TABLES) + r")\b", sql, re.I) is not None


def not_flat(conn: sqlite3.Connection, sql: str) -> list[str]:
    """The plan lines (or the OFFSET) that walk tickets, messages or outbox whole; [] when flat."""
    bad = []
    has_limit = re.search(r"\blimit\b", sql, re.I) is not None
    # A plan names a table by its alias ("from tickets t" scans "t").
    aliases = {a: t for t, a in re.findall(r"\b(?:from|join)\s+(\w+)\s+(?:as\s+)?(\w+)", sql, re.I)}
    for row in conn.execute("explain query plan " + sql):
        detail = row[3]
        m = re.match(r"SCAN (\w+)(?: USING (?:COVERING )?INDEX (\w+))?", detail)
        if m and aliases.get(m.group(1), m.group(1)) in TABLES and (m.group(2) is None or not has_limit):
            bad.append(detail)
    if re.search(r"\boffset\s+[1-9]", sql, re.I):
        bad.append("OFFSET")
    return bad


def _known(sql: str) -> str | None:
    for name, pattern, _fix in KNOWN:
        if re.search(pattern, sql.strip(), re.I | re.S):
            return name
    return None


# -- the store and the paths -------------------------------------------------------------------------


@pytest.fixture
def env(tmp_path, routines, settings):
    config = config_mod.from_mapping(
        {"store": {"path": "intake.db"}, "web": {"secret_key": "plan-secret-" + "x" * 32}}, base_dir=tmp_path)
    store = open_store(config.db_path)
    add_user(store, "anna", PASSWORD)
    for k in range(1, 4):
        seed_ticket(store, ref=f"MV-2026-000{k}", created_at=f"2026-11-2{k}T08:00:00+00:00")
    seed_ticket(store, ref="MV-2025-0001", created_at="2025-01-10T08:00:00+00:00", status="done")
    store.db.execute("update tickets set closed_at = '2025-01-11T08:00:00+00:00' where ref = 'MV-2025-0001'")
    config_file = tmp_path / "intake.toml"
    config_file.write_text('[store]\npath = "intake.db"\n')
    app = create_app(config, routines=routines, settings=settings)
    app.testing = True
    return {"config": config, "config_file": config_file, "store": store, "app": app}


def _web(*urls: str) -> Callable[[dict], None]:
    def run(env: dict) -> None:
        client = env["app"].test_client()
        page = client.get("/login").get_data(as_text=True)
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        assert client.post("/login", data={"username": "anna", "password": PASSWORD,
                                           "csrf_token": token}).status_code == 302
        for url in urls:
            assert client.get(url).status_code == 200, url

    return run


def _cli(*args: str) -> Callable[[dict], None]:
    def run(env: dict) -> None:
        result = CliRunner().invoke(cli_main, ["-c", str(env["config_file"]), *args])
        assert result.exit_code == 0, result.output

    return run


def _rate_limit(env: dict) -> None:
    store = open_store(env["config"].db_path)
    assert store.replies_to_since(REQUESTER.upper(), "2026-11-01T00:00:00+00:00") == 0


def _outbox_due(env: dict) -> None:
    from intake.outbox import Outbox

    store = open_store(env["config"].db_path)
    Outbox(store, transport=None, from_address="bot@example.test", clock=lambda: datetime.now(UTC)).due()


def _recording(env: dict) -> None:
    store = open_store(env["config"].db_path)
    store.find_message("mid:<MV-2026-0001@halmstad.example.test>")
    store.ticket("MV-2026-0001")
    store.events(1)


def _purge(env: dict) -> None:
    try:  # the retention code is moving to its own module
        from intake.retention import purge  # type: ignore[import-not-found]
    except ImportError:
        from intake.tickets import purge
    result = purge(open_store(env["config"].db_path), 90, now=datetime(2026, 11, 30, tzinfo=UTC))
    assert result.tickets == 1


PATHS: dict[str, Callable[[dict], None]] = {
    "web queue page": _web("/"),
    "web ticket list": _web("/tickets", "/tickets?order=asc", "/tickets?sort=updated_at",
                            "/tickets?status=new", "/tickets?queue=behorighet&status=new",
                            "/tickets?assignee=anna", "/tickets?from=2026-11-01&to=2026-11-30",
                            *[f"/tickets?sort={column}" for column in ("ref", "closed_at", "status", "queue",
                                                                       "request_type", "requester", "assignee",
                                                                       "user_count", "routine")]),
    "web ticket list, later pages": _web("/tickets?after=1", "/tickets?before=1", "/tickets?sort=closed_at&after=1",
                                         "/tickets?sort=assignee&order=asc&before=1",
                                         "/tickets?status=new&after=1"),
    "web ticket page": _web("/tickets/MV-2026-0001"),
    "web overview": _web("/overview"),
    "web mail list": _web("/mail", "/mail?verdict=held"),
    "cli queue list": _cli("queue", "list"),
    "cli queue list, filtered": _cli("queue", "list", "--status", "new"),
    "cli queue list, next page and everything": _cli("queue", "list", "--after", "1", "--limit", "0"),
    "cli ticket show": _cli("ticket", "show", "MV-2026-0001"),
    "store: recording lookups": _recording,
    "store: per-sender rate limit": _rate_limit,
    "outbox: due replies": _outbox_due,
    "retention purge": _purge,
}


def _statements(env: dict, monkeypatch: pytest.MonkeyPatch, path: str) -> list[str]:
    with traced(monkeypatch) as statements:
        PATHS[path](env)
    found = [s for s in dict.fromkeys(statements) if _touches(s)]
    assert found, f"{path}: traced no statement on {', '.join(TABLES)}"
    return found


@pytest.mark.parametrize("path", list(PATHS))
def test_every_statement_is_flat(env, monkeypatch, path):
    conn = env["store"].db.conn
    bad = {sql: lines for sql in _statements(env, monkeypatch, path)
           if not _known(sql) and (lines := not_flat(conn, sql))}
    assert not bad, f"{path}: statements that walk a whole table:\n" + "\n".join(
        f"  {sql}\n    -> {lines}" for sql, lines in bad.items())


def _walks(conn: sqlite3.Connection, sql: str) -> list[str]:
    """The plan lines that walk tickets, messages or outbox at all (an index walk with a limit included)."""
    aliases = {a: t for t, a in re.findall(r"\b(?:from|join)\s+(\w+)\s+(?:as\s+)?(\w+)", sql, re.I)}
    return [row[3] for row in conn.execute("explain query plan " + sql)
            if (m := re.match(r"SCAN (\w+)", row[3])) and aliases.get(m.group(1), m.group(1)) in TABLES]


@pytest.mark.parametrize("path", ["web queue page", "web overview"])
def test_the_queue_page_and_the_overview_count_nothing(env, monkeypatch, path):
    """Their figures come from the kept counts: every count or sum they ask of tickets, messages or outbox is
    an index search of a few rows (the held mail), never a walk, with or without a limit."""
    conn = env["store"].db.conn
    with traced(monkeypatch) as statements:
        PATHS[path](env)
    counting = [sql for sql in dict.fromkeys(statements)
                if _touches(sql) and re.search(r"\b(count|sum|group\s+by)\b", sql, re.I)]
    walks = {sql: lines for sql in counting if (lines := _walks(conn, sql))}
    assert not walks, walks
    assert any(re.search(r"\bfrom (ticket_counts|daily_counts)\b", sql) for sql in statements)


def test_the_checker_sees_a_whole_table_walk(env):
    """The check itself: a statement known to scan is flagged, and its indexed twin is not."""
    conn = env["store"].db.conn
    assert not_flat(conn, "select * from messages where subject = 'x'") == ["SCAN messages"]
    assert not_flat(conn, "select * from messages where ticket_id = 1") == []
    assert not_flat(conn, "select * from tickets t where t.subject = 'x'") == ["SCAN t"]  # seen through an alias
    assert not_flat(conn, "select * from tickets order by created_at desc limit 50") == []
    assert not_flat(conn, "select * from tickets order by created_at desc limit 50 offset 100") == ["OFFSET"]
    assert not_flat(conn, "select count(*) from outbox where lower(to_addr) = 'a@b' and created_at >= '2026'") == []
