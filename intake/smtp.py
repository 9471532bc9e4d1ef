"""Sending replies over SMTP: null envelope sender by default, and errors sorted into retry or give up."""

from __future__ import annotations

import base64
import smtplib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import Message as EmailMessage
from typing import Any

from intake.config import ConfigError, TlsMode, check_transport, password_from, typed
from intake.tlshint import tls_port_hint


class SendError(Exception):
    """A message was not sent. The text carries the SMTP command, code and reply, never the message."""


class TemporarySendError(SendError):
    """Worth retrying later: 4xx replies, refused or lost connections, timeouts, our own setup (TLS, login)."""


class SetupSendError(TemporarySendError):
    """Our own configuration is wrong (TLS trust, STARTTLS missing, login refused): every message would fail
    the same way until an operator fixes it, so nothing is the message's fault and nothing is given up."""


class ServerTimeoutError(TemporarySendError):
    """The server accepted no connection, or sent no greeting, within the timeout: every other reply of this
    round would wait just as long, so the round ends here (the reply is retried later)."""


class PermanentSendError(SendError):
    """Retrying will not help: the server refused this message, its sender or recipients (5xx)."""


@dataclass(frozen=True)
class SmtpConfig:
    """The outgoing mail server (the ``[smtp]`` section) and the address replies come from."""

    host: str
    port: int = 587
    username: str = ""
    password: str = ""
    tls: TlsMode = "starttls"
    allow_plaintext: bool = False
    timeout: float = 30
    from_address: str = ""
    ca_file: str = ""  # PEM CA certificate(s) to trust instead of the system store; "" = system store

    def __post_init__(self) -> None:
        check_transport("smtp", self.host, self.tls, self.allow_plaintext)
        if self.ca_file:
            self.tls_context()  # a missing or broken ca_file is a config error now, not at the first send
        if self.timeout <= 0:
            raise ConfigError("smtp.timeout: must be more than 0 seconds")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], env: Mapping[str, str]) -> SmtpConfig:
        """From the ``[smtp]`` section (other keys in it are ignored); raises :class:`ConfigError`.

        Without ``username`` the server is used without logging in, and no password is needed.
        """
        s = "smtp"
        username = typed(s, data, "username", str, "")
        return cls(
            host=typed(s, data, "host", str),
            port=typed(s, data, "port", int, 587),
            username=username,
            password=password_from(s, data, env, "INTAKE_SMTP_PASSWORD") if username else "",
            tls=typed(s, data, "tls", str, "starttls"),
            allow_plaintext=typed(s, data, "allow_plaintext", bool, False),
            timeout=typed(s, data, "timeout", float, 30.0),
            from_address=typed(s, data, "from_address", str, ""),
            ca_file=str(typed(s, data, "ca_file", str, "")),
        )

    def tls_context(self) -> ssl.SSLContext:
        """A verifying TLS context (hostname checked): ``ca_file`` if set, else the system trust store.

        Raises :class:`ConfigError` when ``ca_file`` cannot be loaded.
        """
        try:
            context = ssl.create_default_context(cafile=self.ca_file or None)
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
            raise ConfigError(f"smtp.ca_file: cannot load CA certificates from {self.ca_file} ({reason})") from None
        if self.ca_file and not context.cert_store_stats()["x509"]:
            raise ConfigError(f"smtp.ca_file: no CA certificate found in {self.ca_file}")
        context.check_hostname = True
        context.verify_mode = ssl.CERT_REQUIRED
        return context

    def __repr__(self) -> str:  # keep the password out of logs and tracebacks
        return f"SmtpConfig({self.host!r}, {self.port}, {self.username!r}, tls={self.tls!r})"


def _tls_failure(exc: ssl.SSLCertVerificationError, ca_file: str) -> str:
    """Why the server's certificate was not accepted, and which key to look at (one line)."""
    reason = " ".join((exc.verify_message or str(exc)).split())
    if exc.verify_code in (62, 64):  # X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH
        hint = "smtp.host must be a name (or address) the server's certificate is issued for"
    elif ca_file:
        hint = f"smtp.ca_file ({ca_file}) does not hold the CA that signed the server's certificate"
    else:
        hint = "if the server's certificate is issued by a private CA, set smtp.ca_file to that CA's certificate"
    return f"TLS certificate verification failed ({reason}); {hint}"


def _reply(code: int, text: bytes | str) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return f"{code} {' '.join(text.split())}"[:300]


#: 5xx replies that say our own setup is wrong (530 STARTTLS or login required, 534/535/538 login
#: refused or too weak): an operator fixes the configuration, and the reply must still go out then.
SETUP_CODES = frozenset({530, 534, 535, 538})


def _by_code(command: str, code: int, text: bytes | str) -> SendError:
    if code in SETUP_CODES:
        return SetupSendError(f"SMTP {command} refused: {_reply(code, text)}")
    kind = PermanentSendError if 500 <= code < 600 else TemporarySendError
    return kind(f"SMTP {command} refused: {_reply(code, text)}")


def _login(server: smtplib.SMTP, username: str, password: str) -> None:
    if username.isascii() and password.isascii():
        server.login(username, password)
        return
    # smtplib encodes credentials as ASCII; SASL PLAIN is UTF-8 (RFC 4616), so send it ourselves.
    token = base64.b64encode(f"\0{username}\0{password}".encode()).decode("ascii")
    code, text = server.docmd("AUTH", "PLAIN " + token)
    if code != 235:
        raise smtplib.SMTPAuthenticationError(code, text)


def send(msg: EmailMessage, config: SmtpConfig, *, envelope_from: str = "") -> None:
    """Send ``msg`` to the recipients in its To/Cc/Bcc headers.

    The envelope sender defaults to the null sender ``<>``, as automatic replies must use (RFC 3834),
    so bounces of a reply never come back to the bot. Raises :class:`TemporarySendError` or
    :class:`PermanentSendError`.
    """
    where = f"{config.host}:{config.port}"
    step = "CONNECT"
    try:
        context = config.tls_context() if config.tls != "none" else None
    except ConfigError as exc:  # e.g. ca_file removed since the config was checked: keep the reply
        raise SetupSendError(f"SMTP {step} failed on {where}: {exc}") from None
    try:
        if config.tls == "ssl":
            server: smtplib.SMTP = smtplib.SMTP_SSL(config.host, config.port, timeout=config.timeout, context=context)
        else:
            server = smtplib.SMTP(config.host, config.port, timeout=config.timeout)
        with server:
            step = "EHLO"
            server.ehlo()
            if config.tls == "starttls":
                step = "STARTTLS"
                if not server.has_extn("starttls"):
                    raise SetupSendError(
                        f"SMTP STARTTLS failed on {where}: the server does not offer STARTTLS "
                        "(refusing to send without TLS)"
                    )
                server.starttls(context=context)
                server.ehlo()
            if config.username:
                step = "AUTH"
                _login(server, config.username, config.password)
            step = "MAIL"
            refused = server.send_message(msg, from_addr=envelope_from)
            if refused:  # some recipients took it: a retry would send it to them twice
                codes = "; ".join(_reply(code, text) for code, text in refused.values())
                raise PermanentSendError(f"SMTP RCPT refused for some recipients: {codes}")
    except smtplib.SMTPRecipientsRefused as exc:
        replies = list(exc.recipients.values())
        kind = TemporarySendError if all(400 <= code < 500 for code, _ in replies) else PermanentSendError
        raise kind("SMTP RCPT refused: " + "; ".join(_reply(c, t) for c, t in replies)) from None
    except smtplib.SMTPSenderRefused as exc:
        raise _by_code("MAIL FROM", exc.smtp_code, exc.smtp_error) from None
    except smtplib.SMTPDataError as exc:
        raise _by_code("DATA", exc.smtp_code, exc.smtp_error) from None
    except smtplib.SMTPNotSupportedError as exc:
        # e.g. non-ASCII addresses to a server without SMTPUTF8: this message will never go.
        raise PermanentSendError(f"SMTP {step} not possible on {where}: {exc}") from None
    except smtplib.SMTPAuthenticationError as exc:
        raise SetupSendError(f"SMTP {step} failed on {where}: {_reply(exc.smtp_code, exc.smtp_error)}") from None
    except (smtplib.SMTPConnectError, smtplib.SMTPHeloError) as exc:
        # The server's greeting: not this message's fault, so keep it for a retry.
        raise TemporarySendError(f"SMTP {step} failed on {where}: {_reply(exc.smtp_code, exc.smtp_error)}") from None
    except smtplib.SMTPResponseException as exc:
        raise _by_code(step, exc.smtp_code, exc.smtp_error) from None
    except ssl.SSLCertVerificationError as exc:
        # Our trust setup (ca_file, host name), not this message: keep the reply queued for a retry.
        raise SetupSendError(f"SMTP {step} failed on {where}: {_tls_failure(exc, config.ca_file)}") from None
    except (smtplib.SMTPException, OSError) as exc:  # refused, reset, timed out, TLS failure
        hint = tls_port_hint("smtp", config.tls, config.port, exc) if step in ("CONNECT", "EHLO", "STARTTLS") else ""
        if step in ("CONNECT", "EHLO") and _timed_out(exc):
            raise ServerTimeoutError(
                f"SMTP {step} failed on {where}: timed out after {config.timeout:g} s{hint}") from None
        reason = "timed out" if isinstance(exc, TimeoutError) else (getattr(exc, "strerror", None) or str(exc))
        if hint and isinstance(exc, ssl.SSLError | smtplib.SMTPServerDisconnected):
            # The port speaks the other TLS mode: our setup, not this message (kept for after the fix).
            raise SetupSendError(f"SMTP {step} failed on {where}: {reason or type(exc).__name__}{hint}") from None
        raise TemporarySendError(f"SMTP {step} failed on {where}: {reason or type(exc).__name__}{hint}") from None


def _timed_out(exc: BaseException) -> bool:
    """A timeout, also when smtplib reports it as a lost connection while reading the greeting."""
    if isinstance(exc, TimeoutError):
        return True
    return isinstance(exc, smtplib.SMTPServerDisconnected) and "timed out" in str(exc)
