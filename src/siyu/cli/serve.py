"""`siyu serve`: the API and console in one process, which then owns the embedded store files.

SQLite and DuckDB allow one writing process: while `serve` runs, other writers (imports,
the worker) should go through its API; DuckDBWarehouse raises WarehouseBusyError otherwise.
"""

from __future__ import annotations

from typing import Annotated

import typer

from siyu.bootstrap import Siyu
from siyu.cli.context import state, stderr


def register(app: typer.Typer) -> None:
    app.command("serve", help="Serve the HTTP API (/api) and the console (/console).")(serve)


def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
) -> None:
    run_server(state(ctx).siyu(), host=host, port=port)


def run_server(siyu: Siyu, *, host: str, port: int) -> None:
    """Serve the API and console of an already composed siyu until interrupted."""
    import uvicorn

    from siyu.api.app import create_app

    application = create_app(siyu)
    stderr.print(
        f"siyu console: http://{host}:{port}/console/  ·  API docs: http://{host}:{port}/api/docs"
    )
    uvicorn.run(application, host=host, port=port, log_level="info")
