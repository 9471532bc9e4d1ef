"""The guard's word lists, read once at import from the data files in ``rules/personal_data/words/``.

Format of a word list (``NAME.txt``): one entry per line; blank lines and lines starting with ``#``
are skipped. An entry is a literal word or phrase; in a regular expression a space in it matches any
run of white space, and the entries are tried in the order of the file. Month names are a TOML table
(``months.toml``: name = month number).
"""

from __future__ import annotations

import re
import tomllib
from importlib import resources

_PACKAGE = "rules.personal_data"


def entries(name: str) -> tuple[str, ...]:
    """The entries of ``words/NAME.txt``, in file order, without duplicates."""
    text = resources.files(_PACKAGE).joinpath("words", f"{name}.txt").read_text("utf-8")
    lines = (line.strip() for line in text.splitlines())
    return tuple(dict.fromkeys(line for line in lines if line and not line.startswith("#")))


def word_set(name: str) -> frozenset[str]:
    """The entries of ``words/NAME.txt``, case-folded, for membership tests."""
    return frozenset(e.casefold() for e in entries(name))


def patterns(name: str) -> tuple[str, ...]:
    """The entries of ``words/NAME.txt`` as regular expressions, in file order."""
    return tuple(re.escape(e).replace(r"\ ", r"\s+") for e in entries(name))


def alternation(name: str) -> str:
    """The entries of ``words/NAME.txt`` as a regular-expression alternation (no group around it)."""
    return "|".join(patterns(name))


def alternation_by_first_character(name: str) -> str | None:
    """``alternation(name)`` with the entries grouped by their first character ("f(?:ör|örst)|g(?:…)"),
    each group in file order, so that a regex can be led by a plain character; ``None`` when an entry
    does not start with a letter or digit.

    At any one position only one group can match and its entries are tried in file order, so the
    entry a regex chooses is the same as with ``alternation(name)``.
    """
    groups: dict[str, list[str]] = {}
    for pattern in patterns(name):
        if not pattern[:1].isalnum():
            return None
        groups.setdefault(pattern[0], []).append(pattern[1:])
    return "|".join(f"{first}(?:{'|'.join(rests)})" for first, rests in groups.items())


def table(name: str) -> dict:
    """The TOML file ``NAME.toml`` of the package."""
    return tomllib.loads(resources.files(_PACKAGE).joinpath(f"{name}.toml").read_text("utf-8"))
