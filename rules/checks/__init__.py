"""The check chain: a routine's mail policy as registered checks run in a declared order.

Public API (what a later check needs)::

    from rules.checks import Facts, Hit, Param, register
    from rules.reasons import reason

    @register("sender_listed", "Sender and named orderer are on the orderer register of the form's region.",
              params=[Param("hold_instead", bool, "hold rather than reject", False)])
    def sender_listed(facts: Facts, params) -> list[Hit]:
        register_lookup = facts.lookups["orderers"]        # handed in by the shell
        judgement = facts.form()                           # parsed once, only when a check asks
        ...
        return [Hit(reason("sender.not_authorised", detail="sender not on the register"))]

A pack then names ``sender_listed`` in a ``[[chain]]`` row with an action. See
:mod:`rules.checks.chain` for what the actions do and the default chain.
"""

from rules.checks import builtin as _builtin  # noqa: F401 - registers the built-in checks
from rules.checks import orderers as _orderers  # noqa: F401 - registers authorised_orderer
from rules.checks.base import ACTIONS, Check, Hit, Param, get_check, register, registry
from rules.checks.chain import (
    DEFAULT_CHAIN,
    ROW_KEYS,
    ChainError,
    ChainResult,
    ChainRow,
    default_chain,
    parse_chain,
    run_chain,
)
from rules.checks.facts import Facts, FollowupLookup, FormJudgement

__all__ = [
    "ACTIONS", "DEFAULT_CHAIN", "ROW_KEYS", "ChainError", "ChainResult", "ChainRow", "Check", "Facts",
    "FollowupLookup", "FormJudgement", "Hit", "Param", "default_chain", "get_check", "parse_chain", "register",
    "registry", "run_chain",
]
