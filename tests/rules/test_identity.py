from datetime import date

import pytest

from rules.identity import is_hsa_id, luhn_ok, parse_identity_number

TODAY = date(2026, 11, 24)


@pytest.mark.parametrize(
    "text, kind, normalised",
    [
        ("19121212-1212", "personnummer", "19121212-1212"),
        ("191212121212", "personnummer", "19121212-1212"),
        ("19121212+1212", "personnummer", "19121212-1212"),
        ("19121212 1212", "personnummer", "19121212-1212"),
        ("19121212\u20131212", "personnummer", "19121212-1212"),
        ("19121212\u00a01212", "personnummer", "19121212-1212"),
        ("121212-1212", "personnummer", "20121212-1212"),
        ("121212+1212", "personnummer", "19121212-1212"),  # "+": 100 years or older
        ("8705212382", "personnummer", "19870521-2382"),
        ("20000229-2381", "personnummer", "20000229-2381"),  # leap day
        ("701063-2391", "samordningsnummer", "19701063-2391"),
        ("197010632391", "samordningsnummer", "19701063-2391"),
    ],
)
def test_valid_numbers_in_every_written_form(text, kind, normalised):
    ident = parse_identity_number(text, TODAY)
    assert ident is not None
    assert (ident.kind, ident.normalised) == (kind, normalised)


@pytest.mark.parametrize(
    "text",
    [
        "19121212-1213",  # check digit
        "19871332-2382",  # no 13th month
        "20010229-2381",  # no 29 February in 2001
        "20501212-1212",  # in the future
        "17121212-1212",  # no such century here
        "1912121-21212",  # separator in the wrong place
        "19121212--1212",
        "",
        "abc",
    ],
)
def test_invalid_numbers(text):
    assert parse_identity_number(text, TODAY) is None


def test_luhn():
    assert luhn_ok("1212121212") and not luhn_ok("1212121213")


@pytest.mark.parametrize("text, ok", [("SE2321000131-P000000245581", True), ("SE2321000131-E000000011111", True),
                                      ("SE232100013-P1", False), ("2321000131-P1", False)])
def test_hsa_id_shape(text, ok):
    assert is_hsa_id(text) is ok
