"""TLS against real servers: Dovecot and aiosmtpd presenting a certificate from a throwaway private CA.

The CA is trusted only through ``ca_file``; without it the certificate must be refused (verification
is never switched off), with a message that names certificate verification and the key to set.
"""

from __future__ import annotations

import shutil

import pytest
from imapclient import IMAPClient

from intake import config as config_mod
from intake.app import source_factory
from intake.config import ConfigError
from intake.smtp import SmtpConfig, TemporarySendError, send
from intake.sources.base import SourceError
from intake.sources.imap import ImapConfig, ImapSource
from tests.intake.test_imap_source import make_mail
from tests.intake.test_outbox_smtp import SmtpBot
from tests.intake.test_smtp import make_reply
from tests.mailmaker import make_mail as make_incoming
from tests.tlscerts import make_certs

imap = pytest.mark.imap  # the IMAP tests, as in test_imap_source.py

MODES = ["ssl", "starttls"]


@pytest.fixture(scope="session")
def certs(tmp_path_factory):
    """A private CA and a server certificate for localhost, 127.0.0.1 and 127.0.0.2."""
    return make_certs(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="session")
def wrong_host_certs(tmp_path_factory):
    """A private CA and a certificate for another host only (no loopback name or address)."""
    return make_certs(tmp_path_factory.mktemp("tls-wrong"), names=("wrong.example.test",), ips=())


@pytest.fixture
def tls_dovecot(dovecot_factory, certs):
    return dovecot_factory(tls=certs)


def imap_config(account, mode: str, **changes) -> ImapConfig:
    """``mode`` "ssl" uses the implicit-TLS port, "starttls" the plain port and STARTTLS."""
    server = account.server
    port = server.ssl_port if mode == "ssl" else server.port
    return account.make_config(tls=mode, port=port, **changes)


def snapshot(account) -> tuple:
    """Everything a session could change: folders, and each folder's mail with its flags."""
    folders = account.folders()
    return folders, {f: (account.fetch_all(f), account.flags(f)) for f in folders}


def logins(server, account) -> int:
    """How many times ``account`` has logged in, by the server's log."""
    return server.log_tail(100_000).count(f"Login: user=<{account.username}>")


# -- IMAP ---------------------------------------------------------------------------------------------


@imap
def test_tls_dovecot_refuses_login_before_tls(tls_dovecot):
    """The fixture is really TLS-only: a plain-text login on the STARTTLS port is refused."""
    account = tls_dovecot.new_account()
    with IMAPClient(tls_dovecot.host, tls_dovecot.port, ssl=False, timeout=5) as client:
        assert b"STARTTLS" in client.capabilities()
        with pytest.raises(IMAPClient.Error, match="Plaintext authentication disallowed"):
            client.login(account.username, account.password)


@imap
@pytest.mark.parametrize("mode", MODES)
def test_imap_with_ca_file_lists_fetches_and_moves(tls_dovecot, mode):
    account = tls_dovecot.new_account(password="hemligt-lösen")  # non-ASCII: SASL PLAIN over TLS
    mails = [make_mail(n) for n in range(3)]
    uids = [account.append(raw) for raw in mails]

    with ImapSource(imap_config(account, mode)) as source:
        assert source.list_uids() == uids
        fetched = list(source.fetch(uids, max_bytes=1_000_000))
        assert [m.raw for m in fetched] == mails
        source.move(uids[0], "Intake/Accepted")

    assert account.uids() == uids[1:]
    assert list(account.fetch_all("Intake/Accepted").values()) == [mails[0]]
    assert not any(b"\\Seen" in flags for flags in account.flags().values())


@imap
@pytest.mark.parametrize("mode", MODES)
def test_imap_without_ca_file_fails_verification_and_touches_nothing(tls_dovecot, mode):
    account = tls_dovecot.new_account()
    account.append(make_mail(1))
    before = snapshot(account)

    logins_before = logins(tls_dovecot, account)
    source = ImapSource(imap_config(account, mode, ca_file=""))
    with pytest.raises(SourceError) as excinfo:
        with source:
            pytest.fail("a session opened without trusting the server's certificate")
    message = str(excinfo.value)
    assert "certificate verification failed" in message
    assert "mailbox.ca_file" in message
    assert ("STARTTLS" if mode == "starttls" else "CONNECT") in message
    assert account.password not in message
    assert logins(tls_dovecot, account) == logins_before  # the password was never sent
    assert snapshot(account) == before


@imap
@pytest.mark.parametrize("mode", MODES)
def test_imap_certificate_for_another_host_is_refused(dovecot_factory, wrong_host_certs, mode):
    server = dovecot_factory(tls=wrong_host_certs)
    account = server.new_account()
    with pytest.raises(SourceError, match="certificate verification failed.*mismatch.*mailbox.host"):
        with ImapSource(imap_config(account, mode)):
            pass


@imap
def test_imap_starttls_refused_when_the_server_does_not_offer_it(imap_account):
    """The plain test server announces no STARTTLS: the bot must not fall back to logging in in clear."""
    imap_account.append(make_mail(1))
    before = snapshot(imap_account)
    config = imap_account.make_config(tls="starttls")
    with pytest.raises(SourceError, match="does not offer STARTTLS"):
        with ImapSource(config):
            pass
    assert snapshot(imap_account) == before


@imap
def test_imap_wrong_ca_file_names_the_file(dovecot_factory, certs, wrong_host_certs):
    server = dovecot_factory(tls=certs)
    account = server.new_account()
    other_ca = str(wrong_host_certs.ca_file)
    with pytest.raises(SourceError, match=f"mailbox.ca_file \\({other_ca}\\) does not hold the CA"):
        with ImapSource(imap_config(account, "ssl", ca_file=other_ca)):
            pass


@imap
def test_relative_mailbox_ca_file_is_relative_to_the_config_file(tmp_path, tls_dovecot, certs):
    account = tls_dovecot.new_account()
    uid = account.append(make_mail(1))
    (tmp_path / "certs").mkdir()
    shutil.copy(certs.ca_file, tmp_path / "certs" / "intern-ca.pem")
    toml = tmp_path / "intake.toml"
    toml.write_text(
        "[mailbox]\n"
        'kind = "imap"\n'
        f'host = "{tls_dovecot.host}"\nport = {tls_dovecot.ssl_port}\ntls = "ssl"\n'
        f'username = "{account.username}"\npassword = "{account.password}"\n'
        'ca_file = "certs/intern-ca.pem"\n'
    )
    config = config_mod.load(toml, env={})
    assert config["mailbox"]["ca_file"] == "certs/intern-ca.pem"

    source = source_factory(config)()
    assert source.config.ca_file == str(tmp_path / "certs" / "intern-ca.pem")
    with source:
        assert source.list_uids() == [uid]


@pytest.mark.parametrize("content", [None, b"", b"not a certificate\n"])
def test_unusable_ca_file_is_a_config_error(tmp_path, content):
    path = tmp_path / "ca.pem"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ConfigError, match="^mailbox.ca_file: .*ca.pem"):
        ImapConfig("imap.example.test", 993, "bot", "pw", tls="ssl", ca_file=str(path))
    with pytest.raises(ConfigError, match="^smtp.ca_file: .*ca.pem"):
        SmtpConfig("smtp.example.test", ca_file=str(path))


def test_ca_file_comes_from_the_mapping(certs):
    imap = ImapConfig.from_mapping(
        {"host": "imap.example.test", "username": "bot", "password": "pw", "ca_file": str(certs.ca_file)}, {}
    )
    smtp = SmtpConfig.from_mapping({"host": "smtp.example.test", "ca_file": str(certs.ca_file)}, {})
    assert imap.ca_file == smtp.ca_file == str(certs.ca_file)
    assert ImapConfig.from_mapping({"host": "h", "username": "u", "password": "p"}, {}).ca_file == ""
    # Verification stays on with a private CA: only the CA is trusted, and the host name is checked.
    for context in (imap.tls_context(), smtp.tls_context()):
        assert context.check_hostname and context.verify_mode.name == "CERT_REQUIRED"


# -- SMTP ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_smtp_with_ca_file_delivers(smtp_server_factory, certs, mode):
    server = smtp_server_factory(tls=mode, certs=certs)
    send(make_reply(), server.config(username=server.username, password=server.password))

    [received] = server.messages
    assert (received.envelope_from, received.login) == ("", server.username)
    assert received.rcpt_tos == ["chef@kommun.example.test"]


@pytest.mark.parametrize("mode", MODES)
def test_smtp_without_ca_file_is_temporary_and_sends_nothing(smtp_server_factory, certs, mode):
    server = smtp_server_factory(tls=mode, certs=certs)
    config = server.config(username=server.username, password=server.password, ca_file="")
    with pytest.raises(TemporarySendError, match="certificate verification failed.*smtp.ca_file") as excinfo:
        send(make_reply(), config)
    assert server.password not in str(excinfo.value)
    assert server.messages == []


@pytest.mark.parametrize("mode", MODES)
def test_smtp_certificate_for_another_host_is_refused(smtp_server_factory, wrong_host_certs, mode):
    server = smtp_server_factory(tls=mode, certs=wrong_host_certs)
    with pytest.raises(TemporarySendError, match="certificate verification failed.*mismatch.*smtp.host"):
        send(make_reply(), server.config())
    assert server.messages == []


def test_smtp_starttls_refused_when_the_server_does_not_offer_it(smtp_server):
    with pytest.raises(TemporarySendError, match="does not offer STARTTLS"):
        send(
            make_reply(),
            smtp_server.config(tls="starttls", username=smtp_server.username, password=smtp_server.password),
        )
    assert smtp_server.messages == []


def test_untrusted_smtp_certificate_keeps_the_reply_queued_until_ca_file_is_set(tmp_path, smtp_server_factory, certs):
    """A TLS trust failure is the operator's to fix: the reply stays pending, then goes once ca_file is set."""
    server = smtp_server_factory(tls="starttls", certs=certs)
    bot = SmtpBot(tmp_path, server, smtp={"tls": "starttls"})
    bot.drop(make_incoming(subject="MittVaccin – användarstöd"))
    bot.poll()

    result = bot.send()
    assert (result.sent, result.retried, result.failed) == (0, 1, 0)
    [row] = bot.outbox_rows()
    assert row["status"] == "pending"
    assert "certificate verification failed" in row["last_error"] and "smtp.ca_file" in row["last_error"]
    assert server.messages == []

    # The operator puts the CA beside the config and names it (relative to the config's folder).
    shutil.copy(certs.ca_file, tmp_path / "intern-ca.pem")
    fixed = SmtpBot(tmp_path, server, smtp={"tls": "starttls", "ca_file": "intern-ca.pem"})
    fixed.clock.step(3600)
    assert fixed.send().sent == 1
    [row] = fixed.outbox_rows()
    assert row["status"] == "sent"
    assert len(server.messages) == 1


# -- the other TLS mode on a port: the error names the setting to check -------------------------------


@imap
def test_imap_implicit_tls_on_the_plain_port_names_the_setting(tls_dovecot):
    account = tls_dovecot.new_account()
    config = account.make_config(tls="ssl", port=tls_dovecot.port)  # the STARTTLS port
    with pytest.raises(SourceError, match=rf'check mailbox.tls: tls = "starttls" for port {tls_dovecot.port}\?'):
        with ImapSource(config):
            pass


def test_smtp_implicit_tls_on_the_plain_port_names_the_setting(smtp_server_factory, certs):
    from intake.smtp import SetupSendError

    server = smtp_server_factory(tls="starttls", certs=certs)
    config = server.config(tls="ssl", username=server.username, password=server.password)
    with pytest.raises(SetupSendError, match=rf'check smtp.tls: tls = "starttls" for port {config.port}\?'):
        send(make_reply(), config)
    assert server.messages == []


def test_the_hint_for_well_known_ports():
    from intake.tlshint import tls_port_hint

    assert tls_port_hint("mailbox", "ssl", 143) == '; check mailbox.tls: tls = "starttls" for port 143?'
    assert tls_port_hint("smtp", "starttls", 465) == '; check smtp.tls: tls = "ssl" for port 465?'
    assert tls_port_hint("mailbox", "ssl", 993) == "" and tls_port_hint("smtp", "starttls", 587) == ""
