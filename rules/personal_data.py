"""The personal-data guard: finds personal data in the subject and body text of a mail.

The person a request concerns belongs only in the attached form. ``scan`` reports what kind of
personal data it saw and where (the subject, or a 1-based body line), with a score; it never
reports the value, not even partly. ``describe`` turns findings into the Swedish phrase for the
reasons ``subject.personal_data`` and ``body.personal_data``.

Everything is regex-driven over the whole text; Python only looks at the (few) candidates. Name
detection uses the Swedish first-name and surname lists that ship with Faker (read at import
time from the installed package) and looks only at names written in context ("gäller Karin
Lindqvist", "användare: Per Nilsson", "Lindqvist, Karin", "kontot för karin lindqvist", a work
address "karin.lindqvist@…" of someone else, names answering a quoted "Vem gäller det?"), never at
the sender's own name, a signature block or the Från:/Till: lines of a forwarded mail.
"""

from __future__ import annotations

import re
import tomllib
import unicodedata
from bisect import bisect_right
from dataclasses import dataclass, fields
from datetime import date, timedelta
from functools import cache
from pathlib import Path

from faker.providers.person.sv_SE import Provider as _SvNames

from rules.identity import SEPARATORS, is_hsa_id, parse_identity_number

CATEGORIES = ("personnummer", "samordningsnummer", "reservnummer", "hsa_id", "name", "birth_date")


@dataclass(frozen=True)
class Finding:
    """One piece of personal data: what kind, where, and how sure. Never the value."""

    category: str  # one of CATEGORIES
    location: str  # "subject" or "body"
    line: int | None  # 1-based body line; None for the subject
    score: float  # 0..1


@dataclass(frozen=True)
class PersonalDataConfig:
    """Thresholds and switches for the guard; read from a routine's TOML table."""

    reject_threshold: float = 0.8  # findings with score >= this reject the mail
    hold_threshold: float = 0.5  # findings in [hold, reject) make the mail "held" for staff review
    person_hsa_suffixes: tuple[str, ...] = (r"P\w+",)  # regexes for HSA-id suffixes that denote persons
    detect_names: bool = True

    @classmethod
    def from_mapping(cls, data: dict) -> PersonalDataConfig:
        """Build a config from a TOML table; an unknown key or a bad value raises ``ValueError``."""
        known = {f.name for f in fields(cls)}
        for key in data:
            if key not in known:
                raise ValueError(f"unknown personal-data setting: {key!r}")
        values = dict(data)
        for key in ("reject_threshold", "hold_threshold"):
            if key in values:
                v = values[key]
                if isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= v <= 1:
                    raise ValueError(f"{key!r} must be a number from 0 to 1")
                values[key] = float(v)
        if "detect_names" in values and not isinstance(values["detect_names"], bool):
            raise ValueError("'detect_names' must be true or false")
        if "person_hsa_suffixes" in values:
            raw = values["person_hsa_suffixes"]
            if isinstance(raw, str) or not all(isinstance(p, str) for p in raw):
                raise ValueError("'person_hsa_suffixes' must be a list of regular expressions")
            for pattern in raw:
                try:
                    re.compile(pattern)
                except re.error as exc:
                    raise ValueError(f"'person_hsa_suffixes' has a bad regular expression: {exc}") from None
            values["person_hsa_suffixes"] = tuple(raw)
        config = cls(**values)
        if config.hold_threshold > config.reject_threshold:
            raise ValueError("'hold_threshold' must not be above 'reject_threshold'")
        return config


# --- text preparation -------------------------------------------------------------------------

# Invisible characters that could split a number without a reader noticing.
_INVISIBLE = re.compile("[\u00ad\u200b\u200c\u200d\u2060\ufeff]")


def _prepare(text: str) -> str:
    """Normalise so that look-alike digits and odd line breaks cannot hide a number.

    NFKC folds full-width and other compatibility digits to ASCII and never adds or removes a
    line break, so line numbers still match the text as written (CR LF and lone CR count as one).
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if _INVISIBLE.search(text):
        text = _INVISIBLE.sub("", text)
    try:
        return unicodedata.normalize("NFKC", text)
    except (ValueError, TypeError):  # pragma: no cover - defensive: never raise on input
        return text


# Spans that hold digits but are never a personal identity number: masked before the number scan.
# Each starts with a plain character class (so the regex engine can skip ahead fast) followed by
# a look-behind on the character before it: "not inside a longer token".
_OID = re.compile(r"\d(?<![\d.]\d)\d{0,5}(?:\.\d{1,6}){3,}(?![\d.])")
_IBAN = re.compile(r"[A-Z](?<![A-Za-z0-9][A-Z])[A-Z]\d{2}(?: ?[A-Z0-9]{4}){3,7}(?: ?[A-Z0-9]{1,3})?(?![A-Za-z0-9])")
_HSA = re.compile(r"[Ss](?<![A-Za-z0-9][Ss])[Ee][0-9]{10}-[A-Za-z0-9]{1,31}(?![A-Za-z0-9])")


def _mask(text: str, spans: list[tuple[int, int]]) -> str:
    """``text`` with the spans overwritten: same length, no digits, no line breaks, so offsets and
    line numbers stay valid."""
    if not spans:
        return text
    out, pos = [], 0
    for start, end in sorted(spans):
        if start < pos:
            start = pos
        out += [text[pos:start], "#" * (end - start)]
        pos = max(pos, end)
    out.append(text[pos:])
    return "".join(out)


# --- identity numbers and reserve numbers -----------------------------------------------------

_SEP_CHARS = re.escape(SEPARATORS.replace(" ", "").replace("\u00a0", "").replace("+", ""))
# A date (6 digits, optionally after a century) and a four-character serial, with at most one
# separator; a dash may have a space on either side ("19121212 - 1212").
_NUMBER = re.compile(
    rf"(?P<digits>[0-9](?<![0-9][0-9])(?<![0-9][.,][0-9])(?:[0-9]{{7}}|[0-9]{{5}}))"
    rf"(?P<sep>[ \t\u00a0\u202f]?[{_SEP_CHARS}][ \t\u00a0\u202f]?|[+ \t\u00a0\u202f])?"
    rf"(?P<serial>[0-9A-Za-z]{{4}})"
    rf"(?![0-9A-Za-z])(?![.,][0-9])"
)
_PNR_CONTEXT = re.compile(
    r"(?i:\b(?:pnr|p-?nr|pers\.?\s?nr|personnr|person-?nummer|personnumret|personummer|födelsenummer|"
    r"samordningsnummer|samordningsnr|snr|reservnummer|reservnr|t-?nummer|patient(?:en)?|född|id-?nummer)\b)"
)
_PHONE_CONTEXT = re.compile(
    r"(?i:\b(?:tel|telefon|telefonnummer|tfn|tele|mobil|mobilnummer|mobilnr|mob|mobiltelefon|växel|"
    r"direkt|direktnr|fax|ring|ringa|sms|nås|nummer till)\b)"
)
# A key word right before the number. An organisation or account number is never a person here
# (a sole trader's organisation number is their personnummer, but the issue asks to let it pass).
_ORG_CONTEXT = re.compile(
    r"(?i:\b(?:org(?:anisations)?\.?\s?(?:nr|nummer)|orgnr|org|bankgiro|bg|plusgiro|pg|konto|kontonr|"
    r"kontonummer|clearingnr|iban|bic)\.?)\s*[:#.=]?\s*$"
)
# An order, ticket or reference number: silenced, except a 12-digit number written exactly like a
# personnummer ("19121212-1212"), which is held for staff instead.
_ORDER_CONTEXT = re.compile(
    r"(?i:\b(?:order|ordernr|ordernummer|beställningsnummer|beställningsnr|best\.?\s?nr|ärende|ärendenr|"
    r"ärendenummer|ärendenumret|faktura|fakturanr|fakturanummer|ocr|ref|referens|referensnummer|"
    r"kundnr|kundnummer|avtalsnr|avtalsnummer|artikelnr|artikelnummer|serienr|serienummer|"
    r"licens|licensnr|version|build|löpnr|löpnummer|dnr|diarienr|diarienummer|ticket|case|inc|req)"
    r"\.?\s?(?:nr|nummer|no|#)?\.?)\s*[:#.=]?\s*$"
)


def _century_year(cent: str | None, yymmdd: str, plus: bool, today: date) -> int:
    yy = int(yymmdd[:2])
    if cent:
        return int(cent) * 100 + yy
    year = (today.year // 100) * 100 + yy
    if year > today.year:
        year -= 100
    return year - 100 if plus else year


def _plain_date(cent: str | None, yymmdd: str, plus: bool, today: date) -> date | None:
    """The calendar date in ``yymmdd`` (not in the future), or ``None``."""
    try:
        born = date(_century_year(cent, yymmdd, plus, today), int(yymmdd[2:4]), int(yymmdd[4:6]))
    except ValueError:
        return None
    return born if born <= today else None


def _looks_like_timestamp(serial: str, born: date, today: date) -> bool:
    """YYYYMMDDhhmm of the last few years: a log or file timestamp, not a person."""
    hh, mm = int(serial[:2]), int(serial[2:])
    return hh < 24 and mm < 60 and (today - born) <= timedelta(days=3 * 366)


def _scan_numbers(text: str, today: date, line_start: _LineIndex) -> list[tuple[str, int, float, int, int]]:
    """(category, offset, score, start, end) for identity and reserve numbers in masked ``text``."""
    hits: list[tuple[str, int, float, int, int]] = []
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
            born = _plain_date(cent, yymmdd, plus, today)
            if born is None:
                continue
            score = 0.9 if (cent or pnr_context) else 0.8
            hits.append(("reservnummer", m.start(), score, m.start(), m.end()))
    return hits


# --- HSA-ids ----------------------------------------------------------------------------------


@cache
def _person_suffix(patterns: tuple[str, ...]) -> re.Pattern[str] | None:
    if not patterns:
        return None
    return re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE)


def _scan_hsa(matches: list[re.Match[str]], config: PersonalDataConfig) -> list[tuple[str, int, float, int, int]]:
    person = _person_suffix(tuple(config.person_hsa_suffixes))
    if person is None:
        return []
    hits = []
    for m in matches:
        value = m.group()
        if is_hsa_id(value) and person.fullmatch(value.split("-", 1)[1]):
            hits.append(("hsa_id", m.start(), 0.95, m.start(), m.end()))
    return hits


# --- birth dates ------------------------------------------------------------------------------

_MONTHS = {
    name: i + 1
    for i, names in enumerate(
        [
            ("januari", "jan"), ("februari", "feb"), ("mars", "mar"), ("april", "apr"), ("maj",),
            ("juni", "jun"), ("juli", "jul"), ("augusti", "aug"), ("september", "sep", "sept"),
            ("oktober", "okt"), ("november", "nov"), ("december", "dec"),
        ]
    )
    for name in names
}
# English month names that differ from the Swedish ones ("born 21 May 1987", "DOB: May 21, 1987").
_MONTHS |= {"january": 1, "february": 2, "march": 3, "may": 5, "june": 6, "july": 7, "october": 10, "oct": 10}
_MONTH_ALT = "|".join(sorted(_MONTHS, key=len, reverse=True))
# A label, then a date. Swedish labels ("född", "födelsedatum", "fdat", "f."), English ones ("DOB",
# "date of birth", "born"), and the bare "f" of "Karin f 870521" (weaker: see _scan_birth_dates).
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


def _scan_birth_dates(text: str, today: date) -> list[tuple[str, int, float, int, int]]:
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
        born = _plain_date(cent, yymmdd, False, today)
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


# --- names ------------------------------------------------------------------------------------


def _name_set(values) -> frozenset[str]:
    return frozenset(v.casefold() for v in values)


_FIRST_NAMES = _name_set([*_SvNames.first_names_female, *_SvNames.first_names_male])
# Short Swedish surnames that Faker's list lacks; a name after a first name ("Karin Ås").
_EXTRA_LAST_NAMES = frozenset(
    {"ås", "wik", "sund", "dal", "sjö", "hed", "hök", "rapp", "lööf", "stål", "bruhn", "vall", "eek", "åhs"}
)
_LAST_NAMES = _name_set(_SvNames.last_names) | _EXTRA_LAST_NAMES
# Names that are also ordinary Swedish words. A name written in lower case ("gäller karin lindqvist")
# counts only when both words are in the name lists (a first name, then a surname); with one or two
# of these words ("per holm") it is held for staff rather than rejected.
_COMMON_WORDS = frozenset(
    "per maj bo sten klara rosa rose lo dag tor rut ester vera iris liv love mark may my juni mina saga tom ben "
    "del edit uno vide ida gun siv kim tim linnea viktoria signe juli april alma lisa ask vår sol storm "
    "berg ek lund holm dahl dal björk falk frisk modig hall said lind malm palm blom kvist frank green hägg asp "
    "alm nord lilja ljung rask brink blixt hjort frid gren hammar fors strand borg li lönn ferm flink roos wall "
    "ås sund sjö hed hök rapp stål vall sand ström hjelm kling grahn roth hult lantz levin".split()
)
# Capitalised words after a trigger that are places, units or systems, not surnames.
_NOT_SURNAME = re.compile(
    r"(?i:.*(?:kommun|kommunen|region|regionen|boende|boendet|tjänst|tjänsten|central|centralen|"
    r"vård|vården|enhet|enheten|gården|hemmet|avdelning|avdelningen|mottagning|mottagningen|sjukhus|"
    r"sjukhuset|huset|skola|skolan|förvaltning|förvaltningen|support|supporten|teamet|gruppen|vaccin|"
    r"halland|sverige)$)"
)
_SURNAME_ENDING = re.compile(
    r"(?i:.*(?:sson|son|sen|ström|berg|bergh|gren|qvist|kvist|quist|lund|holm|dahl|dal|blad|ling|"
    r"ander|stedt|stad|feldt|fors|mark|hammar|löf|sköld|wall|ius|én|ér|ic|ić|ov|ova|ski|ska|ez|"
    r"zadeh|oglu|ian|yan|ovic|ović|ström|lind|sjö|borg|näs|nius|rud|vik|man)$)"
)
_TOKEN = r"(?:[A-ZÅÄÖÉÜ][a-zåäöéèüáíóúøæ]+|[A-ZÅÄÖÉÜ]{2,})(?:-(?:[A-ZÅÄÖÉÜ][a-zåäöéèüáíóúøæ]+|[A-ZÅÄÖÉÜ]{2,}))?"
_PARTICLE = r"(?:von|af|de|van|der|da|di|el|al)"
_NAME_RUN = rf"{_TOKEN}(?:[ \t\u00a0]+(?:{_PARTICLE}[ \t\u00a0]+)?{_TOKEN}){{1,3}}\b"
# "Lindqvist, Karin": surname, comma, first name (only with both in the name lists).
_REVERSED = rf"{_TOKEN},[ \t\u00a0]+{_TOKEN}(?![\w-])"
# "karin lindqvist", "anna-karin svensson": exactly a first name and a surname in lower case.
_LOWER_RUN = r"[a-zåäöéü]+(?:-[a-zåäöéü]+)?[ \t\u00a0]+[a-zåäöéü]+(?![\w-])"
# "karin.lindqvist@halmstad.se": a work address names its owner.
_MAIL_WORD = r"[A-Za-zåäöÅÄÖéü]+(?:-[A-Za-zåäöÅÄÖéü]+)?"
_MAIL = rf"{_MAIL_WORD}(?:[._]{_MAIL_WORD}){{1,2}}@[\w-]+(?:\.[\w-]+)+"
_TRIGGER = (
    r"(?i:\b(?:gäller|gälla|avser|angående|ang\.?|beträffande|rörande|för|åt|användare|användaren|"
    r"användarna|namn|namnet|medarbetare|medarbetaren|medarbetarna|anställd|anställde|nyanställd|"
    r"nyanställda|kollega|kollegan|kollegor|vikarie|vikarien|sjuksköterska|sjuksköterskan|"
    r"undersköterska|undersköterskan|läkare|läkaren|patient|patienten|personen|avsluta|avslut|hjälpa|"
    r"avsluta\s+behörigheten\s+för|ta\s+bort|lägg\s+upp|lägga\s+upp|upplägg|upplägg\s+av|"
    r"behörighet\s+till|behörighet\s+åt)\b)"
)
# A trigger, at most "ny"/"den" and similar before the name, then a run of capitalised words.
_TRIGGER_LOWER = re.compile(_TRIGGER.replace("(?i:", "(?:"))
# The name may wrap to the next line ("behörighet för\nKarin Lindqvist") or stand in apposition
# after a comma or a dash ("vår nya medarbetare, Karin Lindqvist, ska").
_AFTER_TRIGGER = (
    r"[ \t\u00a0]*[:\-–,(]?[ \t\u00a0]*(?:\n[ \t\u00a0>]*)?"
    r"(?:(?i:vår\s+nya|ny|nya|den|dem|vår|våra|min|mina|användaren|medarbetaren|kontot|kontot\s+för)[ \t\u00a0]+)?"
)
_NAME_AFTER_TRIGGER = re.compile(rf"{_AFTER_TRIGGER}(?:(?P<name>{_NAME_RUN})|(?P<rev>{_REVERSED}))")
_LOWER_AFTER_TRIGGER = re.compile(rf"{_AFTER_TRIGGER}(?P<name>{_LOWER_RUN})")
_MAIL_AFTER_TRIGGER = re.compile(rf"{_AFTER_TRIGGER}<?(?P<name>{_MAIL})")
_COLLEAGUE = re.compile(r"(?i:kolleg)")
_REVERSED_ANYWHERE = re.compile(rf"(?<![\w-])(?P<name>{_REVERSED})")
_NAME_ANYWHERE = re.compile(rf"(?<![\w-])(?P<name>{_NAME_RUN})")
# "Karin Lindqvist ska ha behörighet": a name right before one of these verbs, found from the verb.
_VERB_AFTER_NAME = re.compile(
    r"[ \t\u00a0](?:ska|skall|behöver|har\s+slutat|slutar|slutade|börjar|började|saknar|kan\s+inte|"
    r"är\s+ny|har\s+fått|har\s+bytt|har\s+inte|har\s+gått|går\s+i\s+pension)\b"
)
# A role in brackets or between commas, or the closing dash of "– Karin Lindqvist –", may stand
# between: "Lindqvist Karin (usk) ska ha", "den som slutat – Karin Lindqvist – ska avslutas".
_BETWEEN_NAME_AND_VERB = r"(?:[ \t\u00a0]*\([^()\n]{1,40}\)|,[ \t\u00a0]*[^,\n]{1,30},|[ \t\u00a0]+[–—-])?"
_NAME_BEFORE_VERB = re.compile(rf"(?<![\w-])(?P<name>{_NAME_RUN}){_BETWEEN_NAME_AND_VERB}$")
_LOWER_BEFORE_VERB = re.compile(rf"(?<![\w-])(?P<name>{_LOWER_RUN}){_BETWEEN_NAME_AND_VERB}$")
# "gäller Karin Lindqvist och Per Nilsson": a name right after a name found in context.
_NAME_CHAIN = re.compile(rf"[ \t\u00a0]*(?:,|och|samt|&|/)[ \t\u00a0]*(?P<name>{_NAME_RUN})")
_LOWER_CHAIN = re.compile(rf"[ \t\u00a0]*(?:,|och|samt|&|/)[ \t\u00a0]*(?P<name>{_LOWER_RUN})")
# After a line like "Följande användare:" names stand alone on the next lines (bullets allowed).
# A heading ends in a colon; a question ("> Vem gäller det?") is answered by names on the next lines.
_LIST_HEAD = re.compile(r"^[^\n]*[:?][ \t]*$", re.MULTILINE)
_QUESTION_WORDS = re.compile(
    r"(?i:\b(?:namn|namnet|heter)\b|\b(?:vem|vilka|vilken|vilket)\b[^\n]*\b(?:gäller|avser|användar\w*|"
    r"person\w*|behörighet\w*|avslut\w*|ska\s+ha|konto\w*|medarbetar\w*)\b)"
)
_LIST_TRIGGER = re.compile(_TRIGGER)
_LIST_HEAD_WORDS = re.compile(
    rf"{_TRIGGER}|(?i:\b(?:följande|nedanstående|behörighet|behörigheter|personer|personerna)\b)"
)
_LIST_ITEM = re.compile(  # one blank line may stand before an item
    rf"\n(?:[ >\t]*\n)?[ >\t]*(?:[-•*·]|\d{{1,2}}[.)])?[ \t]*(?P<name>{_NAME_RUN})[^\n]*"
)

_SIGN_OFF = re.compile(
    r"^[ >\t]*(?i:med\s+vänlig(?:a)?\s+hälsning(?:ar)?|vänlig(?:a)?\s+hälsning(?:ar)?|hälsningar|"
    r"hälsning|bästa\s+hälsningar|mvh|vh|m\.v\.h\.?|tack\s+på\s+förhand|tack\s+och\s+hälsningar|"
    r"allt\s+gott|best\s+regards|kind\s+regards|regards|--)\b[^\n]*$|^[ >\t]*--[ \t]*$",
    re.MULTILINE,
)
_BOUNDARY = re.compile(
    r"^[ >\t]*(?:(?i:från|from|skickat|sent|datum|date)\s*:|-{2,}\s*(?i:ursprungligt|original|"
    r"forwarded|vidarebefordrat)|(?i:den|on)\s[^\n]{0,120}(?i:skrev|wrote)\s*:?\s*$)",
    re.MULTILINE,
)
_HEADER_LINE = re.compile(
    r"^[ >\t]*(?i:från|from|till|to|kopia|cc|bcc|skickat|sent|datum|date)\s*:[^\n]*$", re.MULTILINE
)


def _words(text: str) -> set[str]:
    return {w.casefold() for w in re.findall(r"[^\W\d_]+", text)}


def _is_first(token: str) -> bool:
    return all(p.casefold() in _FIRST_NAMES for p in token.split("-"))


def _is_last(token: str) -> bool:
    return all(p.casefold() in _LAST_NAMES for p in token.split("-"))


def _name_score_at(tokens: list[str], strict: bool) -> float:
    """How sure we are that ``tokens`` (capitalised words) start with a person's name."""
    if len(tokens) < 2:
        return 0.0
    if _is_first(tokens[0]):
        i = 1
        while i < len(tokens) - 1 and _is_first(tokens[i]) and not _is_last(tokens[i]):
            i += 1  # middle names: "Anna Maria Svensson"
        surname = tokens[i]
        if _NOT_SURNAME.fullmatch(surname):
            return 0.0
        if _is_last(surname):
            return 0.9
        return 0.8 if _SURNAME_ENDING.fullmatch(surname) else (0.0 if strict else 0.55)
    if _is_last(tokens[0]) and _is_first(tokens[1]) and not _NOT_SURNAME.fullmatch(tokens[0]):
        return 0.85  # "Lindqvist Karin", as Outlook lists people
    if not strict and _is_last(tokens[1]) and not _NOT_SURNAME.fullmatch(tokens[0]):
        return 0.6  # a first name we do not know: staff should look
    return 0.0


def _name_score(name: str, anywhere: bool) -> tuple[float, int]:
    """Best score for a run of capitalised words, and the offset in ``name`` where that name starts.

    After a trigger the name must start the run; in a subject (``anywhere``) it may start at any
    word ("MittVaccin – Behörighet Anna Larsson"), and only names with a known first name count.
    """
    tokens = [t for t in re.split(r"[ \t\u00a0]+", name) if not re.fullmatch(_PARTICLE, t)]
    if not anywhere:
        return _name_score_at(tokens, strict=False), 0
    best, best_i = 0.0, 0
    for i in range(len(tokens) - 1):
        score = _name_score_at(tokens[i:], strict=True)
        if score > best:
            best, best_i = score, i
    return best, name.find(tokens[best_i]) if best else 0


def _lower_score(name: str) -> float:
    """A name written in lower case: a known first name and a known surname, and not two ordinary words."""
    tokens = name.split()
    if len(tokens) != 2 or not (_is_first(tokens[0]) and _is_last(tokens[1])):
        return 0.0
    common = sum(t in _COMMON_WORDS for t in tokens)  # a hyphenated first name is never a common word
    return (0.85, 0.6, 0.55)[common]  # "per holm": still held for staff


def _reversed_score(name: str) -> float:
    """"Lindqvist, Karin": a known surname, then a known first name."""
    last, _, first = name.partition(",")
    last, first = last.strip(), first.strip()
    if not (_is_last(last) and _is_first(first)) or _NOT_SURNAME.fullmatch(last):
        return 0.0
    return 0.6 if _is_first(last) else 0.85  # "Said, Anna" may be two first names


def _mail_score(address: str) -> float:
    """A work address "karin.lindqvist@…" of someone else: the person it names."""
    parts = re.split(r"[._]", address.partition("@")[0].casefold())
    first, last = parts[0], parts[-1]
    if not _is_last(last):
        return 0.6 if _is_first(first) and _SURNAME_ENDING.fullmatch(last) and len(last) > 4 else 0.0
    if _is_first(first):
        return 0.85
    return 0.6 if len(first) == 1 else 0.0  # "k.lindqvist@…"


_SCORERS = {"lower": _lower_score, "rev": _reversed_score, "mail": _mail_score}


class _LineIndex:
    """Offsets of line starts, for 1-based line numbers and same-line context windows."""

    def __init__(self, text: str) -> None:
        self._starts = [0, *(m.end() for m in re.finditer("\n", text))]

    def line(self, offset: int) -> int:
        return bisect_right(self._starts, offset)

    def start_of(self, offset: int) -> int:
        return self._starts[bisect_right(self._starts, offset) - 1]


def _in_spans(offset: int, starts: list[int], ends: list[int]) -> bool:
    i = bisect_right(starts, offset) - 1
    return i >= 0 and offset < ends[i]


_SIGNATURE_LINES = 15  # a signature block with its footer; a name further down is text again


def _in_signature(text: str, offset: int, sig_starts: list[int], bounds: list[int]) -> bool:
    """True within a few lines after a sign-off line, unless a quoted or forwarded mail began since."""
    i = bisect_right(sig_starts, offset) - 1
    if i < 0:
        return False
    j = bisect_right(bounds, offset) - 1
    if j >= 0 and bounds[j] > sig_starts[i]:
        return False
    return text.count("\n", sig_starts[i], offset) <= _SIGNATURE_LINES


def _scan_names(
    text: str, is_subject: bool, own_words: set[str]
) -> list[tuple[str, int, float, int, int]]:
    # (start, name, mode, cap): mode says how to score ("trigger": capitalised words after a trigger,
    # "anywhere": a known first name anywhere in the run, "lower", "rev", "mail"); cap bounds the score.
    candidates: list[tuple[int, str, str, float]] = []
    if is_subject:
        candidates += [(m.start("name"), m.group("name"), "anywhere", 1.0) for m in _NAME_ANYWHERE.finditer(text)]
        candidates += [(m.start("name"), m.group("name"), "rev", 1.0) for m in _REVERSED_ANYWHERE.finditer(text)]
    lower = text.lower()
    same_length = len(lower) == len(text)
    if same_length:
        triggers = [m.span() for m in _TRIGGER_LOWER.finditer(lower)]
    else:  # a few characters (e.g. "İ") grow when lower-cased: offsets would not match
        triggers = [m.span() for m in _LIST_TRIGGER.finditer(text)]
    for t_start, end in triggers:
        if (m := _NAME_AFTER_TRIGGER.match(text, end)) is not None:
            if m.group("name") is not None:
                candidates.append((m.start("name"), m.group("name"), "trigger", 1.0))
            else:
                candidates.append((m.start("rev"), m.group("rev"), "rev", 1.0))
            continue
        if (m := _LOWER_AFTER_TRIGGER.match(text, end)) is not None:
            candidates.append((m.start("name"), m.group("name"), "lower", 1.0))
        if (m := _MAIL_AFTER_TRIGGER.match(text, end)) is not None and not _COLLEAGUE.match(text, t_start):
            # "svara till min kollega anna.berg@…" is a contact, not the person concerned
            candidates.append((m.start("name"), m.group("name"), "mail", 1.0))
    if same_length:
        for verb in _VERB_AFTER_NAME.finditer(lower):
            window_start = max(text.rfind("\n", 0, verb.start()) + 1, verb.start() - 80)
            if (m := _NAME_BEFORE_VERB.search(text, window_start, verb.start())) is not None:
                candidates.append((m.start("name"), m.group("name"), "anywhere", 1.0))
            elif (m := _LOWER_BEFORE_VERB.search(text, window_start, verb.start())) is not None:
                candidates.append((m.start("name"), m.group("name"), "lower", 1.0))
    for head in _LIST_HEAD.finditer(text):
        words = _LIST_HEAD_WORDS if head.group().rstrip().endswith(":") else _QUESTION_WORDS
        if not words.search(head.group()):
            continue
        pos = head.end()
        while (item := _LIST_ITEM.match(text, pos)) is not None:
            candidates.append((item.start("name"), item.group("name"), "trigger", 1.0))
            pos = item.end()
    if not candidates:
        return []

    if is_subject:
        sig_starts: list[int] = []
        bounds: list[int] = []
        hdr_starts: list[int] = []
        hdr_ends: list[int] = []
    else:
        sig_starts = [m.start() for m in _SIGN_OFF.finditer(text)]
        bounds = [m.start() for m in _BOUNDARY.finditer(text)]
        headers = list(_HEADER_LINE.finditer(text))
        hdr_starts = [m.start() for m in headers]
        hdr_ends = [m.end() for m in headers]

    hits: list[tuple[str, int, float, int, int]] = []
    seen: set[int] = set()
    # At one offset the strongest reading is tried first (a trigger before a bare "anywhere").
    order = {"trigger": 0, "rev": 1, "mail": 2, "lower": 3, "anywhere": 4}
    todo = sorted(candidates, key=lambda c: (c[0], order[c[2]], -c[3]), reverse=True)
    while todo:
        start, name, mode, cap = todo.pop()
        if start in seen:
            continue
        if mode in _SCORERS:
            score, shift = _SCORERS[mode](name), 0
        else:
            score, shift = _name_score(name, mode == "anywhere")
        score = min(score, cap)
        if score <= 0:
            continue  # another reading of the same words may still count
        seen.add(start)
        start, name = start + shift, name[shift:]
        if mode == "lower":
            if (more := _LOWER_CHAIN.match(text, start + len(name))) is not None:
                todo.append((more.start("name"), more.group("name"), "lower", cap))
        elif mode != "mail" and (more := _NAME_CHAIN.match(text, start + len(name))) is not None:
            todo.append((more.start("name"), more.group("name"), "trigger", cap))
        checked = name.partition("@")[0] if mode == "mail" else name
        if own_words and _words(checked) <= own_words:
            continue  # the sender's own name
        if _in_spans(start, hdr_starts, hdr_ends):
            continue  # Från:/Till: lines of a quoted or forwarded mail
        if _in_signature(text, start, sig_starts, bounds):
            continue
        hits.append(("name", start, score, start, start + len(name)))
    return hits


# --- scan -------------------------------------------------------------------------------------


def _own_words(sender_name: str, sender_address: str) -> set[str]:
    words = _words(sender_name or "")
    local = (sender_address or "").partition("@")[0]
    words |= _words(re.sub(r"[._\-+0-9]+", " ", local))
    return words


def _scan_text(
    text: str, is_subject: bool, today: date, config: PersonalDataConfig, own: set[str], sender_address: str
) -> list[Finding]:
    text = _prepare(text)
    if sender_address and sender_address in text:
        text = text.replace(sender_address, "#" * len(sender_address))
    hsa = list(_HSA.finditer(text))
    hits = _scan_hsa(hsa, config)
    spans = [m.span() for m in hsa] + [m.span() for rx in (_OID, _IBAN) for m in rx.finditer(text)]
    masked = _mask(text, spans)
    lines = _LineIndex(masked)
    hits += _scan_numbers(masked, today, lines)
    taken = [(s, e) for _, _, _, s, e in hits]
    hits += [h for h in _scan_birth_dates(masked, today) if not any(s < h[4] and h[3] < e for s, e in taken)]
    if config.detect_names:
        hits += _scan_names(text, is_subject, own)
    findings = []
    for category, offset, score, _, _ in sorted(hits, key=lambda h: h[1]):
        if score < config.hold_threshold:
            continue
        if is_subject:
            findings.append(Finding(category, "subject", None, score))
        else:
            findings.append(Finding(category, "body", lines.line(offset), score))
    return findings


def scan(
    subject: str,
    body: str,
    *,
    sender_name: str = "",
    sender_address: str = "",
    today: date | None = None,
    config: PersonalDataConfig = PersonalDataConfig(),  # noqa: B008 - frozen, safe as a default
) -> list[Finding]:
    """Find personal data in a mail's subject and body text (the subject's findings first).

    Returns the findings that matter under ``config``: those scoring at least ``hold_threshold``.
    Never raises on string input and never carries the values it found.
    """
    today = today or date.today()
    own = _own_words(sender_name, sender_address)
    subject = subject if isinstance(subject, str) else ""
    body = body if isinstance(body, str) else ""
    return _scan_text(subject, True, today, config, own, sender_address) + _scan_text(
        body, False, today, config, own, sender_address
    )


# --- describe ---------------------------------------------------------------------------------


@cache
def _wording() -> dict:
    return tomllib.loads(Path(__file__).with_name("personal_data.toml").read_text("utf-8"))


def _join(parts: list[str], word_and: str) -> str:
    return parts[0] if len(parts) == 1 else f"{', '.join(parts[:-1])} {word_and} {parts[-1]}"


def describe(findings: list[Finding]) -> str:
    """A Swedish phrase naming the kinds of personal data found and where, never the values.

    E.g. "ett personnummer på rad 3 och ett namn i ämnesraden", "två personnummer (rad 2 och 5)".
    """
    wording = _wording()
    places, numbers = wording["places"], wording["words"]["numbers"]
    if not findings:
        return wording["words"]["none"]
    parts = []
    for category, labels in wording["categories"].items():
        found = [f for f in findings if f.category == category]
        if not found:
            continue
        where = []
        if any(f.line is None for f in found):
            where.append(None)
        where += sorted({f.line for f in found if f.line is not None})
        if len(found) == 1:
            what = labels["one"]
        else:
            n = len(found)
            what = f"{numbers[n - 2] if n - 2 < len(numbers) else n} {labels['many']}"
        if len(where) == 1:
            place = places["subject"] if where[0] is None else places["line"].format(line=where[0])
            parts.append(f"{what} {place}")
        else:
            lines = [w for w in where if w is not None]
            shown = [places["subject_short"]] if where[0] is None else []
            if lines:
                shown += [places["line_short"].format(line=lines[0]), *map(str, lines[1:])]
            if len(shown) > places["max_places"]:
                listed = f"{', '.join(shown[: places['max_places']])} {places['more']}"
            else:
                listed = _join(shown, places["and"])
            parts.append(f"{what} ({listed})")
    return _join(parts, places["and"])
