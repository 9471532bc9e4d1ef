"""Reply rendering: Swedish texts from the routine pack's templates, and the mail that carries them.

A reply never quotes or attaches the incoming mail and never contains a personal value: the
templates only see labels, counts, references and the reasons' own sentences.
"""

from __future__ import annotations

import email.policy
import email.utils
from email.message import EmailMessage
from typing import Any

from intake.decision import Decision, Reply
from rules.packs import RequestType, Routine

# Lines up to 200 characters before folding: a folded Message-ID is valid but some clients mishandle it.
_POLICY = email.policy.SMTP.clone(max_line_length=200)


def _clean_header(text: str) -> str:
    # Incoming text must never inject headers into outgoing mail (FIELD-NOTES: =0D=0A in subjects).
    return " ".join(text.replace("\x00", " ").splitlines()).strip()


def render_reply(
    kind: str,
    routine: Routine,
    rtype: RequestType | None,
    decision: Decision,
    *,
    ref: str | None,
    settings: Any,
    note: str = "",
    form: dict[str, Any] | None = None,
) -> Reply:
    """The reply of ``kind`` (``ack``, ``rejection`` or ``completion``) for ``decision``.

    ``form`` is the ticket's stored form (``ParsedForm.to_dict()``) when the decision carries none (the
    completion mail); templates get it as ``form`` to count persons and roles, never to print names.
    """
    env = routine.template_env()
    user_count = len(decision.form.users) if decision.form is not None else 0
    attach_form = kind == "rejection" and any(
        r.code.startswith(("attachment.", "form.")) for r in decision.reasons
    )
    context = {
        "routine": routine,
        "request_type": rtype,
        # Before the ticket exists (``intake check``) the reference is shown as its pattern.
        "ref": ref or f"{routine.ref_prefix}-ÅÅÅÅ-NNNN",
        "user_count": user_count,
        "reasons": decision.reasons,
        "attach_form": attach_form,
        "note": note,
        "form": form if form is not None else (decision.form.to_dict() if decision.form is not None else None),
        # The routines whose subjects a rejection lists: every routine the mailbox serves when the
        # subject fitted none, else this one.
        "offered": getattr(decision, "offered", ()) or (routine,),
    }
    if kind == "ack":
        template = rtype.ack_template if rtype else routine.templates["rejection"]
    else:
        template = routine.templates[kind]
    body = env.get_template(template).render(**context)
    subject = env.from_string(routine.reply_subjects[kind]).render(**context)
    return Reply(
        kind=kind,
        to=decision.sender,
        subject=_clean_header(subject),
        body=body,
        attach_blank_form=attach_form,
    )


def build_message(
    *,
    to: str,
    subject: str,
    body: str,
    from_address: str,
    from_name: str = "",
    message_id: str,
    in_reply_to: str = "",
    references: list[str] | None = None,
    automatic: bool = True,
    attachments: list[tuple[str, bytes, str]] | None = None,
) -> EmailMessage:
    """The outgoing mail for a reply: plain text, threaded, marked as automatic (RFC 3834)."""
    msg = EmailMessage(policy=_POLICY)
    msg["From"] = email.utils.formataddr((from_name, from_address)) if from_name else from_address
    msg["To"] = _clean_header(to)
    msg["Subject"] = _clean_header(subject)
    msg["Date"] = email.utils.formatdate(localtime=False)
    msg["Message-ID"] = message_id
    if in_reply_to:
        msg["In-Reply-To"] = _clean_header(in_reply_to)
    refs = [_clean_header(r) for r in (references or []) if r]
    if refs:
        msg["References"] = " ".join(refs)
    if automatic:
        msg["Auto-Submitted"] = "auto-replied"
        msg["X-Auto-Response-Suppress"] = "All"
        msg["Precedence"] = "auto_reply"
    msg.set_content(body, charset="utf-8")
    for filename, data, content_type in attachments or []:
        maintype, subtype = content_type.split("/", 1)
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return msg


def new_message_id(from_address: str) -> str:
    domain = from_address.rsplit("@", 1)[-1] or "intake.invalid"
    return email.utils.make_msgid(idstring="intake", domain=domain)
