"""Facts: everything the checks may look at for one mail, built once per mail by ``decide()``.

Cheap facts are plain fields. Expensive ones are computed on first use and kept, so a chain that
stops early (an auto-reply, a follow-up that joins its ticket) never pays for them: the form parse
(which runs a sandbox), the follow-up lookup (a database query in the shell) and the personal-data
scan. The shell hands in the lookups as functions; the checks stay pure.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from parsers.mail import ParsedMail
from rules.forms import FormJudgement
from rules.personal_data import Finding, PersonalDataConfig, scan

if TYPE_CHECKING:
    from rules.packs import RequestType, Routine
    from rules.subject import SubjectMatch


#: lookup(ticket_ref, in_reply_to_ids) -> the ticket row ({"ref", "requester", "routine", ...}) or None
FollowupLookup = Callable[[str | None, list[str]], Mapping[str, Any] | None]


@dataclass(eq=False)
class Facts:
    """One mail as the checks see it. Built by ``intake.pipeline.decide``; checks only read it."""

    raw: bytes
    mail: ParsedMail
    routines: tuple[Routine, ...]  # every routine the mailbox serves
    default: Routine  # the routine that answers mail whose subject fits none (mailbox.default_routine)
    routine: Routine | None  # the routine the subject names, or None
    request_type: RequestType | None  # the request type the subject names, or None
    match: SubjectMatch | None  # what the subject says (its ticket reference, whether it is a reply)
    now: datetime
    own_addresses: frozenset[str] = frozenset()  # replies.from_address and replies.own_addresses
    allowed_domains: frozenset[str] = frozenset()  # senders.allowed_domains
    trusted_domains: frozenset[str] = frozenset()  # senders.trusted_domains
    personal_data: PersonalDataConfig = field(default_factory=PersonalDataConfig)
    followup_lookup: FollowupLookup | None = None
    form_judge: Callable[[], FormJudgement] | None = None
    #: Further lookups the shell hands in by name (e.g. an orderer register), for checks that need them.
    lookups: Mapping[str, Callable[..., Any]] = field(default_factory=dict)
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def sender(self) -> str:
        return self.mail.sender

    @property
    def sender_domain(self) -> str:
        return self.mail.sender.rsplit("@", 1)[-1]

    @property
    def served_routine(self) -> Routine:
        """The routine this mail is judged and answered under: the one its subject names, else the default."""
        return self.routine or self.default

    def followup_target(self) -> Mapping[str, Any] | None:
        """The ticket this mail refers to (by a reference in its subject or by the reply it answers), or None."""
        if "followup" not in self._cache:
            target = None
            ids = [i for i in [self.mail.in_reply_to, *self.mail.references] if i]
            ref = self.match.ticket_ref if self.match else None
            if self.followup_lookup is not None and (ref or ids):
                target = self.followup_lookup(ref, ids)
            self._cache["followup"] = target
        return self._cache["followup"]

    def form(self) -> FormJudgement | None:
        """The form judgement (parse and validation; expensive), or None when the request type needs no form."""
        if "form" not in self._cache:
            needed = self.routine is not None and self.request_type is not None and self.request_type.needs_form
            self._cache["form"] = self.form_judge() if needed and self.form_judge is not None else None
        return self._cache["form"]

    @property
    def form_judged(self) -> FormJudgement | None:
        """The form judgement if a check asked for it, without computing it."""
        return self._cache.get("form")

    def findings(self, config: PersonalDataConfig | None = None) -> list[Finding]:
        """Personal data in the subject and body (and the HTML part, when it differs), under ``config``."""
        config = config or self.personal_data
        key = ("findings", config)
        if key not in self._cache:
            mail, today = self.mail, self.now.date()
            found = scan(mail.subject, mail.body_text, sender_name=mail.sender_name, sender_address=mail.sender,
                         today=today, config=config)
            if mail.html_text:
                # What an Outlook reader sees is the HTML part: a finding only there counts as well.
                seen = {f.category for f in found if f.location == "body"}
                html = scan("", mail.html_text, sender_name=mail.sender_name, sender_address=mail.sender,
                            today=today, config=config)
                found += [f for f in html if f.location == "body" and f.category not in seen]
            self._cache[key] = found
            self._cache["findings_seen"] = found
        return self._cache[key]

    @property
    def findings_seen(self) -> tuple[Finding, ...]:
        """The findings of the last personal-data scan a check ran (empty when none ran)."""
        return tuple(self._cache.get("findings_seen", ()))
