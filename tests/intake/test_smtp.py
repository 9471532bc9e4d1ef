"""intake.smtp.send against a real SMTP server (aiosmtpd, see tests/smtpserver.py)."""

from __future__ import annotations

import email
import socket
import threading
import time
from email.message import EmailMessage
from email.policy import default

import pytest

from intake.config import ConfigError
from intake.smtp import PermanentSendError, SmtpConfig, TemporarySendError, send

BODY_SECRET = "Personnummer 19121212-1212 ska aldrig synas i ett felmeddelande."


def make_reply(to: str = "chef@kommun.example.test") -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "Läkemedelssupporten <support@example.test>"
    msg["To"] = to
    msg["Subject"] = "Sv: MittVaccin – Behörighet"
    msg["Auto-Submitted"] = "auto-replied"
    msg.set_content("Hej!\n\nBlanketten saknas i ditt mejl. Bifoga den och skicka igen.\n" + BODY_SECRET)
    return msg


def test_send_delivers_with_the_null_envelope_sender(smtp_server):
    send(make_reply(), smtp_server.config())

    [received] = smtp_server.messages
    assert received.envelope_from == ""
    assert received.rcpt_tos == ["chef@kommun.example.test"]
    parsed = email.message_from_bytes(received.data, policy=default)
    assert parsed["Subject"] == "Sv: MittVaccin – Behörighet"
    assert parsed["Auto-Submitted"] == "auto-replied"
    assert "Blanketten saknas" in parsed.get_content()


def test_send_can_use_an_explicit_envelope_sender_and_login(smtp_server):
    config = smtp_server.config(username=smtp_server.username, password=smtp_server.password)
    send(make_reply(), config, envelope_from="bounces@example.test")

    [received] = smtp_server.messages
    assert (received.envelope_from, received.login) == ("bounces@example.test", smtp_server.username)


def test_wrong_smtp_password_is_temporary_and_sends_nothing(smtp_server):
    config = smtp_server.config(username=smtp_server.username, password="fel-lösenord")
    with pytest.raises(TemporarySendError, match="AUTH.*535") as excinfo:
        send(make_reply(), config)
    assert "fel-lösenord" not in str(excinfo.value)
    assert smtp_server.messages == []


@pytest.mark.parametrize("at", ["RCPT", "DATA"])
def test_4xx_is_temporary(smtp_server, at):
    smtp_server.refuse_next(451, at=at)
    with pytest.raises(TemporarySendError, match="451") as excinfo:
        send(make_reply(), smtp_server.config())
    assert BODY_SECRET not in str(excinfo.value) and "Blanketten" not in str(excinfo.value)
    assert smtp_server.messages == []

    send(make_reply(), smtp_server.config())  # the retry goes through
    assert len(smtp_server.messages) == 1


@pytest.mark.parametrize(("at", "code"), [("RCPT", 550), ("DATA", 554)])
def test_5xx_is_permanent(smtp_server, at, code):
    smtp_server.refuse_next(code, at=at)
    with pytest.raises(PermanentSendError, match=str(code)) as excinfo:
        send(make_reply(), smtp_server.config())
    assert BODY_SECRET not in str(excinfo.value)
    assert smtp_server.messages == []


@pytest.mark.parametrize("code", [530, 535])
def test_setup_refusals_are_temporary_so_the_reply_waits_for_the_fix(smtp_server, code):
    """530 (STARTTLS or login required) and 535 (login refused) mean our configuration is wrong, not the
    recipient: the reply must stay queued until an operator fixes it, not be failed for good."""
    smtp_server.refuse_next(code, at="DATA")
    with pytest.raises(TemporarySendError, match=str(code)):
        send(make_reply(), smtp_server.config())
    send(make_reply(), smtp_server.config())
    assert len(smtp_server.messages) == 1


def test_server_down_is_temporary(smtp_server):
    config = smtp_server.config()
    smtp_server.stop()
    with pytest.raises(TemporarySendError, match="CONNECT"):
        send(make_reply(), config)


def test_silent_server_times_out_as_temporary():
    # A server that accepts the connection and never says a word.
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    thread = threading.Thread(target=lambda: accepted.append(listener.accept()[0]), daemon=True)
    thread.start()
    config = SmtpConfig(host="127.0.0.1", port=listener.getsockname()[1], tls="none", timeout=0.5)
    started = time.monotonic()
    try:
        with pytest.raises(TemporarySendError, match="timed out"):
            send(make_reply(), config)
        assert time.monotonic() - started < 3
    finally:
        for conn in accepted:
            conn.close()
        listener.close()


def test_starttls_is_required_when_configured(smtp_server):
    # The test server offers no STARTTLS: sending anyway would go out in clear text.
    with pytest.raises(TemporarySendError, match="STARTTLS"):
        send(make_reply(), smtp_server.config(tls="starttls"))
    assert smtp_server.messages == []


def test_plaintext_to_another_host_is_refused():
    with pytest.raises(ConfigError, match="smtp.allow_plaintext"):
        SmtpConfig(host="smtp.example.test", port=25, tls="none")
    SmtpConfig(host="smtp.example.test", port=25, tls="none", allow_plaintext=True)


def test_from_mapping_takes_the_password_from_the_environment():
    data = {"host": "smtp.example.test", "username": "bot", "from_address": "support@example.test"}
    config = SmtpConfig.from_mapping(data, env={"INTAKE_SMTP_PASSWORD": "hemligt"})
    assert (config.password, config.port, config.tls) == ("hemligt", 587, "starttls")
    assert "hemligt" not in repr(config)
    with pytest.raises(ConfigError, match="smtp.password"):
        SmtpConfig.from_mapping(data, env={})
    with pytest.raises(ConfigError, match="smtp.host"):
        SmtpConfig.from_mapping({}, env={})
    # Without a username the server is used without login, and no password is needed.
    assert SmtpConfig.from_mapping({"host": "smtp.example.test"}, env={}).password == ""
