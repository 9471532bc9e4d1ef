"""``intake orderers``: the orderer register from the command line (list, add, remove, import, export).

A thin layer over :mod:`intake.orderers`; every change is audited (actor: ``--user``, default ``$USER``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from intake import config as config_mod

LIST_FIELDS = ("id", "routine", "region", "email", "name", "valid_from", "valid_to")


def _config(ctx: click.Context):
    return config_mod.load(ctx.find_root().obj["config_path"])


def _routines(config, wanted: str | None) -> list:
    """The enabled routines, and the pack ``wanted`` names when it is not enabled (to fill its register first)."""
    from intake.app import routines_for
    from rules.packs import available_packs, load_pack

    routines = routines_for(config)
    if wanted and wanted not in {r.id for r in routines}:
        available = available_packs([config.base_dir / Path(d) for d in config["routines"]["extra_dirs"]])
        if wanted in available:
            routines.append(load_pack(available[wanted]))
    return routines


def _open(ctx: click.Context, routine: str | None):
    from intake.orderers import choose_routine
    from intake.store import open_store

    config = _config(ctx)
    chosen = choose_routine(_routines(config, routine), routine)
    return open_store(config.db_path), chosen


def _headers() -> dict[str, str]:
    from intake.web.orderers import orderer_labels

    return orderer_labels()["column"]


_routine_option = click.option("--routine", help="The routine (pack id); needed when several use the register.")
_user_option = click.option("--user", default=lambda: os.environ.get("USER") or "cli", show_default="$USER",
                            help="Who makes the change (for the audit trail).")


@click.group()
def orderers() -> None:
    """The orderer register: per routine and region, who may order."""


@orderers.command("list")
@_routine_option
@click.option("--region", help="Only this region.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def list_cmd(ctx: click.Context, routine: str | None, region: str | None, as_json: bool) -> None:
    """List the orderers of a routine.

    Example: intake orderers list --region "Region Halland"
    """
    from intake.orderers import is_valid

    store, chosen = _open(ctx, routine)
    rows = store.orderers(chosen.id, region)
    if as_json:
        click.echo(json.dumps([{k: r[k] for k in LIST_FIELDS} | {"valid_today": is_valid(r)} for r in rows],
                              ensure_ascii=False, indent=2))
        return
    for r in rows:
        state = "" if is_valid(r) else "  (not valid today)"
        click.echo(f"{r['id']:>5}  {r['region']}  {r['email']}  {r['name']}  {r['valid_from']}..{r['valid_to'] or ''}"
                   f"{state}")
    if not rows:
        click.echo("(no orderers)")


@orderers.command("add")
@click.argument("email")
@click.option("--name", required=True, help="The orderer's name.")
@click.option("--region", required=True, help="The region, as the routine's form spells it.")
@click.option("--from", "valid_from", help="First day the orderer may order (YYYY-MM-DD; default today).")
@click.option("--to", "valid_to", help="Last day the orderer may order (YYYY-MM-DD; default: until removed).")
@_routine_option
@_user_option
@click.pass_context
def add_cmd(ctx: click.Context, email: str, name: str, region: str, valid_from: str | None, valid_to: str | None,
            routine: str | None, user: str) -> None:
    """Put an orderer on the register (or update the one with that region and e-mail).

    Example: intake orderers add anna.berg@region.example.test --name "Anna Berg" --region "Region Halland"
    """
    from intake.orderers import add_orderer, today

    store, chosen = _open(ctx, routine)
    orderer_id, created = add_orderer(
        store, chosen, {"email": email, "name": name, "region": region,
                        "valid_from": valid_from or today().isoformat(), "valid_to": valid_to},
        actor=user)
    click.echo(f"orderer {orderer_id} {'added' if created else 'updated'}")


@orderers.command("remove")
@click.argument("orderer_id", type=int)
@_user_option
@click.pass_context
def remove_cmd(ctx: click.Context, orderer_id: int, user: str) -> None:
    """Take an orderer off the register, by the id `intake orderers list` shows.

    Example: intake orderers remove 12
    """
    from intake.orderers import remove_orderer
    from intake.store import open_store

    remove_orderer(open_store(_config(ctx).db_path), orderer_id, actor=user)
    click.echo(f"orderer {orderer_id} removed")


@orderers.command("import")
@click.argument("file", type=click.Path(dir_okay=False, exists=True))
@_routine_option
@click.option("--replace", is_flag=True, help="Remove the routine's orderers that the file does not name.")
@_user_option
@click.pass_context
def import_cmd(ctx: click.Context, file: str, routine: str | None, replace: bool, user: str) -> None:
    """Import orderers from .xlsx (columns E-post, Namn, Region, Giltig från, Giltig till); all or nothing.

    Example: intake orderers import bestallare.xlsx --routine symtombedomning
    """
    from intake.orderers import import_xlsx

    store, chosen = _open(ctx, routine)
    result = import_xlsx(store, chosen, Path(file).read_bytes(), actor=user, headers=_headers(), replace=replace)
    click.echo(f"imported: {result.summary()}")


@orderers.command("export")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="The .xlsx file to write.")
@_routine_option
@click.option("--region", help="Only this region.")
@_user_option
@click.pass_context
def export_cmd(ctx: click.Context, out: str, routine: str | None, region: str | None, user: str) -> None:
    """Export the orderers to .xlsx (the same columns the import reads).

    Example: intake orderers export --out bestallare.xlsx
    """
    from intake.orderers import export_orderers

    store, chosen = _open(ctx, routine)
    data, n = export_orderers(store, chosen, actor=user, region=region, headers=_headers())
    Path(out).write_bytes(data)
    click.echo(f"{n} orderers written to {out}")
