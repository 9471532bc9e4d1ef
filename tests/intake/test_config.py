from pathlib import Path

import pytest
from click.testing import CliRunner

from intake import config
from intake.cli import main


def test_no_file_gives_embedded_defaults():
    c = config.load(None, env={})
    assert c["mailbox"]["kind"] == "local"
    assert c["outbox"]["kind"] == "file"
    assert c["routines"]["enabled"] == ["mittvaccin"]


@pytest.mark.parametrize(
    "data, message",
    [
        ({"mailbox": {"kynd": "local"}}, "mailbox.kynd: unknown key"),
        ({"mailbox": {"port": "993"}}, "mailbox.port: expected int, got str"),
        ({"mailbox": {"allow_plaintext": 1}}, "mailbox.allow_plaintext: expected bool, got int"),
        ({"mailbox": {"kind": "pop3"}}, "mailbox.kind: must be one of local, imap, not 'pop3'"),
        ({"mailbox": {"kind": "imap"}}, 'mailbox.host: missing (needed when mailbox.kind = "imap")'),
        ({"mailbox": {"folders": {"spam": "X"}}}, "mailbox.folders.spam: unknown key"),
        ({"mailbox": {"extra": {"a": 1}}}, "mailbox.extra: unknown section"),
        ({"imap": {}}, "imap: unknown section"),
        ({"outbox": {"kind": "smtp"}}, 'smtp.host: missing (needed when outbox.kind = "smtp")'),
        ({"replies": {"from_address": "nobody"}}, "replies.from_address: not an email address"),
        ({"replies": {"max_age_days": True}}, "replies.max_age_days: expected int, got a boolean"),
    ],
)
def test_bad_key_is_named(data, message):
    with pytest.raises(config.ConfigError) as err:
        config.from_mapping(data)
    assert str(err.value) == message


def test_relative_paths_start_at_the_config_file(tmp_path):
    path = tmp_path / "intake.toml"
    path.write_text('[store]\npath = "data/q.db"\n')
    assert config.load(path).db_path == tmp_path / "data" / "q.db"


def test_password_from_environment():
    c = config.from_mapping({"mailbox": {"password_env": "MY_PW"}}, env={"MY_PW": "s3cret"})
    assert c.secret("mailbox") == "s3cret"
    c = config.from_mapping({"mailbox": {"password": "in-file"}}, env={"INTAKE_IMAP_PASSWORD": "env"})
    assert c.secret("mailbox") == "in-file"


@pytest.mark.parametrize(
    "text, message",
    [
        ("[mailbox]\nkynd = 1\n", "mailbox.kynd: unknown key"),
        ("[mailbox\n", "not valid TOML"),
    ],
)
def test_cli_prints_one_line_not_a_traceback(tmp_path, text, message):
    path = tmp_path / "intake.toml"
    path.write_text(text)
    result = CliRunner().invoke(main, ["-c", str(path), "queue", "list"])
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_cli_missing_config_file(tmp_path):
    result = CliRunner().invoke(main, ["-c", str(tmp_path / "nope.toml"), "queue", "list"])
    assert result.exit_code == 1
    assert result.output.strip() == f"Error: {Path(tmp_path / 'nope.toml')}: cannot read (No such file or directory)"


@pytest.mark.parametrize(
    "data, message",
    [
        ({"replies": {"own_addresses": [1]}}, "replies.own_addresses: every item must be a non-empty string, not 1"),
        ({"routines": {"extra_dirs": [3]}}, "routines.extra_dirs: every item must be a non-empty string, not 3"),
        ({"web": {"trusted_proxies": ["nope"]}}, "web.trusted_proxies: 'nope' is not an address or network"),
        ({"personal_data": {"reject_threshold": 0.4}},
         "personal_data.hold_threshold: must not be above personal_data.reject_threshold"),
        ({"replies": {"max_age_days": 1e12}}, "replies.max_age_days: must be between 0 and 3650, not 1000000000000.0"),
        ({"store": {"path": ""}}, "store.path: must not be empty"),
        ({"poll": {"interval_seconds": 0}}, "poll.interval_seconds: must be between 1 and 86400, not 0"),
        ({"mailbox": {"port": 70000}}, "mailbox.port: must be between 1 and 65535, not 70000"),
    ],
)
def test_values_that_would_fail_later_are_refused_up_front(data, message):
    with pytest.raises(config.ConfigError) as err:
        config.from_mapping(data)
    assert str(err.value) == message


def test_bad_pattern_is_refused_up_front():
    with pytest.raises(config.ConfigError, match="person_hsa_suffixes: '\\(' is not a regular expression"):
        config.from_mapping({"personal_data": {"person_hsa_suffixes": ["("]}})


# -- the default routine and typed access --------------------------------------------------------------


@pytest.mark.parametrize(
    "data, message",
    [
        ({"routines": {"enabled": ["mittvaccin", "chaintest"]}},
         "mailbox.default_routine: missing (needed when more than one routine is enabled: it answers mail whose "
         "subject fits none)"),
        ({"mailbox": {"default_routine": "ministop"}},
         "mailbox.default_routine: 'ministop' is not one of routines.enabled"),
        ({"routines": {"enabled": []}}, "routines.enabled: at least one routine is needed"),
        ({"routines": {"enabled": ["mittvaccin", "mittvaccin"]}}, "routines.enabled: a routine is listed twice"),
    ],
)
def test_default_routine_is_checked_at_start_up(data, message):
    with pytest.raises(config.ConfigError) as err:
        config.from_mapping(data)
    assert str(err.value) == message


def test_the_only_routine_is_the_default():
    assert config.from_mapping({}).mailbox.default_routine == "mittvaccin"
    both = config.from_mapping({"routines": {"enabled": ["mittvaccin", "chaintest"]},
                                "mailbox": {"default_routine": "chaintest"}})
    assert both.mailbox.default_routine == both["mailbox"]["default_routine"] == "chaintest"


def test_typed_access_sees_the_same_values_as_sections():
    c = config.from_mapping({"mailbox": {"port": 1993, "folders": {"held": "Review"}},
                             "senders": {"allowed_domains": ["kommun.example.test"]}})
    assert c.mailbox.port == c["mailbox"]["port"] == 1993
    assert c.mailbox.folders.held == c["mailbox.folders"]["held"] == "Review"
    assert c.senders.allowed_domains == ("kommun.example.test",)
    for name, section_type in config.SECTION_TYPES.items():
        fields = set(section_type.__dataclass_fields__) - {"folders"}
        assert fields == set(config.SCHEMA[name]), name


def test_a_pack_error_at_start_up_is_one_line(tmp_path):
    folder = tmp_path / "packs" / "mittvaccin"
    folder.mkdir(parents=True)
    (folder / "pack.toml").write_text('id = "mittvaccin"\nref_prefix = "mv"\n')
    path = tmp_path / "intake.toml"
    path.write_text('[routines]\nextra_dirs = ["packs"]\n')
    result = CliRunner().invoke(main, ["-c", str(path), "check", str(path)])
    assert result.exit_code == 1
    assert result.output == f"Error: {folder / 'pack.toml'}: ref_prefix: must be 1-5 upper-case letters\n"
