"""Helpers for the access-register tests: real filled forms, mail through the real poller, tickets done."""

from __future__ import annotations

import email.utils
from datetime import date
from io import BytesIO
from pathlib import Path

import openpyxl

from intake.pipeline import Settings
from intake.register import RegisterKeys, keys_for
from intake.tickets import TicketDesk
from rules.packs import load_packs
from tests.intake.test_poller import Desk
from tests.mailmaker import FIXTURES, XLSX, make_mail

BLANK = FIXTURES / "forms" / "blank" / "behorighet-it-system-mittvaccin-blankett-kommun.xlsx"
SCHEMA = load_packs(["mittvaccin"])[0].form_schema
#: A person HSA-id made up for the tests (the shape of one; the suffix P… marks a person).
HSA = "SE2321000131-P000000000042"
UNIT = "Hemsjukvården Väster"
ORG = {"kommun": "Halmstad", "forvaltning": "Socialförvaltningen", "enhet": UNIT,
       "enhet_hsa_id": "SE2321000131-E000000000123"}
ORDERER = {"bestallare_namn": "Beata Beställare", "bestallare_titel": "Enhetschef",
           "bestallare_telefon": "035-13 10 00", "bestallare_epost": "beata.bestallare@halmstad.example.test",
           "datum": date(2026, 11, 20)}
SENDER = "Eva Berg <eva.berg@halmstad.example.test>"


def person(identitet: str, fornamn: str, roll: str | None = "Vaccinatör", *, start: date | None = None,
           end: date | None = None, n: int = 1) -> dict[str, object]:
    return {"fornamn": fornamn, "efternamn": f"Testperson{n}", "identitet": identitet,
            "epost": f"testperson{n}@halmstad.example.test", "telefon": f"035-13 10 0{n}", "titel": "Sjuksköterska",
            "roll": roll, "giltig_fran": start, "giltig_till": end}


def filled_xlsx(kind: str, users: list[dict[str, object]], fields: dict[str, object] | None = None) -> bytes:
    """The generated blank form filled with openpyxl, as a person at a unit would fill it."""
    wb = openpyxl.load_workbook(BLANK)
    ws = wb.active
    by_text: dict[str, openpyxl.cell.Cell] = {}
    for row in ws.iter_rows():
        for cell in row:
            if isinstance(cell.value, str):
                by_text.setdefault(cell.value, cell)
    option = next(o for o in SCHEMA.kind.options if o.value == kind)
    tick = by_text[option.label]
    ws.cell(tick.row, tick.column + 1, "X")
    labels = {f.id: (f"{f.label} ({f.hint})" if f.hint else f.label) for s in SCHEMA.sections for f in s.fields}
    for fid, value in {**ORG, **ORDERER, **(fields or {})}.items():
        cell = by_text[labels[fid]]
        ws.cell(cell.row, cell.column + 1, value)
    header = by_text[SCHEMA.users.columns[0].label].row
    for i, u in enumerate(users, start=1):
        for c, col in enumerate(SCHEMA.users.columns, start=1):
            ws.cell(header + i, c, u.get(col.id))
    out = BytesIO()
    wb.save(out)
    return out.getvalue()


class RegisterDesk(Desk):
    """A bot on a local Maildir with the register on, and a handler who closes tickets."""

    def __init__(self, root: Path, **sections):
        sections.setdefault("register", {}).setdefault("key_file", "keys/register.key")
        super().__init__(root, **sections)
        self.by_id = {r.id: r for r in self.routines}
        self.tickets = TicketDesk(self.store, self.routines, Settings.from_config(self.config))

    @property
    def keys(self) -> RegisterKeys:
        return keys_for(self.config, self.store)

    def order(self, subject: str, kind: str, users: list[dict[str, object]]) -> str:
        """Mail a filled form through the real poller; returns the new ticket's reference."""
        before = {t["ref"] for t in self.store.tickets()}
        self.drop(make_mail(subject=subject, sender=SENDER,
                            body="Hej!\nHär kommer en beställning enligt blanketten.\n",
                            attachments=[("behorighet.xlsx", filled_xlsx(kind, users), XLSX)],
                            date=email.utils.formatdate(localtime=True)))
        self.poll()
        new = [t for t in self.store.tickets() if t["ref"] not in before]
        assert len(new) == 1, [m["reasons"] for m in self.messages()[-1:]]
        return new[0]["ref"]

    def done(self, ref: str, *, user: str = "anna") -> list[int]:
        """Close the ticket as a handler does; its lifecycle's "done" effect feeds the register in the same
        transaction. Returns the ids of the entries the ticket made or changed."""
        self.tickets.mark_done(ref, user)
        return self.store.register_entry_ids_of_ticket(self.store.ticket(ref)["id"])
