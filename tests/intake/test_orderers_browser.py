"""The orderer register's admin page in a real headless Chromium: add, import (a bad file refused whole,
naming the row; then a good one), remove. The register then decides real mail."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from intake.orderers import lookups_for
from intake.pipeline import Settings, decide
from intake.web.accounts import add_user
from intake.web.app import create_app
from tests.intake.sbforms import ORDERER_EMAIL, order_mail, xlsx_of
from tests.intake.test_browser import PASSWORD, browser, serving  # noqa: F401 - the browser fixture
from tests.intake.test_poller import Desk

pytestmark = pytest.mark.browser

HEAD = ["E-post", "Namn", "Region", "Giltig från", "Giltig till"]


@pytest.fixture
def site(tmp_path):
    desk = Desk(tmp_path, routines={"enabled": ["symtombedomning"]}, web={"secret_key": "browser-" + "o" * 32})
    add_user(desk.store, "admin", PASSWORD, role="admin")
    app = create_app(desk.config, routines=desk.routines)
    with serving(app) as base:
        yield base, desk


def test_admin_keeps_the_orderer_register_in_the_browser(site, browser, tmp_path):  # noqa: F811
    base, desk = site
    page = browser.new_context().new_page()
    page.goto(base + "/")
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.click("nav >> text=Beställare")
    page.wait_for_url(base + "/orderers/*")
    assert page.inner_text("h1").startswith("Beställare – 1177 symtombedömning")

    page.fill("input[name=email]", ORDERER_EMAIL)
    page.fill("form.wide input[name=name]", "Olga Ordnare")
    page.select_option("form.wide select[name=region]", "Region Halland")
    page.click("button[name=add]")
    assert "Beställaren är tillagd." in page.inner_text("main")
    assert ORDERER_EMAIL in page.inner_text("table.orderers")

    bad = tmp_path / "fel.xlsx"
    bad.write_bytes(xlsx_of([HEAD, ["bo@region-skane.example.test", "Bo", "Region Skåne", "2026-01-01", None],
                             ["inte-en-adress", "Ci", "Region Skåne", "2026-01-01", None]]))
    page.set_input_files("input[name=file]", str(bad))
    page.click("button[name=import]")
    main = page.inner_text("main")
    assert "Rad 3: e-postadressen saknas eller är ingen e-postadress. Inget har importerats" in main
    assert "bo@region-skane.example.test" not in page.inner_text("table.orderers")

    good = tmp_path / "ratt.xlsx"
    good.write_bytes(xlsx_of([HEAD, ["bo@region-skane.example.test", "Bo", "Region Skåne", "2026-01-01", None]]))
    page.set_input_files("input[name=file]", str(good))
    page.click("button[name=import]")
    assert "1 tillagda" in page.inner_text("main")
    assert "bo@region-skane.example.test" in page.inner_text("table.orderers")

    page.click("table.orderers tr:has-text('bo@region-skane.example.test') button[name=remove]")
    assert "Beställaren är borttagen." in page.inner_text("main")
    assert "bo@region-skane.example.test" not in page.inner_text("table.orderers")

    # What the admin typed now decides mail.
    decision = decide(order_mail(tmp_path / "m"), desk.routines, settings=Settings(), now=datetime.now(UTC),
                      lookups=lookups_for(desk.store))
    assert decision.verdict == "accepted"
    kinds = [r["kind"] for r in desk.store.db.query("select kind from events where kind like 'orderer%' order by id")]
    assert kinds == ["orderer_added", "orderers_imported", "orderer_removed"]
