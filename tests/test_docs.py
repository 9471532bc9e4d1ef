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
