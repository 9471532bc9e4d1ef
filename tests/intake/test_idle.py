"""IDLE and several mailboxes in one `intake run`, against real Dovecot servers.

Mail appended while the service waits in IDLE is recorded without waiting for a poll (the poll interval is
300 s); a restarted server is reconnected to and nothing is lost; without IDLE (configured off, or not
offered) the service polls; two mailboxes answer with their own identities, and one refusing our login backs
off on its own while the other keeps working; a kill in the middle of an IDLE-woken poll loses and doubles
nothing.
"""

from __future__ import annotations

import email
import email.policy
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.dovecot import CAPABILITY_WITHOUT_MOVE
from tests.intake.imapdesk import env_for
from tests.intake.test_kill import assert_exactly_once, fill
from tests.mailmaker import make_mail

pytestmark = [pytest.mark.imap, pytest.mark.slow]

#: Generous bound for "without waiting for a poll": far below the 300 s interval, far above IDLE's latency.
SOON = 30


def mailbox_lines(account, *, name: str = "", header: str = "[mailbox]", **keys: object) -> list[str]:
    lines = [header, 'kind = "imap"', f'host = "{account.server.host}"', f"port = {account.server.port}",
             f'username = "{account.username}"', 'tls = "none"', "timeout = 5"]
    if name:
        lines.append(f'name = "{name}"')
    for key, value in keys.items():
        lines.append(f"{key} = {_toml(value)}")
    return [*lines, ""]


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return str(value)


def write_conf(tmp_path: Path, *mailboxes: list[str], interval: int = 300) -> Path:
    conf = tmp_path / "intake.toml"
    lines = ['[store]', 'path = "intake.db"', "", "[outbox]", 'kind = "file"', 'dir = "outbox"',
             "interval_seconds = 1", "", "[poll]", f"interval_seconds = {interval}", "",
             "[replies]", 'from_address = "mittvaccin@region.example.test"', ""]
    for box in mailboxes:
        lines += box
    conf.write_text("\n".join(lines) + "\n")
    return conf


def start(conf: Path, account, **env: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "intake.cli", "-c", str(conf), "run"],
                            env=env_for(account, PYTHONFAULTHANDLER="1", **env),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def stop(proc: subprocess.Popen) -> str:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)  # PYTHONFAULTHANDLER: every thread's stack goes to stderr
        _, err = proc.communicate(timeout=60)
        pytest.fail(f"intake run did not stop on SIGTERM:\n{err[-8000:]}")
    return err


def wait_for(predicate, timeout: float = SOON) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def query(tmp_path: Path, sql: str, params: tuple = ()) -> list[dict]:
    """Read the service's database without migrating it (the running service owns its schema)."""
    db = tmp_path / "intake.db"
    if not db.exists():
        return []
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute(sql, params)]
    except sqlite3.OperationalError:  # not created yet
        return []
    finally:
        conn.close()


def status(tmp_path: Path, name: str = "default") -> dict:
    rows = query(tmp_path, "select * from mailbox_status where name = ?", (name,))
    return rows[0] if rows else {}


def recorded(tmp_path: Path, message_id: str) -> bool:
    return bool(query(tmp_path, "select id from messages where message_key = ?", (f"mid:{message_id}",)))


def idle_and_polled(tmp_path: Path, name: str = "default") -> bool:
    row = status(tmp_path, name)
    return row.get("mode") == "idle" and (row.get("polls") or 0) >= 1


def test_mail_is_recorded_as_soon_as_the_server_announces_it(imap_account, tmp_path):
    conf = write_conf(tmp_path, mailbox_lines(imap_account))
    proc = start(conf, imap_account)
    try:
        assert wait_for(lambda: idle_and_polled(tmp_path)), status(tmp_path)
        imap_account.append(make_mail(message_id="<idle-1@halmstad.example.test>"))
        # The next poll is 300 s away: only the IDLE announcement can bring it in this soon.
        assert wait_for(lambda: recorded(tmp_path, "<idle-1@halmstad.example.test>"))
        # A burst: mail announced while a poll is running makes that poll run once more, none waits 300 s.
        burst = [f"<burst-{i}@halmstad.example.test>" for i in range(5)]
        for i, mid in enumerate(burst):
            imap_account.append(make_mail(message_id=mid, sender=f"Avs {i} <burst{i}@halmstad.example.test>"))
            time.sleep(0.2)
        assert wait_for(lambda: all(recorded(tmp_path, mid) for mid in burst))
        assert wait_for(lambda: imap_account.uids("INBOX") == [])
    finally:
        err = stop(proc)
    assert proc.returncode == 0, err
    assert status(tmp_path)["mode"] == "stopped"
    assert "Traceback" not in err


def test_a_restarted_server_is_reconnected_and_nothing_is_lost(dovecot_factory, tmp_path):
    server = dovecot_factory()
    account = server.new_account()
    conf = write_conf(tmp_path, mailbox_lines(account))
    proc = start(conf, account)
    try:
        assert wait_for(lambda: idle_and_polled(tmp_path)), status(tmp_path)
        server.stop()
        assert wait_for(lambda: status(tmp_path).get("mode") == "backoff"), status(tmp_path)
        server.start()
        # Appended before the service is back in IDLE: found by the full search after reconnecting.
        account.append(make_mail(message_id="<while-away@halmstad.example.test>"))
        assert wait_for(lambda: recorded(tmp_path, "<while-away@halmstad.example.test>"))
        assert wait_for(lambda: idle_and_polled(tmp_path)), status(tmp_path)
        account.append(make_mail(message_id="<after@halmstad.example.test>"))
        assert wait_for(lambda: recorded(tmp_path, "<after@halmstad.example.test>"))
        assert wait_for(lambda: account.uids("INBOX") == [])
        assert status(tmp_path)["last_error"]  # the drop was noted where staff can see it
    finally:
        err = stop(proc)
    assert proc.returncode == 0, err
    assert "Traceback" not in err


@pytest.mark.parametrize("how", ["configured off", "not offered"])
def test_without_idle_the_service_polls(dovecot_factory, tmp_path, how):
    server = dovecot_factory(capability=CAPABILITY_WITHOUT_MOVE.replace("IDLE ", "") if how == "not offered"
                             else None)
    account = server.new_account()
    keys = {"idle": False} if how == "configured off" else {}
    conf = write_conf(tmp_path, mailbox_lines(account, **keys), interval=1)
    proc = start(conf, account)
    try:
        assert wait_for(lambda: (status(tmp_path).get("polls") or 0) >= 1), status(tmp_path)
        account.append(make_mail(message_id="<polled@halmstad.example.test>"))
        assert wait_for(lambda: recorded(tmp_path, "<polled@halmstad.example.test>"))
        assert status(tmp_path)["mode"] == "polling"
    finally:
        err = stop(proc)
    assert proc.returncode == 0, err
    assert "Traceback" not in err


def outgoing(tmp_path: Path) -> list[email.message.EmailMessage]:
    return [email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
            for p in sorted((tmp_path / "outbox").glob("*.eml"))]


def two_desks(first, second, *, second_password: str, second_idle: bool = True) -> tuple[list[str], list[str]]:
    return (
        mailbox_lines(first, name="halland", header="[[mailboxes]]", from_address="vaccin@halland.example.test",
                      from_name="Läkemedelssupporten Halland", desk_name="Läkemedelssupporten, Region Halland",
                      password_env="INTAKE_IMAP_PASSWORD", routines=["mittvaccin"],
                      default_routine="mittvaccin"),
        mailbox_lines(second, name="vgr", header="[[mailboxes]]", from_address="support@vgr.example.test",
                      from_name="IT-support VGR", desk_name="IT-supporten, Västra Götalandsregionen",
                      password=second_password, auth_backoff_seconds=300, idle=second_idle),
    )


def test_two_mailboxes_answer_with_their_own_identities(dovecot, tmp_path):
    halland, vgr = dovecot.new_account(), dovecot.new_account()
    conf = write_conf(tmp_path, *two_desks(halland, vgr, second_password=vgr.password))
    proc = start(conf, halland)
    try:
        assert wait_for(lambda: idle_and_polled(tmp_path, "halland") and idle_and_polled(tmp_path, "vgr"))
        halland.append(make_mail(message_id="<h-1@halmstad.example.test>", sender="Anna <anna@halmstad.example.test>"))
        vgr.append(make_mail(message_id="<v-1@boras.example.test>", sender="Bo <bo@boras.example.test>"))
        assert wait_for(lambda: len(outgoing(tmp_path)) == 2)
    finally:
        err = stop(proc)
    assert proc.returncode == 0, err
    by_to = {m["To"]: m for m in outgoing(tmp_path)}
    to_halland, to_vgr = by_to["anna@halmstad.example.test"], by_to["bo@boras.example.test"]
    assert to_halland["From"].addresses[0].addr_spec == "vaccin@halland.example.test"
    assert to_halland["From"].addresses[0].display_name == "Läkemedelssupporten Halland"
    assert to_vgr["From"].addresses[0].addr_spec == "support@vgr.example.test"
    assert "IT-supporten, Västra Götalandsregionen" in to_vgr.get_content()
    assert "Västra Götaland" not in to_halland.get_content()
    assert {r["name"]: r["desk_name"] for r in query(tmp_path, "select * from mailbox_status")} == {
        "halland": "Läkemedelssupporten, Region Halland", "vgr": "IT-supporten, Västra Götalandsregionen"}


@pytest.mark.parametrize("bad_idle", [True, False], ids=["bad one with IDLE", "bad one polling"])
def test_a_mailbox_refusing_our_login_backs_off_while_the_other_keeps_working(dovecot, tmp_path, bad_idle):
    halland, vgr = dovecot.new_account(), dovecot.new_account()
    conf = write_conf(tmp_path, *two_desks(halland, vgr, second_password="wrong", second_idle=bad_idle), interval=1)
    proc = start(conf, halland)
    try:
        assert wait_for(lambda: idle_and_polled(tmp_path, "halland"))
        halland.append(make_mail(message_id="<h-2@halmstad.example.test>"))
        assert wait_for(lambda: recorded(tmp_path, "<h-2@halmstad.example.test>"))
        # Many polls of the good mailbox (1 s interval) while the refused one waits its first backoff step.
        assert wait_for(lambda: (status(tmp_path, "halland").get("polls") or 0) >= 6, timeout=60)
        bad = status(tmp_path, "vgr")
        assert bad["mode"] == "backoff"
        assert bad["login_failures"] == 1  # one refused login, not one per interval
        assert dovecot.failed_logins(vgr.username) == 1  # as the server counted them
        assert "LOGIN" in bad["last_error"] and "wrong" not in bad["last_error"]
        assert bad["next_try_at"]
        assert status(tmp_path, "halland")["mode"] == "idle"
    finally:
        err = stop(proc)
    assert proc.returncode == 0, err
    assert err.count("LOGIN failed") == 1  # logged once per backoff step, never every interval
    shown = subprocess.run([sys.executable, "-m", "intake.cli", "-c", str(conf), "status"],
                           env=env_for(halland), capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr
    lines = {line.split()[0]: line for line in shown.stdout.splitlines()}
    assert "LOGIN failed" in lines["vgr"] and "last poll" in lines["halland"]


def test_killed_in_an_idle_woken_poll_then_restarted(imap_account, tmp_path):
    ids = fill(imap_account, 6)
    conf = write_conf(tmp_path, mailbox_lines(imap_account, batch_size=2))
    killed = start(conf, imap_account, INTAKE_FAULT="after-commit:3")
    killed.communicate(timeout=120)
    assert killed.returncode == -signal.SIGKILL
    assert imap_account.uids("INBOX"), "the kill came before the end of the run"
    proc = start(conf, imap_account)
    try:
        assert wait_for(lambda: idle_and_polled(tmp_path) and imap_account.uids("INBOX") == [])
        more = [f"<kill-late-{i}@halmstad.example.test>" for i in range(3)]
        for i, mid in enumerate(more):
            imap_account.append(make_mail(message_id=mid, sender=f"Sen {i} <late{i}@halmstad.example.test>"))
        assert wait_for(lambda: all(recorded(tmp_path, mid) for mid in more))
        assert wait_for(lambda: imap_account.uids("INBOX") == [])
    finally:
        err = stop(proc)
    assert proc.returncode == 0, err
    assert_exactly_once(tmp_path, imap_account, ids + more)


# -- the source's IDLE primitive ------------------------------------------------------------------------------


def test_idle_wait_returns_on_announced_mail_and_at_the_end_of_its_period(imap_account):
    from intake.sources.imap import ImapSource

    with ImapSource(imap_account.config) as source:
        assert source.has_idle()
        assert source.idle_wait(1.5) is False  # nothing arrived: the caller re-issues IDLE
        later = threading.Timer(0.5, lambda: imap_account.append(make_mail(message_id="<ann@example.test>")))
        later.start()
        try:
            assert source.idle_wait(120) is True  # returns on the announcement, long before 120 s
        finally:
            later.join()
        assert len(source.list_uids()) == 1  # the session is usable after IDLE


@pytest.mark.parametrize("how", ["killed", "stopped"])
def test_idle_wait_notices_a_dead_connection(dovecot_factory, how):
    from intake.sources.base import SourceUnavailable
    from intake.sources.imap import ImapSource

    server = dovecot_factory()
    account = server.new_account()
    with ImapSource(account.config) as source:
        # SIGKILL: the connection just ends (idle_check answers [] at once); SIGTERM: the server says BYE first.
        threading_timer = threading.Timer(0.5, server.kill if how == "killed" else server.stop)
        threading_timer.start()
        try:
            with pytest.raises(SourceUnavailable, match="IDLE"):
                source.idle_wait(120)  # without the check this would wait the whole 120 s and return False
        finally:
            threading_timer.join()
