"""Attachment safety: hostile files are refused before any parse, with a Swedish reason that says
what to send instead; harmless extras (signature images, PDFs) are ignored. The hostile files are
made here, in memory (the benchmark in benchmarks/hostile_rss.py reuses these makers)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import openpyxl
import pytest

from parsers.attachments import AttachmentLimits, check_attachment, display_name, sniff
from parsers.mail import Attachment
from rules.forms import attachment_reason, find_form, load_form_schema

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = load_form_schema(ROOT / "rules" / "packs" / "mittvaccin" / "form.toml")
GOOD_XLSX = (ROOT / "fixtures" / "forms" / "filled" / "blank_new_1user.xlsx").read_bytes()
GOOD_DOCX = (ROOT / "fixtures" / "forms" / "filled" / "blank_new_1user.docx").read_bytes()
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def rezip(source: bytes, replace: dict[str, bytes] | None = None, add: dict[str, bytes] | None = None) -> bytes:
    """A copy of an OOXML zip with members replaced or added."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(source)) as zin, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zout:
        for item in zin.infolist():
            data = (replace or {}).get(item.filename, zin.read(item))
            zout.writestr(item.filename, data)
        for name, data in (add or {}).items():
            zout.writestr(name, data)
    return out.getvalue()


def macro_xlsm() -> bytes:
    ct = zipfile.ZipFile(io.BytesIO(GOOD_XLSX)).read("[Content_Types].xml").replace(
        b"spreadsheetml.sheet.main+xml", b"sheet.macroEnabled.main+xml")
    return rezip(GOOD_XLSX, {"[Content_Types].xml": ct}, {"xl/vbaProject.bin": b"\xd0\xcf\x11\xe0fake vba"})


def encrypted_xlsx() -> bytes:
    import msoffcrypto.format.ooxml

    out = io.BytesIO()
    msoffcrypto.format.ooxml.OOXMLFile(io.BytesIO(GOOD_XLSX)).encrypt("hemligt", out)
    return out.getvalue()


def legacy_ole() -> bytes:
    return bytes.fromhex("D0CF11E0A1B11AE1") + b"\x00" * 504


def whitespace_bomb(size: int = 200 * 1024 * 1024) -> bytes:
    """A 200 MiB worksheet of whitespace: about 200 KB zipped."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(GOOD_XLSX)) as zin, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zout:
        for item in zin.infolist():
            if item.filename == "xl/worksheets/sheet1.xml":
                with zout.open(item.filename, "w", force_zip64=True) as fh:
                    head = zin.read(item)
                    fh.write(head[: head.index(b"<sheetData>")])
                    chunk = b" " * (1024 * 1024)
                    for _ in range(size // len(chunk)):
                        fh.write(chunk)
                    fh.write(head[head.index(b"<sheetData>"):])
            else:
                zout.writestr(item.filename, zin.read(item))
    return out.getvalue()


def many_entries(n: int = 5000) -> bytes:
    return rezip(GOOD_XLSX, add={f"xl/media/pad{i}.bin": b"" for i in range(n)})


def lying_size() -> bytes:
    """A member whose header claims 100 bytes but holds 5 MB: zipfile stops at the claim."""
    data = bytearray(rezip(GOOD_XLSX, add={"xl/pad.xml": b"<a>" + b"x" * 5_000_000 + b"</a>"}))
    name = b"xl/pad.xml"
    for sig in (b"PK\x03\x04", b"PK\x01\x02"):
        pos = 0
        while (pos := data.find(sig, pos)) >= 0:
            if sig == b"PK\x03\x04" and data[pos + 30 : pos + 30 + len(name)] == name:
                data[pos + 22 : pos + 26] = (100).to_bytes(4, "little")
            if sig == b"PK\x01\x02" and data[pos + 46 : pos + 46 + len(name)] == name:
                data[pos + 24 : pos + 28] = (100).to_bytes(4, "little")
            pos += 4
    return bytes(data)


LAUGHS = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
          + b"".join(b'<!ENTITY lol%d "%s">' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10)
                     for i in range(1, 10))
          + b']><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData><row r="1">'
          + b'<c r="A1" t="inlineStr"><is><t>&lol9;</t></is></c></row></sheetData></worksheet>')


def billion_laughs() -> bytes:
    return rezip(GOOD_XLSX, {"xl/worksheets/sheet1.xml": LAUGHS})


def xxe_docx() -> bytes:
    doc = zipfile.ZipFile(io.BytesIO(GOOD_DOCX)).read("word/document.xml")
    evil = doc.replace(b"?>", b'?><!DOCTYPE w:document [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>', 1)
    evil = evil.replace(b"<w:t>Kommun</w:t>", b"<w:t>Kommun &xxe;</w:t>", 1)
    return rezip(GOOD_DOCX, {"word/document.xml": evil})


def utf16_doctype() -> bytes:
    xml = '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE x [<!ENTITY a "b">]><x/>'.encode("utf-16")
    return rezip(GOOD_XLSX, add={"xl/extra.xml": xml})


def member_traversal() -> bytes:
    return rezip(GOOD_XLSX, add={"../../evil.xml": b"<x/>"})


def large_legit_xlsx(rows: int = 35000, *, linked: bool = True) -> bytes:
    """A real workbook inside every zip cap that still costs openpyxl a few hundred MB. ``linked``: with a
    hyperlink, which the lean reader leaves to openpyxl (without it, the lean reader reads it in a few MB)."""
    wb = openpyxl.Workbook()
    ws = wb.active
    for i in range(rows):
        ws.append([f"text {i}", i, i * 2.5, "Kommun", "x" * 20])
    if linked:
        ws["A1"].hyperlink = "https://example.test/"
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


# name -> (filename, bytes maker, expected reason code)
HOSTILE = {
    "macro_renamed": ("blankett.xlsx", macro_xlsm, "attachment.unsafe"),
    "macro_extension": ("blankett.xlsm", lambda: GOOD_XLSX, "attachment.unsafe"),
    "encrypted": ("blankett.xlsx", encrypted_xlsx, "attachment.unsafe"),
    "legacy_xls": ("blankett.xls", legacy_ole, "attachment.unsupported"),
    "legacy_doc_renamed": ("blankett.docx", legacy_ole, "attachment.unsupported"),
    "zip_bomb": ("blankett.xlsx", whitespace_bomb, "attachment.unsafe"),
    "many_entries": ("blankett.xlsx", many_entries, "attachment.unsafe"),
    "lying_size": ("blankett.xlsx", lying_size, "attachment.damaged"),
    "billion_laughs": ("blankett.xlsx", billion_laughs, "attachment.unsafe"),
    "xxe": ("blankett.docx", xxe_docx, "attachment.unsafe"),
    "utf16_doctype": ("blankett.xlsx", utf16_doctype, "attachment.unsafe"),
    "member_traversal": ("blankett.xlsx", member_traversal, "attachment.unsafe"),
    "name_traversal": ("../../etc/blankett.xlsx", lambda: GOOD_XLSX, "attachment.unsafe"),
    "name_absolute": ("/etc/blankett.xlsx", lambda: GOOD_XLSX, "attachment.unsafe"),
    "name_nul": ("blankett.xlsx\x00.png", lambda: GOOD_XLSX, "attachment.unsafe"),
    "pdf_as_xlsx": ("blankett.xlsx", lambda: b"%PDF-1.7\n%%EOF\n", "attachment.unsafe"),
    "docx_as_xlsx": ("blankett.xlsx", lambda: GOOD_DOCX, "attachment.unsafe"),
    "text_as_docx": ("blankett.docx", lambda: b"Kommun: Halmstad\n", "attachment.unsafe"),
    "empty": ("blankett.xlsx", lambda: b"", "attachment.unsupported"),
    "truncated": ("blankett.xlsx", lambda: GOOD_XLSX[: len(GOOD_XLSX) // 2], "attachment.damaged"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_attachment_is_refused_before_parsing(case: str) -> None:
    filename, make, code = HOSTILE[case]
    att = Attachment(filename, "application/octet-stream", make())
    outcome = find_form([att], SCHEMA, sandbox=False)
    assert outcome.form is None
    assert [r.code for r in outcome.reasons] == [code]
    message = outcome.reasons[0].message
    assert "Skicka" in message or "skicka" in message  # says what to send instead
    assert "/etc" not in message and "\x00" not in message


def test_hostile_file_beside_a_good_form_still_refuses_the_mail() -> None:
    atts = [Attachment("blankett.xlsx", "", GOOD_XLSX), Attachment("makro.xlsx", "", macro_xlsm())]
    outcome = find_form(atts, SCHEMA, sandbox=False)
    assert outcome.form is None
    assert [r.code for r in outcome.reasons] == ["attachment.unsafe"]
    assert "makron" in outcome.reasons[0].message


@pytest.mark.parametrize(
    ("limits", "why"),
    [
        (AttachmentLimits(sandbox_memory_bytes=100 * 1024 * 1024), "memory"),
        (AttachmentLimits(sandbox_timeout_s=0.05), "timeout"),
    ],
)
def test_a_parse_that_blows_up_in_the_sandbox_is_a_clean_unreadable(limits: AttachmentLimits, why: str) -> None:
    att = Attachment("stor.xlsx", "", large_legit_xlsx())
    assert check_attachment(att, limits).parseable  # inside every zip cap ...
    outcome = find_form([att], SCHEMA, limits)  # ... but the bounded parse fails cleanly
    assert [r.code for r in outcome.reasons] == ["form.unreadable"]
    assert why in outcome.reasons[0].detail


def test_a_large_workbook_the_lean_reader_models_is_read_within_a_small_sandbox() -> None:
    """The same large sheet without a hyperlink is read by the lean reader (a few MB, not openpyxl's few hundred):
    it is read, and found not to be the form, where openpyxl ran out of 100 MB."""
    att = Attachment("stor.xlsx", "", large_legit_xlsx(linked=False))
    outcome = find_form([att], SCHEMA, AttachmentLimits(sandbox_memory_bytes=100 * 1024 * 1024))
    assert [r.code for r in outcome.reasons] == ["attachment.missing"]


@pytest.mark.parametrize(
    ("atts", "codes"),
    [
        ([], ["attachment.missing"]),
        ([Attachment("image001.png", "image/png", PNG)], ["attachment.missing"]),
        ([Attachment("logo.png", "image/png", PNG), Attachment("blankett.xlsx", "", GOOD_XLSX)], []),
        ([Attachment("blankett.pdf", "application/pdf", b"%PDF-1.4\n%%EOF")], ["attachment.unsupported"]),
        ([Attachment("rutin.pdf", "application/pdf", b"%PDF-1.4\n%%EOF"), Attachment("b.docx", "", GOOD_DOCX)], []),
        ([Attachment("a.xlsx", "", GOOD_XLSX), Attachment("b.docx", "", GOOD_DOCX)], ["attachment.multiple_forms"]),
        ([Attachment("anteckning.txt", "text/plain", b"hej")], ["attachment.missing"]),
    ],
)
def test_choosing_the_form_among_attachments(atts: list[Attachment], codes: list[str]) -> None:
    outcome = find_form(atts, SCHEMA, sandbox=False)
    assert [r.code for r in outcome.reasons] == codes
    assert (outcome.form is not None) == (codes == [])


def test_multiple_forms_reason_says_how_many() -> None:
    atts = [Attachment("a.xlsx", "", GOOD_XLSX), Attachment("b.xlsx", "", GOOD_XLSX), Attachment("c.docx", "",
                                                                                                  GOOD_DOCX)]
    outcome = find_form(atts, SCHEMA, sandbox=False)
    assert "3 blanketter" in outcome.reasons[0].message


@pytest.mark.parametrize(
    ("data", "kind"),
    [(GOOD_XLSX, "zip"), (legacy_ole(), "ole2"), (b"%PDF-1.5", "pdf"), (PNG, "image"), (b"\xff\xd8\xff\xe0", "image"),
     (b"", "empty"), (b"hello", "unknown")],
)
def test_sniff_by_magic_bytes(data: bytes, kind: str) -> None:
    assert sniff(data) == kind


def test_encrypted_and_legacy_are_told_apart() -> None:
    assert check_attachment(Attachment("a.xlsx", "", encrypted_xlsx())).refusal == "encrypted"
    assert check_attachment(Attachment("a.xls", "", legacy_ole())).kind == "legacy"


def test_filenames_in_replies_carry_no_identity_number_or_path() -> None:
    assert display_name("../../Blankett 19121212-1212.xlsx") == "Blankett xxxxxxxxxxxxx.xlsx"
    outcome = find_form([Attachment("Blankett 121212-1212.xls", "", legacy_ole())], SCHEMA, sandbox=False)
    assert "1212" not in outcome.reasons[0].message


def test_size_cap() -> None:
    att = Attachment("blankett.xlsx", "", GOOD_XLSX)
    assert check_attachment(att, AttachmentLimits(max_bytes=1000)).refusal == "too_large"
    assert check_attachment(att).parseable


@pytest.mark.parametrize("name", ["Behörighet_19121212_1212.xls", "Behörighet 19121212–1212.xls",
                                  "Karin Lindqvist 121212.1212.xls", "SE2321000131-P000000245581.xls"])
def test_a_reply_never_names_the_attachment_by_what_the_sender_called_it(name: str) -> None:
    ole2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 504
    verdict = check_attachment(Attachment(name, "application/vnd.ms-excel", ole2))
    message = attachment_reason(verdict).message
    assert "av typen .xls" in message
    for part in ("1212", "Karin", "Lindqvist", "P000000245581", "Behörighet_"):
        assert part not in message


# --- issue 10.6: each kind of broken or disguised file gets its own reason, never a crash ----------------


def _member_offset(data: bytes, name: str) -> tuple[int, int]:
    """Where a member's compressed bytes start in ``data``, and how many there are."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        info = zf.getinfo(name)
    pos = info.header_offset
    name_len, extra_len = int.from_bytes(data[pos + 26 : pos + 28], "little"), int.from_bytes(data[pos + 28 : pos + 30],
                                                                                             "little")
    return pos + 30 + name_len + extra_len, info.compress_size


def inflate_error_xlsx() -> bytes:
    """The workbook with one bit flipped in a deflated member so that zlib itself fails (not only the CRC)."""
    import zlib

    start, size = _member_offset(GOOD_XLSX, "xl/worksheets/sheet1.xml")
    for pos in range(start, start + size):
        for bit in range(8):
            data = bytearray(GOOD_XLSX)
            data[pos] ^= 1 << bit
            try:
                zipfile.ZipFile(io.BytesIO(bytes(data))).read("xl/worksheets/sheet1.xml")
            except zlib.error:
                return bytes(data)
            except Exception:  # noqa: BLE001 - a CRC error: look for a flip that breaks the stream itself
                continue
    raise AssertionError("no flip found that breaks the deflate stream")


def encrypted_member_xlsx() -> bytes:
    """The 'encrypted' flag set on one member, as a bit flip or a zip tool with a password leaves it."""
    data = bytearray(GOOD_XLSX)
    with zipfile.ZipFile(io.BytesIO(GOOD_XLSX)) as zf:
        info = zf.getinfo("xl/workbook.xml")
    data[info.header_offset + 6] |= 1
    central = data.find(b"PK\x01\x02")
    while central >= 0:
        if data[central + 46 : central + 46 + len(info.filename)] == info.filename.encode():
            data[central + 8] |= 1
        central = data.find(b"PK\x01\x02", central + 4)
    return bytes(data)


def entity_in_renamed_part() -> bytes:
    """The worksheet moved to a part name without .xml (the workbook's relationships follow it), with an entity."""
    with zipfile.ZipFile(io.BytesIO(GOOD_XLSX)) as zf:
        sheet = zf.read("xl/worksheets/sheet1.xml")
        rels = zf.read("xl/_rels/workbook.xml.rels")
    doctype = b'<!DOCTYPE x [<!ENTITY a "b">]>'
    evil = sheet.replace(b"?>", b"?>" + doctype, 1) if b"?>" in sheet[:200] else doctype + sheet
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(GOOD_XLSX)) as zin, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zout:
        for item in zin.infolist():
            if item.filename == "xl/worksheets/sheet1.xml":
                zout.writestr("xl/worksheets/sheet1.bin", evil)
            elif item.filename == "xl/_rels/workbook.xml.rels":
                zout.writestr(item.filename, rels.replace(b"sheet1.xml", b"sheet1.bin"))
            else:
                zout.writestr(item.filename, zin.read(item))
    return out.getvalue()


def entity_in_utf32_part() -> bytes:
    xml = '<?xml version="1.0" encoding="UTF-32"?><!DOCTYPE x [<!ENTITY a "b">]><x/>'.encode("utf-32")
    return rezip(GOOD_XLSX, add={"xl/extra.xml": xml})


def entity_in_ebcdic_part() -> bytes:
    xml = '<?xml version="1.0" encoding="cp037"?><!DOCTYPE x [<!ENTITY a "b">]><x/>'.encode("cp037")
    return rezip(GOOD_XLSX, add={"customXml/item1.xml": xml})


def entity_after_the_first_read() -> bytes:
    """A UTF-8 part whose first 256 KB hold no "!": the declaration comes after them."""
    xml = b'<?xml version="1.0" encoding="UTF-8"?><x>' + b"<y/>" * 70_000 + b'<!DOCTYPE x [<!ENTITY a "b">]></x>'
    return rezip(GOOD_XLSX, add={"xl/extra.xml": xml})


def entity_in_utf16_bytes_of_a_utf8_part() -> bytes:
    """A part that says UTF-8 but carries the declaration in UTF-16 bytes (no "<!" once decoded as UTF-8)."""
    xml = b'<?xml version="1.0" encoding="UTF-8"?><x>' + "<!DOCTYPE x><x/>".encode("utf-16-le") + b"</x>"
    return rezip(GOOD_XLSX, add={"xl/extra.xml": xml})


def entity_in_unknown_encoding() -> bytes:
    return rezip(GOOD_XLSX, add={"xl/extra.xml": b'<?xml version="1.0" encoding="x-made-up"?><x/>'})


BROKEN = {
    # name: (filename, maker, code, words the sender reads)
    "inflate_error": ("blankett.xlsx", inflate_error_xlsx, "attachment.damaged", "skadad"),
    "encrypted_member": ("blankett.xlsx", encrypted_member_xlsx, "attachment.unsafe", "lösenordsskyddad"),
    "entity_renamed_part": ("blankett.xlsx", entity_in_renamed_part, "attachment.unsafe", "XML"),
    "entity_utf32_part": ("blankett.xlsx", entity_in_utf32_part, "attachment.unsafe", "XML"),
    "entity_ebcdic_part": ("blankett.xlsx", entity_in_ebcdic_part, "attachment.unsafe", "XML"),
    "entity_unknown_encoding": ("blankett.xlsx", entity_in_unknown_encoding, "attachment.unsafe", "XML"),
    "entity_after_first_read": ("blankett.xlsx", entity_after_the_first_read, "attachment.unsafe", "XML"),
    "entity_utf16_in_utf8_part": ("blankett.xlsx", entity_in_utf16_bytes_of_a_utf8_part, "attachment.unsafe", "XML"),
    "zip_behind_png": ("bild.png", lambda: PNG + GOOD_XLSX, "attachment.unsafe", "förklätt"),
    "zip_behind_jpeg": ("blankett.xlsx", lambda: b"\xff\xd8\xff\xe0" + GOOD_XLSX, "attachment.unsafe", "förklätt"),
    "zip_behind_pdf": ("blankett.pdf", lambda: b"%PDF-1.4\n" + GOOD_XLSX, "attachment.unsafe", "förklätt"),
    "damaged_start": ("blankett.xlsx", lambda: b"PK\x03\x05" + GOOD_XLSX[4:], "attachment.damaged", "skadad"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_or_disguised_file_gets_its_own_reason(case: str) -> None:
    filename, make, code, words = BROKEN[case]
    att = Attachment(filename, "application/octet-stream", make())
    verdict = check_attachment(att)  # raised RuntimeError / zlib.error, or let the file through, before
    assert not verdict.ok
    outcome = find_form([att], SCHEMA, sandbox=False)
    assert outcome.form is None
    assert [r.code for r in outcome.reasons] == [code]
    assert words in outcome.reasons[0].message
    assert "skicka" in outcome.reasons[0].message.lower()


def test_renamed_xml_parts_without_entities_still_pass() -> None:
    clean = rezip(GOOD_XLSX, add={"customXml/item1.bin": '<?xml version="1.0" encoding="UTF-32"?><x/>'.encode("utf-32"),
                                  "xl/media/image1.png": PNG})
    assert check_attachment(Attachment("blankett.xlsx", "", clean)).parseable


def test_a_plain_image_or_pdf_with_pk_bytes_is_not_taken_for_a_package() -> None:
    assert check_attachment(Attachment("bild.png", "image/png", PNG + b"PK\x05\x06" + b"\0" * 18)).ok
    assert check_attachment(Attachment("rutin.pdf", "", b"%PDF-1.4\n[Content_Types].xml %%EOF")).ok
