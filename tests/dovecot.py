"""A real Dovecot for tests: a pytest plugin (``pytest_plugins = ["tests.dovecot"]``).

Fixtures:

- ``dovecot`` (session): one Dovecot on a free loopback port, shared by the whole run.
- ``imap_account`` (function): a fresh user on ``dovecot`` with helpers to put mail in and look at it.
- ``dovecot_factory`` (function): ``dovecot_factory(capability=...)`` starts another Dovecot that the
  test may stop, kill or freeze; it is stopped when the test ends. :data:`CAPABILITY_WITHOUT_MOVE`
  gives a server that lacks MOVE, for the COPY + UID EXPUNGE fallback. ``dovecot_factory(tls=certs)``
  (certificates from :func:`tests.tlscerts.make_certs`) gives a TLS-only server: STARTTLS on ``.port``,
  implicit TLS on ``.ssl_port``.

Follows /work/shared/testing/dovecot.conf: loopback only, plain-text login, passwd-file users,
Maildir in a throwaway folder that Dovecot's users can traverse.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
from imapclient import IMAPClient

from intake.sources.imap import ImapConfig
from tests.tlscerts import TlsCerts

#: What Dovecot 2.3 announces after login, minus MOVE (UIDPLUS stays: the fallback needs it).
CAPABILITY_WITHOUT_MOVE = (
    "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE SORT SORT=DISPLAY THREAD=REFERENCES "
    "THREAD=REFS THREAD=ORDEREDSUBJECT MULTIAPPEND URL-PARTIAL CATENATE UNSELECT CHILDREN NAMESPACE "
    "UIDPLUS LIST-EXTENDED I18NLEVEL=1 CONDSTORE QRESYNC ESEARCH ESORT SEARCHRES WITHIN CONTEXT=SEARCH "
    "LIST-STATUS BINARY SNIPPET=FUZZY PREVIEW=FUZZY PREVIEW STATUS=SIZE SAVEDATE LITERAL+ NOTIFY"
)
#: Neither MOVE nor UIDPLUS: a move can only be refused.
CAPABILITY_WITHOUT_MOVE_OR_UIDPLUS = CAPABILITY_WITHOUT_MOVE.replace("UIDPLUS ", "")

_CONFIG = """\
protocols = imap
listen = {host}
base_dir = {dir}/run
state_dir = {dir}/state
instance_name = {name}
log_path = {dir}/dovecot.log
info_log_path = {dir}/dovecot.log
{ssl}
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
mail_location = maildir:~/Maildir
{internal_users}
namespace inbox {{
  inbox = yes
  separator = /
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {dir}/passwd.d/%u
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={dir}/mail/%u
}}
protocol imap {{
{capability}
}}
service imap-login {{
  inet_listener imap {{
    address = {host}
    port = {port}
  }}
  inet_listener imaps {{
{imaps}
  }}
{chroot}
}}
service anvil {{
{chroot}
}}
service stats {{
  unix_listener stats-reader {{
    mode = 0666
  }}
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
"""

_instances = itertools.count(1)
_users = itertools.count(1)


def _free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _dovecot_binary() -> str:
    found = shutil.which("dovecot") or ("/usr/sbin/dovecot" if os.path.exists("/usr/sbin/dovecot") else None)
    if found is None:
        pytest.fail(
            "dovecot is not installed, so the IMAP tests cannot run. Run the test command from the "
            "README, which installs dovecot-imapd first.",
            pytrace=False,
        )
    return found


class DovecotServer:
    """One Dovecot master in its own temporary folder; can be stopped, killed, frozen and restarted."""

    def __init__(self, capability: str | None = None, tls: TlsCerts | None = None) -> None:
        #: With ``tls``: STARTTLS on :attr:`port`, implicit TLS on :attr:`ssl_port`, no login before TLS.
        #: Dovecot counts a connection whose two ends have the same address as secure and lets it log in
        #: without TLS whatever ``ssl = required`` says, so a TLS server listens on 127.0.0.2: clients
        #: connect from 127.0.0.1 and must really use TLS.
        self.tls = tls
        self.host = "127.0.0.2" if tls else "127.0.0.1"
        self.port = _free_port(self.host)
        self.ssl_port = _free_port(self.host) if tls else None
        self.dir = Path(tempfile.mkdtemp(prefix="intake-dovecot-"))
        self.dir.chmod(0o755)  # Dovecot's auth and mail users must traverse it
        for sub in ("run", "state", "mail", "passwd.d"):
            (self.dir / sub).mkdir(mode=0o755)
        if os.geteuid() == 0:
            shutil.chown(self.dir / "mail", "nobody", "nogroup")
            uid, gid, internal, chroot = "nobody", "nogroup", "", ""
        else:  # see the comment in shared/testing/dovecot.conf
            user = os.environ.get("USER") or str(os.geteuid())
            uid, gid = str(os.geteuid()), str(os.getegid())
            internal = "\n".join(
                f"{key} = {user}" for key in ("default_internal_user", "default_internal_group", "default_login_user")
            )
            chroot = "  chroot ="
        self.config_path = self.dir / "dovecot.conf"
        self.config_path.write_text(
            _CONFIG.format(
                dir=self.dir,
                host=self.host,
                name=f"intake-test-{os.getpid()}-{next(_instances)}",
                port=self.port,
                uid=uid,
                gid=gid,
                internal_users=internal,
                chroot=chroot,
                capability=f"  imap_capability = {capability}" if capability else "",
                ssl=(f"ssl = required\nssl_cert = <{tls.cert_file}\nssl_key = <{tls.key_file}" if tls else "ssl = no"),
                imaps=f"    address = {self.host}\n    port = {self.ssl_port}" if tls else "    port = 0",
            )
        )
        self.process: subprocess.Popen[bytes] | None = None

    # -- life cycle ---------------------------------------------------------------------------------

    def start(self, wait: float = 10.0) -> None:
        """Start (or restart) the server and wait until its port answers."""
        self.process = subprocess.Popen(
            [_dovecot_binary(), "-F", "-c", str(self.config_path)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,  # its own process group, so kill() reaches every child
        )
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode(errors="replace") if self.process.stderr else ""
                pytest.fail(f"dovecot exited with {self.process.returncode}: {err}\n{self.log_tail()}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5) as sock:
                    if sock.recv(100).startswith(b"* OK"):
                        return
            except OSError:
                time.sleep(0.02)
        self.kill()
        pytest.fail(f"dovecot did not answer on port {self.port} within {wait} s\n{self.log_tail()}")

    def stop(self) -> None:
        """Stop cleanly (SIGTERM to the master, which ends its children)."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.thaw()
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
        self._reap()

    def kill(self) -> None:
        """The server goes away at once: SIGKILL to the master and every child (connections drop)."""
        if self.process is None:
            return
        self.thaw()
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(10)
        self._reap()

    def freeze(self) -> None:
        """The server hangs: every process stopped, connections stay open but nothing answers."""
        if self.process is not None:
            os.killpg(self.process.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGCONT)

    def _reap(self) -> None:
        # Children left behind by a killed master would keep the port; wait until it is free.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    probe.bind((self.host, self.port))
                    break
                except OSError:
                    time.sleep(0.05)
        if self.process is not None and self.process.stderr:
            self.process.stderr.close()
        self.process = None

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join((self.dir / "dovecot.log").read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no dovecot.log)"

    def failed_logins(self, username: str) -> int:
        """Refused logins of ``username`` as the server counted them (logged when each connection closes)."""
        try:
            text = (self.dir / "dovecot.log").read_text(errors="replace")
        except OSError:
            return 0
        pattern = rf"auth failed, (\d+) attempts? in [^)]*\): user=<{re.escape(username)}>"
        return sum(int(m.group(1)) for m in re.finditer(pattern, text))

    # -- users --------------------------------------------------------------------------------------

    def new_account(self, password: str = "secret") -> ImapAccount:
        """A user nobody has used before.

        Each user has a passwd-file of their own: Dovecot re-reads a changed passwd-file only when its
        mtime (in whole seconds) changes, so a line added within the same second went unseen.
        """
        username = f"bot{next(_users)}@example.test"
        passwd = self.dir / "passwd.d" / username
        passwd.write_text(f"{username}:{{PLAIN}}{password}\n")
        passwd.chmod(0o644)
        return ImapAccount(self, username, password)


@dataclass
class ImapAccount:
    """One mailbox on a test server, and a separate client to look at it (not the code under test)."""

    server: DovecotServer
    username: str
    password: str

    @property
    def config(self) -> ImapConfig:
        """An :class:`ImapConfig` for this mailbox: plain text on loopback, short timeout."""
        return self.make_config()

    def make_config(self, **changes: object) -> ImapConfig:
        """Plain text on a plain server; on a TLS server implicit TLS trusting the test CA (``ca_file``)."""
        values: dict[str, object] = {
            "host": self.server.host,
            "port": self.server.port,
            "username": self.username,
            "password": self.password,
            "tls": "none",
            "timeout": 5,
        }
        if self.server.tls is not None:
            values.update(port=self.server.ssl_port, tls="ssl", ca_file=str(self.server.tls.ca_file))
        values.update(changes)
        return ImapConfig(**values)  # type: ignore[arg-type]

    def client(self) -> IMAPClient:
        if self.server.tls is not None:  # no login before TLS there
            context = self.server.tls.client_context()
            client = IMAPClient(self.server.host, self.server.ssl_port, ssl=True, ssl_context=context, timeout=10)
        else:
            client = IMAPClient(self.server.host, self.server.port, ssl=False, timeout=10)
        if self.password.isascii():
            client.login(self.username, self.password)
        else:  # imaplib sends LOGIN as ASCII
            client.plain_login(self.username, self.password)
        return client

    def append(
        self, raw: bytes, folder: str = "INBOX", flags: tuple[str, ...] = (), msg_time: datetime | None = None
    ) -> int:
        """APPEND ``raw`` (with ``msg_time`` as its INTERNALDATE) and return its UID (from APPENDUID)."""
        with self.client() as client:
            if not client.folder_exists(folder):
                client.create_folder(folder)
            response = client.append(folder, raw, flags=flags, msg_time=msg_time)
        match = re.search(rb"APPENDUID \d+ (\d+)", response)
        assert match, response
        return int(match.group(1))

    def uids(self, folder: str = "INBOX") -> list[int]:
        """Every UID in ``folder``, \\Deleted ones included."""
        with self.client() as client:
            client.select_folder(folder, readonly=True)
            return sorted(client.search("ALL"))

    def folders(self) -> list[str]:
        with self.client() as client:
            return sorted(name for _flags, _sep, name in client.list_folders())

    def subscribed(self) -> list[str]:
        with self.client() as client:
            return sorted(name for _flags, _sep, name in client.list_sub_folders())

    def fetch_all(self, folder: str = "INBOX") -> dict[int, bytes]:
        """UID -> raw bytes of every message in ``folder`` (read-only: flags are not touched)."""
        with self.client() as client:
            client.select_folder(folder, readonly=True)
            uids = client.search("ALL")
            if not uids:
                return {}
            return {uid: data[b"BODY[]"] for uid, data in client.fetch(uids, ["BODY.PEEK[]"]).items()}

    def flags(self, folder: str = "INBOX") -> dict[int, tuple[bytes, ...]]:
        with self.client() as client:
            client.select_folder(folder, readonly=True)
            uids = client.search("ALL")
            return {uid: data[b"FLAGS"] for uid, data in client.fetch(uids, ["FLAGS"]).items()} if uids else {}

    def uidvalidity(self, folder: str = "INBOX") -> int:
        with self.client() as client:
            return client.folder_status(folder, ["UIDVALIDITY"])[b"UIDVALIDITY"]

    def recreate_folder(self, folder: str) -> None:
        """DELETE and CREATE ``folder``: its mail is gone and it gets a new UIDVALIDITY, UIDs from 1.

        IMAP cannot delete INBOX, so use a folder of its own as the polled folder in such tests.
        """
        with self.client() as client:
            client.delete_folder(folder)
            client.create_folder(folder)


@pytest.fixture(scope="session")
def dovecot() -> Iterator[DovecotServer]:
    """One Dovecot for the whole test run (do not stop it in a test: use ``dovecot_factory``)."""
    server = DovecotServer()
    server.start()
    yield server
    server.cleanup()


@pytest.fixture
def imap_account(dovecot: DovecotServer) -> ImapAccount:
    """A fresh, empty mailbox on the shared Dovecot."""
    return dovecot.new_account()


@pytest.fixture
def dovecot_factory() -> Iterator:
    """``dovecot_factory(capability=None, tls=None)`` starts a Dovecot of the test's own, stopped after the test.

    With ``tls`` (a :class:`tests.tlscerts.TlsCerts`) it presents that certificate, offers STARTTLS on
    ``.port`` and implicit TLS on ``.ssl_port``, and refuses to log in before TLS (``ssl = required``).
    """
    servers: list[DovecotServer] = []

    def start(capability: str | None = None, tls: TlsCerts | None = None) -> DovecotServer:
        server = DovecotServer(capability, tls)
        servers.append(server)
        server.start()
        return server

    yield start
    for server in servers:
        server.cleanup()
