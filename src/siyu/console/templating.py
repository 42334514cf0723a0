"""Rendering console pages: one Jinja2 environment, the shared context every page gets."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from siyu.console import charts
from siyu.console.auth import CSRF_FIELD, csrf_token
from siyu.console.nav import NavEntry, build_nav
from siyu.identity.masking import mask_phone

TEMPLATES_DIR = Path(__file__).parent / "templates"


def create_templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
    env = templates.env
    env.trim_blocks = True
    env.lstrip_blocks = True
    env.filters["mask_phone"] = mask_phone
    env.filters["yuan"] = format_yuan
    env.filters["thousands"] = format_thousands
    env.globals["nice_max"] = charts.nice_max
    env.globals["ticks"] = charts.ticks
    env.globals["short_number"] = charts.short_number
    env.globals["CSRF_FIELD"] = CSRF_FIELD
    return templates


def format_yuan(value: Decimal | float | int | None) -> str:
    if value is None:
        return "—"
    return f"¥{Decimal(value):,.2f}"


def format_thousands(value: float | int | None) -> str:
    return "—" if value is None else f"{value:,}"


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
) -> HTMLResponse:
    """Render a page inside the shell: adds the user, the navigation and the CSRF token."""
    templates: Jinja2Templates = request.app.state.console_templates
    entries: list[NavEntry] = request.app.state.console_nav
    user = getattr(request.state, "user", None)
    shared = {
        "user": user,
        "nav": build_nav(entries, role=user.role) if user is not None else [],
        "current_path": request.url.path,
        "csrf_token": csrf_token(request),
        "tz": request.app.state.siyu.settings.tz,
    }
    return templates.TemplateResponse(
        request, template, {**shared, **(context or {})}, status_code=status_code
    )
