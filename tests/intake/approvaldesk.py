"""Helpers for the approval tests: the generated blank forms filled with openpyxl, a bot serving MittVaccin,
VMU and MINISTOP on one settable clock, and answers as an attestant's mail client writes them."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from io import BytesIO
from pathlib import Path

import openpyxl

from intake.app import make_outbox, make_poller
from intake.engine import Engine
from intake.pipeline import Settings
from intake.tickets import TicketDesk
from rules.packs import load_packs
from tests.intake.test_poller import Desk
from tests.mailmaker import XLSX, make_mail

PACKS = Path(__file__).resolve().parents[2] / "rules" / "packs"
FROM = "bestallning@region.example.test"
ORDERER = "olle.ordrar@vard.example.test"
ATTESTANT = "ada.attest@vard.example.test"
OTHER = "nils.ny@vard.example.test"
MONDAY = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
START = date(2026, 12, 1)  # a Tuesday, a week ahead
#: Values about the person concerned: never in a mail body, subject or event.
PERSON = {"fornamn": "Petra", "efternamn": "Testsson", "identitet": "19121212-1212"}
VMU_FIELDS = {"vardenhet": "Vårdcentralen Testby", "vardgivartyp": "Regional", "startdatum": START,
              "attestant_namn": "Ada Attest", "attestant_epost": ATTESTANT,
              "bestallare_namn": "Olle Ordrar", "bestallare_epost": ORDERER}


class Clock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def _labels(schema) -> dict[str, str]:
    return {f.id: (f"{f.label} ({f.hint})" if f.hint else f.label) for s in schema.sections for f in s.fields}


def filled_form(pack: str, kind: str, fields: dict, person: dict | None = None,
                ticks: tuple[str, ...] = ()) -> bytes:
    """The pack's generated blank (.xlsx, committed under fixtures/forms/blank) filled in as a person would."""
    schema = load_packs([pack])[0].form_schema
    blank = next((PACKS / pack / "blanks").glob("*.xlsx"))
    wb = openpyxl.load_workbook(blank)
    ws = wb.active
    by_text: dict[str, openpyxl.cell.Cell] = {}
    for row in ws.iter_rows():
        for cell in row:
            if isinstance(cell.value, str):
                by_text.setdefault(cell.value, cell)
    option = next(o for o in schema.kind.options if o.value == kind)
    tick = by_text[option.label]
    ws.cell(tick.row, tick.column + 1, "X")
    labels = _labels(schema)
    for fid, value in fields.items():
        if value is not None:
            cell = by_text[labels[fid]]
            ws.cell(cell.row, cell.column + 1, value)
    if person is not None and schema.users.columns:
        header = by_text[schema.users.columns[0].label]
        col_of = {ws.cell(header.row, c).value: c for c in range(1, ws.max_column + 1)}
        for col in schema.users.columns:
            if col.id in person:
                ws.cell(header.row + 1, col_of[col.label], person[col.id])
        for value in ticks:
            ws.cell(header.row + 1, col_of[value], "X")
    out = BytesIO()
    wb.save(out)
    return out.getvalue()


class ApprovalBot(Desk):
    """MittVaccin, VMU and MINISTOP on a local folder, every part on one settable clock."""

    def __init__(self, root: Path, now: datetime = MONDAY, **sections):
        base = {
            "routines": {"enabled": ["mittvaccin", "vmu", "ministop"]},
            "mailbox": {"default_routine": "mittvaccin"},
            "replies": {"from_address": FROM, "max_age_days": 0},
            "approvals": {"link_base_url": "https://intake.example.test"},
        }
        for name, values in sections.items():
            base.setdefault(name, {}).update(values)
        super().__init__(root, **base)
        self.settings = Settings.from_config(self.config)
        self.clock = Clock(now)

    def poll(self):
        poller = make_poller(self.config, self.store, self.routines)
        poller.clock = self.clock
        return poller.poll_once()

    def send(self):
        outbox = make_outbox(self.config, self.store, self.routines)
        outbox.clock = self.clock
        return outbox.send_due()

    def engine(self) -> Engine:
        return Engine(self.store, self.routines, self.settings, clock=self.clock)

    def handler(self) -> TicketDesk:
        return TicketDesk(self.store, self.routines, self.settings, clock=self.clock)

    def run_timers(self) -> int:
        return self.engine().run_due_timers()

    def order_vmu(self, *, kind: str = "new", fields: dict | None = None, ticks=("VoB SJF",),
                  sender: str = ORDERER, subject: str = "Vårdmedarbetaruppdrag – Nyupplägg") -> str:
        form = filled_form("vmu", kind, {**VMU_FIELDS, **(fields or {})}, PERSON, ticks)
        before = {t["ref"] for t in self.store.tickets()}
        self.drop(make_mail(subject=subject, sender=sender, to=FROM, body="Hej!\nHär kommer en beställning.\n",
                            attachments=[("bestallning.xlsx", form, XLSX)]))
        self.poll()
        new = [t["ref"] for t in self.store.tickets() if t["ref"] not in before]
        assert len(new) == 1, [m["reasons"] for m in self.messages()]
        return new[0]

    def outbox(self, kind: str | None = None) -> list[dict]:
        rows = list(self.store.db.query("select * from outbox order by id"))
        return [r for r in rows if kind is None or r["kind"] == kind]

    def answer(self, ask: dict, first_line: str, *, sender: str = ATTESTANT, subject: str | None = None,
               headers: dict | None = None) -> None:
        """The attestant's reply to our request mail ``ask`` (an outbox row), quoting it below the answer."""
        quoted = "\n".join("> " + line for line in ask["body"].splitlines())
        self.drop(make_mail(subject=subject if subject is not None else "SV: " + ask["subject"], sender=sender,
                            to=FROM, body=f"{first_line}\n\n{quoted}\n", headers={
                                "In-Reply-To": ask["rfc_message_id"], "References": ask["rfc_message_id"],
                                **(headers or {})}))
        self.poll()

    def events(self, ref: str, kind: str | None = None) -> list[dict]:
        t = self.store.ticket(ref)
        rows = [dict(e, data=json.loads(e["data"])) for e in self.store.events(t["id"])]
        return [e for e in rows if kind is None or e["kind"] == kind]

    def status(self, ref: str) -> str:
        return self.store.ticket(ref)["status"]


def token_of(ask: dict) -> str:
    import re

    return re.search(r"\[ATTEST-([0-9a-f]+)\]", ask["subject"]).group(1)


def assert_no_person(text: str) -> None:
    for value in PERSON.values():
        assert value not in text, value
    assert "19121212" not in text


MINISTOP_FIELDS = {"forvaltning": "Närhälsan", "enhet_1": "BVC Testby", "enhet_2": "BVC Exempelstad",
                   "titel": "Superuser", "omrade": "Södra", "verksamhet": "Barnhälsovård", "startdatum": START,
                   "akut": "Ja", "attestant_namn": "Ada Attest", "attestant_epost": ATTESTANT,
                   "bestallare_namn": "Olle Ordrar", "bestallare_epost": ORDERER}
MINISTOP_PERSON = {**PERSON, "epost": "petra.testsson@vard.example.test"}


def order_ministop(bot: ApprovalBot, *, kind: str = "new", subject: str = "MINISTOP – Nyupplägg",
                   fields: dict | None = None) -> str:
    form = filled_form("ministop", kind, {**MINISTOP_FIELDS, **(fields or {})}, MINISTOP_PERSON)
    before = {t["ref"] for t in bot.store.tickets()}
    bot.drop(make_mail(subject=subject, sender=ORDERER, to=FROM, body="Hej!\nEn beställning.\n",
                       attachments=[("bestallning.xlsx", form, XLSX)]))
    bot.poll()
    new = [t["ref"] for t in bot.store.tickets() if t["ref"] not in before]
    assert len(new) == 1, [m["reasons"] for m in bot.messages()]
    return new[0]
