"""Identity numbers (personnummer, samordningsnummer) and reserve numbers in mail text.

The check digit and the date come from ``rules.identity``; this module decides from the context
whether a valid number is a person's (not an order, account or phone number, nor a timestamp).
"""

from __future__ import annotations

import re
from datetime import date, timedelta

from rules.identity import SEPARATORS, parse_identity_number
from rules.personal_data.birth_dates import plain_date
from rules.personal_data.text import Hit, LineIndex
from rules.personal_data.words_data import alternation

_SEP_CHARS = re.escape(SEPARATORS.replace(" ", "").replace("\u00a0", "").replace("+", ""))
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


def _looks_like_timestamp(serial: str, born: date, today: date) -> bool:
    """YYYYMMDDhhmm of the last few years: a log or file timestamp, not a person."""
    hh, mm = int(serial[:2]), int(serial[2:])
    return hh < 24 and mm < 60 and (today - born) <= timedelta(days=3 * 366)


def scan_numbers(text: str, today: date, line_start: LineIndex) -> list[Hit]:
    """Identity and reserve numbers in masked ``text``."""
    hits: list[Hit] = []
    for m in _NUMBER.finditer(text):
        digits, serial = m.group("digits"), m.group("serial")
        cent, yymmdd = (digits[:2], digits[2:]) if len(digits) == 8 else (None, digits)
        if cent is not None and cent not in ("18", "19", "20"):
            continue
        raw_sep = m.group("sep") or ""
        plus = "+" in raw_sep
        sep = "+" if plus else ("" if not raw_sep else ("-" if raw_sep.strip() else " "))
        pre = text[max(line_start.start_of(m.start()), m.start() - 48) : m.start()]
        if _ORG_CONTEXT.search(pre):
            continue
        order_context = bool(_ORDER_CONTEXT.search(pre))
        pnr_context = bool(_PNR_CONTEXT.search(pre))
        if serial.isdigit():
            ident = parse_identity_number(f"{cent or ''}{yymmdd}{'-' if sep == ' ' else sep}{serial}", today)
            if ident is None:
                continue
            score = 0.95 if (cent or sep in ("-", "+")) else 0.9
            if order_context:
                if not (cent and sep == "-"):
                    continue
                score = 0.6
            elif not pnr_context:
                if sep in ("", " ") and _looks_like_timestamp(serial, ident.birth_date, today):
                    continue
                if not cent and yymmdd[0] == "0":
                    # Swedish phone numbers are ten digits starting with 0 as well: silenced by a
                    # phone word, and held rather than rejected when written without a dash.
                    if _PHONE_CONTEXT.search(pre):
                        continue
                    if sep != "-":
                        score = 0.6
            hits.append((ident.kind, m.start(), score, m.start(), m.end()))
        elif not order_context:
            letters = sum(c.isalpha() for c in serial)
            if not 1 <= letters <= 2 or cent is None and not raw_sep and not pnr_context:
                continue  # ten characters run together: too much like a product or order code
            born = plain_date(cent, yymmdd, plus, today)
            if born is None:
                continue
            score = 0.9 if (cent or pnr_context) else 0.8
            hits.append(("reservnummer", m.start(), score, m.start(), m.end()))
    return hits
