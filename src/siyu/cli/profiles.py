"""`siyu profiles refresh [--full]` and `siyu profiles show MEMBER_ID [--as-of DATE]`."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from siyu.analytics import service as analytics_service
from siyu.analytics.errors import AnalyticsError
from siyu.cli.context import fail, state
from siyu.profiles.service import get_profile, refresh_profiles
from siyu.warehouse.sync import sync_all

profiles_app = typer.Typer(help="Member profiles: computed traits kept in the warehouse.")
AsJson = Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout.")]


def register(app: typer.Typer) -> None:
    app.add_typer(profiles_app, name="profiles")


@profiles_app.command("refresh")
def refresh(
    ctx: typer.Context,
    full: Annotated[bool, typer.Option("--full", help="Recompute every member.")] = False,
    sync: Annotated[
        bool, typer.Option("--sync/--no-sync", help="Sync the warehouse first.")
    ] = True,
) -> None:
    """Recompute the profiles of members touched since the last refresh (or all)."""
    siyu = state(ctx).siyu()
    if sync:
        sync_all(
            session_factory=siyu.session_factory, warehouse=siyu.warehouse, tz=siyu.settings.tz
        )
    result = refresh_profiles(warehouse=siyu.warehouse, full=full)
    typer.echo(json.dumps({"members": result.members, "full": result.full, "seq": result.seq}))


@profiles_app.command("show")
def show(
    ctx: typer.Context,
    member_id: int,
    as_of: Annotated[str | None, typer.Option("--as-of", help="YYYY-MM-DD")] = None,
    as_json: AsJson = False,
) -> None:
    """A member's traits as of a date (from the last refresh)."""
    siyu = state(ctx).siyu()
    tz = siyu.settings.tz
    try:
        day = analytics_service.parse_as_of(as_of, today=siyu.clock.now().astimezone(tz).date())
    except AnalyticsError as error:
        fail(f"{error.code.value}: {error.message}")
        return
    profile = get_profile(warehouse=siyu.warehouse, member_id=member_id, as_of=day)
    if profile is None:
        fail(f"member {member_id}: no profile (unknown, merged away, or not refreshed yet)")
        return
    if as_json:
        typer.echo(json.dumps(profile.as_dict(), ensure_ascii=False))
        return
    table = Table("trait", "value")
    for key, value in profile.as_dict().items():
        table.add_row(key, "—" if value is None else str(value))
    Console().print(table)
