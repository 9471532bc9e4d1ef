"""HSA-ids of persons (``SE2321000131-P000000245581``); unit HSA-ids pass."""

from __future__ import annotations

import re
from functools import cache

from rules.identity import is_hsa_id
from rules.personal_data.config import PersonalDataConfig
from rules.personal_data.text import Hit


@cache
def _person_suffix(patterns: tuple[str, ...]) -> re.Pattern[str] | None:
    if not patterns:
        return None
    return re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE)


def scan_hsa(matches: list[re.Match[str]], config: PersonalDataConfig) -> list[Hit]:
    """Person HSA-ids among the HSA-shaped ``matches`` (``text.HSA``)."""
    person = _person_suffix(tuple(config.person_hsa_suffixes))
    if person is None:
        return []
    hits = []
    for m in matches:
        value = m.group()
        if is_hsa_id(value) and person.fullmatch(value.split("-", 1)[1]):
            hits.append(("hsa_id", m.start(), 0.95, m.start(), m.end()))
    return hits
