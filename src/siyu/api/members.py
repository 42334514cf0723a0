"""HTTP API of members: search, the member 360 by id or by any identity, a member's orders."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request

from siyu.api.apikeys import viewer_of
from siyu.api.deps import SiyuDep
from siyu.identity import queries
from siyu.identity.errors import IdentityError, IdentityErrorCode
from siyu.identity.schemas import MemberDetail, MemberPage, OrderPage

router = APIRouter(prefix="/api/members", tags=["members"])
PageNo = Annotated[int, Query(ge=1, description="1-based page number")]
PageSize = Annotated[int, Query(ge=1, le=queries.MAX_PAGE_SIZE)]
_STATUS = {
    IdentityErrorCode.MEMBER_NOT_FOUND: 404,
    IdentityErrorCode.IDENTITY_NOT_UNDERSTOOD: 422,
}


def _http(error: IdentityError) -> HTTPException:
    return HTTPException(
        status_code=_STATUS.get(error.code, 422),
        detail={"code": error.code.value, "message": error.message},
    )


@router.get("")
def search_members(
    request: Request,
    siyu: SiyuDep,
    q: Annotated[
        str | None,
        Query(
            max_length=128,
            description="phone (any format), member_no, unionid, openid, external_userid, "
            "pos_id or a name prefix; empty lists every member",
        ),
    ] = None,
    page: PageNo = 1,
    page_size: PageSize = 20,
) -> MemberPage:
    return queries.search_members(
        session_factory=siyu.session_factory,
        query=q,
        page=page,
        page_size=page_size,
        viewer=viewer_of(request),
    )


@router.get("/by-identity/{identity_type}/{value}")
def member_by_identity(
    identity_type: str, value: str, request: Request, siyu: SiyuDep
) -> MemberDetail:
    """`identity_type`: member_no, phone, unionid, openid:<appid>, external_userid, pos_id."""
    try:
        return queries.get_member_by_identity(
            session_factory=siyu.session_factory,
            identity_type=identity_type,
            value=value,
            viewer=viewer_of(request),
        )
    except IdentityError as error:
        raise _http(error) from error


@router.get("/{member_id}")
def get_member(member_id: int, request: Request, siyu: SiyuDep) -> MemberDetail:
    try:
        return queries.get_member(
            session_factory=siyu.session_factory, member_id=member_id, viewer=viewer_of(request)
        )
    except IdentityError as error:
        raise _http(error) from error


@router.get("/{member_id}/orders")
def member_orders(
    member_id: int, request: Request, siyu: SiyuDep, page: PageNo = 1, page_size: PageSize = 20
) -> OrderPage:
    try:
        return queries.member_orders(
            session_factory=siyu.session_factory,
            member_id=member_id,
            page=page,
            page_size=page_size,
            viewer=viewer_of(request),
        )
    except IdentityError as error:
        raise _http(error) from error
