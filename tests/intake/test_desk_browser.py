"""The handler's desk in a real headless Chromium, against a real Dovecot mailbox and a real SMTP server:
reading a support question and its follow-up, judging held mail (and the mail moving on the server),
a reply with a personnummer refused, the health page after an SMTP outage and a bad mailbox password,
search. Screenshots of the pages are saved at 1366 px and at a phone's width in ``$SCREENSHOT_DIR``
(default ``var/screenshots``) for people to look at; CI keeps them as artifacts."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest

from intake import config as config_mod
from intake.app import make_outbox, make_poller, open_app
from intake.web.accounts import add_user
from intake.web.app import create_app
from tests.conftest import ROOT
from tests.intake.imapdesk import env_for
from tests.intake.test_browser import ARGS, CHROMIUM, PASSWORD
from tests.mailmaker import make_mail

pytestmark = [pytest.mark.browser, pytest.mark.imap]

sync_api = pytest.importorskip("playwright.sync_api")
if not CHROMIUM.exists():  # pragma: no cover
    pytest.skip("needs /usr/bin/chromium (scripts/install-test-deps)", allow_module_level=True)

SHOTS = Path(os.environ.get("SCREENSHOT_DIR") or ROOT / "var" / "screenshots")
WIDTHS = {"wide": 1366, "narrow": 390}
QUESTION = "Hej!\nBokningssidan visar ett tomt fönster när jag väljer mottagning.\nDet gäller alla i teamet.\n"
FOLLOWUP_HTML = "<p>Hej igen!</p><p>Nu fungerar det i <b>Firefox</b> men inte i Edge.</p>"
HELD_BODY = "Hej!\nGäller Test Testsson 19121212-1212 som inte kan logga in.\n"


def shoot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    for label, width in WIDTHS.items():
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(SHOTS / f"{name}-{label}.png"), full_page=True)
    page.set_viewport_size({"width": 1366, "height": 900})


class Site:
    def __init__(self, tmp_path, account, smtp_server, *, password: str | None = None):
        conf = tmp_path / "intake.toml"
        conf.write_text("\n".join([
            "[store]", 'path = "intake.db"', "",
            "[mailbox]", 'kind = "imap"', f'host = "{account.server.host}"', f"port = {account.server.port}",
            f'username = "{account.username}"', 'folder = "INBOX"', 'tls = "none"', "timeout = 5", "",
            "[outbox]", 'kind = "smtp"', "",
            "[smtp]", f'host = "{smtp_server.host}"', f"port = {smtp_server.port}", 'tls = "none"', "timeout = 5", "",
            "[replies]", 'from_address = "mittvaccin@region.example.test"', "",
            "[personal_data]", "reject_threshold = 0.99", "",  # a clear finding is held for a handler here
            "[web]", f'secret_key = "desk-browser-{"k" * 32}"', "",
        ]) + "\n")
        self.conf, self.account, self.smtp = conf, account, smtp_server
        self.config = config_mod.load(conf, env=env_for(account))
        self.store, self.routines = open_app(self.config)
        self.poller = make_poller(self.config, self.store, self.routines)
        add_user(self.store, "anna", PASSWORD)

    def poll(self):
        return self.poller.poll_once()

    def send(self):
        return make_outbox(self.config, self.store, self.routines).send_due()


@pytest.fixture
def site(tmp_path, imap_account, smtp_server):
    from werkzeug.serving import make_server

    s = Site(tmp_path, imap_account, smtp_server)
    server = make_server("127.0.0.1", 0, create_app(s.config), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    s.base = f"http://127.0.0.1:{server.server_port}"
    try:
        yield s
    finally:
        server.shutdown()
        thread.join(timeout=5)


@pytest.fixture
def page():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        pg = b.new_page(viewport={"width": 1366, "height": 900}, locale="sv-SE")  # as the staff's browsers
        yield pg
        b.close()


def sign_in(page, base: str) -> None:
    page.goto(base + "/login")
    page.fill("input[name=username]", "anna")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(base + "/")


def support_ticket(site) -> str:
    site.account.append(make_mail(subject="MittVaccin – användarstöd", body=QUESTION,
                                  message_id="<q@halmstad.example.test>"))
    site.poll()
    [t] = site.store.tickets()
    return t["ref"]


def test_reading_a_support_question_and_its_follow_up(site, page):
    ref = support_ticket(site)
    followup = make_mail(subject=f"Sv: MittVaccin – användarstöd [{ref}]", body=None, html=FOLLOWUP_HTML,
                         message_id="<f@halmstad.example.test>")
    site.account.append(followup)
    site.poll()
    sign_in(page, site.base)
    page.goto(site.base + "/tickets")
    row = page.locator("tr.unread")
    assert row.count() == 1 and ref in row.inner_text() and "Ny uppföljning" in row.inner_text()
    shoot(page, "tickets")
    page.click(f"text={ref}")
    assert "Oläst" in page.inner_text("main")
    shoot(page, "ticket")
    page.locator("a", has_text="Läs meddelandet").first.click()
    assert "Bokningssidan visar ett tomt fönster" in page.inner_text("pre.mailtext")
    page.go_back()
    page.locator("a", has_text="Läs meddelandet").nth(1).click()
    text = page.inner_text("pre.mailtext")
    assert "Nu fungerar det i Firefox men inte i Edge." in text and "<b>" not in page.content().split("mailtext")[1]
    assert page.locator("main b").count() == 0  # never rendered as HTML
    shoot(page, "message")
    viewed = [json.loads(r["data"])["what"] for r in site.store.db.query(
        "select data from events where kind = 'viewed' and message_id is not null")]
    assert viewed == ["message", "message"]
    page.goto(site.base + "/tickets")
    assert page.locator("tr.unread").count() == 0


def test_judging_held_mail_moves_it_on_dovecot(site, page):
    site.account.append(make_mail(subject="MittVaccin – felsökning", body=HELD_BODY, message_id="<h1@x.test>"))
    site.account.append(make_mail(subject="MittVaccin – felsökning", body=HELD_BODY.replace("Test", "Prov"),
                                  message_id="<h2@x.test>"))
    site.poll()
    assert len(site.account.uids("Intake/Held")) == 2
    sign_in(page, site.base)
    page.goto(site.base + "/mail?verdict=held")
    assert "…" not in page.inner_text("main") and "ett personnummer på rad 2" in page.inner_text("main")
    page.locator("main a.button", has_text="Granska").first.click()
    main = page.inner_text("main")
    assert "19121212-****" in main and "Rad 2" in main
    assert "19121212-1212" not in page.content()  # the raw value is not in the page until asked for
    shoot(page, "held")
    pk = int(page.url.rsplit("/", 1)[1])
    assert not list(site.store.db.query("select 1 from events where kind = 'viewed' and message_id = ?", [pk]))
    page.click("text=Visa hela texten")
    assert "19121212-1212" in page.inner_text("pre.mailtext")
    [seen] = site.store.db.query("select actor, data from events where kind = 'viewed' and message_id = ?", [pk])
    assert seen["actor"] == "anna" and json.loads(seen["data"])["what"] == "held_text"
    page.click("button[name=reject]")
    assert "Meddelandet är avvisat." in page.inner_text("main")
    page.locator("main a.button", has_text="Granska").first.click()
    page.click("button[name=release]")
    assert "släppt till kön" in page.inner_text("main")
    assert len(site.account.uids("Intake/Held")) == 2  # the web process has no mailbox session
    site.poll()
    assert site.account.uids("Intake/Held") == []
    assert len(site.account.uids("Intake/PersonalData")) == 1 and len(site.account.uids("Intake/Accepted")) == 1


def test_a_reply_with_a_personnummer_is_refused(site, page):
    ref = support_ticket(site)
    sign_in(page, site.base)
    page.goto(f"{site.base}/tickets/{ref}")
    reply = "form[action$='/reply'] textarea[name=text]"
    page.fill(reply, "Hej!\nJag har låst upp kontot för 19870521-2382 nu.")
    page.click("button[name=reply]")
    page.wait_for_selector(".flash.error")
    main = page.inner_text("main")
    assert "Texten skickades inte: den innehåller ett personnummer på rad 2" in main
    assert "19870521-2382" in page.input_value(reply)  # kept to edit
    shoot(page, "reply-refused")
    assert [r["kind"] for r in site.store.db.query("select kind from outbox")] == ["ack"]


def test_search_finds_by_subject_and_requester_but_not_by_personnummer(site, page):
    ref = support_ticket(site)
    sign_in(page, site.base)
    page.goto(site.base + "/tickets")
    page.fill("input[name=q]", "användarstöd")
    page.click("button:has-text('Filtrera')")
    assert ref in page.inner_text("table.list")
    page.fill("input[name=q]", "19121212-1212")
    page.click("button:has-text('Filtrera')")
    assert "Inga ärenden matchar filtret." in page.inner_text("table.list")
    page.click("text=Mina ärenden")
    assert "assignee=anna" in page.url


def test_the_health_page_after_an_smtp_outage_and_a_bad_mailbox_password(site, page, tmp_path):
    from intake.sources.base import SourceError

    site.smtp.stop()
    support_ticket(site)
    assert site.send().retried == 1
    bad = config_mod.load(site.conf, env=dict(env_for(site.account), INTAKE_IMAP_PASSWORD="fel-lösenord"))
    with pytest.raises(SourceError):
        make_poller(bad, site.store, site.routines).poll_once()
    sign_in(page, site.base)
    page.click("text=Driftstatus")
    main = page.inner_text("main")
    assert "IMAP LOGIN failed" in main and "Nästa inloggningsförsök tidigast" in main
    assert "SMTP CONNECT failed" in main and "Svar som väntar (1)" in main
    assert page.locator(".state.bad").count() == 2
    shoot(page, "health")
    page.goto(site.base + "/")
    shoot(page, "queues")
    page.goto(site.base + "/overview")
    shoot(page, "overview")
