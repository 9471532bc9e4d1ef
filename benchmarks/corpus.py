"""The benchmark corpus: N Swedish support mails from a fixed seed, byte-identical on every run.

Subjects name the MittVaccin routine (access requests and user support, some replies `SV:`); bodies
are 1-3 KB of Swedish text in 8bit, quoted-printable or base64, every third with an HTML alternative;
every other mail carries a ~9 KB .xlsx order form written by openpyxl. The only personnummer anywhere
is Skatteverket's test number 19121212-1212 (in the forms); names are invented, addresses are at
``example.test``.
"""

from __future__ import annotations

import hashlib
import html
import io
import random
import re
import zipfile
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime

import openpyxl
from openpyxl.styles import Font

SEED = 20261130
#: INTERNALDATE and Date base of the corpus: old, so the first-import guard must be off in the config.
BASE_TIME = datetime(2026, 1, 12, 8, 30, tzinfo=UTC)

GIVEN = ["Astrid", "Birgitta", "Cecilia", "Dagny", "Elsa", "Frida", "Gunnel", "Hedvig", "Ivar", "Jonas",
         "Kjell", "Leif", "Måns", "Nils", "Örjan", "Åke"]
FAMILY = ["Berg", "Dahl", "Ek", "Forsberg", "Holm", "Lund", "Nyström", "Sandberg", "Strand", "Wikström",
          "Åberg", "Ödman", "Lindqvist", "Hägglund"]
PLACES = [("Falu kommun", "falun"), ("Kalmar kommun", "kalmar"), ("Region Dalarna", "regiondalarna"),
          ("Växjö kommun", "vaxjo"), ("Umeå kommun", "umea"), ("Region Kronoberg", "regionkronoberg"),
          ("Borås stad", "boras"), ("Skellefteå kommun", "skelleftea")]
UNITS = ["Hemsjukvården Söder", "Vårdboendet Lärkan", "Vårdcentralen Torget", "Korttidsenheten Eken",
         "BVC Centrum", "Vaccinationsmottagningen Väst"]
SUBJECTS = (["MittVaccin – Behörighet"] * 5 + ["MittVaccin – användarstöd"] * 3
            + ["MittVaccin – felsökning", "SV: MittVaccin – användarstöd"])
PARAGRAPHS = [
    "Vi behöver behörighet till MittVaccin för en ny sjuksköterska som börjar hos oss på måndag. Hon ska "
    "kunna registrera vaccinationer redan första veckan.",
    "Blanketten är ifylld och bifogad. SITHS-kortet är beställt och utbildningen i journalföring är klar.",
    "Sedan i går kan vi inte logga in i MittVaccin. Efter inloggningen med SITHS-kort blir sidan vit, och "
    "det gäller alla datorer på mottagningen.",
    "En av våra vaccinatörer har slutat. Kan ni ta bort hennes behörighet? Sista arbetsdagen var i fredags.",
    "Inför influensasäsongen vill vi ändra behörighetsnivån för två medarbetare från läsbehörighet till "
    "registrering.",
    "Jag vet inte om jag har använt rätt blankett, det finns två versioner på intranätet. Säg till om något "
    "fattas.",
    "När vi skriver ut vaccinationsintyg kommer felmeddelandet ”Åtgärden kunde inte slutföras”. Vi har "
    "provat två webbläsare och tömt cachen.",
    "Jag är enhetschef för hemsjukvården i södra distriktet sedan första mars och beställer därför enligt "
    "rutinen.",
    "Går det att få en kort genomgång av den nya dosregistreringen? Flera i personalgruppen har frågat.",
    "Det är lite bråttom, vi har fullbokade vaccinationsdagar på boendena de närmaste veckorna.",
]
FORM_VARIANTS = 10
_ZIP_TIME = (2026, 1, 12, 8, 30, 0)


def _fold(text: str) -> str:
    return text.lower().translate(str.maketrans("åäöé", "aaoe"))


def _fixed_zip(data: bytes) -> bytes:
    """The same workbook with fixed member timestamps and creation date, so the bytes never vary."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            body = src.read(info)
            if info.filename == "docProps/core.xml":
                body = re.sub(rb"(<dcterms:(?:created|modified)[^>]*>)[^<]*", rb"\g<1>2026-01-12T08:30:00Z", body)
            dst.writestr(zipfile.ZipInfo(info.filename, _ZIP_TIME), body, zipfile.ZIP_DEFLATED)
    return out.getvalue()


def order_form(k: int) -> bytes:
    """An order form of about 9 KB: labels and values, an instructions sheet and the drop-down lists."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Beställning"
    ws["A1"] = "Beställning av behörighet – MittVaccin"
    ws["A1"].font = Font(bold=True, size=14)
    place = PLACES[k % len(PLACES)][0]
    rows = [("Kommun/Region", place), ("Enhet", UNITS[k % len(UNITS)]),
            ("Typ av ärende", ("Ny behörighet", "Ändrad behörighet", "Borttag av behörighet")[k % 3]),
            ("Behörighetsnivå", ("Vaccinatör", "Administratör", "Läsbehörighet")[k % 3]),
            ("Namn", "Tolvan Tolvansson"), ("Personnummer", "19121212-1212"),
            ("E-post", "tolvan.tolvansson@example.test"), ("HSA-id", f"SE0000000000-E{k:08d}"),
            ("SITHS-kort", "Ja"), ("Giltig från", f"2026-02-{k + 1:02d}"), ("Beställare", "Enhetschef")]
    for row, (label, value) in enumerate(rows, start=3):
        ws.cell(row, 1, label).font = Font(bold=True)
        ws.cell(row, 2, value)
    ws.column_dimensions["A"].width, ws.column_dimensions["B"].width = 26, 42
    help_sheet = wb.create_sheet("Instruktioner")
    for row, text in enumerate([*PARAGRAPHS, f"Version 2026.{k}", "En blankett per person."], start=1):
        help_sheet.cell(row, 1, text)
    lists = wb.create_sheet("Listor")
    lists.append(["Kommun/Region", "Enhet", "HSA-id"])
    for row, (name, unit) in enumerate(((p, u) for p, _ in PLACES for u in UNITS), start=1):
        lists.append([name, unit, f"SE0000000000-E{row:08d}"])
    buf = io.BytesIO()
    wb.save(buf)
    return _fixed_zip(buf.getvalue())


def support_mail(i: int, rng: random.Random, forms: list[bytes]) -> bytes:
    """Mail number ``i``: every other one with an order form, every third with an HTML alternative."""
    with_form = i % 2 == 0
    k = rng.randrange(FORM_VARIANTS)
    place, slug = PLACES[k % len(PLACES)] if with_form else rng.choice(PLACES)
    unit = UNITS[k % len(UNITS)] if with_form else rng.choice(UNITS)
    given, family = rng.choice(GIVEN), rng.choice(FAMILY)
    subject = rng.choice(SUBJECTS)
    want, paras, pool = rng.randint(800, 2500), [], []
    while sum(len(p.encode()) + 2 for p in paras) < want:
        pool = pool or PARAGRAPHS[:]
        paras.append(pool.pop(rng.randrange(len(pool))))
    paras = ["Hej!", *paras, f"Med vänliga hälsningar\n{given} {family}\nEnhetschef, {unit}\n{place}"]
    if subject.startswith("SV:"):
        paras.append("Från: MittVaccin support\nSkickat: den 8 januari 2026 10:14\n"
                     "> Hej! Kan du beskriva felet närmare?")
    msg = EmailMessage()
    msg["From"] = f"{given} {family} <{_fold(given)}.{_fold(family)}@{slug}.example.test>"
    msg["To"] = "MittVaccin support <mittvaccin-support@example.test>"
    msg["Subject"] = subject
    msg["Date"] = format_datetime(BASE_TIME + timedelta(minutes=5 * i))
    msg["Message-ID"] = f"<perf-{i:06d}@{slug}.example.test>"
    msg.set_content("\n\n".join(paras) + "\n", cte=("8bit", "quoted-printable", "base64")[i % 3])
    if i % 3 == 1:
        body = "".join(f"<p>{html.escape(p).replace(chr(10), '<br>')}</p>" for p in paras)
        msg.add_alternative(f'<html><head><meta charset="utf-8"></head><body>{body}</body></html>',
                            subtype="html", cte="quoted-printable")
    if with_form:
        msg.add_attachment(forms[k], maintype="application",
                           subtype="vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                           filename=("Beställning MittVaccin.xlsx", "Blankett.xlsx")[k % 2])
    for depth, part in enumerate(p for p in msg.walk() if p.is_multipart()):
        part.set_boundary(f"=_perf_{i:06d}_{depth}")  # the default boundary is random
    return msg.as_bytes(policy=policy.SMTP)


def make_corpus(n: int, seed: int = SEED) -> list[bytes]:
    """``n`` mails, the same bytes for the same ``n`` and ``seed``."""
    forms = [order_form(k) for k in range(FORM_VARIANTS)]
    rng = random.Random(seed)
    return [support_mail(i, rng, forms) for i in range(n)]


def describe(corpus: list[bytes]) -> str:
    digest = hashlib.sha256(b"".join(corpus)).hexdigest()[:16]
    forms = sum(b"spreadsheetml" in m for m in corpus)
    size = sum(map(len, corpus)) / 2**20
    return f"{len(corpus)} mails, {size:.1f} MB, {forms} with an .xlsx form, sha256 {digest}"
