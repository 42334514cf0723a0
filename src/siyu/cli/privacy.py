"""`siyu members erase IDENTITY` · `siyu members export-data IDENTITY` (PIPL requests).

Attached to the `members` command group. The CLI acts as HQ (`Viewer.system("cli")`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from siyu.access.scope import Viewer
from siyu.cli.context import fail, state
from siyu.identity.errors import IdentityError
from siyu.privacy import service


def register(app: typer.Typer) -> None:
    from siyu.cli.members import members_app

    members_app.command("erase")(erase)
    members_app.command("export-data")(export_data)


def erase(
    ctx: typer.Context,
    identity: Annotated[str, typer.Argument(help="Phone, member_no, unionid… or id:<member id>")],
    yes: Annotated[bool, typer.Option("--yes", help="Confirm: erasure cannot be undone.")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Erase a person's personal data from the operational store and the warehouse."""
    if not yes:
        fail("erasure cannot be undone: repeat with --yes")
    siyu = state(ctx).siyu()
    try:
        member_id = service.resolve(session_factory=siyu.session_factory, identity=identity)
        counts = service.erase_member(
            session_factory=siyu.session_factory, warehouse=siyu.warehouse, clock=siyu.clock,
            member_id=member_id, viewer=Viewer.system("cli"),
        )  # fmt: skip
    except IdentityError as error:
        fail(f"{error.code.value}: {error.message}", code=1)
        return
    result = {"member_id": member_id, "erased": True, **counts}
    typer.echo(json.dumps(result) if as_json else f"member {member_id} erased: {counts}")


def export_data(
    ctx: typer.Context,
    identity: Annotated[str, typer.Argument(help="Phone, member_no, unionid… or id:<member id>")],
    out: Annotated[
        Path | None, typer.Option("--out", help="Write to this file (else stdout).")
    ] = None,
) -> None:
    """Everything siyu holds about one person, as JSON (audited)."""
    siyu = state(ctx).siyu()
    try:
        member_id = service.resolve(session_factory=siyu.session_factory, identity=identity)
        data = service.export_member_data(
            session_factory=siyu.session_factory, clock=siyu.clock, member_id=member_id,
            viewer=Viewer.system("cli"),
        )  # fmt: skip
    except IdentityError as error:
        fail(f"{error.code.value}: {error.message}", code=1)
        return
    text = json.dumps(data, ensure_ascii=False, indent=2, default=str)
    if out is None:
        typer.echo(text)
    else:
        out.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {out}", err=True)
