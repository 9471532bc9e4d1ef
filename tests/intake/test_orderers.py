"""The orderer register: ``intake orderers`` (click, real SQLite and .xlsx files), the admin web pages
(Flask test client), the all-or-nothing import and the audit trail of every change."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from io import BytesIO

import openpyxl
import pytest
from click.testing import CliRunner

from intake import config as config_mod
from intake.cli import main
from intake.store import open_store
from intake.web.accounts import add_user
from intake.web.app import create_app
from tests.intake.sbforms import xlsx_of
from tests.intake.test_web import PASSWORD, csrf_of, login

TODAY = datetime.now(UTC).date()  # the poller's day
HEAD = ["E-post", "Namn", "Region", "Giltig från", "Giltig till"]
ADDRESSES = ("anna.andersson@region-halland.example.test", "bo.berg@region-skane.example.test")


@pytest.fixture
def conf(tmp_path):
    path = tmp_path / "intake.toml"
    path.write_text('[store]\npath = "intake.db"\n\n[routines]\nenabled = ["mittvaccin", "symtombedomning"]\n\n'
                    '[mailbox]\ndefault_routine = "mittvaccin"\n\n[web]\nsecret_key = "' + "k" * 40 + '"\n',
                    "utf-8")
    return path


def cli(conf, *args, user="admin"):
    return CliRunner().invoke(main, ["-c", str(conf), "orderers", *args, "--user", user] if args[0] in (
        "add", "remove", "import", "export") else ["-c", str(conf), "orderers", *args])


def rows(conf) -> list[dict]:
    return json.loads(cli(conf, "list", "--json").output)


def events(conf) -> list[dict]:
    store = open_store(conf.parent / "intake.db")
    return [{"kind": e["kind"], "actor": e["actor"], **json.loads(e["data"])}
            for e in store.db.query("select * from events where kind like 'orderer%' order by id")]


def test_add_list_update_remove_each_audited_with_ids_only(conf):
    added = cli(conf, "add", ADDRESSES[0], "--name", "Anna Andersson", "--region", "region halland")
    assert added.exit_code == 0, added.output
    assert cli(conf, "add", ADDRESSES[1], "--name", "Bo Berg", "--region", "Region Skåne", "--from", "2026-01-01",
               "--to", "2026-06-30").exit_code == 0
    listed = rows(conf)
    assert [(r["region"], r["email"], r["valid_today"]) for r in listed] == [
        ("Region Halland", ADDRESSES[0], True), ("Region Skåne", ADDRESSES[1], TODAY <= date(2026, 6, 30))]
    # The same region and address again updates the entry.
    again = cli(conf, "add", ADDRESSES[0].upper(), "--name", "Anna A", "--region", "Region Halland", "--to",
                (TODAY + timedelta(days=5)).isoformat())
    assert "updated" in again.output and len(rows(conf)) == 2
    first = rows(conf)[0]["id"]
    assert cli(conf, "remove", str(first)).exit_code == 0
    assert [r["email"] for r in rows(conf)] == [ADDRESSES[1]]
    assert [(e["kind"], e["actor"], e["orderer"]) for e in events(conf)] == [
        ("orderer_added", "admin", first), ("orderer_added", "admin", first + 1),
        ("orderer_updated", "admin", first), ("orderer_removed", "admin", first)]
    dumped = json.dumps(events(conf))
    assert not any(part in dumped for part in ("anna", "Andersson", "bo.berg", "Halland", "Skåne"))


@pytest.mark.parametrize(("args", "says"), [
    (["nobody", "--name", "X", "--region", "Region Halland"], "e-mail address"),
    (["a@b.example.test", "--name", "X", "--region", "Region Atlantis"], "region"),
    (["a@b.example.test", "--name", "X", "--region", "Region Halland", "--from", "2026-05-01", "--to",
      "2026-04-01"], "before"),
    (["a@b.example.test", "--name", "X", "--region", "Region Halland", "--routine", "mittvaccin"],
     "does not use the orderer register"),
])
def test_bad_additions_are_one_line_errors_and_change_nothing(conf, args, says):
    result = cli(conf, "add", *args)
    assert result.exit_code == 1 and says in result.output and "Traceback" not in result.output
    assert rows(conf) == [] and events(conf) == []


def test_remove_of_an_unknown_id_is_an_error(conf):
    result = cli(conf, "remove", "99")
    assert result.exit_code == 1 and "no orderer with id 99" in result.output


def test_import_then_export_round_trips_and_replace_removes_the_rest(conf, tmp_path):
    sheet = tmp_path / "bestallare.xlsx"
    sheet.write_bytes(xlsx_of([
        HEAD,
        [ADDRESSES[0], "Anna Andersson", "Region Halland", datetime(2026, 1, 1), None],
        [],  # blank rows are skipped
        [ADDRESSES[1], "Bo Berg", "region skåne", "2026-02-01", "2027-12-31"],
    ]))
    result = cli(conf, "import", str(sheet))
    assert result.exit_code == 0 and "2 rows: 2 added, 0 updated, 0 removed" in result.output
    assert cli(conf, "add", "cc@region-uppsala.example.test", "--name", "C", "--region", "Region Uppsala"
               ).exit_code == 0
    out = tmp_path / "export.xlsx"
    assert "3 orderers written" in cli(conf, "export", "--out", str(out)).output
    exported = list(openpyxl.load_workbook(out).active.iter_rows(values_only=True))
    assert exported[0] == tuple(HEAD)
    assert (ADDRESSES[1], "Bo Berg", "Region Skåne", "2026-02-01", "2027-12-31") in exported

    again = cli(conf, "import", str(sheet), "--replace")
    assert "2 rows: 0 added, 0 updated, 1 removed" in again.output
    assert sorted(r["email"] for r in rows(conf)) == sorted(ADDRESSES)
    kinds = [(e["kind"], e.get("rows"), e.get("removed")) for e in events(conf)]
    assert kinds == [("orderers_imported", 2, 0), ("orderer_added", None, None), ("orderers_exported", None, None),
                     ("orderers_imported", 2, 1)]


@pytest.mark.parametrize(("bad_row", "row", "says"), [
    (["not-an-address", "X", "Region Halland", "2026-01-01", None], 3, "e-mail address"),
    (["x@region.example.test", "", "Region Halland", "2026-01-01", None], 3, "name is missing"),
    (["x@region.example.test", "X", "Region Atlantis", "2026-01-01", None], 3, "region"),
    (["x@region.example.test", "X", "Region Halland", "första januari", None], 3, "'valid from'"),
    (["x@region.example.test", "X", "Region Halland", "2026-05-01", "2026-04-01"], 3, "before"),
    ([ADDRESSES[0], "Anna igen", "Region Halland", "2026-01-01", None], 3, "earlier row (row 2)"),
])
def test_an_import_with_a_bad_row_is_refused_whole_naming_the_row(conf, tmp_path, bad_row, row, says):
    assert cli(conf, "add", "keep@region-halland.example.test", "--name", "K", "--region", "Region Halland"
               ).exit_code == 0
    before = rows(conf)
    sheet = tmp_path / "bestallare.xlsx"
    sheet.write_bytes(xlsx_of([HEAD, [ADDRESSES[0], "Anna Andersson", "Region Halland", "2026-01-01", None],
                               bad_row, [ADDRESSES[1], "Bo Berg", "Region Skåne", "2026-01-01", None]]))
    result = cli(conf, "import", str(sheet), "--replace")
    assert result.exit_code == 1
    assert f"row {row}:" in result.output and says in result.output and "nothing was imported" in result.output
    assert rows(conf) == before  # nothing added, nothing replaced
    assert [e["kind"] for e in events(conf)] == ["orderer_added"]


def test_an_import_without_the_needed_columns_or_not_a_workbook_is_refused(conf, tmp_path):
    sheet = tmp_path / "a.xlsx"
    sheet.write_bytes(xlsx_of([["E-post", "Namn"], [ADDRESSES[0], "Anna"]]))
    result = cli(conf, "import", str(sheet))
    assert result.exit_code == 1 and "row 1:" in result.output and "Region" in result.output
    sheet.write_bytes(b"PK\x03\x04 not really")
    result = cli(conf, "import", str(sheet))
    assert result.exit_code == 1 and "not a readable .xlsx" in result.output


# -- the admin web pages ------------------------------------------------------------------------------------


@pytest.fixture
def web(conf):
    config = config_mod.load(conf)
    app = create_app(config)
    app.testing = True
    store = open_store(config.db_path)
    add_user(store, "anna", PASSWORD)
    add_user(store, "admin", PASSWORD, role="admin")
    return app


def client_of(app, user):
    c = app.test_client()
    assert login(c, user).status_code == 302
    return c


def test_handlers_may_not_see_or_change_the_orderer_register(web):
    c = client_of(web, "anna")
    assert 'href="/orderers/"' not in c.get("/tickets").get_data(as_text=True)
    assert c.get("/orderers/").status_code == 403
    token = csrf_of(c.get("/tickets").get_data(as_text=True))
    assert c.post("/orderers/add", data={"csrf_token": token, "email": ADDRESSES[0], "name": "A",
                                         "region": "Region Halland"}).status_code == 403
    assert c.get("/orderers/export.xlsx").status_code == 403
    assert web.test_client().get("/orderers/").status_code == 302  # not signed in: to the login page


def test_admin_adds_imports_exports_and_removes_with_csrf_and_audit(web, conf):
    c = client_of(web, "admin")
    page = c.get("/orderers/").get_data(as_text=True)
    assert "Beställare – 1177 symtombedömning" in page and "Region Västerbotten" in page
    assert 'href="/orderers/">Beställare</a>' in c.get("/tickets").get_data(as_text=True)
    token = csrf_of(page)
    form = {"email": ADDRESSES[0], "name": "Anna Andersson", "region": "Region Halland", "valid_from": "",
            "valid_to": ""}
    assert c.post("/orderers/add", data=form).status_code == 400  # no CSRF token
    resp = c.post("/orderers/add", data={**form, "csrf_token": token}, follow_redirects=True)
    body = resp.get_data(as_text=True)
    assert "Beställaren är tillagd." in body and ADDRESSES[0] in body and TODAY.isoformat() in body

    bad = xlsx_of([HEAD, [ADDRESSES[1], "Bo Berg", "Region Skåne", "2026-01-01", None],
                   ["bo2@region.example.test", "Bo Två", "Region Atlantis", "2026-01-01", None]])
    resp = c.post("/orderers/import", data={"csrf_token": token, "file": (BytesIO(bad), "lista.xlsx")},
                  content_type="multipart/form-data", follow_redirects=True)
    body = resp.get_data(as_text=True)
    assert "Rad 3: regionen saknas eller är inte en av rutinens regioner. Inget har importerats" in body
    assert ADDRESSES[1] not in body

    good = xlsx_of([HEAD, [ADDRESSES[1], "Bo Berg", "Region Skåne", "2026-01-01", None]])
    resp = c.post("/orderers/import", data={"csrf_token": token, "file": (BytesIO(good), "lista.xlsx")},
                  content_type="multipart/form-data", follow_redirects=True)
    assert "1 rader, 1 tillagda" in resp.get_data(as_text=True) and ADDRESSES[1] in resp.get_data(as_text=True)

    exported = c.get("/orderers/export.xlsx", query_string={"region": "Region Skåne"})
    assert exported.status_code == 200
    sheet = list(openpyxl.load_workbook(BytesIO(exported.data)).active.iter_rows(values_only=True))
    assert sheet[1:] == [(ADDRESSES[1], "Bo Berg", "Region Skåne", "2026-01-01", None)]

    store = open_store(conf.parent / "intake.db")
    [anna] = store.orderers("symtombedomning", email=ADDRESSES[0])
    resp = c.post(f"/orderers/{anna['id']}/remove", data={"csrf_token": token}, follow_redirects=True)
    assert "Beställaren är borttagen." in resp.get_data(as_text=True)
    assert c.post("/orderers/999/remove", data={"csrf_token": token}).status_code == 404
    trail = [(e["kind"], e["actor"], e["via"]) for e in events(conf)]
    assert trail == [("orderer_added", "admin", "web"), ("orderers_imported", "admin", "web"),
                     ("orderers_exported", "admin", "web"), ("orderer_removed", "admin", "web")]
