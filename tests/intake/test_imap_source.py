"""ImapSource against a real Dovecot (see tests/dovecot.py)."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from email.policy import SMTP

import imapclient
import pytest

from intake.config import ConfigError
from intake.sources.base import SourceError
from intake.sources.imap import ImapConfig, ImapSource
from tests.dovecot import CAPABILITY_WITHOUT_MOVE, CAPABILITY_WITHOUT_MOVE_OR_UIDPLUS

pytestmark = pytest.mark.imap


def make_mail(n: int, body: str = "") -> bytes:
    """A mail as Outlook would send it: Swedish subject and body, CRLF line ends."""
    msg = EmailMessage()
    msg["From"] = f"Enhetschef {n} <chef{n}@kommun.example.test>"
    msg["To"] = "support@example.test"
    msg["Subject"] = "MittVaccin – Behörighet"
    msg["Message-ID"] = f"<intake-test-{n}@kommun.example.test>"
    msg.set_content(body or f"Hej!\n\nBifogar blankett nummer {n}. Ring gärna 035-00 00 00.\n")
    return msg.as_bytes(policy=SMTP)


def test_lists_and_fetches_mail_byte_for_byte_and_leaves_it_unseen(imap_account):
    mails = [make_mail(n) for n in range(3)]
    when = datetime(2024, 3, 5, 9, 30, tzinfo=timezone(timedelta(hours=1)))
    uids = [imap_account.append(raw, msg_time=when) for raw in mails]

    with ImapSource(imap_account.config) as source:
        assert source.list_uids() == uids
        fetched = list(source.fetch(source.list_uids(), max_bytes=1_000_000))

    assert [m.uid for m in fetched] == uids
    assert [m.raw for m in fetched] == mails
    assert [m.size for m in fetched] == [len(raw) for raw in mails]
    assert all(m.received == when for m in fetched)
    assert fetched[0].header == mails[0][: mails[0].index(b"\r\n\r\n") + 4]
    assert not any(b"\\Seen" in flags for flags in imap_account.flags().values())


def test_list_uids_leaves_out_mail_marked_deleted(imap_account):
    kept = imap_account.append(make_mail(1))
    imap_account.append(make_mail(2), flags=("\\Deleted",))

    with ImapSource(imap_account.config) as source:
        assert source.list_uids() == [kept]


def test_fetch_in_batches_smaller_than_the_mailbox(imap_account, monkeypatch):
    mails = [make_mail(n) for n in range(5)]
    uids = [imap_account.append(raw) for raw in mails]
    round_trips = []
    real_fetch = imapclient.IMAPClient.fetch

    def counting_fetch(self, messages, data, modifiers=None):
        round_trips.append(list(messages))
        return real_fetch(self, messages, data, modifiers)

    monkeypatch.setattr(imapclient.IMAPClient, "fetch", counting_fetch)

    with ImapSource(imap_account.make_config(batch_size=2)) as source:
        fetched = list(source.fetch(uids, max_bytes=1_000_000))

    assert [m.raw for m in fetched] == mails
    # Three batches (2 + 2 + 1), each one size/date round trip and one body round trip.
    assert round_trips == [uids[0:2], uids[0:2], uids[2:4], uids[2:4], uids[4:5], uids[4:5]]


def test_oversize_mail_comes_as_header_only(imap_account):
    small = make_mail(1)
    big = make_mail(2, body="Lång bilaga.\n" + "x" * 70 + "\n" * 2000)
    imap_account.append(small)
    big_uid = imap_account.append(big)

    with ImapSource(imap_account.config) as source:
        fetched = {m.uid: m for m in source.fetch(source.list_uids(), max_bytes=len(small) + 100)}

    assert fetched[big_uid].raw is None
    assert fetched[big_uid].size == len(big)
    assert fetched[big_uid].header == big[: big.index(b"\r\n\r\n") + 4]
    assert b"Subject: MittVaccin" in fetched[big_uid].header
    assert [m.raw for m in fetched.values() if m.raw] == [small]


def test_move_creates_the_folder_and_moves_the_mail(imap_account):
    first, second = make_mail(1), make_mail(2)
    uid = imap_account.append(first)
    other = imap_account.append(second)

    with ImapSource(imap_account.config) as source:
        source.move(uid, "Intake/Accepted")
        assert source.list_uids() == [other]

    assert "Intake/Accepted" in imap_account.folders()
    assert "Intake/Accepted" in imap_account.subscribed()
    assert list(imap_account.fetch_all("Intake/Accepted").values()) == [first]
    assert list(imap_account.fetch_all("INBOX").values()) == [second]


def test_move_without_move_capability_copies_and_expunges_only_that_mail(dovecot_factory):
    server = dovecot_factory(capability=CAPABILITY_WITHOUT_MOVE)
    account = server.new_account()
    with account.client() as client:
        assert not client.has_capability("MOVE")  # else this test would not test the fallback
    ours = make_mail(1)
    uid = account.append(ours)
    # Another client marked a mail \Deleted but has not expunged it: it must survive our move.
    theirs = account.append(make_mail(2), flags=("\\Deleted",))

    with ImapSource(account.config) as source:
        source.move(uid, "Intake/Rejected")

    assert list(account.fetch_all("Intake/Rejected").values()) == [ours]
    assert account.uids("INBOX") == [theirs]


def test_move_without_move_or_uidplus_is_refused_and_leaves_the_mail(dovecot_factory):
    server = dovecot_factory(capability=CAPABILITY_WITHOUT_MOVE_OR_UIDPLUS)
    account = server.new_account()
    uid = account.append(make_mail(1))

    with ImapSource(account.config) as source, pytest.raises(SourceError, match="neither MOVE nor UIDPLUS"):
        source.move(uid, "Intake/Accepted")

    assert account.uids("INBOX") == [uid]
    assert b"\\Deleted" not in account.flags()[uid]


def test_delete_removes_only_that_mail(imap_account):
    gone = imap_account.append(make_mail(1))
    kept = imap_account.append(make_mail(2))
    theirs = imap_account.append(make_mail(3), flags=("\\Deleted",))

    with ImapSource(imap_account.config) as source:
        source.delete(gone)

    assert imap_account.uids() == [kept, theirs]


def test_uidvalidity_changes_when_the_folder_is_recreated(imap_account):
    imap_account.append(make_mail(1), folder="Support")
    imap_account.append(make_mail(2), folder="Support")
    source = ImapSource(imap_account.make_config(folder="Support"))
    with source:
        before = source.uidvalidity()
        assert source.list_uids() == [1, 2]

    imap_account.recreate_folder("Support")
    fresh = make_mail(3)
    imap_account.append(fresh, folder="Support")

    with source:
        assert source.uidvalidity() != before
        assert source.list_uids() == [1]  # the same UID as before, now a different mail
        assert [m.raw for m in source.fetch([1], max_bytes=1_000_000)] == [fresh]


def test_name_identifies_user_server_and_folder(imap_account):
    source = ImapSource(imap_account.make_config(folder="Support"))
    host, port = imap_account.server.host, imap_account.server.port
    assert source.name == f"imap://{imap_account.username.replace('@', '%40')}@{host}:{port}/Support"


@pytest.mark.parametrize("host", ["mail.example.test", "192.0.2.10"])
def test_plaintext_to_another_host_is_refused_before_connecting(host):
    with pytest.raises(ConfigError, match="allow_plaintext"):
        ImapConfig(host=host, port=143, username="bot", password="secret", tls="none")
    # Explicitly allowed, it is accepted (and nothing connected in either case).
    ImapConfig(host=host, port=143, username="bot", password="secret", tls="none", allow_plaintext=True)


def test_starttls_is_required_when_configured(imap_account):
    # The test server offers no STARTTLS: logging in anyway would send the password in clear.
    with pytest.raises(SourceError, match="STARTTLS"):
        with ImapSource(imap_account.make_config(tls="starttls")):
            pass


def test_wrong_password_names_login_and_not_the_password(dovecot_factory):
    # A server of its own: Dovecot slows down later logins from an address that failed one.
    config = dovecot_factory().new_account().make_config(password="not-the-password")
    with pytest.raises(SourceError, match="LOGIN") as excinfo:
        with ImapSource(config):
            pass
    assert "not-the-password" not in str(excinfo.value)


def test_missing_folder_names_select(imap_account):
    with pytest.raises(SourceError, match="SELECT"):
        with ImapSource(imap_account.make_config(folder="Finns/Inte")):
            pass


def test_no_server_names_connect(dovecot_factory):
    server = dovecot_factory()
    config = server.new_account().config
    server.stop()
    with pytest.raises(SourceError, match="CONNECT"):
        with ImapSource(config):
            pass


@pytest.mark.slow
def test_server_killed_mid_fetch_then_a_new_session_after_restart_works(dovecot_factory):
    server = dovecot_factory()
    account = server.new_account()
    mails = [make_mail(n) for n in range(3)]
    for raw in mails:
        account.append(raw)
    source = ImapSource(account.make_config(batch_size=1))

    with pytest.raises(SourceError, match="UID FETCH") as excinfo:
        with source:
            fetched = source.fetch(source.list_uids(), max_bytes=1_000_000)
            assert next(fetched).raw == mails[0]
            server.kill()
            list(fetched)
    assert "Behörighet" not in str(excinfo.value) and "Hej" not in str(excinfo.value)

    server.start()
    with source:
        assert [m.raw for m in source.fetch(source.list_uids(), max_bytes=1_000_000)] == mails


@pytest.mark.slow
def test_hung_server_times_out_and_the_next_session_reconnects(dovecot_factory):
    server = dovecot_factory()
    account = server.new_account()
    uid = account.append(make_mail(1))
    source = ImapSource(account.make_config(timeout=1))

    with source:
        server.freeze()
        started = time.monotonic()
        with pytest.raises(SourceError, match="UID SEARCH.*timed out"):
            source.list_uids()
        assert time.monotonic() - started < 5
        with pytest.raises(SourceError):  # the dead connection is not used again
            source.list_uids()

    server.thaw()
    with source:
        assert source.list_uids() == [uid]


def test_from_mapping_reads_the_password_from_the_environment():
    data = {"host": "imap.example.test", "port": 993, "username": "bot", "password_env": "BOT_PW"}
    config = ImapConfig.from_mapping(data, env={"BOT_PW": "hemligt"})
    assert (config.password, config.tls, config.folder, config.batch_size) == ("hemligt", "ssl", "INBOX", 100)
    assert "hemligt" not in repr(config)
    default_env = ImapConfig.from_mapping({"host": "h", "username": "u"}, {"INTAKE_IMAP_PASSWORD": "pw"})
    assert default_env.password == "pw"


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"host": "h", "username": "u"}, "mailbox.password"),
        ({"username": "u", "password": "p"}, "mailbox.host"),
        ({"host": "h", "password": "p"}, "mailbox.username"),
        ({"host": "h", "username": "u", "password": "p", "tls": "maybe"}, "mailbox.tls"),
        ({"host": "h", "username": "u", "password": "p", "port": "993"}, "mailbox.port"),
        ({"host": "h", "username": "u", "password": "p", "batch_size": 0}, "mailbox.batch_size"),
    ],
)
def test_from_mapping_names_the_bad_key(data, key):
    with pytest.raises(ConfigError, match=key):
        ImapConfig.from_mapping(data, env={})


def test_a_password_with_swedish_letters_logs_in(dovecot):
    account = dovecot.new_account(password="Sommar-åäö-2024")
    uid = account.append(make_mail(1))
    with ImapSource(account.config) as source:
        assert source.list_uids() == [uid]
