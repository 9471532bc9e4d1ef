"""MittVaccin's behaviour as a table: every fixture mail -> (verdict, reason codes, reply kind).

Written before the routine engine replaced the hard-coded policy, and kept green through it: the
engine must judge MittVaccin mail exactly as before. The table is ``decision_table.json`` beside this
file; run ``python -m tests.intake.test_decision_table`` to print the current table after a change
that is *meant* to alter a decision, and review the diff like any other.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from intake.pipeline import Settings, decide
from rules.packs import load_packs
from tests.conftest import FIXTURES, NOW, ROOT
from tests.mailmaker import form_attachment, make_mail

TABLE = Path(__file__).with_name("decision_table.json")

SUBJECTS = {
    "new": "MittVaccin – Behörighet",
    "termination": "MittVaccin – Behörighet avslut",
}


def _cases() -> dict[str, bytes]:
    cases: dict[str, bytes] = {}
    for folder in (FIXTURES / "mail", ROOT / "intake" / "demo_mail"):
        for path in sorted(folder.glob("*.eml")):
            cases[f"{folder.name}/{path.name}"] = path.read_bytes()
    # Every form fixture, sent under each form subject: the form checks and their kind agreement.
    for path in sorted((FIXTURES / "forms").glob("*/*.*")):
        if path.suffix not in (".xlsx", ".docx"):
            continue
        rel = path.relative_to(FIXTURES / "forms")
        for kind, subject in SUBJECTS.items():
            cases[f"form/{rel}@{kind}"] = make_mail(
                subject, "Hej!\nSe bifogad blankett.\nEva, 035-13 10 00",
                message_id=f"<{rel.as_posix().replace('/', '.')}.{kind}@halmstad.example.test>",
                attachments=[form_attachment(str(rel))],
            )
    # Support mail without a form, and the same with a personnummer in the body.
    cases["support/plain"] = make_mail(message_id="<support.plain@halmstad.example.test>")
    cases["support/personnummer"] = make_mail(
        body="Hej!\nAnvändaren 19121212-1212 kommer inte in.\nEva", message_id="<support.pnr@halmstad.example.test>"
    )
    cases["support/felsokning-subject-only"] = make_mail("MittVaccin – felsökning", body="",
                                                         message_id="<support.empty@halmstad.example.test>")
    # Uncertain findings are held for a handler; clear ones reject even beside a held one.
    held_body = "Hej!\nOrder 20000229-2381 gäller inloggningen.\nEva"
    cases["support/held-order-number"] = make_mail("MittVaccin – felsökning", body=held_body,
                                           message_id="<support.held@halmstad.example.test>")
    cases["form/held-order-number@new"] = make_mail(
        SUBJECTS["new"], held_body, message_id="<form.held@halmstad.example.test>",
        attachments=[form_attachment("filled/blank_new_1user.xlsx")],
    )
    # An uncertain finding beside another rejection is not dropped: the mail keeps no raw text (issue 10).
    cases["support/held-order-number-unknown-subject"] = make_mail(
        "Fråga om inloggning", held_body, message_id="<support.held.unknown@halmstad.example.test>")
    cases["form/held-order-number-no-form@new"] = make_mail(
        SUBJECTS["new"], held_body, message_id="<form.held.noform@halmstad.example.test>")
    cases["form/two-forms@new"] = make_mail(
        SUBJECTS["new"], "Hej!\nTvå blanketter.\nEva", message_id="<form.two@halmstad.example.test>",
        attachments=[form_attachment("filled/blank_new_1user.xlsx"), form_attachment("filled/blank_new_1user.docx")],
    )
    return cases


def _row(raw: bytes) -> dict[str, object]:
    routines = load_packs(["mittvaccin"])
    d = decide(raw, routines, settings=Settings(from_address="mittvaccin@region.example.test"), now=NOW,
               received=NOW)
    return {
        "verdict": d.verdict,
        "codes": d.codes,
        "reply": d.reply.kind if d.reply is not None else None,
        "routine": d.routine,
        "request_type": d.request_type,
        "metadata_only": d.metadata_only,
    }


def current_table() -> dict[str, dict[str, object]]:
    return {name: _row(raw) for name, raw in _cases().items()}


CASES = _cases()


@pytest.mark.parametrize("name", sorted(CASES))
def test_mittvaccin_decision_is_unchanged(name):
    expected = json.loads(TABLE.read_text("utf-8"))
    assert name in expected, f"{name} is not in {TABLE.name}: regenerate it and review the diff"
    assert _row(CASES[name]) == expected[name]


def test_table_has_no_stale_rows():
    assert sorted(json.loads(TABLE.read_text("utf-8"))) == sorted(CASES)


if __name__ == "__main__":
    json.dump(current_table(), sys.stdout, ensure_ascii=False, indent=1, sort_keys=True)
    print()
