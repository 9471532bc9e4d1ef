"""Assembly: from a :class:`~intake.config.Config` to a store, routines, a poller and an outbox."""

from __future__ import annotations

from pathlib import Path

from intake.config import Config
from intake.outbox import Outbox, file_transport, smtp_transport
from intake.pipeline import Settings
from intake.poller import Folders, Poller
from intake.sources.base import MailSource
from intake.sources.local import LocalSource
from intake.store import Store, open_store
from rules.packs import Routine, load_packs


def routines_for(config: Config) -> list[Routine]:
    extra = [config.base_dir / Path(d) for d in config["routines"]["extra_dirs"]]
    return load_packs(config["routines"]["enabled"], extra)


def source_factory(config: Config):
    mailbox = config["mailbox"]
    if mailbox["kind"] == "local":
        path = config.path("mailbox", "path")
        return lambda: LocalSource(path)
    from intake.sources.imap import ImapConfig, ImapSource

    imap_config = ImapConfig.from_mapping(
        {k: mailbox[k] for k in ("host", "port", "username", "password", "password_env", "tls",
                                 "allow_plaintext", "folder", "batch_size", "timeout")}
        # A relative ca_file is relative to the config file's folder, like every other path.
        | {"ca_file": str(config.path("mailbox", "ca_file")) if mailbox["ca_file"] else ""},
        config.env,
    )

    def make() -> MailSource:
        return ImapSource(imap_config)

    return make


def make_poller(config: Config, store: Store, routines: list[Routine]) -> Poller:
    return Poller(
        store,
        routines,
        source_factory(config),
        settings=Settings.from_config(config),
        folders=Folders.from_config(config["mailbox.folders"]),
        rate_limit_per_hour=config["replies"]["rate_limit_per_hour"],
        max_attempts=config["poll"]["max_attempts"],
    )


def blank_form_attachments(routines: list[Routine], store: Store):
    """Attachments of the blank form for a rejection, generated from the pack (never drifts) once per pack
    version and process (:func:`intake.blankforms.blank_form_bytes`)."""
    by_id = {r.id: r for r in routines}

    def attachments(outbox_id: int) -> list[tuple[str, bytes, str]]:
        routine_id = store.outbox_routine(outbox_id)
        routine = by_id.get(routine_id) if routine_id else routines[0]
        if routine is None or routine.form_schema is None:
            return []
        from intake.blankforms import blank_form_bytes

        return [(name, data, _mime(Path(name))) for name, data in blank_form_bytes(routine.form_schema,
                                                                                   routine.form_name)]

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
        blank_forms=blank_form_attachments(routines, store),
    )


def open_app(config: Config) -> tuple[Store, list[Routine]]:
    routines = routines_for(config)
    return open_config_store(config), routines


def open_config_store(config: Config) -> Store:
    """A connection of its own to the configured store (one per thread that writes)."""
    return open_store(config.db_path, busy_timeout=config["store"]["busy_timeout_seconds"])
