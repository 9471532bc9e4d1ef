"""The check chain: each built-in check on real mail bytes, the chain's actions, and load-time refusals."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from parsers.mail import parse_mail
from rules.checks import (
    DEFAULT_CHAIN,
    ROW_KEYS,
    Facts,
    FormJudgement,
    Hit,
    default_chain,
    get_check,
    parse_chain,
    registry,
    run_chain,
)
from rules.packs import PackError, load_pack, load_packs
from rules.reasons import reason
from rules.subject import match_subject
from tests.mailmaker import make_mail

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
PACKS = Path(__file__).resolve().parent.parent / "packs"


@pytest.fixture(scope="module")
def mv():
    return load_packs(["mittvaccin"])[0]


def facts_for(raw: bytes, routine, **kw) -> Facts:
    mail = parse_mail(raw)
    match = match_subject(mail.subject, routine.conventions())
    rtype = routine.request_type(match.request_type) if match.request_type else None
    return Facts(raw=raw, mail=mail, routines=(routine,), default=routine, routine=routine if rtype else None,
                 request_type=rtype, match=match, now=NOW, **kw)


def run(name: str, facts: Facts, **params) -> list[Hit]:
    return get_check(name).run(facts, params)


def codes(hits: list[Hit]) -> list[tuple[str | None, bool]]:
    return [(h.reason.code if h.reason else None, h.uncertain) for h in hits]


# -- each check --------------------------------------------------------------------------------------


def test_auto_reply_hits_an_out_of_office_and_names_bounced_mail(mv):
    ooo = make_mail(headers={"Auto-Submitted": "auto-replied"})
    assert codes(run("auto_reply", facts_for(ooo, mv))) == [("mail.auto_submitted", False)]
    bounce = make_mail(sender="MAILER-DAEMON@halmstad.example.test",
                       body="Your message <abc.1@region.example.test> could not be delivered.", message_id=None)
    [hit] = run("auto_reply", facts_for(bounce, mv))
    assert hit.reason.code == "mail.bounce" and hit.data == ("<abc.1@region.example.test>",)
    assert run("auto_reply", facts_for(make_mail(), mv)) == []


def test_auto_reply_hits_our_own_address(mv):
    own = make_mail(sender="mittvaccin@region.example.test")
    facts = facts_for(own, mv, own_addresses=frozenset({"mittvaccin@region.example.test"}))
    assert codes(run("auto_reply", facts)) == [("mail.own_address", False)]


def test_sender_missing(mv):
    assert codes(run("sender_missing", facts_for(make_mail(sender=None), mv))) == [("sender.missing", False)]
    assert run("sender_missing", facts_for(make_mail(), mv)) == []


def test_personal_data_clear_and_uncertain(mv):
    clear = facts_for(make_mail(body="Hej!\nAnvändaren 19121212-1212 kommer inte in.\nEva"), mv)
    assert codes(run("personal_data", clear)) == [("body.personal_data", False)]
    assert clear.findings_seen and "19121212" not in run("personal_data", clear)[0].reason.message
    unsure = facts_for(make_mail(body="Hej!\nOrder 20000229-2381 gäller inloggningen.\nEva"), mv)
    assert codes(run("personal_data", unsure)) == [("body.possible_personal_data", True)]
    in_subject = facts_for(make_mail(subject="MittVaccin – felsökning 19121212-1212"), mv)
    assert ("subject.personal_data", False) in codes(run("personal_data", in_subject))
    assert run("personal_data", facts_for(make_mail(), mv)) == []


def test_personal_data_thresholds_are_parameters(mv):
    clear = facts_for(make_mail(body="Hej!\nAnvändaren 19121212-1212 kommer inte in.\nEva"), mv)
    # A personnummer scores 0.95: with a stricter threshold for "clear" it is only uncertain.
    assert codes(run("personal_data", clear, reject_threshold=0.99)) == [("body.possible_personal_data", True)]
    assert run("personal_data", clear, reject_threshold=0.99, hold_threshold=0.99) == []


def _lookup(ticket):
    calls = []

    def lookup(ref, ids):
        calls.append((ref, ids))
        return ticket
    return lookup, calls


def test_followup_joins_only_for_the_requester_or_a_trusted_domain(mv):
    raw = make_mail(subject="SV: MittVaccin – användarstöd [MV-2026-0001]")
    ticket = {"ref": "MV-2026-0001", "requester": "eva.berg@halmstad.example.test", "routine": "mittvaccin"}
    lookup, calls = _lookup(ticket)
    [hit] = run("followup", facts_for(raw, mv, followup_lookup=lookup))
    assert hit.data == ticket and hit.reason is None and calls[0][0] == "MV-2026-0001"
    stranger = make_mail(subject="SV: MittVaccin – användarstöd [MV-2026-0001]", sender="x@annan.example.test")
    assert run("followup", facts_for(stranger, mv, followup_lookup=lookup)) == []
    trusted = facts_for(stranger, mv, followup_lookup=lookup, trusted_domains=frozenset({"annan.example.test"}))
    assert run("followup", trusted) != []
    assert run("followup", facts_for(stranger, mv, followup_lookup=lookup), trusted_domains=["annan.example.test"])


def test_followup_asks_nothing_of_a_mail_that_refers_to_no_ticket(mv):
    lookup, calls = _lookup(None)
    assert run("followup", facts_for(make_mail(), mv, followup_lookup=lookup)) == []
    assert calls == []


def test_sender_domain_from_settings_or_params(mv):
    facts = facts_for(make_mail(), mv, allowed_domains=frozenset({"kommun.example.test"}))
    assert codes(run("sender_domain", facts)) == [("sender.not_allowed", False)]
    assert run("sender_domain", facts, domains=["halmstad.example.test"]) == []
    assert run("sender_domain", facts_for(make_mail(), mv)) == []  # no list: every domain passes


def test_subject(mv):
    assert codes(run("subject", facts_for(make_mail(subject="Hej"), mv))) == [("subject.unknown", False)]
    assert codes(run("subject", facts_for(make_mail(subject=""), mv))) == [("subject.missing", False)]
    assert run("subject", facts_for(make_mail(), mv)) == []


def test_form_is_parsed_only_when_a_check_asks_and_only_once(mv):
    calls = []

    def judge():
        calls.append(1)
        return FormJudgement(None, None, (reason("attachment.missing", form_name="blanketten"),))

    facts = facts_for(make_mail(subject="MittVaccin – Behörighet"), mv, form_judge=judge)
    assert facts.form_judged is None and calls == []
    assert codes(run("form", facts)) == [("attachment.missing", False)]
    run("form", facts)
    assert calls == [1]
    support = facts_for(make_mail(), mv, form_judge=judge)  # a request type without a form
    assert run("form", support) == [] and calls == [1]


# -- the chain ---------------------------------------------------------------------------------------


def test_default_chain_is_todays_order():
    assert [(r.check.name, r.action) for r in default_chain()] == list(DEFAULT_CHAIN)
    assert [name for name, _ in DEFAULT_CHAIN] == [
        "auto_reply", "sender_missing", "personal_data", "followup", "sender_domain", "subject", "form"]


def test_chain_stops_at_ignore_and_never_parses_the_form(mv):
    def judge():
        raise AssertionError("the form must not be parsed")

    facts = facts_for(make_mail(subject="MittVaccin – Behörighet", headers={"Auto-Submitted": "auto-replied"}),
                      mv, form_judge=judge)
    result = run_chain(default_chain(), facts)
    assert result.verdict == "ignored" and [r.code for r in result.reasons] == ["mail.auto_submitted"]
    assert result.trail == [("auto_reply", "ignore")]


def test_subject_reason_leads_and_every_problem_is_listed(mv):
    raw = make_mail(subject="Hej", body="Hej!\nAnvändaren 19121212-1212 kommer inte in.\nEva")
    facts = facts_for(raw, mv, allowed_domains=frozenset({"kommun.example.test"}))
    result = run_chain(default_chain(), facts)
    assert result.verdict == "rejected"
    assert [r.code for r in result.reasons] == ["subject.unknown", "body.personal_data", "sender.not_allowed"]


def test_hold_action_and_stop_action(mv):
    raw = make_mail(subject="Hej")
    held = run_chain(parse_chain([{"check": "subject", "action": "hold"}]), facts_for(raw, mv))
    assert held.verdict == "held" and [r.code for r in held.reasons] == ["subject.unknown"]
    chain = parse_chain([{"check": "subject", "action": "stop"}, {"check": "sender_domain", "action": "reject"}])
    stopped = run_chain(chain, facts_for(raw, mv, allowed_domains=frozenset({"kommun.example.test"})))
    assert [r.code for r in stopped.reasons] == ["subject.unknown"]
    assert stopped.trail == [("subject", "stop")]


def test_join_only_when_nothing_rejected(mv):
    ticket = {"ref": "MV-2026-0001", "requester": "eva.berg@halmstad.example.test", "routine": "mittvaccin"}
    lookup, _ = _lookup(ticket)
    ok = facts_for(make_mail(subject="SV: [MV-2026-0001]"), mv, followup_lookup=lookup)
    assert run_chain(default_chain(), ok).joined == ticket
    pd = facts_for(make_mail(subject="SV: [MV-2026-0001]", body="Hej!\n19121212-1212\nEva"), mv,
                   followup_lookup=lookup)
    result = run_chain(default_chain(), pd)
    assert result.joined is None and result.verdict == "rejected"


def test_overrides_apply_to_every_code_once(mv):
    overrides = {"sender.not_allowed": "Fel domän.", "subject.unknown": "Fel ämne."}
    facts = facts_for(make_mail(subject="Hej"), mv, allowed_domains=frozenset({"kommun.example.test"}))
    result = run_chain(default_chain(), facts, overrides)
    assert [r.message for r in result.reasons] == ["Fel ämne.", "Fel domän."]


def test_override_keeps_the_reasons_placeholders(mv):
    facts = facts_for(make_mail(body="Hej!\nAnvändaren 19121212-1212 kommer inte in.\nEva"), mv)
    result = run_chain(default_chain(), facts, {"body.personal_data": "Ta bort {what}."})
    assert result.reasons[0].message == "Ta bort ett personnummer på rad 2."


def test_every_check_is_documented_and_well_formed():
    for name, check in registry().items():
        assert check.name == name and check.description.endswith(".")
        assert set(check.actions) <= {"reject", "hold", "ignore", "join", "stop"}


# -- load-time refusals ------------------------------------------------------------------------------


def _pack_with_chain(tmp_path: Path, chain_toml: str) -> Path:
    folder = tmp_path / "chaintest"
    shutil.copytree(PACKS / "chaintest", folder)
    text = (folder / "pack.toml").read_text("utf-8")
    text = text[: text.index("[[chain]]")]
    text = text + chain_toml if chain_toml.startswith("[") else chain_toml + text  # a bare key goes on top
    (folder / "pack.toml").write_text(text, "utf-8")
    return folder


@pytest.mark.parametrize(("chain", "message"), [
    ('[[chain]]\ncheck = "nope"\naction = "reject"\n',
     "chain[0].check: unknown check 'nope' (known: authorised_orderer, auto_reply, followup, form, personal_data, "
     "sender_domain, sender_missing, subject)"),
    ('[[chain]]\ncheck = "subject"\naction = "reject"\n[[chain]]\ncheck = "sender_domain"\naction = "hold"\n'
     'params = { domain = ["a.example.test"] }\n',
     "chain[1].params.domain: unknown parameter of check sender_domain (it takes: domains)"),
    ('[[chain]]\ncheck = "subject"\naction = "discard"\n',
     "chain[0].action: 'discard' is not an action (use reject, hold, ignore, stop)"),
    ('[[chain]]\ncheck = "subject"\naction = "join"\n',
     "chain[0].action: 'join' is not an action of check subject (use reject, hold, ignore, stop)"),
    ('[[chain]]\ncheck = "auto_reply"\naction = "reject"\n',
     "chain[0].action: 'reject' is not an action of check auto_reply (use ignore, hold)"),
    ('[[chain]]\ncheck = "personal_data"\naction = "reject"\nparams = { reject_threshold = "high" }\n',
     "chain[0].params.reject_threshold: expected float"),
    ('[[chain]]\ncheck = "personal_data"\naction = "reject"\nparams = { hold_threshold = 5 }\n',
     "chain[0].params.hold_threshold: must be between 0 and 1"),
    ('[[chain]]\ncheck = "sender_domain"\naction = "reject"\nparams = { domains = "a.example.test" }\n',
     "chain[0].params.domains: expected a list of non-empty strings"),
    ('[[chain]]\ncheck = "subject"\n', "chain[0].action: missing"),
    ('[[chain]]\ncheck = "subject"\naction = "reject"\nwhen = "always"\n',
     "chain[0].when: unknown key (a row has check, params, action)"),
    ('chain = []\n', "chain: expected a non-empty list of [[chain]] tables"),
])
def test_bad_chain_is_refused_naming_file_and_key(tmp_path, chain, message):
    folder = _pack_with_chain(tmp_path, chain)
    with pytest.raises(PackError) as exc:
        load_pack(folder)
    assert str(exc.value) == f"{folder / 'pack.toml'}: {message}"


def test_unknown_top_level_key_is_refused(tmp_path):
    folder = _pack_with_chain(tmp_path, '[personal_data]\nreject_threshold = 0.9\n')
    with pytest.raises(PackError) as exc:
        load_pack(folder)
    assert str(exc.value) == (f"{folder / 'pack.toml'}: personal_data: unknown key "
                              "(set the personal_data check's params in [[chain]])")


def test_test_pack_declares_its_own_chain():
    pack = load_pack(PACKS / "chaintest")
    assert [(r.check.name, r.action) for r in pack.chain] == [
        ("auto_reply", "ignore"), ("sender_missing", "stop"), ("personal_data", "reject"), ("followup", "join"),
        ("subject", "reject"), ("sender_domain", "hold")]
    assert pack.chain[2].params == {"reject_threshold": 0.99}
    assert set(ROW_KEYS) == {"check", "params", "action"}


def test_checks_and_the_error_base_import_nothing_above_them():
    import ast

    root = Path(__file__).resolve().parents[2]
    for path in [*sorted((root / "rules" / "checks").glob("*.py")), root / "parsers" / "errors.py"]:
        tree = ast.parse(path.read_text("utf-8"))
        names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        names += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
        assert not [m for m in names if m.split(".")[0] == "intake"], path
        if path.parent.name == "parsers":
            assert not [m for m in names if m.split(".")[0] in ("rules", "intake")], path
