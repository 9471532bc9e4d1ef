"""Raw message bytes into a parsed mail: subject, sender, plain body text, attachments, headers.

Two parsers, each for what it does best (FIELD-NOTES, "Mail parsing"): mail-parser for the body
and the attachments, the stdlib ``email`` package with ``policy.default`` for the address headers
(``email.utils.parseaddr`` on Python 3.11.7 returns the wrong address for CVE-2023-27043 headers).
Before either runs, :func:`check_limits` walks the MIME structure with a cheap line scanner, so a
message with 100k parts or 1000 nested levels is refused in milliseconds instead of costing
seconds, hundreds of MB or a ``RecursionError``.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import email.header
import email.message
import email.parser
import email.policy
import email.utils
import re
from dataclasses import dataclass, field
from functools import lru_cache
from html import unescape
from html.parser import HTMLParser

import mailparser


@dataclass(frozen=True)
class Attachment:
    """One attached file as it came in the mail. ``filename`` is untrusted text."""

    filename: str
    content_type: str
    data: bytes

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass(frozen=True)
class ParsedMail:
    """What the rules need to know about a message, with no I/O left to do."""

    message_id: str
    subject: str
    sender: str  # address only, lower-cased; "" when missing or unreadable
    sender_name: str
    to: list[str]
    date: object  # datetime | None (timezone-aware when the mail said so)
    body_text: str  # text part, or the HTML part turned into text when there is no text part
    headers: dict[str, list[str]]  # lower-cased header name -> every value, decoded
    attachments: list[Attachment] = field(default_factory=list)
    in_reply_to: str = ""
    references: list[str] = field(default_factory=list)
    content_type: str = "text/plain"
    defects: list[str] = field(default_factory=list)
    html_text: str = ""  # the HTML part as text when the mail also has a text part ("" otherwise)


@dataclass(frozen=True)
class MailLimits:
    """Structural limits checked before the full parse, so hostile mail costs almost nothing.

    The defaults sit far above anything a person's mail client produces and far below what
    hurts the parsers (FIELD-NOTES: 100k parts cost 7.6 s / 404 MB; ~990 levels of nesting
    give ``RecursionError``; ``policy.default`` recurses once per nested comment in an address).
    """

    max_bytes: int = 32 * 1024 * 1024  # the raw message; base64 makes 25 MB of files ~33 MB
    max_parts: int = 1000  # MIME parts, counted by boundary delimiter lines
    max_depth: int = 50  # nested multipart and message/* containers
    # One header field, counted unfolded (a folded header is one logical line). RFC 5322 wants
    # physical lines under 998 characters; long References or To headers of real mail stay well
    # under this. A longer header makes the mail unparseable rather than slow to parse.
    max_header_line: int = 64 * 1024
    max_headers: int = 1000  # header fields in any one header block


class UnparseableMail(ValueError):
    """The message broke a limit or a parser. The text names which, never the content."""


def parse_mail(raw: bytes, limits: MailLimits = MailLimits()) -> ParsedMail:  # noqa: B008 - frozen, immutable
    """Parse ``raw`` into a :class:`ParsedMail`, or raise :class:`UnparseableMail`.

    Every header value returned (subject, names, addresses, ids, the ``headers`` map) has CR,
    LF, NUL and other control characters replaced by a space: incoming text must never be able
    to inject a header into a reply. Attachment filenames are returned as sent (untrusted).
    """
    head_block = check_limits(raw, limits)
    try:
        head = email.parser.BytesParser(policy=email.policy.default).parsebytes(head_block, headersonly=True)
    except Exception as exc:  # noqa: BLE001 - any parser failure is an answerable verdict
        raise UnparseableMail(f"header parser error: {type(exc).__name__}") from None
    try:
        mp = mailparser.parse_from_bytes(raw)
        plain, html, found = list(mp.text_plain), list(mp.text_html), list(mp.attachments)
        parser_defects = sorted(mp.defects_categories)
    except Exception:  # noqa: BLE001 - mail-parser trips over odd charsets and boundaries: read it plainly
        try:
            plain, html, found = _plain_walk(raw)
        except Exception as exc:  # noqa: BLE001 - both parsers failed: a verdict, never a crash
            raise UnparseableMail(f"mail-parser error: {type(exc).__name__}") from None
        parser_defects = ["MailParserFallback"]
    if "MultipartInvariantViolationDefect" in parser_defects:
        # A multipart whose boundary is empty, missing or never found: mail-parser drops its text
        # ("content 'mixed' not handled"), so nothing would be scanned. Read it as one text part.
        try:
            plain, html, found = _plain_walk(raw)
        except Exception as exc:  # noqa: BLE001 - its text cannot be read, so it cannot be checked either
            raise UnparseableMail(f"multipart without a usable boundary: {type(exc).__name__}") from None

    headers: dict[str, list[str]] = {}
    for name, value in head.raw_items():
        headers.setdefault(clean_header(name).lower(), []).append(decode_header_value(value))

    defects = list(parser_defects)
    if len(headers.get("subject", [])) > 1:
        # MUAs show the first Subject; so do we, and we say the mail had more than one.
        defects.append("DuplicateSubject")

    headers = {name: [_storable(v) for v in values] for name, values in headers.items()}
    sender, sender_name = (_storable(x) for x in _first_address(head, "from"))
    to = [_storable(addr) for addr, _ in _addresses(head, "to")]
    html_text = "\n".join(html_to_text(h) for h in html)
    body = "\n".join(plain) if plain else html_text
    return ParsedMail(
        message_id=_first(headers, "message-id"),
        subject=_first(headers, "subject"),
        sender=sender,
        sender_name=sender_name,
        to=to,
        date=_date(_first(headers, "date")),
        body_text=_lines(body),
        headers=headers,
        attachments=[_attachment(a) for a in found],
        in_reply_to=(_MSGID.findall(_first(headers, "in-reply-to")) or [_first(headers, "in-reply-to")])[0],
        references=_MSGID.findall(" ".join(headers.get("references", []))),
        content_type=head.get_content_type(),
        defects=defects,
        # What an HTML reader sees, even when a text part exists: the personal-data scan reads both.
        html_text=_lines(html_text) if plain else "",
    )


def _plain_walk(raw: bytes) -> tuple[list[str], list[str], list[dict]]:
    """Text parts, HTML parts and attachments read with the stdlib parser alone, for mail that mail-parser
    cannot read (an unknown or broken charset label, ``boundary=""``, a multipart without a boundary).

    Runs only after :func:`check_limits`, so the structure is known to be small and shallow. A part's bytes
    are decoded by :func:`_bytes_to_text` (declared charset, then UTF-8, then Windows-1252), so an odd
    label costs at worst some replaced characters. Attachments come out in mail-parser's shape.
    """
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    plain: list[str] = []
    html: list[str] = []
    found: list[dict] = []
    for part in msg.walk():
        if part.is_multipart():
            continue
        if part.get_content_maintype() == "multipart":
            # No usable boundary: the stdlib kept the body as one string. Shown as text, scanned as text.
            plain.append(_bytes_to_text(_payload_bytes(part), _param(part, "charset")))
            continue
        try:
            filename = part.get_filename() or ""
        except Exception:  # noqa: BLE001 - an RFC 2231 name in a charset nobody knows
            filename = ""
        filename = decode_header_value(str(filename)) if filename else ""
        disposition = (part.get("content-disposition") or "").split(";", 1)[0].strip().lower()
        ctype = part.get_content_type()
        data = _payload_bytes(part)
        if not filename and disposition != "attachment" and ctype in ("text/plain", "text/html"):
            text = _bytes_to_text(data, _param(part, "charset"))
            (plain if ctype == "text/plain" else html).append(text)
            continue
        found.append({"filename": filename, "mail_content_type": ctype, "binary": True,
                      "payload": base64.b64encode(data).decode("ascii"),
                      "content-disposition": part.get("content-disposition") or ""})
    return plain, html, found


def _payload_bytes(part: email.message.Message) -> bytes:
    payload = part.get_payload(decode=True)
    if isinstance(payload, bytes):
        return payload
    raw = part.get_payload()
    return raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else b""


def _param(part: email.message.Message, name: str) -> str | None:
    try:
        value = part.get_param(name)
    except Exception:  # noqa: BLE001 - a parameter the stdlib cannot unpack counts as absent
        return None
    if isinstance(value, tuple):  # RFC 2231: (charset, language, value)
        value = value[2]
    return str(value) if value else None


def _storable(text: str) -> str:
    """Text that can be stored and sent: lone surrogates (from undecodable bytes or odd charsets) become U+FFFD."""
    return text.encode("utf-8", "replace").decode("utf-8") if isinstance(text, str) else ""


def _lines(text: str) -> str:
    return _storable(text).replace("\r\n", "\n").replace("\r", "\n")


# --- limits -------------------------------------------------------------------------------------

_HEADER_START = re.compile(rb"From |[\x21-\x39\x3b-\x7e]*:")  # as email.feedparser's headerRE


def check_limits(raw: bytes, limits: MailLimits) -> bytes:
    """Refuse ``raw`` if it breaks ``limits``; return its top-level header block (LF line ends).

    A line scanner that follows the MIME structure as ``email.feedparser`` would: header blocks,
    ``boundary`` parameters, delimiter lines and ``message/*`` bodies. It reads header lines one
    by one and jumps between delimiter lines with one regular expression, so its cost is
    linear in the size and tiny next to the full parse.
    """
    if len(raw) > limits.max_bytes:
        raise UnparseableMail(f"limit max_bytes exceeded ({len(raw)} > {limits.max_bytes})")
    # Bare CR ends a line for the stdlib parser too: normalise, or a CR-only body hides its parts.
    data = raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    head: bytes | None = None
    stack: list[tuple[bytes | None, bool]] = []  # open containers: (boundary or None for message/*, is digest)
    parts, pos, default_type = 1, 0, "text/plain"
    while True:
        start = pos
        pos, ctype = _read_header_block(data, pos, limits)
        top = head is None
        if top:
            head = data[start:pos]
        maintype, subtype, boundary = _content_type(ctype, default_type)
        if top:
            _check_top_content_type(ctype)
        default_type = "text/plain"
        if maintype == "message" and subtype != "delivery-status":
            stack.append((None, False))  # the body is another message: its header block follows now
            _check_depth(stack, limits)
            continue
        if maintype == "multipart" and boundary is not None:
            stack.append((boundary, subtype == "digest"))
            _check_depth(stack, limits)
        while True:
            delimiter = _delimiter_re(tuple(b for b, _ in stack if b is not None))
            found = delimiter.search(data, pos) if delimiter else None
            if found is None:
                return head
            index = max(i for i, (b, _) in enumerate(stack) if b == found.group("b"))
            del stack[index + 1 :]
            pos = found.end() + 1
            if found.group("end"):
                stack.pop()  # closed; its epilogue may still hold an outer delimiter
                continue
            parts += 1
            if parts > limits.max_parts:
                raise UnparseableMail(f"limit max_parts exceeded (> {limits.max_parts})")
            default_type = "message/rfc822" if stack[-1][1] else "text/plain"
            break


def _check_depth(stack: list[tuple[bytes | None, bool]], limits: MailLimits) -> None:
    if len(stack) > limits.max_depth:
        raise UnparseableMail(f"limit max_depth exceeded (> {limits.max_depth})")


def _read_header_block(data: bytes, pos: int, limits: MailLimits) -> tuple[int, bytes | None]:
    """Read one header block from ``pos``; return where its body starts and its Content-Type."""
    ctype: bytes | None = None
    current: list[bytes] = []
    current_len = count = 0

    def finish() -> None:
        nonlocal ctype
        if current and ctype is None and current[0][:13].lower() == b"content-type:":
            ctype = b"".join(current)[13:]

    end = len(data)
    while pos < end:
        nl = data.find(b"\n", pos)
        line_end = end if nl < 0 else nl
        line = data[pos:line_end]
        if line[:1] in (b" ", b"\t") and current:
            current_len += len(line)
            current.append(line)
        elif line and _HEADER_START.match(line):
            finish()
            count += 1
            if count > limits.max_headers:
                raise UnparseableMail(f"limit max_headers exceeded (> {limits.max_headers})")
            current, current_len = [line], len(line)
        else:
            # A blank line ends the block; so does any non-header line, which starts the body.
            finish()
            return (line_end + 1 if not line else pos), ctype
        if current_len > limits.max_header_line:
            raise UnparseableMail(f"limit max_header_line exceeded (> {limits.max_header_line})")
        pos = line_end + 1
    finish()
    return end, ctype


def _check_top_content_type(value: bytes | None) -> None:
    """Read the top-level Content-Type as the header parser will: an RFC 2231 parameter in a charset that
    cannot decode (``name*=undefined''x``) stops it whatever the type, so the mail cannot be read."""
    if value is None:
        return
    try:
        email.policy.default.header_fetch_parse("Content-Type", value.decode("ascii", "surrogateescape").strip())
    except Exception as exc:  # noqa: BLE001 - any failure here is the parser's failure on this mail
        raise UnparseableMail(f"content-type parameter unreadable: {type(exc).__name__}") from None


def _content_type(value: bytes | None, default: str) -> tuple[str, str, bytes | None]:
    if value is None:
        maintype, subtype = default.split("/")
        return maintype, subtype, None
    # The stdlib's own parameter parsing, so RFC 2231 boundary*0= tricks count as they will parse.
    probe = email.message.Message()
    probe["Content-Type"] = value.decode("latin-1").strip()
    ctype = probe.get_content_type()
    if "/" not in ctype:
        ctype = default
    maintype, subtype = ctype.split("/", 1)
    try:
        boundary = probe.get_boundary() if maintype == "multipart" else None
    except Exception as exc:  # noqa: BLE001 - an RFC 2231 boundary in a charset that cannot decode (undefined, idna)
        # Every MIME parser we have stops at this header, so the mail cannot be read: say exactly why.
        raise UnparseableMail(f"boundary parameter unreadable: {type(exc).__name__}") from None
    return maintype, subtype, None if boundary is None else boundary.rstrip().encode("latin-1", "replace")


@lru_cache(maxsize=64)
def _delimiter_re(boundaries: tuple[bytes, ...]) -> re.Pattern[bytes] | None:
    if not boundaries:
        return None
    alternatives = b"|".join(re.escape(b) for b in sorted(set(boundaries), key=len, reverse=True))
    return re.compile(rb"^--(?P<b>" + alternatives + rb")(?P<end>--)?[ \t]*$", re.M)


# --- header values ------------------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f\x85\u2028\u2029]+")
_FOLD = re.compile(r"\r?\n(?=[ \t])")
_MSGID = re.compile(r"<[^<>\s]+>")
_LATIN1 = {"iso-8859-1", "iso8859-1", "latin-1", "latin1", "l1", "us-ascii", "ascii", "cp819", "iso_8859-1"}


def clean_header(text: str) -> str:
    """``text`` safe to put in an outgoing header: control characters (CR, LF, NUL ...) become spaces."""
    return _CONTROL.sub(" ", text).strip()


def decode_header_value(value: str) -> str:
    """A raw header value decoded from RFC 2047 encoded-words in any charset, unfolded and cleaned."""
    value = _FOLD.sub("", str(value))
    try:
        chunks = email.header.decode_header(value)
    except Exception:  # noqa: BLE001 - a broken encoded-word is shown as written
        chunks = [(value, None)]
    text = "".join(c if isinstance(c, str) else _bytes_to_text(c, charset) for c, charset in chunks)
    if any("\udc80" <= ch <= "\udcff" for ch in text):
        # Raw 8-bit bytes in a header (no encoded-word), carried by the stdlib as surrogates.
        text = _bytes_to_text(text.encode("utf-8", "surrogateescape"), None)
    return clean_header(text)


def _bytes_to_text(data: bytes, charset: str | None) -> str:
    """Decode header bytes: declared charset first, then UTF-8, then Windows-1252; never raises."""
    label = str(charset or "").lower().split("*", 1)[0]  # RFC 2231 language suffix
    if label in _LATIN1 or not label:
        # Mail clients label Windows-1252 text (en dash 0x96) as ISO-8859-1, as browsers assume.
        candidates = ["utf-8", "cp1252"] if not label else ["cp1252"]
    else:
        candidates = [c for c in (_text_codec(label),) if c] + ["utf-8", "cp1252"]
    for candidate in candidates:
        try:
            return data.decode(candidate)
        except Exception:  # noqa: BLE001 - idna/punycode/undefined raise plain UnicodeError or ValueError
            continue
    return data.decode("latin-1")


def _text_codec(label: str) -> str | None:
    """The codec a charset label names, if it is a text encoding. Labels are sender-controlled: a label
    holding NUL or a surrogate, or naming a bytes codec (base64, zlib, hex), names nothing."""
    try:
        info = codecs.lookup(label)
    except Exception:  # noqa: BLE001 - LookupError, ValueError (NUL), UnicodeEncodeError (surrogates)
        return None
    # A text encoding, and not one that runs escape sequences or fails by design.
    if not getattr(info, "_is_text_encoding", True) or info.name in _NOT_CHARSETS:
        return None
    return info.name


_NOT_CHARSETS = {"undefined", "unicode-escape", "raw-unicode-escape", "idna", "punycode", "rot-13", "mbcs",
                 "oem"}


def _first(headers: dict[str, list[str]], name: str) -> str:
    values = headers.get(name)
    return values[0] if values else ""


def _addresses(head: email.message.Message, name: str) -> list[tuple[str, str]]:
    """(address, display name) pairs of the first ``name`` header, read by ``policy.default``."""
    try:
        header = head[name]
        if header is None:
            return []
        return [
            (clean_header(a.addr_spec).lower(), clean_header(a.display_name or ""))
            for a in header.addresses
            if a.username
        ]
    except Exception as exc:  # noqa: BLE001 - e.g. RecursionError on nested comments
        raise UnparseableMail(f"header {name} unreadable: {type(exc).__name__}") from None


def _first_address(head: email.message.Message, name: str) -> tuple[str, str]:
    found = _addresses(head, name)
    return found[0] if found else ("", "")


def _date(value: str) -> object:
    if not value:
        return None
    try:
        return email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _attachment(found: dict) -> Attachment:
    payload = found.get("payload") or ""
    if found.get("binary"):
        try:
            data = base64.b64decode(payload)
        except (binascii.Error, ValueError):
            data = payload.encode("ascii", "replace")
    else:
        data = payload.encode("utf-8", "surrogateescape")
    return Attachment(
        filename=_storable(_given_filename(found)),
        content_type=_storable((found.get("mail_content_type") or "application/octet-stream").lower()),
        data=data,
    )


_INVENTED = re.compile(r"[a-z]{10}\.(?:txt|rtf)")


def _given_filename(found: dict) -> str:
    """The filename the mail gave, or "" where mail-parser made one up (random, or the Content-ID)."""
    name = found.get("filename") or ""
    if name and name == found.get("content-id"):
        return ""
    if _INVENTED.fullmatch(name) and "name" not in str(found.get("content-disposition") or "").lower():
        return ""
    return name


# --- HTML to text -------------------------------------------------------------------------------

_BLOCK = {
    "address", "article", "blockquote", "dd", "div", "dl", "dt", "footer", "form", "h1", "h2", "h3", "h4",
    "h5", "h6", "header", "hr", "li", "ol", "p", "pre", "section", "table", "tbody", "thead", "tr", "ul",
}
_DROP = {"script", "style", "head", "title", "template", "noscript"}


class _TextExtractor(HTMLParser):
    """HTML to plain text that keeps the lines a reader sees (Outlook writes one <p> per line)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.dropping: list[str] = []
        self.pre = 0

    def _at_line_start(self) -> bool:
        return not self.out or self.out[-1].endswith("\n")

    def _newline(self) -> None:
        if self.out and not self.out[-1].endswith("\n"):
            self.out.append("\n")

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag in _DROP:
            self.dropping.append(tag)
        elif self.dropping:
            return
        elif tag == "br":
            self.out.append("\n")
        elif tag in _BLOCK:
            self._newline()
            self.pre += tag == "pre"
        elif tag in ("td", "th") and not self._at_line_start():
            self.out.append("\t")

    def handle_startendtag(self, tag: str, attrs: list) -> None:
        if self.dropping:
            return
        if tag == "br":
            self.out.append("\n")
        elif tag in _BLOCK:
            self._newline()

    def handle_endtag(self, tag: str) -> None:
        if self.dropping:
            if tag in self.dropping:
                del self.dropping[self.dropping.index(tag) :]
            return
        if tag in _BLOCK:
            self._newline()
            self.pre -= tag == "pre" and self.pre > 0

    def handle_data(self, data: str) -> None:
        if self.dropping:
            return
        if not self.pre:
            data = re.sub(r"[ \t\r\n\f]+", " ", data)
            if self._at_line_start():
                data = data.lstrip(" ")
        if data:
            self.out.append(data)


def html_to_text(html: str) -> str:
    """Plain text of an HTML body: block elements and <br> become line breaks, scripts and styles go."""
    parser = _TextExtractor()
    try:
        parser.feed(html)
        parser.close()
    except Exception:  # noqa: BLE001 - html.parser is lenient; this is a last resort
        return unescape(re.sub(r"<[^>]*>", " ", html))
    lines = [line.replace("\xa0", " ").rstrip(" \t") for line in "".join(parser.out).split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n")
