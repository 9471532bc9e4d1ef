"""Timestamps that look like identity numbers: "skärmdump_20240513-1431.png", "log 20240513-1431 ERROR".

A recent date followed by a valid clock time is the shape of a log or file timestamp; the text around it
(a file name, seconds after it, words about logs or points in time) says whether it is one.
"""

from __future__ import annotations

import re
from datetime import date, timedelta

from rules.identity import SEPARATORS
from rules.personal_data.words_data import alternation

# The dashes people and mail clients put between date and serial (rules.identity.SEPARATORS without
# the space, the no-break space and the plus).
DASHES = SEPARATORS.replace(" ", "").replace("\u00a0", "").replace("+", "")
_RECENT = timedelta(days=3 * 366)  # a timestamp in a mail is from the last few years
# On the same line: a word about logs, screenshots or points in time, a log level, or a clock time ("14:30").
_TIME_CONTEXT = re.compile(
    rf"(?i:\b(?:{alternation('timestamp_context')})\b)|\b(?:INFO|WARN|WARNING|ERROR|DEBUG|TRACE|FATAL)\b"
    r"|(?<![0-9])(?:[01]?[0-9]|2[0-3]):[0-5][0-9](?![0-9])"
)
# Seconds right after the serial ("20240513-1431-12", "…1430:05"), or the rest of a file name ("…1430_2").
_TIME_TAIL = re.compile(r"[-:.][0-5][0-9](?![0-9])|_")
_PNR_WORD_BEFORE = re.compile(rf"(?i:\b(?:{alternation('pnr_context')}))$")
_FILE_EXT = re.compile(
    r"(?i:\.(?:png|jpe?g|gif|bmp|tiff?|heic|webp|pdf|txt|log|csv|tsv|xlsx?|docx?|pptx?|odt|ods|zip|"
    r"7z|json|xml|html?|eml|msg|mp4|mov|avi|wav|mp3|bak|dmp))(?![A-Za-z0-9])"
)


def _clock(serial: str) -> bool:
    return serial.isdigit() and int(serial[:2]) < 24 and int(serial[2:]) < 60


def looks_like_timestamp(serial: str, born: date, today: date) -> bool:
    """YYYYMMDDhhmm of the last few years: the shape of a log or file timestamp."""
    return _clock(serial) and (today - born) <= _RECENT


def _in_file_name(text: str, start: int, end: int) -> bool:
    """The number is part of a file name: glued to a word ("skärmdump_", "IMG-") or before an extension."""
    before = text[start - 1] if start else " "
    if before.isalpha() and _PNR_WORD_BEFORE.search(text, max(0, start - 24), start):
        return False  # "Pnr19121212-1212": a number written straight after its label
    if before == "_" or before.isalpha() or (before in DASHES and start > 1 and text[start - 2].isalnum()):
        return True
    token_end = end
    while token_end < len(text) and not text[token_end].isspace() and token_end - end < 40:
        token_end += 1
    return bool(_FILE_EXT.search(text, end, token_end))


def is_timestamp(text: str, start: int, end: int, line: tuple[int, int], sep: str, pnr_context: bool) -> bool:
    """A recent date and a clock time that the text shows to be a timestamp (the caller checked the shape).

    In a file name it is always a timestamp; on a line about logs, files or times, or with seconds
    after it, it is one unless a word like "pnr" stands before it; written with no separator or a
    space it is one unless such a word does (the older rule: "Felet uppstod 202611231530").
    """
    if _in_file_name(text, start, end):
        return True
    if pnr_context:
        return False
    if sep in ("", " ") or _TIME_TAIL.match(text, end):
        return True
    return bool(_TIME_CONTEXT.search(text[line[0] : start]) or _TIME_CONTEXT.search(text, end, line[1]))
