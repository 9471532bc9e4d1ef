"""Text preparation shared by the detectors: normalising, masking look-alike spans, line numbers."""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right

# Invisible characters that could split a number without a reader noticing.
_INVISIBLE_CHARACTERS = "\u00ad\u200b\u200c\u200d\u2060\ufeff"
_INVISIBLE = re.compile(f"[{_INVISIBLE_CHARACTERS}]")


def prepare(text: str) -> str:
    """Normalise so that look-alike digits and odd line breaks cannot hide a number.

    NFKC folds full-width and other compatibility digits to ASCII and never adds or removes a
    line break, so line numbers still match the text as written (CR LF and lone CR count as one).
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if any(c in text for c in _INVISIBLE_CHARACTERS):  # "in" is far faster than the regex's scan
        text = _INVISIBLE.sub("", text)
    try:
        return unicodedata.normalize("NFKC", text)
    except (ValueError, TypeError):  # pragma: no cover - defensive: never raise on input
        return text


# Spans that hold digits but are never a personal identity number: masked before the number scan.
# Each starts with a plain character class (so the regex engine can skip ahead fast) followed by
# a look-behind on the character before it: "not inside a longer token".
OID = re.compile(r"\d(?<![\d.]\d)\d{0,5}(?:\.\d{1,6}){3,}(?![\d.])")
IBAN = re.compile(r"[A-Z](?<![A-Za-z0-9][A-Z])[A-Z]\d{2}(?: ?[A-Z0-9]{4}){3,7}(?: ?[A-Z0-9]{1,3})?(?![A-Za-z0-9])")
HSA = re.compile(r"[Ss](?<![A-Za-z0-9][Ss])[Ee][0-9]{10}-[A-Za-z0-9]{1,31}(?![A-Za-z0-9])")


# A character above Latin-1 as ``str.encode("latin-1", "backslashreplace")`` writes it.
_ESCAPED = re.compile(rb"\\(?:u([0-9a-f]{4})|U([0-9a-f]{8}))")


def has_digit(text: str) -> bool:
    """Whether ``text`` holds a character that ``\\d`` matches (any decimal digit, not only 0-9).

    Every detector but the one for names needs a digit, and most mail has none; ``re.search(r"\\d")``
    tests every character in the regex engine, this asks ``str`` (about ten times faster). Decimal
    digits beyond ASCII all lie above Latin-1, so only characters written as escapes are looked at.
    """
    for digit in "0123456789":
        if digit in text:
            return True
    if text.isascii():
        return False
    raw = text.encode("latin-1", "backslashreplace")
    return any(chr(int(short or long, 16)).isdecimal() for short, long in _ESCAPED.findall(raw))


def mask(text: str, spans: list[tuple[int, int]]) -> str:
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


class LineIndex:
    """Offsets of line starts, for 1-based line numbers and same-line context windows.

    Found when first asked for: a text with nothing to report never needs them.
    """

    def __init__(self, text: str) -> None:
        self._text: str | None = text
        self._starts: list[int] = []

    def _line_starts(self) -> list[int]:
        if self._text is not None:
            self._starts = [0, *(m.end() for m in re.finditer("\n", self._text))]
            self._text = None
        return self._starts

    def line(self, offset: int) -> int:
        return bisect_right(self._line_starts(), offset)

    def start_of(self, offset: int) -> int:
        starts = self._line_starts()
        return starts[bisect_right(starts, offset) - 1]


# A hit of a detector: (category, offset, score, start, end); offset is where it is reported.
Hit = tuple[str, int, float, int, int]
