"""The ``authorised_orderer`` check: only named, authorised orderers of the form's region may order.

The orderer register lives in the shell's store; the check reads it through a lookup the shell hands
to ``decide(..., lookups={"orderers": fn})``::

    fn(routine_id, region, email, day) -> True | False | None

``True``: ``email`` may order for ``routine_id`` in ``region`` on ``day``; ``False``: it may not;
``None``: unknown (no register at hand, e.g. ``intake check``). ``region`` is None when the form
names no usable region: then any region of the routine will do for the sender (the form check has
already said what is wrong with the form).

Without a lookup, or when it answers ``None``, the check cannot tell: the hit is *uncertain*, so the
mail is held for a handler whatever the row says; never accepted unverified.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date
from typing import Any

from rules.checks.base import Hit, Param, register
from rules.checks.facts import Facts
from rules.forms import match_choice
from rules.reasons import reason

#: lookup(routine_id, region or None, email, day) -> True (may order), False (may not) or None (unknown)
OrdererLookup = Callable[[str, str | None, str, date], bool | None]
LOOKUP = "orderers"


def _region(facts: Facts, form: Any, field_id: str) -> str | None:
    """The form's region as the schema spells it, or None when absent or not one of the allowed values."""
    value = form.fields.get(field_id) if form is not None else None
    if not isinstance(value, str) or not value.strip():
        return None
    spec = facts.routine.form_schema.spec(field_id) if facts.routine and facts.routine.form_schema else None
    if spec is None or not spec.allowed(None):
        return value.strip()
    return match_choice(spec, value.strip())


def _email(value: Any) -> str | None:
    text = str(value or "").strip().lower()
    return text if "@" in text and " " not in text else None


@register(
    "authorised_orderer",
    "The sender or the orderer named in the form is not on the orderer register for the form's region "
    "(on the day the mail is judged).",
    params=(
        Param("region_field", str, "the form field naming the region", "region"),
        Param("orderer_party", str, "the form's party whose e-mail is the orderer", "orderer"),
    ),
)
def authorised_orderer(facts: Facts, params: Mapping[str, Any]) -> list[Hit]:
    if facts.routine is None or facts.request_type is None or not facts.sender:
        return []
    judgement = facts.form()
    form = judgement.form if judgement is not None else None
    region = _region(facts, form, params.get("region_field", "region"))
    orderer = _email(form.party(params.get("orderer_party", "orderer")).get("email")) if form is not None else None
    lookup = facts.lookups.get(LOOKUP)
    day = facts.now.date()
    routine = facts.routine.id
    if lookup is None:
        return [Hit(reason("sender.not_authorised", detail="orderer register not consulted (no register at hand)"),
                    uncertain=True)]
    # The sender is checked against the form's region (any region of the routine when the form names
    # none); the form's orderer only when the form names both.
    who = [("sender", facts.sender, region)]
    if orderer is not None and region is not None and orderer != facts.sender:
        who.append(("orderer", orderer, region))
    answers = [(role, lookup(routine, where, email, day)) for role, email, where in who]
    refused = [role for role, ok in answers if ok is False]
    if refused:
        # Which party was refused (never the address) is for staff only.
        scope = "the form's region" if region is not None else "any region (the form names none)"
        return [Hit(reason("sender.not_authorised",
                           detail=f"{' and '.join(refused)} not on the orderer register of {routine} for {scope}"))]
    if any(ok is None for _, ok in answers):
        return [Hit(reason("sender.not_authorised", detail="orderer register unknown for this mail"), uncertain=True)]
    return []
