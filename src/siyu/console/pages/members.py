"""Members: search (phones masked in the list) and the member 360 page.

The 360 shows phones masked too; revealing a full value is an audited action that the
people-and-trust work adds. Computed traits come from the warehouse profile as of the last
profile refresh (`siyu profiles refresh`, the demo, or the worker) — a page view never
recomputes them.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from siyu.access.scope import viewer_of_user
from siyu.api.deps import SiyuDep
from siyu.console.auth import CsrfChecked, CurrentUser
from siyu.console.nav import NavEntry
from siyu.console.templating import render
from siyu.identity import queries
from siyu.identity.errors import IdentityError
from siyu.loyalty import member_view
from siyu.privacy import reveal
from siyu.privacy.errors import PrivacyError
from siyu.profiles import service as profiles_service

router = APIRouter(prefix="/console/members")
nav = [NavEntry(section="Members", label="Search", path="/console/members", order=0)]


@router.get("")
def search_page(
    request: Request,
    siyu: SiyuDep,
    user: CurrentUser,
    q: Annotated[str | None, Query(max_length=128)] = None,
    page: Annotated[int, Query(ge=1)] = 1,
) -> HTMLResponse:
    results = queries.search_members(
        session_factory=siyu.session_factory,
        query=q,
        page=page,
        page_size=25,
        viewer=viewer_of_user(user),
    )
    return render(request, "members/search.html", {"q": q or "", "results": results})


@router.get("/{member_id}")
def member_page(
    request: Request,
    member_id: int,
    siyu: SiyuDep,
    user: CurrentUser,
    page: Annotated[int, Query(ge=1)] = 1,
) -> HTMLResponse:
    try:
        member = queries.get_member(
            session_factory=siyu.session_factory, member_id=member_id, viewer=viewer_of_user(user)
        )
    except IdentityError as error:
        missing = {"title": "Member not found", "message": error.message}
        return render(request, "error.html", missing, status_code=404)
    orders = queries.member_orders(
        session_factory=siyu.session_factory,
        member_id=member.id,
        page=page,
        page_size=20,
        viewer=viewer_of_user(user),
    )
    as_of = siyu.clock.now().astimezone(siyu.settings.tz).date()
    profile = profiles_service.get_profile(
        warehouse=siyu.warehouse, member_id=member.id, as_of=as_of
    )
    context: dict[str, object] = {
        "member": member,
        "orders": orders,
        "profile": profile,
        "as_of": as_of,
        "revealed": getattr(request.state, "revealed", None),  # set by reveal_page
        "loyalty": member_view.member_loyalty(
            siyu.session_factory, member_id=member.id, now=siyu.clock.now()
        ),
    }
    return render(request, "members/detail.html", context)


@router.post("/{member_id}/reveal", dependencies=[CsrfChecked])
def reveal_page(request: Request, member_id: int, siyu: SiyuDep, user: CurrentUser) -> HTMLResponse:
    """The audited reveal of the full name and phones (issue #8), shown on the 360 page once."""
    try:
        request.state.revealed = reveal.reveal_member(
            session_factory=siyu.session_factory, clock=siyu.clock, member_id=member_id,
            viewer=viewer_of_user(user),
        )  # fmt: skip
    except (IdentityError, PrivacyError) as error:
        status = 403 if isinstance(error, PrivacyError) else 404
        return render(request, "error.html", {"title": "Cannot reveal", "message": error.message},
                      status_code=status)  # fmt: skip
    return member_page(request, member_id, siyu, user)
