"""Swedish identity numbers: personnummer, samordningsnummer and the Luhn check digit.

Pure functions. They answer "is this a valid number" and normalise it; callers that report on a
number must never put its value in a message, a log line or an exception.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

# Separators people and mail clients put between date and serial: hyphen, plus (age 100+),
# space, no-break space, en and em dash, minus sign.
SEPARATORS = "-+ \u00a0\u2010\u2011\u2012\u2013\u2014\u2212"
_SEP_CLASS = re.escape(SEPARATORS)
_SHAPE = re.compile(rf"^(\d{{2}})?(\d{{6}})([{_SEP_CLASS}]?)(\d{{4}})$")


def luhn_ok(digits: str) -> bool:
    """True when the last digit of ``digits`` is the Luhn check digit of the ones before it."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


@dataclass(frozen=True)
class IdentityNumber:
    """A valid personnummer or samordningsnummer, normalised to ``YYYYMMDD-NNNN``."""

    kind: str  # "personnummer" or "samordningsnummer"
    birth_date: date
    normalised: str


def parse_identity_number(text: str, today: date | None = None) -> IdentityNumber | None:
    """Parse ``text`` as a personnummer or samordningsnummer; ``None`` when it is not a valid one.

    Accepts 12 or 10 digits with or without a separator. A 10-digit number's century comes from
    ``today`` (``+`` means 100 years or older); with 12 digits any separator, ``+`` included, is
    accepted. The date must exist (day + 60 for samordningsnummer), must not be in the future nor
    more than 130 years back, and the check digit must hold.
    """
    today = today or date.today()
    m = _SHAPE.match(text.strip())
    if not m:
        return None
    century, yymmdd, sep, serial = m.groups()
    if not luhn_ok(yymmdd + serial):
        return None
    yy, mm, dd = int(yymmdd[:2]), int(yymmdd[2:4]), int(yymmdd[4:6])
    kind = "personnummer"
    if dd > 60:
        kind, dd = "samordningsnummer", dd - 60
    if century is not None:
        # With the century written out, "+" is just a separator (people write 19121212+1212 too).
        year = int(century) * 100 + yy
    else:
        year = (today.year // 100) * 100 + yy
        if year > today.year:
            year -= 100
        if sep == "+":
            year -= 100
    try:
        born = date(year, mm, dd)
    except ValueError:
        return None
    if born > today or born.year < today.year - 130:
        return None  # not born yet, or older than anyone alive
    prefix = f"{born:%Y%m}{int(yymmdd[4:6]):02d}"
    return IdentityNumber(kind=kind, birth_date=born, normalised=f"{prefix}-{serial}")


_HSA_ID = re.compile(r"^SE\d{10}-[A-Z0-9]{1,31}$", re.IGNORECASE)


def is_hsa_id(text: str) -> bool:
    """True when ``text`` has the shape of an HSA-id (``SE`` + organisation number + ``-`` + suffix)."""
    return bool(_HSA_ID.match(text.strip()))
