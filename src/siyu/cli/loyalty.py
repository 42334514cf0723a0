"""`siyu coupon template-create FILE | templates | issue CODE --segment NAME|--members FILE |
wallet IDENTITY | expire | roi KEY | pause CODE | resume CODE`: coupon operations from the
command line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn
from rich.table import Table

from siyu.bootstrap import Siyu
from siyu.cli.context import clock_at, fail, state, stderr
from siyu.db import transaction
from siyu.identity import queries
from siyu.loyalty import service, template_admin
from siyu.loyalty.errors import LoyaltyError

coupon_app = typer.Typer(help="Coupon templates, issuance, wallets and expiry.")
AsJson = Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout.")]
Now = Annotated[str | None, typer.Option("--now", help="Act as of this instant (ISO 8601).")]


def register(app: typer.Typer) -> None:
    app.add_typer(coupon_app, name="coupon")


def _echo_json(value: Any) -> None:
    typer.echo(json.dumps(value, ensure_ascii=False, default=str))


@coupon_app.command("template-create")
def template_create(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="YAML or JSON.")],
    now: Now = None,
    as_json: AsJson = False,
) -> None:
    """Create a coupon template (or a list of them) from a YAML/JSON file."""
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    specs = document if isinstance(document, list) else [document]
    siyu = state(ctx).siyu(clock=clock_at(now))
    try:
        with transaction(siyu.session_factory) as db:
            created = [
                service.create_template(db, spec=s, now=siyu.clock.now(), actor="cli")
                for s in specs
            ]
    except LoyaltyError as error:
        fail(f"{path}: {error.code.value}: {error.message}")
        return
    if as_json:
        _echo_json([service.as_dict(t) for t in created])
        return
    for template in created:
        typer.echo(f"created template {template.code} ({template.kind}): {template.name}")


@coupon_app.command("templates")
def templates(ctx: typer.Context, as_json: AsJson = False) -> None:
    """Every template with its budget and what was issued and redeemed."""
    siyu = state(ctx).siyu()
    with transaction(siyu.session_factory) as db:
        rows = service.list_templates(db)
    if as_json:
        _echo_json([service.as_dict(t) for t in rows])
        return
    table = Table("code", "name", "kind", "status", "issued", "budget", "redeemed")
    for t in rows:
        budget = "∞" if t.budget_total is None else str(t.budget_total)
        table.add_row(
            t.code, t.name, t.kind, t.status, str(t.issued_count), budget, str(t.redeemed)
        )
    Console().print(table)


def _member_file(path: Path) -> Iterator[int]:
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        text = line.strip().split(",")[0]
        if not text or text in ("member_id", "id"):
            continue
        if not text.isdigit():
            fail(f"{path}:{number}: {text!r} is not a member id")
        yield int(text)


def _segment_members(siyu: Siyu, name: str) -> list[int]:
    return service.segment_member_ids(
        session_factory=siyu.session_factory,
        warehouse=siyu.warehouse,
        segment=name,
        now=siyu.clock.now(),
        tz=siyu.settings.tz,
    )


@coupon_app.command("issue")
def issue(
    ctx: typer.Context,
    code: Annotated[str, typer.Argument(help="Template code.")],
    segment: Annotated[str | None, typer.Option("--segment", help="Saved segment name.")] = None,
    members: Annotated[
        Path | None, typer.Option("--members", exists=True, help="File of member ids.")
    ] = None,
    key: Annotated[
        str | None, typer.Option("--key", help="Issuance key; rerun with it to resume.")
    ] = None,
    holdout: Annotated[int, typer.Option("--holdout", min=0, max=50, help="% held out.")] = 0,
    now: Now = None,
    as_json: AsJson = False,
) -> None:
    """Issue one coupon to every member of a segment or a file, in batches (resumable)."""
    if (segment is None) == (members is None):
        fail("give exactly one of --segment NAME or --members FILE")
    siyu = state(ctx).siyu(clock=clock_at(now))
    at = siyu.clock.now()
    ids = _segment_members(siyu, segment) if segment else list(_member_file(members))  # type: ignore[arg-type]
    source = f"segment:{segment}" if segment else f"file:{members}"
    key = key or f"{code}:{source}:{at.astimezone(siyu.settings.tz).date().isoformat()}"
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        console=stderr,
    ) as bar:
        task = bar.add_task(f"issuing {code}", total=len(ids))
        try:
            report = service.issue_to_members(
                siyu.session_factory,
                template_code=code,
                member_ids=ids,
                key=key,
                now=at,
                tz=siyu.settings.tz,
                source=source,
                holdout_percent=holdout,
                progress=lambda r: bar.update(task, completed=r.targeted),
            )
        except LoyaltyError as error:
            fail(f"{error.code.value}: {error.message}")
            return
    result = service.as_dict(report)
    if as_json:
        _echo_json(result)
        return
    typer.echo(
        f"issuance {key}: issued {report.issued}, skipped {report.skipped}, "
        f"held out {report.held_out}" + (" (budget exhausted)" if report.budget_exhausted else "")
    )


@coupon_app.command("wallet")
def wallet(
    ctx: typer.Context,
    identity: Annotated[str, typer.Argument(help="Phone, member_no, unionid… or id:N.")],
    now: Now = None,
    as_json: AsJson = False,
) -> None:
    """A member's coupons: usable first, then used/expired."""
    siyu = state(ctx).siyu(clock=clock_at(now))
    member_id = _member_id(siyu, identity)
    with transaction(siyu.session_factory) as db:
        coupons = service.member_wallet(db, member_id=member_id, now=siyu.clock.now())
    if as_json:
        _echo_json({"member_id": member_id, "coupons": [service.as_dict(c) for c in coupons]})
        return
    table = Table("id", "template", "name", "state", "valid until", "source")
    for c in coupons:
        until = c.valid_until.astimezone(siyu.settings.tz).strftime("%Y-%m-%d %H:%M")
        table.add_row(str(c.coupon_id), c.template_code, c.name, c.state, until, c.source)
    Console().print(table)


def _member_id(siyu: Siyu, identity: str) -> int:
    if identity.startswith("id:") and identity[3:].isdigit():
        return int(identity[3:])
    page = queries.search_members(session_factory=siyu.session_factory, query=identity)
    if page.total != 1:
        fail(f"{identity!r} matches {page.total} members; give a phone, member_no or id:N")
    return page.items[0].id


@coupon_app.command("expire")
def expire(ctx: typer.Context, now: Now = None, as_json: AsJson = False) -> None:
    """Release timed-out reservations, expire lapsed coupons, announce coupons expiring soon."""
    siyu = state(ctx).siyu(clock=clock_at(now))
    at = siyu.clock.now()
    with transaction(siyu.session_factory) as db:
        counts = {
            "reservations_released": service.expire_reservations(db, now=at),
            "coupons_expired": service.expire_coupons(db, now=at),
            "expiring_announced": service.announce_expiring(db, now=at),
        }
    if as_json:
        _echo_json(counts)
        return
    typer.echo(", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in counts.items()))


@coupon_app.command("roi")
def roi(ctx: typer.Context, key: Annotated[str, typer.Argument(help="Issuance key.")]) -> None:
    """Redeeming GMV and GMV per member, treated vs held out, since the issuance (JSON)."""
    siyu = state(ctx).siyu()
    try:
        with transaction(siyu.session_factory) as db:
            _echo_json(service.issuance_roi(db, issuance_key=key))
    except LoyaltyError as error:
        fail(f"{error.code.value}: {error.message}")


def _set_status(ctx: typer.Context, code: str, now: str | None, as_json: bool, pause: bool) -> None:
    siyu = state(ctx).siyu(clock=clock_at(now))
    move = template_admin.pause_template if pause else template_admin.resume_template
    try:
        with transaction(siyu.session_factory) as db:
            status = move(db, code=code, now=siyu.clock.now(), actor="cli")
    except LoyaltyError as error:
        fail(f"{error.code.value}: {error.message}")
        return
    if as_json:
        _echo_json({"code": code, "status": status})
        return
    typer.echo(f"template {code} is {status}")


@coupon_app.command("pause")
def pause(
    ctx: typer.Context,
    code: Annotated[str, typer.Argument(help="Template code.")],
    now: Now = None,
    as_json: AsJson = False,
) -> None:
    """Stop issuing a template (issued coupons stay usable; a running issuance stops)."""
    _set_status(ctx, code, now, as_json, pause=True)


@coupon_app.command("resume")
def resume(
    ctx: typer.Context,
    code: Annotated[str, typer.Argument(help="Template code.")],
    now: Now = None,
    as_json: AsJson = False,
) -> None:
    """Issue a paused template again (rerun a stopped issuance with its key to finish it)."""
    _set_status(ctx, code, now, as_json, pause=False)
