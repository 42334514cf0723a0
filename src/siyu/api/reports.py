"""HTTP API of the reports: GET /api/reports/{name}?as_of=YYYY-MM-DD (§4.6 JSON)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Query

from siyu.analytics import service as analytics_service
from siyu.analytics.errors import AnalyticsError, AnalyticsErrorCode
from siyu.api.deps import SiyuDep

router = APIRouter(prefix="/api/reports", tags=["reports"])


def _http(error: AnalyticsError) -> HTTPException:
    status = 404 if error.code == AnalyticsErrorCode.UNKNOWN_REPORT else 422
    return HTTPException(
        status_code=status, detail={"code": error.code.value, "message": error.message}
    )


@router.get("/{name}")
def get_report(
    name: str,
    siyu: SiyuDep,
    as_of: str | None = Query(default=None, description="YYYY-MM-DD; default today"),
    sync: bool = Query(default=False, description="Sync the warehouse first"),
) -> dict[str, Any]:
    """lifecycle | rfm | retention | repurchase, exactly as `siyu report NAME --json`."""
    tz = siyu.settings.tz
    try:
        day = analytics_service.parse_as_of(as_of, today=siyu.clock.now().astimezone(tz).date())
        return analytics_service.run_report(
            name=name,
            warehouse=siyu.warehouse,
            as_of=day,
            tz=tz,
            session_factory=siyu.session_factory if sync else None,
        )
    except AnalyticsError as error:
        raise _http(error) from error


@router.get("/{name}/details")
def get_report_details(
    name: str,
    siyu: SiyuDep,
    as_of: str | None = Query(default=None, description="YYYY-MM-DD; default today"),
) -> Any:
    """Chart data: lifecycle stage flows, the RFM table with shares, the repurchase trend."""
    tz = siyu.settings.tz
    try:
        day = analytics_service.parse_as_of(as_of, today=siyu.clock.now().astimezone(tz).date())
        if name not in analytics_service.REPORTS:
            raise AnalyticsError(AnalyticsErrorCode.UNKNOWN_REPORT, f"no report {name!r}")
        return analytics_service.console_extras(
            name=name, warehouse=siyu.warehouse, as_of=day, tz=tz
        )
    except AnalyticsError as error:
        raise _http(error) from error
