"""Identity numbers (personnummer, samordningsnummer) and reserve numbers in mail text.

The check digit and the date come from ``rules.identity``; this module decides from the context
whether a valid number is a person's (not an order, account or phone number, nor a timestamp). Three
shapes need more than one match of ``_NUMBER``:

- a number a mail client wrapped over a line break ("19121212-" / "1212", also inside "> " quotes and
  after a quoted-printable soft break "="): joined again at the break (``_wrapped``);
- a reserve number written only in digits but named as one ("reservnr 991212-1233"): found from the
  word (``_named_reserve``), whatever the digits;
- a date and a time in a file name or a log line ("skärmdump_20240513-1431.png"): a timestamp, not a
  small child's personnummer (``timestamps.is_timestamp``).
"""

from __future__ import annotations

import re
from bisect import bisect_left
from datetime import date

from rules.identity import parse_identity_number
from rules.personal_data.birth_dates import plain_date
from rules.personal_data.text import Hit, LineIndex
from rules.personal_data.timestamps import DASHES, is_timestamp, looks_like_timestamp
from rules.personal_data.words_data import alternation, entries

_SEP_CHARS = re.escape(DASHES)
# A date (6 digits, optionally after a century) and a four-character serial, with at most one
# separator; a dash may have a space on either side ("19121212 - 1212").
_NUMBER = re.compile(
    rf"(?P<digits>[0-9](?<![0-9][0-9])(?<![0-9][.,][0-9])(?:[0-9]{{7}}|[0-9]{{5}}))"
    rf"(?P<sep>[ \t\u00a0\u202f]?[{_SEP_CHARS}][ \t\u00a0\u202f]?|[+ \t\u00a0\u202f])?"
    rf"(?P<serial>[0-9A-Za-z]{{4}})"
    rf"(?![0-9A-Za-z])(?![.,][0-9])"
)
_PNR_CONTEXT = re.compile(rf"(?i:\b(?:{alternation('pnr_context')})\b)")
_PHONE_CONTEXT = re.compile(rf"(?i:\b(?:{alternation('phone_context')})\b)")
# A key word right before the number. An organisation or account number is never a person here
# (a sole trader's organisation number is their personnummer, but the issue asks to let it pass).
_ORG_CONTEXT = re.compile(rf"(?i:\b(?:{alternation('org_context')})\.?)\s*[:#.=]?\s*$")
# An order, ticket or reference number: silenced, except a 12-digit number written exactly like a
# personnummer ("19121212-1212"), which is held for staff instead.
_ORDER_CONTEXT = re.compile(
    rf"(?i:\b(?:{alternation('order_context')})\.?\s?(?:nr|nummer|no|#)?\.?)\s*[:#.=]?\s*$"
)

# --- one number -------------------------------------------------------------------------------


def _judge(m: re.Match[str], text: str, line: tuple[int, int], today: date) -> tuple[str, float] | None:
    """The category and score of the candidate ``m`` on the line ``line`` (start, end) of ``text``."""
    digits, serial = m.group("digits"), m.group("serial")
    cent, yymmdd = (digits[:2], digits[2:]) if len(digits) == 8 else (None, digits)
    if cent is not None and cent not in ("18", "19", "20"):
        return None
    raw_sep = m.group("sep") or ""
    plus = "+" in raw_sep
    sep = "+" if plus else ("" if not raw_sep else ("-" if raw_sep.strip() else " "))
    pre = text[max(line[0], m.start() - 48) : m.start()]
    if _ORG_CONTEXT.search(pre):
        return None
    order_context = bool(_ORDER_CONTEXT.search(pre))
    pnr_context = bool(_PNR_CONTEXT.search(pre))
    if serial.isdigit():
        ident = parse_identity_number(f"{cent or ''}{yymmdd}{'-' if sep == ' ' else sep}{serial}", today)
        if ident is None:
            return None
        score = 0.95 if (cent or sep in ("-", "+")) else 0.9
        if order_context:
            if not (cent and sep == "-"):
                return None
            score = 0.6
        else:
            if looks_like_timestamp(serial, ident.birth_date, today) and is_timestamp(
                text, m.start(), m.end(), line, sep, pnr_context
            ):
                return None
            if not pnr_context and not cent and yymmdd[0] == "0":
                # Swedish phone numbers are ten digits starting with 0 as well: silenced by a
                # phone word, and held rather than rejected when written without a dash.
                if _PHONE_CONTEXT.search(pre):
                    return None
                if sep != "-":
                    score = 0.6
        return ident.kind, score
    if order_context:
        return None
    letters = sum(c.isalpha() for c in serial)
    if not 1 <= letters <= 2 or cent is None and not raw_sep and not pnr_context:
        return None  # ten characters run together: too much like a product or order code
    if plain_date(cent, yymmdd, plus, today) is None:
        return None
    return "reservnummer", 0.9 if (cent or pnr_context) else 0.8


def _line_of(text: str, offset: int, lines: LineIndex) -> tuple[int, int]:
    end = text.find("\n", offset)
    return lines.start_of(offset), len(text) if end < 0 else end


# --- numbers wrapped over a line break --------------------------------------------------------

# A break a mail client may put inside a number: a quoted-printable soft break "=" (when the part
# was shown undecoded) or up to two trailing spaces, the line break, and the next line's quote marks
# and indent. The pattern starts with the digit or dash before the break (a plain character class
# lets the regex engine skip ahead fast); the break starts right after it.
_WRAP = re.compile(
    rf"[0-9{_SEP_CHARS}+](?:=|[ \t\u00a0]{{0,2}})\n(?:[ \t]*>)*[ \t]*(?=[0-9A-Za-z{_SEP_CHARS}+])"
)
_TAIL = 48 + 16  # the context window before a number, and the longest number
_IN_NUMBER = "0123456789" + DASHES + "+ \t\u00a0"  # what a number and its separators are made of
_ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _wrapped(text: str, today: date, lines: LineIndex, taken: list[Hit]) -> list[Hit]:
    """Numbers split over a line break, joined again; reported on the line they start on.

    ``taken`` are the numbers found on single lines, in order of offset: a join that overlaps one of
    them is not a number of its own.
    """
    starts, ends = [h[3] for h in taken], [h[4] for h in taken]
    hits: list[Hit] = []
    for b in _WRAP.finditer(text):
        start, brk_end = b.start() + 1, b.end()
        qp = text[start] == "="
        space = 0 if qp else text.index("\n", start) - start
        line_start = lines.start_of(start)
        tail = text[max(line_start, start - _TAIL) : start]
        next_end = text.find("\n", brk_end)
        head = text[brk_end : (len(text) if next_end < 0 else next_end)][:40]
        # At most this many characters of a number on the two sides of the break: at least ten needed.
        before = len(tail) - len(tail.rstrip(_IN_NUMBER))
        after = len(head) - len(head.lstrip(_IN_NUMBER))
        after += min(4, len(head) - after - len(head[after:].lstrip(_ALNUM)))  # a serial with letters
        if before + after < 10:
            continue
        mid_run = tail[-1:].isdigit() and head[:1].isdigit() and not space
        # Broken at a space (a word wrap) the space is gone; broken inside a run of digits (a fixed
        # column wrap, a soft break) nothing is: try both readings when a run of digits was cut.
        glues = [" ", ""] if mid_run and not qp else ([" "] if space else [""])
        for glue in glues:
            joined = tail + glue + head
            cut = len(tail)
            m = next((m for m in _NUMBER.finditer(joined) if m.end() > cut), None)
            if m is None or not m.start() < cut < m.end() - len(glue):
                continue
            judged = _judge(m, joined, (0, len(joined)), today)
            if judged is None:
                continue
            category, score = judged
            offset, end = start - cut + m.start(), brk_end + (m.end() - cut - len(glue))
            i = bisect_left(starts, end) - 1  # the last number on one line starting before this ends
            if i >= 0 and ends[i] > offset:
                break  # part of a number already found on one of the lines
            if mid_run and glue == "" and not qp and not (m.group("sep") or "").strip():
                score = min(score, 0.6)  # digits only, cut at the break: less sure it is one number
            hits.append((category, offset, score, offset, end))
            break
    return hits


# --- reserve numbers named as such ------------------------------------------------------------

# The word, then at most a few short words or signs on the same line ("reservnumret för patienten
# är:"), or a colon and the next line; then digits shaped like an identity number (any date, any
# check digit: reserve numbers follow each region's own scheme) or a run of 10 to 13 digits.
# Most mail names no reserve number: the first letters of the words, looked for first, say so fast.
_RESERVE_STEMS = frozenset(e.lower().split(" ")[0][:5] for e in entries("reserve_context"))
_NAMED_RESERVE = re.compile(
    rf"(?i:\b(?:{alternation('reserve_context')})\b)"
    r"(?P<filler>(?:[ \t:=#|(,\u00a0]+[^\W\d_]{1,15}){0,4}?[ \t:=#|(,\u00a0.-]*(?:\n[ \t>]*)?)"
    rf"(?P<value>(?<![0-9A-Za-z])(?:[0-9]{{6}}(?:[0-9]{{2}})?(?:[ \t\u00a0]?[{_SEP_CHARS}+][ \t\u00a0]?|[ \t\u00a0])?"
    rf"[0-9A-Za-z]{{4,5}}|[0-9]{{10,13}})(?![0-9A-Za-z]))"
)


def _reserve_words(text: str) -> list[re.Match[str]]:
    """Matches of ``_NAMED_RESERVE``, tried only where a reserve word starts (found with ``str.find``,
    far faster than letting the case-blind regex try every position)."""
    lower = text.lower()
    if len(lower) != len(text):  # a few characters (e.g. "İ") grow when lower-cased: offsets would not match
        return list(_NAMED_RESERVE.finditer(text))
    starts = set()
    for stem in _RESERVE_STEMS:
        pos = lower.find(stem)
        while pos >= 0:
            starts.add(pos)
            pos = lower.find(stem, pos + 1)
    found, end = [], 0
    for pos in sorted(starts):
        if pos >= end and (m := _NAMED_RESERVE.match(text, pos)) is not None:
            found.append(m)
            end = m.end()
    return found


def _named_reserve(text: str, taken: list[Hit]) -> list[Hit]:
    """Reserve numbers named as such, unless ``taken`` (the numbers found already) holds them."""
    taken = sorted(taken, key=lambda h: h[3])
    starts, ends = [h[3] for h in taken], [h[4] for h in taken]
    hits: list[Hit] = []
    for m in _reserve_words(text):
        value = m.group("value")
        if sum(c.isalpha() for c in value) > 2:
            continue  # a code, not a number
        filler = m.group("filler")
        if _ORDER_CONTEXT.search(filler) or _ORG_CONTEXT.search(filler) or _PHONE_CONTEXT.search(filler):
            continue  # "reservnummer saknas, ärende 1234567890": the digits are something else
        start, end = m.span("value")
        i = bisect_left(starts, end) - 1  # the last number found starting before this one ends
        if i >= 0 and ends[i] > start:
            continue  # already found: a valid personnummer, or a reserve number with a letter
        hits.append(("reservnummer", start, 0.9, start, end))
    return hits


# --- all numbers ------------------------------------------------------------------------------


def scan_numbers(text: str, today: date, lines: LineIndex) -> list[Hit]:
    """Identity and reserve numbers in masked ``text``, in order of offset."""
    hits: list[Hit] = []
    for m in _NUMBER.finditer(text):
        judged = _judge(m, text, _line_of(text, m.start(), lines), today)
        if judged is not None:
            hits.append((judged[0], m.start(), judged[1], m.start(), m.end()))
    if "\n" in text:
        hits += _wrapped(text, today, lines, hits)
    hits += _named_reserve(text, hits)
    return sorted(hits, key=lambda h: h[1])
