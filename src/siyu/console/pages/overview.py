"""Overview: headline KPIs and GMV by month. The page syncs the warehouse first (incremental,
cheap when nothing changed) because the serving process owns the warehouse file."""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from siyu.analytics import overview as overview_service
from siyu.api.deps import SiyuDep
from siyu.console.auth import CurrentUser
from siyu.console.nav import NavEntry
from siyu.console.templating import render
from siyu.warehouse.sync import sync_all

router = APIRouter(prefix="/console")
nav = [NavEntry(section="Overview", label="Overview", path="/console/", order=0)]


@router.get("/")
def overview_page(request: Request, siyu: SiyuDep, user: CurrentUser) -> HTMLResponse:
    tz = siyu.settings.tz
    sync_all(session_factory=siyu.session_factory, warehouse=siyu.warehouse, tz=tz)
    as_of: date = siyu.clock.now().astimezone(tz).date()
    data = overview_service.overview(
        session_factory=siyu.session_factory, warehouse=siyu.warehouse, as_of=as_of
    )
    tiles = [
        {"key": "members", "label": "Members", "value": data.members, "hint": "after OneID merges"},
        {"key": "orders", "label": "Orders", "value": data.orders, "hint": "paid, not refunded"},
        {"key": "gmv", "label": "GMV", "value": data.gmv, "fmt": "yuan"},
        {
            "key": "repurchase",
            "label": "Repurchase rate",
            "value": data.repurchase_rate,
            "fmt": "pct",
            "hint": "≥ 2 orders in 365 days",
        },
    ]
    return render(request, "overview/index.html", {"data": data, "tiles": tiles})
