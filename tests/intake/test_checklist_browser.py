"""A ticket's checklist in a real headless Chromium against the real app on a loopback port: tick in order,
record the RSID, see it on later steps, the progress in the list; an admin closes anyway with a reason."""

from __future__ import annotations

import threading

import pytest

from intake import config as config_mod
from intake.web.accounts import add_user
from intake.web.app import create_app
from tests.intake.test_browser import ARGS, CHROMIUM, PASSWORD, sync_api
from tests.intake.test_checklists import BASE, local_bot, order

pytestmark = pytest.mark.browser


@pytest.fixture
def site(tmp_path):
    from werkzeug.serving import make_server

    bot, desk = local_bot(tmp_path)
    bot.drop = desk.drop
    ref = order(bot, "ny_anvandare")
    add_user(bot.store, "anna", PASSWORD)
    add_user(bot.store, "root", PASSWORD, role="admin")
    config = config_mod.from_mapping({**BASE, "store": {"path": str(bot.config.db_path)},
                                      "web": {"secret_key": "browser-test-" + "k" * 32}}, base_dir=tmp_path)
    server = make_server("127.0.0.1", 0, create_app(config), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", bot, ref
    finally:
        server.shutdown()
        thread.join(timeout=5)


@pytest.fixture
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        yield b
        b.close()


def sign_in(page, base: str, name: str) -> None:
    page.goto(base + "/tickets")
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(base + "/tickets")


def test_a_handler_works_the_checklist_and_an_admin_closes_anyway(site, browser):
    base, bot, ref = site
    page = browser.new_page()
    sign_in(page, base, "anna")
    page.goto(f"{base}/tickets/{ref}")
    assert "Checklista (0/7)" in page.inner_text("#checklista")
    # RSVPN waits for SKAT: no button to tick it yet.
    assert page.locator("#task-rsvpn button[name=done]").count() == 0
    assert "Väntar på: Skånekatalogen (SKAT)" in page.inner_text("#task-rsvpn")
    page.fill("#task-skat input[name=value]", "RS424242")
    page.click("#task-skat button[name=value_save]")
    assert "Värdet är sparat." in page.inner_text("main")
    page.click("#task-skat button[name=done]")
    assert "Uppgiften är avbockad." in page.inner_text("main")
    assert "Checklista (1/7)" in page.inner_text("#checklista")
    assert "RSID: RS424242" in page.inner_text("#task-rsvpn")
    page.click("#task-rsvpn button[name=done]")
    assert bot.state(ref)["rsvpn"] == "done"
    assert page.locator("button[name=close_anyway]").count() == 0  # a handler has no "close anyway"
    page.goto(base + "/tickets")
    assert page.inner_text(f"tr:has(a:text('{ref}')) td.progress") == "2/7"

    admin = browser.new_page()
    sign_in(admin, base, "root")
    admin.goto(f"{base}/tickets/{ref}")
    admin.fill("textarea[name=reason]", "Personen började aldrig; beställningen makuleras.")
    admin.click("button[name=close_anyway]")
    assert "skälet är sparat" in admin.inner_text("main")
    t = bot.store.ticket(ref)
    assert t["status"] == "done" and t["closed_at"]
    assert [n["text"] for n in bot.store.notes(t["id"])] == ["Personen började aldrig; beställningen makuleras."]
    # A closed ticket's checklist is shown, but not worked.
    assert admin.locator("#checklista button").count() == 0
