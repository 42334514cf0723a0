"""HQ administration: API keys for integrations (create shows the secret once, list, revoke,
rotate). Every change is audited by siyu.access.apikeys.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse

from siyu.access import apikeys
from siyu.access.errors import AccessError
from siyu.access.schemas import Role
from siyu.api.deps import SiyuDep
from siyu.console.auth import CsrfChecked, CurrentUser, require_role
from siyu.console.nav import NavEntry
from siyu.console.templating import render

router = APIRouter(prefix="/console/admin", dependencies=[require_role(Role.HQ)])
nav = [
    NavEntry(section="Staff", label="API keys", path="/console/admin/apikeys", order=90,
             roles=frozenset({Role.HQ})),
]  # fmt: skip


def _page(
    request: Request, siyu: SiyuDep, *, issued: tuple[str, str] | None = None,
    error: str | None = None, status_code: int = 200,
) -> HTMLResponse:  # fmt: skip
    keys = apikeys.list_api_keys(session_factory=siyu.session_factory)
    context = {"keys": keys, "issued": issued, "error": error, "areas": apikeys.AREAS,
               "verbs": apikeys.VERBS, "roles": [r.value for r in Role]}  # fmt: skip
    return render(request, "admin/apikeys.html", context, status_code=status_code)


@router.get("/apikeys")
def list_keys(request: Request, siyu: SiyuDep, user: CurrentUser) -> HTMLResponse:
    return _page(request, siyu)


@router.post("/apikeys", dependencies=[CsrfChecked])
def create_key(
    request: Request,
    siyu: SiyuDep,
    user: CurrentUser,
    name: Annotated[str, Form(max_length=64)],
    scopes: Annotated[str, Form(max_length=1000)],
    role: Annotated[Role, Form()] = Role.HQ,
    staff_id: Annotated[str, Form(max_length=20)] = "",
    region: Annotated[str | None, Form(max_length=64)] = None,
) -> HTMLResponse:
    """The page answers directly (no redirect) so the secret is shown once and never stored."""
    try:
        key, secret = apikeys.create_api_key(
            session_factory=siyu.session_factory, clock=siyu.clock, name=name.strip(),
            scopes=[s for s in scopes.replace(",", " ").split() if s], role=role,
            staff_id=int(staff_id) if staff_id.strip().isdigit() else None,
            region=(region or None), actor=user.username,
        )  # fmt: skip
    except AccessError as error:
        return _page(request, siyu, error=error.message, status_code=422)
    return _page(request, siyu, issued=(key.name, secret))


@router.post("/apikeys/{key_id}/revoke", dependencies=[CsrfChecked])
def revoke_key(request: Request, key_id: int, siyu: SiyuDep, user: CurrentUser) -> HTMLResponse:
    try:
        apikeys.revoke_api_key(
            session_factory=siyu.session_factory, clock=siyu.clock, key_id=key_id,
            actor=user.username,
        )  # fmt: skip
    except AccessError as error:
        return _page(request, siyu, error=error.message, status_code=409)
    return _page(request, siyu)


@router.post("/apikeys/{key_id}/rotate", dependencies=[CsrfChecked])
def rotate_key(request: Request, key_id: int, siyu: SiyuDep, user: CurrentUser) -> HTMLResponse:
    try:
        key, secret = apikeys.rotate_api_key(
            session_factory=siyu.session_factory, clock=siyu.clock, key_id=key_id,
            actor=user.username,
        )  # fmt: skip
    except AccessError as error:
        return _page(request, siyu, error=error.message, status_code=409)
    return _page(request, siyu, issued=(key.name, secret))
