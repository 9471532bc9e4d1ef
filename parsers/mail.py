"""Raw message bytes into a parsed mail: subject, sender, plain body text, attachments, headers.

One parse per mail, by the stdlib ``email`` package with the ``compat32`` policy (FIELD-NOTES, "Mail
parsing"): its tree gives the header values, the text and HTML parts and the attachments, which are
sorted as mail-parser sorts them (a named part, a part with a Content-ID that is not text, an RTF part
or one marked ``attachment`` is a file; named inline text is both) and decoded once, straight to bytes.
``policy.default`` is used only where it is needed for correctness: the From and To headers
(``email.utils.parseaddr`` on Python 3.11.7 returns the wrong address for CVE-2023-27043 headers;
``policy.default`` header objects give the real one) and the top-level Content-Type.

Before the parse, :func:`check_limits` walks the MIME structure with a cheap line scanner, so a
message with 100k parts or 1000 nested levels is refused in milliseconds instead of costing seconds,
hundreds of MB or a ``RecursionError``. The same scan finds each leaf part's body; a body that is
base64 text and nothing else is left out of what the ``email`` parser reads (a marker line stands in
its place) and decoded from the raw bytes directly. That keeps a large attachment from being held as
lines, as a joined string and as decoded bytes at once: the parse costs about the attachment's size on
top of the raw mail, and the parser's per-line work is skipped for every file.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import email.feedparser
import email.header
import email.message
import email.policy
import email.utils
import re
import secrets
from dataclasses import dataclass, field
from functools import lru_cache
from html import unescape
from html.parser import HTMLParser


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
    scan = _scan(raw, limits)
    try:
        msg, bodies = _parse_eliding(scan)
        walked = _Walk(bodies)
        walked.run(msg)
    except UnparseableMail:
        raise
    except Exception as exc:  # noqa: BLE001 - the stdlib parser and the walk are bounded by the scan; last resort
        raise UnparseableMail(f"parser error: {type(exc).__name__}") from None
    plain, html, found = walked.plain, walked.html, walked.attachments

    headers: dict[str, list[str]] = {}
    for name, value in msg.raw_items():
        headers.setdefault(clean_header(name).lower(), []).append(decode_header_value(value))

    defects = sorted(walked.defects)
    if len(headers.get("subject", [])) > 1:
        # MUAs show the first Subject; so do we, and we say the mail had more than one.
        defects.append("DuplicateSubject")

    headers = {name: [_storable(v) for v in values] for name, values in headers.items()}
    sender, sender_name = (_storable(x) for x in _first_address(msg, "from"))
    to = [_storable(addr) for addr, _ in _addresses(msg, "to")]
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
        attachments=found,
        in_reply_to=(_MSGID.findall(_first(headers, "in-reply-to")) or [_first(headers, "in-reply-to")])[0],
        references=_MSGID.findall(" ".join(headers.get("references", []))),
        content_type=scan.content_type,
        defects=defects,
        # What an HTML reader sees, even when a text part exists: the personal-data scan reads both.
        html_text=_lines(html_text) if plain else "",
    )


# --- one parse, bodies left out -----------------------------------------------------------------

#: A base64 body at least this long is decoded from the raw bytes instead of going through the parser.
ELIDE_MIN_BYTES = 1024
_PARSE_CHUNK = 64 * 1024
_BASE64_BODY = re.compile(rb"[A-Za-z0-9+/=\r\n\t ]*")
_WHITESPACE = b" \t\r\n"
_LEADING_SPACE = re.compile(rb"[ \t\r\n]*")


def _parse_eliding(scan: _Scan) -> tuple[email.message.Message, dict[str, memoryview]]:
    """The message tree of ``scan.data``, with each long base64 leaf body replaced by a marker line.

    Returns the tree and, by marker, the body's base64 text in the raw bytes. Markers are random per
    parse, made of base64 letters (so the parser sees the same lines, delimiters and structure) and
    each must come back as exactly one leaf part's whole payload; when one does not, the mail is parsed
    again as it is (never seen in practice: a safety net, not a second parse per mail).
    """
    data, pieces, bodies, at = scan.data, [], {}, 0
    nonce = secrets.token_hex(8)
    for start, end in scan.base64_bodies:
        start = _LEADING_SPACE.match(data, start, end).end()
        end = _rstrip_end(data, start, end)
        if end - start < ELIDE_MIN_BYTES or _BASE64_BODY.fullmatch(data, start, end) is None:
            continue
        marker = f"intakeelided{nonce}n{len(bodies)}"
        pieces += [memoryview(data)[at:start], marker.encode("ascii")]
        bodies[marker] = memoryview(data)[start:end]
        at = end
    if not bodies:
        return _feed(data), {}
    pieces.append(memoryview(data)[at:])
    msg = _feed(b"".join(pieces))
    claimed = 0
    for part in msg.walk():
        payload = part._payload  # noqa: SLF001 - the stored text, not get_payload()'s charset-decoded copy
        if isinstance(payload, str) and nonce in payload:
            if payload.strip() not in bodies or not _is_base64(part):
                return _feed(data), {}
            claimed += 1
    if claimed != len(bodies) or (msg.preamble and nonce in msg.preamble) or (msg.epilogue and nonce in msg.epilogue):
        return _feed(data), {}
    return msg, bodies


def _feed(data: bytes) -> email.message.Message:
    """``email.message_from_bytes`` fed in chunks: never the whole mail as one str (nor as a UCS-4 StringIO)."""
    parser = email.feedparser.BytesFeedParser(policy=email.policy.compat32)
    for at in range(0, len(data), _PARSE_CHUNK):
        parser.feed(bytes(data[at : at + _PARSE_CHUNK]))
    return parser.close()


def _rstrip_end(data: bytes, start: int, end: int) -> int:
    """``end`` moved back over trailing whitespace, read from the end in slices (never the whole body)."""
    while end > start:
        piece = data[max(start, end - 65536) : end]
        kept = piece.rstrip(_WHITESPACE)
        if kept:
            return end - len(piece) + len(kept)
        end -= len(piece)
    return start


def _is_base64(part: email.message.Message) -> bool:
    return str(part.get("content-transfer-encoding", "")).strip().lower() == "base64"


def _first_raw(msg: email.message.Message, name: str) -> str | None:
    """The first ``name`` header's raw value (as in the source, unfolded lines kept)."""
    for key, value in msg.raw_items():
        if key.lower() == name:
            return value
    return None


class _Walk:
    """Text parts, HTML parts, attachments and defect names of one message tree, as mail-parser sorts them.

    Each part is decoded once: attachments straight to bytes (a left-out base64 body from the raw bytes,
    through a memoryview), text parts to text by their charset (then UTF-8, with replacement, noted as a
    ``CharsetDecodeDefect``). Nothing here raises for any tree the parser builds.
    """

    def __init__(self, bodies: dict[str, memoryview]) -> None:
        self.bodies = bodies
        self.plain: list[str] = []
        self.html: list[str] = []
        self.attachments: list[Attachment] = []
        self.defects: set[str] = set()

    def run(self, msg: email.message.Message) -> None:
        parts: list[tuple[email.message.Message, bool]] = []
        inside_attached: set[int] = set()
        for part in msg.walk():
            self.defects.update(type(d).__name__ for d in part.defects)
            inside = id(part) in inside_attached
            parts.append((part, inside))
            if part.is_multipart():
                disposition = part.get_content_disposition()
                # RFC 2183 2.9: a disposition applies to the whole container; inline parts of an attached
                # container stay inside the attachment.
                blocks_inline = disposition not in (None, "inline") or (
                    disposition != "inline" and bool(_filename(part)))
                if inside or blocks_inline:
                    inside_attached.update(id(child) for child in part.get_payload())
        for part, inside in parts:
            self._part(part, inside, part is msg)

    def _part(self, part: email.message.Message, inside: bool, root: bool) -> None:
        view = _mime_view(part)
        disposition = str(view.get_content_disposition() or "").lower()
        multipart = part.is_multipart()
        if multipart and disposition != "attachment":
            return
        filename = _filename(view)
        content_id = str(view.get("content-id") or "")
        subtype = view.get_content_subtype()
        # mail-parser's tests, "in" included: a subtype that is a substring of "rtf" counts as RTF.
        attached = bool(filename) or (bool(content_id) and subtype not in ("html", "plain")) or (
            subtype in "rtf") or disposition == "attachment"
        if (root or not attached) and not multipart and part.get_content_maintype() == "multipart":
            # A multipart without a usable boundary (empty, missing, never found): the parser kept its body as
            # one string. Read as one text part, so its text is shown and scanned.
            self.plain.append(_bytes_to_text(self._bytes(part), _param(part, "charset")))
            return
        if attached:
            if multipart:
                self._restore_below(part)
                from mailparser.utils import as_string_safe  # (rare: importing mail-parser costs 20 ms a start)

                data = "".join(as_string_safe(m) for m in part.get_payload()).encode("utf-8", "surrogateescape")
            else:
                data = self._bytes(part, attachment=True)
            self.attachments.append(Attachment(
                filename=_storable(filename),
                content_type=_storable((view.get_content_type() or "application/octet-stream").lower()),
                data=data,
            ))
        inline_text = not inside and not multipart and disposition == "inline" and part.get_content_type() in (
            "text/plain", "text/html")
        if not attached or inline_text:
            text = self._text(part, view.get_content_charset("utf-8"))
            if text:
                kind = part.get_content_subtype()
                if kind == "html":
                    self.html.append(text)
                elif kind == "plain":
                    self.plain.append(text)

    def _bytes(self, part: email.message.Message, attachment: bool = False) -> bytes:
        """The part's content with its transfer encoding undone, decoded once."""
        payload = part._payload  # noqa: SLF001 - the stored text; get_payload() would copy it
        body = self.bodies.get(payload.strip()) if self.bodies and isinstance(payload, str) else None
        if attachment and (body is not None or _is_base64(part)):
            try:
                return binascii.a2b_base64(body if body is not None else payload)
            except (binascii.Error, ValueError):
                # Broken base64 or 8-bit bytes in it: the file is the text as sent (as mail-parser had it).
                self._restore(part)
                return _attached_text(part)
        if body is not None:
            try:
                return binascii.a2b_base64(body)
            except (binascii.Error, ValueError):
                self._restore(part)  # a text part: the stdlib decodes it, with its padding repairs
        return _payload_bytes(part)

    def _text(self, part: email.message.Message, charset: str) -> str:
        """A body part as text: mail-parser's reading (declared charset, else UTF-8 with replacement)."""
        cte = str(part.get("content-transfer-encoding", "")).strip().lower()
        payload = part._payload  # noqa: SLF001
        if (not cte or cte in ("7bit", "8bit")) and isinstance(payload, str) and not _has_surrogates(payload):
            return payload
        data = self._bytes(part)
        if not data:
            return ""
        try:
            text = data.decode(charset)
            text.encode("utf-8")  # a codec that makes lone surrogates did not decode
            return text
        except Exception:  # noqa: BLE001 - LookupError, UnicodeError, ValueError (a NUL in the label)
            self.defects.add("CharsetDecodeDefect")
            try:
                return data.decode("utf-8")
            except UnicodeDecodeError:
                return data.decode("utf-8", "replace")

    def _restore(self, part: email.message.Message) -> None:
        payload = part._payload  # noqa: SLF001
        if isinstance(payload, str) and payload.strip() in self.bodies:
            marker = payload.strip()
            part._payload = payload.replace(marker, bytes(self.bodies.pop(marker)).decode("ascii"))  # noqa: SLF001

    def _restore_below(self, part: email.message.Message) -> None:
        """Put the left-out bodies back under ``part``, which is about to be flattened to text."""
        if self.bodies:
            for sub in part.walk():
                self._restore(sub)


def _mime_view(part: email.message.Message) -> email.message.Message:
    """The part's MIME headers with 8-bit bytes read as UTF-8 (replacement for invalid), as mail-parser reads
    them; the part itself when they are plain ASCII (nearly always)."""
    names = ("content-type", "content-disposition", "content-id", "content-transfer-encoding")
    mime = [(k, v) for k, v in part.raw_items() if k.lower() in names]
    if not any(isinstance(v, str) and _has_surrogates(v) for _, v in mime):
        return part
    view = email.message.Message()
    view.set_default_type(part.get_default_type())
    for name, value in mime:
        view[name] = str(value).encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return view


def _filename(part: email.message.Message) -> str:
    """The filename the part gives (Content-Disposition, else Content-Type name; RFC 2231 and encoded-words
    decoded), "" when none or unreadable. Untrusted: returned as sent, path parts and all."""
    try:
        name = part.get_filename()
    except Exception:  # noqa: BLE001 - an RFC 2231 name in a charset nobody knows
        return ""
    if not name:
        return ""
    name = str(name)
    if _has_surrogates(name):
        name = name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    try:
        text = "".join(
            chunk if isinstance(chunk, str) else _decode_chunk(chunk, charset or "utf-8")
            for chunk, charset in email.header.decode_header(name))
    except Exception:  # noqa: BLE001 - a broken encoded-word: the name as written
        text = name
    if _has_surrogates(text):
        return name.encode("utf-8", "backslashreplace").decode("utf-8").strip()
    return text.strip()


def _decode_chunk(data: bytes, charset: str) -> str:
    try:
        return str(data, charset)
    except Exception:  # noqa: BLE001 - LookupError, UnicodeError, ValueError
        return str(data, "utf-8", "ignore")


def _has_surrogates(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _payload_bytes(part: email.message.Message) -> bytes:
    try:
        payload = part.get_payload(decode=True)
    except Exception:  # noqa: BLE001 - a transfer encoding the stdlib cannot undo: the bytes as sent
        payload = None
    if isinstance(payload, bytes):
        return payload
    raw = part._payload  # noqa: SLF001
    return raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else b""


def _attached_text(part: email.message.Message) -> bytes:
    """A base64 attachment that does not decode, as mail-parser handed it on: its text, or the stdlib's bytes
    when the part's charset cannot even show the text."""
    try:
        text = part.get_payload()
    except (LookupError, UnicodeError):
        return _payload_bytes(part)
    return str(text).encode("ascii", "replace")


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


@dataclass(frozen=True)
class _Scan:
    """What the structural scan learnt: the bytes to parse, the top-level header block and content type, and
    where each leaf part's body lies when its header says base64 (outside ``message/*`` parts)."""

    data: bytes  # the raw mail
    head: bytes
    content_type: str
    base64_bodies: list[tuple[int, int]]


def check_limits(raw: bytes, limits: MailLimits) -> bytes:
    """Refuse ``raw`` if it breaks ``limits``; return its top-level header block.

    A line scanner that follows the MIME structure as ``email.feedparser`` would: header blocks,
    ``boundary`` parameters, delimiter lines and ``message/*`` bodies. It reads header lines one
    by one and jumps between delimiter lines with one regular expression, so its cost is
    linear in the size and tiny next to the full parse.
    """
    return _scan(raw, limits).head


def _scan(raw: bytes, limits: MailLimits) -> _Scan:
    if len(raw) > limits.max_bytes:
        raise UnparseableMail(f"limit max_bytes exceeded ({len(raw)} > {limits.max_bytes})")
    data = raw
    carriage_returns = raw.count(b"\r")
    if carriage_returns and carriage_returns != raw.count(b"\r\n"):
        # A bare CR ends a line for the stdlib parser too: normalise, or a CR-only body hides its parts.
        # (CRLF needs no copy: the scanner reads a CR before LF as part of the line end.)
        data = raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    head: bytes | None = None
    top_type = "text/plain"
    bodies: list[tuple[int, int]] = []
    stack: list[tuple[bytes | None, bool]] = []  # open containers: (boundary or None for message/*, is digest)
    parts, pos, default_type = 1, 0, "text/plain"
    while True:
        start = pos
        pos, ctype, cte = _read_header_block(data, pos, limits)
        top = head is None
        if top:
            head = data[start:pos]
        maintype, subtype, boundary = _content_type(ctype, default_type)
        if top:
            top_type = _check_top_content_type(ctype)
        default_type = "text/plain"
        if maintype == "message" and subtype != "delivery-status":
            stack.append((None, False))  # the body is another message: its header block follows now
            _check_depth(stack, limits)
            continue
        if maintype == "multipart" and boundary is not None:
            stack.append((boundary, subtype == "digest"))
            _check_depth(stack, limits)
        # A leaf's body runs to the next delimiter line (or the end): noted when it may be left out of the parse.
        leaf = cte == b"base64" and maintype not in ("multipart", "message") and all(b is not None for b, _ in stack)
        while True:
            found = _find_delimiter(data, pos, {b for b, _ in stack if b is not None})
            if leaf:
                bodies.append((pos, found[0] if found else len(data)))
                leaf = False
            if found is None:
                # The parser reads ``raw`` as sent; body places found in a normalised copy do not apply to it.
                return _Scan(raw, head, top_type, bodies if data is raw else [])
            _start, end, boundary, closing = found
            index = max(i for i, (b, _) in enumerate(stack) if b == boundary)
            del stack[index + 1 :]
            pos = end + 1
            if closing:
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


def _read_header_block(data: bytes, pos: int, limits: MailLimits) -> tuple[int, bytes | None, bytes]:
    """Read one header block from ``pos``: where its body starts, its Content-Type and its transfer encoding."""
    ctype: bytes | None = None
    cte: bytes | None = None
    current: list[bytes] = []
    current_len = count = 0

    def finish() -> None:
        nonlocal ctype, cte
        if not current:
            return
        name = current[0][:26].lower()
        if ctype is None and name.startswith(b"content-type:"):
            ctype = b"".join(current)[13:]
        elif cte is None and name == b"content-transfer-encoding:":
            cte = b"".join(current)[26:].strip().lower()

    end = len(data)
    while pos < end:
        nl = data.find(b"\n", pos)
        line_end = end if nl < 0 else nl
        line = data[pos : line_end - 1 if line_end > pos and data[line_end - 1] == 13 else line_end]  # CR LF
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
            return (line_end + 1 if not line else pos), ctype, cte or b""
        if current_len > limits.max_header_line:
            raise UnparseableMail(f"limit max_header_line exceeded (> {limits.max_header_line})")
        pos = line_end + 1
    finish()
    return end, ctype, cte or b""


_TOKEN = rb"[A-Za-z0-9!#$&^_.+-]+"
_QUOTED = rb'"[\x20\x21\x23-\x5b\x5d-\x7e]*"'  # printable ASCII, no quote, no backslash
_SIMPLE_CONTENT_TYPE = re.compile(
    rb"[ \t]*" + _TOKEN + rb"/" + _TOKEN + rb"[ \t]*(?:;[ \t]*[A-Za-z0-9_-]+=(?:" + _QUOTED + rb"|" + _TOKEN
    + rb")[ \t]*)*;?[ \t]*")


def _check_top_content_type(value: bytes | None) -> str:
    """The top-level content type as ``policy.default`` reads it. Read as the header parser will: an RFC 2231
    parameter in a charset that cannot decode (``name*=undefined''x``) stops it whatever the type, so the
    mail cannot be read."""
    probe = email.message.Message(policy=email.policy.default)
    if value is None:
        return probe.get_content_type()
    if _SIMPLE_CONTENT_TYPE.fullmatch(value) and b"=?" not in value:
        # type/subtype and plain or quoted parameters: nothing the header parser could fail on, and it would
        # read the type as this does.
        return value.split(b";", 1)[0].strip().decode("ascii").lower()
    try:
        probe["Content-Type"] = email.policy.default.header_fetch_parse(
            "Content-Type", value.decode("ascii", "surrogateescape").strip())
        return probe.get_content_type()
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


#: A line that starts with two hyphens: a delimiter line if the rest names an open boundary.
_DASHES = re.compile(rb"^--([^\n]*)$", re.M)


def _find_delimiter(data: bytes, pos: int, boundaries: set[bytes]) -> tuple[int, int, bytes, bool] | None:
    """The first delimiter line of any of ``boundaries`` from ``pos``: (start, end of line before its LF,
    boundary, whether it closes), or None.

    A line is ``--boundary``, then ``--`` if it closes, then spaces or tabs, then the line end (a CR
    before the LF belongs to it); where two open boundaries could match, the longer one does. The first
    lines starting with two hyphens are checked one by one with one expression for every mail (a pattern
    per boundary costs 0.36 ms to compile); a body with many such lines that are not delimiters (hostile,
    or a long list of "--" items) gets the pattern of its boundaries, so the search stays at the regex
    engine's speed.
    """
    if not boundaries:
        return None
    search = _DASHES.search
    for _ in range(_CHEAP_LINES):
        line = search(data, pos)
        if line is None:
            return None
        rest = line.group(1)
        if rest.endswith(b"\r"):
            rest = rest[:-1]
        rest = rest.rstrip(b" \t")
        if rest in boundaries:
            return line.start(), line.end(), rest, False
        if rest.endswith(b"--") and rest[:-2] in boundaries:
            return line.start(), line.end(), rest[:-2], True
        pos = line.end() + 1
    found = _delimiter_re(tuple(sorted(boundaries))).search(data, pos)
    if found is None:
        return None
    return found.start(), found.end(), found.group("b"), found.group("end") is not None


#: "--" lines looked at one by one before a mail's own delimiter pattern is compiled.
_CHEAP_LINES = 64


@lru_cache(maxsize=64)
def _delimiter_re(boundaries: tuple[bytes, ...]) -> re.Pattern[bytes]:
    alternatives = b"|".join(re.escape(b) for b in sorted(boundaries, key=len, reverse=True))
    # A CR before the LF belongs to the line end (the scan reads CRLF mail without normalising it).
    return re.compile(rb"^--(?P<b>" + alternatives + rb")(?P<end>--)?[ \t]*\r?$", re.M)


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


#: A mailbox whose reading cannot be in doubt: a plain name of letters, digits, spaces, hyphens and
#: apostrophes, and a dot-atom address. ``policy.default`` reads it as this does (tests/parsers compare them).
_SIMPLE_MAILBOX = re.compile(
    r"[ \t]*(?:(?P<name>[A-Za-z0-9'-]+(?:[ \t]+[A-Za-z0-9'-]+)*)?[ \t]*<(?P<angle>{a})>|(?P<bare>{a}))[ \t]*".format(
        a=r"[A-Za-z0-9_+-]+(?:\.[A-Za-z0-9_+-]+)*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"))
_SPACES = re.compile(r"[ \t]+")


#: The same with a name whose words may also be whole encoded-words ("Karin =?utf-8?q?B=C3=A4ck?="), as most
#: Swedish senders' names are sent; each one is decoded by :func:`_plain_encoded_word` or the header is not simple.
#: (0.1 ms a mail less than ``policy.default``'s parse; tests/parsers/test_mail.py compares the two.)
_ENCODED_MAILBOX = re.compile(
    r"[ \t]*(?P<name>(?:[A-Za-z0-9'-]+|=\?[^?\s]+\?[^?\s]+\?[^?\s]*\?=)"
    r"(?:[ \t]+(?:[A-Za-z0-9'-]+|=\?[^?\s]+\?[^?\s]+\?[^?\s]*\?=))*)[ \t]*<(?P<angle>{a})>[ \t]*".format(
        a=r"[A-Za-z0-9_+-]+(?:\.[A-Za-z0-9_+-]+)*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"))
_ENCODED_WORD = re.compile(r"=\?(?P<charset>utf-8|iso-8859-1)\?(?:[qQ]\?(?P<q>(?:[A-Za-z0-9!*+/_-]|=[0-9A-F]{2})*)"
                           r"|[bB]\?(?P<b>(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?))\?=",
                           re.I)
#: A decoded word that reads the same however it is joined: letters, digits, hyphens, apostrophes and single
#: inner spaces, nothing that could quote, comment or end a mailbox (CVE-2023-27043 hides an address there).
_PLAIN_NAME = re.compile(r"[^\W_](?:[^\W_]|[ '-](?=[^\W_'-]))*|[^\W_]")


def _plain_encoded_word(word: str) -> str | None:
    """The text of one encoded-word when it is plain (see ``_PLAIN_NAME``), else None."""
    match = _ENCODED_WORD.fullmatch(word)
    if match is None:
        return None
    try:
        if match.group("q") is not None:
            data = binascii.a2b_qp(match.group("q").encode("ascii"), header=True)  # "_" is a space
        else:
            data = base64.b64decode(match.group("b"), validate=True)
        text = data.decode(match.group("charset").lower())
    except (ValueError, UnicodeError):
        return None
    return text if _PLAIN_NAME.fullmatch(text) else None


def _encoded_name(name: str) -> str | None:
    """A display name of plain words and plain encoded-words, joined by single spaces as ``policy.default``
    joins them (it keeps the space between two encoded-words too); None when any word is not plain."""
    out = []
    for word in name.split():
        text = _plain_encoded_word(word) if word.startswith("=?") else word
        if text is None:
            return None
        out.append(text)
    return " ".join(out)


def _simple_addresses(value: str) -> list[tuple[str, str]] | None:
    """The mailboxes of an address header made only of simple mailboxes, or None (then ``policy.default`` reads
    it: quotes, comments, groups, 8-bit text, encoded-words that are not plain names, anything that could be
    read two ways)."""
    found = []
    for item in _FOLD.sub("", value).split(","):
        match = _SIMPLE_MAILBOX.fullmatch(item)
        if match is not None:
            address = match.group("angle") or match.group("bare")
            found.append((address.lower(), _SPACES.sub(" ", match.group("name") or "")))
            continue
        match = _ENCODED_MAILBOX.fullmatch(item) if "=?" in item else None
        name = _encoded_name(match.group("name")) if match is not None else None
        if name is None:
            return None
        found.append((match.group("angle").lower(), name))
    return found


def _addresses(msg: email.message.Message, name: str) -> list[tuple[str, str]]:
    """(address, display name) pairs of the first ``name`` header, read by ``policy.default``."""
    value = _first_raw(msg, name)
    if value is None:
        return []
    simple = _simple_addresses(value)
    return simple if simple is not None else _policy_addresses(name, value)


def _policy_addresses(name: str, value: str) -> list[tuple[str, str]]:
    try:
        header = email.policy.default.header_fetch_parse(name, value)
        return [
            (clean_header(a.addr_spec).lower(), clean_header(a.display_name or ""))
            for a in header.addresses
            if a.username
        ]
    except Exception as exc:  # noqa: BLE001 - e.g. RecursionError on nested comments
        raise UnparseableMail(f"header {name} unreadable: {type(exc).__name__}") from None


def _first_address(msg: email.message.Message, name: str) -> tuple[str, str]:
    found = _addresses(msg, name)
    return found[0] if found else ("", "")


def _date(value: str) -> object:
    if not value:
        return None
    try:
        return email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


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
