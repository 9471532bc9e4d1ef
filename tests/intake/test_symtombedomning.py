"""The 1177 symtombedömning pack: its blank forms, several roles per person in every way they are written,
the authorised_orderer check against a real orderer register, what ``intake check`` says without one, the
register mapping and the completion text."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from intake.blankforms import write_blank_forms
from intake.cli import main
from intake.mailer import context, render
from intake.orderers import add_orderer, lookups_for
from intake.pipeline import Settings, decide
from intake.store import open_store
from parsers.docx_form import docx_grids
from parsers.mail import Attachment
from parsers.sandbox import parse_in_process
from parsers.xlsx_form import xlsx_grids
from rules.forms import judge_form
from rules.packs import load_pack, load_packs
from rules.register import entries_from_ticket, load_register_mapping
from tests.intake.sbforms import (
    CANCEL,
    FIELDS,
    ORDER,
    ORDERER_EMAIL,
    PACK,
    PERSONS,
    ROUTINE_NAME,
    SCHEMA,
    blank,
    cell_schema,
    fill_xlsx,
    form_bytes,
    order_mail,
)

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
TODAY = NOW.date()


@pytest.fixture(scope="module")
def routine():
    return load_pack(PACK)


def judged(attachment, today: date = TODAY):
    name, data, _ = attachment
    return judge_form([Attachment(name, "", data)], SCHEMA, form_kinds=[], request_type_label="beställning",
                      today=today)


# -- the pack and its blank forms ------------------------------------------------------------------------


def test_pack_loads_with_its_chain_ending_in_the_register_check(routine):
    assert routine.ref_prefix == "SB"
    assert [rt.subject for rt in routine.request_types] == [ORDER, CANCEL]
    assert [(row.check.name, row.action) for row in routine.chain][-2:] == [("form", "reject"),
                                                                            ("authorised_orderer", "reject")]
    result = CliRunner().invoke(main, ["packs", "check", str(PACK)])
    assert result.exit_code == 0 and result.output.strip() == "ok"
    regions = SCHEMA.spec("region").allowed(None)
    assert len(regions) == 21 and "Region Halland" in regions and "Västra Götalandsregionen" in regions


@pytest.mark.parametrize("suffix", [".xlsx", ".docx"])
def test_committed_blank_forms_are_what_the_generator_writes(tmp_path, suffix):
    fresh = next(p for p in write_blank_forms(SCHEMA, ROUTINE_NAME, tmp_path) if p.suffix == suffix)
    committed = PACK / "blank" / fresh.name
    grids = xlsx_grids if suffix == ".xlsx" else docx_grids

    def texts(p: Path) -> list[str]:
        return [c.text for g in grids(p.read_bytes()) for row in g.rows for c in row if c.text]

    assert texts(committed) == texts(fresh), "regenerate: intake forms symtombedomning --out " \
                                             "rules/packs/symtombedomning/blank"
    every = len(SCHEMA.fields) + len(SCHEMA.users.columns)
    assert parse_in_process(suffix[1:], committed.read_bytes(), SCHEMA).labels_found >= every


def test_cli_writes_the_blank_forms(tmp_path):
    result = CliRunner().invoke(main, ["forms", "symtombedomning", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".docx", ".xlsx"]


# -- several roles per person, however written -------------------------------------------------------------

TWO = ["Dashboard", "Flygledartornet"]
ALL = ["Systemadministratör", "Dashboard", "Flygledartornet"]


@pytest.mark.parametrize("suffix", [".xlsx", ".docx"])
@pytest.mark.parametrize("written", ["Dashboard, Flygledartornet", "Dashboard / Flygledartornet",
                                     "Dashboard\nFlygledartornet", "dashboard och flygledartornet"])
def test_roles_listed_in_one_cell(tmp_path, suffix, written):
    persons = [{**PERSONS[0], "roller": written}, PERSONS[1]]
    outcome = judged(form_bytes(tmp_path, suffix, persons=persons, schema=cell_schema()))
    assert outcome.reasons == []
    assert [u["roller"] for u in outcome.form.users] == [TWO, ["Systemadministratör"]]


@pytest.mark.parametrize("tick", ["X", "x", "✓", "ja"])
def test_ticked_checkbox_columns_in_excel(tmp_path, tick):
    out = fill_xlsx(blank(tmp_path, ".xlsx"), tmp_path / "f.xlsx", FIELDS, PERSONS, tick=tick)
    outcome = judged((out.name, out.read_bytes(), ""))
    assert outcome.reasons == []
    assert [u["roller"] for u in outcome.form.users] == [TWO, ["Systemadministratör"], ALL]
    assert [u["atgard"] for u in outcome.form.users] == ["add", "add", "remove"]


def test_ticked_checkbox_controls_in_word(tmp_path):
    outcome = judged(form_bytes(tmp_path, ".docx"))
    assert outcome.reasons == []
    assert [u["roller"] for u in outcome.form.users] == [TWO, ["Systemadministratör"], ALL]
    assert outcome.form.party("orderer") == {"name": "Olga Ordnare", "email": ORDERER_EMAIL}


@pytest.mark.parametrize("suffix", [".xlsx", ".docx"])
def test_an_unknown_role_is_named_by_row_and_column(tmp_path, suffix):
    persons = [PERSONS[0], {**PERSONS[1], "roller": "Dashboard, Pilot"}]
    outcome = judged(form_bytes(tmp_path, suffix, persons=persons, schema=cell_schema()))
    [problem] = outcome.reasons
    assert problem.code == "form.invalid_field"
    assert '"Behörigheter" på rad 2' in problem.message and "Pilot" not in problem.message
    assert "Systemadministratör, Dashboard, Flygledartornet" in problem.message


@pytest.mark.parametrize("suffix", [".xlsx", ".docx"])
def test_every_person_needs_a_role_a_shaped_hsa_id_and_an_action(tmp_path, suffix):
    persons = [{**PERSONS[0], "roller": []}, {**PERSONS[1], "hsa_id": "SE12-X"}, {**PERSONS[2], "atgard": None}]
    outcome = judged(form_bytes(tmp_path, suffix, persons=persons))
    messages = [r.message for r in outcome.reasons]
    assert any("Behörigheter" in m and "rad 1" in m for m in messages), messages
    assert any("HSA-id" in m and "rad 2" in m for m in messages), messages
    assert any("Åtgärd" in m and "rad 3" in m for m in messages), messages


# -- the check against a real register ---------------------------------------------------------------------


@pytest.fixture
def register(tmp_path, routine):
    store = open_store(tmp_path / "intake.db")

    def put(email_addr, region="Region Halland", valid_from=TODAY - timedelta(days=10), valid_to=None):
        add_orderer(store, routine, {"email": email_addr, "name": "Test Beställare", "region": region,
                                     "valid_from": valid_from.isoformat(),
                                     "valid_to": valid_to.isoformat() if valid_to else None}, actor="t")

    put(ORDERER_EMAIL)
    put("karin.kollega@region-halland.example.test")
    put("petra.skane@region-skane.example.test", region="Region Skåne")
    put("erik.gammal@region-halland.example.test", valid_to=TODAY - timedelta(days=1))
    put("fia.framtid@region-halland.example.test", valid_from=TODAY + timedelta(days=1))
    return store


def run(raw: bytes, routines, store, **kw):
    return decide(raw, routines, settings=Settings(), now=NOW, lookups=lookups_for(store), **kw)


@pytest.mark.parametrize(("sender", "orderer", "region", "verdict", "detail"), [
    (ORDERER_EMAIL, ORDERER_EMAIL, "Region Halland", "accepted", None),
    ("karin.kollega@region-halland.example.test", ORDERER_EMAIL, "Region Halland", "accepted", None),
    ("okand@example.test", ORDERER_EMAIL, "Region Halland", "rejected", "sender not"),
    (ORDERER_EMAIL, "nils.nobody@example.test", "Region Halland", "rejected", "orderer not"),
    ("petra.skane@region-skane.example.test", "petra.skane@region-skane.example.test", "Region Halland",
     "rejected", "sender not"),  # the sender is the form's orderer: checked once
    ("erik.gammal@region-halland.example.test", "erik.gammal@region-halland.example.test", "Region Halland",
     "rejected", "sender not"),
    ("okand@example.test", "nils.nobody@example.test", "Region Halland", "rejected", "sender and orderer not"),
    ("fia.framtid@region-halland.example.test", ORDERER_EMAIL, "Region Halland", "rejected", "sender not"),
    (ORDERER_EMAIL.upper(), ORDERER_EMAIL, "region halland", "accepted", None),  # any case
])
def test_sender_and_named_orderer_must_be_on_the_register_of_the_forms_region(
        tmp_path, register, sender, orderer, region, verdict, detail):
    routines = load_packs(["symtombedomning"])
    raw = order_mail(tmp_path, sender=sender, fields={**FIELDS, "region": region, "bestallare_epost": orderer})
    decision = run(raw, routines, register)
    assert decision.verdict == verdict
    if detail is None:
        assert decision.reasons == () and decision.reply.kind == "ack"
        return
    [why] = decision.reasons
    assert why.code == "sender.not_authorised" and why.detail.startswith(detail)
    assert "@" not in why.detail and "@" not in why.message and "Halland" not in why.message
    assert decision.reply.kind == "rejection" and "anmäla dig till supporten" in decision.reply.body


def test_a_form_without_a_region_checks_the_sender_against_every_region(tmp_path, register):
    routines = load_packs(["symtombedomning"])
    fields = {k: v for k, v in FIELDS.items() if k != "region"}
    known = run(order_mail(tmp_path / "a", fields=fields), routines, register)
    assert [r.code for r in known.reasons] == ["form.missing_field"]
    stranger = run(order_mail(tmp_path / "b", sender="okand@example.test", fields=fields), routines, register)
    assert [r.code for r in stranger.reasons] == ["form.missing_field", "sender.not_authorised"]


def test_the_chain_row_may_hold_instead_of_rejecting(tmp_path, register):
    folder = tmp_path / "packs" / "symtombedomning"
    shutil.copytree(PACK, folder)
    text = (folder / "pack.toml").read_text("utf-8")
    (folder / "pack.toml").write_text(text.replace('check = "authorised_orderer"\naction = "reject"',
                                                   'check = "authorised_orderer"\naction = "hold"'), "utf-8")
    routines = [load_pack(folder)]
    decision = run(order_mail(tmp_path, sender="okand@example.test"), routines, register)
    assert decision.verdict == "held" and [r.code for r in decision.reasons] == ["sender.not_authorised"]
    assert decision.reply is None


def test_without_a_register_the_mail_is_held_never_accepted(tmp_path, routine):
    decision = decide(order_mail(tmp_path), [routine], settings=Settings(), now=NOW)
    assert decision.verdict == "held" and decision.reasons[0].code == "sender.not_authorised"
    assert "not consulted" in decision.reasons[0].detail


def test_intake_check_reports_held_because_it_has_no_register(tmp_path):
    eml = tmp_path / "order.eml"
    eml.write_bytes(order_mail(tmp_path))
    conf = tmp_path / "intake.toml"
    conf.write_text('[routines]\nenabled = ["symtombedomning"]\n', "utf-8")
    result = CliRunner().invoke(main, ["-c", str(conf), "check", str(eml), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["verdict"] == "held" and out["routine"] == "symtombedomning"
    assert [r["code"] for r in out["reasons"]] == ["sender.not_authorised"]
    assert out["reply"] is None
    text = CliRunner().invoke(main, ["-c", str(conf), "check", str(eml)]).output
    assert "verdict:      held" in text and "[orderer register unknown for this mail]" in text


def test_mittvaccin_mail_never_meets_the_register_check(tmp_path, register):
    from tests.mailmaker import make_mail

    routines = load_packs(["mittvaccin", "symtombedomning"])
    decision = run(make_mail(subject="MittVaccin – användarstöd"), routines, register, default="mittvaccin")
    assert decision.verdict == "accepted" and ("authorised_orderer", "miss") not in decision.trail


# -- what a done ticket makes of the form ------------------------------------------------------------------


def test_register_mapping_gives_one_entry_per_role_and_ends_removed_rows(tmp_path, routine):
    form = judged(form_bytes(tmp_path, ".xlsx")).form.to_dict()
    mapping = load_register_mapping(routine)
    ticket = {"routine": "symtombedomning", "request_type": "bestallning", "closed_at": "2026-11-30T10:00:00"}
    changes = entries_from_ticket(ticket, form, mapping)
    assert [(c.op, c.person[-1], c.role) for c in changes] == [
        ("grant", "1", "Dashboard"), ("grant", "1", "Flygledartornet"), ("grant", "2", "Systemadministratör"),
        ("end", "3", "Systemadministratör"), ("end", "3", "Dashboard"), ("end", "3", "Flygledartornet")]
    assert {c.system for c in changes} == {"1177 symtombedömning"}
    assert {c.unit for c in changes} == {"Vårdcentralen Testbyn"} and {c.orderer_email for c in changes} == {
        ORDERER_EMAIL}


def test_completion_counts_persons_and_roles_and_names_nobody(tmp_path, routine):
    form = judged(form_bytes(tmp_path, ".docx")).form.to_dict()

    def completion(rtype: str, ref: str, form: dict | None = None):
        # As the lifecycle's "done" mail renders it: the ticket's stored form is in the template context.
        return render(routine, "completion", context(routine, routine.request_type(rtype), ref=ref, form=form))

    reply = completion("bestallning", "SB-2026-0007", form)
    assert reply.subject == f"Utfört: {ORDER} [SB-2026-0007]"
    assert "Hanterat: 3 personer, 6 behörigheter." in reply.body
    assert "- Tillagt: 3 behörigheter för 2 personer." in reply.body
    assert "- Borttaget: 3 behörigheter för 1 person." in reply.body
    assert not any(p["namn"] in reply.body or p["hsa_id"] in reply.body for p in PERSONS)
    single = completion("avbestallning", "SB-2026-0008", {**form, "users": form["users"][1:2]})
    assert "Hanterat: 1 person, 1 behörighet." in single.body
    purged = completion("bestallning", "SB-2026-0009")
    assert "Hanterat" not in purged.body and "SB-2026-0009" in purged.body


# -- the ticket page: one row per person, roles joined, the action by its label ------------------------------


def test_ticket_page_shows_each_person_with_roles_and_action(tmp_path):
    from intake.orderers import choose_routine
    from intake.web.accounts import add_user
    from intake.web.app import create_app
    from tests.intake.test_poller import Desk
    from tests.intake.test_web import PASSWORD, login

    desk = Desk(tmp_path, routines={"enabled": ["symtombedomning"]}, web={"secret_key": "s" * 40})
    add_orderer(desk.store, choose_routine(desk.routines, None),
                {"email": ORDERER_EMAIL, "name": "Olga", "region": "Region Halland",
                 "valid_from": (date.today() - timedelta(days=1)).isoformat()}, actor="t")
    desk.drop(order_mail(tmp_path / "mail"))
    desk.poll()
    [ticket] = desk.store.tickets()
    add_user(desk.store, "anna", PASSWORD)
    app = create_app(desk.config, routines=desk.routines)
    app.testing = True
    client = app.test_client()
    login(client)
    page = client.get(f"/tickets/{ticket['ref']}").get_data(as_text=True)
    assert "Personer (3)" in page and "[&#39;" not in page and "['" not in page
    table = page.split('<table class="users">', 1)[1].split("</table>", 1)[0]
    rows = [r for r in table.split("<tr>")[2:]]
    assert len(rows) == 3
    assert "Tolvan Test" in rows[0] and "<td>Dashboard, Flygledartornet</td>" in rows[0] and "Lägg till" in rows[0]
    assert "<td>Systemadministratör</td>" in rows[1]
    assert "<td>Systemadministratör, Dashboard, Flygledartornet</td>" in rows[2] and "Ta bort" in rows[2]
    assert "<dd>Region Halland</dd>" in page


def test_held_by_the_routine_then_released_by_a_handler_becomes_a_ticket(tmp_path):
    from intake.tickets import TicketDesk
    from tests.intake.test_poller import Desk

    packs = tmp_path / "packs"
    shutil.copytree(PACK, packs / "symtombedomning")
    pack_toml = packs / "symtombedomning" / "pack.toml"
    pack_toml.write_text(pack_toml.read_text("utf-8").replace(
        'check = "authorised_orderer"\naction = "reject"', 'check = "authorised_orderer"\naction = "hold"'), "utf-8")
    desk = Desk(tmp_path / "bot", routines={"enabled": ["symtombedomning"], "extra_dirs": [str(packs)]})
    desk.drop(order_mail(tmp_path / "mail", sender="okand@example.test"))
    desk.poll()
    [msg] = desk.messages()
    assert msg["verdict"] == "held" and json.loads(msg["reasons"])[0]["code"] == "sender.not_authorised"
    assert desk.store.tickets() == [] and desk.send().sent == 0  # no answer while held
    ref = TicketDesk(desk.store, desk.routines, Settings.from_config(desk.config)).release_held(msg["id"], "anna")
    assert ref.startswith("SB-") and desk.send().sent == 1
