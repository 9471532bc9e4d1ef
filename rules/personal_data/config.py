"""What the guard reports (``Finding``) and how it is tuned (``PersonalDataConfig``)."""

from __future__ import annotations

import re
from dataclasses import dataclass, fields

CATEGORIES = ("personnummer", "samordningsnummer", "reservnummer", "hsa_id", "name", "birth_date")
# Not personal data but the lack of a check: text past the scan budget, or after the point where a
# clear finding had already decided the verdict. Reported like a category, with the line it starts on.
UNSCANNED = "unscanned"


@dataclass(frozen=True)
class Finding:
    """One piece of personal data: what kind, where, and how sure. Never the value."""

    category: str  # one of CATEGORIES, or UNSCANNED
    location: str  # "subject" or "body"
    line: int | None  # 1-based body line; None for the subject
    score: float  # 0..1
    # Findings of the same category, place and level (reject or hold) seen after this one but not kept
    # (see PersonalDataConfig.max_findings); set on the last one kept. describe() counts them.
    more: int = 0


@dataclass(frozen=True)
class PersonalDataConfig:
    """Thresholds, switches and the budget of the guard; read from a routine's TOML table."""

    reject_threshold: float = 0.8  # findings with score >= this reject the mail
    hold_threshold: float = 0.5  # findings in [hold, reject) make the mail "held" for staff review
    person_hsa_suffixes: tuple[str, ...] = (r"P\w+",)  # regexes for HSA-id suffixes that denote persons
    detect_names: bool = True
    # The budget. At most this many findings are kept per category, place and level (the rest are
    # counted in Finding.more): the verdict needs only the first.
    max_findings: int = 20
    # At most this many characters of one text (the subject, or the body) are scanned; the rest is
    # reported as UNSCANNED at hold level, so a handler looks at it, unless a clear finding already
    # rejects the mail.
    max_scan_chars: int = 2_000_000
    # A text longer than this is first scanned this far; when that part already holds a clear finding
    # the verdict cannot change, so the rest is not scanned (and reported as UNSCANNED with the others).
    early_stop_chars: int = 200_000

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
        for key in ("max_findings", "max_scan_chars", "early_stop_chars"):
            if key in values:
                v = values[key]
                if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                    raise ValueError(f"{key!r} must be a whole number of at least 1")
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
