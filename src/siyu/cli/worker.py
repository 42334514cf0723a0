"""`siyu worker [--once] [--now ISO]`: run due journey steps, other domains' hooks, deliveries."""

from __future__ import annotations

import json
import time
from typing import Annotated

import typer

from siyu.channels import build_channels, journey_runtime
from siyu.channels.base import ChannelSettings
from siyu.cli.context import clock_at, state, stderr
from siyu.journeys.worker import run_once


def register(app: typer.Typer) -> None:
    app.command("worker", help="Run due journey steps, expiries and deliveries.")(worker)


def worker(
    ctx: typer.Context,
    once: Annotated[bool, typer.Option("--once", help="One pass, then exit.")] = False,
    now: Annotated[
        str | None, typer.Option("--now", help="Simulate at this instant (ISO 8601).")
    ] = None,
    batch: Annotated[
        int, typer.Option("--batch", min=1, help="Rows claimed per transaction.")
    ] = 500,
    interval: Annotated[
        float, typer.Option("--interval", min=0.1, help="Seconds between passes.")
    ] = 5.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print each pass as JSON.")] = False,
) -> None:
    siyu = state(ctx).siyu(clock=clock_at(now))
    runtime = journey_runtime(siyu)
    channels = build_channels(ChannelSettings(), utc_now=siyu.clock.now)
    stderr.print(
        f"worker: channels {', '.join(sorted(channels))}; journeys and outbox in "
        f"{siyu.settings.resolved_database_url.split('@')[-1]}"
    )
    while True:
        report = run_once(
            runtime=runtime, channels=channels, now=siyu.clock.now(), batch_size=batch
        )
        if as_json:
            typer.echo(json.dumps({"now": siyu.clock.now().isoformat(), **report.as_dict()}))
        else:
            typer.echo(
                f"{siyu.clock.now().isoformat()} events={report.events} enrolled={report.enrolled} "
                f"steps={report.steps} deliveries={report.deliveries} hooks={report.hooks}"
            )
        if once:
            return
        time.sleep(interval)
