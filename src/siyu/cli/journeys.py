"""`siyu journey apply FILE | list | show NAME | preview NAME --member ID | pause NAME |
resume NAME | templates`."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from siyu.channels import journey_runtime
from siyu.cli.context import fail, state
from siyu.db import transaction
from siyu.journeys import service as journey_service
from siyu.journeys import stats as journey_stats
from siyu.journeys import templates
from siyu.journeys.errors import JourneyError, JourneyErrorCode

journey_app = typer.Typer(help="Journeys and SOPs as YAML/JSON definitions.", no_args_is_help=True)
JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout.")]


def register(app: typer.Typer) -> None:
    app.add_typer(journey_app, name="journey")


def _fail(error: JourneyError) -> None:
    fail(
        f"{error.code.value}: {error.message}",
        code=3 if error.code == JourneyErrorCode.NOT_FOUND else 2,
    )


def _plain(value: Any) -> Any:
    return json.loads(json.dumps(dataclasses.asdict(value), default=str))


@journey_app.command("apply")
def apply(
    ctx: typer.Context,
    file: Annotated[
        str, typer.Argument(help="YAML/JSON file, or template:NAME for a shipped one.")
    ],
    as_json: JsonOption = False,
) -> None:
    """Create the journey, or publish a new version when the definition changed."""
    if file.startswith("template:"):
        name = file.removeprefix("template:")
        if name not in templates.names():
            fail(f"no shipped template {name!r}; available: {', '.join(templates.names())}")
        text = templates.read(name)
    else:
        path = Path(file)
        if not path.is_file():
            fail(f"{file}: no such file")
        text = path.read_text(encoding="utf-8")
    siyu = state(ctx).siyu()
    try:
        with transaction(siyu.session_factory) as db:
            result = journey_service.apply_definition(
                db_session=db,
                now=siyu.clock.now(),
                text=text,
                actions=journey_runtime(siyu).actions,
                actor="cli",
            )
    except JourneyError as error:
        _fail(error)
        return
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "name": result.journey.name,
                    "version": result.journey.current_version,
                    "outcome": result.outcome,
                }
            )
        )
    else:
        typer.echo(
            f"{result.journey.name}: {result.outcome} (version {result.journey.current_version})"
        )


@journey_app.command("list")
def list_journeys(ctx: typer.Context, as_json: JsonOption = False) -> None:
    siyu = state(ctx).siyu()
    with transaction(siyu.session_factory) as db:
        journeys = journey_service.get_all(db_session=db)
    if as_json:
        typer.echo(
            json.dumps(
                [
                    {
                        "name": j.name,
                        "title": j.title,
                        "status": j.status,
                        "version": j.current_version,
                    }
                    for j in journeys
                ]
            )
        )
        return
    for j in journeys:
        typer.echo(f"{j.name:<24} {j.status:<8} v{j.current_version:<3} {j.title}")


@journey_app.command("show")
def show(
    ctx: typer.Context,
    name: str,
    as_json: JsonOption = False,
    version: Annotated[
        int | None, typer.Option("--version", help="Stats of one version only.")
    ] = None,
) -> None:
    """The definition, enrollments by state, per-step counts and the holdout comparison."""
    siyu = state(ctx).siyu()
    try:
        with transaction(siyu.session_factory) as db:
            journey = journey_service.get_by_name(db_session=db, name=name)
            stats = journey_stats.journey_stats(db_session=db, name=name, version=version)
    except JourneyError as error:
        _fail(error)
        return
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "name": journey.name,
                    "status": journey.status,
                    "version": journey.current_version,
                    "definition": journey.definition,
                    "stats": _plain(stats),
                }
            )
        )
        return
    typer.echo(f"# {journey.name} ({journey.status}, version {journey.current_version})")
    typer.echo(yaml.safe_dump(journey.definition, allow_unicode=True, sort_keys=False))
    typer.echo(f"enrollments: {stats.enrollments}")
    typer.echo(
        f"{'step':<24} {'type':<11} {'entered':>8} {'waiting':>8} {'exited':>7} {'converted':>9}"
    )
    for step in stats.steps:
        typer.echo(
            f"{step.step_id:<24} {step.type:<11} {step.entered:>8} {step.waiting:>8} "
            f"{step.exited:>7} {step.converted:>9}"
        )
    if stats.comparison is not None:
        c, t, h = stats.comparison, stats.comparison.treatment, stats.comparison.holdout
        typer.echo(
            f"conversion: treatment {t.converted}/{t.enrolled} ({t.rate:.2%}) "
            f"vs holdout {h.converted}/{h.enrolled} ({h.rate:.2%}); uplift "
            f"{c.uplift:+.2%} [95% CI {c.ci_low:+.2%}, {c.ci_high:+.2%}]"
        )


@journey_app.command("pause")
def pause(ctx: typer.Context, name: str) -> None:
    """Stop enrolling and hold due steps until resumed."""
    _set_status(ctx, name, pause=True)


@journey_app.command("resume")
def resume(ctx: typer.Context, name: str) -> None:
    _set_status(ctx, name, pause=False)


def _set_status(ctx: typer.Context, name: str, *, pause: bool) -> None:
    siyu = state(ctx).siyu()
    change = journey_service.pause if pause else journey_service.resume
    try:
        with transaction(siyu.session_factory) as db:
            journey = change(db_session=db, now=siyu.clock.now(), name=name, actor="cli")
    except JourneyError as error:
        _fail(error)
        return
    typer.echo(f"{journey.name}: {journey.status}")


@journey_app.command("templates")
def list_templates() -> None:
    """The journeys shipped with siyu; apply one with `siyu journey apply template:NAME`."""
    for name in templates.names():
        typer.echo(name)


@journey_app.command("preview")
def preview(
    ctx: typer.Context,
    name: str,
    member: Annotated[int, typer.Option("--member", help="Member id to render the messages for.")],
    as_json: JsonOption = False,
) -> None:
    """Every message step of the journey rendered for one member; nothing is sent."""
    from siyu.channels.base import SandboxedRenderer

    siyu = state(ctx).siyu()
    try:
        with transaction(siyu.session_factory) as db:
            previews = journey_service.preview_journey(
                db_session=db,
                now=siyu.clock.now(),
                tz=siyu.settings.tz,
                renderer=SandboxedRenderer(),
                name=name,
                member_id=member,
            )
    except JourneyError as error:
        _fail(error)
        return
    if as_json:
        typer.echo(json.dumps([dataclasses.asdict(p) for p in previews], ensure_ascii=False))
        return
    for p in previews:
        typer.echo(f"## {p.step_id} ({p.channel})")
        typer.echo(f"ERROR: {p.error}" if p.error else f"{p.subject}\n{p.body}".strip())
