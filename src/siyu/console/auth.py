"""Console sign-in state: who is signed in, session expiry, and CSRF tokens on forms.

Sessions are Starlette's signed cookies (SIYU_SECRET_KEY). The cookie's own max_age slides
with activity; on top of it a session ends `session_max_age_seconds` after login, measured
with siyu's clock, so a stolen cookie is not valid forever. Logging in clears the session and
issues a new CSRF token (no session fixation).
"""

from __future__ import annotations

import hmac
import secrets
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request

from siyu.access import service as access_service
from siyu.access.schemas import Role, UserRead
from siyu.api.deps import SiyuDep

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


class LoginRequired(Exception):
    """Raised by `require_user`; mount_console turns it into a redirect to the login page."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


def csrf_token(request: Request) -> str:
    """This session's CSRF token, created on first use."""
    token = request.session.get(CSRF_FIELD)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        request.session[CSRF_FIELD] = token
    return token


async def verify_csrf(request: Request) -> None:
    """Refuse a POST whose csrf_token field (or X-CSRF-Token header) is not this session's."""
    form = await request.form()  # Starlette caches it: Form(...) parameters still work
    sent = form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER)
    expected = request.session.get(CSRF_FIELD)
    if not isinstance(sent, str) or not isinstance(expected, str):
        raise HTTPException(status_code=403, detail="missing CSRF token: reload the page")
    if not hmac.compare_digest(sent, expected):
        raise HTTPException(status_code=403, detail="invalid CSRF token: reload the page")


def start_session(request: Request, *, user: UserRead, now: datetime) -> None:
    request.session.clear()
    request.session["user_id"] = user.id
    request.session["login_at"] = now.timestamp()
    csrf_token(request)


def end_session(request: Request) -> None:
    request.session.clear()


def require_user(request: Request, siyu: SiyuDep) -> UserRead:
    """The signed-in, active user; otherwise a redirect to the login page."""
    user_id = request.session.get("user_id")
    login_at = request.session.get("login_at")
    next_path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if not isinstance(user_id, int) or not isinstance(login_at, int | float):
        raise LoginRequired(next_path)
    age = siyu.clock.now().timestamp() - login_at
    if age > siyu.settings.session_max_age_seconds or age < 0:
        end_session(request)
        raise LoginRequired(next_path)
    user = access_service.get_user(session_factory=siyu.session_factory, user_id=user_id)
    if user is None or not user.active:
        end_session(request)
        raise LoginRequired(next_path)
    request.state.user = user
    return user


CurrentUser = Annotated[UserRead, Depends(require_user)]
CsrfChecked = Depends(verify_csrf)


def require_role(*roles: Role) -> Any:
    """A route dependency admitting only these roles (403 otherwise)."""

    def check(user: CurrentUser) -> UserRead:
        if user.role not in roles:
            raise HTTPException(status_code=403, detail="your role may not open this page")
        return user

    return Depends(check)
