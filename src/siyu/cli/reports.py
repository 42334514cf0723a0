"""`siyu report lifecycle|rfm|retention|repurchase --as-of YYYY-MM-DD [--json]`."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from siyu.analytics import service as analytics_service
from siyu.analytics.errors import AnalyticsError
from siyu.cli.context import fail, state

report_app = typer.Typer(help="Lifecycle, RFM, retention and repurchase reports (DESIGN §4.5).")
AsOf = Annotated[
    str | None,
    typer.Option("--as-of", help="Business date YYYY-MM-DD (default: today in the business tz)."),
]
AsJson = Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout.")]
Sync = Annotated[
    bool, typer.Option("--sync/--no-sync", help="Bring the warehouse up to date first.")
]


def register(app: typer.Typer) -> None:
    app.add_typer(report_app, name="report")


def _run(ctx: typer.Context, name: str, as_of: str | None, as_json: bool, sync: bool) -> None:
    siyu = state(ctx).siyu()
    tz = siyu.settings.tz
    try:
        day = analytics_service.parse_as_of(as_of, today=siyu.clock.now().astimezone(tz).date())
        result = analytics_service.run_report(
            name=name,
            warehouse=siyu.warehouse,
            as_of=day,
            tz=tz,
            session_factory=siyu.session_factory if sync else None,
        )
    except AnalyticsError as error:
        fail(f"{error.code.value}: {error.message}")
        return
    if as_json:
        typer.echo(json.dumps(result, ensure_ascii=False))
    else:
        Console().print(_table(name, result))


@report_app.command("lifecycle")
def lifecycle(
    ctx: typer.Context, as_of: AsOf = None, as_json: AsJson = False, sync: Sync = True
) -> None:
    """Members per lifecycle stage (registered … churned)."""
    _run(ctx, "lifecycle", as_of, as_json, sync)


@report_app.command("rfm")
def rfm(ctx: typer.Context, as_of: AsOf = None, as_json: AsJson = False, sync: Sync = True) -> None:
    """Members per RFM class, with the means that split them."""
    _run(ctx, "rfm", as_of, as_json, sync)


@report_app.command("retention")
def retention(
    ctx: typer.Context, as_of: AsOf = None, as_json: AsJson = False, sync: Sync = True
) -> None:
    """Monthly first-order cohorts and their retention in months 1…12."""
    _run(ctx, "retention", as_of, as_json, sync)


@report_app.command("repurchase")
def repurchase(
    ctx: typer.Context, as_of: AsOf = None, as_json: AsJson = False, sync: Sync = True
) -> None:
    """Share of the last 365 days' buyers who bought at least twice."""
    _run(ctx, "repurchase", as_of, as_json, sync)


def _table(name: str, result: dict[str, Any]) -> Table:
    table = Table(title=f"{name} as of {result['as_of']}")
    if name == "lifecycle":
        return _pairs(table, "stage", result["stages"])
    if name == "rfm":
        means = result["means"]
        table.caption = (
            f"{result['members']} members · mean R {means['r']} F {means['f']} M {means['m']}"
        )
        return _pairs(table, "class", result["classes"])
    if name == "repurchase":
        return _pairs(table, "measure", {k: v for k, v in result.items() if k != "as_of"})
    table.add_column("cohort")
    table.add_column("size", justify="right")
    for k in range(1, 13):
        table.add_column(f"M{k}", justify="right")
    for cohort in result["cohorts"]:
        cells = [f"{share:.1%}" for share in cohort["retention"]]
        table.add_row(cohort["month"], str(cohort["size"]), *cells)
    return table


def _pairs(table: Table, label: str, values: dict[str, Any]) -> Table:
    table.add_column(label)
    table.add_column("value", justify="right")
    for key, value in values.items():
        table.add_row(key, str(value))
    return table
