"""The access register's web pages (Flask test client) and its commands (click), on a register fed by real
mail through the poller."""

from __future__ import annotations

import json
from datetime import date, timedelta
from io import BytesIO

import openpyxl
import pytest
from click.testing import CliRunner

from intake.cli import main
from intake.web.accounts import add_user
from intake.web.app import create_app
from tests.intake.registerdesk import HSA, UNIT, RegisterDesk, person
from tests.intake.test_web import PASSWORD, csrf_of, login

START = date.today() + timedelta(days=1)
SECRET = "register-test-" + "s" * 32


@pytest.fixture
def desk(tmp_path):
    desk = RegisterDesk(tmp_path, web={"secret_key": SECRET})
    desk.done(desk.order("MittVaccin – Behörighet", "new", [
        person("19121212-1212", "Tolvan", "Vaccinatör", start=START, n=1),
        person(HSA, "Skott", "Läsbehörighet", start=START, n=3),
    ]))
    add_user(desk.store, "anna", PASSWORD)
    add_user(desk.store, "admin", PASSWORD, role="admin")
    return desk


def client_for(desk, user="anna"):
    app = create_app(desk.config, routines=desk.routines)
    app.testing = True
    c = app.test_client()
    assert login(c, user).status_code == 302
    return c


def kinds(desk, kind):
    return [json.loads(e["data"]) | {"actor": e["actor"]}
            for e in desk.store.db.query("select * from events where kind = ? order by id", [kind])]


def test_search_by_identifier_leads_to_the_person_page_without_the_identifier_in_any_url(desk):
    c = client_for(desk)
    page = c.get("/register/").get_data(as_text=True)
    assert "Behörighetsregister" in page
    resp = c.post("/register/person", data={"identifier": "191212121212", "csrf_token": csrf_of(page)})
    assert resp.status_code == 302 and "1212" not in resp.headers["Location"]
    body = c.get(resp.headers["Location"]).get_data(as_text=True)
    assert "Tolvan Testperson1" in body and "19121212-1212" in body and "Vaccinatör" in body
    assert UNIT in body and "Beata Beställare" in body
    assert [(e["found"], e["actor"]) for e in kinds(desk, "register_searched")] == [(1, "anna")]
    assert [e["entries"] for e in kinds(desk, "register_viewed")] == [1]


def test_an_unknown_identifier_says_so_and_is_audited(desk):
    c = client_for(desk)
    token = csrf_of(c.get("/register/").get_data(as_text=True))
    resp = c.post("/register/person", data={"identifier": "19440813-9089", "csrf_token": token})
    assert resp.status_code == 404
    assert "Ingen person med det personnumret" in resp.get_data(as_text=True)
    assert [e["found"] for e in kinds(desk, "register_searched")] == [0]


def test_unit_page_review_list_followup_and_filtered_export(desk):
    c = client_for(desk)
    unit = c.get("/register/unit", query_string={"unit": UNIT}).get_data(as_text=True)
    assert "Tolvan Testperson1" in unit and "Skott Testperson3" in unit and "2 poster för 2 personer" in unit
    review = c.get("/register/unit", query_string={"kommun": "Halmstad"}).get_data(as_text=True)
    assert "Granskningslista: Halmstad" in review and "Skott Testperson3" in review
    listing = c.get("/register/", query_string={"role": "Läsbehörighet"}).get_data(as_text=True)
    assert "Skott Testperson3" in listing and "Tolvan" not in listing
    resp = c.get("/register/export.xlsx", query_string={"role": "Läsbehörighet", "kommun": "Halmstad"})
    rows = list(openpyxl.load_workbook(BytesIO(resp.data)).active.iter_rows(values_only=True))
    assert rows[0][:3] == ("Personnummer/HSA-id", "Namn", "System")
    assert [r[:4] for r in rows[1:]] == [(HSA, "Skott Testperson3", "MittVaccin", "Läsbehörighet")]
    got = dict(zip(rows[0], rows[1], strict=True))
    assert (got["Läge"], got["Källa"], got["Kommun"]) == ("Aktiv", "Ärende", "Halmstad")
    pending = desk.order("MittVaccin – Behörighet avslut", "termination", [person(HSA, "Skott", None, end=START, n=3)])
    page = c.get("/register/followup").get_data(as_text=True)
    assert f'<a href="/tickets/{pending}">{pending}</a>' in page and "Väntar på avslut" in page
    assert [e["what"] for e in kinds(desk, "register_listed")] == ["unit", "review", "search", "followup"]
    assert [e["entries"] for e in kinds(desk, "register_exported")] == [1]


def test_corrections_are_for_admins_and_need_a_reason(desk):
    handler = client_for(desk)
    token = csrf_of(handler.get("/register/").get_data(as_text=True))
    form = {"person": "19571230-2842", "name": "Nils Testperson5", "system": "MittVaccin", "role": "Vaccinatör",
            "unit": UNIT, "kommun": "Halmstad", "reason": "Beviljad före registret", "csrf_token": token}
    assert handler.post("/register/entries", data=form).status_code == 403
    admin = client_for(desk, "admin")
    token = csrf_of(admin.get("/register/").get_data(as_text=True))
    resp = admin.post("/register/entries", data=form | {"reason": " ", "csrf_token": token}, follow_redirects=True)
    assert "Ange ett skäl" in resp.get_data(as_text=True)
    assert kinds(desk, "register_corrected") == []
    resp = admin.post("/register/entries", data=form | {"csrf_token": token}, follow_redirects=True)
    page = resp.get_data(as_text=True)
    assert "Posten är tillagd" in page and "Nils Testperson5" in page and "Tillagd manuellt" in page
    [added] = kinds(desk, "register_corrected")
    entry_id = added["entry"]
    resp = admin.post(f"/register/entries/{entry_id}/end", data={"ended_on": date.today().isoformat(),
                                                                 "reason": "Slutat", "csrf_token": token},
                      follow_redirects=True)
    assert "Posten är avslutad" in resp.get_data(as_text=True)
    assert desk.store.register_entry(entry_id)["state"] == "ended"
    handler_token = csrf_of(handler.get("/register/").get_data(as_text=True))
    assert handler.post(f"/register/entries/{entry_id}/correct", data={"role": "x", "reason": "y",
                                                                       "csrf_token": handler_token}).status_code == 403
    assert admin.post(f"/register/entries/{entry_id}/correct", data={"role": "x", "reason": "y"}).status_code == 400


def test_the_register_can_be_turned_off(tmp_path):
    desk = RegisterDesk(tmp_path, web={"secret_key": SECRET}, register={"enabled": False})
    add_user(desk.store, "anna", PASSWORD)
    c = client_for(desk)
    assert c.get("/register/").status_code == 404
    assert "Behörighetsregister" not in c.get("/tickets").get_data(as_text=True)


# -- the commands ----------------------------------------------------------------------------------------


def run(desk, *args):
    path = desk.root / "intake.toml"
    path.write_text('[store]\npath = "intake.db"\n[register]\nkey_file = "keys/register.key"\n'
                    '[replies]\nfrom_address = "mittvaccin@region.example.test"\n', "utf-8")
    return CliRunner().invoke(main, ["-c", str(path), "register", *args], env={"USER": "kalle"})


def test_cli_search_by_person_and_by_unit_is_audited(desk):
    result = run(desk, "search", "--person", "19121212-1212", "--json")
    assert result.exit_code == 0, result.output
    [row] = json.loads(result.output)
    assert (row["person"], row["role"], row["unit"]) == ("19121212-1212", "Vaccinatör", UNIT)
    result = run(desk, "search", "--unit", UNIT, "--json")
    assert sorted(r["person"] for r in json.loads(result.output)) == sorted(["19121212-1212", HSA])
    assert [(e["via"], e["actor"]) for e in kinds(desk, "register_searched")] == [("cli", "kalle")]
    assert [e["via"] for e in kinds(desk, "register_viewed")] == ["cli"]
    assert [e["entries"] for e in kinds(desk, "register_listed")] == [2]
    assert run(desk, "search").exit_code == 2  # says what to give


def test_cli_export_purge_and_key(desk, tmp_path):
    out = tmp_path / "granskning.xlsx"
    result = run(desk, "export", "--out", str(out), "--kommun", "Halmstad", "--role", "Vaccinatör")
    assert result.exit_code == 0 and "1 register entries" in result.output
    rows = list(openpyxl.load_workbook(out).active.iter_rows(values_only=True))
    assert [r[0] for r in rows[1:]] == ["19121212-1212"]
    assert kinds(desk, "register_exported")[0]["via"] == "cli"
    result = run(desk, "purge", "--days", "30")
    assert result.exit_code == 0 and "0 ended register entries purged" in result.output
    result = run(desk, "init-key")
    assert result.exit_code == 1 and "never overwritten" in result.output
