"""Writes the example mails that `intake demo` polls (intake/demo_mail/*.eml).

Run from the repository root: .venv/bin/python scripts/make_demo_mail.py
They are built with the stdlib email package around the real form fixtures in fixtures/forms/.
Personal data only in the attached forms, and only Skatteverket's published test personnummer.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.mailmaker import SIGNATURE, form_attachment, make_mail  # noqa: E402

OUT = ROOT / "intake" / "demo_mail"
FROM = "Eva Berg <eva.berg@halmstad.example.test>"

MAILS = {
    "01-behorighet-ok.eml": make_mail(
        "MittVaccin – Behörighet", "Hej!\nHär kommer en beställning av behörighet, se bifogad blankett." + SIGNATURE,
        sender=FROM, message_id="<demo-01@halmstad.example.test>",
        attachments=[form_attachment("filled/blank_new_5users_gaps.xlsx")]),
    "02-avslut-ok.eml": make_mail(
        "SV: MittVaccin – behorighet avslut", "Hej,\nen medarbetare har slutat. Blankett bifogad." + SIGNATURE,
        sender="Lars Holm <lars.holm@varberg.example.test>", message_id="<demo-02@varberg.example.test>",
        attachments=[form_attachment("filled/blank_termination.docx")]),
    "03-anvandarstod.eml": make_mail(
        "MittVaccin - användarstöd", "Hej!\nHur skriver jag ut en vaccinationslista per enhet?" + SIGNATURE,
        sender=FROM, message_id="<demo-03@halmstad.example.test>"),
    "04-blankett-saknas.eml": make_mail(
        "MittVaccin – Behörighet", "Hej!\nVi behöver en ny behörighet till en sjuksköterska." + SIGNATURE,
        sender="Sara Lind <sara.lind@laholm.example.test>", message_id="<demo-04@laholm.example.test>"),
    "05-personnummer-i-texten.eml": make_mail(
        "MittVaccin – Behörighet", "Hej!\nBehörigheten gäller 19121212-1212, blankett bifogad." + SIGNATURE,
        sender="Sara Lind <sara.lind@laholm.example.test>", message_id="<demo-05@laholm.example.test>",
        attachments=[form_attachment("filled/blank_new_1user.xlsx")]),
    "06-okant-amne.eml": make_mail(
        "Behörighet vaccinationssystem", "Hej!\nSe bifogad blankett." + SIGNATURE,
        sender="Omar Aziz <omar.aziz@hylte.example.test>", message_id="<demo-06@hylte.example.test>",
        attachments=[form_attachment("filled/blank_new_1user.docx")]),
    "07-fel-kontrollsiffra.eml": make_mail(
        "MittVaccin – Behörighet", "Hej!\nBifogar blankett för två nya användare." + SIGNATURE,
        sender="Omar Aziz <omar.aziz@hylte.example.test>", message_id="<demo-07@hylte.example.test>",
        attachments=[form_attachment("filled/blank_bad_checkdigit.xlsx")]),
    "08-fel-blankettyp.eml": make_mail(
        "MittVaccin – Behörighet avslut", "Hej!\nAvslut enligt bifogad blankett." + SIGNATURE,
        sender="Lars Holm <lars.holm@varberg.example.test>", message_id="<demo-08@varberg.example.test>",
        attachments=[form_attachment("filled/blank_new_1user.xlsx")]),
    "09-frånvaro.eml": make_mail(
        "Automatiskt svar: MittVaccin – Behörighet", "Jag är på semester till och med 1 december.",
        sender="Kim Ek <kim.ek@falkenberg.example.test>", message_id="<demo-09@falkenberg.example.test>",
        headers={"Auto-Submitted": "auto-replied", "X-Auto-Response-Suppress": "All"}),
}


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.glob("*.eml"):
        old.unlink()
    for name, raw in MAILS.items():
        (OUT / name).write_bytes(raw)
        print(OUT / name)


if __name__ == "__main__":
    main()
