"""`siyu generate`: write a seeded demo/benchmark brand as import files (DESIGN §4.2)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from siyu.cli.context import fail, stderr
from siyu.generate import DEFAULT_END, DEFAULT_START, GenerateError, GenerateRequest, generate


def register(app: typer.Typer) -> None:
    app.command(
        "generate",
        help="Write a deterministic demo brand (stores, staff, members, orders, events).",
    )(generate_command)


def generate_command(
    members: Annotated[int, typer.Option("--members", help="How many member rows.")] = 2000,
    seed: Annotated[
        int, typer.Option("--seed", help="Same seed and options give byte-identical files.")
    ] = 7,
    out: Annotated[
        Path, typer.Option("--out", help="Folder to write into (created if missing).")
    ] = Path("siyu-brand"),
    fmt: Annotated[
        str, typer.Option("--format", help="members/orders format: csv, ndjson or parquet.")
    ] = "csv",
    start: Annotated[
        str, typer.Option("--start", help="First day of history, YYYY-MM-DD.")
    ] = DEFAULT_START.isoformat(),
    end: Annotated[
        str, typer.Option("--end", help="Last day of history, YYYY-MM-DD.")
    ] = DEFAULT_END.isoformat(),
    stores: Annotated[
        int | None, typer.Option("--stores", help="Physical stores (default: 1 per 4,000 members).")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the manifest as JSON on stdout.")
    ] = False,
) -> None:
    request = GenerateRequest(
        members=members,
        seed=seed,
        format=fmt,
        start=_day(start, "--start"),
        end=_day(end, "--end"),
        stores=stores,
    )
    columns = (TextColumn("members"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=stderr, transient=True) as bar:
        task = bar.add_task("generate", total=members)
        try:
            manifest = generate(
                out, request, progress=lambda done, _total: bar.update(task, completed=done)
            )
        except GenerateError as error:
            fail(str(error))
            raise typer.Exit(2) from error  # fail() exits; this line tells the type checker
    if as_json:
        typer.echo(json.dumps(manifest, ensure_ascii=False))
        return
    counts = manifest["counts"]
    typer.echo(
        f"wrote {out}: {counts['stores']} stores, {counts['staff']} staff, "
        f"{counts['members']:,} members, {counts['order_lines']:,} order lines "
        f"({counts['orders']:,} orders), {counts['events']:,} events, "
        f"{manifest['malformed_rows']} malformed rows"
    )


def _day(value: str, option: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as error:
        fail(f"{option} must be a date YYYY-MM-DD, got {value!r}")
        raise typer.Exit(2) from error
