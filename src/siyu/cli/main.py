"""Entry point: `siyu [--data-dir DIR] COMMAND …`. Each domain module adds its commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from siyu.cli.context import CliState

app = typer.Typer(
    name="siyu",
    help="siyu (私域): private-domain operations for retail and consumer brands.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def root(
    ctx: typer.Context,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            help="Embedded storage folder (default ./siyu-data).",
            envvar="SIYU_DATA_DIR",
        ),
    ] = None,
) -> None:
    state = CliState(data_dir=data_dir)
    ctx.obj = state
    ctx.call_on_close(state.close)


def _register_commands() -> None:
    # Each adapter module attaches its commands to `app`; order is the help order.
    from siyu.cli import system

    system.register(app)
    from siyu.cli import demo  # the demo brand (DESIGN §4.1)

    demo.register(app)
    from siyu.cli import journeys, worker  # journeys and SOPs (issue #5)

    journeys.register(app)
    worker.register(app)
    from siyu.cli import reports  # lifecycle/RFM/retention/repurchase (issue #3)

    reports.register(app)
    from siyu.cli import identity, imports, members  # import + OneID (issues #2, #3)

    imports.register(app)
    members.register(app)
    identity.register(app)
    from siyu.cli import generate  # the seeded demo/benchmark brand (issue #2)

    generate.register(app)
    from siyu.cli import profiles, tags  # member profiles and tags (issue #3)

    profiles.register(app)
    tags.register(app)
    from siyu.cli import wecom  # WeCom channel codes, simulated adds, worker pass (issue #6)

    wecom.register(app)
    from siyu.cli import serve, users  # API + console server, console users (issue #2)

    serve.register(app)
    users.register(app)
    from siyu.cli import loyalty  # coupons (issue #7)

    loyalty.register(app)
    from siyu.cli import points  # points, tiers, stamp cards (issue #7)

    points.register(app)
    from siyu.cli import apikeys, privacy, staff  # people and trust (issue #8)

    staff.register(app)
    apikeys.register(app)
    privacy.register(app)
    from siyu.cli import segments  # segments: preview, saved, snapshots, export (issue #4)

    segments.register(app)


def main() -> None:
    _register_commands()
    app()
