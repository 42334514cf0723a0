"""Commands about the installation itself: migrate, version."""

from __future__ import annotations

import typer

from siyu import __version__
from siyu.cli.context import state


def register(app: typer.Typer) -> None:
    app.command("migrate", help="Upgrade the operational store to the newest schema.")(migrate)
    app.command("version", help="Print the siyu version.")(version)


def migrate(ctx: typer.Context) -> None:
    siyu = state(ctx).siyu()
    typer.echo(f"schema up to date: {siyu.settings.resolved_database_url}")


def version() -> None:
    typer.echo(__version__)
