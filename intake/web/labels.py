"""Swedish labels for ids shown to staff, from ``labels.toml`` (no Swedish text in code)."""

from __future__ import annotations

import tomllib
from functools import cache
from importlib import resources


@cache
def labels() -> dict[str, dict[str, str]]:
    """Section -> id -> Swedish label."""
    return tomllib.loads(resources.files("intake.web").joinpath("labels.toml").read_text("utf-8"))


def label(section: str, key: str | None) -> str:
    """The Swedish label for ``key`` in ``section``, or the key itself when there is none."""
    if key is None:
        return ""
    return labels().get(section, {}).get(key, key)
