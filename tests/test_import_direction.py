"""The import direction of the pure core: bytes -> facts (parsers/) -> verdicts (rules/) -> the shell
(intake/). parsers/ imports neither rules/ nor intake/; rules/ does not import intake/; the form
schema (parsers/schema.py) is a leaf that imports only the standard library. Every import in every
module counts, including those inside functions."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = {"parsers": {"rules", "intake"}, "rules": {"intake"}}


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, top-level package) of every import in the module at ``path``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text("utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: stays inside its own package
                found.append((node.lineno, path.relative_to(ROOT).parts[0]))
            elif node.module:
                found.append((node.lineno, node.module.split(".")[0]))
    return found


def modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_upward_import(package: str) -> None:
    assert modules(package), package
    wrong = [f"{path.relative_to(ROOT)}:{line} imports {top}" for path in modules(package)
             for line, top in imports(path) if top in FORBIDDEN[package]]
    assert wrong == []


def test_the_form_schema_is_a_leaf() -> None:
    # The standard library, and the project's error base class (itself a leaf), nothing else.
    path = ROOT / "parsers" / "schema.py"
    tops = {top for _, top in imports(path)}
    assert tops <= set(sys.stdlib_module_names) | {"__future__", "parsers"}, tops
    lines = path.read_text("utf-8").splitlines()
    own = [line.strip() for line in lines if line.startswith(("from parsers", "import parsers"))]
    assert own == ["from parsers.errors import IntakeError"]


def test_the_check_finds_an_upward_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from intake.pipeline import decide\n    import rules.forms\n", "utf-8")
    assert [top for _, top in imports(bad)] == ["intake", "rules"]
