"""Every configuration key, reason code and command is documented in the README."""

import re
from pathlib import Path

import pytest

from intake.cli import main
from intake.config import SCHEMA
from rules.reasons import catalogue

README = (Path(__file__).resolve().parent.parent / "README.md").read_text("utf-8")


@pytest.mark.parametrize("key", [f"{s}.{k}" for s, keys in SCHEMA.items() for k in keys])
def test_config_key_documented(key):
    assert f"| `{key}` |" in README


@pytest.mark.parametrize("code", sorted(catalogue()))
def test_reason_code_documented(code):
    assert f"| `{code}` |" in README


def _commands(group, prefix=""):
    for name, cmd in group.commands.items():
        if hasattr(cmd, "commands"):
            yield from _commands(cmd, f"{prefix}{name} ")
        else:
            yield f"{prefix}{name}"


@pytest.mark.parametrize("command", sorted(_commands(main)))
def test_command_documented(command):
    assert re.search(rf"`intake {re.escape(command)}\b", README)


def test_readme_starts_with_the_two_commands():
    head = README.split("\n## ", 1)[0]
    assert "make demo" in head and "make test" in head


# --- form.toml: every key the form loader accepts is documented (README, "### form.toml") -------------

from parsers.schema import FIELD_TYPES, FORM_KEYS, RULE_KINDS  # noqa: E402

FORM_DOC = README.split("\n### form.toml\n", 1)[-1].split("\n## ", 1)[0].split("\n### ", 1)[0]


def test_form_chapter_exists():
    assert "\n## Writing a routine pack\n" in README and "\n### form.toml\n" in README


@pytest.mark.parametrize("key", FORM_KEYS)
def test_form_key_documented(key):
    assert f"`{key}`" in FORM_DOC


@pytest.mark.parametrize("name", sorted(FIELD_TYPES) + list(RULE_KINDS))
def test_form_type_and_rule_kind_documented(name):
    assert f"`{name}`" in FORM_DOC


def test_form_worked_example_loads():
    import tomllib

    from parsers.schema import form_schema_from_dict

    example = FORM_DOC.split("```toml\n", 1)[1].split("```", 1)[0]
    schema = form_schema_from_dict(tomllib.loads(example), "README.md")
    assert schema.parties == ("attestant",) and schema.users.action is not None and schema.rules
# -- routine packs: every pack.toml key the loader accepts and every registered check -----------------


def _pack_keys():
    from rules.checks import ROW_KEYS
    from rules.packs import PACK_KEYS, REQUEST_TYPE_KEYS

    return ([*PACK_KEYS] + [f"request_types.{k}" for k in REQUEST_TYPE_KEYS] + [f"chain.{k}" for k in ROW_KEYS])


def _pack_chapter() -> str:
    assert "\n## Writing a routine pack\n" in README
    return README.split("\n## Writing a routine pack\n", 1)[1].split("\n## ", 1)[0]


@pytest.mark.parametrize("key", _pack_keys())
def test_pack_key_documented(key):
    assert f"| `{key}` |" in _pack_chapter()


def _checks():
    from rules.checks import registry

    return sorted(registry().items())


@pytest.mark.parametrize(("name", "check"), _checks())
def test_check_documented_with_its_parameters(name, check):
    chapter = _pack_chapter()
    row = next((line for line in chapter.splitlines() if line.startswith(f"| `{name}` |")), None)
    assert row is not None, f"check {name} is not in the check table"
    for param in check.params:
        assert f"`{param.name}`" in row
    for action in check.actions:
        assert f"`{action}`" in row


def test_default_chain_documented():
    from rules.checks import DEFAULT_CHAIN

    text = " ".join(_pack_chapter().split())
    assert "; ".join(f"`{name}` → {action}" for name, action in DEFAULT_CHAIN) in text
# -- lifecycle (README "### Lifecycle"): every key, effect, parameter, gate, role and refusal code ------------

def _lifecycle_section() -> str:
    start = README.index("### Lifecycle")
    rest = README[start + 4:]
    ends = [i for i in (rest.find("\n## "), rest.find("\n### ")) if i >= 0]
    return rest[: min(ends)] if ends else rest


def _lifecycle_names() -> list[str]:
    import tomllib
    from importlib import resources

    from rules import lifecycle

    names = [*lifecycle.LIFECYCLE_KEYS, *lifecycle.STATE_KEYS, *lifecycle.TRANSITION_KEYS, *lifecycle.GATE_KEYS,
             *lifecycle.ACTOR_ROLES, *lifecycle.RECIPIENT_ROLES]
    for spec in lifecycle.EFFECTS.values():
        names += [spec.name, *spec.required, *spec.optional]
    for gate in lifecycle.GATES.values():
        names += [gate.name, *gate.params]
    names += list(tomllib.loads(resources.files("rules").joinpath("lifecycle.toml").read_text("utf-8")))
    return sorted(set(names))


@pytest.mark.parametrize("name", _lifecycle_names())
def test_lifecycle_name_documented(name):
    assert f"`{name}`" in _lifecycle_section()


# -- checklists (README "### Checklists"): every key of checklists.toml, and the effect and gate ----------------

def _checklist_section() -> str:
    start = README.index("\n### Checklists\n")
    rest = README[start + 4:]
    ends = [i for i in (rest.find("\n## "), rest.find("\n### ")) if i >= 0]
    return rest[: min(ends)] if ends else rest


def _checklist_names() -> list[str]:
    from rules import checklists

    return sorted({*checklists.TOP_KEYS, *checklists.TASK_KEYS, *checklists.CONDITION_KEYS, *checklists.TIMER_KEYS,
                   "start_checklist", "checklist_complete"})


@pytest.mark.parametrize("name", _checklist_names())
def test_checklist_name_documented(name):
    assert f"`{name}`" in _checklist_section()
