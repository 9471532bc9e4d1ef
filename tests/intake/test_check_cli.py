"""`intake check`: the dry run, and the JSON contract tooling relies on."""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner

from intake.cli import main
from tests.conftest import FIXTURES

DEMO = FIXTURES.parent / "intake" / "demo_mail"


def check(*args: str):
    return CliRunner().invoke(main, ["check", *args])


def test_json_contract_for_an_accepted_form():
    result = check(str(DEMO / "01-behorighet-ok.eml"), "--json")
    assert result.exit_code == 0
    out = json.loads(result.output)
    assert {"verdict", "routine", "request_type", "queue", "reasons", "reply", "form"} <= set(out)
    assert (out["verdict"], out["routine"], out["request_type"], out["queue"]) == (
        "accepted", "mittvaccin", "behorighet", "behorighet")
    assert out["reasons"] == []
    assert set(out["reply"]) == {"kind", "to", "subject", "body"}
    assert out["reply"]["kind"] == "ack"
    assert len(out["form"]["users"]) == 5


def test_json_contract_for_a_rejection():
    out = json.loads(check(str(DEMO / "08-fel-blankettyp.eml"), "--json").output)
    assert out["verdict"] == "rejected"
    assert out["request_type"] == "avslut"
    assert [r["code"] for r in out["reasons"]] == ["form.type_mismatch"]
    assert all(set(r) == {"code", "message", "detail"} for r in out["reasons"])
    assert out["reply"]["kind"] == "rejection"
    assert "MittVaccin – Behörighet avslut" in out["reply"]["body"]


def test_personal_data_is_named_by_kind_and_line_never_by_value():
    out = json.loads(check(str(DEMO / "05-personnummer-i-texten.eml"), "--json").output)
    [reason] = out["reasons"]
    assert reason["code"] == "body.personal_data"
    assert "personnummer" in reason["message"] and "rad 2" in reason["message"]
    for text in (reason["message"], reason["detail"], out["reply"]["body"], out["reply"]["subject"]):
        assert "19121212" not in text and "1212-1212" not in text and "121212" not in text


def test_exit_status_is_zero_whatever_the_verdict():
    for path in sorted(DEMO.glob("*.eml")):
        assert check(str(path)).exit_code == 0, path


def test_unreadable_file_is_an_error(tmp_path):
    result = check(str(tmp_path / "missing.eml"))
    assert result.exit_code != 0
    assert "cannot read" in result.output


def test_check_touches_nothing(tmp_path):
    conf = tmp_path / "intake.toml"
    conf.write_text('[store]\npath = "q.db"\n[mailbox]\npath = "box"\n')
    result = CliRunner().invoke(main, ["-c", str(conf), "check", str(DEMO / "03-anvandarstod.eml")])
    assert result.exit_code == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["intake.toml"]


# -- intake packs check / list ---------------------------------------------------------------------------

PACKS = FIXTURES.parent / "tests" / "packs"


def test_packs_check_ok():
    for folder in (PACKS / "chaintest", FIXTURES.parent / "rules" / "packs" / "mittvaccin"):
        result = CliRunner().invoke(main, ["packs", "check", str(folder)])
        assert (result.exit_code, result.output) == (0, "ok\n")


@pytest.mark.parametrize(("old", "new", "message"), [
    ('check = "subject"', 'check = "subjekt"',
     "chain[4].check: unknown check 'subjekt' (known: authorised_orderer, auto_reply, followup, form, personal_data, "
     "sender_domain, sender_missing, subject)"),
    ("params = { reject_threshold = 0.99 }", "params = { reject = 0.99 }",
     "chain[2].params.reject: unknown parameter of check personal_data (it takes: reject_threshold, "
     "hold_threshold)"),
    ('check = "sender_domain"\naction = "hold"', 'check = "sender_domain"\naction = "bounce"',
     "chain[5].action: 'bounce' is not an action (use reject, hold, ignore, stop)"),
    ('ref_prefix = "KT"', 'ref_prefix = "kt"', "ref_prefix: must be 1-5 upper-case letters"),
])
def test_packs_check_names_file_and_key(tmp_path, old, new, message):
    folder = tmp_path / "chaintest"
    shutil.copytree(PACKS / "chaintest", folder)
    text = (folder / "pack.toml").read_text("utf-8")
    assert old in text
    (folder / "pack.toml").write_text(text.replace(old, new), "utf-8")
    result = CliRunner().invoke(main, ["packs", "check", str(folder)])
    assert result.exit_code == 1
    assert result.output == f"Error: {folder / 'pack.toml'}: {message}\n"


def test_packs_check_a_folder_without_a_pack(tmp_path):
    result = CliRunner().invoke(main, ["packs", "check", str(tmp_path)])
    assert result.exit_code == 1
    assert result.output == f"Error: {tmp_path / 'pack.toml'}: cannot read (No such file or directory)\n"


def test_packs_list_marks_enabled_and_default(tmp_path):
    conf = tmp_path / "intake.toml"
    conf.write_text(f'[routines]\nenabled = ["mittvaccin", "chaintest"]\nextra_dirs = ["{PACKS}"]\n'
                    '[mailbox]\ndefault_routine = "chaintest"\n')
    result = CliRunner().invoke(main, ["-c", str(conf), "packs", "list"])
    assert result.exit_code == 0
    lines = {line.split()[0]: line for line in result.output.splitlines()}
    assert "[enabled, default]" in lines["chaintest"] and "Kedjetest – Testregionen" in lines["chaintest"]
    assert "[enabled]" in lines["mittvaccin"]


def test_check_with_two_routines_answers_in_the_default_routines_name(tmp_path):
    conf = tmp_path / "intake.toml"
    conf.write_text(f'[routines]\nenabled = ["mittvaccin", "chaintest"]\nextra_dirs = ["{PACKS}"]\n'
                    '[mailbox]\ndefault_routine = "chaintest"\n')
    result = CliRunner().invoke(main, ["-c", str(conf), "check", str(DEMO / "06-okant-amne.eml"), "--json"])
    out = json.loads(result.output)
    assert out["verdict"] == "rejected" and [r["code"] for r in out["reasons"]] == ["subject.unknown"]
    assert "Kedjetestsupporten" in out["reply"]["body"]
    assert "Kedjetest – fråga" in out["reply"]["body"] and "MittVaccin – Behörighet avslut" in out["reply"]["body"]


def test_check_shows_which_checks_hit():
    result = check(str(DEMO / "06-okant-amne.eml"))
    [line] = [x for x in result.output.splitlines() if x.startswith("checks:")]
    assert line.split(None, 1)[1] == ("auto_reply miss, sender_missing miss, personal_data miss, followup miss, "
                                      "sender_domain miss, subject reject, form miss")


def test_packs_list_shows_a_broken_pack_without_failing(tmp_path):
    (tmp_path / "packs" / "trasig").mkdir(parents=True)
    (tmp_path / "packs" / "trasig" / "pack.toml").write_text('id = "trasig"\n')
    conf = tmp_path / "intake.toml"
    conf.write_text('[routines]\nextra_dirs = ["packs"]\n')
    result = CliRunner().invoke(main, ["-c", str(conf), "packs", "list"])
    assert result.exit_code == 0
    lines = {line.split()[0]: line for line in result.output.splitlines()}
    assert "(broken: " in lines["trasig"] and "ref_prefix: missing" in lines["trasig"]
    assert "[enabled, default]" in lines["mittvaccin"]
