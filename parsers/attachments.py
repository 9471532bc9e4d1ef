"""Attachment safety: what a file really is, and whether it is safe to open, decided before any parse.

Bytes in, a :class:`Verdict` out; nothing is written or executed. The real type comes from magic
bytes, never from the name or the declared content type. Zip containers are judged from their
central directory (entry count, declared sizes) and by streaming each XML member once, bounded by
the declared-size caps, looking for DOCTYPE/ENTITY (FIELD-NOTES: bombs pass openpyxl and python-docx).
"""

from __future__ import annotations

import codecs
import io
import re
import struct
import zipfile
import zlib
from dataclasses import dataclass

from parsers.mail import Attachment

OLE2_MAGIC = bytes.fromhex("D0CF11E0A1B11AE1")
ZIP_MAGIC = b"PK\x03\x04"
IMAGE_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"BM", b"II*\x00", b"MM\x00*")
OFFICE_EXTENSIONS = {".xlsx", ".docx", ".xlsm", ".docm", ".xls", ".doc", ".xltx", ".dotx", ".xltm", ".dotm"}
MACRO_EXTENSIONS = {".xlsm", ".docm", ".xltm", ".dotm", ".xlsb"}


@dataclass(frozen=True)
class AttachmentLimits:
    """Caps applied before anything is opened. A real form is tens of kilobytes."""

    max_bytes: int = 10 * 1024 * 1024  # the attachment itself
    max_entries: int = 500  # zip members
    max_member_bytes: int = 10 * 1024 * 1024  # declared uncompressed size of one member
    max_total_bytes: int = 25 * 1024 * 1024  # declared uncompressed size of all members
    max_ratio: float = 100.0  # compression ratio of one member ...
    ratio_min_bytes: int = 2 * 1024 * 1024  # ... counted only above this size (styles.xml compresses well)
    sandbox_memory_bytes: int = 1024 * 1024 * 1024  # RLIMIT_AS of the parsing subprocess
    sandbox_timeout_s: float = 30.0
    max_rows: int = 2000  # rows read per sheet / table by the form parsers
    max_cols: int = 60


# Swedish texts for the sender: why we refused, and what to send instead.
SEND_PLAIN = "Spara blanketten som en vanlig .xlsx- eller .docx-fil och skicka den igen."
WHY = {
    "too_large": ("filen är för stor", "Skicka bara den ifyllda blanketten; den är normalt mindre än 1 MB."),
    "bad_name": ("filnamnet är ogiltigt",
                 "Döp om filen till ett enkelt namn, till exempel blankett.xlsx, och skicka den igen."),
    "extension_mismatch": ("filändelsen stämmer inte med innehållet", SEND_PLAIN),
    "macros": ("filen innehåller makron",
               "Spara blanketten som en vanlig Excel-arbetsbok (.xlsx) eller Word-dokument (.docx) utan makron "
               "och skicka den igen."),
    "encrypted": ("filen är lösenordsskyddad", "Ta bort lösenordet, spara blanketten och skicka den igen."),
    "bomb": ("filen packas upp till en orimlig storlek", SEND_PLAIN),
    "xml_entities": ("filen innehåller otillåtna XML-konstruktioner", SEND_PLAIN),
    "corrupt": ("filen är skadad", SEND_PLAIN),  # kept for overrides; damaged files get attachment.damaged
    "bad_member": ("filen innehåller otillåtna sökvägar", SEND_PLAIN),
    "disguised": ("filen är ett Office-dokument förklätt till en annan filtyp", SEND_PLAIN),
}
KIND_LABELS = {
    "legacy": "äldre Word- eller Excel-format (.doc/.xls)",
    "pdf": "PDF",
    "empty": "filen är tom",
    "unknown": "okänt filformat",
    "zip": "zip-arkiv",
}


@dataclass(frozen=True)
class Verdict:
    """What an attachment is and whether it may be parsed.

    ``kind``: xlsx, docx, pdf, image, legacy, encrypted, zip, empty or unknown. ``refusal`` is a key
    of :data:`WHY` (unsafe), ``"unsupported"`` or ``"corrupt"`` (damaged: a zip that cannot be read, a
    member that does not inflate); empty when the file may be parsed or ignored.
    ``detail`` is for staff and never holds content from the file.
    """

    filename: str  # how a reply may name it (see reply_name): its type, never the sender's file name
    kind: str
    refusal: str = ""
    detail: str = ""

    @property
    def ok(self) -> bool:
        return not self.refusal

    @property
    def parseable(self) -> bool:
        return self.ok and self.kind in ("xlsx", "docx")


_PNR_LIKE = re.compile(r"\d{6,8}\s*[-+]?\s*\d{4}")
_CTRL = re.compile(r"[\x00-\x1f\x7f]")


_SAFE_EXT = re.compile(r"^\.[a-z0-9]{1,5}$")


def reply_name(filename: str) -> str:
    """How a reply names an attachment: by its type only ("av typen .xls"), never by the name the sender
    gave it, which may hold a name, a personnummer in any spelling, or anything else."""
    ext = _extension(filename)
    return f"av typen {ext}" if _SAFE_EXT.match(ext) else "utan känd filändelse"


def display_name(filename: str) -> str:
    """The attachment name as it may appear in a reply: last path part, no control characters,
    digit runs that look like an identity number masked, at most 80 characters."""
    name = _CTRL.sub("", filename or "").replace("\\", "/").rsplit("/", 1)[-1].strip()
    name = _PNR_LIKE.sub(lambda m: "x" * len(m.group()), name)
    if len(name) > 80:
        name = name[:60] + "…" + name[-15:]
    return name or "bilagan"


def _bad_name(filename: str) -> bool:
    if not filename:
        return False
    if "\x00" in filename or any(ord(c) < 32 for c in filename):
        return True
    unified = filename.replace("\\", "/")
    return unified.startswith("/") or bool(re.match(r"^[A-Za-z]:", unified)) or ".." in unified.split("/")


def _extension(filename: str) -> str:
    name = (filename or "").lower().rsplit("/", 1)[-1]
    return "." + name.rsplit(".", 1)[-1] if "." in name else ""


def sniff(data: bytes) -> str:
    """The real type of ``data`` by its magic bytes: zip, ole2, pdf, image, empty or unknown."""
    if not data:
        return "empty"
    if data.startswith(ZIP_MAGIC):
        return "zip"
    if data.startswith(OLE2_MAGIC):
        return "ole2"
    if data.lstrip(b"\r\n\t ")[:5] == b"%PDF-":
        return "pdf"
    if data.startswith(IMAGE_MAGIC) or (data[:4] == b"RIFF" and data[8:12] == b"WEBP"):
        return "image"
    return "unknown"


def _ole2_encrypted(data: bytes) -> bool:
    try:
        import msoffcrypto

        return bool(msoffcrypto.OfficeFile(io.BytesIO(data)).is_encrypted())
    except Exception:  # noqa: BLE001 - a broken OLE2 file is legacy/unreadable either way
        return False


def _eocd_entries(data: bytes) -> int | None:
    """Entry count from the end-of-central-directory record, read before zipfile builds its index."""
    pos = data.rfind(b"PK\x05\x06", max(0, len(data) - 65557))
    if pos < 0 or pos + 22 > len(data):
        return None
    return struct.unpack("<H", data[pos + 10 : pos + 12])[0]


_XML_DANGER = (b"<!DOCTYPE", b"<!ENTITY", "<!DOCTYPE".encode("utf-16-le"), "<!ENTITY".encode("utf-16-le"),
               "<!DOCTYPE".encode("utf-16-be"), "<!ENTITY".encode("utf-16-be"))


_XML_NAMES = (".xml", ".rels", ".vml")
_BOMS = ((codecs.BOM_UTF32_LE, "utf-32-le"), (codecs.BOM_UTF32_BE, "utf-32-be"), (codecs.BOM_UTF8, "utf-8"),
         (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))
# XML 1.0 appendix F: the first four bytes of "<?xm" or "<" in each encoding family, without a BOM.
_XML_STARTS = ((b"\x00\x00\x00<", "utf-32-be"), (b"<\x00\x00\x00", "utf-32-le"), (b"\x00<\x00?", "utf-16-be"),
               (b"<\x00?\x00", "utf-16-le"), (b"\x4c\x6f\xa7\x94", "cp037"))
_DECLARED = re.compile(r"""^\s*<\?xml[^>]*?encoding\s*=\s*["']([^"']{1,40})["']""")
_DANGER_TEXT = re.compile(r"<!\s*(?:DOCTYPE|ENTITY)", re.I)


def _xml_encoding(head: bytes) -> str | None:
    """How an XML parser would decode a part that starts with ``head`` (XML 1.0 appendix F), or None when
    it is not XML at all. An encoding label Python does not know is returned as ``"?"``."""
    family = "utf-8"
    for bom, name in _BOMS:
        if head.startswith(bom):
            family = name
            break
    else:
        for start, name in _XML_STARTS:
            if head.startswith(start):
                family = name
                break
    text = head.decode(family, "replace")
    if not text.lstrip("\ufeff \t\r\n").startswith("<"):
        return None
    declared = _DECLARED.match(text.lstrip("\ufeff"))
    if declared is None or family not in ("utf-8", "cp037"):
        return family  # a BOM or a wide encoding decides; the label can only agree
    try:
        info = codecs.lookup(declared.group(1).strip())
    except (LookupError, ValueError, UnicodeError):
        return "?"
    return info.name if getattr(info, "_is_text_encoding", True) else "?"


def _member_has_entities(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> str:
    """What makes the part unsafe ("" when nothing): a DOCTYPE or an entity declaration, found in the part
    decoded as an XML parser would decode it, or an encoding we cannot decode to look.

    Every member is looked at, whatever its name: a part is XML when its first bytes say so in any
    encoding family, or when its name ends like an XML part. A part in an encoding Python cannot decode
    is refused as well (no parser we run would read it as anything but a declaration we cannot check).
    """
    with zf.open(info) as fh:
        first = fh.read(256 * 1024)
        encoding = _xml_encoding(first[:1024])
        if encoding is None:
            if not info.filename.lower().endswith(_XML_NAMES):
                return ""
            encoding = "utf-8"
        if encoding == "?":
            return "XML in an unknown encoding"
        if encoding == "utf-8" and len(first) < 256 * 1024 and b"!" not in first:
            # The whole part, and no "!" byte: every form of "<!" (decoded from UTF-8, or raw in UTF-16) has
            # one, so there is nothing to decode and search (most parts of a form; 0.2 ms a form).
            return ""
        decoder = codecs.getincrementaldecoder(encoding)("replace")
        tail, raw_tail, chunk = "", b"", first
        while chunk:
            text = tail + decoder.decode(chunk)
            # The raw bytes too (UTF-16 forms in a part that claims to be UTF-8, say).
            window = (raw_tail + chunk).upper()
            if _DANGER_TEXT.search(text) or any(d.upper() in window for d in _XML_DANGER):
                return "DOCTYPE/ENTITY"
            tail, raw_tail = text[-40:], window[-40:]
            chunk = fh.read(256 * 1024)
        return ""


#: What reading a damaged member raises: bad headers, bad CRC, a stream that does not inflate, an
#: unknown compression method, a bz2/lzma stream that ends early.
_DAMAGED = (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError, NotImplementedError, RuntimeError,
            UnicodeError, struct.error, LookupError)
try:
    import lzma

    _DAMAGED += (lzma.LZMAError,)
except ImportError:  # pragma: no cover - lzma is part of every CPython build we support
    pass


def _member_label(name: str) -> str:
    """A member name fit for the staff detail: OOXML part names are fixed; anything else by extension only."""
    return name if re.fullmatch(r"[A-Za-z0-9_./\[\]-]{1,80}", name) else "an oddly named part"


def _check_zip(data: bytes, ext: str, limits: AttachmentLimits) -> tuple[str, str, str]:
    """(kind, refusal, detail) for an OOXML/zip container."""
    entries = _eocd_entries(data)
    if entries is None:
        return "zip", "corrupt", "no end of central directory"
    if entries == 0xFFFF or entries > limits.max_entries:
        return "zip", "bomb", f"entries={entries} limit={limits.max_entries}"
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except _DAMAGED as exc:
        return "zip", "corrupt", f"zip: {type(exc).__name__}"
    with zf:
        infos = zf.infolist()
        if len(infos) > limits.max_entries:
            return "zip", "bomb", f"entries={len(infos)}"
        names = [i.filename for i in infos]
        if any(_bad_name(n) for n in names):
            return "zip", "bad_member", "member path escapes the package"
        total = 0
        for info in infos:
            total += info.file_size
            if info.file_size > limits.max_member_bytes:
                return "zip", "bomb", f"member size={info.file_size} limit={limits.max_member_bytes}"
            if (info.file_size > limits.ratio_min_bytes
                    and info.file_size > limits.max_ratio * max(info.compress_size, 1)):
                return "zip", "bomb", f"member ratio={info.file_size // max(info.compress_size, 1)}"
        if total > limits.max_total_bytes:
            return "zip", "bomb", f"total size={total} limit={limits.max_total_bytes}"
        lowered = [n.lower() for n in names]
        if "[content_types].xml" not in lowered:
            kind = "zip"
        elif any(n.startswith("xl/") for n in lowered):
            kind = "xlsx"
        elif any(n.startswith("word/") for n in lowered):
            kind = "docx"
        else:
            kind = "zip"
        if ext in MACRO_EXTENSIONS or any(n.endswith("vbaproject.bin") or n.endswith("vbadata.xml")
                                          for n in lowered):
            return kind, "macros", "vbaProject.bin or macro extension"
        if any(info.flag_bits & 0x1 for info in infos):
            # zipfile would raise RuntimeError ("password required") on the first read.
            return "encrypted", "encrypted", "zip member encrypted"
        try:
            for info in infos:
                if info.filename == "[Content_Types].xml":
                    if b"macroenabled" in zf.read(info).lower():
                        return kind, "macros", "macroEnabled content type"
                found = _member_has_entities(zf, info)
                if found:
                    return kind, "xml_entities", f"{found} in {_member_label(info.filename)}"
        except _DAMAGED as exc:
            # A flipped bit ends here as zlib.error or "Bad CRC-32"; so does a lying size header
            # (zipfile stops at the declared size and the CRC no longer matches).
            return kind, "corrupt", f"zip member: {type(exc).__name__}"
    if kind == "zip":
        return kind, ("extension_mismatch" if ext in OFFICE_EXTENSIONS else "unsupported"), "zip without OOXML parts"
    if ext in OFFICE_EXTENSIONS and ext.lstrip(".")[0] != kind[0]:
        # .docx holding a workbook, .xlsx holding a document
        return kind, "extension_mismatch", f"extension {ext} holds {kind}"
    return kind, "", ""


def _holds_ooxml(data: bytes) -> bool:
    """True when a zip reader finds an OOXML package in ``data`` (its central directory names the content
    types part), wherever the package starts: zip readers look from the end, not at the signature."""
    if data.rfind(b"PK\x05\x06", max(0, len(data) - 65557)) < 0 or b"[Content_Types].xml" not in data:
        return False
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            return any(n.lower() == "[content_types].xml" for n in zf.namelist())
    except Exception:  # noqa: BLE001 - not a zip a reader can open: nothing hidden to worry about
        return False


def check_attachment(att: Attachment, limits: AttachmentLimits | None = None) -> Verdict:
    """Judge one attachment. Images and unrelated files are ``ok`` but not ``parseable``."""
    limits = limits or AttachmentLimits()
    name = reply_name(att.filename)
    ext = _extension(att.filename)
    if _bad_name(att.filename):
        return Verdict(name, sniff(att.data[:16]), "bad_name", "filename with path parts or control characters")
    if att.size > limits.max_bytes:
        return Verdict(name, sniff(att.data[:16]), "too_large", f"size={att.size} limit={limits.max_bytes}")
    real = sniff(att.data)
    if real in ("image", "pdf", "ole2", "unknown") and _holds_ooxml(att.data):
        if real != "unknown":
            # A package behind another file's signature: a zip reader opens it, our sniffing would not.
            return Verdict(name, "zip", "disguised", f"OOXML package behind a {real} signature")
        return Verdict(name, "zip", "corrupt", "OOXML package with a damaged start")
    if real == "empty":
        refusal = "unsupported" if ext in OFFICE_EXTENSIONS else ""
        return Verdict(name, "empty", refusal, "0 bytes")
    if real == "image":
        return Verdict(name, "image")
    if real == "pdf":
        if ext in OFFICE_EXTENSIONS:
            return Verdict(name, "pdf", "extension_mismatch", f"extension {ext} holds PDF")
        return Verdict(name, "pdf")  # refused only if no form is found (see parsers.forms)
    if real == "ole2":
        if _ole2_encrypted(att.data):
            return Verdict(name, "encrypted", "encrypted", "OLE2 container, encrypted")
        if ext in MACRO_EXTENSIONS:
            return Verdict(name, "legacy", "macros", f"OLE2 with extension {ext}")
        return Verdict(name, "legacy", "unsupported", "OLE2 legacy Office file")
    if real == "zip":
        kind, refusal, detail = _check_zip(att.data, ext, limits)
        return Verdict(name, kind, refusal, detail)
    if ext in OFFICE_EXTENSIONS:
        return Verdict(name, "unknown", "extension_mismatch", f"extension {ext} holds no Office file")
    return Verdict(name, "unknown")
