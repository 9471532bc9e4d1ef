"""The staff web UI in a real headless Chromium (Debian's), against the real app on a loopback port.

Needs ``playwright`` (Python package only; its own browser downloads are not used) and /usr/bin/chromium
(``scripts/install-test-deps`` installs it).
"""

from __future__ import annotations

import email
import email.policy
import threading
from contextlib import contextmanager
from pathlib import Path

import pytest

from intake import config as config_mod
from intake.app import open_app
from intake.outbox import Outbox, smtp_transport
from intake.pipeline import Settings
from intake.web.accounts import add_user
from intake.web.app import create_app
from tests.intake.test_tickets import FORM, REQUESTER, seed_ticket

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
PASSWORD = "korrekt-hast-batteri"
SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'

sync_api = pytest.importorskip("playwright.sync_api")
if not CHROMIUM.exists():  # pragma: no cover - install-test-deps puts it there
    pytest.skip("needs /usr/bin/chromium (scripts/install-test-deps)", allow_module_level=True)


@contextmanager
def serving(app):
    """The app on a free loopback port in a thread (a real HTTP server for the browser); yields its base URL."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=5)


@pytest.fixture
def site(tmp_path, smtp_server):
    """The real app on a free loopback port, a temp database with two tickets, the SMTP test server as outbox."""
    config = config_mod.from_mapping({
        "store": {"path": "intake.db"},
        "outbox": {"kind": "smtp"},
        "smtp": {"host": smtp_server.host, "port": smtp_server.port, "tls": "none", "timeout": 5},
        "replies": {"from_address": "mittvaccin@region.example.test"},
        "web": {"secret_key": "browser-test-" + "k" * 32},
    }, base_dir=tmp_path)
    store, routines = open_app(config)
    add_user(store, "anna", PASSWORD)
    seed_ticket(store, ref="MV-2026-0001")
    form = dict(FORM, fields={"kommun": SCRIPT, "bestallare_namn": IMG},
                users=[{"row": 1, "namn": SCRIPT, "personnummer": IMG, "roll": IMG}])
    seed_ticket(store, ref="MV-2026-0002", subject=f"MittVaccin – Behörighet {SCRIPT}", form=form,
                requester=f"{IMG}@halmstad.example.test")
    app = create_app(config, routines=routines, settings=Settings.from_config(config))
    with serving(app) as base:
        yield base, config, store, app


@pytest.fixture
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        yield b
        b.close()


def sign_in(page, base: str) -> None:
    page.goto(base + "/tickets")
    assert "/login" in page.url
    page.fill("input[name=username]", "anna")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(base + "/tickets")


def test_take_and_finish_a_ticket_and_the_requester_gets_the_completion_mail(site, browser, smtp_server):
    base, config, store, _ = site
    page = browser.new_page()
    sign_in(page, base)
    page.click("text=MV-2026-0001")
    page.wait_for_url(base + "/tickets/MV-2026-0001")
    assert page.inner_text("h1").startswith("Ärende MV-2026-0001")
    page.click("button[name=take]")
    assert "Du har tagit ärendet." in page.inner_text("main")
    assert store.ticket("MV-2026-0001")["assignee"] == "anna"
    page.fill("textarea[name=note]", "Behörigheten gäller från måndag.")
    page.click("button[name=done]")
    assert "Ärendet är utfört" in page.inner_text("main")

    outbox = Outbox(store, smtp_transport(config), from_address=config["replies"]["from_address"])
    assert outbox.send_due().sent == 1
    [received] = smtp_server.messages
    assert received.rcpt_tos == [REQUESTER]
    msg = email.message_from_bytes(received.data, policy=email.policy.default)
    assert msg["Subject"] == "Utfört: MittVaccin – Behörighet [MV-2026-0001]"
    assert msg["In-Reply-To"] == "<MV-2026-0001@halmstad.example.test>"
    assert "Behörigheten gäller från måndag." in msg.get_content()
    page.reload()
    assert "Skickat" in page.inner_text("main")  # the history shows the mail as sent


def test_xss_payloads_show_as_text_and_never_run(site, browser):
    base, *_ = site
    page = browser.new_page()
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    sign_in(page, base)
    for url in ("/tickets/MV-2026-0002", "/tickets", "/mail"):
        page.goto(base + url)
        page.wait_for_load_state("load")
    page.goto(base + "/tickets/MV-2026-0002")
    text = page.inner_text("main")
    assert SCRIPT in text and IMG.strip('"') in text
    assert page.locator("main img").count() == 0 and page.locator("main script").count() == 0
    assert dialogs == []


def test_a_signed_out_browser_is_sent_to_login_from_every_page(site, browser):
    base, _, store, app = site
    page = browser.new_page()
    from intake.web.app import PUBLIC_ENDPOINTS

    # Public pages: sign-in, static files, and the attestant's one-time link (the token is its authority).
    gets = sorted({r.rule for r in app.url_map.iter_rules() if "GET" in r.methods and r.endpoint not in
                   PUBLIC_ENDPOINTS})
    assert len(gets) >= 7
    for rule in gets:
        url = rule.replace("<ref>", "MV-2026-0001").replace("<int:att_id>", "1").replace("<int:msg_id>", "1")
        url = url.replace("<int:index>", "0").replace("<int:pk>", "1")
        page.goto(base + url)
        assert page.url.startswith(base + "/login"), url
        assert "halmstad" not in page.content()
    page.goto(base + "/attest/" + "0" * 32)  # an unknown token shows nothing of any ticket
    assert "Länken gäller inte" in page.content() and "MV-2026" not in page.content()


def test_a_post_without_csrf_token_is_refused(site, browser):
    base, _, store, _ = site
    context = browser.new_context()
    page = context.new_page()
    sign_in(page, base)
    resp = context.request.post(base + "/tickets/MV-2026-0001/done", form={"note": "x"}, max_redirects=0)
    assert resp.status == 400
    resp = context.request.post(base + "/tickets/MV-2026-0001/take", form={"csrf_token": "forged"}, max_redirects=0)
    assert resp.status == 400
    t = store.ticket("MV-2026-0001")
    assert (t["status"], t["assignee"]) == ("new", None)


def test_a_cookie_copied_before_logout_is_refused_after_it(site, browser):
    base, *_ = site
    context = browser.new_context()
    page = context.new_page()
    sign_in(page, base)
    copied = [c for c in context.cookies() if c["name"] == "intake_session"]
    assert copied and copied[0]["httpOnly"]
    # Someone else's browser with the same cookie (copied from disk, a proxy log, a shared machine).
    other = browser.new_context()
    other.add_cookies(copied)
    thief = other.new_page()
    thief.goto(base + "/tickets/MV-2026-0001")
    assert thief.url == base + "/tickets/MV-2026-0001"  # the copy works while the session lives ...
    page.click("form.logout button")
    page.wait_for_url(base + "/login")
    thief.goto(base + "/tickets/MV-2026-0001")
    assert thief.url.startswith(base + "/login")  # ... and not once its owner has logged out
    assert "halmstad" not in thief.content()
    other.close()
    context.close()
