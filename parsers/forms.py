"""Choosing the request form among a mail's attachments and reading it: attachments in, a form out.

Behaviour, per mail:

* Every attachment is first judged by :func:`parsers.attachments.check_attachment`. If any is
  unsafe (macros, password, bomb, XML entities, lying extension, bad name, too large) or an
  unsupported Office file (legacy .doc/.xls, empty), the mail gets those reasons and nothing is
  parsed: the sender is told what to send instead.
* Images (signatures, logos) and other non-Office files are ignored. PDFs are ignored unless no
  form is found, in which case the PDF gets ``attachment.unsupported``.
* Each .xlsx/.docx is parsed in the sandbox (:mod:`parsers.sandbox`). A file counts as the form
  when at least ``schema.min_labels`` of its labels are found; one that parses but has too few is
  an unrelated document and is ignored.
* **Several forms in one mail are refused** with ``attachment.multiple_forms``: one mail is one
  ticket, which keeps the audit trail simple; several users fit in one form.
* An Office file that cannot be parsed is ``form.unreadable`` (even beside a readable form: it
  may be a second form). No exception from a parser leaves this module.
* No form at all is ``attachment.missing``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from parsers.attachments import AttachmentLimits, check_attachment, display_name
from parsers.formgrid import FormData
from parsers.mail import Attachment
from parsers.sandbox import SandboxError, parse_bounded, parse_in_process
from rules.forms import FormSchema
from rules.reasons import Reason, reason


@dataclass
class ParsedForm:
    """A request form as read: the ticked request kind, single fields and user rows.

    ``kind`` is the one ticked request kind (None when none or several are ticked; all ticked ones are
    in ``kinds_checked``). Field values are text, or :class:`datetime.date` for readable dates. Each
    user row carries ``row``, its 1-based position in the form's users table (blank rows counted).
    """

    kind: str | None
    fields: dict[str, object]
    users: list[dict[str, object]]
    filename: str
    format: str
    kinds_checked: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        """JSON-able, with dates as ISO strings."""

        def plain(v: object) -> object:
            return v.isoformat() if isinstance(v, date) else v

        return {
            "kind": self.kind,
            "kinds_checked": list(self.kinds_checked),
            "fields": {k: plain(v) for k, v in self.fields.items()},
            "users": [{k: plain(v) for k, v in u.items()} for u in self.users],
            "filename": self.filename,
            "format": self.format,
        }


@dataclass(frozen=True)
class FormOutcome:
    form: ParsedForm | None
    attachment: Attachment | None
    reasons: list[Reason]


def _to_form(data: FormData, att: Attachment, fmt: str) -> ParsedForm:
    kind = data.kinds_checked[0] if len(data.kinds_checked) == 1 else None
    return ParsedForm(kind=kind, fields=dict(data.fields), users=list(data.users), filename=display_name(att.filename),
                      format=fmt, kinds_checked=list(data.kinds_checked))


def extract_form(
    attachments: list[Attachment],
    schema: FormSchema,
    limits: AttachmentLimits | None = None,
    *,
    sandbox: bool = True,
) -> FormOutcome:
    """Find, check and read the one request form among ``attachments`` (see the module docstring)."""
    limits = limits or AttachmentLimits()
    verdicts = [(att, check_attachment(att, limits)) for att in attachments]
    refused = [v.reason() for _, v in verdicts if not v.ok]
    if refused:
        return FormOutcome(None, None, [r for r in refused if r is not None])

    forms: list[tuple[Attachment, ParsedForm]] = []
    unreadable: list[Reason] = []
    for att, verdict in verdicts:
        if not verdict.parseable:
            continue
        try:
            if sandbox:
                data = parse_bounded(verdict.kind, att.data, schema, memory_bytes=limits.sandbox_memory_bytes,
                                     timeout_s=limits.sandbox_timeout_s, max_rows=limits.max_rows,
                                     max_cols=limits.max_cols)
            else:
                data = parse_in_process(verdict.kind, att.data, schema, limits.max_rows, limits.max_cols)
        except SandboxError as exc:
            unreadable.append(reason("form.unreadable", f"{verdict.kind} parse failed: {exc.kind} {exc.detail}",
                                     filename=verdict.filename))
            continue
        except Exception as exc:  # noqa: BLE001 - a parser error is an answer, never a crash
            unreadable.append(reason("form.unreadable", f"{verdict.kind} parse failed: {type(exc).__name__}",
                                     filename=verdict.filename))
            continue
        if data.labels_found >= schema.min_labels:
            forms.append((att, _to_form(data, att, verdict.kind)))

    if unreadable:
        return FormOutcome(None, None, unreadable)
    if len(forms) > 1:
        return FormOutcome(None, None, [reason("attachment.multiple_forms", f"forms={len(forms)}", count=len(forms))])
    if len(forms) == 1:
        att, form = forms[0]
        return FormOutcome(form, att, [])
    pdfs = [v for _, v in verdicts if v.kind == "pdf"]
    if pdfs:
        return FormOutcome(None, None, [reason("attachment.unsupported", "PDF instead of the form",
                                               filename=pdfs[0].filename, kind="PDF")])  # a reply_name
    others = sum(1 for _, v in verdicts if v.parseable)
    return FormOutcome(None, None, [reason("attachment.missing", f"office files without the form's labels={others}",
                                           form_name=schema.name)])
