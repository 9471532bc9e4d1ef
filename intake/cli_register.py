"""``intake register``: the access register from the command line (search, export, purge, key, apply).

A thin layer over :mod:`intake.register`; every search, view and export is audited exactly as in the
web UI (actor: ``$USER``, ``via: cli``).
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import click

from intake import config as config_mod

LIST_FIELDS = ("id", "person", "name", "system", "role", "unit", "municipality", "valid_from", "valid_to",
               "state", "ended_on", "orderer_email")


def _user() -> str:
    return os.environ.get("USER") or "cli"


def _config(ctx: click.Context):
    return config_mod.load(ctx.find_root().obj["config_path"])


def _open(ctx: click.Context):
    from intake.register import keys_for
    from intake.store import open_store

    config = _config(ctx)
    store = open_store(config.db_path)
    return config, store, keys_for(config, store)


class _Group(click.Group):
    def invoke(self, ctx: click.Context):  # type: ignore[override]
        from intake.register import RegisterError

        try:
            return super().invoke(ctx)
        except RegisterError as exc:
            raise click.ClickException(str(exc)) from None


def _filters(unit: str | None, kommun: str | None, system: str | None, role: str | None, orderer: str | None,
             state: str):
    from intake.register import RegisterFilters

    return RegisterFilters(unit=unit, municipality=kommun, system=system, role=role, orderer=orderer, state=state)


def _filter_options(fn):
    for option in reversed([
        click.option("--unit", help="Unit name or unit HSA-id."),
        click.option("--kommun", help="Municipality."),
        click.option("--system", help="System, e.g. MittVaccin."),
        click.option("--role", help="Role in the system."),
        click.option("--orderer", help="The orderer's e-mail address."),
        click.option("--state", type=click.Choice(["current", "ended", "all"]), default="current", show_default=True,
                     help="Current access (not yet ended), ended access, or all."),
    ]):
        fn = option(fn)
    return fn


@click.group(cls=_Group)
def register() -> None:
    """The access register: who holds which access, since when, on whose order."""


@register.command("init-key")
@click.pass_context
def init_key_cmd(ctx: click.Context) -> None:
    """Create the register's key file (register.key_file, mode 0600); never overwrites one.

    Example: intake register init-key
    """
    from intake.register import init_key, key_path

    path = init_key(key_path(_config(ctx)))
    click.echo(f"register key written to {path} (keep it out of database backups; without it the register "
               f"cannot be read)")


@register.command("search")
@click.option("--person", "person", help="A person's personnummer or HSA-id (exact match).")
@_filter_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def search_cmd(ctx: click.Context, person: str | None, unit: str | None, kommun: str | None, system: str | None,
               role: str | None, orderer: str | None, state: str, as_json: bool) -> None:
    """Search the register by person, or list entries by unit, municipality, system, role or orderer.

    Example: intake register search --kommun Halmstad --system MittVaccin --json
    """
    from intake.register import find_person, list_entries, person_view

    if not (person or unit or kommun or system or role or orderer):
        raise click.UsageError("give --person, --unit, --kommun, --system, --role or --orderer")
    _, store, keys = _open(ctx)
    if person:
        person_id = find_person(store, keys, person, _user(), via="cli")
        if person_id is None:
            if as_json:
                click.echo("[]")
            else:
                click.echo("(nobody with that identifier in the register)")
            return
        view = person_view(store, keys, person_id, _user(), via="cli")
        rows = [*view["current"], *view["past"]]
        f = _filters(unit, kommun, system, role, orderer, state)
        rows = [r for r in rows if _matches(r, f)]
    else:
        rows = list_entries(store, keys, _filters(unit, kommun, system, role, orderer, state), _user(),
                            what="search", via="cli")
    if as_json:
        click.echo(json.dumps([{k: r.get(k) for k in LIST_FIELDS} for r in rows], ensure_ascii=False, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(*LIST_FIELDS)
    for r in rows:
        table.add_row(*["" if r.get(k) is None else str(r.get(k)) for k in LIST_FIELDS])
    Console(width=220).print(table)
    if not rows:
        click.echo("(no entries)")


def _matches(row: dict, f) -> bool:
    today = datetime.now(UTC).date().isoformat()
    current = row["state"] == "active" or (row["ended_on"] or "") >= today
    if f.state == "current" and not current or f.state == "ended" and current:
        return False
    for key, value in (("unit", f.unit), ("municipality", f.municipality), ("system", f.system), ("role", f.role),
                       ("orderer_email", f.orderer)):
        if value and (row.get(key) or "").casefold() != value.casefold() and not (
                key == "unit" and (row.get("unit_hsa_id") or "").casefold() == value.casefold()):
            return False
    return True


@register.command("export")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="The .xlsx file to write.")
@_filter_options
@click.pass_context
def export_cmd(ctx: click.Context, out: str, unit: str | None, kommun: str | None, system: str | None,
               role: str | None, orderer: str | None, state: str) -> None:
    """Export the filtered entries to Excel (e.g. a unit's review list for its orderer).

    Example: intake register export --out granskning.xlsx --unit "Hemsjukvården Väster"
    """
    from intake.register import export_entries
    from intake.web.register import register_labels

    _, store, keys = _open(ctx)
    data, n = export_entries(store, keys, _filters(unit, kommun, system, role, orderer, state), _user(), via="cli",
                             headers=register_labels()["column"],
                             values={"state": register_labels()["state"], "source": register_labels()["source"]})
    Path(out).write_bytes(data)
    click.echo(f"{n} register entries written to {out}")


@register.command("purge")
@click.option("--days", type=int, help="Delete entries that ended more than this many days ago "
                                       "(default: register.retention_days).")
@click.pass_context
def purge_cmd(ctx: click.Context, days: int | None) -> None:
    """Delete entries of access that ended long ago (their own retention; active access stays).

    Example: intake register purge
    """
    from intake.register import purge_register
    from intake.store import open_store

    config = _config(ctx)
    result = purge_register(open_store(config.db_path),
                            days if days is not None else config["register"]["retention_days"])
    click.echo(result.summary())


@register.command("apply")
@click.argument("ref")
@click.pass_context
def apply_cmd(ctx: click.Context, ref: str) -> None:
    """Feed the register from one done ticket (done tickets normally feed it themselves).

    Example: intake register apply MV-2026-0001
    """
    from intake.app import routines_for
    from intake.register import RegisterError, apply_done_ticket

    config, store, keys = _open(ctx)
    if store.ticket(ref)["status"] != "done":
        raise RegisterError(f"{ref} is not done")
    routines = {r.id: r for r in routines_for(config)}
    ids = apply_done_ticket(store, ref, routines, datetime.now(UTC), _user(), keys=keys)
    click.echo(f"{len(ids)} register entries made or changed")
