"""``intake status`` (how each mailbox is doing) and ``intake user desks`` (which desks a handler sees).

Registered on the main group by :func:`register`. ``status`` reads the ``mailbox_status`` table that
``intake run`` keeps up to date; it never connects to a mailbox itself.
"""

from __future__ import annotations

import json

import click

from intake import config as config_mod


def _config(ctx: click.Context):
    return config_mod.load(ctx.find_root().obj["config_path"])


def status_rows(config) -> list[dict]:
    """One row per configured mailbox: its last recorded status (mode ``unknown`` before the first run)."""
    from intake.app import open_config_store

    recorded = {r["name"]: r for r in open_config_store(config).mailbox_status()}
    rows = []
    for box in config.mailboxes:
        row = dict(recorded.get(box.name) or {"name": box.name, "mode": "unknown"})
        row["idle_configured"] = bool(box["idle"]) and box.kind == "imap"
        rows.append(row)
    return rows


def register(main: click.Group) -> None:
    @main.command()
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @click.pass_context
    def status(ctx: click.Context, as_json: bool) -> None:
        """Per mailbox: in IDLE or polling (or backing off), the last poll, mails handled, the last error.

        Read from what `intake run` records; a mailbox it has not run yet shows as unknown.

        Example: intake status --json
        """
        rows = status_rows(_config(ctx))
        if as_json:
            click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
            return
        for r in rows:
            line = f"{r['name']:16} {r.get('mode') or 'unknown':8}"
            if r.get("desk_name"):
                line += f"  desk: {r['desk_name']}"
            if r.get("last_poll_at"):
                line += f"  last poll {r['last_poll_at']} ({r.get('last_handled') or 0} mails)"
            if r.get("mode") == "backoff" and r.get("next_try_at"):
                line += f"  next try {r['next_try_at']}"
            if r.get("last_error"):
                line += f"  last error {r.get('last_error_at') or ''}: {r['last_error']}"
            click.echo(line)

    user_group: click.Group = main.commands["user"]  # type: ignore[assignment]

    @user_group.command("desks")
    @click.argument("name")
    @click.argument("desks", nargs=-1)
    @click.pass_context
    def user_desks(ctx: click.Context, name: str, desks: tuple[str, ...]) -> None:
        """Limit a handler to some desks (mailbox names); with no desks, the handler sees every desk.

        Example: intake user desks anna halland vgr
        """
        from intake.app import open_config_store

        config = _config(ctx)
        known = {box.name for box in config.mailboxes}
        unknown = sorted(set(desks) - known)
        if unknown:
            raise click.ClickException(f"no mailbox named {unknown[0]!r} (configured: {', '.join(sorted(known))})")
        if not open_config_store(config).set_user_desks(name, list(desks)):
            raise click.ClickException(f"no user named {name!r}")
        click.echo(f"{name}: {', '.join(desks) if desks else 'every desk'}")
