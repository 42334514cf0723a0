"""Console pages of the WeCom channel: channel codes (活码) with their statistics, the create
form, the demo's "simulate a scan" button, staff-confirmed sends and customer groups.

Decisions where the issue is silent:
- Everyone signed in may look at the codes; only HQ creates them (a code is a brand asset on
  WeCom). Staff sends and groups are scoped: a guide sees their own, a supervisor their region's.
- "Simulate a customer scanning this code" exists only in demo mode (no WeCom secret
  configured): it plays a scan on the simulated WeCom through siyu's real callback endpoint
  and worker, then shows what happened; with a real corp the button is not offered at all.
- The welcome message is a text (with {name}), an image URL and/or a mini-program card (title,
  appid, page, optional cover media id): any combination WeCom's send_welcome_msg takes; a card
  with a field missing is refused with the reason. Auto-tags are corp tag ids, comma separated.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from siyu.access.schemas import Role
from siyu.access.scope import viewer_of_user
from siyu.api.deps import SiyuDep
from siyu.channels.wecom import queries, simulate
from siyu.channels.wecom.worker import run_sync
from siyu.console.auth import CsrfChecked, CurrentUser, require_role
from siyu.console.nav import NavEntry
from siyu.console.templating import render
from siyu.growth.errors import GrowthError
from siyu.growth.models import CodeScope
from siyu.growth.stats import code_stats

router = APIRouter(prefix="/console/wecom")
nav = [
    NavEntry(section="WeCom", label="Channel codes", path="/console/wecom/codes", order=0),
    NavEntry(section="WeCom", label="Staff sends", path="/console/wecom/sends", order=10),
    NavEntry(section="WeCom", label="Groups", path="/console/wecom/groups", order=20),
]
HQ = require_role(Role.HQ)


def _codes_page(
    request: Request,
    siyu: SiyuDep,
    user: Any,
    *,
    form: dict[str, str] | None = None,
    error: str | None = None,
    outcome: dict[str, Any] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    stats = code_stats(session_factory=siyu.session_factory)
    context = {
        "stats": stats,
        "adds": [(s.name, s.adds) for s in stats],
        "net": [(s.name, s.net) for s in stats],
        "can_edit": user.role == Role.HQ,
        "demo_mode": simulate.demo_mode(siyu),
        "scopes": [s.value for s in CodeScope],
        "form": form or {},
        "error": error,
        "outcome": outcome,
    }
    return render(request, "wecom/codes.html", context, status_code=status_code)


@router.get("/codes")
def codes(request: Request, siyu: SiyuDep, user: CurrentUser) -> HTMLResponse:
    return _codes_page(request, siyu, user)


@router.post("/codes", dependencies=[CsrfChecked, HQ])
def create_code(
    request: Request,
    siyu: SiyuDep,
    user: CurrentUser,
    name: Annotated[str, Form()],
    guides: Annotated[str, Form()],
    scope: Annotated[str, Form()] = CodeScope.GUIDE.value,
    state: Annotated[str, Form()] = "",
    store_code: Annotated[str, Form()] = "",
    campaign: Annotated[str, Form()] = "",
    welcome: Annotated[str, Form()] = "",
    welcome_image_url: Annotated[str, Form()] = "",
    card_title: Annotated[str, Form()] = "",
    card_appid: Annotated[str, Form()] = "",
    card_page: Annotated[str, Form()] = "",
    card_pic_media_id: Annotated[str, Form()] = "",
    auto_tags: Annotated[str, Form()] = "",
) -> Any:
    form = {
        "name": name,
        "guides": guides,
        "scope": scope,
        "state": state,
        "store_code": store_code,
        "campaign": campaign,
        "welcome": welcome,
        "welcome_image_url": welcome_image_url,
        "card_title": card_title,
        "card_appid": card_appid,
        "card_page": card_page,
        "card_pic_media_id": card_pic_media_id,
        "auto_tags": auto_tags,
    }
    userids = [g.strip() for g in guides.split(",") if g.strip()]
    tags = [t.strip() for t in auto_tags.split(",") if t.strip()]
    try:
        run_sync(
            lambda: simulate.create_code(
                siyu,
                name=name.strip(),
                scope=CodeScope(scope),
                guides=userids,
                state=state.strip() or None,
                store_code=store_code.strip() or None,
                campaign=campaign.strip() or None,
                welcome=_welcome_of(form),
                auto_tags=tags or None,
            )
        )
    except (GrowthError, ValueError) as error:
        return _codes_page(request, siyu, user, form=form, error=str(error), status_code=422)
    return RedirectResponse("/console/wecom/codes", status_code=303)


def _welcome_of(form: dict[str, str]) -> dict[str, Any] | None:
    """The welcome template from the form's fields; None when all are blank."""
    welcome: dict[str, Any] = {}
    if form["welcome"].strip():
        welcome["text"] = form["welcome"]
    if form["welcome_image_url"].strip():
        welcome["image_url"] = form["welcome_image_url"].strip()
    card_fields = {"title": "card_title", "appid": "card_appid", "page": "card_page"}
    card = {key: form[field].strip() for key, field in card_fields.items() if form[field].strip()}
    if form["card_pic_media_id"].strip():
        card["pic_media_id"] = form["card_pic_media_id"].strip()
    if card:
        welcome["miniprogram"] = card
    return welcome or None


@router.post("/codes/{code_id}/simulate", dependencies=[CsrfChecked])
def simulate_scan(
    request: Request,
    siyu: SiyuDep,
    user: CurrentUser,
    code_id: int,
    customer: Annotated[str, Form()] = "Wang Fang",
) -> HTMLResponse:
    if not simulate.demo_mode(siyu):
        raise HTTPException(404, "scans are simulated only when no WeCom corp is configured")
    code = next(
        (s for s in code_stats(session_factory=siyu.session_factory) if s.code_id == code_id), None
    )
    if code is None:
        raise HTTPException(404, f"no channel code {code_id}")
    outcome = run_sync(
        lambda: simulate.simulate_add(
            siyu, guide=code.userids[0], state=code.state, name=customer.strip() or "Wang Fang"
        )
    )
    outcome = {"code": code.name, "guide": code.userids[0], **outcome}
    return _codes_page(request, siyu, user, outcome=outcome)


@router.get("/sends")
def sends(request: Request, siyu: SiyuDep, user: CurrentUser) -> HTMLResponse:
    rows = queries.list_sends(session_factory=siyu.session_factory, viewer=viewer_of_user(user))
    return render(request, "wecom/sends.html", {"sends": [asdict(r) for r in rows]})


@router.get("/groups")
def groups(request: Request, siyu: SiyuDep, user: CurrentUser) -> HTMLResponse:
    rows = queries.list_groups(session_factory=siyu.session_factory, viewer=viewer_of_user(user))
    return render(request, "wecom/groups.html", {"groups": rows})
