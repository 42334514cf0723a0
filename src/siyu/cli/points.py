"""`siyu points …`, `siyu tier …`, `siyu stamps …`: the points ledger, tiers and stamp cards.

Members are named by any identity (phone in any format, member_no, unionid, type:value) or
`id:<member id>`. Rules files are JSON or YAML. `--json` prints machine output to stdout.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from siyu.bootstrap import Siyu
from siyu.cli.context import clock_at, fail, state
from siyu.identity import service as identity_service
from siyu.identity.errors import IdentityError
from siyu.loyalty import points_jobs, points_service
from siyu.loyalty.errors import LoyaltyError
from siyu.loyalty.stamps import StampCardSpec

points_app = typer.Typer(help="The points ledger: balance, history, grants, spends.")
tier_app = typer.Typer(help="Tier program: rules, recompute, a member's tier.")
stamps_app = typer.Typer(help="Stamp cards (集点).")
AsJson = Annotated[bool, typer.Option("--json", help="Machine output on stdout.")]
Now = Annotated[str | None, typer.Option("--now", help="Act at this instant (ISO 8601).")]
Identity = Annotated[str, typer.Argument(help="Phone, member_no, unionid, type:value or id:N.")]


def register(app: typer.Typer) -> None:
    app.add_typer(points_app, name="points")
    app.add_typer(tier_app, name="tier")
    app.add_typer(stamps_app, name="stamps")


def _member(siyu: Siyu, identity: str) -> int:
    if identity.startswith("id:") and identity[3:].isdigit():
        return int(identity[3:])
    try:
        return identity_service.find_member_by_identity(
            session_factory=siyu.session_factory, identity=identity
        )
    except IdentityError as error:
        fail(f"{error.code.value}: {error.message}", code=1)
        raise  # unreachable: fail exits


def _emit(data: Any, as_json: bool) -> None:
    text = json.dumps(data, ensure_ascii=False, default=str)
    typer.echo(text if as_json else json.dumps(data, ensure_ascii=False, default=str, indent=2))


def _load(path: Path) -> Any:
    text = path.read_text(encoding="utf-8")
    return json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)


def _refused(error: LoyaltyError) -> None:
    fail(f"{error.code.value}: {error.message}", code=1)


@points_app.command("balance")
def balance(
    ctx: typer.Context, identity: Identity, as_json: AsJson = False, now: Now = None
) -> None:
    """A member's spendable and pending points and tier."""
    siyu = state(ctx).siyu(clock=clock_at(now))
    member = _member(siyu, identity)
    found = points_service.balance(siyu.session_factory, member_id=member)
    tier = points_service.tier_status(siyu.session_factory, member_id=member, now=siyu.clock.now())
    _emit(
        {
            "member_id": member,
            "balance": found.points,
            "pending": found.pending,
            "tier": tier.tier,
            "tier_period_end": tier.period_end,
        },
        as_json,
    )


@points_app.command("history")
def history(
    ctx: typer.Context, identity: Identity, limit: int = 50, as_json: AsJson = False
) -> None:
    """The member's ledger entries, newest first."""
    siyu = state(ctx).siyu()
    member = _member(siyu, identity)
    rows = points_service.history(siyu.session_factory, member_id=member, limit=limit)
    _emit([asdict(r) for r in rows], as_json)


@points_app.command("grant")
def grant(
    ctx: typer.Context,
    identity: Identity,
    points: Annotated[int, typer.Argument(min=1)],
    key: Annotated[str, typer.Option("--key", help="Business key; the same key grants once.")],
    reason: Annotated[str, typer.Option("--reason")] = "manual grant",
    as_json: AsJson = False,
    now: Now = None,
) -> None:
    """Give a member spendable points (once per --key)."""
    siyu = state(ctx).siyu(clock=clock_at(now))
    member = _member(siyu, identity)
    try:
        result = points_service.grant(
            siyu.session_factory,
            member_id=member,
            points=points,
            reason=reason,
            idempotency_key=key,
            now=siyu.clock.now(),
        )
    except LoyaltyError as error:
        _refused(error)
        return
    _emit(asdict(result), as_json)


@points_app.command("spend")
def spend(
    ctx: typer.Context,
    identity: Identity,
    points: Annotated[int, typer.Argument(min=1)],
    key: Annotated[str, typer.Option("--key", help="Business key; the same key spends once.")],
    reason: Annotated[str, typer.Option("--reason")] = "manual spend",
    as_json: AsJson = False,
    now: Now = None,
) -> None:
    """Spend a member's points (soonest-expiring first; refused if short)."""
    siyu = state(ctx).siyu(clock=clock_at(now))
    member = _member(siyu, identity)
    try:
        result = points_service.spend(
            siyu.session_factory,
            member_id=member,
            points=points,
            idempotency_key=key,
            reason=reason,
            now=siyu.clock.now(),
        )
    except LoyaltyError as error:
        _refused(error)
        return
    _emit(asdict(result), as_json)


@points_app.command("rules")
def rules(
    ctx: typer.Context,
    path: Annotated[Path | None, typer.Argument(exists=True, dir_okay=False)] = None,
) -> None:
    """Show the earn rules, or save them from a JSON/YAML file."""
    siyu = state(ctx).siyu()
    try:
        if path is not None:
            saved = points_service.save_earn_rules(
                siyu.session_factory, data=_load(path), now=siyu.clock.now()
            )
        else:
            with siyu.session_factory() as session:
                saved = points_service.load_earn_rules(session)
    except LoyaltyError as error:
        _refused(error)
        return
    _emit(saved.model_dump(mode="json"), True)


@points_app.command("run")
def run(ctx: typer.Context, now: Now = None, as_json: AsJson = False) -> None:
    """Run the points jobs once (order points, activation, expiry, reminders, tier periods)."""
    siyu = state(ctx).siyu(clock=clock_at(now))
    done = points_jobs.run_points_jobs(session_factory=siyu.session_factory, now=siyu.clock.now())
    _emit({"done": done}, as_json)


@tier_app.command("rules")
def tier_rules(
    ctx: typer.Context,
    path: Annotated[Path | None, typer.Argument(exists=True, dir_okay=False)] = None,
) -> None:
    """Show the tier program, or save it from a JSON/YAML file."""
    siyu = state(ctx).siyu()
    try:
        if path is not None:
            saved = points_service.save_tier_rules(
                siyu.session_factory, data=_load(path), now=siyu.clock.now()
            )
            _emit(saved.model_dump(mode="json"), True)
            return
        with siyu.session_factory() as session:
            found = points_service.load_tier_rules(session)
    except LoyaltyError as error:
        _refused(error)
        return
    _emit(None if found is None else found.model_dump(mode="json"), True)


@tier_app.command("recompute")
def recompute(ctx: typer.Context, now: Now = None, as_json: AsJson = False) -> None:
    """Evaluate every member now: upgrades, period-end downgrades, warnings."""
    siyu = state(ctx).siyu(clock=clock_at(now))
    changed = points_jobs.recompute_tiers(siyu.session_factory, now=siyu.clock.now())
    _emit(
        {
            "changed": changed,
            "distribution": dict(points_service.tier_distribution(siyu.session_factory)),
        },
        as_json,
    )


@tier_app.command("show")
def tier_show(ctx: typer.Context, identity: Identity, now: Now = None) -> None:
    """A member's tier, qualifying measure and distance to the next tier."""
    siyu = state(ctx).siyu(clock=clock_at(now))
    member = _member(siyu, identity)
    status = points_service.tier_status(
        siyu.session_factory, member_id=member, now=siyu.clock.now()
    )
    _emit(asdict(status), True)


@stamps_app.command("create")
def stamps_create(
    ctx: typer.Context, path: Annotated[Path, typer.Argument(exists=True, dir_okay=False)]
) -> None:
    """Create a stamp card from a JSON/YAML file (code, name, stamps_required, reward…)."""
    siyu = state(ctx).siyu()
    try:
        card = points_service.create_stamp_card(
            siyu.session_factory,
            spec=StampCardSpec.model_validate(_load(path)),
            now=siyu.clock.now(),
        )
    except LoyaltyError as error:
        _refused(error)
        return
    except ValueError as error:  # pydantic validation: name the field
        fail(f"{path}: {error}", code=1)
        return
    _emit(asdict(card), True)


@stamps_app.command("show")
def stamps_show(ctx: typer.Context, identity: Identity, as_json: AsJson = False) -> None:
    """A member's stamp cards: open stamps and completions."""
    siyu = state(ctx).siyu()
    member = _member(siyu, identity)
    cards = points_service.stamp_cards(siyu.session_factory, member_id=member)
    _emit([asdict(c) for c in cards], as_json)
