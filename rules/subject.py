"""Subject conventions: which request type a subject line names, and which ticket it refers to.

People type subjects by hand, reply and forward them from Outlook, and mail gateways tag them.
Matching therefore compares a folded form of the subject (:func:`normalise_subject`): Unicode
NFKC, case folded, Swedish letters without their dots and rings (``behorighet`` =
``Behörighet``), and every run of dashes, colons, punctuation and whitespace as one separator.
Reply and forward prefixes (``SV:``, ``VB:``, ``RE:``, ``Fwd:``, ``AW:``, ``Svar:`` ...) and
leading gateway tags (``[EXTERN]``) are removed first, however often they repeat.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class SubjectMatch:
    """What a subject says: the request type (or None), a ticket reference, and whether it is a reply."""

    request_type: str | None
    ticket_ref: str | None
    cleaned: str  # the subject without prefixes, tags and ticket reference, for showing to staff
    is_reply: bool  # it carried a reply prefix (SV:, RE:, AW:, Svar: ...); forwards do not count


_DASH = "\u002d\u2010\u2011\u2012\u2013\u2014\u2015\u2212\u2e3a\u2e3b\ufe58\ufe63\uff0d"
_TICKET = re.compile(rf"\[?\s*(?<![A-Za-z0-9])([A-Z]{{1,5}})[{_DASH}](\d{{4}})[{_DASH}](\d{{4,}})(?!\d)\s*\]?")
# A per-pack reference (a pack's ``ref_format``, e.g. ``VMU3000001``): only in brackets, as our subjects write it,
# so an HSA-id or another code in a subject is never read as one.
_NUMBERED = re.compile(r"\[\s*([A-Z]{2,5}\d{5,12})\s*\]")
_REPLY_WORDS = ("re", "sv", "svar", "aw", "antw", "antwort", "r", "rif", "odp", "vs", "ang", "angaende")
_FORWARD_WORDS = ("fw", "fwd", "vb", "vidarebefordran", "vidarebefordrat", "wg", "tr", "rv", "fs", "doorst", "enc")
_PREFIX = re.compile(r"^\s*(?P<word>[^\W\d_]{1,16})\s*(?:\[\d+\]|\(\d+\))?\s*[:：]", re.UNICODE)
_TAG = re.compile(r"^\s*(?:\[(?P<b>[^\]]*)\]|\*(?P<s>[^*]{1,30})\*)")
_INVISIBLE = re.compile(r"[\u00ad\u200b-\u200f\u2060\ufeff]")

# Words that mean "end an access right". A subject that carries one of these anywhere outside
# the matched subject convention is never read as a request type that does not itself say so:
# a termination read as a new or changed access would leave a user's access in place.
_TERMINATION_STEMS = (
    "avslut", "upphor", "upphora", "slutat", "slutar", "sluta", "borttag", "tabort", "radera",
    "inaktiv", "sparr", "avregistr", "avsluta", "termin", "remove", "delete", "revoke",
)


def normalise_subject(text: str) -> str:
    """The folded form two subjects are compared in: ``"MittVaccin – Behörighet"`` -> ``"mittvaccin behorighet"``.

    Reply/forward prefixes and leading tags are not removed here (see :func:`match_subject`).
    """
    return " ".join(_words(text))


def match_subject(subject: str, conventions: Sequence[tuple[str, str]]) -> SubjectMatch:
    """Match ``subject`` against (request type id, canonical subject) pairs from a routine pack.

    The whole subject must equal one convention after folding (spaces between words do not
    count, so ``Mitt Vaccin - Behorighet`` matches). It is never a prefix match, so
    ``MittVaccin – Behörighet avslut`` can only be ``avslut``.

    Trailing text: when no convention matches exactly, the longest convention that the subject
    *starts with* (on a word boundary) is accepted, so ``MittVaccin – Behörighet Halmstad kommun``
    is ``behorighet`` — unless the trailing text (or a stripped leading tag) contains a
    termination word (avslut, avsluta, upphör, sluta, ta bort, radera, spärr, ...) or a word that a
    longer convention adds to the matched one (``avslut`` for ``Behörighet``) and the matched
    convention does not itself contain it. Such a subject matches nothing (``subject.unknown``):
    the sender is asked to use the exact subject, and no termination is ever filed as a new
    access. Text *before* the routine name is never accepted.
    """
    text = unicodedata.normalize("NFKC", subject or "")
    ticket_ref = None
    found = _TICKET.search(text)
    if found:
        ticket_ref = f"{found.group(1)}-{found.group(2)}-{found.group(3)}"
    text = _TICKET.sub(" ", text)
    if ticket_ref is None:
        numbered = _NUMBERED.search(text)
        if numbered:
            ticket_ref = numbered.group(1)
            text = _NUMBERED.sub(" ", text)
    cleaned, is_reply, tags = _strip_prefixes(text)
    cleaned = " ".join(cleaned.split())
    return SubjectMatch(_request_type(cleaned, tags, conventions), ticket_ref, cleaned, is_reply)


def _strip_prefixes(text: str) -> tuple[str, bool, list[str]]:
    """Remove reply/forward prefixes and leading tags, repeated and nested, in any order."""
    is_reply = False
    tags: list[str] = []
    while True:
        prefix = _PREFIX.match(text)
        if prefix:
            word = _fold(prefix.group("word"))
            if word in _REPLY_WORDS or word in _FORWARD_WORDS:
                is_reply = is_reply or word in _REPLY_WORDS
                text = text[prefix.end() :]
                continue
        tag = _TAG.match(text)
        if tag:
            tags.append(tag.group("b") if tag.group("b") is not None else tag.group("s"))
            text = text[tag.end() :]
            continue
        return text.strip(), is_reply, tags


def _request_type(cleaned: str, tags: list[str], conventions: Sequence[tuple[str, str]]) -> str | None:
    words = _words(cleaned)
    joined = "".join(words)
    if not joined:
        return None
    folded = [(type_id, _words(canonical)) for type_id, canonical in conventions]
    tag_words = [w for tag in tags for w in _words(tag)]
    for type_id, cwords in folded:
        if cwords and "".join(cwords) == joined:
            return None if _says_more(tag_words, cwords, folded) else type_id
    # Trailing text: the longest convention the subject starts with, on a word boundary.
    best: tuple[str, list[str]] | None = None
    for type_id, cwords in folded:
        key = "".join(cwords)
        if not key or not joined.startswith(key):
            continue
        if not any("".join(words[:k]) == key for k in range(1, len(words))):
            continue
        if best is None or len(key) > len("".join(best[1])):
            best = (type_id, cwords)
    if best is None:
        return None
    type_id, cwords = best
    cut = next(k for k in range(1, len(words)) if "".join(words[:k]) == "".join(cwords))
    extra = words[cut:] + tag_words
    if _says_more(extra, cwords, folded):
        return None
    return type_id


def _says_more(extra: list[str], cwords: list[str], folded: list[tuple[str, list[str]]]) -> bool:
    """True when ``extra`` words point to a different (longer) convention, above all a termination."""
    own = "".join(cwords)
    # A termination convention may carry more termination words; any other may carry none.
    stems = [] if any(s in own for s in _TERMINATION_STEMS) else list(_TERMINATION_STEMS)
    # Words a longer convention adds to this one ("avslut" for "behorighet").
    for _, other in folded:
        if len(other) > len(cwords) and other[: len(cwords)] == cwords:
            stems.extend(w[:6] for w in other[len(cwords) :] if w not in cwords)
    text = " ".join(extra)
    squashed = text.replace(" ", "")
    return any(stem in squashed for stem in stems)


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFD", unicodedata.normalize("NFKC", text))
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _INVISIBLE.sub("", bare).casefold()


def _words(text: str) -> list[str]:
    return re.findall(r"[^\W_]+", _fold(text))


def owns_ref(routine: object, ref: str) -> bool:
    """Whether ``ref`` (as :func:`match_subject` found it) is a reference of ``routine``'s tickets."""
    fmt = getattr(routine, "ref_format", "")
    prefix = getattr(routine, "ref_prefix", "")
    if fmt:
        return ref.startswith(prefix) and ref[len(prefix):].isdigit()
    return ref.startswith(f"{prefix}-")
