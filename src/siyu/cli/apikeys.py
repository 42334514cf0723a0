"""`siyu apikey create|list|revoke|rotate`: keys for integrations (the secret is shown once)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from siyu.access import apikeys
from siyu.access.errors import AccessError
from siyu.access.schemas import Role
from siyu.cli.context import fail, state

apikey_app = typer.Typer(help="API keys with scopes for integrations.")
AsJson = Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout.")]


def register(app: typer.Typer) -> None:
    app.add_typer(apikey_app, name="apikey")


def _row(key: apikeys.ApiKeyRead) -> dict[str, object]:
    return {**key.__dict__, "scopes": list(key.scopes), "role": key.role.value}


@apikey_app.command("create")
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Who uses it, e.g. pos-sync.")],
    scope: Annotated[list[str], typer.Option("--scope", help="read:members, write:events, …")],
    role: Annotated[Role, typer.Option("--role")] = Role.HQ,
    region: Annotated[str | None, typer.Option("--region")] = None,
    as_json: AsJson = False,
) -> None:
    """Issue a key; its secret is printed once and never stored."""
    siyu = state(ctx).siyu()
    try:
        key, secret = apikeys.create_api_key(
            session_factory=siyu.session_factory, clock=siyu.clock, name=name, scopes=scope,
            role=role, region=region, actor="cli",
        )  # fmt: skip
    except AccessError as error:
        fail(f"{error.code.value}: {error.message}", code=1)
        return
    _issued(key, secret, as_json)


def _issued(key: apikeys.ApiKeyRead, secret: str, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps({**_row(key), "secret": secret}, default=str))
        return
    typer.echo(f"key {key.id} ({key.name}) scopes {','.join(key.scopes)}")
    typer.echo(secret)
    typer.echo("store this secret now: it will not be shown again", err=True)


@apikey_app.command("list")
def list_keys(ctx: typer.Context, as_json: AsJson = False) -> None:
    """Every key with its scopes, last use and revocation (never the secret)."""
    keys = apikeys.list_api_keys(session_factory=state(ctx).siyu().session_factory)
    if as_json:
        typer.echo(json.dumps([_row(k) for k in keys], default=str))
        return
    for k in keys:
        status = "revoked" if k.revoked_at else "active"
        used = k.last_used_at.isoformat() if k.last_used_at else "never"
        typer.echo(f"{k.id}\tsk_{k.prefix}_…\t{k.name}\t{','.join(k.scopes)}\t{status}\t{used}")


@apikey_app.command("revoke")
def revoke(ctx: typer.Context, key_id: int) -> None:
    """Refuse this key from now on."""
    siyu = state(ctx).siyu()
    try:
        apikeys.revoke_api_key(
            session_factory=siyu.session_factory, clock=siyu.clock, key_id=key_id, actor="cli"
        )
    except AccessError as error:
        fail(f"{error.code.value}: {error.message}", code=1)
        return
    typer.echo(f"key {key_id} revoked")


@apikey_app.command("rotate")
def rotate(ctx: typer.Context, key_id: int, as_json: AsJson = False) -> None:
    """Revoke this key and issue its successor (same name, scopes, role)."""
    siyu = state(ctx).siyu()
    try:
        key, secret = apikeys.rotate_api_key(
            session_factory=siyu.session_factory, clock=siyu.clock, key_id=key_id, actor="cli"
        )
    except AccessError as error:
        fail(f"{error.code.value}: {error.message}", code=1)
        return
    _issued(key, secret, as_json)
