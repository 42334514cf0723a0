"""API authentication (`Authorization: Bearer sk_…`), the scope each route needs, and the
HQ routes that manage keys (/api/apikeys).

Decisions:
- One HTTP middleware guards every `/api/*` path except /api/health, /api/docs and
  /api/openapi.json, so a router added tomorrow is protected without remembering to be.
- The scope a request needs is derived from its path and method: `/api/<area>/…` needs
  `read:<area>` for GET/HEAD and `write:<area>` otherwise; coupon reserve/redeem/release/
  reverse/validate need `redeem:coupons`; member erasure needs `erase:privacy` and a member
  data export `export:privacy`, the audited reveal `reveal:members`; /api/ingest needs
  `write:events`; /api/leaderboards counts as the staff area.
- The key's role and guide/region become the request's `Viewer` (`viewer_of(request)`), which
  routers pass to the domain services, so a guide's key reads only that guide's members.
- Whether keys are required: `Settings.api_auth` when set; otherwise required everywhere
  except `environment=test`, whose apps are built by tests that exercise the routes
  themselves (the security tests build theirs with `api_auth=True`).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, HTTPException, Path, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from siyu.access import apikeys
from siyu.access import service as access_service
from siyu.access.errors import AccessError, AccessErrorCode
from siyu.access.schemas import Role
from siyu.access.scope import Viewer, may_see_member, viewer_of_user
from siyu.api.deps import SiyuDep
from siyu.bootstrap import Siyu

_MEMBER_PATH = re.compile(
    r"^/(?:api|console)/(?:members|tags/members|coupons/wallet|points|loyalty/points|"
    r"staff/owners)/(?P<id>\d{1,18})(?:/|$)"
)
_OPEN = ("/api/health", "/api/docs", "/api/openapi.json", "/api/docs/oauth2-redirect")
_REDEEM = ("reserve", "redeem", "release", "reverse", "validate")
_AREA_ALIASES = {"ingest": "events", "apikeys": "keys", "leaderboards": "staff"}


def auth_required(siyu: Siyu) -> bool:
    explicit: bool | None = getattr(siyu.settings, "api_auth", None)
    return explicit if explicit is not None else siyu.settings.environment != "test"


def required_scope(method: str, path: str) -> str:
    """The scope a request needs, from its path and method."""
    parts = [p for p in path.split("/") if p][1:]  # drop the leading "api"
    area = _AREA_ALIASES.get(parts[0], parts[0]) if parts else "keys"
    if area == "members" and (parts[-1:] == ["erase"] or method == "DELETE"):
        return "erase:privacy"
    if area == "members" and parts[-1:] == ["export"]:
        return "export:privacy"
    if area == "members" and parts[-1:] == ["reveal"]:
        return "reveal:members"
    if area == "coupons" and any(p in _REDEEM for p in parts[1:]):
        return "redeem:coupons"
    if area == "events":
        return "write:events" if method not in ("GET", "HEAD") else "read:events"
    return f"{'read' if method in ('GET', 'HEAD', 'OPTIONS') else 'write'}:{area}"


def install_api_auth(app: FastAPI, siyu: Siyu) -> None:
    """Refuse /api requests without a valid key carrying the route's scope."""

    @app.middleware("http")
    async def authenticate(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        path = request.url.path
        if not path.startswith("/api/") or path in _OPEN or not auth_required(siyu):
            return await call_next(request)
        header = request.headers.get("authorization", "")
        token = header[7:].strip() if header[:7].lower() == "bearer " else ""
        try:
            principal = await run_in_threadpool(
                apikeys.authenticate_api_key,
                session_factory=siyu.session_factory, clock=siyu.clock, secret=token,
            )  # fmt: skip
        except AccessError as error:
            return _refuse(401, error.code, error.message)
        scope = required_scope(request.method, path)
        if not principal.allows(scope):
            return _refuse(403, AccessErrorCode.MISSING_SCOPE, f"this key lacks scope {scope}")
        request.state.viewer = principal.viewer
        if not await run_in_threadpool(_may_open_member_path, siyu, principal.viewer, path):
            return _refuse_missing_member()
        return await call_next(request)


def install_member_path_guard(app: FastAPI, siyu: Siyu) -> None:
    """Console requests for a member page outside the signed-in user's scope answer 404.

    Must be installed before the console's session middleware (so it runs inside it).
    """

    @app.middleware("http")
    async def guard(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        path = request.url.path
        if path.startswith("/console/") and _MEMBER_PATH.match(path):
            user_id = request.session.get("user_id") if "session" in request.scope else None
            if isinstance(user_id, int):
                user = await run_in_threadpool(
                    access_service.get_user, session_factory=siyu.session_factory, user_id=user_id
                )
                viewer = None if user is None else viewer_of_user(user)
                if viewer is not None and not await run_in_threadpool(
                    _may_open_member_path, siyu, viewer, path
                ):
                    return _refuse_missing_member()
        return await call_next(request)


def _may_open_member_path(siyu: Siyu, viewer: Viewer, path: str) -> bool:
    """Whether a path naming a member (points, wallet, tags, 360…) is in the viewer's scope.

    A route-level backstop for domains whose services do not take a Viewer yet: the member id
    in the path must be visible to the caller, whatever the router does next.
    """
    match = _MEMBER_PATH.match(path)
    if match is None or viewer.sees_everything:
        return True
    with siyu.session_factory() as session:
        return may_see_member(session, viewer, int(match.group("id")))


def _refuse_missing_member() -> JSONResponse:
    return JSONResponse(
        {"detail": {"code": "member_not_found", "message": "no such member"}}, status_code=404
    )


def _refuse(status: int, code: AccessErrorCode, message: str) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(
        {"detail": {"code": code.value, "message": message}}, status_code=status, headers=headers
    )


def viewer_of(request: Request) -> Viewer:
    """Who is calling: the key's viewer, or HQ when keys are not required (test apps)."""
    viewer: Viewer | None = getattr(request.state, "viewer", None)
    return viewer if viewer is not None else Viewer.system("api")


router = APIRouter(prefix="/api/apikeys", tags=["apikeys"])
KeyId = Annotated[int, Path(ge=1, le=2**53)]


class ApiKeyCreate(BaseModel):
    name: Annotated[str, Field(min_length=2, max_length=64)]
    scopes: Annotated[list[str], Field(min_length=1, max_length=32)]
    role: Role = Role.HQ
    staff_id: int | None = None
    region: Annotated[str | None, Field(max_length=64)] = None


class ApiKeyOut(BaseModel):
    id: int
    name: str
    prefix: str
    scopes: list[str]
    role: Role
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiKeyIssued(ApiKeyOut):
    secret: str = Field(description="Shown once; store it now.")


def _out(key: apikeys.ApiKeyRead) -> dict[str, Any]:
    return {**key.__dict__, "scopes": list(key.scopes)}


def _hq(request: Request) -> Viewer:
    viewer = viewer_of(request)
    if viewer.role is not Role.HQ:
        raise HTTPException(403, {"code": "not_allowed", "message": "HQ manages API keys"})
    return viewer


def _http(error: AccessError) -> HTTPException:
    status = 404 if error.code is AccessErrorCode.UNKNOWN_API_KEY else 422
    if error.code is AccessErrorCode.API_KEY_REVOKED:
        status = 409
    return HTTPException(status, {"code": error.code.value, "message": error.message})


@router.get("")
def list_keys(request: Request, siyu: SiyuDep) -> list[ApiKeyOut]:
    _hq(request)
    keys = apikeys.list_api_keys(session_factory=siyu.session_factory)
    return [ApiKeyOut(**_out(k)) for k in keys]


@router.post("", status_code=201)
def create_key(body: ApiKeyCreate, request: Request, siyu: SiyuDep) -> ApiKeyIssued:
    viewer = _hq(request)
    try:
        key, secret = apikeys.create_api_key(
            session_factory=siyu.session_factory, clock=siyu.clock, name=body.name,
            scopes=body.scopes, role=body.role, staff_id=body.staff_id, region=body.region,
            actor=viewer.actor,
        )  # fmt: skip
    except AccessError as error:
        raise _http(error) from error
    return ApiKeyIssued(**_out(key), secret=secret)


@router.post("/{key_id}/rotate")
def rotate_key(key_id: KeyId, request: Request, siyu: SiyuDep) -> ApiKeyIssued:
    viewer = _hq(request)
    try:
        key, secret = apikeys.rotate_api_key(
            session_factory=siyu.session_factory, clock=siyu.clock, key_id=key_id,
            actor=viewer.actor,
        )  # fmt: skip
    except AccessError as error:
        raise _http(error) from error
    return ApiKeyIssued(**_out(key), secret=secret)


@router.post("/{key_id}/revoke")
def revoke_key(key_id: KeyId, request: Request, siyu: SiyuDep) -> ApiKeyOut:
    viewer = _hq(request)
    try:
        key = apikeys.revoke_api_key(
            session_factory=siyu.session_factory, clock=siyu.clock, key_id=key_id,
            actor=viewer.actor,
        )  # fmt: skip
    except AccessError as error:
        raise _http(error) from error
    return ApiKeyOut(**_out(key))
