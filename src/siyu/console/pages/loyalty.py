"""Console pages of coupons: the template list and create form, a template's budget burn-down,
redemption log and issuances, issuing to a segment or a member list with live progress, the
ROI of an issuance against its holdout, and a member's wallet.

Decisions where the issue is silent:
- Everyone signed in may look; only HQ may create templates or issue (coupons cost money).
- The form takes yuan (as operators think) and stores fen; a YAML/JSON box accepts the full
  template document (scope by SKU, time windows, stacking…) for what the form does not cover.
- Issuing runs in a background thread of the server, one transaction per batch; the progress
  page reads the issuance row, which each batch updates, and refreshes itself until finished.
"""

from __future__ import annotations

import threading
import uuid
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

import yaml
from fastapi import APIRouter, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from siyu.access.schemas import Role
from siyu.access.scope import viewer_of_user
from siyu.api.deps import SiyuDep
from siyu.bootstrap import Siyu
from siyu.console.auth import CsrfChecked, CurrentUser, require_role
from siyu.console.nav import NavEntry
from siyu.console.templating import render
from siyu.db import transaction
from siyu.identity import queries
from siyu.identity.errors import IdentityError
from siyu.loyalty import service, template_admin
from siyu.loyalty.errors import LoyaltyError, LoyaltyErrorCode
from siyu.loyalty.models import CouponKind

router = APIRouter(prefix="/console/loyalty")
nav = [
    NavEntry(section="Loyalty", label="Coupons", path="/console/loyalty/coupons", order=10),
    NavEntry(section="Loyalty", label="Wallet", path="/console/loyalty/wallet", order=15),
]
HqOnly = require_role(Role.HQ)
_planned: dict[str, int] = {}  # issuance key → members targeted, for the progress bar


def _fen(raw: str, field: str) -> int:
    try:
        return int((Decimal(raw or "0") * 100).to_integral_value())
    except InvalidOperation as exc:
        raise ValueError(f"{field}: {raw!r} is not an amount in yuan") from exc


def _spec_from_form(form: dict[str, str]) -> dict[str, Any]:
    if form.get("document", "").strip():
        document = yaml.safe_load(form["document"])
        if not isinstance(document, dict):
            raise ValueError("the template document must be a mapping")
        return document
    spec: dict[str, Any] = {
        "code": form.get("code", ""),
        "name": form.get("name", ""),
        "kind": form.get("kind", ""),
        "threshold_fen": _fen(form.get("threshold_yuan", ""), "threshold"),
        "value_fen": _fen(form.get("value_yuan", ""), "value"),
        "percent_off": int(form.get("percent_off") or 0),
        "valid_days": int(form.get("valid_days") or 30),
        "per_member_limit": int(form.get("per_member_limit") or 1),
        "exclusive": form.get("exclusive") == "on",
    }
    optional = {
        "cap_fen": _fen(form.get("cap_yuan", ""), "cap") or None,
        "gift_sku": form.get("gift_sku") or None,
        "budget_total": int(form["budget_total"]) if form.get("budget_total") else None,
        "budget_daily": int(form["budget_daily"]) if form.get("budget_daily") else None,
        "stack_group": form.get("stack_group") or None,
    }
    spec.update({k: v for k, v in optional.items() if v is not None})
    scope = {
        key: [v.strip() for v in form.get(key, "").split(",") if v.strip()]
        for key in ("skus", "categories", "stores", "channels")
    }
    spec["scope"] = {k: v for k, v in scope.items() if v}
    return spec


def _list_page(request: Request, siyu: Siyu, user: Any, **extra: Any) -> HTMLResponse:
    with transaction(siyu.session_factory) as db:
        templates = service.list_templates(db)
    context = {
        "templates": templates,
        "kinds": [k.value for k in CouponKind],
        "can_edit": user.role == Role.HQ,
        "error": None,
        "form": {},
        **extra,
    }
    return render(request, "loyalty/coupons.html", context)


@router.get("/coupons")
def coupon_list(request: Request, siyu: SiyuDep, user: CurrentUser) -> HTMLResponse:
    return _list_page(request, siyu, user)


@router.post("/coupons", dependencies=[CsrfChecked, HqOnly], response_model=None)
async def create_coupon_template(
    request: Request, siyu: SiyuDep, user: CurrentUser
) -> HTMLResponse | RedirectResponse:
    form = {k: str(v) for k, v in (await request.form()).items()}
    try:
        spec = _spec_from_form(form)
        with transaction(siyu.session_factory) as db:
            created = service.create_template(
                db, spec=spec, now=siyu.clock.now(), actor=user.username
            )
    except LoyaltyError as error:
        return _list_page(request, siyu, user, error=error.message, form=form)
    except (ValueError, yaml.YAMLError) as error:
        return _list_page(request, siyu, user, error=str(error), form=form)
    return RedirectResponse(f"/console/loyalty/coupons/{created.code}", status_code=303)


@router.get("/coupons/{code}")
def coupon_detail(request: Request, siyu: SiyuDep, user: CurrentUser, code: str) -> HTMLResponse:
    tz = siyu.settings.tz
    try:
        with transaction(siyu.session_factory) as db:
            template = service.get_template(db, code=code)
            burndown = service.budget_burndown(db, template_code=code, tz=tz)
            log = service.redemption_log(db, template_code=code, limit=50)
            issuances = service.list_issuances(db, template_code=code)
    except LoyaltyError as error:
        raise HTTPException(status_code=404, detail=error.message) from error
    context = {
        "t": template,
        "burn_labels": [row["day"] for row in burndown],
        "burn_series": _burn_series(template, burndown),
        "log": log,
        "issuances": issuances,
        "can_edit": user.role == Role.HQ,
    }
    return render(request, "loyalty/detail.html", context)


def _burn_series(template: service.TemplateRead, burndown: list[dict[str, Any]]) -> list[Any]:
    series = [
        {"name": "issued", "values": [row["issued"] for row in burndown]},
        {"name": "redeemed", "values": [row["redeemed"] for row in burndown]},
    ]
    if template.budget_total is not None:
        series.insert(0, {"name": "budget left", "values": [row["left"] for row in burndown]})
    return series


@router.post("/coupons/{code}/pause", dependencies=[CsrfChecked, HqOnly])
def pause_template(siyu: SiyuDep, user: CurrentUser, code: str) -> RedirectResponse:
    return _set_status(siyu, user.username, code, pause=True)


@router.post("/coupons/{code}/resume", dependencies=[CsrfChecked, HqOnly])
def resume_template(siyu: SiyuDep, user: CurrentUser, code: str) -> RedirectResponse:
    return _set_status(siyu, user.username, code, pause=False)


def _set_status(siyu: Siyu, actor: str, code: str, *, pause: bool) -> RedirectResponse:
    move = template_admin.pause_template if pause else template_admin.resume_template
    try:
        with transaction(siyu.session_factory) as db:
            move(db, code=code, now=siyu.clock.now(), actor=actor)
    except LoyaltyError as error:
        status = 404 if error.code == LoyaltyErrorCode.TEMPLATE_NOT_FOUND else 409
        raise HTTPException(status_code=status, detail=error.message) from error
    return RedirectResponse(f"/console/loyalty/coupons/{code}", status_code=303)


@router.post("/coupons/{code}/issue", dependencies=[CsrfChecked, HqOnly])
def issue_coupons(
    siyu: SiyuDep,
    user: CurrentUser,
    code: str,
    segment: Annotated[str, Form()] = "",
    member_ids: Annotated[str, Form()] = "",
    holdout: Annotated[int, Form(ge=0, le=50)] = 0,
) -> RedirectResponse:
    ids = [int(x) for x in member_ids.replace(",", " ").split() if x.isdigit()]
    if not segment and not ids:
        raise HTTPException(status_code=422, detail="give a segment name or member ids")
    key = f"{code}:console:{uuid.uuid4().hex[:12]}"
    source = f"segment:{segment}" if segment else "console list"
    thread = threading.Thread(
        target=_issue_in_background,
        args=(siyu, code, key, segment, ids, holdout, source),
        daemon=True,
    )
    thread.start()
    thread.join(timeout=0.5)  # small issuances finish before the redirect
    return RedirectResponse(f"/console/loyalty/issuances?key={key}", status_code=303)


def _issue_in_background(
    siyu: Siyu, code: str, key: str, segment: str, ids: list[int], holdout: int, source: str
) -> None:
    if segment:
        ids = service.segment_member_ids(
            session_factory=siyu.session_factory,
            warehouse=siyu.warehouse,
            segment=segment,
            now=siyu.clock.now(),
            tz=siyu.settings.tz,
        )
    _planned[key] = len(ids)
    service.issue_to_members(
        siyu.session_factory,
        template_code=code,
        member_ids=ids,
        key=key,
        now=siyu.clock.now(),
        tz=siyu.settings.tz,
        source=source,
        holdout_percent=holdout,
    )


@router.get("/issuances")
def issuance_progress(
    request: Request, siyu: SiyuDep, user: CurrentUser, key: Annotated[str, Query()]
) -> HTMLResponse:
    with transaction(siyu.session_factory) as db:
        issuance = service.get_issuance(db, key=key)
        roi = service.issuance_roi(db, issuance_key=key) if issuance else None
    planned = _planned.get(key) or (issuance.targeted if issuance else 0)
    context = {"key": key, "i": issuance, "planned": planned, "roi": roi}
    return render(request, "loyalty/issuance.html", context)


@router.get("/wallet")
def wallet(
    request: Request,
    siyu: SiyuDep,
    user: CurrentUser,
    q: Annotated[str, Query()] = "",
    member: Annotated[int | None, Query()] = None,
) -> HTMLResponse:
    found: Any = None
    coupons: list[service.WalletCoupon] = []
    message = ""
    if member is not None:  # from the member 360 page's loyalty panel
        try:
            found = queries.get_member(
                session_factory=siyu.session_factory,
                member_id=member,
                viewer=viewer_of_user(user),
            )
        except IdentityError as error:
            raise HTTPException(status_code=404, detail=error.message) from error
        with transaction(siyu.session_factory) as db:
            coupons = service.member_wallet(db, member_id=found.id, now=siyu.clock.now())
    elif q.strip():
        page = queries.search_members(session_factory=siyu.session_factory, query=q.strip())
        if page.total == 1:
            found = page.items[0]
            with transaction(siyu.session_factory) as db:
                coupons = service.member_wallet(db, member_id=found.id, now=siyu.clock.now())
        else:
            message = f"{page.total} members match; give a phone or member number"
    context = {"q": q, "member": found, "coupons": coupons, "message": message}
    return render(request, "loyalty/wallet.html", context)
