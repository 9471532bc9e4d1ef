"""Failures a handler can see: the health page and ``intake status`` after an SMTP outage and a bad mailbox
password (real aiosmtpd and Dovecot), honest exit codes of ``send`` and ``poll --once``, and the
back-off after failed logins."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from intake import config as config_mod
from intake.app import make_poller, open_app
from intake.cli import main
from intake.sources.base import SourceError
from intake.web.accounts import add_user
from intake.web.app import create_app
from tests.intake.imapdesk import env_for, write_config
from tests.intake.test_web import PASSWORD, csrf_of, login
from tests.mailmaker import make_mail


def smtp_conf(tmp_path, smtp_server, *, tls: str = "none") -> tuple:
    (tmp_path / "mailbox").mkdir(exist_ok=True)
    conf = tmp_path / "intake.toml"
    conf.write_text(
        '[store]\npath = "intake.db"\n\n[mailbox]\nkind = "local"\npath = "mailbox"\n\n'
        f'[outbox]\nkind = "smtp"\n\n[smtp]\nhost = "{smtp_server.host}"\nport = {smtp_server.port}\n'
        f'tls = "{tls}"\ntimeout = 5\n\n[replies]\nfrom_address = "mittvaccin@region.example.test"\n'
        '\n[web]\nsecret_key = "health-test-kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"\n')
    return conf


def test_send_and_poll_exit_non_zero_when_sending_is_misconfigured_and_say_why(tmp_path, smtp_server):
    conf = smtp_conf(tmp_path, smtp_server, tls="starttls")  # the test server offers no STARTTLS
    (tmp_path / "mailbox" / "1.eml").write_bytes(make_mail(subject="MittVaccin – användarstöd"))
    polled = CliRunner().invoke(main, ["-c", str(conf), "poll", "--once"])
    assert polled.exit_code == 1, polled.output
    assert "sending is misconfigured" in polled.output and "STARTTLS" in polled.output

    sent = CliRunner().invoke(main, ["-c", str(conf), "send"])
    assert sent.exit_code == 1
    assert "0 sent, 0 to retry" in sent.output  # nothing was due, and the output says why nothing went
    assert "1 waiting; next attempt" in sent.output and "STARTTLS" in sent.output

    status = CliRunner().invoke(main, ["-c", str(conf), "status"])
    assert status.exit_code == 1 and "smtp:    failing" in status.output and "STARTTLS" in status.output
    assert smtp_server.messages == []


def test_send_exits_zero_when_all_went(tmp_path, smtp_server):
    conf = smtp_conf(tmp_path, smtp_server)
    (tmp_path / "mailbox" / "1.eml").write_bytes(make_mail(subject="MittVaccin – användarstöd"))
    assert CliRunner().invoke(main, ["-c", str(conf), "poll", "--once", "--no-send"]).exit_code == 0
    sent = CliRunner().invoke(main, ["-c", str(conf), "send"])
    assert sent.exit_code == 0 and "1 sent" in sent.output
    assert CliRunner().invoke(main, ["-c", str(conf), "status"]).exit_code == 0


def test_the_health_page_after_an_smtp_outage_retries_and_cancels(tmp_path, smtp_server):
    conf = smtp_conf(tmp_path, smtp_server)
    for i in range(2):
        (tmp_path / "mailbox" / f"{i}.eml").write_bytes(
            make_mail(subject="MittVaccin – användarstöd", sender=f"P {i} <p{i}@halmstad.example.test>"))
    config = config_mod.load(conf)
    store, _ = open_app(config)
    smtp_server.stop()  # the outage
    CliRunner().invoke(main, ["-c", str(conf), "poll", "--once"])
    add_user(store, "anna", PASSWORD)
    client = create_app(config).test_client()
    login(client)
    page = client.get("/health").get_data(as_text=True)
    assert "Svar som väntar (2)" in page and "SMTP CONNECT failed" in page and "Fel" in page
    # Mark one as failed for good (as a 5xx would), then retry and cancel from the page.
    [first, second] = [r["id"] for r in store.db.query("select id from outbox order by id")]
    store.db["outbox"].update(first, {"status": "failed", "last_error": "SMTP RCPT refused: 550 5.1.1 no such user"})
    page = client.get("/health").get_data(as_text=True)
    assert "550 5.1.1 no such user" in page and "Skicka igen" in page
    token = csrf_of(page)
    client.post(f"/health/outbox/{first}/retry", data={"csrf_token": token})
    client.post(f"/health/outbox/{second}/cancel", data={"csrf_token": token})
    statuses = {r["id"]: (r["status"], r["attempts"]) for r in store.db.query("select * from outbox")}
    assert statuses[first] == ("pending", 0) and statuses[second][0] == "cancelled"
    kinds = [r["kind"] for r in store.db.query("select kind from events where kind like 'reply_%ed' order by id")]
    assert "reply_retried" in kinds and "reply_cancelled" in kinds


@pytest.mark.imap
def test_a_bad_mailbox_password_shows_on_the_health_page_and_the_poller_backs_off(imap_account, tmp_path):
    conf = write_config(tmp_path, imap_account)
    config = config_mod.load(conf, env=dict(env_for(imap_account), INTAKE_IMAP_PASSWORD="fel-lösenord"))
    store, routines = open_app(config)
    poller = make_poller(config, store, routines)
    with pytest.raises(SourceError, match="LOGIN"):
        poller.poll_once()
    import time

    def failed_logins() -> int:  # this account's only: the server is shared with other tests
        return sum("auth failed" in line and f"user=<{imap_account.username}>" in line
                   for line in imap_account.server.log_tail(100_000).splitlines())

    deadline = time.monotonic() + 5
    while failed_logins() < 1 and time.monotonic() < deadline:  # the server logs it on disconnect
        time.sleep(0.05)
    logins_before = failed_logins()
    assert logins_before == 1
    # intake run respects the back-off: no login is tried until it has passed.
    skipped = poller.poll_once(respect_backoff=True)
    assert skipped.backoff and "skipped" in skipped.summary()
    time.sleep(0.3)
    assert failed_logins() == logins_before
    [run] = store.poll_runs()
    assert (run["ok"], run["error_kind"]) == (0, "auth")

    add_user(store, "anna", PASSWORD)
    client = create_app(config).test_client()
    login(client)
    page = client.get("/health").get_data(as_text=True)
    assert "IMAP LOGIN failed" in page and "Nästa inloggningsförsök tidigast" in page
    assert "fel-lösenord" not in page


def test_the_back_off_doubles_and_is_capped(tmp_path):
    from datetime import UTC, datetime, timedelta

    from intake.moves import backoff_until
    from intake.store import open_store

    store = open_store(tmp_path / "db.sqlite")
    now = datetime.now(UTC)
    waits = []
    for _ in range(8):
        store.record_poll_run("imap://x", now.isoformat(), ok=False, error_kind="auth", error="LOGIN failed")
        waits.append(round((backoff_until(store, "imap://x") - now).total_seconds() / 60))
    assert waits == [1, 2, 4, 8, 16, 32, 60, 60]
    store.record_poll_run("imap://x", now.isoformat(), ok=True)
    assert backoff_until(store, "imap://x") is None
    assert timedelta  # imported for readers


def test_cli_and_web_show_times_in_the_same_zone_and_swedish_format(tmp_path, smtp_server):
    from intake.store import open_store
    from tests.intake.test_tickets import seed_ticket

    conf = smtp_conf(tmp_path, smtp_server)
    config = config_mod.load(conf)
    store = open_store(config.db_path)
    seed_ticket(store, created_at="2026-11-24T08:00:00+00:00")  # 09:00 in Stockholm (winter time)
    listed = CliRunner().invoke(main, ["-c", str(conf), "queue", "list"])
    shown = CliRunner().invoke(main, ["-c", str(conf), "ticket", "show", "MV-2026-0001"])
    assert "2026-11-24 09:00" in listed.output and "created_at:   2026-11-24 09:00" in shown.output
    add_user(store, "anna", PASSWORD)
    client = create_app(config).test_client()
    login(client)
    assert "2026-11-24 09:00" in client.get("/tickets").get_data(as_text=True)
