"""The pure half of approvals: reading an answer, the reference format, authentication results."""

from __future__ import annotations

import pytest

from rules.approval import authenticated_by, change_request, read_answer, token_in
from rules.subject import match_subject


@pytest.mark.parametrize(("body", "kind", "reason"), [
    ("Godkänn\n\n> Attest begärs", "approve", ""),
    ("godkänt.\n", "approve", ""),
    ("  GODKÄNN!\nMvh Ada", "approve", ""),
    ("Avslå – personen har slutat\n", "reject", "personen har slutat"),
    ("Avslå: fel enhet", "reject", "fel enhet"),
    ("Avslå\nfel enhet", "no_reason", ""),
    ("Avslår.", "no_reason", ""),
    ("Godkänn inte", "unclear", ""),
    ("Hej, vad gäller detta?", "unclear", ""),
    ("", "unclear", ""),
])
def test_the_first_line_is_the_answer(body, kind, reason):
    answer = read_answer(body)
    assert (answer.kind, answer.reason) == (kind, reason)


def test_change_request_and_token():
    assert change_request("Byt attestant: Nils.Ny@vard.example.test\n> ...") == "nils.ny@vard.example.test"
    assert change_request("Byt attestant nils@vard.example.test.") == "nils@vard.example.test"
    assert change_request("Byt ut attestanten") is None
    assert token_in("SV: Attest [VMU3000001] [ATTEST-0123456789abcdef0123456789abcdef]") == "0123456789abcdef" * 2
    assert token_in("SV: Attest [VMU3000001]") is None


def test_authentication_results_count_only_a_pass_that_is_aligned():
    sender = "ada@vard.example.test"
    assert authenticated_by({"authentication-results": ["mx.example; dmarc=pass header.from=vard.example.test"]},
                            sender) == ["mx.example"]
    assert authenticated_by({"authentication-results": ["mx.example; dkim=pass header.d=other.example"]}, sender) == []
    assert authenticated_by({"authentication-results": ["mx.example; dkim=pass header.d=vard.example.test"]},
                            sender) == ["mx.example"]
    assert authenticated_by({"authentication-results": ["mx.example; dmarc=fail; spf=pass"]}, sender) == []


def test_numbered_references_are_found_in_brackets_only():
    assert match_subject("SV: Attesterad [VMU3000001]", []).ticket_ref == "VMU3000001"
    assert match_subject("SV: Gäller SE2321000131-E000000000123", []).ticket_ref is None
    assert match_subject("SV: [MV-2026-0001]", []).ticket_ref == "MV-2026-0001"


def test_a_pack_reference_format_is_checked_when_it_loads(tmp_path):
    import shutil

    from rules.packs import PackError, load_pack

    src = __import__("rules.packs", fromlist=["builtin_pack_dir"]).builtin_pack_dir() / "vmu"
    folder = tmp_path / "vmu"
    shutil.copytree(src, folder)
    text = (folder / "pack.toml").read_text("utf-8")
    assert load_pack(folder).ref_pattern() == "VMUNNNNNNN"
    (folder / "pack.toml").write_text(text.replace('ref_format = "VMU{n}"', 'ref_format = "VX{n}"'), "utf-8")
    with pytest.raises(PackError, match="ref_format"):
        load_pack(folder)
    (folder / "pack.toml").write_text(text.replace("ref_start = 3000001", "ref_start = 12"), "utf-8")
    with pytest.raises(PackError, match="ref_start"):
        load_pack(folder)
