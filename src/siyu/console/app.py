"""Mounts the console on the FastAPI app: sessions, static files, login and every page module.

Pages are discovered: each module in `siyu.console.pages` exposes `router` (an APIRouter whose
paths start with /console) and optionally `nav` (a list of NavEntry). See docs/console.md.
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path
from types import ModuleType
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.middleware.sessions import SessionMiddleware

from siyu.bootstrap import Siyu
from siyu.console import login, pages
from siyu.console.auth import LoginRequired
from siyu.console.nav import NavEntry
from siyu.console.templating import create_templates

STATIC_DIR = Path(__file__).parent / "static"
SESSION_COOKIE = "siyu_session"


def mount_console(app: FastAPI, siyu: Siyu) -> None:
    """Add the console (under /console) to an app built by `create_app`."""
    app.add_middleware(
        SessionMiddleware,
        secret_key=siyu.settings.secret_key,
        session_cookie=SESSION_COOKIE,
        max_age=siyu.settings.session_max_age_seconds,
        same_site="lax",
        https_only=siyu.settings.environment == "production",
    )
    app.state.console_templates = create_templates()
    app.mount("/console/static", StaticFiles(directory=STATIC_DIR), name="console-static")
    app.add_exception_handler(LoginRequired, _redirect_to_login)
    app.include_router(login.router, include_in_schema=False)
    entries: list[NavEntry] = []
    for module in page_modules():
        app.include_router(module.router, include_in_schema=False)
        entries.extend(getattr(module, "nav", []))
    app.state.console_nav = entries

    @app.get("/", include_in_schema=False)
    def root() -> Response:
        return RedirectResponse("/console/", status_code=307)


def page_modules() -> list[ModuleType]:
    """Every page module, in name order (the nav order comes from SECTIONS, not from this)."""
    names = sorted(info.name for info in pkgutil.iter_modules(pages.__path__))
    return [importlib.import_module(f"{pages.__name__}.{name}") for name in names]


async def _redirect_to_login(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LoginRequired)
    return RedirectResponse(f"/console/login?next={quote(exc.next_path)}", status_code=303)
