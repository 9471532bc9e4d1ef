"""The Swedish phrase naming what the guard found and where ("ett personnummer på rad 3")."""

from __future__ import annotations

from rules.personal_data.config import Finding
from rules.personal_data.words_data import table

_WORDING = table("wording")


def _join(parts: list[str], word_and: str) -> str:
    return parts[0] if len(parts) == 1 else f"{', '.join(parts[:-1])} {word_and} {parts[-1]}"


def describe(findings: list[Finding]) -> str:
    """A Swedish phrase naming the kinds of personal data found and where, never the values.

    E.g. "ett personnummer på rad 3 och ett namn i ämnesraden", "två personnummer (rad 2 och 5)".
    """
    wording = _WORDING
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
