"""Sign in and out of the console."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from siyu.access import service as access_service
from siyu.access.errors import AccessError
from siyu.api.deps import SiyuDep
from siyu.console.auth import CsrfChecked, end_session, start_session
from siyu.console.templating import render

router = APIRouter(prefix="/console")


def _safe_next(value: str | None) -> str:
    # Only same-site paths: an open redirect would turn the login page into a phishing aid.
    if value and value.startswith("/console") and not value.startswith("//"):
        return value
    return "/console/"


@router.get("/login")
def login_page(request: Request, next: str | None = None) -> HTMLResponse:
    return render(request, "login.html", {"next": _safe_next(next), "error": None})


@router.post("/login", dependencies=[CsrfChecked])
def login(
    request: Request,
    siyu: SiyuDep,
    username: Annotated[str, Form()],
    password: Annotated[str, Form()],
    next: Annotated[str | None, Form()] = None,
) -> Response:
    try:
        user = access_service.authenticate(
            session_factory=siyu.session_factory,
            clock=siyu.clock,
            username=username.strip(),
            password=password,
        )
    except AccessError as error:
        context = {"next": _safe_next(next), "error": error.message, "username": username}
        return render(request, "login.html", context, status_code=401)
    start_session(request, user=user, now=siyu.clock.now())
    return RedirectResponse(_safe_next(next), status_code=303)


@router.post("/logout", dependencies=[CsrfChecked])
def logout(request: Request) -> Response:
    end_session(request)
    return RedirectResponse("/console/login", status_code=303)
