"""Assembly: from a :class:`~intake.config.Config` to a store, routines, a poller and an outbox."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from intake.config import Config, MailboxConfig
from intake.deciders import default_workers
from intake.outbox import Outbox, file_transport, smtp_transport
from intake.pipeline import Settings
from intake.poller import Folders, Poller, Pollers
from intake.sources.base import MailSource
from intake.sources.local import LocalSource
from intake.store import Store, open_store
from rules.packs import Routine, load_packs


def routines_for(config: Config) -> list[Routine]:
    extra = [config.base_dir / Path(d) for d in config["routines"]["extra_dirs"]]
    return load_packs(config["routines"]["enabled"], extra)


def source_factory(config: Config, mailbox: MailboxConfig | None = None):
    """A maker of fresh sources for ``mailbox`` (default: the first configured mailbox)."""
    box = mailbox or config.mailboxes[0]
    if box.kind == "local":
        path = config.mailbox_path(box, "path")
        return lambda: LocalSource(path)
    from intake.sources.imap import ImapSource

    imap_config = imap_config_for(config, box)

    def make() -> MailSource:
        return ImapSource(imap_config)

    return make


def imap_config_for(config: Config, box: MailboxConfig):
    from intake.sources.imap import ImapConfig

    return ImapConfig.from_mapping(
        {k: box[k] for k in ("host", "port", "username", "password", "password_env", "tls",
                             "allow_plaintext", "folder", "batch_size", "timeout")}
        # A relative ca_file is relative to the config file's folder, like every other path.
        | {"ca_file": str(config.mailbox_path(box, "ca_file")) if box["ca_file"] else ""},
        config.env,
    )


def mailbox_routines(box: MailboxConfig, routines: list[Routine]) -> list[Routine]:
    """The routines ``box`` serves, its default routine first, signed with the mailbox's desk name.

    The first routine answers mail that matches none; a mailbox's ``desk_name`` wins over the pack's.
    """
    served = [r for r in routines if not box["routines"] or r.id in box["routines"]]
    if box["default_routine"]:
        served.sort(key=lambda r: r.id != box["default_routine"])
    if box["desk_name"]:
        served = [replace(r, desk_name=box["desk_name"]) for r in served]
    return served


def mailbox_settings(config: Config, box: MailboxConfig) -> Settings:
    """The decision settings of ``box``: its From identity; every mailbox's address counts as our own."""
    base = Settings.from_config(config)
    replies = config["replies"]
    ours = {b.from_address(replies).lower() for b in config.mailboxes}
    return replace(base, from_address=box.from_address(replies), from_name=box.from_name(replies),
                   mailbox=box.name, own_addresses=base.own_addresses | ours,
                   max_message_bytes=box["max_message_bytes"], default_routine=box["default_routine"])


def desk_name_of(box: MailboxConfig, routines: list[Routine]) -> str:
    served = mailbox_routines(box, routines)
    return box["desk_name"] or (served[0].desk_name if served else box.name)


@dataclass(frozen=True)
class Desk:
    """A configured mailbox as staff see it: its name (id), desk name, recorded source and routines."""

    name: str
    desk_name: str
    source: str
    routines: tuple[str, ...]


def desks_of(config: Config, routines: list[Routine]) -> list[Desk]:
    """Every configured mailbox as a desk (needs no password: nothing connects)."""
    desks = []
    for box in config.mailboxes:
        served = mailbox_routines(box, routines)
        desks.append(Desk(box.name, desk_name_of(box, routines), _source_of(config, box), tuple(r.id for r in served)))
    return desks


def folders_by_source(config: Config) -> dict[str, dict[str, Any]]:
    """Recorded source -> its mailbox's ``folders`` (where a handler's judged held mail goes on the server)."""
    return {_source_of(config, box): dict(box.folders) for box in config.mailboxes}


def _source_of(config: Config, box: MailboxConfig) -> str:
    from intake.sources.imap import source_name

    if box.kind == "local":
        return f"local:{config.mailbox_path(box, 'path').resolve()}"
    return source_name(box["host"], box["port"], box["username"], box["folder"])


def make_poller(config: Config, store: Store, routines: list[Routine]) -> Poller | Pollers:
    """The poller of the one configured mailbox, or :class:`Pollers` over several (same ``poll_once``)."""
    pollers = [make_mailbox_poller(config, store, routines, box) for box in config.mailboxes]
    return pollers[0] if len(pollers) == 1 else Pollers(pollers)


def make_mailbox_poller(config: Config, store: Store, routines: list[Routine], box: MailboxConfig) -> Poller:
    return Poller(
        store,
        mailbox_routines(box, routines),
        source_factory(config, box),
        settings=mailbox_settings(config, box),
        folders=Folders.from_config(box.folders),
        rate_limit_per_hour=config["replies"]["rate_limit_per_hour"],
        max_attempts=config["poll"]["max_attempts"],
        mailbox=box,
        workers=config["poll"]["workers"] or default_workers(),
        db_path=config.db_path,
    )


def blank_form_attachments(routines: list[Routine], store: Store, default_routine: str = "",
                           cache_dir: Path | None = None):
    """Attachments of the blank form for a rejection, generated from the pack (never drifts) once per pack
    version and process (:func:`intake.blankforms.blank_form_bytes`). A mail that named no routine gets the
    default routine's form (``mailbox.default_routine``), never simply the first one enabled."""
    by_id = {r.id: r for r in routines}
    made: dict[str, list[tuple[str, bytes, str]]] = {}  # these routines' packs do not change under us

    def attachments(outbox_id: int) -> list[tuple[str, bytes, str]]:
        routine_id = store.outbox_routine(outbox_id) or default_routine
        routine = by_id.get(routine_id)
        if routine is None or routine.form_schema is None:
            return []
        if routine_id not in made:
            from intake.blankforms import blank_form_bytes

            forms = blank_form_bytes(routine.form_schema, routine.form_name, cache_dir=cache_dir)
            made[routine_id] = [(name, data, _mime(Path(name))) for name, data in forms]
        return list(made[routine_id])

    return attachments


def _mime(path: Path) -> str:
    return {
        ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    }.get(path.suffix, "application/octet-stream")


def make_outbox(config: Config, store: Store, routines: list[Routine]) -> Outbox:
    out = config["outbox"]
    transport = file_transport(config.path("outbox", "dir")) if out["kind"] == "file" else smtp_transport(config)
    return Outbox(
        store,
        transport,
        from_address=config["replies"]["from_address"],
        from_name=config["replies"]["from_name"],
        max_attempts=out["max_attempts"],
        blank_forms=blank_form_attachments(routines, store, config["mailbox"]["default_routine"],
                                           cache_dir=config.db_path.parent / "cache" / "blankforms"),
        identities=identities_of(config, routines),
    )


def identities_of(config: Config, routines: list[Routine]) -> dict[str, tuple[str, str]]:
    """Source name -> (From address, From name) of every configured mailbox."""
    replies = config["replies"]
    by_name = {box.name: box for box in config.mailboxes}
    return {d.source: (by_name[d.name].from_address(replies), by_name[d.name].from_name(replies))
            for d in desks_of(config, routines)}


def open_app(config: Config) -> tuple[Store, list[Routine]]:
    routines = routines_for(config)
    return open_config_store(config), routines


def open_config_store(config: Config) -> Store:
    """A connection of its own to the configured store (one per thread that writes)."""
    return open_store(config.db_path, busy_timeout=config["store"]["busy_timeout_seconds"])
