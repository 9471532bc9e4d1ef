"""The entry point: scan a mail's subject and body with every detector, within a budget.

The budget (``PersonalDataConfig``): at most ``max_findings`` findings are kept per category, place
and level, the rest only counted (``Finding.more``); at most ``max_scan_chars`` of a text are scanned;
and a text longer than ``early_stop_chars`` whose first ``early_stop_chars`` already hold a clear
finding is not scanned further, since the verdict cannot change. Text left unscanned is reported as a
finding of its own (``UNSCANNED``, from the line where it starts): with the clear findings when the
mail is rejected anyway, otherwise at hold level, so a handler looks at what the guard did not.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from datetime import date

from rules.personal_data.birth_dates import scan_birth_dates
from rules.personal_data.config import UNSCANNED, Finding, PersonalDataConfig
from rules.personal_data.hsa import scan_hsa
from rules.personal_data.names import scan_names, words_of
from rules.personal_data.numbers import scan_numbers
from rules.personal_data.text import HSA, IBAN, OID, Hit, LineIndex, has_digit, mask, prepare

_LOCAL_PART_SEPARATORS = re.compile(r"[._\-+0-9]+")


def _own_words(sender_name: str, sender_address: str) -> set[str]:
    words = words_of(sender_name or "")
    local = (sender_address or "").partition("@")[0]
    words |= words_of(_LOCAL_PART_SEPARATORS.sub(" ", local))
    return words


def _detect(
    text: str, is_subject: bool, today: date, config: PersonalDataConfig, own: set[str]
) -> tuple[list[Hit], LineIndex]:
    """Every detector over prepared ``text``: hits in order of offset, and the text's line index."""
    if not has_digit(text):  # every detector but the one for names needs a digit
        hits = scan_names(text, is_subject, own) if config.detect_names else []
        return sorted(hits, key=lambda h: h[1]), LineIndex(text)
    hsa = list(HSA.finditer(text))
    hits = scan_hsa(hsa, config)
    spans = [m.span() for m in hsa] + [m.span() for rx in (OID, IBAN) for m in rx.finditer(text)]
    masked = mask(text, spans)  # same length and line breaks as text
    lines = LineIndex(masked)
    numbers = scan_numbers(masked, today, lines)
    hits += numbers
    # A birth date inside an identity number ("född 870521-2382") is that number, reported once.
    starts, ends = [h[3] for h in numbers], [h[4] for h in numbers]
    for h in scan_birth_dates(masked, today):
        i = bisect_left(starts, h[4]) - 1  # the last number starting before this date ends
        if i < 0 or ends[i] <= h[3]:
            hits.append(h)
    if config.detect_names:
        hits += scan_names(text, is_subject, own)
    return sorted(hits, key=lambda h: h[1]), lines


def _cut(text: str, limit: int) -> int:
    """Where to stop to scan at most ``limit`` characters: after the last line break before it."""
    if len(text) <= limit:
        return len(text)
    brk = text.rfind("\n", 0, limit)
    return brk + 1 if brk > 0 else limit


def _keep(hits: list[Hit], lines: LineIndex | None, location: str, config: PersonalDataConfig) -> list[Finding]:
    """Findings from hits: at least the hold threshold, at most ``max_findings`` per category and level."""
    kept: list[Finding] = []
    last: dict[tuple[str, bool], int] = {}  # (category, clear) -> index in kept of the last one kept
    count: dict[tuple[str, bool], int] = {}
    for category, offset, score, _, _ in hits:
        if score < config.hold_threshold:
            continue
        key = (category, score >= config.reject_threshold)
        count[key] = count.get(key, 0) + 1
        if count[key] > config.max_findings:
            continue
        last[key] = len(kept)
        kept.append(Finding(category, location, None if lines is None else lines.line(offset), score))
    for key, n in count.items():
        if n > config.max_findings:
            i = last[key]
            f = kept[i]
            kept[i] = Finding(f.category, f.location, f.line, f.score, more=n - config.max_findings)
    return kept


def _scan_text(
    text: str, is_subject: bool, today: date, config: PersonalDataConfig, own: set[str], sender_address: str
) -> list[Finding]:
    location = "subject" if is_subject else "body"
    end = _cut(text, config.max_scan_chars)
    part = prepare(text[:end])
    if sender_address and sender_address in part:
        part = part.replace(sender_address, "#" * len(sender_address))
    stop = None  # where scanning stopped, when it did not reach the end of the text
    if len(part) > config.early_stop_chars:
        head = part[: _cut(part, config.early_stop_chars)]
        hits, lines = _detect(head, is_subject, today, config, own)
        if any(h[2] >= config.reject_threshold for h in hits):
            stop, part = len(head), head
    if stop is None:
        hits, lines = _detect(part, is_subject, today, config, own)
        if end < len(text):
            stop = len(part)
    findings = _keep(hits, None if is_subject else lines, location, config)
    if stop is not None:
        clear = any(f.score >= config.reject_threshold for f in findings)
        line = None if is_subject else part.count("\n", 0, stop) + 1
        score = config.reject_threshold if clear else config.hold_threshold
        findings.append(Finding(UNSCANNED, location, line, score))
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

    Returns the findings that matter under ``config``: those scoring at least ``hold_threshold``, at
    most ``config.max_findings`` per category and level (the last one kept counts the rest in
    ``more``), and an ``UNSCANNED`` finding where the budget stopped the scan. Never raises on string
    input and never carries the values it found.
    """
    today = today or date.today()
    own = _own_words(sender_name, sender_address)
    subject = subject if isinstance(subject, str) else ""
    body = body if isinstance(body, str) else ""
    return _scan_text(subject, True, today, config, own, sender_address) + _scan_text(
        body, False, today, config, own, sender_address
    )
