"""`siyu users create|list`: console accounts."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from siyu.access import service as access_service
from siyu.access.errors import AccessError
from siyu.access.schemas import Role
from siyu.cli.context import fail, state, stderr

users_app = typer.Typer(
    help="Console users (roles: hq, supervisor, guide, analyst).", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    app.add_typer(users_app, name="users")


@users_app.command("create")
def create(
    ctx: typer.Context,
    username: Annotated[str, typer.Argument(help="Login name.")],
    role: Annotated[Role, typer.Option(help="hq | supervisor | guide | analyst")] = Role.HQ,
    password: Annotated[
        str | None, typer.Option(help="Password (prompted, hidden, when not given).")
    ] = None,
    display_name: Annotated[
        str | None, typer.Option("--name", help="Name shown in the console.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Create a console user with an argon2-hashed password."""
    if password is None:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    siyu = state(ctx).siyu()
    try:
        user = access_service.create_user(
            session_factory=siyu.session_factory,
            clock=siyu.clock,
            username=username,
            password=password,
            role=role,
            display_name=display_name,
            actor="cli",
        )
    except AccessError as error:
        fail(error.message)
        return
    if as_json:
        typer.echo(json.dumps({"id": user.id, "username": user.username, "role": user.role.value}))
    else:
        stderr.print(f"created {user.role.value} user [bold]{user.username}[/] (id {user.id})")


@users_app.command("list")
def list_users(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Every console user with role and last login."""
    siyu = state(ctx).siyu()
    users = access_service.list_users(session_factory=siyu.session_factory)
    if as_json:
        typer.echo(json.dumps([u.model_dump(mode="json") for u in users]))
        return
    table = Table("username", "name", "role", "active", "last login")
    for u in users:
        last = u.last_login_at.isoformat() if u.last_login_at else "never"
        table.add_row(u.username, u.display_name, u.role.value, "yes" if u.active else "no", last)
    Console().print(table)
