"""Tests for the personal-data guard (rules.personal_data).

Identity numbers are Skatteverket's published test numbers only; look-alikes with a bad check
digit are those numbers with the last digit changed.
"""

from __future__ import annotations

import importlib.util
import json
import random
import re
import sys
from datetime import date
from pathlib import Path

import pytest

from rules.identity import parse_identity_number
from rules.personal_data import CATEGORIES, UNSCANNED, Finding, PersonalDataConfig, describe, scan

ROOT = Path(__file__).resolve().parents[2]
TODAY = date(2026, 11, 24)
SUBJECT = "MittVaccin – Behörighet"

TEST_PNR = ["19121212-1212", "19870521-2382", "20000229-2381", "19440813-9089", "19571230-2842",
            "19610729-3059", "19791230-9296", "20051231-2398", "19950424-2398", "20000104-2399"]
TEST_SNR = "19701063-2391"


def body_kinds(body: str, **kw) -> list[tuple[str, int | None]]:
    return [(f.category, f.line) for f in scan(SUBJECT, body, today=TODAY, **kw)]


def written_forms(number: str) -> list[str]:
    d8, serial = number.split("-")
    d6 = d8[2:]
    return [f"{d8}-{serial}", f"{d8}{serial}", f"{d6}-{serial}", f"{d6}{serial}", f"{d8} {serial}",
            f"{d6} {serial}", f"{d8}\u2013{serial}", f"{d8}\u00a0{serial}", f"{d6}\u2013{serial}",
            f"{d8} - {serial}"]


# --- identity numbers -------------------------------------------------------------------------


@pytest.mark.parametrize("value", [v for n in TEST_PNR for v in written_forms(n)])
def test_personnummer_in_every_written_form_is_found(value):
    body = f"Hej!\nBehörigheten gäller {value}.\n\nMvh\nKarin"
    assert body_kinds(body) == [("personnummer", 2)]


@pytest.mark.parametrize("value", written_forms(TEST_SNR))
def test_samordningsnummer_is_found(value):
    assert body_kinds(f"Samordningsnumret är\n{value}") == [("samordningsnummer", 2)]


def test_plus_separator_means_a_hundred_years_or_older():
    assert body_kinds("Hon är 114 år, 121212+1212.") == [("personnummer", 1)]


@pytest.mark.parametrize("subject", [
    "MittVaccin – Behörighet 19121212-1212", "MittVaccin – Behörighet avslut 8705212382",
    "VB: 000229-2381 MittVaccin",
])
def test_personnummer_in_subject_has_no_line(subject):
    assert [(f.category, f.location, f.line) for f in scan(subject, "", today=TODAY)] == [
        ("personnummer", "subject", None)]


@pytest.mark.parametrize("value", [
    "19121212-1213", "8705212383", "000229-2380", "19440813-9088", "701063-2392",  # bad check digit
    "19121312-1212",  # month 13
    "20000230-2381",  # 30 February
])
def test_numbers_that_fail_date_or_check_digit_are_not_flagged(value):
    assert body_kinds(f"Nummer {value} i blanketten") == []


def test_a_number_from_the_future_is_not_flagged():
    assert body_kinds("20051231-2398", ) == [("personnummer", 1)]
    assert [f.category for f in scan("", "20051231-2398", today=date(2005, 12, 30))] == []


@pytest.mark.parametrize("value", [
    "19121212-T123", "19870521-R001", "20000229-K123", "870521-T678", "19950424T123", "20000104-SK12",
])
def test_reserve_numbers_are_found(value):
    assert body_kinds(f"Patienten har {value} i journalen.") == [("reservnummer", 1)]


@pytest.mark.parametrize("text", [
    "Vi började 20261101 med nya rutinen.",
    "Kod 19121312-T123 (ingen riktig månad)",
    "Produkt 2611231530AB",
])
def test_reserve_number_look_alikes_are_not_flagged(text):
    assert body_kinds(text) == []


# --- things that only look like identity numbers ----------------------------------------------


@pytest.mark.parametrize("text", [
    "Ring 035-13 10 00", "Mobil 070-123 45 67", "Växel +46 35 13 10 00", "Tel: +46701234567",
    "Ordernummer VMU3000096", "Ärende MV-2026-0001", "Region Halland 232100-0131",
    "Kungsbacka kommun, org.nr 212000-1355", "Org.nr: 121212-1212 (enskild firma)",
    "Orgnr 8705212382", "Fakturanummer 8705212382", "Ärendenummer: 1912121212", "Order 19121212T123",
    "Enhetens HSA-id SE2321000131-E000000011111", "SE2321000131-S000000012345", "SE2321000131-F000000054321",
    "OID 1.2.752.129.2.1.3.1", "Bankgiro 5050-1055", "IBAN SE45 5000 0000 0583 9825 7466",
    "IBAN SE4550000000058398257466", "Felet uppstod 202611231530", "Startdatum 2026-12-01 kl. 08:00",
    "Den 23/11 2026", "Version 2.30.1", "Postnummer 434 80", "Belopp 1 212 121 kr",
])
def test_look_alikes_are_not_flagged(text):
    assert body_kinds(f"Hej!\n{text}\nMvh Karin") == []


def test_recent_timestamp_is_not_a_person_unless_context_says_so():
    # 191212121212 read as a timestamp: 1912-12-12 12:12, seen from a day soon after.
    soon_after = date(1913, 1, 1)
    assert scan("", "Loggen: 191212121212", today=soon_after) == []
    assert [f.category for f in scan("", "Pnr 191212121212", today=soon_after)] == ["personnummer"]
    # Long after, the same digits are a person.
    assert body_kinds("Loggen: 191212121212") == [("personnummer", 1)]


def test_ten_digits_starting_with_zero_may_be_a_phone_number():
    assert body_kinds("Mobil 0001042399") == []
    [held] = scan("", "Hon har 0001042399", today=TODAY)  # no phone word: held, not let through
    assert (held.category, 0.5 <= held.score < 0.8) == ("personnummer", True)
    assert [f.score >= 0.8 for f in scan("", "Hon har 000104-2399", today=TODAY)] == [True]
    assert [f.score >= 0.8 for f in scan("", "Pnr 0001042399", today=TODAY)] == [True]
    assert body_kinds("Mobil 0001042399, pnr 000104-2399") == [("personnummer", 1)]


def test_a_personnummer_after_a_ticket_word_is_held_not_silenced():
    [held] = scan("", "Ärendenummer: 19121212-1212", today=TODAY)
    assert (held.category, 0.5 <= held.score < 0.8) == ("personnummer", True)


def test_hidden_or_look_alike_characters_do_not_hide_a_number():
    assert body_kinds("１９１２１２１２－１２１２") == [("personnummer", 1)]  # full-width
    assert body_kinds("19121212\u200b-1212") == [("personnummer", 1)]  # zero-width space
    assert body_kinds("a\r\nb\r\n19121212-1212") == [("personnummer", 3)]  # CR LF counts once
    assert body_kinds("a\rb\r19121212-1212") == [("personnummer", 3)]


# --- HSA-ids ----------------------------------------------------------------------------------


def test_person_hsa_id_is_found_and_unit_hsa_id_is_not():
    body = "Enhet SE2321000131-E000000011111\nAnvändare SE2321000131-P000000245581"
    assert body_kinds(body) == [("hsa_id", 2)]


def test_person_hsa_suffixes_are_configurable():
    body = "SE2321000131-P000000245581 och SE2321000131-T000000000001"
    only_t = PersonalDataConfig(person_hsa_suffixes=(r"T\d+",))
    assert [f.category for f in scan("", body, today=TODAY, config=only_t)] == ["hsa_id"]
    none = PersonalDataConfig(person_hsa_suffixes=())
    assert scan("", body, today=TODAY, config=none) == []


# --- names ------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", [
    "Behörigheten gäller Karin Lindqvist.", "Vi behöver behörighet för Anna Engelbrektsson.",
    "användare: Per Nilsson", "ny användare Maria Svensson", "Ta bort behörighet för Erik Johansson.",
    "Behörigheten avser Anna-Karin Larsson.", "Gäller: Maria Eriksson", "Namn: Lars Andersson",
    "Det gäller vår nya undersköterska Sara Holm.", "Avsluta Johan Gustafsson i MittVaccin.",
])
def test_names_in_context_are_found(text):
    assert body_kinds(f"Hej!\n{text}\n\nMvh\nSofia Olsson", sender_name="Sofia Olsson") == [("name", 2)]


def test_names_listed_under_a_heading_are_found():
    body = "Hej!\nFöljande användare ska avslutas:\n- Karin Lindqvist\n- Per Nilsson\n\nMvh Eva"
    assert body_kinds(body) == [("name", 3), ("name", 4)]


def test_names_in_a_numbered_list_and_after_a_wrapped_line_are_found():
    body = "Hej! Följande ska ha behörighet:\n1. Karin Lindqvist, vaccinatör\n2. Lars Eriksson, admin"
    assert body_kinds(body) == [("name", 2), ("name", 3)]
    assert body_kinds("Vi behöver behörighet för\nKarin Lindqvist på Hemtjänst Öst.") == [("name", 2)]


def test_names_joined_by_och_and_commas_are_all_found():
    body = "Behörigheten gäller Karin Lindqvist och Per Nilsson, Maria Svensson samt Lars Eriksson."
    assert body_kinds(body) == [("name", 1)] * 4


def test_name_before_a_verb_is_found():
    assert body_kinds("Hej!\nAnna Engelbrektsson har slutat hos oss.") == [("name", 2)]
    assert body_kinds("Region Halland ska ha blanketten.\nHemtjänst Väst behöver hjälp.") == []


def test_name_in_subject_is_found():
    findings = scan("MittVaccin – Behörighet Anna Larsson", "", today=TODAY)
    assert [(f.category, f.location) for f in findings] == [("name", "subject")]


@pytest.mark.parametrize("text", [
    "Jag har pratat med Karin på supporten.", "Behörigheten gäller Hemtjänst Väst.",
    "Vi behöver behörighet för Kungsbacka kommun.", "Tack för hjälpen!", "Det gäller Anna på nattpatrullen.",
    "Användare: se bifogad blankett.", "Behörighet för Särö Äldreboende.",
])
def test_text_that_is_not_a_persons_name_is_not_flagged(text):
    assert body_kinds(f"Hej!\n{text}") == []


def test_sender_own_name_and_signature_are_not_flagged():
    body = ("Hej!\nBehörigheten gäller Eva Persson, alltså mig.\nSe bifogad blankett.\n\n"
            "Med vänlig hälsning\nEva Persson\nVerksamhetschef för Äldreomsorgen\nTel 0345-180 00\n"
            "eva.persson@hylte.se")
    assert body_kinds(body, sender_name="Eva Persson", sender_address="eva.persson@hylte.se") == []
    # The sender known only by address: the address's local part gives the name.
    assert body_kinds(body, sender_address="eva.persson@hylte.se") == []
    assert scan("Fråga från Eva Persson", "", sender_name="Persson Eva", today=TODAY) == []


def test_signature_block_ends_after_a_few_lines():
    body = "Mvh\nEva\n" + "\n" * 20 + "PS. Behörigheten gäller Karin Lindqvist."
    assert body_kinds(body) == [("name", 23)]


def test_forwarded_headers_are_skipped_but_the_forwarded_text_is_scanned():
    body = ("Hej, skickar vidare.\n\nMvh\nPer Nilsson\n\n-----Ursprungligt meddelande-----\n"
            "Från: Lena Karlsson <lena.karlsson@halmstad.se>\nSkickat: den 23 november 2026 15:30\n"
            "Till: Läkemedelssupporten\nÄmne: MittVaccin – Behörighet\n\n"
            "Hej! Behörigheten gäller Maria Svensson.\n\nMvh\nLena Karlsson")
    assert body_kinds(body, sender_name="Per Nilsson") == [("name", 12)]


@pytest.mark.parametrize("text", [
    "Behörigheten gäller Lindqvist, Karin.",  # surname first, with a comma
    "Lindqvist Karin (undersköterska) ska ha behörighet.",  # Outlook order, a role in brackets
    "Kan ni öppna kontot för karin lindqvist?",  # lower case
    "behörigheten gäller anna-karin svensson",
    "Ny användare: Per-Olof Ek",  # hyphenated first name, short surname
    "Behörigheten gäller Karin Ås.",  # a short surname Faker's list lacks
    "Vår nya medarbetare, Karin Lindqvist, ska ha behörighet.",  # apposition
    "Hon som slutade i fredags – Karin Lindqvist – ska avslutas.",  # between dashes
    "Det gäller karin.lindqvist@halmstad.se",  # someone else's work address
    "Avsluta kontot emma.persson@varberg.se, hon har slutat.",
])
def test_weak_name_shapes_are_found_at_reject_level(text):
    findings = scan(SUBJECT, f"Hej!\n{text}\n\nMvh\nSofia Olsson", sender_name="Sofia Olsson", today=TODAY)
    assert [(f.category, f.line) for f in findings] == [("name", 2)]
    assert findings[0].score >= 0.8


def test_names_answering_a_quoted_question_or_after_a_blank_line_are_found():
    assert body_kinds("> Vem gäller det?\nKarin Lindqvist\n\nMvh Eva") == [("name", 2)]
    assert body_kinds("> Vilka ska avslutas?\n\nKarin Lindqvist och Per Nilsson") == [("name", 3)] * 2
    body = "Följande användare har slutat:\n\nKarin Lindqvist\n\nPer Nilsson\n\nMvh\nEva"
    assert body_kinds(body) == [("name", 3), ("name", 5)]


def test_lower_case_name_made_of_ordinary_words_is_held_not_rejected():
    [held] = scan("", "ta bort per holm ur mittvaccin", today=TODAY)
    assert (held.category, 0.5 <= held.score < 0.8) == ("name", True)


def test_reversed_name_in_subject_is_found():
    findings = scan("MittVaccin – Behörighet Lindqvist, Karin", "", today=TODAY)
    assert [(f.category, f.location) for f in findings] == [("name", "subject")]


@pytest.mark.parametrize("text", [
    "Hej Karin!", "Hej Anna-Karin,", "hej karin!", "God morgon Eva Ek,", "Tack Karin Lindqvist för hjälpen igår!",
    "Blanketten är rosa och ligger i pärmen.", "Behörighet per enhet, inte per person.",
    "Vi beställer för maj och juni på en gång.", "Vi bor på landet mellan berg och dal.",
    "viktoria är namnet på vår nya gruppbostad.", "Behörigheten ska avslutas per automatik vid årsskiftet.",
    "Jag har satt anna.berg@halmstad.se på kopia.", "Svara gärna till min kollega lena.holm@hylte.se.",
    "Kontakta per.ek@varberg.se vid frågor.", "> Vem ska vi kontakta vid frågor?\nKarin Lindqvist, enhetschef",
    "> Vilken enhet gäller det?\nHemtjänst Väst", "Gäller Lund, Malmö och Helsingborg.",
    "Kontaktperson – Karin Lindqvist – nås på 035-13 10 00", "Behörighet för Rosa Huset (daglig verksamhet).",
    "Från: Lindqvist Karin <karin.lindqvist@halmstad.se>\nTill: Ek Per-Olof; Berg Anna\nKopia: maria.lund@halmstad.se",
    "Mvh\nLindqvist Karin (enhetschef)\nkarin.lindqvist@halmstad.se",
])
def test_name_shape_look_alikes_are_not_flagged(text):
    assert body_kinds(f"Hej!\n{text}", sender_name="Sofia Olsson") == []


def test_names_can_be_switched_off():
    config = PersonalDataConfig(detect_names=False)
    assert scan("", "Behörigheten gäller Karin Lindqvist.", today=TODAY, config=config) == []


# --- birth dates ------------------------------------------------------------------------------


@pytest.mark.parametrize("text", [
    "född 1987-05-21", "födelsedatum: 21/5 1987", "född den 21 maj 1987", "f. 1944-08-13", "född 19870521",
    "Födelsedatum 2000-02-29", "född 29/2-2000", "född 30 dec. 1979", "Född: 21.5.1987",
    "f 870521", "f. 21/5-87", "fdat 1987-05-21", "Födelsedatum: 870521", "DOB 1987-05-21", "born 21 May 1987",
    "Date of birth: May 21, 1987", "d.o.b. 24/4/1995",
])
def test_birth_dates_are_found(text):
    assert body_kinds(f"Användaren är\n{text}.") == [("birth_date", 2)]


@pytest.mark.parametrize("text", [
    "Födelsedatum står i blanketten.", "född 2001-02-29", "född 2027-01-01", "Startdatum 1987-05-21",
    "f.o.m. 2026-12-01", "Ordern skickades f 261101.", "Vi ringde f 2025-01-01.", "Ref 870521", "Sida f 12",
    "Fältet fdat ska fyllas i.",
])
def test_birth_date_look_alikes_are_not_flagged(text):
    assert body_kinds(text) == []


def test_birth_date_inside_a_personnummer_is_reported_once():
    assert body_kinds("född 870521-2382") == [("personnummer", 1)]


# --- scores and config ------------------------------------------------------------------------


def test_findings_below_the_hold_threshold_are_dropped():
    body = "Behörigheten gäller Jovana Nilsson."  # unknown first name: a hold, not a reject
    [finding] = scan("", body, today=TODAY)
    assert 0.5 <= finding.score < 0.8
    assert scan("", body, today=TODAY, config=PersonalDataConfig(hold_threshold=0.7)) == []


def test_config_from_mapping():
    config = PersonalDataConfig.from_mapping(
        {"reject_threshold": 0.9, "hold_threshold": 0.4, "person_hsa_suffixes": ["P\\w+", "T\\d+"],
         "detect_names": False})
    assert config == PersonalDataConfig(0.9, 0.4, ("P\\w+", "T\\d+"), False)
    assert PersonalDataConfig.from_mapping({}) == PersonalDataConfig()


@pytest.mark.parametrize(("data", "named"), [
    ({"reject_treshold": 0.9}, "reject_treshold"),
    ({"reject_threshold": 2}, "reject_threshold"),
    ({"hold_threshold": "high"}, "hold_threshold"),
    ({"person_hsa_suffixes": "P\\w+"}, "person_hsa_suffixes"),
    ({"person_hsa_suffixes": ["P(\\w+"]}, "person_hsa_suffixes"),
    ({"detect_names": "yes"}, "detect_names"),
    ({"hold_threshold": 0.9, "reject_threshold": 0.8}, "hold_threshold"),
])
def test_config_from_mapping_rejects_bad_settings_by_name(data, named):
    with pytest.raises(ValueError, match=named):
        PersonalDataConfig.from_mapping(data)


# --- describe ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("findings", "expected"), [
    ([Finding("personnummer", "body", 3, 0.95), Finding("name", "subject", None, 0.9)],
     "ett personnummer på rad 3 och ett namn i ämnesraden"),
    ([Finding("personnummer", "body", 2, 0.95), Finding("personnummer", "body", 5, 0.95)],
     "två personnummer (rad 2 och 5)"),
    ([Finding("hsa_id", "subject", None, 0.95), Finding("hsa_id", "body", 4, 0.95)],
     "två HSA-id för personer (ämnesraden och rad 4)"),
    ([Finding("birth_date", "body", 1, 0.85)] * 3, "tre födelsedatum på rad 1"),
    ([Finding("samordningsnummer", "body", n, 0.95) for n in range(1, 8)],
     "sju samordningsnummer (rad 1, 2, 3, 4, 5 m.fl.)"),
    ([], "inga personuppgifter"),
])
def test_describe(findings, expected):
    assert describe(findings) == expected


def test_every_category_has_swedish_wording():
    for category in CATEGORIES:
        assert describe([Finding(category, "body", 1, 0.9)]).endswith("på rad 1")


# --- values never leak ------------------------------------------------------------------------

_NAME_WORDS = re.compile(r"[A-ZÅÄÖ][a-zåäöé]+")


def _corpus() -> list[dict]:
    path = ROOT / "fixtures" / "personal_data" / "corpus.jsonl"
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


@pytest.mark.parametrize("record", [r for r in _corpus() if r["category"]], ids=lambda r: r["id"])
def test_findings_and_description_never_carry_the_value(record):
    findings = scan(record["text"], record["text"], today=TODAY)
    assert findings
    shown = repr(findings) + describe(findings)
    for run in re.findall(r"\d{3,}", record["text"]):
        assert run not in shown
    names = set(_NAME_WORDS.findall(record["text"])) - {"HSA"}
    assert not [w for w in names if re.search(rf"\b{w}\b", shown)]


# --- robustness -------------------------------------------------------------------------------


def _random_strings(n: int) -> list[str]:
    rng = random.Random(7)
    pool = "0123456789-+ \u00a0\u2013\n\r\t.,:/TPSEabcåäöKLAM@#>=_\x00\ufeff\u200b\ud800\uffff１"
    return ["".join(rng.choice(pool) for _ in range(rng.randint(0, 400))) for _ in range(n)]


@pytest.mark.parametrize("text", [
    "", " ", "\n" * 1000, "\x00" * 100, "\ud800\udfff", bytes(range(256)).decode("latin-1"),
    b"\xff\xfe\x00\x19\x12\x12".decode("utf-8", "surrogateescape"), "1" * 100_000, "a" * 100_000,
    "SE" + "1" * 50_000, "1." * 50_000, "gäller " * 20_000, "Anna Svensson " * 10_000, "a@" * 50_000,
    "användare:\n" + "- Anna Svensson\n" * 5_000, "född " * 20_000, "gäller karin lindqvist och " * 5_000,
    "gäller a.b.c.d@" * 5_000, "> Vem gäller det?\n\nKarin Lindqvist\n" * 3_000, "f 870521 f " * 5_000,
    "\u0130" * 1000 + " gäller Karin Lindqvist",
    *_random_strings(300),
])
def test_scan_never_raises_and_findings_are_well_formed(text):
    findings = scan(text, text, sender_name=text[:20], sender_address=text[:30], today=TODAY)
    body_lines = text.replace("\r\n", "\n").replace("\r", "\n").count("\n") + 1
    for f in findings:
        assert f.category in CATEGORIES
        assert 0 <= f.score <= 1
        assert (f.location, f.line is None) in (("subject", True), ("body", False))
        assert f.line is None or 1 <= f.line <= body_lines
    describe(findings)


def test_huge_body_with_many_numbers():
    # Before the budget every one of the 20,000 numbers was kept; now the first few are, the rest are
    # counted, and the scan stops early because the first lines already decide the verdict.
    body = "Rad med 19121212-1212 och Tel 070-123 45 67\n" * 20_000  # about 1 MB
    findings = scan("", body, today=TODAY)
    numbers = [f for f in findings if f.category == "personnummer"]
    assert len(numbers) == PersonalDataConfig().max_findings
    assert numbers[-1].more > 0
    assert findings[-1].category == UNSCANNED and findings[-1].score >= 0.8


def test_default_today_is_the_real_today():
    assert [f.category for f in scan("", "19121212-1212")] == ["personnummer"]


# --- the labelled corpus ----------------------------------------------------------------------


def _pd_corpus_module():
    spec = importlib.util.spec_from_file_location("pd_corpus", ROOT / "scripts" / "pd_corpus.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("pd_corpus", module)  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_corpus_meets_its_goals():
    pd_corpus = _pd_corpus_module()
    records = pd_corpus.load()
    assert sum(1 for r in records if r["category"]) >= 200
    assert sum(1 for r in records if not r["category"]) >= 200
    fig = pd_corpus.measure(records)
    for category in pd_corpus.IDENTITY:
        assert fig.positives[category] > 0
        assert fig.caught[category] == fig.positives[category], fig.misses
    assert fig.flagged_neg == 0, fig.fp_ids
    assert fig.caught["name"] >= 0.9 * fig.positives["name"]


def test_corpus_holds_no_identity_numbers_but_the_published_test_numbers():
    allowed = {n.replace("-", "")[2:] for n in [*TEST_PNR, TEST_SNR]}
    for record in _corpus():
        text = record["text"].replace("\u00a0", " ").replace("\u2013", "-").replace(" - ", "-")
        for m in re.finditer(r"(?<!\d)(\d{2})?(\d{6})[-+ ]?(\d{4})(?!\d)", text):
            for sep in ("", "-"):
                ident = parse_identity_number(f"{m[1] or ''}{m[2]}{sep}{m[3]}", TODAY)
                assert ident is None or m[2] + m[3] in allowed, record["id"]


@pytest.mark.parametrize("which", ["HOLDOUT", "HOLDOUT2"])
def test_held_out_corpus_identity_numbers_all_caught_and_no_false_alarm(which):
    """The held-out corpora were written blind to the detector. Identity numbers and look-alikes are a regression
    guard here; names and birth dates are only reported (scripts/pd_corpus.py), so nobody tunes on them."""
    import scripts.pd_corpus as pd

    fig = pd.measure(pd.load(getattr(pd, which)))
    IDENTITY = pd.IDENTITY
    for category in IDENTITY:
        assert fig.caught[category] == fig.positives[category], category
    assert fig.flagged_neg == 0, fig.fp_ids


# --- the three classes a blind corpus missed (issue 10.8) --------------------------------------
# Real-looking numbers here are only the five published test numbers of COMMON.md; every other digit
# string is checked below (test_new_cases_hold_no_identity_number_but_the_published_ones).

PUBLISHED = ["19121212-1212", "19870521-2382", "20000229-2381", "19440813-9089", "19571230-2842"]
INTRO = "Hej!\nVi behöver hjälp med behörigheten för den person som står i ärendet, det gäller nummer "


def _wraps(number: str) -> list[tuple[str, str]]:
    """(shape, text) for the ways a mail client splits ``number`` over a line break."""
    d8, serial = number.split("-")
    d6 = d8[2:]
    return [
        ("after the dash", f"{d8}-\n{serial}"),
        ("before the dash", f"{d8}\n-{serial}"),
        ("ten digits, after the dash", f"{d6}-\n{serial}"),
        ("at the space", f"{d8}\n{serial}"),  # written "19121212 1212", the space became the break
        ("flowed, trailing space", f"{d8}- \n{serial}"),
        ("inside the date", f"{d8[:5]}\n{d8[5:]}-{serial}"),  # a fixed-column wrap
        ("quoted-printable soft break", f"{d8[:6]}=\n{d8[6:]}-{serial}"),
        ("quoted reply", f"{d8}-\n> {serial}"),
        ("quoted twice", f"{d8}-\n> > {serial}"),
        ("spaced dash", f"{d8} -\n{serial}"),
        ("en dash", f"{d8}\u2013\n{serial}"),
        ("inside the serial", f"{d8}-{serial[:2]}\n{serial[2:]}"),
        ("indented next line", f"{d8}-\n    {serial}"),
        ("quoted without a space", f"{d8}-\n>>{serial}"),
    ]


def _quote(text: str, depth: int) -> str:
    return "\n".join("> " * depth + line for line in text.split("\n"))


@pytest.mark.parametrize(("number", "shape", "wrapped"),
                         [(n, shape, w) for n in PUBLISHED for shape, w in _wraps(n)])
def test_identity_number_wrapped_over_a_line_break_is_found(number, shape, wrapped):
    body = INTRO + wrapped + " i journalen.\n\nMvh\nEva"
    findings = scan(SUBJECT, body, today=TODAY)
    assert [(f.category, f.line) for f in findings] == [("personnummer", 2)], shape
    assert findings[0].score >= 0.8


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_wrapped_number_inside_a_quoted_reply_is_found_on_its_first_line(depth):
    body = "Svar nedan.\n\n" + _quote(INTRO + "19870521-\n2382 i journalen.", depth)
    assert body_kinds(body) == [("personnummer", 4)]


def test_wrapped_reserve_number_and_samordningsnummer_are_found():
    assert body_kinds(INTRO + "19121212-\nT123 i journalen.") == [("reservnummer", 2)]


def test_a_run_of_digits_cut_by_a_break_is_held_not_rejected():
    [held] = scan("", "Nummer 1987052\n12382 enligt listan.", today=TODAY)
    assert (held.category, held.line, 0.5 <= held.score < 0.8) == ("personnummer", 1, True)


WRAPPED_LOOK_ALIKES = [
    "Ring 070-123\n45 67 om det brådskar.",
    "Ordernummer: 19121212-\n1212",  # a ticket word: held, see below, never rejected
    "Nummer 19121212-\n1213 har fel kontrollsiffra.",
    "Antal: 12\n34 st",
    "Vi ses 2026-11-24\n14:30 på enheten.",
    "Ärenden:\n3000096\n3000097\n3000098",
    "Fakturanummer 870521-\n2382",
    "Bankgiro 5050-\n1055",
    "Kl. 08:00-\n12:00 är supporten öppen.",
    "Version 2.30.\n1 är installerad.",
    "Ring växeln 035-13 10\n00 eller mejla.",
    "Org.nr 870521-\n2382 (enskild firma)",
]


@pytest.mark.parametrize("text", WRAPPED_LOOK_ALIKES)
def test_wrapped_look_alikes_are_not_rejected(text):
    assert not [f for f in scan("", text, today=TODAY) if f.score >= 0.8]


# A reserve number given only in digits, named as one in the text. The digits are not a valid
# personnummer (regions number them their own way), so only the word tells.
RESERVE_VALUES = ["19121212-9999", "991212-0000", "99121212-1234", "20000229-0000", "19870521-0001",
                  "1912121299999", "9912120000", "19440813-9080", "19121212 0000", "87052100001"]


@pytest.mark.parametrize(("lead", "value"), [(lead, v) for lead in [
    "Patienten har reservnummer {}.",
    "Reservnr: {}",
    "reservnr {}",
    "Hen har fått ett reservnummer, {}, i journalen.",
    "Reservnumret för patienten är {}",
    "Reserv-nr {} enligt kansliet.",
    "T-nummer {}",
    "Tillfälligt personnummer: {}",
    "Reservnummer:\n{}",
    "> Reservnummer:\n> {}",
] for v in RESERVE_VALUES[:3]] + [("Reservnummer {}", v) for v in RESERVE_VALUES[3:]])
def test_reserve_number_named_as_one_is_found_whatever_its_digits(lead, value):
    text = lead.format(value)
    assert parse_identity_number(value.replace(" ", "-"), TODAY) is None  # not a valid personnummer
    findings = scan("", text, today=TODAY)
    assert [f.category for f in findings] == ["reservnummer"]
    assert findings[0].score >= 0.8
    assert findings[0].line == text[: text.index(value)].count("\n") + 1


def test_reserve_number_named_in_the_subject_is_found():
    findings = scan("MittVaccin – reservnr 99121212-1234", "", today=TODAY)
    assert [(f.category, f.location) for f in findings] == [("reservnummer", "subject")]


def test_a_valid_personnummer_named_a_reserve_number_is_still_one_finding():
    assert body_kinds("Reservnummer 19121212-1212") == [("personnummer", 1)]


RESERVE_LOOK_ALIKES = [
    "Reservnumret står i blanketten.",
    "Reservnummer saknas, ärende 1234567890 gäller något annat.",
    "Vi har inget reservnummer, ring 035-13 10 00.",
    "Reservnummer används för patienter utan personnummer.",
    "Rutinen för reservnummer uppdaterades 2026-11-24.",
    "Reservnummer: se bifogad blankett (version 2.30.1).",
    "Reservnummer ärende 1234567890",
    "Reservnummer, ordernr 9912120000",
    "Fältet reservnummer ska vara tomt; kundnr 9912120000.",
    "Reservnumret skapades 2026-11-24 14:30.",
    "reservnr 12 st har delats ut",
    "Reservnummer ABCD12345678",
    "Jag har ett tillfälligt nummer 0701234567 den här veckan.",
    "T-nr 0701234567",
]


@pytest.mark.parametrize("text", RESERVE_LOOK_ALIKES)
def test_reserve_word_without_a_reserve_number_is_not_flagged(text):
    assert body_kinds(text) == []


# A date and a time in a file name or a log line is a timestamp, not the personnummer of a child born
# that day. 19121212-1212 is also 1912-12-12 12:12, so seen from early 1913 it is a recent timestamp.
SOON_AFTER = [date(1912, 12, 13), date(1913, 3, 1), date(1915, 6, 30)]
TIMESTAMPS = [
    "Se bifogad skärmdump_19121212-1212.png",
    "skärmdump-19121212-1212.png",
    "Screenshot_19121212-1212.jpg",
    "IMG_19121212-1212.jpeg",
    "Filen heter export_191212121212.csv",
    "bild 19121212-1212.png bifogas",
    "backup-121212-1212.zip",
    "C:\\Loggar\\app_19121212-1212.log",
    "log 19121212-1212 ERROR inloggningen misslyckades",
    "19121212-1212 INFO användaren loggade in",
    "[19121212-1212] WARN session utgången",
    "Tidsstämpel: 19121212-1212",
    "Felet uppstod 19121212-1212, se loggen.",
    "1912-12-12 12:12:05 ERROR vid 19121212-1212",
    "Loggen: 19121212-1212-30 fel 500",
    "Loggen: 19121212-1212:30 fel 500",
    "Felet kom kl. 12.12, i loggen står 19121212-1212.",
    "> log 19121212-1212 ERROR kunde inte spara",
    "Skärmbild 191212 1212 bifogad",
    "Loggen: 191212121212",
]


@pytest.mark.parametrize(("text", "today"), [(t, d) for t in TIMESTAMPS for d in SOON_AFTER])
def test_date_and_time_in_a_file_name_or_log_line_is_not_a_personnummer(text, today):
    assert scan("", f"Hej!\n{text}\nMvh Eva", today=today) == []


CHILD_NUMBERS = [
    "Barnet 19121212-1212 ska vaccineras.",
    "pnr 19121212-1212",
    "Patient: 19121212-1212",
    "Det gäller 19121212-1212 (född i december).",
    "Pnr 191212121212 står i loggen",
    "Behörigheten gäller 121212-1212.",
    "Pnr19121212-1212",
    "Vårdnadshavare till pnr:121212-1212",
    "Barnet 19121212-1212 syns på bilden i bilagan.",
    "Gäller 19121212-1212, senast på fredag.",
    "Priset 12.50 kr gäller 19121212-1212.",
    "Version 2.30 av journalen visar 19121212-1212.",
]


@pytest.mark.parametrize("text", CHILD_NUMBERS)
def test_the_same_digits_as_a_person_are_still_found(text):
    # A child's personnummer written as such is not a timestamp, even soon after its birth.
    assert [f.category for f in scan("", text, today=date(1913, 3, 1))] == ["personnummer"]


def test_a_file_name_with_an_old_date_and_time_is_still_a_personnummer():
    # Timestamps in a mail are recent; a file named after a grown-up's personnummer is not one.
    assert body_kinds("Se bifogad blankett_19121212-1212.pdf") == [("personnummer", 1)]


NOT_IDENTITY_NUMBERS = [
    "skärmdump_20250102-0915.png", "log 20231130-0800 ERROR", "2026-03-01 23:59 fel i 20260301-2359",
    "IMG_20241224_101500.jpg", "Loggen 20251015-073012", "export-20260601-1200.csv",
]


@pytest.mark.parametrize("text", NOT_IDENTITY_NUMBERS)
def test_timestamps_that_are_no_identity_number_at_all_are_not_flagged(text):
    assert body_kinds(text) == []


def _digit_windows(text: str) -> set[str]:
    """Every 10-digit window of every run of digits in ``text`` (runs may be split by a separator,
    a line break, quote marks or a soft break), read as YYMMDDNNNN."""
    runs = re.findall(r"\d+(?:(?:[-+ \u00a0\u2013=]|\n(?:> )*)+\d+)*", text)
    windows = set()
    for run in runs:
        digits = re.sub(r"\D", "", run)
        windows |= {digits[i : i + 10] for i in range(len(digits) - 9)}
    return windows


def test_new_cases_hold_no_identity_number_but_the_published_ones():
    allowed = {n.replace("-", "")[2:] for n in PUBLISHED}
    texts = [w for n in PUBLISHED for _, w in _wraps(n)] + RESERVE_VALUES + TIMESTAMPS + WRAPPED_LOOK_ALIKES + \
        RESERVE_LOOK_ALIKES + CHILD_NUMBERS + NOT_IDENTITY_NUMBERS + ["1987052\n12382"]
    for text in texts:
        for window in _digit_windows(text):
            valid = any(parse_identity_number(f"{c}{window[:6]}-{window[6:]}", TODAY) for c in ("18", "19", "20"))
            assert not valid or window in allowed, text


# --- the budget (issue 10.3) ------------------------------------------------------------------


def test_findings_kept_are_capped_and_the_rest_counted():
    body = "".join(f"Rad {i}: 19121212-1212\n" for i in range(1, 51))
    findings = scan("", body, today=TODAY)
    assert len(findings) == 20
    assert [f.line for f in findings] == list(range(1, 21))
    assert findings[-1].more == 30
    assert describe(findings) == "50 personnummer (rad 1, 2, 3, 4, 5 m.fl.)"


def test_the_cap_is_per_category_and_level():
    config = PersonalDataConfig(max_findings=2)
    body = "19121212-1212\n" * 3 + "Hon har 0001042399\n" * 3 + "gäller Karin Lindqvist\n" * 3
    findings = scan("", body, today=TODAY, config=config)
    kinds = [(f.category, f.score >= 0.8, f.more) for f in findings]
    assert kinds == [("personnummer", True, 0), ("personnummer", True, 1), ("personnummer", False, 0),
                     ("personnummer", False, 1), ("name", True, 0), ("name", True, 1)]


def test_text_past_the_budget_is_held_for_a_handler():
    config = PersonalDataConfig(max_scan_chars=1_000, early_stop_chars=1_000)
    body = "Hej, en fråga om inloggningen.\n" * 100 + "Det gäller 19121212-1212.\n"
    findings = scan("", body, today=TODAY, config=config)
    assert [(f.category, f.line) for f in findings] == [(UNSCANNED, 33)]
    assert config.hold_threshold <= findings[0].score < config.reject_threshold
    assert describe(findings) == "text som inte granskades (från rad 33)"


def test_a_clear_finding_early_stops_the_scan_without_changing_the_verdict():
    config = PersonalDataConfig(early_stop_chars=500)
    body = "Det gäller 19121212-1212.\n" + "Mer text om ärendet.\n" * 100 + "Behörigheten gäller Karin Lindqvist.\n"
    full = scan("", body, today=TODAY)
    short = scan("", body, today=TODAY, config=config)
    assert [f.category for f in full] == ["personnummer", "name"]
    assert [f.category for f in short] == ["personnummer", UNSCANNED]
    assert all(f.score >= 0.8 for f in short)  # still rejected, for the same reason
    assert describe(short) == "ett personnummer på rad 1 och text som inte granskades (från rad 24)"


def test_uncertain_findings_do_not_stop_the_scan():
    config = PersonalDataConfig(early_stop_chars=500)
    body = "Hon har 0001042399.\n" + "Mer text om ärendet.\n" * 100 + "Det gäller 19121212-1212.\n"
    findings = scan("", body, today=TODAY, config=config)
    assert [(f.category, f.score >= 0.8) for f in findings] == [("personnummer", False), ("personnummer", True)]


@pytest.mark.parametrize("unit", ["19121212-1212\n", "Hon har 0001042399\n", "gäller Karin Lindqvist\n",
                                  "Ring 035-13 10 00 om ordern VMU3000096.\n", "19121212-\n1212\n",
                                  "reservnr 991212-0000\n", "log 20251102-0916 ERROR\n", "1\n"])
def test_a_huge_body_keeps_few_findings(unit):
    body = unit * (3_000_000 // len(unit))
    findings = scan("", body, today=TODAY)
    config = PersonalDataConfig()
    assert len(findings) <= config.max_findings + 1
    assert findings[-1].category == UNSCANNED  # either stopped early or past the budget
    describe(findings)


def test_config_budget_settings():
    config = PersonalDataConfig.from_mapping({"max_findings": 5, "max_scan_chars": 10_000, "early_stop_chars": 100})
    assert (config.max_findings, config.max_scan_chars, config.early_stop_chars) == (5, 10_000, 100)
    for bad in ({"max_findings": 0}, {"max_scan_chars": "1 MB"}, {"early_stop_chars": True}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            PersonalDataConfig.from_mapping(bad)


def test_unscanned_has_swedish_wording_in_the_subject_and_body():
    assert describe([Finding(UNSCANNED, "body", 40, 0.5)]) == "text som inte granskades (från rad 40)"
    assert describe([Finding(UNSCANNED, "subject", None, 0.5)]) == "text som inte granskades (ämnesraden)"


def test_describe_counts_findings_not_kept():
    found = [Finding("personnummer", "body", 1, 0.95), Finding("personnummer", "body", 1, 0.95, more=857_140)]
    assert describe(found) == "857\u00a0142 personnummer (rad 1 m.fl.)"


def test_a_huge_body_full_of_personnummer_is_rejected_with_few_findings_kept(routines, settings):
    from intake.pipeline import decide
    from tests.conftest import NOW
    from tests.mailmaker import make_mail

    raw = make_mail(subject="MittVaccin – användarstöd", body="Hej!\n" + "19121212-1212\n" * 100_000)
    decision = decide(raw, routines, settings=settings, now=NOW)
    assert decision.verdict == "rejected"
    assert decision.codes == ["body.personal_data"]
    assert len(decision.findings) <= settings.personal_data.max_findings + 1
    assert "personnummer (rad 2, 3, 4, 5, 6 m.fl.)" in decision.reasons[0].message
    assert "1212" not in decision.reasons[0].message + decision.reasons[0].detail


def test_config_file_defaults_are_the_guards_defaults():
    from intake.config import SCHEMA

    defaults = PersonalDataConfig()
    for key, (_kind, default) in SCHEMA["personal_data"].items():
        assert getattr(defaults, key) == (tuple(default) if isinstance(default, list) else default), key


# --- the package and its data -----------------------------------------------------------------


def test_word_lists_are_data_shipped_with_the_package():
    import tomllib

    package = ROOT / "rules" / "personal_data"
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["tool"]["setuptools"]["package-data"]["*"]
    data = [p for p in package.rglob("*") if p.is_file() and p.suffix != ".py" and "__pycache__" not in p.parts]
    assert len(data) >= 15
    for path in data:
        assert (path.parent / "__init__.py").exists(), path  # inside a package, so setuptools finds it
        assert any(path.match(pattern) for pattern in patterns), path


def test_word_list_format():
    from rules.personal_data.words_data import alternation, entries

    assert entries("pnr_context")[0] == "pnr"  # comments skipped, order kept
    assert len(entries("pnr_context")) == len(set(entries("pnr_context")))  # duplicates dropped
    rx = re.compile(rf"^(?:{alternation('triggers')})$")
    assert rx.match("avsluta \t behörigheten\nför")  # a space in an entry matches any white space
    assert not rx.match("avsluta-behörigheten-för")


# --- fast paths: they find exactly what the plain regexes find ---------------------------------


def _fuzz_texts(pieces: list[str], n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    seps = [" ", "  ", "\t", "\u00a0", "\n", "\n\n", ".", ",", ":", "?", "(", ")", "-", "–", "_", "x", "Ä", "\r\n",
            " \t\n", "> ", ": \t", "? ", "ang.", "@"]
    return ["".join(rng.choice(pieces) + rng.choice(seps) for _ in range(rng.randint(0, 30))) for _ in range(n)]


@pytest.mark.parametrize("text", [
    "", "för", "för Karin", "Gäller Karin Lindqvist", "xför för_ för1 för", "ang.för Karin Lindqvist",
    "ang. för", "ang.ang.för", "gäller,för\nför(för)för", "ta  bort\nta\tbort", "avsluta behörigheten för Per",
    "nyanställd nyanställda användaren användare", "för", "äför åt ååt", "behörighet\u00a0till",
])
def test_trigger_spans_are_those_of_the_plain_trigger_regex(text):
    from rules.personal_data.names import _TRIGGER_LOWER, _trigger_spans

    lower = text.lower()
    assert _trigger_spans(lower) == [m.span() for m in _TRIGGER_LOWER.finditer(lower)]


def test_trigger_spans_match_the_plain_regex_on_random_text():
    from rules.personal_data.names import _TRIGGER_LOWER, _trigger_spans
    from rules.personal_data.words_data import entries

    texts = _fuzz_texts([*entries("triggers"), "karin", "Lindqvist", "en", "x", "ska"], 400, seed=3)
    assert sum(bool(_TRIGGER_LOWER.search(t.lower())) for t in texts) > 300  # the texts hold triggers
    for text in texts:
        lower = text.lower()
        assert _trigger_spans(lower) == [m.span() for m in _TRIGGER_LOWER.finditer(lower)]


@pytest.mark.parametrize("text", [
    "", ":", "?", "a:", "a: \t", "a:\r\nb", "a:\u00a0", "a:: ", "a?:", "a: b", "a: b?", "\n:\n\n?", "x:\n\ny?\t\n",
    "Vem gäller det?\nKarin", "Följande: \t\n- Karin\n", "tid 14:30 idag:", "a:\n", ":::\n???",
])
def test_list_heads_are_those_of_the_plain_regex(text):
    from rules.personal_data.names import _LIST_HEAD, _list_heads

    assert _list_heads(text) == [m.span() for m in _LIST_HEAD.finditer(text)]


def test_list_heads_match_the_plain_regex_on_random_text():
    from rules.personal_data.names import _LIST_HEAD, _list_heads

    texts = _fuzz_texts(["Följande", "Vem gäller det", "a", ":", "?", " ", "\t"], 400, seed=4)
    assert sum(bool(_LIST_HEAD.search(t)) for t in texts) > 150  # the texts hold headings
    for text in texts:
        assert _list_heads(text) == [m.span() for m in _LIST_HEAD.finditer(text)]


def test_has_digit_is_what_the_regex_digit_class_matches():
    from rules.personal_data.text import has_digit

    digits = [chr(c) for c in range(0x110000) if chr(c).isdecimal()]
    assert len(digits) > 600 and all(re.fullmatch(r"\d", d) for d in digits)
    for d in digits:  # alone, and among non-Latin-1 text that is written as escapes
        assert has_digit(d) and has_digit(f"Född – ”{d}” åäö"), hex(ord(d))
    for c in range(0x3000):
        assert has_digit(f"å{chr(c)}–") == bool(re.search(r"\d", chr(c))), hex(c)
    for text in ["", "Hej", "Hej – ”åäö” \ud800 😀", "å\\uabcd – ", "å\\U0001d7ce – x", "ABC\\u0660"]:
        assert has_digit(text) == bool(re.search(r"\d", text)), text


def test_birth_date_in_other_digits_is_still_found():
    # No ASCII digit: the detectors that need digits must still run.
    assert body_kinds("Hon är född \u0661\u0669\u0668\u0667-\u0660\u0665-\u0662\u0661.") == [("birth_date", 1)]


@pytest.mark.parametrize(("body", "line"), [
    ("ang.för Karin Lindqvist", 1),  # a trigger ending in "." right before another
    ("Gäller Karin Lindqvist", 1),  # a trigger at the very start
    ("Hej\nkarin lindqvist ska ha behörighet", 2),  # lower case before a verb
    ("Lindqvist Karin (usk) ska ha behörighet", 1),  # a role between name and verb
    ("Hej\nkarin lindqvist, usk, ska ha behörighet", 2),
    ("Den som slutat – Karin Lindqvist – ska avslutas", 1),
    ("avsluta kontot för karin.lindqvist@example.test", 1),
    ("Vem gäller det?  \t\nKarin Lindqvist\n", 2),  # a heading ending in spaces and a tab
    ("Följande:\r\nKarin Lindqvist", 2),
])
def test_names_on_the_edges_of_the_fast_paths_are_found(body, line):
    assert body_kinds(body) == [("name", line)]


@pytest.mark.parametrize("body", [
    "Hej\nkarin berg. ska ha behörighet", "Hej\nkarin lindqvist\n ska ha", "ska ha behörighet", " ska",
    "Hej\nkarin lindqvist: ska ha", "Hej\nKarin Lindqvist. Ska ha",
])
def test_look_alikes_on_the_edges_of_the_fast_paths_are_not_flagged(body):
    assert body_kinds(body) == []


def test_name_or_lower_case_pair_after_a_trigger_is_what_the_two_plain_regexes_find():
    from rules.personal_data.names import _LOWER_AFTER_TRIGGER, _NAME_AFTER_TRIGGER, _NAME_OR_LOWER_AFTER_TRIGGER

    def plain(text: str, pos: int) -> tuple | None:
        if (m := _NAME_AFTER_TRIGGER.match(text, pos)) is not None:
            group = "name" if m.group("name") is not None else "rev"
            return group, m.span(group)
        if (m := _LOWER_AFTER_TRIGGER.match(text, pos)) is not None:
            return "lower", m.span("name")
        return None

    pieces = ["Karin", "Lindqvist", "karin", "lindqvist", "Lindqvist,", "ny", "Vår nya", "kontot för", "den", "MINA",
              "av", "von", "Anna-Karin", "ÅSA", ":", "-", "–", "(", ">", "\n", "\n>", ",", " \u00a0\t"]
    texts = _fuzz_texts(pieces, 300, seed=5)
    found = 0
    for text in texts:
        for pos in range(len(text) + 1):
            fast = _NAME_OR_LOWER_AFTER_TRIGGER.match(text, pos)
            if fast is not None:
                group = next(g for g in ("name", "rev", "lower") if fast.group(g) is not None)
                fast = group, fast.span(group)
                found += 1
            assert fast == plain(text, pos), (text, pos)
    assert found > 1000
