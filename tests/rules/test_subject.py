"""Subject conventions as people really type, reply to and forward them."""

from __future__ import annotations

import email.header
import itertools
import unicodedata

import pytest

from parsers.mail import decode_header_value
from rules.subject import match_subject, normalise_subject

CONVENTIONS = [
    ("behorighet", "MittVaccin – Behörighet"),
    ("avslut", "MittVaccin – Behörighet avslut"),
    ("anvandarstod", "MittVaccin – användarstöd"),
    ("felsokning", "MittVaccin – felsökning"),
]
DASHES = ["-", "\u2010", "\u2011", "\u2012", "\u2013", "\u2014", "\u2015", "\u2212", "\ufe63", "\uff0d", "--", ":", ""]
PREFIXES = [
    "SV: ", "Sv: ", "sv:", "VB: ", "RE: ", "Re: ", "Fwd: ", "FW: ", "AW: ", "WG: ", "Svar: ",
    "Vidarebefordran: ", "[EXTERN] ", "[EXTERNAL] ", "RE[2]: ", "SV: VB: ", "Re: Re: Re: ", "[EXTERN] SV: VB: ",
    "SV : ", "Fwd:Re: ",
]


def rtype(subject: str) -> str | None:
    return match_subject(subject, CONVENTIONS).request_type


@pytest.mark.parametrize("type_id, canonical", CONVENTIONS)
def test_canonical_subjects_match(type_id, canonical):
    assert rtype(canonical) == type_id


@pytest.mark.parametrize("dash", DASHES)
@pytest.mark.parametrize("type_id, tail", [("behorighet", "Behörighet"), ("avslut", "Behörighet avslut"),
                                           ("anvandarstod", "användarstöd"), ("felsokning", "felsökning")])
def test_every_dash_or_none(dash, type_id, tail):
    assert rtype(f"MittVaccin {dash} {tail}") == type_id
    assert rtype(f"MittVaccin{dash}{tail}") == type_id


@pytest.mark.parametrize(
    "subject, type_id",
    [
        ("MITTVACCIN – BEHÖRIGHET", "behorighet"),
        ("mittvaccin – behörighet AVSLUT", "avslut"),
        ("Mittvaccin - Behorighet", "behorighet"),
        ("MittVaccin - Behorighet Avslut", "avslut"),
        ("MittVaccin - anvandarstod", "anvandarstod"),
        ("MittVaccin - felsokning", "felsokning"),
        ("MittVaccin - Användarstod", "anvandarstod"),
        ("  MittVaccin\u00a0–\u00a0Behörighet  ", "behorighet"),
        ("MittVaccin\t–\t\tBehörighet", "behorighet"),
        ("MittVaccin \u2003–\u2009Behörighet\u202f avslut", "avslut"),
        ("Mitt Vaccin – Behörighet", "behorighet"),
        ("MittVaccin – Behör\u00adighet", "behorighet"),  # soft hyphen from Word
        ("MittVaccin – Behörighet.", "behorighet"),
        ("ＭｉｔｔＶａｃｃｉｎ – Ｂｅｈöｒｉｇｈｅｔ", "behorighet"),  # full-width (NFKC)
        ("MittVaccin – Behörighet Halmstad kommun", "behorighet"),
        ("MittVaccin – Behörighet avslut Halmstad kommun", "avslut"),
        ("MittVaccin – felsökning inloggning fungerar inte", "felsokning"),
        ("MittVaccin – Behörighet [EXTERN]", "behorighet"),
        ("MittVaccin", None),
        ("Behörighet", None),
        ("Behörighet avslut", None),
        ("Fråga om MittVaccin – Behörighet", None),
        ("MittVaccin – Behörighetavslutning", None),
        ("MittVaccin – Beställning", None),
        ("", None),
        ("SV:", None),
    ],
)
def test_tolerant_matching(subject, type_id):
    assert rtype(subject) == type_id


@pytest.mark.parametrize("form", ["NFC", "NFD", "NFKC", "NFKD"])
@pytest.mark.parametrize("type_id, canonical", CONVENTIONS)
def test_unicode_forms(form, type_id, canonical):
    assert rtype(unicodedata.normalize(form, canonical)) == type_id


@pytest.mark.parametrize("prefix", PREFIXES)
def test_reply_and_forward_prefixes(prefix):
    match = match_subject(prefix + "MittVaccin – Behörighet avslut", CONVENTIONS)
    assert match.request_type == "avslut"
    assert match.cleaned == "MittVaccin – Behörighet avslut"


@pytest.mark.parametrize(
    "subject, is_reply",
    [("SV: MittVaccin – Behörighet", True), ("Re: Fwd: MittVaccin – Behörighet", True),
     ("Svar: MittVaccin – Behörighet", True), ("VB: MittVaccin – Behörighet", False),
     ("FW: [EXTERN] MittVaccin – Behörighet", False), ("MittVaccin – Behörighet", False)],
)
def test_is_reply_means_a_reply_prefix(subject, is_reply):
    assert match_subject(subject, CONVENTIONS).is_reply is is_reply


@pytest.mark.parametrize("charset", ["utf-8", "iso-8859-1", "windows-1252"])
@pytest.mark.parametrize("encoding", ["q", "b"])
@pytest.mark.parametrize("type_id, canonical", CONVENTIONS)
def test_encoded_then_decoded_subjects(charset, encoding, type_id, canonical):
    text = "SV: " + (canonical if charset != "iso-8859-1" else canonical.replace("–", "-"))
    cs = email.charset.Charset(charset)
    cs.header_encoding = email.charset.QP if encoding == "q" else email.charset.BASE64
    encoded = email.header.Header(text, cs).encode()
    assert "=?" in encoded
    assert rtype(decode_header_value(encoded)) == type_id


@pytest.mark.parametrize(
    "subject, ref",
    [
        ("SV: MittVaccin – Behörighet [MV-2026-0001]", "MV-2026-0001"),
        ("[MV-2026-0001] SV: MittVaccin – Behörighet", "MV-2026-0001"),
        ("Re: MV-2026-12345 MittVaccin – Behörighet", "MV-2026-12345"),
        ("SV: MittVaccin – Behörighet [MV–2026–0007]", "MV-2026-0007"),  # autocorrected dashes
        ("SV: ärende ABCDE-2027-0042 klart?", "ABCDE-2027-0042"),
        ("MittVaccin – Behörighet", None),
        ("MittVaccin – Behörighet mv-2026-0001", None),  # the prefix is upper case
        ("MittVaccin – Behörighet abcMV-2026-0001", None),  # inside a word
        ("MittVaccin – Behörighet MV-2026-0001x", "MV-2026-0001"),
        ("MittVaccin – Behörighet ABCDEF-2026-0001", None),
        ("MittVaccin – Behörighet MV-26-0001", None),
        ("MittVaccin – Behörighet MV-2026-001", None),
    ],
)
def test_ticket_reference(subject, ref):
    assert match_subject(subject, CONVENTIONS).ticket_ref == ref


def test_ticket_reference_does_not_stop_the_match():
    match = match_subject("SV: MittVaccin – Behörighet avslut [MV-2026-0001]", CONVENTIONS)
    assert (match.request_type, match.ticket_ref, match.is_reply) == ("avslut", "MV-2026-0001", True)
    assert match.cleaned == "MittVaccin – Behörighet avslut"


TERMINATION_WORDS = ["avslut", "Avslut", "AVSLUT", "avsluta", "avslutas", "avslutning", "upphör", "upphöra",
                     "Upphor", "slutat", "ta bort", "radera", "spärra", "inaktivera"]


@pytest.mark.parametrize("word", TERMINATION_WORDS)
@pytest.mark.parametrize(
    "template",
    [
        "MittVaccin – Behörighet {w}",
        "MittVaccin – Behörighet Halmstad kommun {w}",
        "MittVaccin – Behörighet ({w})",
        "MittVaccin – Behörighet [{w}]",
        "[{w}] MittVaccin – Behörighet",
        "SV: [{w}] MittVaccin – Behörighet",
        "{w}: MittVaccin – Behörighet",
        "{w} MittVaccin – Behörighet",
        "MittVaccin – {w} Behörighet",
        "MittVaccin – {w} av Behörighet",
        "MittVaccin – Behörighet - {w}",
        "MittVaccin – Behörighet, användaren ska {w}",
    ],
)
def test_termination_is_never_read_as_plain_behorighet(word, template):
    subject = template.format(w=word)
    for variant in _variants(subject):
        assert rtype(variant) != "behorighet", variant


def _variants(subject: str):
    """The subject as clients mangle it: dashes, case, NFD, prefixes, missing å/ä/ö."""
    dashes = ["–", "-", "—", "\u2212", ":"]
    for dash, case, form, prefix, plain in itertools.product(
        dashes, (str, str.lower, str.upper), ("NFC", "NFD"), ("", "SV: VB: "), (False, True)
    ):
        text = prefix + subject.replace("–", dash)
        if plain:
            text = text.translate(str.maketrans("åäöÅÄÖ", "aaoAAO"))
        yield unicodedata.normalize(form, case(text))


def test_every_variant_of_the_termination_subject_is_avslut():
    for variant in _variants("MittVaccin – Behörighet avslut"):
        assert rtype(variant) == "avslut", variant


@pytest.mark.parametrize(
    "text, folded",
    [
        ("MittVaccin – Behörighet", "mittvaccin behorighet"),
        ("MITTVACCIN—BEHÖRIGHET  AVSLUT", "mittvaccin behorighet avslut"),
        (unicodedata.normalize("NFD", "användarstöd"), "anvandarstod"),
        ("a\u00a0:\u2013 b", "a b"),
    ],
)
def test_normalise_subject(text, folded):
    assert normalise_subject(text) == folded
