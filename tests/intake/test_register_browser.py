"""The access register in a real headless Chromium: search a person, their page, their unit, the export."""

from __future__ import annotations

from datetime import date, timedelta

import openpyxl
import pytest

from intake.web.accounts import add_user
from intake.web.app import create_app
from tests.intake.registerdesk import HSA, UNIT, RegisterDesk, person
from tests.intake.test_browser import PASSWORD, browser, serving  # noqa: F401 - the browser fixture

pytestmark = pytest.mark.browser

START = date.today() + timedelta(days=1)


@pytest.fixture
def site(tmp_path):
    desk = RegisterDesk(tmp_path, web={"secret_key": "browser-register-" + "k" * 32})
    desk.done(desk.order("MittVaccin – Behörighet", "new", [
        person("19121212-1212", "Tolvan", "Vaccinatör", start=START, n=1),
        person("19870521-2382", "Anna", "Administratör", start=START, n=2),
        person(HSA, "Skott", "Läsbehörighet", start=START, n=3),
    ]))
    add_user(desk.store, "anna", PASSWORD)
    app = create_app(desk.config, routines=desk.routines)
    with serving(app) as base:
        yield base, desk


def test_search_person_then_unit_then_export(site, browser, tmp_path):  # noqa: F811
    base, desk = site
    context = browser.new_context(accept_downloads=True)
    page = context.new_page()
    page.goto(base + "/register/")
    page.fill("input[name=username]", "anna")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(base + "/register/")
    assert page.inner_text("h1") == "Behörighetsregister"
    page.click("text=Behörighetsregister")  # the nav link leads here too

    page.fill("input[name=identifier]", "19870521-2382")
    page.click("button[name=find]")
    page.wait_for_url(base + "/register/person/*")
    assert "2382" not in page.url
    assert page.inner_text("h1") == "Anna Testperson2"
    main = page.inner_text("main")
    assert "Gällande behörigheter (1)" in main and "Administratör" in main and "Beata Beställare" in main

    page.click(f"main a:text-is('{UNIT}')")
    page.wait_for_url(base + "/register/unit*")
    assert page.inner_text("h1") == f"Enhet: {UNIT}"
    main = page.inner_text("main")
    assert all(name in main for name in ("Tolvan Testperson1", "Anna Testperson2", "Skott Testperson3"))

    with page.expect_download() as info:
        page.click("text=Exportera till Excel")
    path = tmp_path / "export.xlsx"
    info.value.save_as(path)
    rows = list(openpyxl.load_workbook(path).active.iter_rows(values_only=True))
    assert sorted(r[0] for r in rows[1:]) == sorted(["19121212-1212", "19870521-2382", HSA])
    kinds = [r["kind"] for r in desk.store.db.query("select kind from events where kind like 'register_%' "
                                                    "and kind != 'register_applied' order by id")]
    assert kinds == ["register_searched", "register_viewed", "register_listed", "register_exported"]
