"""`siyu demo`: build the demo brand "Demo Tea" in the data folder (once) and serve it."""

from __future__ import annotations

import shutil
import time
from typing import Annotated

import typer

from siyu.cli.context import state, stderr


def register(app: typer.Typer) -> None:
    app.command("demo", help="Build the demo brand in the data folder and serve the console.")(demo)


def demo(
    ctx: typer.Context,
    members: Annotated[int, typer.Option("--members", min=50, help="Demo brand size.")] = 3000,
    seed: Annotated[int, typer.Option("--seed", help="Generator seed.")] = 7,
    rebuild: Annotated[
        bool, typer.Option("--rebuild", help="Delete the data folder and build again.")
    ] = False,
    serve: Annotated[bool, typer.Option("--serve/--no-serve", help="Serve when built.")] = True,
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port")] = 8000,
) -> None:
    cli_state = state(ctx)
    settings = cli_state.settings()
    if rebuild and settings.data_dir.exists():
        shutil.rmtree(settings.data_dir)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    siyu = cli_state.siyu()
    if not settings.uses_embedded_storage:
        stderr.print("[yellow]note:[/] building the demo brand on the configured external storage")

    from siyu.demo.build import DEMO_ADMIN, build_demo, read_marker

    existing = read_marker(siyu)
    if existing is not None:
        stderr.print(
            f"Demo brand already built on {existing['built_at']} in {settings.data_dir} "
            "(use --rebuild to start over)."
        )
    else:
        stderr.print(f"Building the demo brand into {settings.data_dir} …")
        started = time.perf_counter()

        last = [started]

        def show(name: str, line: str) -> None:
            now = time.perf_counter()
            stderr.print(f"  [green]✓[/] {line} [dim]({now - last[0]:.1f} s)[/]")
            last[0] = now

        try:
            build_demo(
                siyu,
                input_dir=settings.data_dir / "demo-input",
                members=members,
                seed=seed,
                on_stage=show,
            )
        except Exception:
            # Keep the traceback (it names the failing stage); add how to retry.
            stderr.print("[bold red]demo build failed[/]; after fixing, run `siyu demo --rebuild`")
            raise
        stderr.print(f"Demo brand built in {time.perf_counter() - started:.1f} s.")
    user, password = DEMO_ADMIN
    stderr.print(
        f"\n[bold]Console:[/] http://{host}:{port}/console/   "
        f"login [bold]{user}[/] / [bold]{password}[/]"
        f"\n[bold]API docs:[/] http://{host}:{port}/api/docs\n"
    )
    if serve:
        from siyu.cli.serve import run_server

        run_server(siyu, host=host, port=port)
