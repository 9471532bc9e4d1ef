"""Staff commands: the web UI, accounts, ticket actions, export, retention and held mail.

Registered on the main ``intake`` group by :func:`register`; each command is a thin layer over
:mod:`intake.desk`, :mod:`intake.reports`, :mod:`intake.retention` and :mod:`intake.web.accounts`.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from pathlib import Path

import click

from intake import config as config_mod
from intake.timefmt import local_time


def _user() -> str:
    return os.environ.get("USER") or "cli"


def _config(ctx: click.Context):
    return config_mod.load(ctx.find_root().obj["config_path"])


def _desk(ctx: click.Context):
    from intake.app import folders_by_source, open_app
    from intake.desk import TicketDesk
    from intake.pipeline import Settings

    config = _config(ctx)
    store, routines = open_app(config)
    return TicketDesk(store, routines, Settings.from_config(config), folders=config["mailbox.folders"],
                      source_folders=folders_by_source(config))


def _friendly(fn):
    """Library refusals become one-line errors at the boundary."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from intake.engine import TicketError
        from intake.web.accounts import AccountError

        try:
            return fn(*args, **kwargs)
        except (TicketError, AccountError) as exc:
            raise click.ClickException(str(exc)) from None

    return wrapper


def _override_role(desk, actor: str, override: str) -> str:
    """The role a CLI step acts in: ``handler``, or ``admin`` for an override by an active admin account."""
    if not override.strip():
        return "handler"
    from intake.web.accounts import AccountError, get_user

    user = get_user(desk.store, actor)
    if user is None or not user.is_admin:
        raise AccountError(f"--override: {actor!r} is not an admin account (give --user ADMIN)")
    return "admin"


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


def register(main: click.Group) -> None:
    """Add the staff commands to ``main`` (and to its ``queue`` and ``ticket`` groups)."""
    queue_group: click.Group = main.commands["queue"]  # type: ignore[assignment]
    ticket_group: click.Group = main.commands["ticket"]  # type: ignore[assignment]

    @main.command()
    @click.option("--host", help="Address to listen on (default: web.host).")
    @click.option("--port", type=int, help="Port (default: web.port).")
    @click.pass_context
    def serve(ctx: click.Context, host: str | None, port: int | None) -> None:
        """Serve the staff web UI. Put it behind a TLS reverse proxy for use beyond this machine.

        Example: intake serve --port 8080
        """
        from waitress import serve as wsgi_serve

        from intake.logs import setup_logging
        from intake.web.app import create_app

        config = _config(ctx)
        setup_logging(config["logging"]["level"])
        app = create_app(config)
        # waitress: a production WSGI server in pure Python (Werkzeug's is for development only).
        wsgi_serve(app, host=host or config["web"]["host"], port=port or config["web"]["port"], threads=8)

    @main.group()
    def user() -> None:
        """Manage staff accounts for the web UI."""

    @user.command("add")
    @click.argument("name")
    @click.option("--role", type=click.Choice(["handler", "admin"]), default="handler", show_default=True)
    @click.option("--password-stdin", is_flag=True, help="Read the password from the first line of stdin.")
    @click.pass_context
    @_friendly
    def user_add(ctx: click.Context, name: str, role: str, password_stdin: bool) -> None:
        """Create an account (the password is prompted for, or read from stdin).

        Example: intake user add anna --role admin
        """
        from intake.store import open_store
        from intake.web.accounts import add_user

        add_user(open_store(_config(ctx).db_path), name, _password(password_stdin), role, actor=_user())
        click.echo(f"user {name} added ({role})")

    @user.command("passwd")
    @click.argument("name")
    @click.option("--password-stdin", is_flag=True, help="Read the password from the first line of stdin.")
    @click.pass_context
    @_friendly
    def user_passwd(ctx: click.Context, name: str, password_stdin: bool) -> None:
        """Set a new password; the user's open sessions end.

        Example: intake user passwd anna
        """
        from intake.store import open_store
        from intake.web.accounts import set_password

        set_password(open_store(_config(ctx).db_path), name, _password(password_stdin), actor=_user())
        click.echo(f"password of {name} changed")

    @user.command("list")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @click.pass_context
    def user_list(ctx: click.Context, as_json: bool) -> None:
        """List accounts.

        Example: intake user list --json
        """
        from intake.store import open_store
        from intake.web.accounts import list_users

        rows = list_users(open_store(_config(ctx).db_path))
        if as_json:
            click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
            return
        for r in rows:
            click.echo(f"{r['name']:20} {r['role']:8} {'active' if r['active'] else 'disabled'}")

    @ticket_group.command("status")
    @click.argument("ref")
    @click.argument("status")
    @click.option("--user", "actor", default=_user, help="Who does it (default: $USER).")
    @click.option("--override", default="", metavar="REASON",
                  help="Pass a failing gate an admin may override (close anyway), giving why; --user must be an admin.")
    @click.pass_context
    @_friendly
    def ticket_status(ctx: click.Context, ref: str, status: str, actor: str, override: str) -> None:
        """Change a ticket's status along its routine's lifecycle (the new state's effects run: in MittVaccin
        done queues the completion mail). A refused step names its reason.

        Example: intake ticket status MV-2026-0001 in_progress
        """
        desk = _desk(ctx)
        t = desk.set_status(ref, actor, status, role=_override_role(desk, actor, override), override=override)
        click.echo(f"{t['ref']}: {t['status']}")

    @ticket_group.command("done")
    @click.argument("ref")
    @click.option("--note", default="", help="A line for the requester in the completion mail.")
    @click.option("--user", "actor", default=_user, help="Who does it (default: $USER).")
    @click.option("--override", default="", metavar="REASON",
                  help="Close anyway past a gate an admin may override, giving why; --user must be an admin.")
    @click.pass_context
    @_friendly
    def ticket_done(ctx: click.Context, ref: str, note: str, actor: str, override: str) -> None:
        """Mark a ticket done and queue the completion mail to the requester.

        Example: intake ticket done MV-2026-0001 --note "Behörigheten gäller från måndag."
        """
        desk = _desk(ctx)
        t = desk.set_status(ref, actor, "done", note=note, role=_override_role(desk, actor, override),
                            override=override)
        click.echo(f"{t['ref']}: done; completion mail queued")

    @ticket_group.command("note")
    @click.argument("ref")
    @click.argument("text")
    @click.option("--user", "actor", default=_user, help="Who writes it (default: $USER).")
    @click.pass_context
    @_friendly
    def ticket_note(ctx: click.Context, ref: str, text: str, actor: str) -> None:
        """Add an internal note to a ticket.

        Example: intake ticket note MV-2026-0001 "Väntar på besked från kommunen."
        """
        _desk(ctx).add_note(ref, actor, text)
        click.echo(f"{ref}: note added")

    @queue_group.command("export")
    @click.option("--out", "out", type=click.Path(dir_okay=False), required=True, help="The .xlsx file to write.")
    @click.option("--queue", "queue_id", help="Only this queue.")
    @click.option("--status", help="Only this status.")
    @click.option("--routine", help="Only this routine.")
    @click.option("--request-type", help="Only this request type.")
    @click.option("--from", "date_from", help="Created on or after this day (YYYY-MM-DD).")
    @click.option("--to", "date_to", help="Created on or before this day (YYYY-MM-DD).")
    @click.pass_context
    @_friendly
    def queue_export(ctx: click.Context, out: str, queue_id: str | None, status: str | None, routine: str | None,
                     request_type: str | None, date_from: str | None, date_to: str | None) -> None:
        """Export the (filtered) ticket list to an Excel file.

        Example: intake queue export --out arenden.xlsx --status done --from 2026-01-01
        """
        from intake.reports import Filters, export_xlsx, search
        from intake.store import open_store

        store = open_store(_config(ctx).db_path)
        try:
            filters = Filters(queue=queue_id, status=status, routine=routine, request_type=request_type,
                              date_from=date_from, date_to=date_to)
            rows, _ = search(store, filters, per_page=None)
        except ValueError as exc:
            raise click.ClickException(f"bad filter: {exc}") from None
        Path(out).write_bytes(export_xlsx(rows))
        store.add_event("exported", actor=_user(), data={"tickets": len(rows), "via": "cli"})
        click.echo(f"{len(rows)} tickets written to {out}")

    @main.command()
    @click.option("--days", type=int, help="Purge tickets closed more than this many days ago "
                                           "(default: retention.days).")
    @click.pass_context
    def purge(ctx: click.Context, days: int | None) -> None:
        """Remove form data, attachments and stored mail of tickets closed long ago (keeps metadata).

        Example: intake purge --days 90
        """
        from intake.retention import purge as purge_store
        from intake.store import open_store

        config = _config(ctx)
        result = purge_store(open_store(config.db_path), days if days is not None else config["retention"]["days"])
        click.echo(result.summary())

    @main.group()
    def held() -> None:
        """Mail held for a handler to judge."""

    @held.command("list")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @click.pass_context
    def held_list(ctx: click.Context, as_json: bool) -> None:
        """List held mail: id, time, sender, subject and reason codes (never the body).

        Example: intake held list --json
        """
        from intake.store import open_store

        rows = open_store(_config(ctx).db_path).messages(verdicts=("held",))
        out = [{"id": r["id"], "recorded_at": r["recorded_at"], "sender": r["sender"], "subject": r["subject"],
                "reasons": [x["code"] for x in json.loads(r["reasons"] or "[]")]} for r in rows]
        if as_json:
            click.echo(json.dumps(out, ensure_ascii=False, indent=2))
            return
        for r in out:
            click.echo(f"{r['id']:>6}  {local_time(r['recorded_at'])}  {r['sender']}  {','.join(r['reasons'])}")
        if not out:
            click.echo("(no held mail)")

    @held.command("release")
    @click.argument("message_id", type=int)
    @click.option("--user", "actor", default=_user, help="Who decides (default: $USER).")
    @click.pass_context
    @_friendly
    def held_release(ctx: click.Context, message_id: int, actor: str) -> None:
        """Let a held mail through: it becomes a ticket and the requester gets a receipt.

        Example: intake held release 42
        """
        click.echo(_desk(ctx).release_held(message_id, actor))

    @held.command("reject")
    @click.argument("message_id", type=int)
    @click.option("--user", "actor", default=_user, help="Who decides (default: $USER).")
    @click.pass_context
    @_friendly
    def held_reject(ctx: click.Context, message_id: int, actor: str) -> None:
        """Reject a held mail as holding personal data: its bytes are dropped and the sender told what to remove.

        Example: intake held reject 42
        """
        outbox_id = _desk(ctx).reject_held(message_id, actor)
        click.echo(f"message {message_id} rejected" + ("; reply queued" if outbox_id else ""))

    @main.group()
    def timers() -> None:
        """Lifecycle timers (reminders, expiry, release on a date); `intake run` fires them every minute."""

    @timers.command("list")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @click.option("--all", "show_all", is_flag=True, help="Also fired and cancelled timers.")
    @click.pass_context
    def timers_list(ctx: click.Context, as_json: bool, show_all: bool) -> None:
        """List pending timers: ticket, name, event and when each is due.

        Example: intake timers list --json
        """
        from intake.store import open_store

        store = open_store(_config(ctx).db_path)
        rows = store.timer_rows(pending_only=not show_all)
        if as_json:
            click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
            return
        for r in rows:
            click.echo(f"{r['ref']:14} {r['name']:12} {r['event']:12} {local_time(r['due_at'])}  {r['status']}")
        if not rows:
            click.echo("(no timers)")

    @timers.command("run")
    @click.pass_context
    @_friendly
    def timers_run(ctx: click.Context) -> None:
        """Fire the timers that are due now, once, through each ticket's lifecycle.

        Example: intake timers run
        """
        from intake.app import open_app
        from intake.engine import Engine
        from intake.pipeline import Settings

        config = _config(ctx)
        store, routines = open_app(config)
        engine = Engine(store, routines, Settings.from_config(config),
                        rate_limit_per_hour=config["replies"]["rate_limit_per_hour"])
        click.echo(f"{engine.run_due_timers()} timers fired")
