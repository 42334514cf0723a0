"""`siyu members count [--json]` · `siyu members show IDENTITY [--json]`."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from siyu.cli.context import fail, state
from siyu.identity import service as identity_service
from siyu.identity.errors import IdentityError

members_app = typer.Typer(help="Count members and explain one member (OneID).")
AsJson = Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout.")]


def register(app: typer.Typer) -> None:
    app.add_typer(members_app, name="members")


@members_app.command("count")
def count(ctx: typer.Context, as_json: AsJson = False) -> None:
    """How many real people (members not merged away)."""
    siyu = state(ctx).siyu()
    total = identity_service.count_members(session_factory=siyu.session_factory)
    typer.echo(json.dumps({"count": total}) if as_json else f"{total:,} members")


@members_app.command("show")
def show(
    ctx: typer.Context,
    identity: Annotated[
        str,
        typer.Argument(
            help="Phone (any format), member_no, unionid, external_userid or type:value."
        ),
    ],
    as_json: AsJson = False,
) -> None:
    """A member, its identities and which records and merges made it one person."""
    siyu = state(ctx).siyu()
    try:
        explanation = identity_service.explain_member(
            session_factory=siyu.session_factory, identity=identity
        )
    except IdentityError as error:
        fail(f"{error.code.value}: {error.message}", code=1)
        return
    if as_json:
        typer.echo(json.dumps(explanation.as_dict(), ensure_ascii=False))
        return
    _print(explanation.as_dict())


def _print(data: dict[str, Any]) -> None:
    console = Console()
    member = data["member"]
    console.print(f"[bold]member {member['id']}[/] {member['name'] or ''}")
    for name in ("gender", "birthday", "registered_at", "store_code", "channel"):
        console.print(f"  {name}: {member[name] or '—'}")
    identities = Table(title="identities")
    for column in ("type", "value", "status", "seen on records"):
        identities.add_column(column)
    for row in data["identities"]:
        status = "polluted" if row["polluted"] else ("released" if row["released_at"] else "joins")
        identities.add_row(row["type"], row["value"], status, ", ".join(row["records"]))
    console.print(identities)
    if not data["merges"]:
        console.print("no merges: every record above arrived with this member")
    for merge in data["merges"]:
        console.print(
            f"member {merge['merged_id']} merged into {merge['survivor_id']} "
            f"via {merge['via']}"
            + (f" on {merge['record']}" if merge.get("record") else "")
            + f" ({merge['reason']}, {merge['merged_at']})"
        )
