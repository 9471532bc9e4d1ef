"""Sending runs beside polling: a silent SMTP server costs one timeout per send round, and never delays intake."""

from __future__ import annotations

import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from intake.app import make_outbox, open_config_store
from tests.intake.test_poller import Desk
from tests.mailmaker import make_mail


class SilentServer:
    """A TCP server on loopback that accepts connections and never says a word (no SMTP greeting)."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.open = 0  # connections the client has not closed yet
        self._lock = threading.Lock()
        self._conns: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self._lock:
                self.accepted += 1
                self.open += 1
                self._conns.append(conn)
            threading.Thread(target=self._wait_for_close, args=(conn,), daemon=True).start()

    def _wait_for_close(self, conn: socket.socket) -> None:
        try:
            while conn.recv(4096):
                pass
        except OSError:
            pass
        with self._lock:
            self.open -= 1

    def close(self) -> None:
        self.sock.close()
        for conn in self._conns:
            conn.close()


@pytest.fixture
def silent():
    server = SilentServer()
    yield server
    server.close()


def smtp_sections(port: int, timeout: float) -> dict:
    return {
        "outbox": {"kind": "smtp"},
        "smtp": {"host": "127.0.0.1", "port": port, "tls": "none", "timeout": timeout},
        "replies": {"from_address": "mittvaccin@region.example.test"},
    }


def test_a_silent_server_ends_the_send_round_after_one_timeout(tmp_path, silent):
    desk = Desk(tmp_path, **smtp_sections(silent.port, 1))
    for i in range(3):
        desk.drop(make_mail(subject="MittVaccin – användarstöd", sender=f"enhet{i}@kungsbacka.example.test"))
    assert desk.poll().recorded == 3
    result = make_outbox(desk.config, desk.store, desk.routines).send_due()
    assert (result.sent, result.retried, result.failed) == (0, 1, 0)
    assert silent.accepted == 1  # one timeout for the round, not one per reply
    rows = list(desk.store.db.query("select status, attempts, last_error from outbox order by id"))
    assert [(r["status"], r["attempts"]) for r in rows] == [("pending", 1), ("pending", 0), ("pending", 0)]
    assert "timed out" in rows[0]["last_error"]


def _recorded(db_path: Path, message_id: str) -> bool:
    if not db_path.exists():
        return False
    conn = sqlite3.connect(str(db_path), timeout=5)
    try:
        return conn.execute("select count(*) from messages where message_id = ?", [message_id]).fetchone()[0] > 0
    except sqlite3.OperationalError:
        return False
    finally:
        conn.close()


@pytest.mark.slow
def test_run_records_mail_while_a_reply_waits_on_a_silent_server(tmp_path, silent):
    conf = tmp_path / "intake.toml"
    conf.write_text(
        '[store]\npath = "intake.db"\n[mailbox]\nkind = "local"\npath = "mailbox"\n'
        '[poll]\ninterval_seconds = 1\n[outbox]\nkind = "smtp"\ninterval_seconds = 3600\n'
        f'[smtp]\nhost = "127.0.0.1"\nport = {silent.port}\ntls = "none"\ntimeout = 20\n'
        '[replies]\nfrom_address = "mittvaccin@region.example.test"\n'
    )
    inbox = tmp_path / "mailbox"
    inbox.mkdir()
    (inbox / "a.eml").write_bytes(make_mail(subject="MittVaccin – användarstöd", message_id="<a@x.test>"))
    proc = subprocess.Popen([sys.executable, "-m", "intake.cli", "-c", str(conf), "run"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while silent.open == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert silent.open == 1, "the receipt for the first mail is being sent to the silent server"
        (inbox / "b.eml").write_bytes(make_mail(subject="MittVaccin – felsökning", message_id="<b@x.test>"))
        while not _recorded(tmp_path / "intake.db", "<b@x.test>") and time.monotonic() < deadline:
            time.sleep(0.1)
        # Recorded while the send still waits for a greeting: polling did not wait for sending.
        assert _recorded(tmp_path / "intake.db", "<b@x.test>")
        assert silent.open == 1 and silent.accepted == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err


def test_polls_and_sends_beside_each_other_lose_and_double_nothing(tmp_path, smtp_server):
    desk = Desk(tmp_path, outbox={"kind": "smtp"},
                smtp={"host": smtp_server.host, "port": smtp_server.port, "tls": "none", "timeout": 5},
                replies={"from_address": "mittvaccin@region.example.test", "rate_limit_per_hour": 1000})
    outbox = make_outbox(desk.config, open_config_store(desk.config), desk.routines)  # a connection of its own
    polling = threading.Event()
    polling.set()
    errors: list[BaseException] = []

    def send_all_the_time() -> None:
        try:
            while polling.is_set():
                outbox.send_due()
        except BaseException as exc:  # noqa: BLE001 - reported by the test below
            errors.append(exc)

    sender = threading.Thread(target=send_all_the_time)
    sender.start()
    try:
        for round_ in range(8):
            for i in range(4):
                desk.drop(make_mail(subject="MittVaccin – användarstöd", message_id=f"<r{round_}-{i}@x.test>",
                                    sender=f"enhet{round_}-{i}@kungsbacka.example.test"))
            assert desk.poll().errors == []
    finally:
        polling.clear()
        sender.join(timeout=60)
    assert errors == []
    outbox.send_due()
    assert desk.store.db.execute("pragma integrity_check").fetchone()[0] == "ok"
    assert len(desk.messages()) == 32 and desk.store.db["tickets"].count == 32
    rows = list(desk.store.db.query("select status, rfc_message_id from outbox"))
    assert len(rows) == 32 and {r["status"] for r in rows} == {"sent"}
    delivered = Counter(m.data.split(b"Message-ID: ", 1)[1].split(b"\r\n", 1)[0].decode()
                        for m in smtp_server.messages)
    assert delivered == Counter(r["rfc_message_id"] for r in rows)
