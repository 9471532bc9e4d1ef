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
