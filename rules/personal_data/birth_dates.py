"""Birth dates stated as such ("född 1987-05-21", "födelsedatum: 21/5 1987", "DOB May 21, 1987")."""

from __future__ import annotations

import re
from datetime import date, timedelta

from rules.personal_data.text import Hit
from rules.personal_data.words_data import table

_MONTHS: dict[str, int] = table("months")
_MONTH_ALT = "|".join(sorted(_MONTHS, key=len, reverse=True))


def century_year(cent: str | None, yymmdd: str, plus: bool, today: date) -> int:
    yy = int(yymmdd[:2])
    if cent:
        return int(cent) * 100 + yy
    year = (today.year // 100) * 100 + yy
    if year > today.year:
        year -= 100
    return year - 100 if plus else year


def plain_date(cent: str | None, yymmdd: str, plus: bool, today: date) -> date | None:
    """The calendar date in ``yymmdd`` (not in the future), or ``None``."""
    try:
        born = date(century_year(cent, yymmdd, plus, today), int(yymmdd[2:4]), int(yymmdd[4:6]))
    except ValueError:
        return None
    return born if born <= today else None


# A label, then a date. Swedish labels ("född", "födelsedatum", "fdat", "f."), English ones ("DOB",
# "date of birth", "born"), and the bare "f" of "Karin f 870521" (weaker: see scan_birth_dates).
_BIRTH = re.compile(
    # A plain first character lets the regex engine skip ahead fast; the look-behind is "\b".
    r"[fFdDbB](?<![^\W][fFdDbB])"
    r"(?i:(?<=f)(?:ödd|ödda|öddes|ödelsedatum|ödelsedag|ödelsedata|ödelsedat\.?|öd\.|dat\.?|\.dat\.?|"
    r"\.(?=\s?\d)|(?P<weak>)(?=[ \t:]\s*\d))|(?<=d)(?:ob|\.o\.b\.?|ate\s+of\s+birth)|"
    r"(?<=b)(?:irth\s?date|orn(?:\s+on)?))"
    r"(?:\s*[:,]\s*|\s+)(?:(?i:den|år)\s+)?"
    r"(?:"
    r"(?P<y1>\d{4})[-/.](?P<m1>\d{1,2})[-/.](?P<d1>\d{1,2})"
    r"|(?P<y2>\d{4}|\d{2})(?P<m2>\d{2})(?P<d2>\d{2})"
    r"|(?P<d3>\d{1,2})[/.](?P<m3>\d{1,2})(?:[ /.-]|\s?-\s?|, ?)'?(?P<y3>\d{4}|\d{2})"
    rf"|(?P<d4>\d{{1,2}})(?::?[ae]|st|nd|rd|th)?\s+(?P<m4>(?i:{_MONTH_ALT}))\.?,?\s+(?:-|')?(?P<y4>\d{{4}}|\d{{2}})"
    rf"|(?P<m5>(?i:{_MONTH_ALT}))\.?\s+(?P<d5>\d{{1,2}})(?:st|nd|rd|th)?,?\s+(?P<y5>\d{{4}})"
    r")(?![0-9])"
)


def scan_birth_dates(text: str, today: date) -> list[Hit]:
    hits = []
    for m in _BIRTH.finditer(text):
        g = m.groupdict()
        if g["y1"]:
            y, mo, d = g["y1"], g["m1"], g["d1"]
        elif g["y2"]:
            y, mo, d = g["y2"], g["m2"], g["d2"]
        elif g["y3"]:
            y, mo, d = g["y3"], g["m3"], g["d3"]
        elif g["y4"]:
            y, mo, d = g["y4"], str(_MONTHS[g["m4"].lower()]), g["d4"]
        else:
            y, mo, d = g["y5"], str(_MONTHS[g["m5"].lower()]), g["d5"]
        cent = y[:2] if len(y) == 4 else None
        yymmdd = f"{y[-2:]}{int(mo):02d}{int(d):02d}" if int(mo) < 100 and int(d) < 100 else "000000"
        born = plain_date(cent, yymmdd, False, today)
        if born is None:
            continue
        if g["weak"] is not None:
            # A bare "f" before a date is a lesser sign: it counts for someone old enough to be a user
            # (14 or more); "f 261101" or "ringde f 2025-01-01" is some other date.
            if born > today - timedelta(days=14 * 365):
                continue
            hits.append(("birth_date", m.start(), 0.8, m.start(), m.end()))
            continue
        hits.append(("birth_date", m.start(), 0.85, m.start(), m.end()))
    return hits
