"""`siyu wecom …`: channel codes, the simulated WeCom, the WeCom worker pass and the long-running
inbox worker."""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict
from datetime import timedelta
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from siyu.channels.wecom import simulate
from siyu.channels.wecom.inbox import WeComSettings
from siyu.channels.wecom.worker import configured_client, run_inbox_lanes, wecom_pass
from siyu.cli.context import clock_at, fail, parse_instant, state
from siyu.growth import service as growth
from siyu.growth.errors import GrowthError
from siyu.growth.models import CodeScope
from siyu.growth.stats import code_stats

wecom = typer.Typer(
    help="WeCom (企业微信): channel codes, simulated adds, callbacks worker.", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    app.add_typer(wecom, name="wecom")


@wecom.command("simulate-add", help="Simulate a customer scanning a code and watch siyu react.")
def simulate_add(
    ctx: typer.Context,
    guide: Annotated[str, typer.Option("--guide", help="Guide's WeCom userid (= staff_no).")],
    code: Annotated[str | None, typer.Option("--code", help="Channel code state.")] = None,
    name: Annotated[str, typer.Option("--name")] = "Wang Fang",
    unionid: Annotated[str | None, typer.Option("--unionid")] = None,
    now: Annotated[str | None, typer.Option("--now")] = None,
) -> None:
    siyu = state(ctx).siyu(clock=clock_at(now))
    outcome = asyncio.run(
        simulate.simulate_add(siyu, guide=guide, state=code, name=name, unionid=unionid)
    )
    typer.echo(json.dumps(outcome, ensure_ascii=False, indent=2))


@wecom.command("code-create", help="Create a channel code (活码) on the simulated WeCom.")
def code_create(
    ctx: typer.Context,
    name: Annotated[str, typer.Option("--name")],
    guides: Annotated[list[str], typer.Option("--guide", help="Repeat for several guides.")],
    scope: Annotated[CodeScope, typer.Option("--scope")] = CodeScope.GUIDE,
    code_state: Annotated[str | None, typer.Option("--state", help="≤ 30 characters.")] = None,
    store: Annotated[str | None, typer.Option("--store")] = None,
    welcome: Annotated[
        str | None, typer.Option("--welcome", help="Welcome text; {name} = customer.")
    ] = None,
    tags: Annotated[
        list[str] | None, typer.Option("--tag", help="WeCom corp tag id to apply on add.")
    ] = None,
) -> None:
    siyu = state(ctx).siyu()
    try:
        view = asyncio.run(
            simulate.create_code(
                siyu,
                name=name,
                scope=scope,
                guides=guides,
                state=code_state,
                store_code=store,
                welcome={"text": welcome} if welcome else None,
                auto_tags=tags,
            )
        )
    except GrowthError as error:
        fail(f"{error.code.value}: {error}")
        return
    typer.echo(json.dumps(asdict(view), ensure_ascii=False, indent=2))


@wecom.command("codes", help="List channel codes.")
def codes(ctx: typer.Context) -> None:
    siyu = state(ctx).siyu()
    typer.echo(
        json.dumps(
            [asdict(c) for c in growth.list_codes(session_factory=siyu.session_factory)],
            ensure_ascii=False,
            indent=2,
        )
    )


@wecom.command("code-stats", help="Adds, deletions, net and first-order conversion per code.")
def code_stats_command(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Machine output.")] = False,
    since: Annotated[str | None, typer.Option("--since", help="Adds from this instant.")] = None,
    until: Annotated[str | None, typer.Option("--until", help="Adds before this instant.")] = None,
) -> None:
    siyu = state(ctx).siyu()
    rows = code_stats(
        session_factory=siyu.session_factory,
        since=parse_instant(since, timezone=siyu.settings.timezone),
        until=parse_instant(until, timezone=siyu.settings.timezone),
    )
    if as_json:
        typer.echo(json.dumps([asdict(r) for r in rows], ensure_ascii=False, indent=2))
        return
    table = Table("code", "state", "guides", "adds", "deleted", "net", "attributed", "1st order")
    for r in rows:
        rate = "-" if r.conversion is None else f"{r.conversion:.1%}"
        table.add_row(
            r.name,
            r.state,
            ",".join(r.userids),
            str(r.adds),
            str(r.deletions),
            str(r.net),
            str(r.attributed),
            f"{r.converted} ({rate})",
        )
    Console().print(table)


@wecom.command("work", help="One WeCom worker pass: inbox → events/welcomes, staff sends.")
def work(ctx: typer.Context, now: Annotated[str | None, typer.Option("--now")] = None) -> None:
    """Without SIYU_WECOM_SECRET only the inbox is processed (what `siyu worker` also does)."""
    siyu = state(ctx).siyu(clock=clock_at(now))
    extra = WeComSettings()

    async def one_pass() -> int:
        client = configured_client(siyu.settings, extra)
        try:
            return await wecom_pass(
                session_factory=siyu.session_factory,
                client=client,
                now=siyu.clock.now(),
                settings=siyu.settings,
                extra=extra,
            )
        finally:
            if client is not None:
                await client.aclose()

    done = asyncio.run(one_pass())
    typer.echo(json.dumps({"done": done, "talked_to_wecom": not simulate.demo_mode(siyu)}))


@wecom.command(
    "inbox-worker",
    help="Long-running inbox process: the welcome lane and the ingest side by side (Ctrl-C stops).",
)
def inbox_worker(
    ctx: typer.Context,
    seconds: Annotated[
        float | None, typer.Option("--seconds", help="Stop after this long (default: run on).")
    ] = None,
    drain: Annotated[
        bool, typer.Option("--drain", help="Stop once the inbox is empty (catch-up runs, tests).")
    ] = False,
) -> None:
    """For a busy corp: welcomes go out as soon as an add is in the inbox, whatever the ingest
    backlog (see `siyu.channels.wecom.welcome_lane`). Run `siyu worker` beside it for journeys and
    staff sends; several inbox workers may share a PostgreSQL inbox."""
    siyu = state(ctx).siyu()
    client = configured_client(siyu.settings, WeComSettings())
    if client is None:
        fail("the inbox worker talks to WeCom: set SIYU_WECOM_CORP_ID and SIYU_WECOM_SECRET")
        return
    wecom_client = client

    async def run() -> None:
        stop = asyncio.Event()
        if seconds is not None:
            asyncio.get_running_loop().call_later(seconds, stop.set)
        try:
            await run_inbox_lanes(
                session_factory=siyu.session_factory,
                client=wecom_client,
                clock=siyu.clock,
                tz=siyu.settings.tz,
                stop=stop,
                window=timedelta(seconds=WeComSettings().welcome_window_seconds),
                until_drained=drain,
            )
        finally:
            await wecom_client.aclose()

    Console(stderr=True).print("[bold]siyu wecom inbox-worker[/]: welcome lane + ingest running")
    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        Console(stderr=True).print("stopped")
