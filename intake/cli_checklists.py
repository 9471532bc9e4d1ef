"""Checklist commands: list a ticket's tasks, tick, untick, record a value; and a handler's e-mail address
(where the ``handler`` role's mail goes, e.g. a reminder that a leave ends). Registered by :func:`register`."""

from __future__ import annotations

import json

import click

from intake.cli_staff import _config, _desk, _friendly, _user


def _checklist_desk(ctx: click.Context):
    from intake.checklists import ChecklistDesk

    desk = _desk(ctx)
    return ChecklistDesk(desk.store, desk.routines, desk.settings)


_MARK = {"done": "[x]", "open": "[ ]", "not_applicable": "[-]"}


def register(main: click.Group) -> None:
    ticket_group: click.Group = main.commands["ticket"]  # type: ignore[assignment]
    user_group: click.Group = main.commands["user"]  # type: ignore[assignment]

    @ticket_group.command("tasks")
    @click.argument("ref")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @click.pass_context
    @_friendly
    def ticket_tasks(ctx: click.Context, ref: str, as_json: bool) -> None:
        """List a ticket's checklist: [x] done, [ ] open, [-] does not apply; waiting tasks name what they wait for.

        Example: intake ticket tasks AUD-2026-0001
        """
        tasks = _checklist_desk(ctx).tasks(ref)
        if as_json:
            click.echo(json.dumps(tasks, ensure_ascii=False, indent=2))
            return
        for t in tasks:
            line = f"{_MARK.get(t['state'], '?')} {t['task']:22} {t['title']}"
            if t["actor"]:
                line += f"  ({t['actor']})"
            if t["state"] == "not_applicable":
                line += f"  – {t['note']}"
            if t["blocked_by"]:
                line += f"  [väntar på: {', '.join(t['blocked_by'])}]"
            if t["record_label"] and t.get("value"):
                line += f"  {t['record_label']}: {t['value']}"
            click.echo(line)
        if not tasks:
            click.echo("(no checklist)")

    @ticket_group.command("task")
    @click.argument("ref")
    @click.argument("task")
    @click.argument("action", type=click.Choice(["done", "undo", "value"]))
    @click.argument("text", required=False, default="")
    @click.option("--user", "actor", default=_user, help="Who does it (default: $USER).")
    @click.pass_context
    @_friendly
    def ticket_task(ctx: click.Context, ref: str, task: str, action: str, text: str, actor: str) -> None:
        """Tick a checklist task (done), untick it (undo) or record its value (value TEXT: an RSID, an order
        number). A task waiting for an earlier one is refused, naming it.

        Example: intake ticket task AUD-2026-0001 skat value RS123456
        """
        if action == "value" and not text.strip():
            raise click.UsageError("value needs the TEXT to record")
        row = _checklist_desk(ctx).act(ref, actor, task, action, text)
        click.echo(f"{ref}: {task} {row['state']}" + (" (value recorded)" if action == "value" else ""))

    @user_group.command("email")
    @click.argument("name")
    @click.argument("address")
    @click.pass_context
    @_friendly
    def user_email(ctx: click.Context, name: str, address: str) -> None:
        """Set the e-mail address where mail to the handler role goes ("" to clear it).

        Example: intake user email anna anna.handlaggare@region.example.test
        """
        from intake.store import open_store
        from intake.web.accounts import AccountError

        address = address.strip()
        if address and ("@" not in address or any(c in address for c in " <>,;\"")):
            raise AccountError(f"{address!r} is not an e-mail address")
        store = open_store(_config(ctx).db_path)
        with store.transaction():
            user_id = store.user_id_exact(name)
            if user_id is None:
                raise AccountError(f"no user {name}")
            store.set_user_email(user_id, address or None)
            store.add_event("user_email_set", actor=_user(), data={"user": name, "set": bool(address)})
        click.echo(f"e-mail of {name} {'set' if address else 'cleared'}")
