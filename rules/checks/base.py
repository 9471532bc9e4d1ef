"""Checks: small named objects that only decide (GNU Mailman's rules).

A check has a name, a one-line description, the parameters a pack may give it, and a function
``run(facts, params) -> list[Hit]``. It never sends, stores or moves anything; it looks at
:class:`~rules.checks.facts.Facts` and says what it found. What a hit *does* (reject, hold, ...) is
not the check's business: the chain row that calls it says so (see :mod:`rules.checks.chain`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rules.reasons import Reason

if TYPE_CHECKING:
    from rules.checks.facts import Facts

#: What a hit may do, as written in a pack's ``[[chain]]`` rows (documented in the README).
ACTIONS = ("reject", "hold", "ignore", "join", "stop")


@dataclass(frozen=True)
class Hit:
    """One thing a check found.

    ``reason`` is what the sender and staff read (built with :func:`rules.reasons.reason`, catalogue
    sentence; a pack's override is applied later, once, by the chain). An ``uncertain`` hit is held for a
    handler even where the row says reject. ``data`` is what the shell needs to act on the hit, e.g.
    the ticket a follow-up joins or the Message-IDs a bounce names.
    """

    reason: Reason | None
    uncertain: bool = False
    data: Any = None


@dataclass(frozen=True)
class Param:
    """A parameter a pack may give a check in its chain row; ``kind`` is str, int, float, bool or list."""

    name: str
    kind: type
    description: str
    default: Any = None  # None: the check falls back to the configuration (its description says which)
    between: tuple[float, float] | None = None  # allowed range of a number

    def problem(self, value: Any) -> str | None:
        """Why ``value`` is not acceptable for this parameter, or None when it is."""
        if self.kind is list:
            ok = isinstance(value, list) and all(isinstance(v, str) and v.strip() for v in value)
            return None if ok else "expected a list of non-empty strings"
        if self.kind is float:
            ok = isinstance(value, int | float) and not isinstance(value, bool)
        else:
            ok = isinstance(value, self.kind) and (self.kind is bool or not isinstance(value, bool))
        if not ok:
            return f"expected {self.kind.__name__}"
        if self.between is not None and not self.between[0] <= value <= self.between[1]:
            return f"must be between {self.between[0]:g} and {self.between[1]:g}"
        return None


CheckFunction = Callable[["Facts", Mapping[str, Any]], list[Hit]]


@dataclass(frozen=True)
class Check:
    """A registered check. Build one with :func:`register`."""

    name: str
    description: str
    run: CheckFunction = field(repr=False)
    params: tuple[Param, ...] = ()
    actions: tuple[str, ...] = ("reject", "hold", "ignore", "stop")  # the actions a row may give it
    lead: bool = False  # its rejection is listed first in the answer (everything else depends on it)

    def param(self, name: str) -> Param | None:
        return next((p for p in self.params if p.name == name), None)


_REGISTRY: dict[str, Check] = {}


def register(
    name: str,
    description: str,
    *,
    params: tuple[Param, ...] | list[Param] = (),
    actions: tuple[str, ...] = ("reject", "hold", "ignore", "stop"),
    lead: bool = False,
) -> Callable[[CheckFunction], CheckFunction]:
    """Register the decorated function as the check ``name``; packs then name it in their chain.

    Example::

        @register("sender_listed", "The sender is not on the orderer register of the form's region.",
                  params=[Param("region_field", str, "the form field naming the region", "region")])
        def sender_listed(facts, params):
            ...
            return [Hit(reason("sender.not_authorised", detail="..."))] if refused else []
    """
    for action in actions:
        if action not in ACTIONS:
            raise ValueError(f"check {name}: unknown action {action!r}")

    def wrap(fn: CheckFunction) -> CheckFunction:
        if name in _REGISTRY:
            raise ValueError(f"check {name}: registered twice")
        _REGISTRY[name] = Check(name, description, fn, tuple(params), tuple(actions), lead)
        return fn

    return wrap


def registry() -> dict[str, Check]:
    """Every registered check, by name (the built-in ones are registered on import of ``rules.checks``)."""
    return dict(_REGISTRY)


def get_check(name: str) -> Check | None:
    return _REGISTRY.get(name)
