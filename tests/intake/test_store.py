import pytest

from intake.store import MIGRATIONS, open_store


def test_migrations_are_recorded_and_applied_once(tmp_path):
    store = open_store(tmp_path / "q.db")
    names = [r["name"] for r in store.db["migrations"].rows]
    assert names == [name for name, _ in MIGRATIONS]
    assert store.migrate() == []
    assert open_store(tmp_path / "q.db").migrate() == []


def test_wal_mode(tmp_path):
    store = open_store(tmp_path / "q.db")
    assert store.db.execute("pragma journal_mode").fetchone()[0] == "wal"


def test_ticket_references_count_per_prefix_and_year(fresh_store):
    with fresh_store.transaction():
        refs = [fresh_store.next_ref("MV", 2026) for _ in range(3)]
        other = fresh_store.next_ref("MS", 2026)
        next_year = fresh_store.next_ref("MV", 2027)
    assert refs == ["MV-2026-0001", "MV-2026-0002", "MV-2026-0003"]
    assert other == "MS-2026-0001"
    assert next_year == "MV-2027-0001"


def test_a_failed_transaction_leaves_nothing(fresh_store):
    try:
        with fresh_store.transaction() as db:
            fresh_store.next_ref("MV", 2026)
            db["messages"].insert({"message_key": "mid:<a@b>", "verdict": "accepted", "recorded_at": "x"})
            raise RuntimeError("crash")
    except RuntimeError:
        pass
    assert fresh_store.db["messages"].count == 0
    with fresh_store.transaction():
        assert fresh_store.next_ref("MV", 2026) == "MV-2026-0001"


def test_a_write_on_its_own_is_committed_at_once_and_holds_no_lock(tmp_path):
    """An event, an outbox change or a mark written outside a transaction is another writer's to see at
    once; an uncommitted one would lock every other writer out (and be lost at exit)."""
    import sqlite3

    store = open_store(tmp_path / "intake.db")
    event = store.add_event("viewed", data={"what": "ticket"})
    store.update_row("events", event, {"actor": "anna"})
    assert not store.db.conn.in_transaction
    other = sqlite3.connect(tmp_path / "intake.db", timeout=0.1, isolation_level=None)
    other.execute("begin immediate")  # would fail "database is locked" if the writes above were still open
    assert other.execute("select actor from events where id = ?", [event]).fetchone() == ("anna",)
    other.execute("rollback")


def test_plain_writes_refuse_names_that_are_not_plain(fresh_store):
    import pytest

    with pytest.raises(ValueError):
        fresh_store.insert_row("events; drop table tickets", {"kind": "x"})
    with pytest.raises(ValueError):
        fresh_store.update_row("events", 1, {'kind" = 1; --': "x"})


def test_a_writer_waits_for_another_writers_lock_and_gives_up_after_its_busy_timeout(tmp_path):
    import sqlite3
    import threading

    holder = open_store(tmp_path / "q.db")
    waiter = open_store(tmp_path / "q.db", busy_timeout=0.3)
    with holder.transaction():
        holder.add_event("held")
        with pytest.raises(sqlite3.OperationalError, match="locked"), waiter.transaction():
            pass  # the lock stays taken past the 0.3 s: the writer fails, as SQLite's own wait would
    holding, released = threading.Event(), threading.Event()

    def hold_briefly() -> None:
        with holder.transaction():
            holder.add_event("held again")
            holding.set()
            released.wait(5)

    thread = threading.Thread(target=hold_briefly)
    thread.start()
    assert holding.wait(5)
    threading.Timer(0.05, released.set).start()
    with waiter.transaction():  # waits until the holder commits, then writes
        waiter.add_event("after")
    thread.join()
    kinds = [r["kind"] for r in waiter.db.query("select kind from events order by id")]
    assert kinds[-3:] == ["held", "held again", "after"]
    assert waiter.db.execute("pragma busy_timeout").fetchone()[0] == 300  # its own timeout is back
