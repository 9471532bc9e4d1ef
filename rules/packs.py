"""Routine packs: a routine (subjects, request types, queues, form, reply texts) as data.

A pack is a folder with ``pack.toml``, an optional ``form.toml`` (the form schema) and
``templates/`` (Jinja2 reply texts in Swedish). ``pack.toml`` may declare the routine's check chain
(``[[chain]]`` rows, see :mod:`rules.checks`); without one the pack gets the default chain. Packs are
loaded and checked at start-up; a bad pack is a :class:`PackError` naming the file and the key, so
nothing starts half-configured.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2

from parsers.errors import IntakeError
from rules import checklists as _checklists  # noqa: F401  (registers start_checklist and checklist_complete)
from rules.checks import ChainError, ChainRow, default_chain, parse_chain
from rules.reasons import catalogue

_ID = re.compile(r"^[a-z][a-z0-9_]*$")
_PREFIX = re.compile(r"^[A-Z]{1,5}$")


class PackError(IntakeError, ValueError):
    """A routine pack is missing, malformed or inconsistent; the message names the file and the key."""


#: Every top-level key pack.toml accepts (each is documented in the README, "Writing a routine pack").
PACK_KEYS = (
    "id", "name", "ref_prefix", "desk_name", "form_name", "queues", "request_types", "templates",
    "reply_subjects", "reasons", "chain", "lifecycle", "ref_format", "ref_start",
)
#: The keys of one ``[[request_types]]`` table.
REQUEST_TYPE_KEYS = ("id", "subject", "label", "when", "queue", "needs_form", "form_kinds", "ack_template")


@dataclass(frozen=True)
class RequestType:
    """One kind of request in a routine, reached by its subject."""

    id: str
    subject: str
    label: str
    when: str
    queue: str
    needs_form: bool
    form_kinds: tuple[str, ...]
    ack_template: str


@dataclass(frozen=True)
class Routine:
    """A loaded, checked routine pack."""

    id: str
    name: str
    ref_prefix: str
    desk_name: str
    form_name: str
    queues: dict[str, str]
    request_types: tuple[RequestType, ...]
    templates: dict[str, str]
    reply_subjects: dict[str, str]
    reason_overrides: dict[str, str]
    path: Path
    form_schema: Any = None  # rules.forms.FormSchema when the pack has a form.toml
    chain: tuple[ChainRow, ...] = field(default_factory=default_chain)  # the checks, in order ([[chain]])
    lifecycle: Any = None  # rules.lifecycle.Lifecycle: the pack's own, or the common default
    env: jinja2.Environment | None = field(default=None, repr=False, compare=False)  # built once, at load
    checklists: Any = None  # rules.checklists.Checklists when the pack has a checklists.toml
    ref_format: str = ""  # e.g. "VMU{n}": references numbered without the year (ref_format, ref_start)
    ref_start: int = 1

    def ref_pattern(self) -> str:
        """How this routine's references look, for previews: ``MV-ÅÅÅÅ-NNNN`` or ``VMUNNNNNNN``."""
        if self.ref_format:
            return self.ref_format.replace("{n}", "N" * max(4, len(str(self.ref_start))))
        return f"{self.ref_prefix}-ÅÅÅÅ-NNNN"

    def request_type(self, type_id: str) -> RequestType:
        for rt in self.request_types:
            if rt.id == type_id:
                return rt
        raise KeyError(type_id)

    def conventions(self) -> list[tuple[str, str]]:
        """(request type id, canonical subject) pairs, for subject matching."""
        return [(rt.id, rt.subject) for rt in self.request_types]

    def template_env(self) -> jinja2.Environment:
        """The Jinja2 environment for this pack's mail texts (plain text; StrictUndefined).

        A template name is looked up in the pack's ``templates/`` first, then in the common folder
        ``rules/packs/_common/templates/``, so packs share texts instead of copying them. Built once when
        the pack loads (compiled templates are kept), so rendering a mail does not read the files again.
        """
        return self.env if self.env is not None else _template_env(self.path / "templates")


def common_dir() -> Path:
    """The folder of what packs share: common templates and the default lifecycle."""
    return builtin_pack_dir() / "_common"


def _template_env(folder: Path) -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.ChoiceLoader([jinja2.FileSystemLoader(str(folder)),
                                    jinja2.FileSystemLoader(str(common_dir() / "templates"))]),
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # plain-text mail; nothing here is rendered as HTML
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,  # a pack is loaded as it was at start: no stat of the template file per mail
    )


_REF_FORMAT = re.compile(r"^[A-Z]{2,5}\{n\}$")


def _ref_format(data: dict[str, Any], prefix: str, where: str) -> tuple[str, int]:
    """The optional per-pack reference format: ``ref_format = "VMU{n}"`` (the prefix, then a number from
    ``ref_start``, counted per pack and never per year)."""
    if "ref_format" not in data:
        if "ref_start" in data:
            raise PackError(f"{where}: ref_start: only with ref_format")
        return "", 1
    fmt = _need(data, "ref_format", str, where)
    if not _REF_FORMAT.match(fmt) or not fmt.startswith(prefix) or fmt[: -len("{n}")] != prefix:
        raise PackError(f"{where}: ref_format: must be the ref_prefix (2-5 letters) followed by {{n}}, e.g. "
                        f"\"{prefix}{{n}}\"")
    start = data.get("ref_start", 1)
    if not isinstance(start, int) or isinstance(start, bool) or not 1 <= start < 10**12:
        raise PackError(f"{where}: ref_start: expected a positive whole number")
    if len(str(start)) < 5:
        raise PackError(f"{where}: ref_start: at least five digits (references must not look like other numbers)")
    return fmt, start


def _need(data: dict[str, Any], key: str, kind: type, where: str) -> Any:
    if key not in data:
        raise PackError(f"{where}: {key}: missing")
    value = data[key]
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise PackError(f"{where}: {key}: expected {kind.__name__}")
    return value


def load_pack(folder: str | Path) -> Routine:
    """Load and check the pack in ``folder``."""
    folder = Path(folder)
    where = str(folder / "pack.toml")
    try:
        data = tomllib.loads((folder / "pack.toml").read_text("utf-8"))
    except OSError as exc:
        raise PackError(f"{where}: cannot read ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise PackError(f"{where}: not valid TOML ({exc})") from None

    unknown_keys = sorted(set(data) - set(PACK_KEYS))
    if unknown_keys:
        hint = " (set the personal_data check's params in [[chain]])" if unknown_keys[0] == "personal_data" else ""
        raise PackError(f"{where}: {unknown_keys[0]}: unknown key{hint}")
    pack_id = _need(data, "id", str, where)
    if not _ID.match(pack_id):
        raise PackError(f"{where}: id: must be lower-case letters, digits and _")
    prefix = _need(data, "ref_prefix", str, where)
    if not _PREFIX.match(prefix):
        raise PackError(f"{where}: ref_prefix: must be 1-5 upper-case letters")
    ref_format, ref_start = _ref_format(data, prefix, where)
    queues_data = _need(data, "queues", dict, where)
    queues = {}
    for qid, q in queues_data.items():
        if not _ID.match(qid) or not isinstance(q, dict):
            raise PackError(f"{where}: queues.{qid}: must be a table with a lower-case id")
        queues[qid] = _need(q, "name", str, f"{where}: queues.{qid}")

    types = []
    seen_ids: set[str] = set()
    for i, rt in enumerate(_need(data, "request_types", list, where)):
        here = f"{where}: request_types[{i}]"
        rt_id = _need(rt, "id", str, here)
        if not _ID.match(rt_id) or rt_id in seen_ids:
            raise PackError(f"{here}: id: must be a unique lower-case id")
        seen_ids.add(rt_id)
        queue = _need(rt, "queue", str, here)
        if queue not in queues:
            raise PackError(f"{here}: queue: {queue!r} is not one of the pack's queues")
        unknown = set(rt) - set(REQUEST_TYPE_KEYS)
        if unknown:
            raise PackError(f"{here}: {sorted(unknown)[0]}: unknown key")
        types.append(
            RequestType(
                id=rt_id,
                subject=_need(rt, "subject", str, here),
                label=_need(rt, "label", str, here),
                when=_need(rt, "when", str, here),
                queue=queue,
                needs_form=_need(rt, "needs_form", bool, here),
                form_kinds=tuple(rt.get("form_kinds", [])),
                ack_template=_need(rt, "ack_template", str, here),
            )
        )
    if not types:
        raise PackError(f"{where}: request_types: at least one is needed")

    templates = dict(_need(data, "templates", dict, where))
    for needed in ("rejection", "completion"):
        if needed not in templates:
            raise PackError(f"{where}: templates.{needed}: missing")
    env = _template_env(folder / "templates")
    for name in sorted(set(templates.values()) | {rt.ack_template for rt in types}):
        try:
            env.get_template(name)
        except jinja2.TemplateNotFound:
            raise PackError(f"{where}: template {name}: not found in {folder / 'templates'} "
                            f"or {common_dir() / 'templates'}") from None
        except jinja2.TemplateSyntaxError as exc:
            raise PackError(f"{where}: template {name}: line {exc.lineno}: {exc.message}") from None

    reply_subjects = dict(_need(data, "reply_subjects", dict, where))
    for needed in ("ack", "rejection", "completion"):
        if needed not in reply_subjects:
            raise PackError(f"{where}: reply_subjects.{needed}: missing")
    for name, text in reply_subjects.items():
        try:
            env.from_string(text)
        except jinja2.TemplateSyntaxError as exc:
            raise PackError(f"{where}: reply_subjects.{name}: {exc.message}") from None

    overrides = dict(data.get("reasons", {}))
    for code in overrides:
        if code not in catalogue():
            raise PackError(f"{where}: reasons.{code}: not a known reason code")

    form_schema = None
    if (folder / "form.toml").exists():
        from parsers.schema import FormSchemaError, load_form_schema

        try:
            form_schema = load_form_schema(folder / "form.toml")
        except FormSchemaError as exc:
            raise PackError(str(exc)) from None
    if any(rt.needs_form for rt in types) and form_schema is None:
        raise PackError(f"{where}: a request type needs a form but the pack has no form.toml")
    if form_schema is not None:
        known_kinds = set(getattr(form_schema, "kinds", ()) or ())
        for rt in types:
            for kind in rt.form_kinds:
                if known_kinds and kind not in known_kinds:
                    raise PackError(f"{where}: request type {rt.id}: form kind {kind!r} is not in form.toml")

    lifecycle = _load_lifecycle(data, where, templates, reply_subjects, form_schema)
    checklists = _load_checklists(folder, [rt.id for rt in types], form_schema, lifecycle)

    routine = Routine(
        id=pack_id,
        name=_need(data, "name", str, where),
        ref_prefix=prefix,
        ref_format=ref_format,
        ref_start=ref_start,
        desk_name=_need(data, "desk_name", str, where),
        form_name=_need(data, "form_name", str, where),
        queues=queues,
        request_types=tuple(types),
        templates=templates,
        reply_subjects=reply_subjects,
        reason_overrides=overrides,
        path=folder,
        form_schema=form_schema,
        chain=load_chain(data, where),
        lifecycle=lifecycle,
        env=env,
        checklists=checklists,
    )
    _check_register_mapping(routine)
    return routine


def _check_register_mapping(routine: Routine) -> None:
    """A pack's ``register.toml`` (the access register's mapping) is checked with the pack, so a mistake in it
    stops start-up and ``intake packs check`` instead of a handler's "done"."""
    from rules.register import RegisterMappingError, load_register_mapping

    try:
        load_register_mapping(routine)
    except RegisterMappingError as exc:
        raise PackError(str(exc)) from None


def _load_checklists(folder: Path, type_ids: list[str], form_schema: Any, lifecycle: Any) -> Any:
    """The pack's ``checklists.toml`` (see :mod:`rules.checklists`), or None when it has none. A pack with
    checklists must start them: some state or transition of its lifecycle runs ``start_checklist``."""
    from rules.checklists import ChecklistError, load_checklists

    path = folder / "checklists.toml"
    if not path.exists():
        return None
    scheduler = {t.event for t in lifecycle.transitions if "scheduler" in t.by}
    try:
        found = load_checklists(path, request_types=type_ids, form_schema=form_schema, scheduler_events=scheduler)
    except ChecklistError as exc:
        raise PackError(str(exc)) from None
    if not any(e.name == "start_checklist" for e in lifecycle.all_effects()):
        raise PackError(f"{path}: checklists: the lifecycle in pack.toml never runs the effect start_checklist "
                        f"(add it to the initial state's on_enter)")
    return found


def load_chain(data: dict[str, Any], where: str) -> tuple[ChainRow, ...]:
    """The pack's ``[[chain]]`` rows, checked (unknown check, parameter or action: :class:`PackError`),
    or the default chain when it declares none."""
    if "chain" not in data:
        return default_chain()
    try:
        return parse_chain(data["chain"])
    except ChainError as exc:
        raise PackError(f"{where}: {exc}") from None


def _load_lifecycle(data: dict[str, Any], where: str, templates: dict[str, str], reply_subjects: dict[str, str],
                    form_schema: Any) -> Any:
    """The pack's ``[lifecycle]``, or the common default (``_common/lifecycle.toml``) when it declares none."""
    from rules.lifecycle import LifecycleError, load_lifecycle

    if "lifecycle" in data:
        table, source = data["lifecycle"], where
        if not isinstance(table, dict):
            raise PackError(f"{where}: lifecycle: expected a table")
    else:
        source = str(common_dir() / "lifecycle.toml")
        table = tomllib.loads((common_dir() / "lifecycle.toml").read_text("utf-8"))["lifecycle"]
    fields = parties = None
    if form_schema is not None:
        fields = {f.id for section in form_schema.sections for f in section.fields}
        parties = _party_ids(form_schema)
    try:
        return load_lifecycle(table, source, templates=set(templates) & set(reply_subjects),
                              form_fields=fields, form_parties=parties)
    except LifecycleError as exc:
        raise PackError(str(exc)) from None


def _party_ids(form_schema: Any) -> set[str]:
    """Ids of the form's parties (orderer, attestant), when the schema has them."""
    parties = getattr(form_schema, "parties", None) or ()
    if isinstance(parties, dict):
        return set(parties)
    return {getattr(p, "id", p) for p in parties}


def builtin_pack_dir() -> Path:
    """The folder of the packs that ship with the bot."""
    return Path(str(resources.files("rules").joinpath("packs")))


def available_packs(extra_dirs: list[Path] | None = None) -> dict[str, Path]:
    """Pack id -> folder, for built-in packs and those in ``extra_dirs`` (which win)."""
    found: dict[str, Path] = {}
    for base in [builtin_pack_dir(), *(extra_dirs or [])]:
        for pack_toml in sorted(Path(base).glob("*/pack.toml")):
            if not pack_toml.parent.name.startswith("_"):  # _common holds shared parts, not a pack
                found[pack_toml.parent.name] = pack_toml.parent
    return found


def load_packs(enabled: list[str], extra_dirs: list[Path] | None = None) -> list[Routine]:
    """Load the enabled packs, by id; an unknown id is a :class:`PackError`."""
    available = available_packs(extra_dirs)
    routines = []
    for pack_id in enabled:
        if pack_id not in available:
            raise PackError(f"routine {pack_id!r}: no such pack (have: {', '.join(sorted(available))})")
        routine = load_pack(available[pack_id])
        if routine.id != pack_id:
            raise PackError(f"{available[pack_id]}/pack.toml: id: {routine.id!r} does not match its folder")
        routines.append(routine)
    prefixes = [r.ref_prefix for r in routines]
    if len(set(prefixes)) != len(prefixes):
        raise PackError("routines: two enabled packs share a ref_prefix")
    return routines
