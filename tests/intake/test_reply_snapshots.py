"""Snapshots of every reply the MittVaccin pack renders, as the requester would receive it.

Each reply comes out of the real path: ``intake.pipeline.decide`` on a mail built with
tests/mailmaker.py (or a bundled demo mail), recorded by the real :class:`~intake.recorder.Recorder`
(which gives the ticket its reference; the mailer renders the receipt once, with it), and read back from the outbox;
the completion mail comes from a handler closing that ticket. ``now`` is fixed.

Snapshots live in fixtures/replies/<case>.txt; run with ``UPDATE_SNAPSHOTS=1`` to rewrite them,
then read the diff. Every snapshot is also checked for personal data: no personnummer in any form,
no name or value from the attached form, no text of the incoming body, and never an incoming subject
that held personal data.
"""

from __future__ import annotations

import email
import email.policy
import json
import os
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from intake.desk import TicketDesk
from intake.pipeline import Settings, decide
from intake.recorder import Recorder
from intake.sources.base import FetchedMail
from intake.store import open_store
from tests.conftest import FIXTURES, NOW, ROOT
from tests.mailmaker import make_mail

SNAPSHOTS = FIXTURES / "replies"
DEMO = ROOT / "intake" / "demo_mail"
PACK = ROOT / "rules" / "packs" / "mittvaccin"
COMMON = ROOT / "rules" / "packs" / "_common"
EXPECTED_FORMS = json.loads((FIXTURES / "forms" / "expected.json").read_text("utf-8"))
UPDATE = os.environ.get("UPDATE_SNAPSHOTS") == "1"

TEST_PERSONNUMMER = ["19121212-1212", "19870521-2382", "20000229-2381", "19440813-9089", "19571230-2842"]
#: A personnummer or samordningsnummer in any common writing: 10 or 12 digits, -, + or space before the last 4.
PERSONNUMMER = re.compile(r"(?<![\d-])(?:\d{2})?\d{6}[-+ ]?\d{4}(?![\d-])")
REF = re.compile(r"\bMV-\d{4}-\d{4}\b")


def _form_mail(subject: str, form: str, **kw) -> bytes:
    path = FIXTURES / "forms" / form
    ctype = ("application/vnd.openxmlformats-officedocument."
             + ("spreadsheetml.sheet" if path.suffix == ".xlsx" else "wordprocessingml.document"))
    return make_mail(subject=subject, attachments=[(path.name, path.read_bytes(), ctype)], **kw)


def _demo(name: str) -> bytes:
    return (DEMO / name).read_bytes()


@dataclass(frozen=True)
class Case:
    mail: Callable[[], bytes]
    kind: str  # ack, rejection or completion
    codes: tuple[str, ...] = ()  # the reason codes the rejection must carry
    form: str | None = None  # the fixture form it carries (its values must never be in the reply)
    subject_has_personal_data: bool = False
    note: str = ""  # a handler's note in the completion mail


CASES: dict[str, Case] = {
    "ack_behorighet_form": Case(
        lambda: _form_mail("MittVaccin – Behörighet", "filled/blank_new_1user.xlsx"), "ack",
        form="filled/blank_new_1user.xlsx"),
    "ack_behorighet_5users_demo": Case(lambda: _demo("01-behorighet-ok.eml"), "ack",
                                       form="filled/blank_new_5users_gaps.xlsx"),
    "ack_avslut_form_demo": Case(lambda: _demo("02-avslut-ok.eml"), "ack", form="filled/blank_termination.docx"),
    "ack_anvandarstod_demo": Case(lambda: _demo("03-anvandarstod.eml"), "ack"),
    "ack_felsokning": Case(lambda: make_mail(subject="MittVaccin – felsökning",
                                             body="Hej!\nSidan för bokningar laddar inte sedan i morse.\n"), "ack"),
    "rejection_subject_unknown": Case(lambda: make_mail(subject="Behörighet till vaccinationssystemet"),
                                      "rejection", ("subject.unknown",)),
    "rejection_attachment_missing_demo": Case(lambda: _demo("04-blankett-saknas.eml"), "rejection",
                                              ("attachment.missing",)),
    "rejection_body_personal_data": Case(
        lambda: make_mail(subject="MittVaccin – användarstöd",
                          body="Hej!\nKan ni låsa upp kontot för 19870521-2382 som inte kommer in?\n"),
        "rejection", ("body.personal_data",)),
    "rejection_support_name": Case(
        lambda: make_mail(subject="MittVaccin – användarstöd",
                          body="Hej!\nAnvändaren Anna Svensson kommer inte in i systemet.\n"),
        "rejection", ("body.personal_data",)),
    "rejection_subject_personal_data": Case(
        lambda: make_mail(subject="MittVaccin – användarstöd 20000229-2381"), "rejection",
        ("subject.personal_data",), subject_has_personal_data=True),
    "rejection_subject_personal_data_with_form": Case(
        lambda: _form_mail("MittVaccin – Behörighet för 19121212-1212", "filled/blank_new_1user.xlsx"),
        "rejection", ("subject.personal_data",), form="filled/blank_new_1user.xlsx",
        subject_has_personal_data=True),
    "rejection_form_missing_fields": Case(
        lambda: _form_mail("MittVaccin – Behörighet", "filled/blank_missing_fields.xlsx"), "rejection",
        ("form.missing_field", "form.missing_field", "form.missing_field"), form="filled/blank_missing_fields.xlsx"),
    "rejection_form_bad_checkdigit": Case(
        lambda: _form_mail("MittVaccin – Behörighet", "filled/blank_bad_checkdigit.xlsx"), "rejection",
        ("form.invalid_field",), form="filled/blank_bad_checkdigit.xlsx"),
    "rejection_form_wrong_kommun": Case(
        lambda: _form_mail("MittVaccin – Behörighet", "filled/blank_wrong_kommun.docx"), "rejection",
        ("form.invalid_field",), form="filled/blank_wrong_kommun.docx"),
    "rejection_form_date_order": Case(
        lambda: _form_mail("MittVaccin – Behörighet", "filled/blank_date_order.docx"), "rejection",
        ("form.invalid_field",), form="filled/blank_date_order.docx"),
    "rejection_form_type_mismatch": Case(
        lambda: _form_mail("MittVaccin – Behörighet avslut", "filled/blank_new_1user.xlsx"), "rejection",
        ("form.type_mismatch",), form="filled/blank_new_1user.xlsx"),
    "completion_behorighet": Case(
        lambda: _form_mail("MittVaccin – Behörighet", "filled/blank_new_1user.xlsx"), "completion",
        form="filled/blank_new_1user.xlsx"),
    "completion_anvandarstod_with_note": Case(
        lambda: _demo("03-anvandarstod.eml"), "completion",
        note="Vi har återställt inloggningen. Prova igen i morgon förmiddag."),
}


@pytest.fixture(scope="module")
def settings():
    return Settings(from_address="mittvaccin@region.example.test")


def render(name: str, case: Case, routines, settings, tmp_path: Path) -> tuple[str, bytes]:
    """The reply the case produces, as snapshot text (refs normalised), and the incoming raw mail."""
    raw = case.mail()
    decision = decide(raw, routines, settings=settings, now=NOW, received=NOW)
    expected_verdict = "rejected" if case.kind == "rejection" else "accepted"
    assert decision.verdict == expected_verdict, (name, decision.codes)
    assert tuple(decision.codes) == case.codes, name
    store = open_store(tmp_path / "intake.db")
    recorded = Recorder(store, routines, settings, rate_limit_per_hour=100).record(
        decision, FetchedMail(uid="1", raw=raw, size=len(raw), received=NOW), "snapshots", 1, NOW)
    if case.kind == "completion":
        TicketDesk(store, routines, settings, clock=lambda: NOW).mark_done(recorded.ticket_ref, "handlaggare",
                                                                         note=case.note)
    rows = list(store.db.query("select * from outbox where kind = ? order by id", [case.kind]))
    assert len(rows) == 1, (name, rows)
    row = rows[0]
    attachments = "blanketten (.xlsx och .docx)" if row["attach_blank_form"] else "inga"
    text = f"Kind: {row['kind']}\nSubject: {row['subject']}\nAttachments: {attachments}\n\n{row['body']}"
    return REF.sub("MV-YYYY-NNNN", text), raw


def _form_values(form: str | None) -> list[str]:
    if form is None:
        return []
    data = EXPECTED_FORMS[form]
    values = [v for v in data["fields"].values() if isinstance(v, str)]
    values += [v for user in data["users"] for k, v in user.items() if isinstance(v, str) and k != "row"]
    # The pack's own words (the choice lists a reply may name as the allowed values) are not personal.
    lists = tomllib.loads((PACK / "form.toml").read_text("utf-8"))["lists"]
    vocabulary = {v.lower() for vs in lists.values() for v in vs}
    return [v for v in values if len(v) >= 3 and v.lower() not in vocabulary]


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def _shingles(words: list[str], n: int = 4) -> set[tuple[str, ...]]:
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


def _body_phrases(raw: bytes) -> set[tuple[str, ...]]:
    """Every run of four words of the incoming plain body that the pack's own texts do not also say."""
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    part = msg.get_body(("plain",))
    text = part.get_content() if part is not None else ""
    templates = "\n".join(p.read_text("utf-8") for p in [*(PACK / "templates").glob("*.j2"),
                                                           *(COMMON / "templates").glob("*.j2")])
    return _shingles(_words(text)) - _shingles(_words(templates))


def assert_no_personal_data(name: str, case: Case, text: str, raw: bytes) -> None:
    found = PERSONNUMMER.findall(text)
    assert found == [], f"{name}: personnummer-like {found}"
    digits = re.sub(r"\D", "", text)
    for pnr in TEST_PERSONNUMMER:
        assert pnr.replace("-", "")[2:] not in digits, f"{name}: {pnr} in some form"
    lowered = text.lower()
    for value in _form_values(case.form):
        assert value.lower() not in lowered, f"{name}: form value {value!r} in the reply"
    quoted = _body_phrases(raw) & _shingles(_words(text))
    assert not quoted, f"{name}: incoming body text in the reply: {sorted(' '.join(q) for q in quoted)}"
    if case.subject_has_personal_data:
        subject = str(email.message_from_bytes(raw, policy=email.policy.default)["Subject"])
        assert subject not in text, f"{name}: the incoming subject (with personal data) is quoted"
    for header in ("Eva Berg", "halmstad.example.test"):  # the sender's name and address
        assert header.lower() not in lowered, f"{name}: {header!r} in the reply"


@pytest.mark.parametrize("name", sorted(CASES))
def test_reply_snapshot(name, routines, settings, tmp_path):
    case = CASES[name]
    text, raw = render(name, case, routines, settings, tmp_path)
    assert_no_personal_data(name, case, text, raw)
    path = SNAPSHOTS / f"{name}.txt"
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, "utf-8")
    assert path.exists(), f"no snapshot {path.relative_to(ROOT)}: run with UPDATE_SNAPSHOTS=1 and review it"
    assert text == path.read_text("utf-8"), f"reply {name} changed: if intended, run with UPDATE_SNAPSHOTS=1"


def test_every_template_of_the_pack_has_a_snapshot(routine):
    covered = {c.kind for c in CASES.values()}
    assert covered == {"ack", "rejection", "completion"}
    # Every request type's receipt is shown at least once.
    acks = {name.split("_")[1] for name, c in CASES.items() if c.kind == "ack"}
    assert acks >= {rt.id for rt in routine.request_types}
    templates = {rt.ack_template for rt in routine.request_types} | set(routine.templates.values())
    # The pack's own templates and the common ones it uses (rejection, completion) are all shown.
    own = {p.name for p in (PACK / "templates").glob("*.j2")}
    common = {p.name for p in (COMMON / "templates").glob("*.j2")}
    assert own <= templates <= own | common


def test_no_stale_snapshots():
    stored = {p.stem for p in SNAPSHOTS.glob("*.txt")}
    assert stored <= set(CASES), f"snapshots without a case: {sorted(stored - set(CASES))}"
