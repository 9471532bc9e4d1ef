"""Reason codes: the stable interface for why a mail got its verdict."""

from __future__ import annotations

import string
import tomllib
from dataclasses import dataclass, field
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
    # The placeholders' values (labels, counts, positions), kept so a routine pack's override of the
    # sentence can be applied later, once, when a check's hits are collected (see ``with_overrides``).
    params: tuple[tuple[str, str], ...] = field(default=(), compare=False, repr=False)

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message, "detail": self.detail}

    def with_overrides(self, overrides: dict[str, str] | None) -> Reason:
        """This reason with its sentence taken from ``overrides`` (a pack's ``[reasons]``) when it has one."""
        if not overrides or self.code not in overrides:
            return self
        return reason(self.code, self.detail, overrides, **dict(self.params))


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
    return Reason(code=code, message=message, detail=detail,
                  params=tuple((k, str(v)) for k, v in params.items()))
