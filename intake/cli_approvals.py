"""Staff commands for approvals: another attestant, and confirming a held answer (README: "Approval by an
attestant"). Registered on the ``ticket`` group by :func:`register`."""

from __future__ import annotations

import click

from intake.cli_staff import _config, _friendly, _user


def _engine(ctx: click.Context):
    from intake.app import open_app
    from intake.engine import Engine
    from intake.pipeline import Settings

    config = _config(ctx)
    store, routines = open_app(config)
    return Engine(store, routines, Settings.from_config(config))


def register(main: click.Group) -> None:
    ticket_group: click.Group = main.commands["ticket"]  # type: ignore[assignment]

    @ticket_group.command("attestant")
    @click.argument("ref")
    @click.argument("address")
    @click.option("--user", "actor", default=_user, help="Who does it (default: $USER).")
    @click.pass_context
    @_friendly
    def ticket_attestant(ctx: click.Context, ref: str, address: str, actor: str) -> None:
        """Ask another attestant to approve a waiting order: the old link and answers stop working, the new
        attestant is mailed, the orderer and the previous attestant are told.

        Example: intake ticket attestant VMU3000001 nils.ny@vard.example.test
        """
        from intake.approvals import change_attestant

        change_attestant(_engine(ctx), ref, address, actor=actor, role="handler")
        click.echo(f"{ref}: another attestant asked")

    @ticket_group.command("confirm-attest")
    @click.argument("ref")
    @click.option("--user", "actor", default=_user, help="Who confirms it (default: $USER).")
    @click.pass_context
    @_friendly
    def ticket_confirm_attest(ctx: click.Context, ref: str, actor: str) -> None:
        """Confirm an attestant's answer held for want of mail authentication (approvals.require_authenticated).

        Example: intake ticket confirm-attest VMU3000001
        """
        from intake.approvals import confirm_held

        decision = confirm_held(_engine(ctx), ref, actor)
        click.echo(f"{ref}: {decision} confirmed")
