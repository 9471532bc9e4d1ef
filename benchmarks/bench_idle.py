"""Prints the latency append -> recorded over N mails against a real Dovecot: `intake run` waiting in IDLE
(poll interval 300 s) next to `intake run` polling every 5 s. Figures only; nothing here is a pass/fail test.

Run: .venv/bin/python benchmarks/bench_idle.py [N]   (default N = 10; needs dovecot installed)
"""

from __future__ import annotations

import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.dovecot import DovecotServer  # noqa: E402
from tests.intake.imapdesk import env_for  # noqa: E402
from tests.mailmaker import make_mail  # noqa: E402


def config(folder: Path, account, *, idle: bool, interval: int) -> Path:
    conf = folder / "intake.toml"
    conf.write_text("\n".join([
        "[store]", 'path = "intake.db"', "[outbox]", 'dir = "outbox"', "[poll]", f"interval_seconds = {interval}",
        "[replies]", 'from_address = "mittvaccin@region.example.test"',
        "[mailbox]", 'kind = "imap"', f'host = "{account.server.host}"', f"port = {account.server.port}",
        f'username = "{account.username}"', 'tls = "none"', "timeout = 5", f"idle = {'true' if idle else 'false'}",
    ]) + "\n")
    return conf


def recorded(db: Path, key: str) -> bool:
    if not db.exists():
        return False
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return conn.execute("select 1 from messages where message_key = ?", [key]).fetchone() is not None
        finally:
            conn.close()
    except sqlite3.OperationalError:
        return False


def ready(db: Path) -> bool:
    if not db.exists():
        return False
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            row = conn.execute("select polls from mailbox_status").fetchone()
            return bool(row and row[0])
        finally:
            conn.close()
    except sqlite3.OperationalError:
        return False


def measure(server: DovecotServer, n: int, *, idle: bool, interval: int) -> list[float]:
    account = server.new_account()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        conf = config(folder, account, idle=idle, interval=interval)
        proc = subprocess.Popen([sys.executable, "-m", "intake.cli", "-c", str(conf), "run"], env=env_for(account),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        db = folder / "intake.db"
        try:
            while not ready(db):
                time.sleep(0.05)
            times = []
            for i in range(n):
                mid = f"<bench-{'idle' if idle else 'poll'}-{i}@halmstad.example.test>"
                account.append(make_mail(message_id=mid, sender=f"Sändare {i} <s{i}@halmstad.example.test>"))
                appended = time.perf_counter()
                while not recorded(db, f"mid:{mid}"):
                    time.sleep(0.01)
                times.append(time.perf_counter() - appended)
                time.sleep(0.3 + (i % 5) * 0.7)  # arrivals spread over the poll interval
            return times
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    server = DovecotServer()
    server.start()
    try:
        idle = measure(server, n, idle=True, interval=300)
        polling = measure(server, n, idle=False, interval=5)
    finally:
        server.cleanup()
    print(f"append -> recorded over {n} mails (seconds)")
    print(f"{'mode':28} {'median':>8} {'max':>8}")
    print(f"{'IDLE (poll every 300 s)':28} {statistics.median(idle):8.2f} {max(idle):8.2f}")
    print(f"{'polling every 5 s':28} {statistics.median(polling):8.2f} {max(polling):8.2f}")
    print(f"{'polling / IDLE':28} {statistics.median(polling) / statistics.median(idle):7.1f}x "
          f"{max(polling) / max(idle):7.1f}x")


if __name__ == "__main__":
    main()
