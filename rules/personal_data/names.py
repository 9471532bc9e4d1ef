"""Names of persons written in context ("gäller Karin Lindqvist", "användare: Per Nilsson",
"Lindqvist, Karin", "kontot för karin lindqvist", a work address "karin.lindqvist@…" of someone else,
names answering a quoted "Vem gäller det?"), never the sender's own name, a signature block or the
Från:/Till: lines of a forwarded mail.

The Swedish first-name and surname lists, the words that are also names, and the context words are
data in ``words/`` (see ``words_data``).
"""

from __future__ import annotations

import re
from bisect import bisect_right

from rules.personal_data.text import Hit
from rules.personal_data.words_data import alternation, alternation_by_first_character, entries, word_set

_FIRST_NAMES = word_set("first_names")
_LAST_NAMES = word_set("last_names")
# Names that are also ordinary Swedish words: a lower-case name made of them is held, not rejected.
_COMMON_WORDS = word_set("common_words")
# Capitalised words after a trigger that are places, units or systems, not surnames.
_NOT_SURNAME = re.compile(rf"(?i:.*(?:{alternation('not_surname_endings')})$)")
_SURNAME_ENDING = re.compile(rf"(?i:.*(?:{alternation('surname_endings')})$)")

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
_TRIGGER = rf"(?i:\b(?:{alternation('triggers')})\b)"
# A trigger, at most "ny"/"den" and similar before the name, then a run of capitalised words.
_TRIGGER_LOWER = re.compile(_TRIGGER.replace("(?i:", "(?:"))


def _non_word_class() -> str:
    """A character class of what "\\W" matches below U+10000, and of every character above.

    The regex engine tests such a class with a bitmap, several times faster than it tests "\\W" (a
    Unicode property lookup per character); a character above U+10000 it matches may be a letter, so
    a caller checks those matches.
    """
    spans: list[list[int]] = []
    for code in range(0x10000):
        if not (chr(code).isalnum() or code == 0x5F):  # what the regex engine counts as a word character
            if spans and spans[-1][1] == code - 1:
                spans[-1][1] = code
            else:
                spans.append([code, code])
    spans.append([0x10000, 0x10FFFF])
    return "[" + "".join(f"\\U{a:08x}-\\U{b:08x}" for a, b in spans) + "]"


# _TRIGGER_LOWER finds the same triggers far faster as "a non-word character, then a trigger": its
# leading "\b" makes the regex engine try every position, a leading character class lets it skip
# ahead. A trigger at the very start of the text is looked for on its own (_TRIGGER_AT_START). A
# trigger ending in a non-word character ("ang.") may be followed at once by another whose leading
# non-word character it took: a text holding such a trigger gets the plain scan (they are few, and
# written without spaces, so "in" finds them), as does one where a character above U+10000 leads a
# trigger (it may be a letter).
_TRIGGERS_ENDING_NON_WORD = tuple(e for e in entries("triggers") if not (e[-1].isalnum() or e[-1] == "_"))
_TRIGGER_GROUPS = alternation_by_first_character("triggers")
if _TRIGGER_GROUPS is None or any(c.isspace() for e in _TRIGGERS_ENDING_NON_WORD for c in e):
    _TRIGGER_AFTER_NON_WORD = _TRIGGER_AT_START = None
else:
    _TRIGGER_AFTER_NON_WORD = re.compile(rf"{_non_word_class()}(?:{_TRIGGER_GROUPS})\b")
    _TRIGGER_AT_START = re.compile(rf"(?:{_TRIGGER_GROUPS})\b")


def _trigger_spans(lower: str) -> list[tuple[int, int]]:
    """The spans of ``_TRIGGER_LOWER.finditer(lower)``, found faster."""
    if _TRIGGER_AFTER_NON_WORD is None or any(e in lower for e in _TRIGGERS_ENDING_NON_WORD):
        return [m.span() for m in _TRIGGER_LOWER.finditer(lower)]
    first = _TRIGGER_AT_START.match(lower)
    spans = [] if first is None else [first.span()]
    pos = 0 if first is None else first.end()
    spans += [(m.start() + 1, m.end()) for m in _TRIGGER_AFTER_NON_WORD.finditer(lower, pos)]
    if any(lower[start - 1] > "\uffff" for start, _ in spans if start):
        return [m.span() for m in _TRIGGER_LOWER.finditer(lower)]
    return spans


# The name may wrap to the next line ("behörighet för\nKarin Lindqvist") or stand in apposition
# after a comma or a dash ("vår nya medarbetare, Karin Lindqvist, ska").
_AFTER_TRIGGER_MARKS = r"[ \t\u00a0]*[:\-–,(]?[ \t\u00a0]*(?:\n[ \t\u00a0>]*)?"
_AFTER_TRIGGER_WORD = (
    r"(?:(?i:vår\s+nya|ny|nya|den|dem|vår|våra|min|mina|användaren|medarbetaren|kontot|kontot\s+för)[ \t\u00a0]+)?"
)
_AFTER_TRIGGER = _AFTER_TRIGGER_MARKS + _AFTER_TRIGGER_WORD
_NAME_AFTER_TRIGGER = re.compile(rf"{_AFTER_TRIGGER}(?:(?P<name>{_NAME_RUN})|(?P<rev>{_REVERSED}))")
_LOWER_AFTER_TRIGGER = re.compile(rf"{_AFTER_TRIGGER}(?P<name>{_LOWER_RUN})")
# Both in one call, and faster: what _NAME_AFTER_TRIGGER finds, else what _LOWER_AFTER_TRIGGER finds.
# The first branch is tried in full (every reading of the words before the name) before the second.
# The marks before the name are taken greedily and never given back (an atomic group): whatever
# follows them starts with a letter, which is no mark, so every match ends its marks at the first
# character that is no mark, and the greedy reading reaches it whenever any reading does.
_NAME_OR_LOWER_AFTER_TRIGGER = re.compile(
    rf"(?>{_AFTER_TRIGGER_MARKS})(?:{_AFTER_TRIGGER_WORD}(?:(?P<name>{_NAME_RUN})|(?P<rev>{_REVERSED}))"
    rf"|{_AFTER_TRIGGER_WORD}(?P<lower>{_LOWER_RUN}))"
)
_MAIL_AFTER_TRIGGER = re.compile(rf"{_AFTER_TRIGGER}<?(?P<name>{_MAIL})")
_COLLEAGUE = re.compile(r"(?i:kolleg)")
_REVERSED_ANYWHERE = re.compile(rf"(?<![\w-])(?P<name>{_REVERSED})")
_NAME_ANYWHERE = re.compile(rf"(?<![\w-])(?P<name>{_NAME_RUN})")
# "Karin Lindqvist ska ha behörighet": a name right before one of these verbs, found from the verb.
_VERB_AFTER_NAME = re.compile(rf"[ \t\u00a0](?:{alternation('verbs_after_name')})\b")
# The same for a text without tabs and no-break spaces: led by a plain space, which the regex engine
# finds far faster than a character class.
_VERB_GROUPS = alternation_by_first_character("verbs_after_name")
_VERB_AFTER_SPACE = re.compile(rf" (?:{_VERB_GROUPS or alternation('verbs_after_name')})\b")
# A role in brackets or between commas, or the closing dash of "– Karin Lindqvist –", may stand
# between: "Lindqvist Karin (usk) ska ha", "den som slutat – Karin Lindqvist – ska avslutas".
_BETWEEN_NAME_AND_VERB = r"(?:[ \t\u00a0]*\([^()\n]{1,40}\)|,[ \t\u00a0]*[^,\n]{1,30},|[ \t\u00a0]+[–—-])?"
_NAME_BEFORE_VERB = re.compile(rf"(?<![\w-])(?P<name>{_NAME_RUN}){_BETWEEN_NAME_AND_VERB}$")
_LOWER_BEFORE_VERB = re.compile(rf"(?<![\w-])(?P<name>{_LOWER_RUN}){_BETWEEN_NAME_AND_VERB}$")
# The last characters _BETWEEN_NAME_AND_VERB can end with, and the first characters of a _TOKEN.
_BETWEEN_ENDS = frozenset("),–—-")
_TOKEN_INITIALS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZÅÄÖÉÜ")
# "gäller Karin Lindqvist och Per Nilsson": a name right after a name found in context.
_NAME_CHAIN = re.compile(rf"[ \t\u00a0]*(?:,|och|samt|&|/)[ \t\u00a0]*(?P<name>{_NAME_RUN})")
_LOWER_CHAIN = re.compile(rf"[ \t\u00a0]*(?:,|och|samt|&|/)[ \t\u00a0]*(?P<name>{_LOWER_RUN})")
# After a line like "Följande användare:" names stand alone on the next lines (bullets allowed).
# A heading ends in a colon; a question ("> Vem gäller det?") is answered by names on the next lines.
_LIST_HEAD = re.compile(r"^[^\n]*[:?][ \t]*$", re.MULTILINE)  # found faster by _list_heads
_QUESTION_WORDS = re.compile(
    r"(?i:\b(?:namn|namnet|heter)\b|\b(?:vem|vilka|vilken|vilket)\b[^\n]*\b(?:gäller|avser|användar\w*|"
    r"person\w*|behörighet\w*|avslut\w*|ska\s+ha|konto\w*|medarbetar\w*)\b)"
)
_LIST_TRIGGER = re.compile(_TRIGGER)
_LIST_HEAD_WORDS = re.compile(rf"{_TRIGGER}|(?i:\b(?:{alternation('list_headings')})\b)")
_LIST_ITEM = re.compile(  # one blank line may stand before an item
    rf"\n(?:[ >\t]*\n)?[ >\t]*(?:[-•*·]|\d{{1,2}}[.)])?[ \t]*(?P<name>{_NAME_RUN})[^\n]*"
)

_SIGN_OFF = re.compile(
    rf"^[ >\t]*(?i:{alternation('sign_offs')})\b[^\n]*$|^[ >\t]*--[ \t]*$",
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


_WORD = re.compile(r"[^\W\d_]+")
_RUN_SPACE = re.compile(r"[ \t\u00a0]+")
_PARTICLE_RX = re.compile(_PARTICLE)
_MAIL_SEPARATOR = re.compile(r"[._]")


def words_of(text: str) -> set[str]:
    return {w.casefold() for w in _WORD.findall(text)}


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
    tokens = [t for t in _RUN_SPACE.split(name) if not _PARTICLE_RX.fullmatch(t)]
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
    if len(tokens) != 2 or tokens[1].casefold() not in _LAST_NAMES and "-" not in tokens[1]:
        return 0.0  # most words after a trigger are no surname: said without splitting them
    if not (_is_first(tokens[0]) and _is_last(tokens[1])):
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
    parts = _MAIL_SEPARATOR.split(address.partition("@")[0].casefold())
    first, last = parts[0], parts[-1]
    if not _is_last(last):
        return 0.6 if _is_first(first) and _SURNAME_ENDING.fullmatch(last) and len(last) > 4 else 0.0
    if _is_first(first):
        return 0.85
    return 0.6 if len(first) == 1 else 0.0  # "k.lindqvist@…"


_SCORERS = {"lower": _lower_score, "rev": _reversed_score, "mail": _mail_score}


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


def _list_heads(text: str) -> list[tuple[int, int]]:
    """The spans of ``_LIST_HEAD.finditer(text)``: lines ending in ":" or "?" and then at most spaces and
    tabs. Found from the marks with ``str.find``, far faster than the regex, which tries every position."""
    heads = []
    for mark in ":?":
        i = text.find(mark)
        while i >= 0:
            end = text.find("\n", i)
            if end < 0:
                end = len(text)
            if not text[i + 1 : end].strip(" \t"):
                heads.append((text.rfind("\n", 0, i) + 1, end))
            i = text.find(mark, i + 1)
    heads.sort()
    return heads


def _context(text: str) -> tuple[list[int], list[int], list[int], list[int]]:
    """Where a body's sign-offs, quoted or forwarded mails, and Från:/Till: lines (starts, ends) are."""
    headers = list(_HEADER_LINE.finditer(text))
    return (
        [m.start() for m in _SIGN_OFF.finditer(text)],
        [m.start() for m in _BOUNDARY.finditer(text)],
        [m.start() for m in headers],
        [m.end() for m in headers],
    )


_NO_CONTEXT: tuple[list[int], list[int], list[int], list[int]] = ([], [], [], [])


def scan_names(
    text: str, is_subject: bool, own_words: set[str]
) -> list[Hit]:
    # (start, name, mode, cap): mode says how to score ("trigger": capitalised words after a trigger,
    # "anywhere": a known first name anywhere in the run, "lower", "rev", "mail"); cap bounds the score.
    # A candidate that scores nothing is dropped where that is cheap to know (a lower-case pair that is
    # no name): it would be skipped below anyway, with no other effect.
    candidates: list[tuple[int, str, str, float]] = []
    if is_subject:
        candidates += [(m.start("name"), m.group("name"), "anywhere", 1.0) for m in _NAME_ANYWHERE.finditer(text)]
        candidates += [(m.start("name"), m.group("name"), "rev", 1.0) for m in _REVERSED_ANYWHERE.finditer(text)]
    lower = text.lower()
    same_length = len(lower) == len(text)
    if same_length:
        triggers = _trigger_spans(lower)
    else:  # a few characters (e.g. "İ") grow when lower-cased: offsets would not match
        triggers = [m.span() for m in _LIST_TRIGGER.finditer(text)]
    mail = "@" in text  # _MAIL needs one
    for t_start, end in triggers:
        if (m := _NAME_OR_LOWER_AFTER_TRIGGER.match(text, end)) is not None:
            if (name := m.group("name")) is not None:
                candidates.append((m.start("name"), name, "trigger", 1.0))
                continue
            if (name := m.group("rev")) is not None:
                candidates.append((m.start("rev"), name, "rev", 1.0))
                continue
            if _lower_score(name := m.group("lower")):
                candidates.append((m.start("lower"), name, "lower", 1.0))
        if mail and (m := _MAIL_AFTER_TRIGGER.match(text, end)) is not None and not _COLLEAGUE.match(text, t_start):
            # "svara till min kollega anna.berg@…" is a contact, not the person concerned
            candidates.append((m.start("name"), m.group("name"), "mail", 1.0))
    if same_length:
        verbs = _VERB_AFTER_NAME if "\t" in lower or "\u00a0" in lower else _VERB_AFTER_SPACE
        for verb in verbs.finditer(lower):
            verb_start = verb.start()
            window_start = max(text.rfind("\n", 0, verb_start) + 1, verb_start - 80)
            if window_start >= verb_start:
                continue  # nothing before the verb on its line
            try_name = try_lower = True
            if text[verb_start - 1] not in _BETWEEN_ENDS:
                # Nothing can stand between name and verb: a name ends right before the verb, so its
                # last word is the window's. A capitalised name ends in a capitalised word; a lower-case
                # one scores only when that word is a surname.
                words = text[window_start:verb_start].rsplit(None, 1)
                if len(words) < 2:
                    continue
                try_name = words[1][0] in _TOKEN_INITIALS
                try_lower = words[1] in _LAST_NAMES
            if try_name and (m := _NAME_BEFORE_VERB.search(text, window_start, verb_start)) is not None:
                candidates.append((m.start("name"), m.group("name"), "anywhere", 1.0))
            elif try_lower and (m := _LOWER_BEFORE_VERB.search(text, window_start, verb_start)) is not None:
                candidates.append((m.start("name"), m.group("name"), "lower", 1.0))
    for head_start, head_end in _list_heads(text):
        head = text[head_start:head_end]
        words = _LIST_HEAD_WORDS if head.rstrip().endswith(":") else _QUESTION_WORDS
        if not words.search(head):
            continue
        pos = head_end
        while (item := _LIST_ITEM.match(text, pos)) is not None:
            candidates.append((item.start("name"), item.group("name"), "trigger", 1.0))
            pos = item.end()
    if not candidates:
        return []

    # Sign-offs, quoted mails and header lines of a body: looked for once a name scores.
    context = _NO_CONTEXT if is_subject else None
    hits: list[Hit] = []
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
        if own_words and words_of(checked) <= own_words:
            continue  # the sender's own name
        if context is None:
            context = _context(text)
        sig_starts, bounds, hdr_starts, hdr_ends = context
        if _in_spans(start, hdr_starts, hdr_ends):
            continue  # Från:/Till: lines of a quoted or forwarded mail
        if _in_signature(text, start, sig_starts, bounds):
            continue
        hits.append(("name", start, score, start, start + len(name)))
    return hits
