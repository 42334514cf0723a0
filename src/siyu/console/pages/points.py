"""Console pages of points and tiers: a member's points, lots, stamp cards and tier
(/console/loyalty/points/{member_id}, with a lookup by any identity), and the tier program with
the distribution of members per tier (/console/loyalty/tiers). Read-only; data from
`siyu.loyalty.points_service`.
"""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from siyu.api.deps import SiyuDep
from siyu.console.auth import CurrentUser
from siyu.console.nav import NavEntry
from siyu.console.templating import render
from siyu.identity import service as identity_service
from siyu.identity.errors import IdentityError
from siyu.loyalty import points_service

router = APIRouter(prefix="/console/loyalty", tags=["console"], include_in_schema=False)
nav = [
    NavEntry(section="Loyalty", label="Points", path="/console/loyalty/points", order=40),
    NavEntry(section="Loyalty", label="Tiers", path="/console/loyalty/tiers", order=50),
]


@router.get("/points", response_class=HTMLResponse, response_model=None)
def lookup(
    request: Request, siyu: SiyuDep, user: CurrentUser, q: str = Query(default="")
) -> HTMLResponse | RedirectResponse:
    error = ""
    if q.strip():
        try:
            member = identity_service.find_member_by_identity(
                session_factory=siyu.session_factory, identity=q.strip()
            )
            return RedirectResponse(f"/console/loyalty/points/{member}", status_code=303)
        except IdentityError as exc:
            error = exc.message
    return render(request, "points/lookup.html", {"q": q, "error": error})


@router.get("/points/{member_id}", response_class=HTMLResponse)
def member_points(
    request: Request, member_id: int, siyu: SiyuDep, user: CurrentUser
) -> HTMLResponse:
    factory, now = siyu.session_factory, siyu.clock.now()
    balance = points_service.balance(factory, member_id=member_id)
    context = {
        "member_id": member_id,
        "balance": balance,
        "tier": points_service.tier_status(factory, member_id=member_id, now=now),
        "entries": points_service.history(factory, member_id=member_id, limit=50),
        "lots": points_service.lots(factory, member_id=member_id),
        "cards": points_service.stamp_cards(factory, member_id=member_id),
        "tiles": [
            {"label": "Points", "value": balance.points, "fmt": "number", "key": "points"},
            {"label": "Pending", "value": balance.pending, "fmt": "number", "key": "pending"},
        ],
    }
    return render(request, "points/member.html", context)


@router.get("/tiers", response_class=HTMLResponse)
def tier_rules(request: Request, siyu: SiyuDep, user: CurrentUser) -> HTMLResponse:
    with siyu.session_factory() as session:
        rules = points_service.load_tier_rules(session)
        earn = points_service.load_earn_rules(session)
    distribution = points_service.tier_distribution(siyu.session_factory)
    return render(
        request,
        "points/tiers.html",
        {"rules": rules, "earn": earn, "distribution": distribution},
    )
