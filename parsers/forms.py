"""Choosing the request form among a mail's attachments and reading it: attachments in, facts out.

This module states what it found; :mod:`rules.forms` turns the facts into reasons. Per mail:

* Every attachment is first judged by :func:`parsers.attachments.check_attachment`. If any is
  unsafe (macros, password, bomb, XML entities, lying extension, bad name, too large) or an
  unsupported Office file (legacy .doc/.xls, empty), the facts are those refusals and nothing is
  parsed.
* More Office files than ``limits.max_office_files`` are not parsed at all (``too_many``).
* Images (signatures, logos) and other non-Office files are ignored. PDFs are ignored unless no
  form is found, in which case the PDF is ``unsupported``.
* Each .xlsx/.docx is parsed in one sandbox for the whole mail (:mod:`parsers.sandbox`), under one
  total time limit. A file counts as the form when at least ``schema.min_labels`` of its labels are
  found; one that parses but has too few is an unrelated document and is ignored.
* Several forms in one mail are ``multiple``; an Office file that cannot be parsed is
  ``unreadable`` (even beside a readable form: it may be a second form); no form at all is
  ``missing``. No exception from a parser leaves this module.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from parsers.attachments import AttachmentLimits, Verdict, check_attachment, display_name
from parsers.formgrid import FormData
from parsers.mail import Attachment
from parsers.sandbox import SandboxError, parse_bounded_many, parse_in_process
from parsers.schema import FormSchema

# The problems extract_form reports, each a fact with details for staff (never file content).
PROBLEM_KINDS = ("refused", "too_many", "unreadable", "multiple", "unsupported", "missing")
MAX_OFFICE_FILES = 5


@dataclass
class ParsedForm:
    """A request form as read: the ticked request kind, single fields, the rows of the persons table.

    ``kind`` is the one ticked request kind (None when none or several are ticked; all ticked ones are
    in ``kinds_checked``). Field values are text, :class:`datetime.date` for readable dates, a list
    for multi-valued fields and an option value (``add``, ``remove``) for a row's action. Each row
    carries ``row``, its 1-based position in the form's table (blank rows counted). ``parties`` holds,
    per named party (``orderer``, ``attestant``), its fields that have a ``party_key``, by that key.
    """

    kind: str | None
    fields: dict[str, object]
    users: list[dict[str, object]]
    filename: str
    format: str
    kinds_checked: list[str] = field(default_factory=list)
    parties: dict[str, dict[str, object]] = field(default_factory=dict)

    def party(self, name: str) -> dict[str, object]:
        """The named party's fields (``name``, ``email``, ...); empty when the form has no such party."""
        return dict(self.parties.get(name, {}))

    def to_dict(self) -> dict[str, object]:
        """JSON-able, with dates as ISO strings."""

        def plain(v: object) -> object:
            if isinstance(v, list):
                return [plain(x) for x in v]
            return v.isoformat() if isinstance(v, date) else v

        out: dict[str, object] = {
            "kind": self.kind,
            "kinds_checked": list(self.kinds_checked),
            "fields": {k: plain(v) for k, v in self.fields.items()},
            "users": [{k: plain(v) for k, v in u.items()} for u in self.users],
            "filename": self.filename,
            "format": self.format,
        }
        if self.parties:
            out["parties"] = {p: {k: plain(v) for k, v in vals.items()} for p, vals in self.parties.items()}
        return out


@dataclass(frozen=True)
class Problem:
    """Why no form (or not only a form) came out of the attachments: one of :data:`PROBLEM_KINDS`.

    ``verdict`` is the attachment check's verdict for ``refused`` files; ``filename`` how a reply may
    name the file; ``detail`` for staff; ``count`` for ``multiple`` and ``too_many``.
    """

    kind: str
    detail: str = ""
    filename: str = ""
    verdict: Verdict | None = None
    count: int = 0
    file_kind: str = ""


@dataclass(frozen=True)
class FormFacts:
    """What the attachments held: the form and its attachment, or the problems (never both)."""

    form: ParsedForm | None
    attachment: Attachment | None
    problems: list[Problem]


def to_form(data: FormData, schema: FormSchema, filename: str, fmt: str) -> ParsedForm:
    """A :class:`ParsedForm` from a parser's raw data, with the schema's parties filled in."""
    kind = data.kinds_checked[0] if len(data.kinds_checked) == 1 else None
    parties: dict[str, dict[str, object]] = {}
    for sec in schema.sections:
        if sec.party:
            parties[sec.party] = {f.party_key: data.fields.get(f.id) for f in sec.fields if f.party_key}
    return ParsedForm(kind=kind, fields=dict(data.fields), users=list(data.users), filename=filename, format=fmt,
                      kinds_checked=list(data.kinds_checked), parties=parties)


def extract_form(
    attachments: list[Attachment],
    schema: FormSchema,
    limits: AttachmentLimits | None = None,
    *,
    sandbox: bool = True,
    max_office_files: int = MAX_OFFICE_FILES,
) -> FormFacts:
    """Find, check and read the one request form among ``attachments`` (see the module docstring)."""
    limits = limits or AttachmentLimits()
    verdicts = [(att, check_attachment(att, limits)) for att in attachments]
    refused = [Problem("refused", v.detail, v.filename, verdict=v) for _, v in verdicts if not v.ok]
    if refused:
        return FormFacts(None, None, refused)
    office = [(att, v) for att, v in verdicts if v.parseable]
    if len(office) > max_office_files:
        return FormFacts(None, None, [Problem("too_many", f"office files={len(office)} max={max_office_files}",
                                              count=len(office))])

    results: list[FormData | SandboxError | Exception]
    if sandbox and office:
        results = parse_bounded_many([(v.kind, att.data) for att, v in office], schema,
                                     memory_bytes=limits.sandbox_memory_bytes, timeout_s=limits.sandbox_timeout_s,
                                     max_rows=limits.max_rows, max_cols=limits.max_cols)
    else:
        results = []
        for att, v in office:
            try:
                results.append(parse_in_process(v.kind, att.data, schema, limits.max_rows, limits.max_cols))
            except Exception as exc:  # noqa: BLE001 - a parser error is an answer, never a crash
                results.append(exc)

    forms: list[tuple[Attachment, ParsedForm]] = []
    unreadable: list[Problem] = []
    for (att, verdict), result in zip(office, results, strict=True):
        if isinstance(result, SandboxError):
            unreadable.append(Problem("unreadable", f"{verdict.kind} parse failed: {result.kind} {result.detail}",
                                      verdict.filename))
        elif isinstance(result, Exception):
            unreadable.append(Problem("unreadable", f"{verdict.kind} parse failed: {type(result).__name__}",
                                      verdict.filename))
        elif result.labels_found >= schema.min_labels:
            forms.append((att, to_form(result, schema, display_name(att.filename), verdict.kind)))

    if unreadable:
        return FormFacts(None, None, unreadable)
    if len(forms) > 1:
        return FormFacts(None, None, [Problem("multiple", f"forms={len(forms)}", count=len(forms))])
    if len(forms) == 1:
        att, form = forms[0]
        return FormFacts(form, att, [])
    pdfs = [v for _, v in verdicts if v.kind == "pdf"]
    if pdfs:
        return FormFacts(None, None, [Problem("unsupported", "PDF instead of the form", pdfs[0].filename,
                                              file_kind="pdf")])
    return FormFacts(None, None, [Problem("missing", f"office files without the form's labels={len(office)}")])
