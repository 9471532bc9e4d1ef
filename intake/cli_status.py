"""``intake status`` (how each mailbox is doing, then what the health page shows) and ``intake user desks``
(which desks a handler sees).

Registered on the main group by :func:`register`. ``status`` reads the ``mailbox_status`` table that
``intake run`` keeps up to date and the health view (last polls, logins, outbox, parked mail, server moves);
it never connects to a mailbox itself. Exit status 1 when something is wrong (see :class:`intake.health.Health`).
"""

from __future__ import annotations

import json

import click

from intake import config as config_mod
from intake.timefmt import local_time


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
        """Per mailbox: in IDLE or polling (or backing off), the last poll, mails handled, the last error; then
        the last polls, logins, the outbox's waiting/failed/bounced replies, parked mail and waiting moves.

        Read from what `intake run` records; a mailbox it has not run yet shows as unknown. Exit status 1 when
        a login fails, a reply failed, mail is parked or a server move failed.

        Example: intake status --json
        """
        from dataclasses import asdict

        from intake.app import open_config_store
        from intake.health import health

        config = _config(ctx)
        rows = status_rows(config)
        h = health(open_config_store(config))
        if as_json:
            click.echo(json.dumps({"mailboxes": rows, **asdict(h), "ok": h.ok}, ensure_ascii=False, indent=2))
        else:
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
            _echo_health(h)
        if not h.ok:
            ctx.exit(1)

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


def _echo_health(h) -> None:
    """The health page's view for the terminal, after the per-mailbox lines (no blank lines)."""
    last = h.polls[0] if h.polls else None
    click.echo(f"mailbox: {h.mailbox[0]}" + (f" ({h.mailbox[1]})" if h.mailbox[1] else ""))
    if h.backoff_until:
        click.echo(f"         no login before {local_time(h.backoff_until)} (back-off after failed logins)")
    click.echo(f"smtp:    {h.smtp[0]}" + (f" ({h.smtp[1]})" if h.smtp[1] else ""))
    if last:
        click.echo(f"last poll: {local_time(last['finished_at'])} {'ok' if last['ok'] else 'FAILED'}, "
                   f"{last['fetched']} fetched, {last['recorded']} recorded"
                   + (f"; {last['error']}" if last["error"] else ""))
    else:
        click.echo("last poll: none yet")
    click.echo(f"outbox:  {len(h.pending)} pending, {len(h.failed)} failed, {len(h.bounced)} bounced")
    for r in h.pending:
        click.echo(f"  pending #{r['id']} {r['kind']} {r['ref'] or '-'} next {local_time(r['next_attempt_at'])}"
                   + (f": {r['last_error']}" if r["last_error"] else ""))
    for r in h.failed + h.bounced:
        click.echo(f"  {r['status']} #{r['id']} {r['kind']} {r['ref'] or '-'}: {r['last_error'] or '-'}")
    click.echo(f"parked:  {len(h.parked)}")
    click.echo(f"moves:   {len(h.moves)} waiting for the next poll")
