"""The ``intake`` command: a thin click layer over the library.

The click group is the one error boundary: any :class:`~intake.errors.IntakeError` raised below it (a bad
config key, a bad pack, an unknown ticket, a mailbox that cannot be reached, ...) becomes one line on
stderr and exit status 1, never a traceback. Nothing below the commands calls ``sys.exit``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from intake import config as config_mod
from intake.config import Config, ConfigError
from intake.errors import IntakeError
from intake.timefmt import local_time


class _Group(click.Group):
    def invoke(self, ctx: click.Context):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except IntakeError as exc:
            # One line: multi-line messages (a TOML error quoting the file) are folded.
            raise click.ClickException(" ".join(str(exc).split())) from None


def _load(ctx: click.Context) -> Config:
    return config_mod.load(ctx.obj["config_path"])


@click.group(cls=_Group)
@click.option("-c", "--config", "config_path", type=click.Path(dir_okay=False),
              default=lambda: os.environ.get("INTAKE_CONFIG"),
              help="TOML configuration file (default: $INTAKE_CONFIG, else embedded defaults).")
@click.version_option(package_name="intake-bot")
@click.pass_context
def main(ctx: click.Context, config_path: str | None) -> None:
    """The intake bot: turns access-request mail into a reviewable ticket queue."""
    ctx.ensure_object(dict)
    ctx.obj["config_path"] = config_path


@main.command()
@click.pass_context
def run(ctx: click.Context) -> None:
    """Poll the mailbox and send replies on a schedule until stopped (SIGTERM/SIGINT).

    Example: intake -c /etc/intake/intake.toml run
    """
    from intake.app import make_outbox, make_poller, open_app, open_config_store
    from intake.logs import setup_logging
    from intake.scheduler import run_forever

    config = _load(ctx)
    setup_logging(config["logging"]["level"])
    store, routines = open_app(config)
    # The outbox job runs beside the poll, in another thread: it gets a connection of its own.
    run_forever(config, make_poller(config, store, routines), make_outbox(config, open_config_store(config), routines))


@main.command()
@click.option("--once", is_flag=True, required=True, help="Poll one time and exit (the only mode).")
@click.option("--no-send", is_flag=True, help="Queue replies but do not send them now.")
@click.pass_context
def poll(ctx: click.Context, once: bool, no_send: bool) -> None:
    """Poll the mailbox once, record every mail, move it, then send due replies.

    Example: intake poll --once
    """
    import threading

    from intake.app import make_outbox, make_poller, open_app, open_config_store
    from intake.lock import InstanceLock
    from intake.logs import setup_logging
    from intake.outbox import SenderProcess, SendResult

    config = _load(ctx)
    setup_logging(config["logging"]["level"])
    from intake.poller import StoreFailure

    with InstanceLock(config.lock_path, str(config.db_path)):
        store, routines = open_app(config)
        poller = make_poller(config, store, routines)
        early = SendResult()
        try:
            outbox = None if no_send else make_outbox(config, store, routines)
        except ConfigError:
            outbox = None  # mail is still recorded and moved; the error is raised when the replies are due
        sender = None
        first = getattr(poller, "pollers", [poller])[0]
        if outbox is not None and first.workers > 1 and threading.active_count() == 1:
            # Replies queued by the batches recorded so far go out from a process of their own meanwhile.
            # (Without workers, or in a process with threads, nothing is decided in parallel either: the replies
            # go in the round after the poll.)
            sender = SenderProcess(lambda: make_outbox(config, open_config_store(config), routines))
        try:
            result = poller.poll_once()
        except StoreFailure as exc:  # the mail stays where it is; the next poll tries again
            raise click.ClickException(f"poll failed, nothing lost: {exc}") from None
        finally:
            if sender is not None:
                early.add(sender.stop())  # before the last round below: never two senders at once
        click.echo(f"poll: {result.summary()}")
        sent = None
        if not no_send:
            outbox = outbox or make_outbox(config, store, routines)
            sent = early.add(outbox.send_due())
            click.echo(f"outbox: {sent.summary()}")
            _explain_waiting(outbox, sent)
    if result.errors or (sent is not None and (sent.setup_error or sent.server_down)):
        ctx.exit(1)


def _explain_waiting(outbox, sent) -> bool:
    """Why replies did not go: the setup error, the silent server, or each waiting reply's next try."""
    if sent.setup_error:
        click.echo(f"outbox: sending is misconfigured, nothing can go until it is fixed: {sent.setup_error}", err=True)
    if sent.server_down:
        click.echo(f"outbox: the SMTP server did not answer: {sent.server_down}", err=True)
    waiting = outbox.waiting()
    if waiting and not sent.sent:
        click.echo(f"outbox: {len(waiting)} waiting; next attempt {local_time(waiting[0]['next_attempt_at'])}"
                   + (f" (last error: {waiting[0]['last_error']})" if waiting[0]["last_error"] else ""))
    # Replies held back by an error, and nothing went: the job was not done.
    return sent.ok and not (waiting and not sent.sent and any(w["last_error"] for w in waiting))


@main.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the decision as JSON (see README for the shape).")
@click.pass_context
def check(ctx: click.Context, file: str, as_json: bool) -> None:
    """Show what the bot would decide for one .eml file. Touches nothing.

    Exit status is 0 whatever the verdict; non-zero only when the file cannot be read.

    Example: intake check fixtures/mail/plain.eml --json
    """
    from intake.app import routines_for
    from intake.orderers import lookups_for
    from intake.pipeline import Settings, decide

    try:
        raw = Path(file).read_bytes()
    except OSError as exc:
        raise click.ClickException(f"{file}: cannot read ({exc.strerror})") from None
    config = _load(ctx)
    # No store: the orderer register is "unknown" here, so a routine that checks it reports the mail held.
    decision = decide(raw, routines_for(config), settings=Settings.from_config(config), lookups=lookups_for(None))
    if as_json:
        click.echo(json.dumps(decision.to_json(), ensure_ascii=False, indent=2))
        return
    click.echo(f"verdict:      {decision.verdict}")
    click.echo(f"routine:      {decision.routine or '-'}")
    click.echo(f"request type: {decision.request_type or '-'}")
    click.echo(f"queue:        {decision.queue or '-'}")
    if decision.trail:
        click.echo("checks:       " + ", ".join(f"{name} {outcome}" for name, outcome in decision.trail))
    for r in decision.reasons:
        click.echo(f"reason:       {r.code}: {r.message}" + (f" [{r.detail}]" if r.detail else ""))
    if decision.form is not None:
        click.echo(f"form:         {decision.form.kind or '-'}, {len(decision.form.users)} user(s)")
    if decision.reply is not None:
        click.echo(f"\nreply ({decision.reply.kind}) to {decision.reply.to}\nSubject: {decision.reply.subject}\n")
        click.echo(decision.reply.body)
    elif decision.reply_suppressed:
        click.echo(f"reply:        none ({decision.reply_suppressed})")


@main.group()
def queue() -> None:
    """Look at the ticket queue."""


@queue.command("list")
@click.option("--queue", "queue_id", help="Only this queue.")
@click.option("--status", help="Only this status (new, in_progress, waiting, done, rejected).")
@click.option("--routine", help="Only this routine.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(min=0),
              help="At most this many tickets (0: all, streamed).")
@click.option("--after", "after_id", default=0, type=click.IntRange(min=0),
              help="Only tickets after this id (the next page: the id printed after a full page).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def queue_list(ctx: click.Context, queue_id: str | None, status: str | None, routine: str | None, limit: int,
               after_id: int, as_json: bool) -> None:
    """List tickets in id order, a page at a time.

    Example: intake queue list --status new --json; the next page: intake queue list --after 1234
    """
    from intake.store import open_store

    store = open_store(_load(ctx).db_path)
    filters = {"queue": queue_id, "status": status, "routine": routine}
    fields = ("id", "ref", "routine", "request_type", "queue", "status", "requester", "user_count", "created_at")
    if limit:
        # One more than asked tells whether there is a next page, without counting.
        rows = store.tickets(limit=limit + 1, after_id=after_id, **filters)
        more, rows = len(rows) > limit, rows[:limit]
        if as_json:
            click.echo(json.dumps([{k: r[k] for k in fields} for r in rows], ensure_ascii=False, indent=2))
        else:
            _table(rows, fields)
        if more:
            click.echo(f"(more: intake queue list --after {rows[-1]['id']})", err=as_json)
        return
    # --limit 0: every ticket, streamed a keyset page at a time (memory stays that of one page).
    batch: list[dict] = []
    first = True
    if as_json:
        click.echo("[", nl=False)
    for row in store.iter_tickets(**filters):
        if as_json:
            text = json.dumps({k: row[k] for k in fields}, ensure_ascii=False, indent=2)
            click.echo(("\n" if first else ",\n") + "\n".join("  " + line for line in text.split("\n")), nl=False)
        else:
            batch.append(row)
            if len(batch) == 500:
                _table(batch, fields)
                batch = []
        first = False
    if as_json:
        click.echo("\n]" if not first else "]")
    elif batch or first:
        _table(batch, fields)


def _table(rows: list[dict], fields: tuple[str, ...]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(*fields)
    for r in rows:
        table.add_row(*["" if r[k] is None else local_time(r[k]) if k.endswith("_at") else str(r[k]) for k in fields])
    Console(width=200).print(table)
    if not rows:
        click.echo("(no tickets)")


@main.group()
def ticket() -> None:
    """Look at one ticket."""


@ticket.command("show")
@click.argument("ref")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def ticket_show(ctx: click.Context, ref: str, as_json: bool) -> None:
    """Show one ticket, its form and its history.

    Example: intake ticket show MV-2026-0001
    """
    from intake.store import open_store

    store = open_store(_load(ctx).db_path)
    t = store.ticket(ref)
    events = store.events(t["id"])
    store.add_event("viewed", ticket_id=t["id"], actor=os.environ.get("USER", "cli"), data={"via": "cli"})
    if as_json:
        out = dict(t)
        out["form"] = json.loads(t["form"]) if t["form"] else None
        out["events"] = [{**e, "data": json.loads(e["data"] or "{}")} for e in events]
        click.echo(json.dumps(out, ensure_ascii=False, indent=2))
        return
    for key in ("ref", "routine", "request_type", "queue", "status", "requester", "assignee", "created_at",
                "updated_at", "closed_at"):
        click.echo(f"{key + ':':14}{(local_time(t[key]) if key.endswith('_at') else t[key]) or '-'}")
    if t["form"]:
        form = json.loads(t["form"])
        click.echo(f"form:         {form.get('kind') or '-'}")
        for key, value in (form.get("fields") or {}).items():
            click.echo(f"  {key}: {value}")
        for i, user in enumerate(form.get("users") or [], 1):
            click.echo(f"  user {i}: " + ", ".join(f"{k}={v}" for k, v in user.items() if v))
    click.echo("history:")
    for e in events:
        click.echo(f"  {local_time(e['at'])}  {e['actor']:10} {e['kind']}")


@main.command()
@click.option("--dir", "workdir", type=click.Path(file_okay=False), default=None,
              help="Where to put the demo mailbox, database and outbox (default: a new temporary folder).")
def demo(workdir: str | None) -> None:
    """Run the bot on bundled example mail with the embedded default (local folder, file outbox).

    Example: intake demo
    """
    from intake.demo import run_demo

    run_demo(Path(workdir) if workdir else None, echo=click.echo)


@main.command()
@click.argument("routine")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), required=True, help="Folder to write to.")
def forms(routine: str, out_dir: str) -> None:
    """Write the blank form of ROUTINE as .xlsx and .docx, generated from its pack.

    Example: intake forms mittvaccin --out ./blanketter
    """
    from intake.blankforms import write_blank_forms
    from rules.packs import load_packs

    pack = load_packs([routine])[0]
    if pack.form_schema is None:
        raise click.ClickException(f"routine {routine} has no form")
    for path in write_blank_forms(pack.form_schema, pack.form_name, Path(out_dir)):
        click.echo(str(path))


@main.group()
def packs() -> None:
    """Look at routine packs."""


@packs.command("check")
@click.argument("folder", type=click.Path(file_okay=False))
def packs_check(folder: str) -> None:
    """Check the pack in FOLDER (pack.toml, form.toml, templates, chain) without running anything.

    Prints "ok", or one line naming the file and the key at fault (exit status 1).

    Example: intake packs check ./packs/ministop
    """
    from rules.packs import load_pack

    load_pack(folder)
    click.echo("ok")


@packs.command("list")
@click.pass_context
def packs_list(ctx: click.Context) -> None:
    """List the packs the bot can find (built in and in routines.extra_dirs), which are enabled, which is default.

    Example: intake packs list
    """
    from rules.packs import PackError, available_packs, load_pack

    config = _load(ctx)
    found = available_packs([config.base_dir / Path(d) for d in config.routines.extra_dirs])
    for pack_id, folder in sorted(found.items()):
        marks = [m for m, on in (("enabled", pack_id in config.routines.enabled),
                                 ("default", pack_id == config.mailbox.default_routine)) if on]
        try:
            name = load_pack(folder).name
        except PackError as exc:  # list the others all the same; the line says what is wrong
            name = f"(broken: {' '.join(str(exc).split())})"
        click.echo(f"{pack_id:20} {name}  " + (f"[{', '.join(marks)}]  " if marks else "") + str(folder))


@main.command()
@click.pass_context
def send(ctx: click.Context) -> None:
    """Send the replies that are due in the outbox, once.

    Example: intake send
    """
    from intake.app import make_outbox, open_app
    from intake.lock import InstanceLock
    from intake.logs import setup_logging

    config = _load(ctx)
    setup_logging(config["logging"]["level"])
    # Two senders at once would each send the same due rows: one sender per database, like polling.
    with InstanceLock(config.lock_path, str(config.db_path)):
        store, routines = open_app(config)
        outbox = make_outbox(config, store, routines)
        sent = outbox.send_due()
        click.echo(f"outbox: {sent.summary()}")
        done = _explain_waiting(outbox, sent)
    if not done:
        ctx.exit(1)


@main.group()
def parked() -> None:
    """Mail the poller gave up on: left where it is, never tried again."""


@parked.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def parked_list(ctx: click.Context, as_json: bool) -> None:
    """List parked mail: where it is (source, uid), why (reason code and error), attempts, when; never content.

    Example: intake parked list --json
    """
    from intake.app import open_config_store

    rows = open_config_store(_load(ctx)).parked()
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    for r in rows:
        click.echo(f"{r['id']:>6}  {local_time(r['parked_at'])}  {r['source']}  uid={r['uid']}  {r['reason']} "
                   f"({r['attempts']} attempts: {r['detail']})  message-id={r['message_id'] or '-'}")
    if not rows:
        click.echo("(no parked mail)")


from intake.cli_staff import register  # noqa: E402

register(main)

from intake.cli_approvals import register as register_approvals  # noqa: E402

register_approvals(main)

from intake.cli_register import register as register_group  # noqa: E402

main.add_command(register_group)

from intake.cli_status import register as register_status  # noqa: E402

register_status(main)

from intake.cli_orderers import orderers as orderers_group  # noqa: E402

main.add_command(orderers_group)

from intake.cli_checklists import register as register_checklists  # noqa: E402

register_checklists(main)


if __name__ == "__main__":  # pragma: no cover
    main()
