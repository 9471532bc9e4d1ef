"""Reason codes: the stable interface for why a mail got its verdict."""

from __future__ import annotations

import string
import tomllib
from dataclasses import asdict, dataclass
from functools import cache
from importlib import resources


@dataclass(frozen=True)
class Reason:
    """One reason behind a verdict.

    ``code`` is stable and documented; ``message`` is the Swedish sentence the sender reads;
    ``detail`` is for staff. Neither ``message`` nor ``detail`` may ever hold a personal value.
    """

    code: str
    message: str
    detail: str = ""

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


class UnknownReasonError(KeyError):
    """A reason code that is not in the catalogue (a programming error, caught by tests)."""


@cache
def catalogue() -> dict[str, str]:
    """All reason codes and their Swedish sentences, from ``rules/reasons.toml``."""
    data = tomllib.loads(resources.files("rules").joinpath("reasons.toml").read_text("utf-8"))
    codes: dict[str, str] = {}
    for group in data.values():
        codes.update(group)
    return codes


class _Lenient(dict):
    def __missing__(self, key: str) -> str:
        return ""


def reason(code: str, detail: str = "", overrides: dict[str, str] | None = None, **params: object) -> Reason:
    """Build a :class:`Reason` for ``code``, filling the Swedish sentence with ``params``.

    ``params`` must be labels, counts and positions, never personal values. Missing
    placeholders render as empty text rather than raising, so a reply is never lost to a typo.
    """
    template = (overrides or {}).get(code) or catalogue().get(code)
    if template is None:
        raise UnknownReasonError(code)
    message = string.Formatter().vformat(template, (), _Lenient({k: str(v) for k, v in params.items()}))
    return Reason(code=code, message=message, detail=detail)
