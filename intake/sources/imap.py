"""The IMAP mailbox source: UIDs only, batched peeks, and moves that never touch other clients' mail."""

from __future__ import annotations

import imaplib
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote

from imapclient import IMAPClient

from intake import faults
from intake.config import ConfigError, TlsMode, check_transport, password_from, typed
from intake.sources.base import FetchedMail, SourceAuthError, SourceError, SourceUnavailable
from intake.tlshint import tls_port_hint

T = TypeVar("T")


@dataclass(frozen=True)
class ImapConfig:
    """Where the support mailbox is and how to reach it (the ``[mailbox]`` section)."""

    host: str
    port: int
    username: str
    password: str
    tls: TlsMode = "ssl"
    allow_plaintext: bool = False
    folder: str = "INBOX"
    timeout: float = 30
    batch_size: int = 100
    ca_file: str = ""  # PEM CA certificate(s) to trust instead of the system store; "" = system store

    def __post_init__(self) -> None:
        check_transport("mailbox", self.host, self.tls, self.allow_plaintext)
        if self.ca_file:
            self.tls_context()  # a missing or broken ca_file is a config error now, not at the first poll
        if self.batch_size < 1:
            raise ConfigError("mailbox.batch_size: must be at least 1")
        if self.timeout <= 0:
            raise ConfigError("mailbox.timeout: must be more than 0 seconds")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], env: Mapping[str, str]) -> ImapConfig:
        """From the ``[mailbox]`` section (other keys in it are ignored); raises :class:`ConfigError`."""
        s = "mailbox"
        return cls(
            host=typed(s, data, "host", str),
            port=typed(s, data, "port", int, 993),
            username=typed(s, data, "username", str),
            password=password_from(s, data, env, "INTAKE_IMAP_PASSWORD"),
            tls=typed(s, data, "tls", str, "ssl"),
            allow_plaintext=typed(s, data, "allow_plaintext", bool, False),
            folder=typed(s, data, "folder", str, "INBOX"),
            timeout=typed(s, data, "timeout", float, 30.0),
            batch_size=typed(s, data, "batch_size", int, 100),
            ca_file=str(typed(s, data, "ca_file", str, "")),
        )

    def tls_context(self) -> ssl.SSLContext:
        """A verifying TLS context (hostname checked): ``ca_file`` if set, else the system trust store."""
        return tls_context("mailbox", self.ca_file)

    def __repr__(self) -> str:  # keep the password out of logs and tracebacks
        return f"ImapConfig({self.host!r}, {self.port}, {self.username!r}, tls={self.tls!r})"


def source_name(host: str, port: int, username: str, folder: str) -> str:
    """The stable name of an IMAP folder (``imap://user@host:port/folder``), the key of its recorded mail."""
    host = f"[{host}]" if ":" in host else host
    return f"imap://{quote(username, safe='')}@{host}:{port}/{quote(folder)}"


def tls_context(section: str, ca_file: str) -> ssl.SSLContext:
    """``ssl.create_default_context`` trusting ``ca_file`` (or the system store); raises :class:`ConfigError`.

    Verification and hostname checking are always on: a private CA is trusted only through ``ca_file``.
    """
    try:
        context = ssl.create_default_context(cafile=ca_file or None)
    except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise ConfigError(f"{section}.ca_file: cannot load CA certificates from {ca_file} ({reason})") from None
    if ca_file and not context.cert_store_stats()["x509"]:
        raise ConfigError(f"{section}.ca_file: no CA certificate found in {ca_file}")
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def describe_tls_failure(section: str, exc: ssl.SSLCertVerificationError, ca_file: str) -> str:
    """Why the server's certificate was not accepted, and which key to look at (one line)."""
    reason = " ".join((exc.verify_message or str(exc)).split())
    if exc.verify_code in (62, 64):  # X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH
        hint = f"{section}.host must be a name (or address) the server's certificate is issued for"
    elif ca_file:
        hint = f"{section}.ca_file ({ca_file}) does not hold the CA that signed the server's certificate"
    else:
        hint = f"if the server's certificate is issued by a private CA, set {section}.ca_file to that CA's certificate"
    return f"TLS certificate verification failed ({reason}); {hint}"


def _describe(exc: BaseException) -> str:
    """A short, single-line account of an error (server replies are cut: they must not carry mail)."""
    if isinstance(exc, socket.timeout | TimeoutError):
        return "timed out"
    text = str(exc) or type(exc).__name__
    if isinstance(exc, OSError) and exc.strerror:
        text = exc.strerror
    text = " ".join(text.split())
    return text[:200] + ("..." if len(text) > 200 else "")


class ImapSource:
    """A folder on an IMAP server, used as ``with source: ...``; each ``with`` is one fresh session."""

    def __init__(self, config: ImapConfig) -> None:
        self.config = config
        self.name = source_name(config.host, config.port, config.username, config.folder)
        self._client: IMAPClient | None = None
        self._uidvalidity: int | None = None
        self._capabilities: frozenset[str] = frozenset()
        self._folders: set[str] = set()  # folders known to exist in this session

    def __repr__(self) -> str:
        return f"ImapSource({self.name})"

    @property
    def batch_size(self) -> int:
        """How many mails one fetch asks for: the poller records and moves the same batches."""
        return self.config.batch_size

    # -- session ------------------------------------------------------------------------------------

    def __enter__(self) -> ImapSource:
        self._drop()  # a connection left from an earlier failure is never reused
        self._folders = set()
        cfg = self.config
        try:
            context = cfg.tls_context() if cfg.tls != "none" else None
        except ConfigError as exc:  # e.g. ca_file removed since the config was checked
            raise SourceError(f"IMAP CONNECT failed on {self.name}: {exc}") from None
        client = self._run(
            "CONNECT",
            lambda: IMAPClient(cfg.host, cfg.port, ssl=cfg.tls == "ssl", ssl_context=context, timeout=cfg.timeout),
        )
        self._client = client
        try:
            if cfg.tls == "starttls":
                if b"STARTTLS" not in self._call("CAPABILITY", client.capabilities):
                    raise SourceError(
                        f"IMAP STARTTLS failed on {self.name}: the server does not offer STARTTLS "
                        '(refusing to log in without TLS; use tls = "ssl" if it speaks implicit TLS)'
                    )
                self._call("STARTTLS", lambda: client.starttls(context))
            # imaplib sends LOGIN arguments as ASCII; SASL PLAIN carries UTF-8 (Swedish passwords).
            ascii_only = cfg.username.isascii() and cfg.password.isascii()
            login = client.login if ascii_only else client.plain_login
            try:
                self._call("LOGIN", lambda: login(cfg.username, cfg.password))
            except SourceUnavailable:
                raise
            except SourceError as exc:  # the server said NO: a wrong password, a locked or missing account
                raise SourceAuthError(str(exc)) from None
            client.normalise_times = False  # keep the server's time zone on INTERNALDATE
            # Capabilities change after login (MOVE, UIDPLUS often appear only then).
            self._capabilities = frozenset(
                c.decode("ascii", "replace") for c in self._call("CAPABILITY", client.capabilities)
            )
            selected = self._call("SELECT", lambda: client.select_folder(cfg.folder))
            self._uidvalidity = int(selected[b"UIDVALIDITY"])
        except BaseException:
            self._drop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        try:
            client.logout()
        except (imaplib.IMAP4.error, OSError):
            self._close(client)

    def _drop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            self._close(client)

    @staticmethod
    def _close(client: IMAPClient) -> None:
        try:
            client.shutdown()
        except (imaplib.IMAP4.error, OSError):
            pass

    def _run(self, command: str, action: Callable[[], T]) -> T:
        """Run one IMAP command; every failure becomes a :class:`SourceError` naming ``command``."""
        try:
            return action()
        except ssl.SSLCertVerificationError as exc:
            self._drop()
            reason = describe_tls_failure("mailbox", exc, self.config.ca_file)
            raise SourceError(f"IMAP {command} failed on {self.name}: {reason}") from None
        except (imaplib.IMAP4.abort, OSError) as exc:
            self._drop()  # the connection is dead or in an unknown state: the next ``with`` reconnects
            hint = tls_port_hint("mailbox", self.config.tls, self.config.port, exc) if command in (
                "CONNECT", "CAPABILITY", "STARTTLS") else ""
            if hint and isinstance(exc, ssl.SSLError):
                raise SourceError(f"IMAP {command} failed on {self.name}: {_describe(exc)}{hint}") from None
            raise SourceUnavailable(f"IMAP {command} failed on {self.name}: {_describe(exc)}{hint}") from None
        except imaplib.IMAP4.error as exc:
            raise SourceError(f"IMAP {command} failed on {self.name}: {_describe(exc)}") from None

    def _call(self, command: str, action: Callable[[], T]) -> T:
        if self._client is None:
            raise SourceUnavailable(f"IMAP {command} failed on {self.name}: not connected (use `with source:`)")
        return self._run(command, action)

    @property
    def _imap(self) -> IMAPClient:
        if self._client is None:
            raise SourceUnavailable(f"IMAP session on {self.name} is not open (use `with source:`)")
        return self._client

    # -- MailSource ---------------------------------------------------------------------------------

    def uidvalidity(self) -> int:
        if self._client is None or self._uidvalidity is None:
            raise SourceError(f"IMAP SELECT failed on {self.name}: not connected (use `with source:`)")
        return self._uidvalidity

    def list_uids(self) -> list[int | str]:
        uids = self._call("UID SEARCH", lambda: self._imap.search(["NOT", "DELETED"]))
        return sorted(int(uid) for uid in uids)

    def fetch(self, uids: Iterable[int | str], max_bytes: int) -> Iterator[FetchedMail]:
        """Peek at ``uids`` in batches of ``batch_size``: sizes and dates first, then bodies or headers.

        A UID no longer on the server is left out. Nothing is marked \\Seen.
        """
        wanted = [int(uid) for uid in uids]
        step = self.config.batch_size
        for start in range(0, len(wanted), step):
            yield from self._fetch_batch(wanted[start : start + step], max_bytes)

    def _fetch_batch(self, batch: list[int], max_bytes: int) -> Iterator[FetchedMail]:
        meta = self._call("UID FETCH", lambda: self._imap.fetch(batch, ["RFC822.SIZE", "INTERNALDATE"]))
        # A UID gone since list_uids() is missing; an unsolicited FLAGS update has no size: skip both.
        present = [uid for uid in batch if b"RFC822.SIZE" in meta.get(uid, {})]
        small = [uid for uid in present if meta[uid][b"RFC822.SIZE"] <= max_bytes]
        large = [uid for uid in present if uid not in small]
        bodies: dict[int, Any] = {}
        for chunk in _by_total_size(small, meta, max_bytes):  # bounds memory to about 2 * max_bytes
            bodies.update(self._call("UID FETCH", lambda c=chunk: self._imap.fetch(c, ["BODY.PEEK[]"])))
        headers = self._call("UID FETCH", lambda: self._imap.fetch(large, ["BODY.PEEK[HEADER]"])) if large else {}
        for uid in present:
            size, received = meta[uid][b"RFC822.SIZE"], meta[uid].get(b"INTERNALDATE")
            if uid in bodies:
                raw = bodies[uid].get(b"BODY[]")
                if raw is None:
                    continue  # expunged by another client between the two fetches
                yield FetchedMail(uid=uid, raw=raw, size=size, received=received, header=_header_of(raw))
            elif uid in headers:
                header = headers[uid].get(b"BODY[HEADER]") or b""
                yield FetchedMail(uid=uid, raw=None, size=size, received=received, header=header)

    def _ensure_folder(self, folder: str, *, known_ok: bool = False) -> None:
        """Create ``folder`` when missing; with ``known_ok``, a folder seen earlier in this session is trusted
        (a batch move to a folder deleted since then fails, and is retried mail by mail without trust)."""
        client = self._imap
        if known_ok and folder in self._folders:
            return
        if not self._call("LIST", lambda: client.folder_exists(folder)):
            self._call("CREATE", lambda: client.create_folder(folder))
            self._call("SUBSCRIBE", lambda: client.subscribe_folder(folder))
        self._folders.add(folder)

    def move_many(self, uids: list[int | str], folder: str) -> None:
        """Move several messages with one ``UID MOVE`` (the folder created when missing, looked up once a
        session). Without MOVE, each message takes the careful COPY+EXPUNGE path of :meth:`move`."""
        client, wanted = self._imap, [int(uid) for uid in uids]
        if "MOVE" not in self._capabilities:
            for uid in wanted:
                self.move(uid, folder)
            return
        self._ensure_folder(folder, known_ok=True)
        self._call("UID MOVE", lambda: client.move(wanted, folder))

    def delete_many(self, uids: list[int | str]) -> None:
        """Remove several messages for good with one ``UID STORE`` and one ``UID EXPUNGE`` (needs UIDPLUS)."""
        wanted = [int(uid) for uid in uids]
        if "UIDPLUS" not in self._capabilities:
            self.delete(wanted[0])  # raises: the same refusal as for one message
        self._expunge(wanted)

    def move(self, uid: int | str, folder: str) -> None:
        client, uid = self._imap, int(uid)
        self._ensure_folder(folder)
        if "MOVE" in self._capabilities:
            self._call("UID MOVE", lambda: client.move([uid], folder))
            return
        if "UIDPLUS" not in self._capabilities:
            # A plain EXPUNGE would also remove mail other clients have marked \Deleted.
            raise SourceError(
                f"IMAP UID MOVE failed on {self.name}: the server has neither MOVE nor UIDPLUS, "
                "so the message cannot be moved without expunging other clients' deleted mail"
            )
        # COPY then EXPUNGE is two steps: a poll killed between them left a copy in ``folder`` already,
        # so look for it there first and never copy twice.
        if not self._copied_already(uid, folder):
            self._call("UID COPY", lambda: client.copy([uid], folder))
            faults.point("after-copy")
        self._expunge([uid])

    def _copied_already(self, uid: int, folder: str) -> bool:
        """Whether ``folder`` holds a message with the same size and header block as ``uid`` in the inbox."""
        client = self._imap
        found = self._call("UID FETCH", lambda: client.fetch([uid], ["RFC822.SIZE", "BODY.PEEK[HEADER]"]))
        if uid not in found:
            return False
        size, head = found[uid][b"RFC822.SIZE"], found[uid].get(b"BODY[HEADER]") or b""
        try:
            self._call("EXAMINE", lambda: client.select_folder(folder, readonly=True))
            same_size = self._call("UID SEARCH", lambda: client.search(["LARGER", size - 1, "SMALLER", size + 1]))
            heads = self._call("UID FETCH", lambda: client.fetch(same_size, ["BODY.PEEK[HEADER]"])) if same_size else {}
            return any((data.get(b"BODY[HEADER]") or b"") == head for data in heads.values())
        finally:
            self._reselect()

    def _reselect(self) -> None:
        selected = self._call("SELECT", lambda: self._imap.select_folder(self.config.folder))
        if int(selected[b"UIDVALIDITY"]) != self._uidvalidity:
            raise SourceUnavailable(f"IMAP SELECT failed on {self.name}: UIDVALIDITY changed during the poll")

    def holds(self, folder: str, message_id: str) -> bool | None:
        if not message_id or not message_id.isascii():
            return None
        client = self._imap
        if not self._call("LIST", lambda: client.folder_exists(folder)):
            return False
        try:
            self._call("EXAMINE", lambda: client.select_folder(folder, readonly=True))
            return bool(self._call("UID SEARCH", lambda: client.search(["HEADER", "Message-ID", message_id])))
        finally:
            self._reselect()

    def relocate(self, from_folder: str, message_id: str, to_folder: str | None) -> bool:
        """Move (to ``to_folder``) or delete (``None``) the mail with ``message_id`` in ``from_folder``
        (a held mail a handler judged); ``False`` when no such mail is there."""
        if not message_id or not message_id.isascii():
            return False
        client = self._imap
        if not self._call("LIST", lambda: client.folder_exists(from_folder)):
            return False
        try:
            self._call("SELECT", lambda: client.select_folder(from_folder))
            uids = self._call("UID SEARCH", lambda: client.search(["HEADER", "Message-ID", message_id]))
            if not uids:
                return False
            if to_folder is not None:
                if not self._call("LIST", lambda: client.folder_exists(to_folder)):
                    self._call("CREATE", lambda: client.create_folder(to_folder))
                if "MOVE" in self._capabilities:
                    self._call("UID MOVE", lambda: client.move(uids, to_folder))
                    return True
                self._call("UID COPY", lambda: client.copy(uids, to_folder))
            if "UIDPLUS" not in self._capabilities:
                raise SourceError(f"IMAP UID EXPUNGE failed on {self.name}: the server lacks UIDPLUS")
            self._expunge(uids)
            return True
        finally:
            self._reselect()

    def delete(self, uid: int | str) -> None:
        uid = int(uid)
        if "UIDPLUS" not in self._capabilities:
            raise SourceError(
                f"IMAP UID EXPUNGE failed on {self.name}: the server lacks UIDPLUS, and a plain EXPUNGE "
                "would also remove other clients' deleted mail"
            )
        self._expunge([uid])

    # -- IDLE (RFC 2177) -----------------------------------------------------------------------------

    def has_idle(self) -> bool:
        """Whether the server offers IDLE (known once the session is open)."""
        return "IDLE" in self._capabilities

    def idle_wait(self, seconds: float, stop: threading.Event | None = None) -> bool:
        """Wait in IDLE on the selected folder for up to ``seconds``; ``True`` as soon as new mail is announced.

        ``False`` when the period ended (or ``stop`` was set) without news: the caller re-issues IDLE, which
        keeps the connection well inside the server's 29-minute limit. A dead connection raises nothing
        during IDLE (``idle_check`` returns ``[]`` at once), so an empty answer that came early is taken as
        a dead connection: :class:`SourceUnavailable`, like every other lost connection.
        """
        client = self._imap
        self._call("IDLE", client.idle)
        started = time.monotonic()
        announced = False
        try:
            while stop is None or not stop.is_set():
                left = seconds - (time.monotonic() - started)
                if left <= 0:
                    break
                wait = min(left, IDLE_CHECK_SECONDS)
                asked = time.monotonic()
                responses = self._call("IDLE", lambda w=wait: client.idle_check(timeout=w))
                if any(_says_bye(r) for r in responses):
                    self._drop()
                    raise SourceUnavailable(f"IMAP IDLE failed on {self.name}: the server closed the connection")
                if any(_announces_mail(r) for r in responses):
                    announced = True
                    break
                if not responses and time.monotonic() - asked < wait / 2:
                    self._drop()
                    raise SourceUnavailable(f"IMAP IDLE failed on {self.name}: the connection is dead")
        finally:
            if self._client is not None:
                _text, late = self._call("IDLE DONE", client.idle_done)
                announced = announced or any(_announces_mail(r) for r in late)  # came in just before DONE
        return announced

    def _expunge(self, uids: list[int]) -> None:
        """Flag ``uids`` deleted and expunge exactly them (``UID EXPUNGE``: other clients' deleted mail stays)."""
        self._call("UID STORE", lambda: self._imap.delete_messages(uids, silent=True))
        faults.point("after-flag-deleted")
        self._call("UID EXPUNGE", lambda: self._imap.uid_expunge(uids))

    def finish_delete(self, uid: int | str) -> None:
        """Remove a message a delete left flagged ``\\Deleted`` (a kill between the flag and the expunge; the
        inbox listing skips it, so nothing else would): flag and expunge it again, a no-op when it is gone."""
        if "UIDPLUS" in self._capabilities:
            self._expunge([int(uid)])


#: ``idle_check`` waits at most this long at a time, so a stop request is noticed within it.
IDLE_CHECK_SECONDS = 1.0


def _announces_mail(response: Any) -> bool:
    """``(3, b"EXISTS")`` or ``(1, b"RECENT")``: the server tells us the folder has new mail."""
    return isinstance(response, tuple) and len(response) >= 2 and response[1] in (b"EXISTS", b"RECENT")


def _says_bye(response: Any) -> bool:
    return isinstance(response, tuple) and bool(response) and response[0] == b"BYE"


def _header_of(raw: bytes) -> bytes:
    """The header block of a raw message, up to and including the blank line."""
    for sep in (b"\r\n\r\n", b"\n\n"):
        end = raw.find(sep)
        if end >= 0:
            return raw[: end + len(sep)]
    return raw


def _by_total_size(uids: list[int], meta: Mapping[int, Any], limit: int) -> Iterator[list[int]]:
    """Split ``uids`` into runs whose sizes add up to at most ``limit`` (at least one message each)."""
    chunk: list[int] = []
    total = 0
    for uid in uids:
        size = meta[uid][b"RFC822.SIZE"]
        if chunk and total + size > limit:
            yield chunk
            chunk, total = [], 0
        chunk.append(uid)
        total += size
    if chunk:
        yield chunk
