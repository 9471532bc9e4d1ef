"""A real SMTP server for tests (aiosmtpd on loopback): a pytest plugin (``pytest_plugins``).

Fixture ``smtp_server``: records every message it accepts in ``smtp_server.messages`` and can be told
to refuse the next ones with ``smtp_server.refuse_next(code, at="RCPT" | "DATA", count=1)``.
It accepts AUTH (over plain text, loopback only) for ``smtp_server.username`` / ``.password``.

Fixture ``smtp_server_factory``: ``smtp_server_factory(tls="starttls" | "ssl", certs=...)`` starts a server
of the test's own that presents ``certs`` (:func:`tests.tlscerts.make_certs`): with ``"starttls"`` it
requires STARTTLS before anything else, with ``"ssl"`` it speaks implicit TLS. Stopped after the test.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from intake.smtp import SmtpConfig
from tests.tlscerts import TlsCerts

_REPLIES = {
    421: "421 4.3.0 Service not available, try later",
    450: "450 4.2.0 Mailbox busy",
    451: "451 4.3.0 Temporary local problem, try later",
    550: "550 5.1.1 Mailbox unavailable",
    552: "552 5.3.4 Message too big",
    554: "554 5.7.1 Rejected",
}


@dataclass(frozen=True)
class ReceivedMessage:
    envelope_from: str  # "" for the null sender <> (aiosmtpd itself reports "<>")
    rcpt_tos: list[str]
    data: bytes  # the raw bytes as received
    login: str | None  # who authenticated, if anyone


@dataclass
class _Handler:
    username: str
    password: str
    messages: list[ReceivedMessage] = field(default_factory=list)
    refusals: list[tuple[str, int]] = field(default_factory=list)  # (stage, code) for the next messages

    def _refusal(self, stage: str) -> str | None:
        if self.refusals and self.refusals[0][0] == stage:
            code = self.refusals.pop(0)[1]
            return _REPLIES.get(code, f"{code} Refused by the test server")
        return None

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        refusal = self._refusal("RCPT")
        if refusal:
            return refusal
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        refusal = self._refusal("DATA")
        if refusal:
            return refusal
        login = session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else None
        self.messages.append(
            ReceivedMessage(
                "" if envelope.mail_from == "<>" else envelope.mail_from,
                list(envelope.rcpt_tos),
                envelope.original_content,
                login,
            )
        )
        return "250 2.0.0 Message accepted"

    def authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
            self.username.encode(),
            self.password.encode(),
        )
        return AuthResult(success=ok, handled=False, auth_data=auth_data)


class SmtpTestServer:
    """aiosmtpd on 127.0.0.1 at a free port (``port=0`` does not work in aiosmtpd, see its #276)."""

    def __init__(self, tls: str | None = None, certs: TlsCerts | None = None) -> None:
        assert tls in (None, "starttls", "ssl"), tls
        assert (tls is None) == (certs is None), "a TLS server needs certs, and certs need a TLS mode"
        self.tls, self.certs = tls, certs
        self.host = "127.0.0.1"
        with socket.socket() as sock:
            sock.bind((self.host, 0))
            self.port = sock.getsockname()[1]
        self.username, self.password = "intake-bot", "hemligt-lösen"  # non-ASCII on purpose
        self.handler = _Handler(self.username, self.password)
        self.controller: Controller | None = None
        self.running = False

    @property
    def messages(self) -> list[ReceivedMessage]:
        return self.handler.messages

    def refuse_next(self, code: int, *, at: str = "DATA", count: int = 1) -> None:
        """Answer ``code`` (e.g. 451 or 550) at ``at`` ("RCPT" or "DATA") for the next ``count`` messages."""
        assert at in ("RCPT", "DATA"), at
        self.handler.refusals.extend([(at, code)] * count)

    def config(self, **changes: object) -> SmtpConfig:
        """An :class:`SmtpConfig` for this server: no login, short timeout; plain text on loopback, or on a
        TLS server its TLS mode trusting the test CA (``ca_file``)."""
        values: dict[str, object] = {"host": self.host, "port": self.port, "tls": "none", "timeout": 5}
        if self.tls is not None and self.certs is not None:
            values.update(tls=self.tls, ca_file=str(self.certs.ca_file))
        values.update(changes)
        return SmtpConfig(**values)  # type: ignore[arg-type]

    def start(self) -> None:
        """Start, or start again after :meth:`stop` on the same port, keeping what was received.

        aiosmtpd closes a controller's event loop on stop, so each start gets a new controller.
        """
        tls_options: dict[str, object] = {}
        if self.tls == "starttls" and self.certs is not None:
            tls_options = {"tls_context": self.certs.server_context(), "require_starttls": True}
        elif self.tls == "ssl" and self.certs is not None:
            tls_options = {"ssl_context": self.certs.server_context()}
        self.controller = Controller(
            self.handler,
            hostname=self.host,
            port=self.port,
            authenticator=self.handler.authenticate,
            auth_require_tls=False,
            **tls_options,  # type: ignore[arg-type]
        )
        self.controller.start()
        self.running = True

    def stop(self) -> None:
        """The server goes away: later connections are refused."""
        if self.running and self.controller is not None:
            self.controller.stop()
            self.running = False


@pytest.fixture
def smtp_server() -> Iterator[SmtpTestServer]:
    server = SmtpTestServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def smtp_server_factory() -> Iterator:
    """``smtp_server_factory(tls=None, certs=None)`` starts an SMTP server of the test's own (see the module doc)."""
    servers: list[SmtpTestServer] = []

    def start(tls: str | None = None, certs: TlsCerts | None = None) -> SmtpTestServer:
        server = SmtpTestServer(tls, certs)
        servers.append(server)
        server.start()
        return server

    yield start
    for server in servers:
        server.stop()
