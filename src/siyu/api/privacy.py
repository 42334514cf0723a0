"""HTTP API of PIPL requests and the audited reveal, under /api/members/{id}/….

- POST /erase (scope `erase:privacy`) and GET /export (scope `export:privacy`): HQ only.
- POST /reveal (scope `reveal:members`): the member's full name and phones, audited; not for
  analysts, and only for members in the caller's scope.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Request

from siyu.api.apikeys import viewer_of
from siyu.api.deps import SiyuDep
from siyu.identity.errors import IdentityError
from siyu.privacy import reveal, service
from siyu.privacy.errors import PrivacyError

router = APIRouter(prefix="/api/members", tags=["privacy"])
MemberId = Annotated[int, Path(ge=1, le=2**53)]


def _http(error: PrivacyError | IdentityError) -> HTTPException:
    status = 403 if isinstance(error, PrivacyError) else 404
    return HTTPException(status, {"code": error.code.value, "message": error.message})


@router.post("/{member_id}/erase")
def erase(member_id: MemberId, request: Request, siyu: SiyuDep) -> dict[str, int]:
    """Erase the person's personal data from both stores (irreversible, audited)."""
    try:
        return service.erase_member(
            session_factory=siyu.session_factory, warehouse=siyu.warehouse, clock=siyu.clock,
            member_id=member_id, viewer=viewer_of(request),
        )  # fmt: skip
    except (PrivacyError, IdentityError) as error:
        raise _http(error) from error


@router.get("/{member_id}/export")
def export(member_id: MemberId, request: Request, siyu: SiyuDep) -> dict[str, Any]:
    """Everything siyu holds about the person, as JSON (audited)."""
    try:
        return service.export_member_data(
            session_factory=siyu.session_factory, clock=siyu.clock, member_id=member_id,
            viewer=viewer_of(request),
        )  # fmt: skip
    except (PrivacyError, IdentityError) as error:
        raise _http(error) from error


@router.post("/{member_id}/reveal")
def reveal_member(member_id: MemberId, request: Request, siyu: SiyuDep) -> dict[str, Any]:
    """The full name and phones, once; an audit row records who looked."""
    try:
        found = reveal.reveal_member(
            session_factory=siyu.session_factory, clock=siyu.clock, member_id=member_id,
            viewer=viewer_of(request),
        )  # fmt: skip
    except (PrivacyError, IdentityError) as error:
        raise _http(error) from error
    return {"member_id": found.member_id, "name": found.name, "phones": list(found.phones)}
