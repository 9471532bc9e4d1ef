"""``intake status``: what the health page shows, for the terminal (exit status 1 when something is wrong)."""

from __future__ import annotations

import json

import click

from intake.timefmt import local_time


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Show the last polls, logins, the outbox's waiting/failed/bounced replies, parked mail and waiting moves.

    Exit status 1 when a login fails, a reply failed, mail is parked or a server move failed.

    Example: intake status
    """
    from dataclasses import asdict

    from intake.app import open_config_store
    from intake.cli import _load
    from intake.health import health

    h = health(open_config_store(_load(ctx)))
    if as_json:
        click.echo(json.dumps({**asdict(h), "ok": h.ok}, ensure_ascii=False, indent=2))
    else:
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
    if not h.ok:
        ctx.exit(1)
