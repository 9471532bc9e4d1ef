"""Chains: a routine's mail policy as an ordered table of (check, parameters, action on a hit).

Mailman's chains, as data. Every row runs in order; a hit does what its row says:

- ``reject``: the mail is rejected with the hit's reason; later rows still run, so the sender learns
  every problem at once;
- ``hold``: the mail is held for a handler (unless something rejects it); later rows still run;
- ``ignore``: the mail is recorded and never answered; nothing later runs;
- ``join``: the mail joins the ticket the hit names, unless something already rejected it; nothing
  later runs then;
- ``stop``: the mail is rejected with the hit's reason and nothing later runs.

An uncertain hit (a possible, not a clear, finding) is held whatever its row says. One place,
:func:`run_chain`, takes the verdict from the collected hits, and applies the pack's reason
overrides to every reason as it collects them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rules.checks.base import ACTIONS, Check, Hit, get_check, registry
from rules.checks.facts import Facts
from rules.reasons import Reason

#: The chain of every pack that declares none: the order the bot has always judged mail in.
DEFAULT_CHAIN: tuple[tuple[str, str], ...] = (
    ("auto_reply", "ignore"),
    ("sender_missing", "stop"),
    ("personal_data", "reject"),
    ("followup", "join"),
    ("sender_domain", "reject"),
    ("subject", "reject"),
    ("form", "reject"),
)

#: The keys of one ``[[chain]]`` row in pack.toml.
ROW_KEYS = ("check", "params", "action")


class ChainError(ValueError):
    """A chain row names an unknown check, parameter or action (the pack loader adds the file name)."""


@dataclass(frozen=True)
class ChainRow:
    """One row: run ``check`` with ``params``; a hit does ``action``."""

    check: Check
    action: str
    params: Mapping[str, Any] = field(default_factory=dict)


def parse_chain(rows: Any) -> tuple[ChainRow, ...]:
    """Check a pack's ``chain`` (a list of tables) and resolve it; :class:`ChainError` names ``chain[i].key``."""
    if not isinstance(rows, list) or not rows:
        raise ChainError("chain: expected a non-empty list of [[chain]] tables")
    out = []
    for i, row in enumerate(rows):
        here = f"chain[{i}]"
        if not isinstance(row, dict):
            raise ChainError(f"{here}: expected a table")
        unknown = sorted(set(row) - set(ROW_KEYS))
        if unknown:
            raise ChainError(f"{here}.{unknown[0]}: unknown key (a row has {', '.join(ROW_KEYS)})")
        name = row.get("check")
        if not isinstance(name, str):
            raise ChainError(f"{here}.check: missing")
        check = get_check(name)
        if check is None:
            raise ChainError(f"{here}.check: unknown check {name!r} (known: {', '.join(sorted(registry()))})")
        action = row.get("action")
        if not isinstance(action, str):
            raise ChainError(f"{here}.action: missing")
        if action not in check.actions:
            why = "not an action" if action not in ACTIONS else f"not an action of check {name}"
            raise ChainError(f"{here}.action: {action!r} is {why} (use {', '.join(check.actions)})")
        params = row.get("params", {})
        if not isinstance(params, dict):
            raise ChainError(f"{here}.params: expected a table")
        for key, value in params.items():
            spec = check.param(key)
            if spec is None:
                known = ", ".join(p.name for p in check.params) or "none"
                raise ChainError(f"{here}.params.{key}: unknown parameter of check {name} (it takes: {known})")
            problem = spec.problem(value)
            if problem:
                raise ChainError(f"{here}.params.{key}: {problem}")
        out.append(ChainRow(check, action, dict(params)))
    return tuple(out)


def default_chain() -> tuple[ChainRow, ...]:
    """The :data:`DEFAULT_CHAIN` as rows."""
    return parse_chain([{"check": name, "action": action} for name, action in DEFAULT_CHAIN])


@dataclass
class ChainResult:
    """What a chain found for one mail, and the verdict taken from it."""

    rejections: list[Reason] = field(default_factory=list)
    held: list[Reason] = field(default_factory=list)
    ignored: Hit | None = None  # the hit that made the mail ignored
    joined: Any = None  # the ticket a follow-up joins (the ``data`` of a ``join`` hit)
    trail: list[tuple[str, str]] = field(default_factory=list)  # (check, "miss" or the action taken)
    hits: list[tuple[str, Hit]] = field(default_factory=list)  # (check, hit), every hit, in order

    @property
    def verdict(self) -> str:
        """The one place the verdict is taken from the hits."""
        if self.ignored is not None:
            return "ignored"
        if self.rejections:
            return "rejected"
        if self.held:
            return "held"
        return "accepted"

    @property
    def reasons(self) -> tuple[Reason, ...]:
        """The reasons behind the verdict (a rejection does not list what was only held)."""
        if self.ignored is not None:
            return (self.ignored.reason,) if self.ignored.reason else ()
        return tuple(self.rejections or self.held)

    def hits_of(self, check: str) -> list[Hit]:
        return [h for name, h in self.hits if name == check]


def run_chain(chain: tuple[ChainRow, ...], facts: Facts, overrides: Mapping[str, str] | None = None) -> ChainResult:
    """Run ``chain`` on ``facts``; reasons get the pack's ``overrides`` here, once, for every code."""
    result = ChainResult()
    leading: list[Reason] = []  # rejections of "lead" checks (the subject): listed first
    rest: list[Reason] = []
    for row in chain:
        hits = row.check.run(facts, row.params)
        if not hits:
            result.trail.append((row.check.name, "miss"))
            continue
        hits = [Hit(h.reason.with_overrides(dict(overrides or {})) if h.reason else None, h.uncertain, h.data)
                for h in hits]
        result.hits.extend((row.check.name, h) for h in hits)
        result.trail.append((row.check.name, row.action))
        if row.action == "ignore":
            result.ignored = hits[0]
            return result
        if row.action == "join":
            if not (leading or rest):
                result.joined = hits[0].data
                result.held.extend(h.reason for h in hits if h.reason and h.uncertain)
                result.rejections = []
                return result
            continue
        for hit in hits:
            if hit.reason is None:
                continue
            if hit.uncertain or row.action == "hold":
                result.held.append(hit.reason)
            else:
                (leading if row.check.lead else rest).append(hit.reason)
        result.rejections = leading + rest
        if row.action == "stop" and result.rejections:
            return result
    return result
