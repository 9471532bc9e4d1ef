"""`intake check`: the dry run, and the JSON contract tooling relies on."""

from __future__ import annotations

import json

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
