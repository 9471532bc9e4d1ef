"""The Swedish phrase naming what the guard found and where ("ett personnummer på rad 3")."""

from __future__ import annotations

from rules.personal_data.config import UNSCANNED, Finding
from rules.personal_data.words_data import table

_WORDING = table("wording")


def _join(parts: list[str], word_and: str) -> str:
    return parts[0] if len(parts) == 1 else f"{', '.join(parts[:-1])} {word_and} {parts[-1]}"


def _count(n: int, numbers: list[str]) -> str:
    """2..10 in words, larger counts as digits grouped by a no-break space ("18 285")."""
    return numbers[n - 2] if n - 2 < len(numbers) else f"{n:,}".replace(",", "\u00a0")


def describe(findings: list[Finding]) -> str:
    """A Swedish phrase naming the kinds of personal data found and where, never the values.

    E.g. "ett personnummer på rad 3 och ett namn i ämnesraden", "två personnummer (rad 2 och 5)".
    Findings not kept by the scan's budget count through ``Finding.more`` ("857 142 personnummer
    (rad 1, 2, 3, 4, 5 m.fl.)"); text the scan did not reach is named with the line it starts on.
    """
    wording = _WORDING
    places, numbers = wording["places"], wording["words"]["numbers"]
    parts = []
    for category, labels in wording["categories"].items():
        found = [f for f in findings if f.category == category]
        if not found:
            continue
        if category == UNSCANNED:
            lines = [f.line for f in found if f.line is not None]
            place = places["from_line"].format(line=min(lines)) if lines else places["subject_short"]
            parts.append(f"{labels['one']} ({place})")
            continue
        where = []
        if any(f.line is None for f in found):
            where.append(None)
        where += sorted({f.line for f in found if f.line is not None})
        n = len(found) + sum(f.more for f in found)
        what = labels["one"] if n == 1 else f"{_count(n, numbers)} {labels['many']}"
        if len(where) == 1 and not any(f.more for f in found):
            place = places["subject"] if where[0] is None else places["line"].format(line=where[0])
            parts.append(f"{what} {place}")
        else:
            lines = [w for w in where if w is not None]
            shown = [places["subject_short"]] if where[0] is None else []
            if lines:
                shown += [places["line_short"].format(line=lines[0]), *map(str, lines[1:])]
            if len(shown) > places["max_places"] or any(f.more for f in found):
                listed = f"{', '.join(shown[: places['max_places']])} {places['more']}"
            else:
                listed = _join(shown, places["and"])
            parts.append(f"{what} ({listed})")
    if not parts:
        return wording["words"]["none"]
    return _join(parts, places["and"])
