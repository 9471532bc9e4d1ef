"""The entry point: scan a mail's subject and body with every detector."""

from __future__ import annotations

import re
from datetime import date

from rules.personal_data.birth_dates import scan_birth_dates
from rules.personal_data.config import Finding, PersonalDataConfig
from rules.personal_data.hsa import scan_hsa
from rules.personal_data.names import scan_names, words_of
from rules.personal_data.numbers import scan_numbers
from rules.personal_data.text import HSA, IBAN, OID, LineIndex, mask, prepare


def _own_words(sender_name: str, sender_address: str) -> set[str]:
    words = words_of(sender_name or "")
    local = (sender_address or "").partition("@")[0]
    words |= words_of(re.sub(r"[._\-+0-9]+", " ", local))
    return words


def _scan_text(
    text: str, is_subject: bool, today: date, config: PersonalDataConfig, own: set[str], sender_address: str
) -> list[Finding]:
    text = prepare(text)
    if sender_address and sender_address in text:
        text = text.replace(sender_address, "#" * len(sender_address))
    hsa = list(HSA.finditer(text))
    hits = scan_hsa(hsa, config)
    spans = [m.span() for m in hsa] + [m.span() for rx in (OID, IBAN) for m in rx.finditer(text)]
    masked = mask(text, spans)
    lines = LineIndex(masked)
    hits += scan_numbers(masked, today, lines)
    taken = [(s, e) for _, _, _, s, e in hits]
    hits += [h for h in scan_birth_dates(masked, today) if not any(s < h[4] and h[3] < e for s, e in taken)]
    if config.detect_names:
        hits += scan_names(text, is_subject, own)
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
